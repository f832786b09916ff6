import type net from 'node:net';
import type { Listener } from '../../../common/amphora-config/index.ts';
import { TlsClientConnection } from '../tls/client-cert.ts';
import type { FrontendContext, Session } from './frontend.ts';
import { HttpFrontend } from './http.ts';
import { H2Connection } from './h2-session.ts';
import { HttpSession } from './http-session.ts';
import { TlsTerminator } from './tls-terminator.ts';

/**
 * A TERMINATED_HTTPS listener: TLS termination, then the same HTTP proxy as an HTTP listener (or, when the
 * client negotiated h2, the HTTP/2 front end that turns each stream into an HTTP/1.1 exchange), with the
 * connection's TLS facts for the X-SSL-* headers, the SSL_* L7 rules and the SNI passed to TLS members.
 */
export class HttpsFrontend extends HttpFrontend {
  private readonly terminator: TlsTerminator;

  constructor(listener: Listener, ctx: FrontendContext, connectionShare: number) {
    super(listener, ctx, connectionShare);
    this.terminator = new TlsTerminator(listener, ctx.log, true);
  }

  override update(listener: Listener, connectionShare: number): void {
    super.update(listener, connectionShare);
    this.terminator.update(listener);
  }

  protected override serve(raw: net.Socket, localPort: number): Session {
    return this.terminator.accept(raw, (socket) => {
      const secure = new TlsClientConnection(socket);
      // ALPN h2: HTTP/2 to the client, HTTP/1.1 to members; otherwise HTTP/1.x throughout.
      const session = socket.alpnProtocol === 'h2' ? new H2Connection(this, socket, localPort, secure) : new HttpSession(this, socket, localPort, secure);
      if (this.isDraining) session.drain();
      return session;
    });
  }
}
