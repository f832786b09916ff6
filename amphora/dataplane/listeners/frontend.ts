import type net from 'node:net';
import type { Limits, Listener } from '../../../common/amphora-config/index.ts';
import type { Backend } from '../balancer/backend.ts';
import type { Logger } from '../log.ts';
import { CidrFilter, plainAddress } from '../net/address.ts';
import { TrafficCounters, type TrafficSnapshot } from '../stats/counters.ts';
import type { UpstreamPool } from './upstream-pool.ts';

/** Octavia renders connection_limit -1 as HAProxy maxconn 50000. */
export const DEFAULT_CONNECTION_LIMIT = 50_000;
const MAX_QUEUED_CONNECTIONS = 4096;

interface QueuedConnection {
  socket: net.Socket;
  localPort: number;
  leave: () => void;
  expire: () => void;
}

/** What a frontend needs from the engine that runs it. */
export interface FrontendContext {
  backend(poolId: string): Backend | undefined;
  limits(): Limits;
  readonly log: Logger;
  /** Idle keep-alive member connections of this worker. */
  readonly upstreams: UpstreamPool;
  /** Prometheus text for PROMETHEUS listeners, aggregated over every worker. */
  metrics(): Promise<string>;
}

/** A client connection a frontend tracks, so that stats include live byte counts and drain can close it. */
export interface Session {
  readonly client: net.Socket;
  /** Stop after the current exchange (HTTP) or let the stream finish (L4). */
  drain(): void;
  /** Close now. */
  destroy(): void;
  /** Client bytes when not all of them pass through `client` (the kernel relay moves some itself). */
  clientBytes?(): { read: number; written: number };
}

function clientBytesOf(session: Session): { read: number; written: number } {
  return session.clientBytes?.() ?? { read: session.client.bytesRead, written: session.client.bytesWritten };
}

/**
 * A listener as the data plane runs it (HAProxy "frontend"): its settings, allowed CIDRs, its share of
 * the connection limit and its counters. Subclasses serve one protocol.
 */
export abstract class Frontend {
  readonly id: string;
  config: Listener;
  protected cidrs: CidrFilter;
  readonly counters = new TrafficCounters();
  protected draining = false;

  constructor(
    listener: Listener,
    protected readonly ctx: FrontendContext,
    /** This worker's share of the listener's connection limit. */
    protected connectionShare: number,
  ) {
    this.id = listener.id;
    this.config = listener;
    this.cidrs = new CidrFilter(listener.allowedCidrs);
  }

  update(listener: Listener, connectionShare: number): void {
    this.config = listener;
    this.cidrs = new CidrFilter(listener.allowedCidrs);
    this.connectionShare = connectionShare;
  }

  get connectionLimit(): number {
    return this.connectionShare;
  }

  get status(): 'OPEN' | 'FULL' {
    return this.counters.activeConnections >= this.connectionLimit ? 'FULL' : 'OPEN';
  }

  /** Pool ids this listener may send traffic to (default pool and L7 redirect pools). */
  poolIds(): string[] {
    const ids = new Set<string>();
    if (this.config.defaultPoolId !== null) ids.add(this.config.defaultPoolId);
    for (const p of this.config.l7policies) {
      if (p.enabled && p.redirectPoolId !== null && p.action === 'REDIRECT_TO_POOL') ids.add(p.redirectPoolId);
    }
    return [...ids];
  }

  abstract snapshot(): TrafficSnapshot;
  /** Stops taking new clients and asks live ones to finish. */
  abstract drain(): void;
  abstract get activeSessions(): number;
  abstract destroyAll(): void;
}

/**
 * A listener over TCP: admission (allowed CIDRs, connection limit with a wait queue, like HAProxy's
 * maxconn) and live byte counts from the sessions' sockets.
 */
export abstract class StreamFrontend extends Frontend {
  protected readonly sessions = new Set<Session>();
  private readonly queue: QueuedConnection[] = [];
  /** Bytes of sessions that already ended; live sessions are read from their sockets. */
  private closedBytesIn = 0;
  private closedBytesOut = 0;

  override update(listener: Listener, connectionShare: number): void {
    super.update(listener, connectionShare);
    this.admitQueued();
  }

  /** Entry point of every accepted stream socket. */
  accept(socket: net.Socket, localPort: number): void {
    const remote = plainAddress(socket.remoteAddress);
    if (this.draining || !this.cidrs.admits(remote)) {
      socket.destroy();
      return;
    }
    if (this.counters.activeConnections >= this.connectionLimit) {
      this.enqueue(socket, localPort);
      return;
    }
    this.admit(socket, localPort);
  }

  private enqueue(socket: net.Socket, localPort: number): void {
    if (this.queue.length >= MAX_QUEUED_CONNECTIONS) {
      socket.destroy();
      return;
    }
    const leave = () => {
      const at = this.queue.indexOf(entry);
      if (at >= 0) this.queue.splice(at, 1);
    };
    const expire = () => {
      leave();
      socket.destroy();
    };
    const entry: QueuedConnection = { socket, localPort, leave, expire };
    socket.pause();
    this.queue.push(entry);
    socket.on('close', leave);
    socket.on('error', leave);
    socket.on('timeout', expire);
    socket.setTimeout(this.config.timeouts.clientData);
  }

  private admitQueued(): void {
    while (this.queue.length > 0 && this.counters.activeConnections < this.connectionLimit && !this.draining) {
      const entry = this.queue.shift() as QueuedConnection;
      if (entry.socket.destroyed) continue;
      entry.socket.off('close', entry.leave);
      entry.socket.off('error', entry.leave);
      entry.socket.off('timeout', entry.expire);
      entry.socket.setTimeout(0);
      this.admit(entry.socket, entry.localPort);
      entry.socket.resume();
    }
  }

  private admit(socket: net.Socket, localPort: number): void {
    this.counters.activeConnections++;
    this.counters.totalConnections++;
    const session = this.serve(socket, localPort);
    this.sessions.add(session);
    socket.once('close', () => {
      this.sessions.delete(session);
      this.counters.activeConnections--;
      // The session's client socket: the accepted one, or the TLS socket wrapping it (decrypted bytes).
      const bytes = clientBytesOf(session);
      this.closedBytesIn += bytes.read;
      this.closedBytesOut += bytes.written;
      this.admitQueued();
    });
  }

  /** Serves an admitted client connection; must return the session it tracks. */
  protected abstract serve(socket: net.Socket, localPort: number): Session;

  snapshot(): TrafficSnapshot {
    const s = this.counters.snapshot();
    let bytesIn = this.closedBytesIn;
    let bytesOut = this.closedBytesOut;
    for (const session of this.sessions) {
      const bytes = clientBytesOf(session);
      bytesIn += bytes.read;
      bytesOut += bytes.written;
    }
    s.bytesIn = bytesIn;
    s.bytesOut = bytesOut;
    return s;
  }

  /** Stops taking connections: queued ones are closed, live sessions are asked to finish. */
  drain(): void {
    this.draining = true;
    for (const entry of this.queue.splice(0)) entry.socket.destroy();
    for (const session of this.sessions) session.drain();
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  destroyAll(): void {
    for (const session of this.sessions) session.destroy();
  }
}

export function connectionShare(listener: Listener, workers: number): number {
  const limit = listener.connectionLimit === -1 ? DEFAULT_CONNECTION_LIMIT : listener.connectionLimit;
  return Math.max(1, Math.ceil(limit / Math.max(1, workers)));
}
