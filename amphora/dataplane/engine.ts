import type { AmphoraConfig, Limits, Listener } from '../../common/amphora-config/index.ts';
import { expandPorts, transportOf } from '../../common/amphora-config/index.ts';
import { Backend, type StickListener } from './balancer/backend.ts';
import type { Server } from './balancer/server.ts';
import { diffConfigs, type ConfigDiff } from './config/diff.ts';
import type { Logger } from './log.ts';
import { BindingTable, bindingKey, type BindingSpec } from './listeners/bindings.ts';
import { connectionShare, type Frontend, type FrontendContext } from './listeners/frontend.ts';
import { HttpFrontend } from './listeners/http.ts';
import { HttpsFrontend } from './listeners/https.ts';
import { PrometheusFrontend } from './listeners/prometheus.ts';
import { TcpFrontend } from './listeners/tcp.ts';
import { UdpFrontend } from './listeners/udp.ts';
import { UpstreamPool } from './listeners/upstream-pool.ts';
import type { DataPlaneSnapshot } from './stats/snapshot.ts';

export interface EngineOptions {
  log: Logger;
  /** How many workers share the listeners (for each worker's share of connection limits). */
  workers: number;
  /** UDP listeners are served by one worker only, so that a flow always meets the same flow table. */
  serveUdp: boolean;
  /** Bind UDP privately (cluster workers), not through the cluster primary. */
  exclusiveUdp: boolean;
  /** Learned persistence entries, to be shared with the other workers. */
  onStick?: StickListener;
  /** Prometheus text for PROMETHEUS listeners. */
  metrics: () => Promise<string>;
}

/** A config whose sockets are open but that does not serve yet (first phase of an atomic apply). */
export interface PreparedConfig {
  config: AmphoraConfig;
  diff: ConfigDiff;
  /** Binding key → id of the listener that serves it. */
  targets: Map<string, string>;
  opened: string[];
}

/**
 * One worker's data plane: the running frontends, backends and sockets, and the atomic, diff-based
 * apply of a new AmphoraConfig. Sockets, frontends and backends whose ids survive are updated in place,
 * so their connections, health and persistence carry over.
 */
export class Engine {
  private config: AmphoraConfig | null = null;
  private readonly backends = new Map<string, Backend>();
  private readonly frontends = new Map<string, Frontend>();
  /** Frontends that left the config but still have sessions to finish. */
  private readonly retired = new Set<Frontend>();
  private readonly bindings: BindingTable;
  private readonly upstreams = new UpstreamPool(64);
  private readonly context: FrontendContext;
  private readonly sweeper: NodeJS.Timeout;
  private applying: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: EngineOptions) {
    const log = options.log;
    this.bindings = new BindingTable({
      exclusiveUdp: options.exclusiveUdp,
      onSocketError: (spec, err) => log.warn({ binding: bindingKey(spec), err: err.message }, 'listening socket error'),
    });
    this.context = {
      backend: (id) => this.backends.get(id),
      limits: () => this.limits,
      log,
      upstreams: this.upstreams,
      metrics: options.metrics,
    };
    this.sweeper = setInterval(() => {
      for (const backend of this.backends.values()) backend.persistence?.sweep();
    }, 10_000);
    this.sweeper.unref();
  }

  get currentConfig(): AmphoraConfig | null {
    return this.config;
  }

  private get limits(): Limits {
    return (this.config as AmphoraConfig).limits;
  }

  /** Applies a validated config atomically: either all of it serves, or nothing changed. */
  async apply(config: AmphoraConfig): Promise<ConfigDiff> {
    const run = this.applying.then(async () => {
      const prepared = await this.prepare(config);
      this.commit(prepared);
      return prepared.diff;
    });
    this.applying = run.catch(() => undefined);
    return run;
  }

  /** Opens the sockets the config needs that are not open yet. Throws (having closed them) on failure. */
  async prepare(config: AmphoraConfig): Promise<PreparedConfig> {
    const specs: BindingSpec[] = [];
    const targets = new Map<string, string>();
    for (const listener of config.listeners) {
      if (!this.serves(listener)) continue;
      for (const port of expandPorts(listener.ports)) {
        for (const vip of config.vips) {
          const spec: BindingSpec = { transport: transportOf(listener.protocol), address: vip.address, port };
          specs.push(spec);
          targets.set(bindingKey(spec), listener.id);
        }
      }
    }
    const opened = await this.bindings.open(specs);
    return { config, diff: diffConfigs(this.config, config), targets, opened };
  }

  /** Second phase: swaps the prepared config in. Synchronous, so no connection sees half of it. */
  commit(prepared: PreparedConfig): void {
    const { config } = prepared;
    this.config = config;
    this.upstreams.setMaxIdle(config.limits.maxIdleMemberConnections);

    const poolIds = new Set(config.pools.map((p) => p.id));
    for (const pool of config.pools) {
      const backend = this.backends.get(pool.id);
      if (backend === undefined) this.backends.set(pool.id, new Backend(pool, this.options.onStick));
      else if (backend.update(pool)) for (const server of backend.allServers()) this.upstreams.dropIdle(server);
    }
    for (const id of [...this.backends.keys()]) if (!poolIds.has(id)) this.backends.delete(id);

    const serving = new Set<string>();
    for (const listener of config.listeners) {
      if (!this.serves(listener)) continue;
      serving.add(listener.id);
      const share = connectionShare(listener, listener.protocol === 'UDP' ? 1 : this.options.workers);
      const existing = this.frontends.get(listener.id);
      if (existing !== undefined && frontendKind(existing.config) === frontendKind(listener)) {
        existing.update(listener, share);
      } else {
        if (existing !== undefined) this.retire(existing);
        this.frontends.set(listener.id, this.createFrontend(listener, share));
      }
    }
    for (const [id, frontend] of [...this.frontends]) {
      if (serving.has(id)) continue;
      this.frontends.delete(id);
      this.retire(frontend);
    }

    for (const [key, listenerId] of prepared.targets) {
      const frontend = this.frontends.get(listenerId) as Frontend;
      if (frontend instanceof UdpFrontend) this.bindings.setDatagramTarget(key, frontend);
      else this.bindings.setStreamTarget(key, frontend as TcpFrontend | HttpFrontend | PrometheusFrontend);
    }
    const unused = [...this.bindings.keys()].filter((key) => !prepared.targets.has(key));
    if (unused.length > 0) {
      this.bindings.close(unused).catch((err: Error) => this.options.log.error({ err: err.message }, 'closing unused sockets failed'));
    }

    const live = new Set<Server>();
    for (const backend of this.backends.values()) for (const server of backend.allServers()) live.add(server);
    this.upstreams.retain(live);
    for (const frontend of this.retired) if (frontend.activeSessions === 0) this.retired.delete(frontend);
  }

  /** Undoes a prepare that will not be committed. */
  async abort(prepared: PreparedConfig): Promise<void> {
    await this.bindings.close(prepared.opened);
  }

  /** Direct-routing listeners are nftables rules (directrouting/), not sockets of the engine. */
  private serves(listener: Listener): boolean {
    if (listener.forwarding === 'DIRECT_ROUTING') return false;
    return listener.enabled && (listener.protocol !== 'UDP' || this.options.serveUdp);
  }

  private createFrontend(listener: Listener, share: number): Frontend {
    switch (frontendKind(listener)) {
      case 'http':
        return new HttpFrontend(listener, this.context, share);
      case 'https':
        return new HttpsFrontend(listener, this.context, share);
      case 'udp':
        return new UdpFrontend(listener, this.context, share);
      case 'prometheus':
        return new PrometheusFrontend(listener, this.context, share);
      case 'tcp':
        return new TcpFrontend(listener, this.context, share);
    }
  }

  /** A frontend leaving the config stops getting connections; the ones it has finish on their own. */
  private retire(frontend: Frontend): void {
    if (frontend instanceof UdpFrontend) {
      frontend.retire();
      return;
    }
    if (frontend.activeSessions > 0) this.retired.add(frontend);
  }

  setHealth(poolId: string, memberId: string, healthy: boolean, label: string): void {
    this.backends.get(poolId)?.setHealth(memberId, healthy, label);
  }

  importStick(poolId: string, key: string, serverId: string): void {
    this.backends.get(poolId)?.importStick(key, serverId);
  }

  snapshot(): DataPlaneSnapshot {
    const snap: DataPlaneSnapshot = { configVersion: this.config?.configVersion ?? null, listeners: {}, pools: {} };
    for (const [id, frontend] of this.frontends) {
      const limit = frontend.config.connectionLimit === -1 ? 50_000 : frontend.config.connectionLimit;
      snap.listeners[id] = {
        protocol: frontend.config.protocol,
        status: frontend.status,
        connectionLimit: limit,
        traffic: frontend.snapshot(),
        poolIds: frontend.poolIds(),
      };
    }
    for (const [id, backend] of this.backends) {
      const members: DataPlaneSnapshot['pools'][string]['members'] = {};
      for (const server of backend.allServers()) members[server.id] = { status: server.status, traffic: server.counters.snapshot() };
      snap.pools[id] = { status: backend.status, members };
    }
    return snap;
  }

  /**
   * Stops accepting, lets sessions finish (HTTP connections close after their current response) for up
   * to `graceMs`, then closes whatever is left.
   */
  async shutdown(graceMs: number): Promise<void> {
    clearInterval(this.sweeper);
    await this.bindings.closeAll();
    const all = [...this.frontends.values(), ...this.retired];
    for (const frontend of all) frontend.drain();
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && all.some((f) => f.activeSessions > 0)) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    for (const frontend of all) frontend.destroyAll();
    this.upstreams.closeAll();
  }
}

function frontendKind(listener: Listener): 'http' | 'https' | 'udp' | 'prometheus' | 'tcp' {
  switch (listener.protocol) {
    case 'HTTP':
      return 'http';
    case 'TERMINATED_HTTPS':
      return 'https';
    case 'UDP':
      return 'udp';
    case 'PROMETHEUS':
      return 'prometheus';
    default:
      return 'tcp';
  }
}
