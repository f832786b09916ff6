import { createHash, X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { certificateChainPem, tlsProtocolOptions, type ListenerTls, type TlsCertificate } from '../../../common/amphora-config/index.ts';
import { listenerTicketKeys, renewTicketsOnResumption } from './ticket-keys.ts';

/** ALPN ids a listener can serve: h2 only where an HTTP/2 front end exists (not on PROMETHEUS listeners). */
const HTTP1_ALPN = new Set(['http/1.1', 'http/1.0']);
const HTTP2_ALPN = new Set(['h2', 'http/1.1', 'http/1.0']);

/** The names a certificate serves for SNI: its SAN DNS names, and its CN (HAProxy's crt-list without filters). */
export function certificateNames(certificatePem: string): string[] {
  const cert = new X509Certificate(certificatePem);
  const names: string[] = [];
  for (const entry of (cert.subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('DNS:')) names.push(entry.slice(4).toLowerCase());
  }
  for (const line of cert.subject.split('\n')) {
    if (line.startsWith('CN=')) names.push(line.slice(3).replaceAll('\\', '').toLowerCase());
  }
  return [...new Set(names)];
}

/**
 * Certificates by server name: exact names first, then `*.rest` wildcards matching one label; the first
 * certificate (default first, then the SNI list in order) to claim a name keeps it.
 */
export class SniTable<T> {
  private readonly exact = new Map<string, T>();
  private readonly wildcard = new Map<string, T>();

  add(names: readonly string[], value: T): void {
    for (const name of names) {
      if (name.startsWith('*.')) {
        const rest = name.slice(2);
        if (!this.wildcard.has(rest)) this.wildcard.set(rest, value);
      } else if (!this.exact.has(name)) {
        this.exact.set(name, value);
      }
    }
  }

  /** The value for a server name; undefined when no certificate claims it. */
  lookup(serverName: string): T | undefined {
    const name = serverName.toLowerCase().replace(/\.$/, '');
    if (this.exact.has(name)) return this.exact.get(name);
    const dot = name.indexOf('.');
    return dot < 0 ? undefined : this.wildcard.get(name.slice(dot + 1));
  }
}

/** A fingerprint of a TLS block, to rebuild contexts only when the material or settings change. */
export function tlsFingerprint(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

/**
 * A listener's TLS termination: one tls.Server that never listens (accepted sockets are handed to it),
 * whose default context serves the default certificate and whose SNI callback picks the others. Every
 * context carries the same client-verification and protocol settings, since a context chosen by SNI
 * brings its own CA store.
 */
export class ListenerTlsRuntime {
  readonly server: tls.Server;
  readonly fingerprint: string;
  readonly clientAuthentication: ListenerTls['clientAuthentication'];
  /** ALPN ids actually advertised (in the listed order, h2 only with `http2`); empty = no ALPN extension. */
  readonly alpn: string[];
  /** Resumed sessions get a new ticket (false on a Node without the hook: Node's default, no renewal). */
  readonly renewsTickets: boolean;

  constructor(listenerId: string, t: ListenerTls, handshakeTimeoutMs: number, http2: boolean) {
    this.fingerprint = tlsFingerprint(t);
    this.clientAuthentication = t.clientAuthentication;
    const servable = http2 ? HTTP2_ALPN : HTTP1_ALPN;
    this.alpn = t.alpnProtocols.filter((p) => servable.has(p));
    const protocol = tlsProtocolOptions(t.versions, t.ciphers);
    if (protocol === null) throw new Error(`listener ${listenerId}: no TLS version to serve`);
    const common: tls.SecureContextOptions = {
      ...protocol,
      honorCipherOrder: true,
      ca: t.clientCa ?? undefined,
      crl: t.clientCrl ?? undefined,
      // Sessions of one listener may resume on it only (OpenSSL needs this with client certificates).
      sessionIdContext: createHash('sha1').update(listenerId).digest('hex').slice(0, 32),
    };
    const material = (cert: TlsCertificate): tls.SecureContextOptions => ({ ...common, cert: certificateChainPem(cert), key: cert.privateKey });
    const all = [...(t.defaultCertificate === null ? [] : [t.defaultCertificate]), ...t.sniCertificates];
    const fallback = all[0];
    // null: the default certificate, whose context is the server's own.
    const sni = new SniTable<tls.SecureContext | null>();
    const sniContexts: tls.SecureContext[] = [];
    all.forEach((cert, i) => {
      const context = i === 0 ? null : tls.createSecureContext(material(cert));
      if (context) sniContexts.push(context);
      sni.add(certificateNames(cert.certificate), context);
    });
    const ticketKeys = listenerTicketKeys(listenerId, this.fingerprint);
    const requestCert = t.clientAuthentication !== 'NONE';
    this.server = tls.createServer({
      ...material(fallback),
      requestCert,
      // MANDATORY: OpenSSL fails a handshake without a certificate; Node closes one whose certificate fails.
      rejectUnauthorized: t.clientAuthentication === 'MANDATORY',
      ALPNProtocols: this.alpn.length > 0 ? this.alpn : undefined,
      handshakeTimeout: handshakeTimeoutMs > 0 ? handshakeTimeoutMs : undefined,
      ticketKeys,
      // A falsy context makes Node keep the server's own (the default certificate). Without SNI
      // certificates there is nothing to choose: no callback, which spares every handshake a pause
      // into JavaScript.
      SNICallback: sniContexts.length > 0 ? (servername, cb) => cb(null, sni.lookup(servername) ?? undefined) : undefined,
    });
    const serverContext = (this.server as unknown as { _sharedCreds?: tls.SecureContext })._sharedCreds;
    this.renewsTickets = serverContext !== undefined && [serverContext, ...sniContexts].every((c) => renewTicketsOnResumption(c, ticketKeys));
  }
}
