import dgram from 'node:dgram';
import type { Listener } from '../../../common/amphora-config/index.ts';
import type { Backend } from '../balancer/backend.ts';
import type { Server } from '../balancer/server.ts';
import { familyOf, plainAddress } from '../net/address.ts';
import type { TrafficSnapshot } from '../stats/counters.ts';
import type { DatagramTarget } from './bindings.ts';
import { Frontend, type FrontendContext } from './frontend.ts';

/** One client address:port and the member it was balanced to (LVS connection entry). */
interface Flow {
  key: string;
  clientAddress: string;
  clientPort: number;
  listening: dgram.Socket;
  server: Server;
  backend: Backend;
  upstream: dgram.Socket;
  connected: boolean;
  pending: Buffer[];
  lastSeen: number;
}

const SWEEP_INTERVAL_MS = 1_000;
const MAX_PENDING_DATAGRAMS = 64;

/**
 * A UDP listener, as LVS serves it in an Octavia amphora: datagrams from one client address:port form a
 * flow that sticks to one member until it has been idle for the listener's client timeout.
 */
export class UdpFrontend extends Frontend implements DatagramTarget {
  private readonly flows = new Map<string, Flow>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(listener: Listener, ctx: FrontendContext, connectionShare: number) {
    super(listener, ctx, connectionShare);
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  receive(listening: dgram.Socket, message: Buffer, remote: dgram.RemoteInfo): void {
    const clientAddress = plainAddress(remote.address);
    if (this.draining || !this.cidrs.admits(clientAddress)) return;
    const key = `${clientAddress}|${remote.port}`;
    let flow = this.flows.get(key);
    if (flow !== undefined && !flow.server.servesSticky) {
      this.closeFlow(flow);
      flow = undefined;
    }
    if (flow === undefined) {
      if (this.flows.size >= this.connectionLimit) {
        this.counters.requestErrors++;
        return;
      }
      flow = this.openFlow(key, clientAddress, remote.port, listening);
      if (flow === undefined) {
        this.counters.requestErrors++;
        return;
      }
    }
    flow.lastSeen = Date.now();
    this.counters.bytesIn += message.length;
    flow.server.counters.bytesIn += message.length;
    if (flow.connected) flow.upstream.send(message);
    else if (flow.pending.length < MAX_PENDING_DATAGRAMS) flow.pending.push(message);
  }

  private openFlow(key: string, clientAddress: string, clientPort: number, listening: dgram.Socket): Flow | undefined {
    const poolId = this.config.defaultPoolId;
    const backend = poolId === null ? undefined : this.ctx.backend(poolId);
    if (backend === undefined) return undefined;
    const server = backend.select({ sourceAddress: clientAddress, sourcePort: clientPort });
    if (server === null) return undefined;
    const upstream = dgram.createSocket(familyOf(server.address) === 'ipv4' ? 'udp4' : 'udp6');
    const flow: Flow = {
      key,
      clientAddress,
      clientPort,
      listening,
      server,
      backend,
      upstream,
      connected: false,
      pending: [],
      lastSeen: Date.now(),
    };
    upstream.on('message', (reply) => {
      flow.lastSeen = Date.now();
      this.counters.bytesOut += reply.length;
      server.counters.bytesOut += reply.length;
      listening.send(reply, clientPort, clientAddress);
    });
    upstream.on('error', (err) => {
      // ICMP port unreachable from the member surfaces here: the flow is dropped and rebalanced next time.
      this.ctx.log.debug({ listenerId: this.id, memberId: server.id, err: err.message }, 'udp member error');
      backend.failed(server);
      this.closeFlow(flow);
    });
    upstream.connect(server.port, server.address, () => {
      if (this.flows.get(key) !== flow) return;
      flow.connected = true;
      for (const message of flow.pending) upstream.send(message);
      flow.pending = [];
    });
    this.flows.set(key, flow);
    this.counters.activeConnections++;
    this.counters.totalConnections++;
    server.counters.activeConnections++;
    server.counters.totalConnections++;
    return flow;
  }

  private closeFlow(flow: Flow): void {
    if (this.flows.get(flow.key) !== flow) return;
    this.flows.delete(flow.key);
    this.counters.activeConnections--;
    flow.server.counters.activeConnections--;
    flow.upstream.close();
  }

  private sweep(): void {
    const idleLimit = this.config.timeouts.clientData;
    if (idleLimit === 0) return;
    const now = Date.now();
    for (const flow of this.flows.values()) if (now - flow.lastSeen >= idleLimit) this.closeFlow(flow);
  }

  override get status(): 'OPEN' | 'FULL' {
    return this.flows.size >= this.connectionLimit ? 'FULL' : 'OPEN';
  }

  snapshot(): TrafficSnapshot {
    return this.counters.snapshot();
  }

  /** UDP has no graceful close: flows end with the drain. */
  drain(): void {
    this.draining = true;
    for (const flow of [...this.flows.values()]) this.closeFlow(flow);
  }

  get activeSessions(): number {
    return this.flows.size;
  }

  destroyAll(): void {
    clearInterval(this.sweeper);
    for (const flow of [...this.flows.values()]) this.closeFlow(flow);
  }

  /** Called when the listener leaves the config: its flows end with it. */
  retire(): void {
    this.destroyAll();
  }
}
