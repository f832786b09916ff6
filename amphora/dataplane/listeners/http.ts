import type net from 'node:net';
import type { Listener } from '../../../common/amphora-config/index.ts';
import { L7PolicySet } from '../l7/policies.ts';
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
    this.insert = {
      forwardedFor: listener.insertHeaders['X-Forwarded-For'],
      forwardedPort: listener.insertHeaders['X-Forwarded-Port'],
      forwardedProto: listener.insertHeaders['X-Forwarded-Proto'],
    };
  }

  get context(): FrontendContext {
    return this.ctx;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  protected serve(client: net.Socket, localPort: number): Session {
    return new HttpSession(this, client, localPort);
  }
}
