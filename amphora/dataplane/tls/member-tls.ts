import { isIP } from 'node:net';
import tls from 'node:tls';
import { certificateChainPem, tlsProtocolOptions, type PoolTls } from '../../../common/amphora-config/index.ts';
import { tlsFingerprint } from './listener-tls.ts';

export function tlsFingerprintOf(t: PoolTls): string {
  return tlsFingerprint(t);
}

/**
 * A pool's re-encryption towards its members (HAProxy `server ... ssl [crt] [ca-file verify required]
 * [crl-file] sni ssl_fc_sni ciphers ... no-tlsvXX alpn ...`): one client context per pool, shared by every
 * member connection of a worker.
 */
export class MemberTls {
  readonly context: tls.SecureContext;
  readonly fingerprint: string;
  /** With a CA: the member certificate must chain to it (and, when the client sent a server name, match it). */
  readonly verify: boolean;
  /** ALPN offered on HTTP traffic (h2 removed: members are spoken to in HTTP/1.1). */
  readonly httpAlpn: string[] | undefined;
  /** ALPN offered on L4 traffic, where bytes pass through untouched. */
  readonly streamAlpn: string[] | undefined;
  /** The last session each member gave, by member and SNI: the next connection resumes it (as HAProxy reuses server sessions). */
  private readonly sessions = new Map<string, Buffer>();

  constructor(t: PoolTls) {
    this.fingerprint = tlsFingerprintOf(t);
    const protocol = tlsProtocolOptions(t.versions, t.ciphers);
    if (protocol === null) throw new Error('no TLS version to speak to members');
    this.context = tls.createSecureContext({
      ...protocol,
      ca: t.ca ?? undefined,
      crl: t.crl ?? undefined,
      cert: t.clientCertificate === null ? undefined : certificateChainPem(t.clientCertificate),
      key: t.clientCertificate?.privateKey,
    });
    this.verify = t.ca !== null;
    const http = t.alpnProtocols.filter((p) => p !== 'h2');
    this.httpAlpn = http.length > 0 ? http : undefined;
    this.streamAlpn = t.alpnProtocols.length > 0 ? [...t.alpnProtocols] : undefined;
  }

  /**
   * Options for tls.connect to a member. `servername` is the client's SNI on TERMINATED_HTTPS listeners
   * (HAProxy `sni ssl_fc_sni`), null otherwise: with verification, a member certificate must then match it;
   * without a server name only the chain is verified (HAProxy checks names only against the SNI it sent).
   */
  connectOptions(host: string, port: number, sni: string | null, mode: 'http' | 'stream'): tls.ConnectionOptions {
    const servername = sni !== null && sni !== '' && isIP(sni) === 0 ? sni : null;
    return {
      host,
      port,
      session: this.sessions.get(sessionKey(host, port, servername)),
      secureContext: this.context,
      servername: servername ?? undefined,
      ALPNProtocols: mode === 'http' ? this.httpAlpn : this.streamAlpn,
      rejectUnauthorized: this.verify,
      checkServerIdentity: servername !== null ? tls.checkServerIdentity : () => undefined,
    };
  }

  /**
   * Keeps the sessions a member connection receives for the next connection to that member — only once
   * the handshake succeeded (and the member certificate verified, with a CA): a resumed session is not
   * verified again.
   */
  watchSessions(socket: tls.TLSSocket, host: string, port: number, sni: string | null): void {
    const servername = sni !== null && sni !== '' && isIP(sni) === 0 ? sni : null;
    const key = sessionKey(host, port, servername);
    let trusted = false;
    let pending: Buffer | null = null;
    const keep = (session: Buffer) => {
      if (this.sessions.size >= MAX_SESSIONS && !this.sessions.has(key)) this.sessions.delete(this.sessions.keys().next().value as string);
      this.sessions.set(key, session);
    };
    socket.on('session', (session: Buffer) => {
      if (trusted) keep(session);
      else pending = session; // TLS 1.2 sends its ticket before the handshake is over
    });
    socket.once('secureConnect', () => {
      if (this.verify && !socket.authorized) return;
      trusted = true;
      if (pending !== null) keep(pending);
    });
  }
}

/** Members (and SNIs) whose last session is kept, per pool. */
const MAX_SESSIONS = 4096;

function sessionKey(host: string, port: number, servername: string | null): string {
  return `${host} ${port} ${servername ?? ''}`;
}
