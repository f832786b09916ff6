import { AmphoraConfigError, safeParseAmphoraConfig, type AmphoraConfig } from '../../common/amphora-config/index.ts';
import type { ConfigDiff } from './config/diff.ts';
import { DirectRouting } from './directrouting/controller.ts';
import type { DrHost } from './directrouting/host.ts';
import type { StickListener } from './balancer/backend.ts';
import { Engine } from './engine.ts';
import { HealthSupervisor } from './health/supervisor.ts';
import { createLogger, type Logger } from './log.ts';
import { renderPrometheus } from './stats/prometheus.ts';
import type { DataPlaneSnapshot } from './stats/snapshot.ts';

/** What every data plane (in-process or one worker per core) offers its host: the agent or the CLI. */
export interface DataPlane {
  /** Validates and applies a config atomically; rejects with AmphoraConfigError and keeps the running one. */
  apply(input: unknown): Promise<ConfigDiff>;
  snapshot(): Promise<DataPlaneSnapshot>;
  readonly config: AmphoraConfig | null;
  /** Stops accepting, drains connections for up to `graceMs`, then closes everything. */
  stop(graceMs: number): Promise<void>;
  /**
   * Persistence entries the data plane learns (SOURCE_IP and APP_COOKIE stickiness, the
   * LAST_SUCCESSFUL member under key `current`, '' when it failed), in every worker: the agent shares
   * them with the other amphora of an ACTIVE_STANDBY pair.
   */
  onPersistenceLearned(listener: StickListener): void;
  /** Entries learned elsewhere (the peer amphora): applied in every worker, as if learned here. */
  importPersistence(poolId: string, key: string, serverId: string): void;
  /** Whether it serves now: a configuration runs, and (one worker per core) at least one worker runs it. */
  serving(): ServingState;
  /**
   * Called the moment it stops serving its configuration without being told to (every worker died),
   * so that an ACTIVE_STANDBY election can hand the VIP over at once, not at its next health check.
   */
  onStoppedServing(listener: (reason: string) => void): void;
}

export interface ServingState {
  ok: boolean;
  /** Why not, when not. */
  reason?: string;
}

export const NO_CONFIGURATION: ServingState = { ok: false, reason: 'the data plane runs no configuration' };

/** Validation shared by every data plane: schema, semantics, and the controller's version order. */
export function validateForApply(input: unknown, running: AmphoraConfig | null): AmphoraConfig {
  const parsed = safeParseAmphoraConfig(input);
  if (!parsed.ok) throw parsed.error;
  const config = parsed.config;
  if (running !== null && config.configVersion < running.configVersion) {
    throw new AmphoraConfigError([
      { path: ['configVersion'], message: `${config.configVersion} is older than the running configVersion ${running.configVersion}` },
    ]);
  }
  if (running !== null && config.amphoraId !== running.amphoraId) {
    throw new AmphoraConfigError([{ path: ['amphoraId'], message: `this data plane serves amphora ${running.amphoraId}` }]);
  }
  return config;
}

export interface LocalDataPlaneOptions {
  log?: Logger;
  /** How often direct-routing members' MACs are resolved again (ms). */
  macRefreshMs?: number;
  /** nftables, iproute2 and arping as direct routing uses them; the system's by default (tests pass a fake). */
  directRoutingHost?: DrHost;
}

/** The whole data plane in the current process: one engine plus the health monitors. */
export class LocalDataPlane implements DataPlane {
  readonly engine: Engine;
  private readonly health: HealthSupervisor;
  /** Direct-routing listeners: nftables rules, not sockets. */
  readonly directRouting: DirectRouting;
  private readonly log: Logger;
  private applying: Promise<unknown> = Promise.resolve();
  private readonly learnListeners: StickListener[] = [];

  constructor(options: LocalDataPlaneOptions = {}) {
    this.log = options.log ?? createLogger();
    this.engine = new Engine({
      log: this.log,
      workers: 1,
      serveUdp: true,
      exclusiveUdp: false,
      onStick: (poolId, key, serverId) => {
        for (const listener of this.learnListeners) listener(poolId, key, serverId);
      },
      metrics: async () => renderPrometheus(await this.snapshot()),
    });
    this.directRouting = new DirectRouting({ log: this.log, refreshMs: options.macRefreshMs, host: options.directRoutingHost });
    this.health = new HealthSupervisor((r) => {
      this.engine.setHealth(r.poolId, r.memberId, r.healthy, r.label);
      this.directRouting.setHealth([r]);
    }, this.log);
  }

  get config(): AmphoraConfig | null {
    return this.engine.currentConfig;
  }

  apply(input: unknown): Promise<ConfigDiff> {
    const run = this.applying.then(() => this.applyNow(input));
    this.applying = run.catch(() => undefined);
    return run;
  }

  private async applyNow(input: unknown): Promise<ConfigDiff> {
    const config = validateForApply(input, this.engine.currentConfig);
    const direct = await this.directRouting.prepare(config);
    const prepared = await this.engine.prepare(config);
    try {
      await this.directRouting.commit(direct);
    } catch (err) {
      await this.engine.abort(prepared);
      throw err;
    }
    this.engine.commit(prepared);
    const diff = prepared.diff;
    this.health.update(config);
    const reports = this.health.reports();
    for (const r of reports) this.engine.setHealth(r.poolId, r.memberId, r.healthy, r.label);
    this.directRouting.setHealth(reports);
    this.log.info({ configVersion: config.configVersion, listeners: diff.listeners, pools: diff.pools }, 'config applied');
    return diff;
  }

  async snapshot(): Promise<DataPlaneSnapshot> {
    return this.directRouting.addTo(this.engine.snapshot());
  }

  onPersistenceLearned(listener: StickListener): void {
    this.learnListeners.push(listener);
  }

  serving(): ServingState {
    return this.engine.currentConfig ? { ok: true } : NO_CONFIGURATION;
  }

  /** In-process: it cannot stop serving while its host lives, so the listener is never called. */
  onStoppedServing(_listener: (reason: string) => void): void {}

  importPersistence(poolId: string, key: string, serverId: string): void {
    this.engine.importStick(poolId, key, serverId);
  }

  async stop(graceMs: number): Promise<void> {
    this.health.stop();
    await Promise.all([this.directRouting.stop(), this.engine.shutdown(graceMs)]);
  }
}
