import type { L7Rule } from '../../../common/amphora-config/index.ts';
import type { ClientCertFacts } from '../tls/client-cert.ts';

/** The parts of an HTTP request L7 rules can look at. */
export interface L7Request {
  readonly host: string | null;
  readonly path: string;
  header(name: string): string | undefined;
  cookie(name: string): string | undefined;
}

/** The TLS facts of the client connection (TERMINATED_HTTPS); null on plain HTTP, where SSL_* rules never match. */
export interface L7Connection {
  readonly clientCert: ClientCertFacts;
}

export type RuleMatcher = (req: L7Request, conn: L7Connection | null) => boolean;

/** Compiles one rule to a predicate, invert included. A value that is absent never matches (before invert). */
export function compileRule(rule: L7Rule): RuleMatcher {
  const invert = rule.invert;
  // HAProxy: `ssl_c_used` and `ssl_c_verify eq <n>`; the compare type is EQUAL_TO and the value fixed.
  if (rule.type === 'SSL_CONN_HAS_CERT') return (_req, conn) => (conn !== null && conn.clientCert.used) !== invert;
  if (rule.type === 'SSL_VERIFY_RESULT') {
    const code = Number(rule.value);
    return (_req, conn) => (conn !== null && conn.clientCert.verify === code) !== invert;
  }
  if (rule.type === 'SSL_DN_FIELD') {
    // `ssl_c_s_dn(<key>)`: the first value of that subject field, compared case-sensitively.
    const field = rule.key as string;
    const compare = compileCompare(rule.compareType, rule.value, false);
    return (_req, conn) => {
      const value = conn === null ? undefined : conn.clientCert.subjectField(field);
      return (value !== undefined && compare(value)) !== invert;
    };
  }
  const ignoreCase = rule.type === 'HOST_NAME';
  const compare = compileCompare(rule.compareType, rule.type === 'FILE_TYPE' ? rule.value.replace(/^\./, '') : rule.value, ignoreCase);
  const extract = extractor(rule);
  return (req) => {
    const value = extract(req);
    const matched = value !== undefined && compare(value);
    return matched !== invert;
  };
}

function extractor(rule: L7Rule): (req: L7Request) => string | undefined {
  switch (rule.type) {
    case 'HOST_NAME':
      return (req) => (req.host === null ? undefined : hostWithoutPort(req.host));
    case 'PATH':
      return (req) => req.path;
    case 'FILE_TYPE':
      return (req) => fileType(req.path);
    case 'HEADER': {
      const name = rule.key as string;
      return (req) => req.header(name);
    }
    case 'COOKIE': {
      const name = rule.key as string;
      return (req) => req.cookie(name);
    }
    default:
      throw new Error(`L7 rule type ${rule.type} has no request extractor`);
  }
}

function compileCompare(type: L7Rule['compareType'], expected: string, ignoreCase: boolean): (value: string) => boolean {
  const want = ignoreCase ? expected.toLowerCase() : expected;
  const norm = ignoreCase ? (v: string) => v.toLowerCase() : (v: string) => v;
  switch (type) {
    case 'EQUAL_TO':
      return (v) => norm(v) === want;
    case 'STARTS_WITH':
      return (v) => norm(v).startsWith(want);
    case 'ENDS_WITH':
      return (v) => norm(v).endsWith(want);
    case 'CONTAINS':
      return (v) => norm(v).includes(want);
    case 'REGEX': {
      const re = new RegExp(expected, ignoreCase ? 'i' : '');
      return (v) => re.test(v);
    }
  }
}

function hostWithoutPort(host: string): string {
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    return close < 0 ? host : host.slice(0, close + 1);
  }
  const colon = host.lastIndexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

/** The extension of the last path segment, without the dot; "" when there is none. */
export function fileType(path: string): string {
  const segment = path.slice(path.lastIndexOf('/') + 1);
  const dot = segment.lastIndexOf('.');
  return dot < 0 ? '' : segment.slice(dot + 1);
}
