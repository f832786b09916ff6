import { AmphoraConfigError, type AmphoraConfig } from '../../../common/amphora-config/index.ts';
import type { ConfigIssue } from '../../../common/amphora-config/index.ts';
import type { HealthReport } from '../health/supervisor.ts';
import type { Logger } from '../log.ts';
import { emptyTraffic } from '../stats/counters.ts';
import type { DataPlaneSnapshot } from '../stats/snapshot.ts';
import { systemHost, type DrHost } from './host.ts';
import { buildPlan, directRoutingListeners, tableName, type DrPlan } from './plan.ts';
import { listenerCounter, memberCounter, renderRemoval, renderRuleset, synCounter } from './ruleset.ts';

/** A config checked against the host, ready to be committed. */
export interface DrPrepared {
  config: AmphoraConfig;
  /** Null when the config has no enabled direct-routing listener. */
  link: { device: string; mac: string } | null;
}

export interface DirectRoutingOptions {
  log: Logger;
  host?: DrHost;
  /** How often members' MACs are resolved again (a replaced member keeps its address, not its MAC). */
  refreshMs?: number;
}

type Counts = { packets: number; bytes: number };

/**
 * The direct-routing listeners of one data plane (run once, next to the health monitors, never per
 * worker): checks a config against the host, programs the amphora's nftables table and keeps it in step
 * with member health, MACs, weights and admin state. Every change re-renders the whole table and replaces
 * it atomically; counters are carried over in memory across replacements.
 */
export class DirectRouting {
  private readonly host: DrHost;
  private readonly log: Logger;
  private readonly refreshMs: number;
  private config: AmphoraConfig | null = null;
  private link: { device: string; mac: string } | null = null;
  private readonly macs = new Map<string, string>();
  private readonly health = new Map<string, boolean>();
  /** The table this data plane programmed, and the script it last applied there. */
  private applied: { table: string; script: string } | null = null;
  /** Counter values of replaced tables, by counter name. */
  private readonly carried = new Map<string, Counts>();
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(options: DirectRoutingOptions) {
    this.log = options.log;
    this.host = options.host ?? systemHost;
    this.refreshMs = options.refreshMs ?? 10_000;
  }

  /** The plan now in force (for tests and diagnostics); null when no DR listener serves. */
  currentPlan(): DrPlan | null {
    return this.config === null || this.link === null ? null : this.plan(this.config, this.link);
  }

  /**
   * Checks what a config needs from the host (nftables netdev, the VIPs' interface, members on its
   * link) and resolves the members' MACs. Throws AmphoraConfigError, changing nothing, when it cannot serve.
   */
  async prepare(config: AmphoraConfig): Promise<DrPrepared> {
    const listeners = directRoutingListeners(config);
    if (listeners.length === 0) return { config, link: null };
    const at = ['listeners', config.listeners.indexOf(listeners[0]), 'forwarding'];
    const refuse = (issues: ConfigIssue[]) => new AmphoraConfigError(issues);

    const memberAddresses = config.pools.filter((p) => listeners.some((l) => l.defaultPoolId === p.id)).flatMap((p) => p.members.map((m) => m.address));
    let link: { device: string; mac: string } | null = null;
    let onLoopback = false;
    for (const [vi, vip] of config.vips.entries()) {
      const found = await this.host.interfaceOf(vip.address);
      if (found === null) throw refuse([{ path: ['vips', vi, 'address'], message: `DIRECT_ROUTING: no interface of this amphora holds the VIP ${vip.address}` }]);
      if (found.loopback) {
        onLoopback = true;
        continue;
      }
      if (link !== null && found.device !== link.device) {
        throw refuse([{ path: ['vips', vi, 'address'], message: `DIRECT_ROUTING needs every VIP on one interface (${link.device} and ${found.device})` }]);
      }
      link = { device: found.device, mac: found.mac };
    }
    if (link === null && onLoopback) {
      // A BACKUP amphora holds the VIP on lo with ARP off: no traffic comes, but the rules wait on the
      // interface that reaches the members, ready for the day the VIP moves here.
      const first = memberAddresses[0];
      const device = first === undefined ? 'lo' : await this.host.routeTo(first).then((r) => r.device, () => 'lo');
      link = { device, mac: await this.host.macOf(device) };
    }
    if (link === null) throw refuse([{ path: ['vips'], message: 'DIRECT_ROUTING needs a VIP' }]);
    const unavailable = await this.host.probeNetdev(link.device);
    if (unavailable !== null) throw refuse([{ path: at, message: `DIRECT_ROUTING cannot be served on this host: ${unavailable}` }]);

    const issues: ConfigIssue[] = [];
    const addresses = new Set<string>();
    for (const [pi, pool] of config.pools.entries()) {
      if (!listeners.some((l) => l.defaultPoolId === pool.id)) continue;
      for (const [mi, member] of pool.members.entries()) {
        const where = { path: ['pools', pi, 'members', mi, 'address'] };
        let route: Awaited<ReturnType<DrHost['routeTo']>>;
        try {
          route = await this.host.routeTo(member.address);
        } catch (err) {
          issues.push({ ...where, message: `DIRECT_ROUTING: ${member.address} is not reachable from this amphora (${(err as Error).message})` });
          continue;
        }
        if (route.local) issues.push({ ...where, message: `DIRECT_ROUTING: ${member.address} is an address of the amphora itself` });
        else if (route.device !== link.device || route.gateway !== null) {
          issues.push({
            ...where,
            message: `DIRECT_ROUTING: ${member.address} is not on the VIP's L2 segment (${link.device}); it is reached via ${route.gateway ?? route.device}`,
          });
        } else addresses.add(member.address);
      }
    }
    if (issues.length > 0) throw refuse(issues);

    await this.resolve([...addresses], link.device);
    try {
      await this.host.nft(renderRuleset(this.plan(config, link)), true);
    } catch (err) {
      throw refuse([{ path: at, message: `DIRECT_ROUTING rules refused by nftables: ${(err as Error).message}` }]);
    }
    return { config, link };
  }

  /** Puts a prepared config in force: replaces the table (or removes it when no DR listener is left). */
  commit(prepared: DrPrepared): Promise<void> {
    return this.serialized(async () => {
      const previous = this.config;
      this.config = prepared.config;
      this.link = prepared.link;
      this.forgetStaleHealth(prepared.config);
      if (prepared.link === null) {
        if (this.timer !== null) clearInterval(this.timer);
        this.timer = null;
        if (this.applied !== null) await this.removeTable();
        return;
      }
      try {
        await this.sync();
      } catch (err) {
        this.config = previous;
        throw new AmphoraConfigError([{ path: [], message: `DIRECT_ROUTING rules could not be applied: ${(err as Error).message}` }]);
      }
      if (this.timer === null) {
        this.timer = setInterval(() => this.refresh(), this.refreshMs);
        this.timer.unref();
      }
    });
  }

  /** Resolves when every queued table update is done. */
  async idle(): Promise<void> {
    await this.queue;
  }

  /** Health from the monitors: a change re-renders the table. */
  setHealth(reports: readonly HealthReport[]): void {
    let changed = false;
    for (const r of reports) {
      const key = `${r.poolId}/${r.memberId}`;
      if (this.health.get(key) !== r.healthy) changed = true;
      this.health.set(key, r.healthy);
    }
    if (changed && this.config !== null && this.link !== null) {
      this.serialized(() => this.sync()).catch((err: Error) => this.log.error({ err: err.message }, 'direct routing update failed'));
    }
  }

  /** Adds the DR listeners and the bytes their members received to a snapshot of the proxying engine. */
  async addTo(snapshot: DataPlaneSnapshot): Promise<DataPlaneSnapshot> {
    const config = this.config;
    if (config === null || this.link === null) return snapshot;
    const now = this.applied === null ? new Map<string, Counts>() : await this.host.counters(this.applied.table);
    const count = (name: string): Counts => {
      const a = this.carried.get(name);
      const b = now.get(name);
      return { packets: (a?.packets ?? 0) + (b?.packets ?? 0), bytes: (a?.bytes ?? 0) + (b?.bytes ?? 0) };
    };
    const pools = new Map(config.pools.map((p) => [p.id, p]));
    for (const listener of directRoutingListeners(config)) {
      const traffic = emptyTraffic();
      traffic.bytesIn = count(listenerCounter(listener.id)).bytes;
      const pool = listener.defaultPoolId === null ? undefined : pools.get(listener.defaultPoolId);
      for (const member of pool?.members ?? []) {
        const bytes = count(memberCounter(listener.id, member.id)).bytes;
        const opened = count(synCounter(listener.id, member.id)).packets;
        traffic.totalConnections += opened;
        const into = snapshot.pools[pool!.id]?.members[member.id];
        if (into !== undefined) {
          into.traffic.bytesIn += bytes;
          into.traffic.totalConnections += opened;
        }
      }
      snapshot.listeners[listener.id] = {
        protocol: listener.protocol,
        status: 'OPEN',
        connectionLimit: 50_000,
        traffic,
        poolIds: listener.defaultPoolId === null ? [] : [listener.defaultPoolId],
      };
    }
    return snapshot;
  }

  /** Removes the table (SIGTERM, shutdown). */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    return this.serialized(async () => {
      if (this.applied !== null) await this.removeTable();
      this.config = null;
    });
  }

  private plan(config: AmphoraConfig, link: { device: string; mac: string }): DrPlan {
    return buildPlan(config, link.device, link.mac, {
      healthy: (poolId, memberId) => this.health.get(`${poolId}/${memberId}`) ?? true,
      mac: (address) => this.macs.get(address),
    });
  }

  /** Renders the running config and replaces the table when the script changed. */
  private async sync(): Promise<void> {
    if (this.config === null || this.link === null || this.stopped) return;
    const plan = this.plan(this.config, this.link);
    const script = renderRuleset(plan);
    if (this.applied !== null && this.applied.script === script && this.applied.table === plan.table) return;
    if (this.applied !== null) await this.carryCounters(this.applied.table);
    await this.host.nft(script);
    this.applied = { table: plan.table, script };
    this.log.info(
      {
        table: plan.table,
        device: plan.device,
        listeners: plan.listeners.map((l) => ({ id: l.id, members: l.targets.map((t) => t.id) })),
      },
      'direct routing rules applied',
    );
  }

  private async removeTable(): Promise<void> {
    const { table } = this.applied as { table: string };
    await this.carryCounters(table);
    await this.host.nft(renderRemoval(table));
    this.applied = null;
    this.log.info({ table }, 'direct routing rules removed');
  }

  private async carryCounters(table: string): Promise<void> {
    for (const [name, value] of await this.host.counters(table)) {
      const before = this.carried.get(name) ?? { packets: 0, bytes: 0 };
      this.carried.set(name, { packets: before.packets + value.packets, bytes: before.bytes + value.bytes });
    }
  }

  private async resolve(addresses: string[], device: string): Promise<boolean> {
    let changed = false;
    await Promise.all(
      addresses.map(async (address) => {
        const mac = await this.host.resolveMac(device, address);
        if (mac === this.macs.get(address)) return;
        changed = true;
        if (mac === undefined) {
          this.macs.delete(address);
          this.log.warn({ address, device }, 'direct routing: member MAC not resolved (no ARP answer); it gets no traffic until it answers');
        } else {
          this.macs.set(address, mac);
          this.log.info({ address, mac }, 'direct routing: member MAC resolved');
        }
      }),
    );
    return changed;
  }

  private refresh(): void {
    const config = this.config;
    const link = this.link;
    if (config === null || link === null) return;
    const addresses = new Set<string>();
    for (const listener of directRoutingListeners(config)) {
      const pool = config.pools.find((p) => p.id === listener.defaultPoolId);
      for (const m of pool?.members ?? []) addresses.add(m.address);
    }
    this.serialized(async () => {
      if (await this.resolve([...addresses], link.device)) await this.sync();
    }).catch((err: Error) => this.log.error({ err: err.message }, 'direct routing refresh failed'));
  }

  private forgetStaleHealth(config: AmphoraConfig): void {
    const monitored = new Set<string>();
    for (const pool of config.pools) {
      if (pool.healthMonitor === null || !pool.healthMonitor.enabled || !pool.enabled) continue;
      for (const m of pool.members) if (m.enabled) monitored.add(`${pool.id}/${m.id}`);
    }
    for (const key of [...this.health.keys()]) if (!monitored.has(key)) this.health.delete(key);
  }

  private serialized<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

export { tableName };
