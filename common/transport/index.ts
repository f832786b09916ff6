// The controller <-> amphora transport (see topology.md).
export * from './transport.ts';
export { AmqpTransport } from './amqp-transport.ts';
export { InProcessBroker, InProcessTransport } from './in-process-transport.ts';
export { amphoraPrincipal, deriveAmphoraKey, SignatureError, type Principal } from './signing.ts';
export { topologyNames, type TopologyNames } from './topology.ts';
export { IpcTransport } from './ipc-transport.ts';
export { IpcBrokerPort, type IpcBrokerPortOptions } from './ipc-broker-port.ts';
