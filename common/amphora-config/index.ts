export * from './schema.ts';
export * from './types.ts';
export { checkSemantics, ipv4Mask, type ConfigIssue } from './semantics.ts';
export { AmphoraConfigError, parseAmphoraConfig, safeParseAmphoraConfig, type ParseResult } from './parse.ts';
export { expandPorts, parsePortList, transportOf } from './ports.ts';
export * from './tls.ts';
