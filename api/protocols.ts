// Protocol facts of the Octavia API shared by several resources.
import { errors } from './errors.ts';

export const LISTENER_PROTOCOLS = ['HTTP', 'HTTPS', 'TCP', 'TERMINATED_HTTPS', 'UDP', 'SCTP', 'PROMETHEUS'] as const;
export const POOL_PROTOCOLS = ['TCP', 'HTTP', 'HTTPS', 'PROXY', 'PROXYV2', 'UDP', 'SCTP'] as const;
export const LB_ALGORITHMS = ['ROUND_ROBIN', 'LEAST_CONNECTIONS', 'SOURCE_IP', 'SOURCE_IP_PORT'] as const;
export const TLS_VERSIONS = ['SSLv3', 'TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
export const ALPN_PROTOCOLS = ['h2', 'http/1.1', 'http/1.0'];
export const LVS_PROTOCOLS = ['UDP', 'SCTP'];

/** Listeners conflict on a port when their protocols share the L4 protocol. */
export const L4_PROTOCOL: Record<string, string> = {
  TCP: 'TCP', HTTP: 'TCP', HTTPS: 'TCP', TERMINATED_HTTPS: 'TCP', PROMETHEUS: 'TCP', UDP: 'UDP', SCTP: 'SCTP',
};

const POOLS_FOR_LISTENER: Record<string, string[]> = {
  HTTP: ['HTTP', 'PROXY', 'PROXYV2'],
  HTTPS: ['HTTPS', 'PROXY', 'PROXYV2', 'TCP'],
  TERMINATED_HTTPS: ['HTTP', 'PROXY', 'PROXYV2'],
  TCP: ['HTTP', 'HTTPS', 'PROXY', 'PROXYV2', 'TCP'],
  UDP: ['UDP'],
  SCTP: ['SCTP'],
  PROMETHEUS: [],
};

/** 400 unless a pool of `poolProtocol` may serve a listener of `listenerProtocol`. */
export function checkPoolProtocol(listenerProtocol: string, poolProtocol: string): void {
  if (!(POOLS_FOR_LISTENER[listenerProtocol] ?? []).includes(poolProtocol)) {
    throw errors.validation(`The pool protocol '${poolProtocol}' is invalid while the listener protocol is '${listenerProtocol}'.`);
  }
}

export const HTTP_HEADERS = ['X-Forwarded-For', 'X-Forwarded-Port', 'X-Forwarded-Proto', 'X-Forwarded-IP', 'X-Client-IP', 'X-Real-IP'];
export const SSL_HEADERS = [
  'X-SSL-Client-Verify', 'X-SSL-Client-Has-Cert', 'X-SSL-Client-DN', 'X-SSL-Client-CN', 'X-SSL-Issuer',
  'X-SSL-Client-SHA1', 'X-SSL-Client-Not-Before', 'X-SSL-Client-Not-After',
];

const pyList = (items: string[]) => `[${items.map((i) => `'${i}'`).join(', ')}]`;

export function checkInsertHeaders(headers: string[], listenerProtocol: string): void {
  if (listenerProtocol !== 'HTTP' && listenerProtocol !== 'TERMINATED_HTTPS') {
    throw errors.invalidOption('insert-headers', `a ${listenerProtocol} protocol listener.`);
  }
  if (headers.some((h) => !HTTP_HEADERS.includes(h) && !SSL_HEADERS.includes(h))) {
    throw errors.invalidOption(`dict_keys(${pyList(headers)})`, 'insert_headers');
  }
  if (listenerProtocol !== 'TERMINATED_HTTPS') {
    const ssl = headers.filter((h) => SSL_HEADERS.includes(h));
    if (ssl.length) throw errors.invalidOption(pyList(ssl), `${listenerProtocol} protocol listener.`);
  }
}

export function checkTlsVersions(versions: string[] | null | undefined, minimum: string | null): void {
  if (versions === undefined || versions === null) return;
  if (versions.length === 0) {
    throw errors.validation('Empty TLS version list. Either specify at least one TLS version or remove this parameter to use the default.');
  }
  const invalid = versions.filter((v) => !TLS_VERSIONS.includes(v));
  if (invalid.length) throw errors.validation(`Invalid TLS versions: ${invalid.join(', ')}`);
  if (minimum) {
    const min = TLS_VERSIONS.indexOf(minimum);
    const rejected = versions.filter((v) => TLS_VERSIONS.indexOf(v) < min);
    if (rejected.length) throw errors.validation(`Requested TLS versions are less than the minimum: ${rejected.join(', ')} < ${minimum}`);
  }
}

export function checkAlpnProtocols(protocols: string[] | null | undefined): void {
  if (protocols === undefined || protocols === null) return;
  if (protocols.length === 0) {
    throw errors.validation('Empty ALPN protocol list. Either specify at least one ALPN protocol or remove this parameter to use the default.');
  }
  const invalid = protocols.filter((p) => !ALPN_PROTOCOLS.includes(p));
  if (invalid.length) throw errors.validation(`Invalid ALPN protocol: ${invalid.join(', ')}`);
}

export function checkCiphers(ciphers: string | null | undefined, prohibited: string[]): void {
  if (!ciphers) return;
  const rejected = ciphers.split(':').filter((c) => prohibited.includes(c));
  if (rejected.length) throw errors.validation(`The following ciphers have been prohibited by an administrator: ${rejected.join(', ')}`);
}
