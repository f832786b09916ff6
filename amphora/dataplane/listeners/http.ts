import type net from 'node:net';
import type { Listener } from '../../../common/amphora-config/index.ts';
import { ascii } from '../http/syntax.ts';
import { L7PolicySet } from '../l7/policies.ts';
import { clientCertHeaderNames, type ClientCertHeaderSet } from '../tls/client-cert.ts';
import { StreamFrontend, type FrontendContext, type Session } from './frontend.ts';
import { HttpSession } from './http-session.ts';

/**
 * An HTTP listener: a strict HTTP/1.1 proxy on raw sockets. Requests are parsed only as far as routing
 * and framing need and forwarded as bytes over keep-alive member connections.
 */
export class HttpFrontend extends StreamFrontend {
  policies: L7PolicySet;
  /** Header lines this listener inserts, without the client-specific values. */
  insert = { forwardedFor: false, forwardedPort: false, forwardedProto: false };
  /** X-SSL-* headers to insert (TERMINATED_HTTPS); null when none. */
  sslHeaders: ClientCertHeaderSet | null = null;
  /** Their lower-case names: a client's own headers by those names are dropped. */
  sslHeaderNames: Uint8Array[] = [];
  sslHeaderNameSet: ReadonlySet<string> = new Set();
  /** `Strict-Transport-Security: ...\r\n` set on member responses (TERMINATED_HTTPS with HSTS); null when none. */
  hstsLine: Buffer | null = null;
  /** The same value alone, for HTTP/2 responses. */
  hstsValue: string | null = null;

  constructor(listener: Listener, ctx: FrontendContext, connectionShare: number) {
    super(listener, ctx, connectionShare);
    this.policies = new L7PolicySet(listener.l7policies);
    this.readInsertHeaders(listener);
  }

  override update(listener: Listener, connectionShare: number): void {
    super.update(listener, connectionShare);
    this.policies = new L7PolicySet(listener.l7policies);
    this.readInsertHeaders(listener);
  }

  private readInsertHeaders(listener: Listener): void {
    const h = listener.insertHeaders;
    this.insert = {
      forwardedFor: h['X-Forwarded-For'],
      forwardedPort: h['X-Forwarded-Port'],
      forwardedProto: h['X-Forwarded-Proto'],
    };
    const ssl: ClientCertHeaderSet = {
      verify: h['X-SSL-Client-Verify'],
      hasCert: h['X-SSL-Client-Has-Cert'],
      dn: h['X-SSL-Client-DN'],
      cn: h['X-SSL-Client-CN'],
      issuer: h['X-SSL-Issuer'],
      sha1: h['X-SSL-Client-SHA1'],
      notBefore: h['X-SSL-Client-Not-Before'],
      notAfter: h['X-SSL-Client-Not-After'],
    };
    const secure = listener.protocol === 'TERMINATED_HTTPS';
    this.sslHeaders = secure && Object.values(ssl).some(Boolean) ? ssl : null;
    const names = this.sslHeaders === null ? [] : clientCertHeaderNames(this.sslHeaders);
    this.sslHeaderNames = names.map(ascii);
    this.sslHeaderNameSet = new Set(names);
    const hsts = secure ? listener.hsts : null;
    this.hstsValue = hsts === null ? null : `max-age=${hsts.maxAge}${hsts.includeSubdomains ? '; includeSubDomains' : ''}${hsts.preload ? '; preload' : ''}`;
    this.hstsLine = this.hstsValue === null ? null : Buffer.from(`Strict-Transport-Security: ${this.hstsValue}\r\n`, 'latin1');
  }

  get context(): FrontendContext {
    return this.ctx;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  protected serve(client: net.Socket, localPort: number): Session {
    return new HttpSession(this, client, localPort, null);
  }
}
