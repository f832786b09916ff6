import type net from 'node:net';
import type { Server } from '../balancer/server.ts';

/** Who currently uses a member connection; receives its events. */
export interface UpstreamOwner {
  onUpstreamData(chunk: Buffer): void;
  onUpstreamEnd(): void;
  onUpstreamClose(): void;
  onUpstreamTimeout(): void;
}

/**
 * A keep-alive HTTP connection to a member. Event listeners are attached once and dispatch to the
 * current owner, so handing the connection from one request to the next costs nothing.
 */
export class Upstream {
  owner: UpstreamOwner | null = null;
  /** Requests already carried: a reused connection may have been closed by the member meanwhile. */
  uses = 0;
  private timeoutMs = -1;
  private error: Error | null = null;

  constructor(
    readonly socket: net.Socket,
    readonly server: Server,
    private readonly pool: UpstreamPool,
    /** What else the connection is bound to besides its server (the SNI sent to the member): reused only for the same. */
    readonly tag: string,
  ) {
    socket.on('data', (chunk: Buffer) => {
      if (this.owner !== null) this.owner.onUpstreamData(chunk);
      else socket.destroy(); // bytes nobody asked for: the connection is out of sync
    });
    socket.on('end', () => {
      if (this.owner !== null) this.owner.onUpstreamEnd();
      else socket.destroy();
    });
    socket.on('error', (err) => {
      this.error = err;
    });
    socket.on('close', () => {
      pool.forget(this);
      this.owner?.onUpstreamClose();
    });
    socket.on('timeout', () => {
      if (this.owner !== null) this.owner.onUpstreamTimeout();
      else socket.destroy();
    });
  }

  get lastError(): Error | null {
    return this.error;
  }

  setTimeout(ms: number): void {
    if (ms !== this.timeoutMs) {
      this.timeoutMs = ms;
      this.socket.setTimeout(ms);
    }
  }

  get usable(): boolean {
    return !this.socket.destroyed && this.socket.writable && this.socket.readable;
  }
}

/** Idle keep-alive connections to members, per server, for one worker (HAProxy `http-reuse`). */
export class UpstreamPool {
  private readonly idle = new Map<Server, Upstream[]>();

  constructor(private maxIdlePerServer: number) {}

  setMaxIdle(n: number): void {
    this.maxIdlePerServer = n;
  }

  acquire(server: Server, tag = ''): Upstream | null {
    const list = this.idle.get(server);
    if (list === undefined) return null;
    for (let i = list.length - 1; i >= 0; i--) {
      const upstream = list[i];
      if (!upstream.usable) {
        list.splice(i, 1);
        upstream.socket.destroy();
        continue;
      }
      if (upstream.tag !== tag) continue;
      list.splice(i, 1);
      return upstream;
    }
    return null;
  }

  adopt(socket: net.Socket, server: Server, tag = ''): Upstream {
    return new Upstream(socket, server, this, tag);
  }

  /** Closes the idle connections to a server (its pool now connects differently, e.g. TLS settings changed). */
  dropIdle(server: Server): void {
    const list = this.idle.get(server);
    if (list === undefined) return;
    this.idle.delete(server);
    for (const upstream of list) upstream.socket.destroy();
  }

  release(upstream: Upstream): void {
    upstream.owner = null;
    let list = this.idle.get(upstream.server);
    if (list === undefined) {
      list = [];
      this.idle.set(upstream.server, list);
    }
    if (!upstream.usable || list.length >= this.maxIdlePerServer) {
      upstream.socket.destroy();
      return;
    }
    list.push(upstream);
  }

  forget(upstream: Upstream): void {
    const list = this.idle.get(upstream.server);
    if (list === undefined) return;
    const at = list.indexOf(upstream);
    if (at >= 0) list.splice(at, 1);
  }

  /** Closes idle connections to servers that left the config (or moved). */
  retain(live: ReadonlySet<Server>): void {
    for (const [server, list] of this.idle) {
      if (live.has(server)) continue;
      this.idle.delete(server);
      for (const upstream of list) upstream.socket.destroy();
    }
  }

  closeAll(): void {
    for (const list of this.idle.values()) for (const upstream of list.splice(0)) upstream.socket.destroy();
    this.idle.clear();
  }
}
