import http from 'node:http';
import type net from 'node:net';
import type { Listener } from '../../../common/amphora-config/index.ts';
import { StreamFrontend, type FrontendContext, type Session } from './frontend.ts';
import { TlsTerminator } from './tls-terminator.ts';

/** A PROMETHEUS listener: serves the data plane's metrics at /metrics, as Octavia's amphora does. */
export class PrometheusFrontend extends StreamFrontend {
  private readonly server: http.Server;
  /** TLS offload (Octavia: a PROMETHEUS listener with certificates); null = plain HTTP. */
  private terminator: TlsTerminator | null = null;

  constructor(listener: Listener, ctx: FrontendContext, connectionShare: number) {
    super(listener, ctx, connectionShare);
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.requestTimeout = listener.timeouts.httpRequest;
    this.configureTls(listener);
  }

  override update(listener: Listener, connectionShare: number): void {
    super.update(listener, connectionShare);
    this.configureTls(listener);
  }

  private configureTls(listener: Listener): void {
    if (listener.tls === null) this.terminator = null;
    else if (this.terminator === null) this.terminator = new TlsTerminator(listener, this.ctx.log, false);
    else this.terminator.update(listener);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' && path !== '/') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' }).end('method not allowed\n');
      return;
    }
    this.ctx.metrics().then(
      (text) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(req.method === 'HEAD' ? undefined : text),
      (err: Error) => {
        this.ctx.log.error({ listenerId: this.id, err: err.message }, 'metrics collection failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  }

  protected serve(client: net.Socket): Session {
    if (this.terminator !== null) return this.terminator.accept(client, (socket) => this.serveHttp(socket));
    return this.serveHttp(client);
  }

  private serveHttp(client: net.Socket): Session {
    if (this.config.timeouts.clientData > 0) client.setTimeout(this.config.timeouts.clientData, () => client.destroy());
    this.server.emit('connection', client);
    return {
      client,
      drain: () => client.end(),
      destroy: () => client.destroy(),
    };
  }
}
