import { AmphoraConfigError, safeParseAmphoraConfig, type AmphoraConfig } from '../../common/amphora-config/index.ts';
import type { ConfigDiff } from './config/diff.ts';
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
}

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
}

/** The whole data plane in the current process: one engine plus the health monitors. */
export class LocalDataPlane implements DataPlane {
  readonly engine: Engine;
  private readonly health: HealthSupervisor;
  private readonly log: Logger;
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
      metrics: async () => renderPrometheus(this.engine.snapshot()),
    });
    this.health = new HealthSupervisor((r) => this.engine.setHealth(r.poolId, r.memberId, r.healthy, r.label), this.log);
  }

  get config(): AmphoraConfig | null {
    return this.engine.currentConfig;
  }

  async apply(input: unknown): Promise<ConfigDiff> {
    const config = validateForApply(input, this.engine.currentConfig);
    const diff = await this.engine.apply(config);
    this.health.update(config);
    for (const r of this.health.reports()) this.engine.setHealth(r.poolId, r.memberId, r.healthy, r.label);
    this.log.info({ configVersion: config.configVersion, listeners: diff.listeners, pools: diff.pools }, 'config applied');
    return diff;
  }

  async snapshot(): Promise<DataPlaneSnapshot> {
    return this.engine.snapshot();
  }

  onPersistenceLearned(listener: StickListener): void {
    this.learnListeners.push(listener);
  }

  importPersistence(poolId: string, key: string, serverId: string): void {
    this.engine.importStick(poolId, key, serverId);
  }

  async stop(graceMs: number): Promise<void> {
    this.health.stop();
    await this.engine.shutdown(graceMs);
  }
}
