import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { AmphoraConfigError, type AmphoraConfig } from '../../../common/amphora-config/index.ts';
import { diffConfigs, type ConfigDiff } from '../config/diff.ts';
import { NO_CONFIGURATION, validateForApply, type DataPlane, type ServingState } from '../dataplane.ts';
import { DirectRouting } from '../directrouting/controller.ts';
import { HealthSupervisor, type HealthReport } from '../health/supervisor.ts';
import type { Logger } from '../log.ts';
import { renderPrometheus } from '../stats/prometheus.ts';
import { mergeSnapshots, type DataPlaneSnapshot } from '../stats/snapshot.ts';
import { TICKET_SECRET_ENV, ticketSecret } from '../tls/ticket-keys.ts';
import type { StickListener } from '../balancer/backend.ts';
import { PersistenceJournal, persistenceTtl } from '../balancer/persistence-journal.ts';
import type { FromWorker, ToWorker } from './messages.ts';
import { WorkerSlot } from './worker-slot.ts';

const WORKER_ENTRY = fileURLToPath(new URL('./worker-main.ts', import.meta.url));
const REPLY_TIMEOUT_MS = 30_000;
const RESTART_DELAY_MS = 500;

export interface ClusterOptions {
  workers: number;
  log: Logger;
  logLevel: string;
}

/** How long restarts of a worker that keeps dying wait, at most (the delay doubles from RESTART_DELAY_MS). */
const MAX_RESTART_DELAY_MS = 10_000;
/** A worker that served this long before it died starts the restart delay over. */
const STABLE_MS = 30_000;

/**
 * The data plane on every core: one worker process per core sharing the listening sockets (the kernel
 * spreads connections), a primary that validates configs and applies them in two phases (all workers
 * open sockets, then all switch), runs the health monitors once, relays persistence entries between
 * workers and adds up their stats. A worker that dies is replaced and brought up to date.
 */
export class ClusterDataPlane implements DataPlane {
  private readonly slots: WorkerSlot[] = [];
  private running: AmphoraConfig | null = null;
  private seq = 0;
  private readonly health: HealthSupervisor;
  /** Direct-routing listeners are nftables rules, programmed once here, not in the workers. */
  readonly directRouting: DirectRouting;
  private stopping = false;
  private applying: Promise<unknown> = Promise.resolve();
  private readonly learnListeners: StickListener[] = [];
  private readonly stoppedServingListeners: ((reason: string) => void)[] = [];
  /** Called at every spawn (and at stop): an apply waiting for a dead worker's replacement looks again. */
  private spawnWaiters: (() => void)[] = [];
  /** Deaths of each slot's workers since one last took the configuration: the restart delay grows with them. */
  private readonly deaths: number[] = [];
  /** Every persistence entry the workers share, for a restarted worker (which starts with empty tables). */
  private readonly journal = new PersistenceJournal((poolId) => persistenceTtl(this.running, poolId));

  constructor(private readonly options: ClusterOptions) {
    this.directRouting = new DirectRouting({ log: options.log });
    this.health = new HealthSupervisor((r) => {
      this.broadcast({ type: 'health', reports: [r] });
      this.directRouting.setHealth([r]);
    }, options.log);
  }

  get config(): AmphoraConfig | null {
    return this.running;
  }

  async start(): Promise<void> {
    // Workers accept on the shared sockets themselves instead of the primary handing connections out.
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ exec: WORKER_ENTRY, silent: false });
    const slots: WorkerSlot[] = [];
    for (let i = 0; i < this.options.workers; i++) slots.push(this.spawn(i));
    const started = await Promise.all(slots.map((slot) => slot.ready));
    if (started.includes(false)) throw new Error('a data plane worker exited while starting');
    for (const slot of slots) slot.markServing();
  }

  private spawn(index: number): WorkerSlot {
    const worker = cluster.fork({
      ARGONAUT_WORKER_INDEX: String(index),
      ARGONAUT_WORKERS: String(this.options.workers),
      ARGONAUT_LOG_LEVEL: this.options.logLevel,
      // Every worker derives the same TLS session-ticket keys: a session resumes on any of them.
      [TICKET_SECRET_ENV]: ticketSecret().toString('hex'),
    });
    const slot = new WorkerSlot(index, worker, this.options.log, {
      message: (from, message) => this.onMessage(from, message),
      exit: (from, how) => this.onExit(from, how),
    });
    this.slots[index] = slot;
    this.wakeSpawnWaiters();
    return slot;
  }

  private wakeSpawnWaiters(): void {
    const waiters = this.spawnWaiters;
    this.spawnWaiters = [];
    for (const wake of waiters) wake();
  }

  private onExit(slot: WorkerSlot, how: { code: number | null; signal: string | null; wasServing: boolean; servedMs: number }): void {
    if (this.stopping || this.slots[slot.index] !== slot) return;
    if (how.servedMs >= STABLE_MS) this.deaths[slot.index] = 0;
    const delayMs = this.scheduleRestart(slot);
    this.options.log.error({ worker: slot.index, code: how.code, signal: how.signal, restartInMs: delayMs }, 'worker died; restarting it');
    if (how.wasServing && this.running !== null && !this.slots.some((s) => s.serving)) {
      for (const listener of this.stoppedServingListeners) {
        try {
          listener('every data plane worker died');
        } catch (err) {
          this.options.log.error({ err }, 'a stopped-serving listener failed');
        }
      }
    }
  }

  /** Restarts the dead worker of `dead`'s slot after a delay that doubles with each death in a row; returns the delay. */
  private scheduleRestart(dead: WorkerSlot): number {
    const index = dead.index;
    const deaths = (this.deaths[index] = (this.deaths[index] ?? 0) + 1);
    const delayMs = Math.min(RESTART_DELAY_MS * 2 ** (deaths - 1), MAX_RESTART_DELAY_MS);
    setTimeout(() => {
      if (this.stopping || this.slots[index] !== dead) return;
      this.respawn(index).catch((err: Error) => this.options.log.error({ worker: index, err: err.message }, 'restart failed'));
    }, delayMs);
    return delayMs;
  }

  private async respawn(index: number): Promise<void> {
    let slot: WorkerSlot;
    try {
      slot = this.spawn(index);
    } catch (err) {
      // fork() itself failed (e.g. ENOMEM): try again later.
      const delayMs = this.scheduleRestart(this.slots[index]!);
      this.options.log.error({ worker: index, err: (err as Error).message, restartInMs: delayMs }, 'cannot start a data plane worker');
      return;
    }
    // One that dies while booting is restarted by its exit.
    if (!(await slot.ready)) return;
    // In turn with applies: the running configuration is the one the last apply committed.
    const run = this.applying.then(() => this.bringUpToDate(slot));
    this.applying = run.catch(() => undefined);
    await run;
  }

  /** Gives a restarted worker the running configuration; one that cannot take it is killed, so that it is restarted (later each time). */
  private async bringUpToDate(slot: WorkerSlot): Promise<void> {
    if (slot.dead || this.slots[slot.index] !== slot) return;
    try {
      if (this.running !== null) {
        const seq = ++this.seq;
        const prepared = await slot.request({ type: 'prepare', seq, config: this.running }, 'prepared', REPLY_TIMEOUT_MS);
        if (prepared.type === 'prepared' && prepared.error !== null) throw new Error(prepared.error);
        await slot.request({ type: 'commit', seq }, 'committed', REPLY_TIMEOUT_MS);
        slot.send({ type: 'health', reports: this.health.reports() });
        // Oldest first, so that the newest entry of a key wins; else its first client would pick a
        // new member there and relay that choice to every worker, moving the client everywhere.
        const entries = this.journal.entries();
        for (const [poolId, key, serverId] of entries) slot.send({ type: 'stick', poolId, key, serverId });
        this.options.log.info({ worker: slot.index, configVersion: this.running.configVersion, persistenceEntries: entries.length }, 'restarted worker brought up to date');
      }
    } catch (err) {
      if (!slot.dead) {
        this.options.log.error({ worker: slot.index, err: (err as Error).message }, 'a restarted worker did not take the running configuration; killing it to restart it');
        slot.kill();
      }
      throw err;
    }
    slot.markServing();
  }

  /**
   * Prepares `config` in the worker of slot `index`; a worker that dies meanwhile is replaced by its
   * restart, which is prepared instead (so an apply does not fail for a worker crash).
   */
  private async prepareOn(index: number, seq: number, config: AmphoraConfig, deadline: number): Promise<{ slot: WorkerSlot; error: string | null }> {
    for (;;) {
      let slot: WorkerSlot;
      try {
        slot = await this.living(index, deadline);
      } catch (err) {
        return { slot: this.slots[index]!, error: (err as Error).message };
      }
      let error: string | null;
      try {
        const reply = await slot.request({ type: 'prepare', seq, config }, 'prepared', Math.max(1, deadline - Date.now()));
        error = reply.type === 'prepared' ? reply.error : `unexpected reply ${reply.type}`;
      } catch (err) {
        error = (err as Error).message;
      }
      if (error !== null && slot.dead) continue;
      return { slot, error };
    }
  }

  /**
   * The worker of slot `index` once it is ready: a dead one's replacement (restarted after a delay,
   * or one that dies while booting, the next one), so that an apply that comes meanwhile reaches it
   * rather than failing. Rejects at the deadline or when the data plane stops.
   */
  private async living(index: number, deadline: number): Promise<WorkerSlot> {
    for (;;) {
      if (this.stopping) throw new Error('the data plane is stopping');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`worker ${index} was not running in time`);
      const slot = this.slots[index]!;
      if (!slot.dead) {
        const ready = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), left);
          void slot.ready.then((ok) => (clearTimeout(timer), resolve(ok)));
        });
        if (ready && !slot.dead) return slot;
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.spawnWaiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  private onMessage(slot: WorkerSlot, message: FromWorker): void {
    switch (message.type) {
      case 'stick':
        // To every worker, the sender included: two workers that learned different members for the
        // same new key at once (its first connections reached both) then apply both entries in this
        // order and agree on the last; relayed to the others only, each kept the other's and they
        // swapped for good.
        for (const each of this.slots) each.send(message);
        this.journal.record(message.poolId, message.key, message.serverId);
        for (const listener of this.learnListeners) listener(message.poolId, message.key, message.serverId);
        return;
      case 'metrics':
        this.snapshot().then(
          (snap) => slot.send({ type: 'metrics', seq: message.seq, text: renderPrometheus(snap), error: null }),
          (err: Error) => slot.send({ type: 'metrics', seq: message.seq, text: null, error: err.message }),
        );
        return;
      default:
        return;
    }
  }

  /** To every ready worker (one still booting gets the running configuration and health when brought up to date). */
  private broadcast(message: ToWorker): void {
    for (const slot of this.slots) slot.send(message);
  }

  async apply(input: unknown): Promise<ConfigDiff> {
    const run = this.applying.then(() => this.applyNow(input));
    this.applying = run.catch(() => undefined);
    return run;
  }

  private async applyNow(input: unknown): Promise<ConfigDiff> {
    const config = validateForApply(input, this.running);
    const direct = await this.directRouting.prepare(config);
    const seq = ++this.seq;
    const deadline = Date.now() + REPLY_TIMEOUT_MS;
    const prepared = await Promise.all(this.slots.map((_, index) => this.prepareOn(index, seq, config, deadline)));
    const slots = prepared.map((p) => p.slot);
    const errors = prepared.flatMap((p) => (p.error === null ? [] : [p.error]));
    if (errors.length > 0) {
      for (const slot of slots) slot.send({ type: 'abort', seq });
      throw new AmphoraConfigError([{ path: [], message: `cannot apply: ${[...new Set(errors)].join('; ')}` }]);
    }
    try {
      await this.directRouting.commit(direct);
    } catch (err) {
      for (const slot of slots) slot.send({ type: 'abort', seq });
      throw err;
    }
    // A worker that dies now is restarted with the configuration committed here (bringUpToDate).
    const commits = await Promise.allSettled(slots.map((slot) => slot.request({ type: 'commit', seq }, 'committed', REPLY_TIMEOUT_MS)));
    for (const [i, c] of commits.entries()) {
      const slot = slots[i]!;
      if (c.status === 'fulfilled') {
        slot.markServing();
      } else {
        this.options.log.error({ worker: slot.index, err: (c.reason as Error).message }, 'a worker did not confirm the commit');
      }
    }
    if (!commits.some((c) => c.status === 'fulfilled')) {
      throw new AmphoraConfigError([{ path: [], message: 'cannot apply: no data plane worker confirmed the commit (every one died)' }]);
    }
    const diff = diffConfigs(this.running, config);
    this.running = config;
    this.health.update(config);
    const reports = this.health.reports();
    this.broadcast({ type: 'health', reports });
    this.directRouting.setHealth(reports);
    this.options.log.info({ configVersion: config.configVersion, listeners: diff.listeners, pools: diff.pools }, 'config applied');
    return diff;
  }

  async snapshot(): Promise<DataPlaneSnapshot> {
    const seq = ++this.seq;
    // The ready workers' (a dead one's counters died with it): a heartbeat must not wait for a restart.
    const ready = this.slots.filter((slot) => slot.isReady);
    const replies = await Promise.allSettled(ready.map((slot) => slot.request({ type: 'snapshot', seq }, 'snapshot', REPLY_TIMEOUT_MS)));
    // A worker that died meanwhile is left out, as a dead one is.
    const snapshots = replies.flatMap((r) => (r.status === 'fulfilled' && r.value.type === 'snapshot' ? [r.value.snapshot] : []));
    const failed = replies.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (snapshots.length === 0 && failed) throw failed.reason;
    return this.directRouting.addTo(mergeSnapshots(snapshots));
  }

  onPersistenceLearned(listener: StickListener): void {
    this.learnListeners.push(listener);
  }

  importPersistence(poolId: string, key: string, serverId: string): void {
    this.journal.record(poolId, key, serverId);
    this.broadcast({ type: 'stick', poolId, key, serverId });
  }

  serving(): ServingState {
    if (this.running === null) return NO_CONFIGURATION;
    return this.slots.some((s) => s.serving) ? { ok: true } : { ok: false, reason: 'no data plane worker is running (they are being restarted)' };
  }

  onStoppedServing(listener: (reason: string) => void): void {
    this.stoppedServingListeners.push(listener);
  }

  healthReports(): HealthReport[] {
    return this.health.reports();
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.wakeSpawnWaiters();
    this.health.stop();
    const direct = this.directRouting.stop();
    const exits = this.slots.map(
      (slot) =>
        new Promise<void>((resolve) => {
          if (slot.dead) return resolve();
          slot.worker.once('exit', () => resolve());
          // One still booting serves nothing yet (and could not take the message).
          if (!slot.send({ type: 'shutdown', graceMs })) return slot.kill();
          setTimeout(() => slot.kill(), graceMs + 5_000).unref();
        }),
    );
    await Promise.all([...exits, direct]);
  }
}
