import cluster, { type Worker } from 'node:cluster';
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
import type { FromWorker, ToWorker } from './messages.ts';

const WORKER_ENTRY = fileURLToPath(new URL('./worker-main.ts', import.meta.url));
const REPLY_TIMEOUT_MS = 30_000;
const RESTART_DELAY_MS = 500;

export interface ClusterOptions {
  workers: number;
  log: Logger;
  logLevel: string;
}

interface Slot {
  index: number;
  worker: Worker;
  ready: Promise<void>;
  /** Up and running the current configuration (false from its death until its replacement runs it). */
  serving: boolean;
}

/**
 * The data plane on every core: one worker process per core sharing the listening sockets (the kernel
 * spreads connections), a primary that validates configs and applies them in two phases (all workers
 * open sockets, then all switch), runs the health monitors once, relays persistence entries between
 * workers and adds up their stats. A worker that dies is replaced and brought up to date.
 */
export class ClusterDataPlane implements DataPlane {
  private readonly slots: Slot[] = [];
  private running: AmphoraConfig | null = null;
  private seq = 0;
  private readonly waiters = new Map<string, (message: FromWorker) => void>();
  private readonly health: HealthSupervisor;
  /** Direct-routing listeners are nftables rules, programmed once here, not in the workers. */
  readonly directRouting: DirectRouting;
  private stopping = false;
  private applying: Promise<unknown> = Promise.resolve();
  private readonly learnListeners: StickListener[] = [];
  private readonly stoppedServingListeners: ((reason: string) => void)[] = [];
  /** Called at every spawn: an apply waiting for a dead worker's replacement looks again. */
  private spawnWaiters: (() => void)[] = [];

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
    const starting: Promise<void>[] = [];
    for (let i = 0; i < this.options.workers; i++) starting.push(this.spawn(i));
    await Promise.all(starting);
    for (const slot of this.slots) slot.serving = true;
  }

  private spawn(index: number): Promise<void> {
    const worker = cluster.fork({
      ARGONAUT_WORKER_INDEX: String(index),
      ARGONAUT_WORKERS: String(this.options.workers),
      ARGONAUT_LOG_LEVEL: this.options.logLevel,
      // Every worker derives the same TLS session-ticket keys: a session resumes on any of them.
      [TICKET_SECRET_ENV]: ticketSecret().toString('hex'),
    });
    let markReady: () => void = () => {};
    const ready = new Promise<void>((resolve) => (markReady = resolve));
    const slot: Slot = { index, worker, ready, serving: false };
    this.slots[index] = slot;
    const waiters = this.spawnWaiters;
    this.spawnWaiters = [];
    for (const wake of waiters) wake();
    worker.on('message', (message: FromWorker) => {
      if (message.type === 'ready') markReady();
      else this.onMessage(slot, message);
    });
    worker.on('exit', (code, signal) => {
      if (this.stopping || this.slots[index] !== slot) return;
      this.options.log.error({ worker: index, code, signal }, 'worker died; restarting it');
      const wasServing = this.slots.some((s) => s.serving);
      slot.serving = false;
      if (wasServing && this.running !== null && !this.slots.some((s) => s.serving)) {
        for (const listener of this.stoppedServingListeners) listener('every data plane worker died');
      }
      for (const [key, resolve] of this.waiters) {
        if (key.startsWith(`${worker.id}:`)) resolve({ type: 'prepared', seq: -1, error: 'worker died' });
      }
      setTimeout(() => {
        if (!this.stopping) this.respawn(index).catch((err: Error) => this.options.log.error({ worker: index, err: err.message }, 'restart failed'));
      }, RESTART_DELAY_MS);
    });
    return ready;
  }

  private async respawn(index: number): Promise<void> {
    await this.spawn(index);
    const slot = this.slots[index]!;
    // In turn with applies: the running configuration is the one the last apply committed.
    const run = this.applying.then(() => this.bringUpToDate(slot));
    this.applying = run.catch(() => undefined);
    await run;
  }

  private async bringUpToDate(slot: Slot): Promise<void> {
    if (this.running !== null) {
      const seq = ++this.seq;
      const reply = await this.request(slot, { type: 'prepare', seq, config: this.running }, 'prepared');
      if (reply.type === 'prepared' && reply.error !== null) throw new Error(reply.error);
      await this.request(slot, { type: 'commit', seq }, 'committed');
      this.sendTo(slot, { type: 'health', reports: this.health.reports() });
    }
    slot.serving = true;
  }

  /**
   * Prepares `config` in the worker of slot `index`; a worker that dies meanwhile is replaced by its
   * restart, which is prepared instead (so an apply does not fail for a worker crash).
   */
  private async prepareOn(index: number, seq: number, config: AmphoraConfig, deadline: number): Promise<{ slot: Slot; error: string | null }> {
    for (;;) {
      let slot: Slot;
      try {
        slot = await this.living(index, deadline);
      } catch (err) {
        return { slot: this.slots[index]!, error: (err as Error).message };
      }
      let error: string | null;
      try {
        const reply = await this.request(slot, { type: 'prepare', seq, config }, 'prepared');
        error = reply.type === 'prepared' ? reply.error : `unexpected reply ${reply.type}`;
      } catch (err) {
        error = (err as Error).message;
      }
      if (error !== null && !slot.worker.isConnected()) continue;
      return { slot, error };
    }
  }

  /**
   * The worker of slot `index` once it is up: a dead one's replacement (restarted after
   * RESTART_DELAY_MS), so that an apply that comes meanwhile reaches it rather than failing.
   */
  private async living(index: number, deadline: number): Promise<Slot> {
    for (;;) {
      const slot = this.slots[index]!;
      if (slot.worker.isConnected()) {
        await slot.ready;
        return slot;
      }
      if (this.stopping) throw new Error('the data plane is stopping');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`worker ${index} was not restarted in time`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.spawnWaiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }

  private onMessage(slot: Slot, message: FromWorker): void {
    switch (message.type) {
      case 'stick':
        // To every worker, the sender included: two workers that learned different members for the
        // same new key at once (its first connections reached both) then apply both entries in this
        // order and agree on the last; relayed to the others only, each kept the other's and they
        // swapped for good.
        for (const each of this.slots) this.sendTo(each, message);
        for (const listener of this.learnListeners) listener(message.poolId, message.key, message.serverId);
        return;
      case 'metrics':
        this.snapshot().then(
          (snap) => this.sendTo(slot, { type: 'metrics', seq: message.seq, text: renderPrometheus(snap), error: null }),
          (err: Error) => this.sendTo(slot, { type: 'metrics', seq: message.seq, text: null, error: err.message }),
        );
        return;
      case 'ready':
        return;
      default: {
        const key = `${slot.worker.id}:${message.type}:${message.seq}`;
        const resolve = this.waiters.get(key);
        this.waiters.delete(key);
        resolve?.(message);
      }
    }
  }

  private sendTo(slot: Slot, message: ToWorker): void {
    if (slot.worker.isConnected()) slot.worker.send(message);
  }

  private broadcast(message: ToWorker): void {
    for (const slot of this.slots) this.sendTo(slot, message);
  }

  private request(slot: Slot, message: ToWorker & { seq: number }, replyType: FromWorker['type']): Promise<FromWorker> {
    return new Promise((resolve, reject) => {
      // A dead worker would never answer: say so now rather than after the reply timeout.
      if (!slot.worker.isConnected()) return reject(new Error(`worker ${slot.index} is not running`));
      const key = `${slot.worker.id}:${replyType}:${message.seq}`;
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        reject(new Error(`worker ${slot.index} did not answer ${message.type} in time`));
      }, REPLY_TIMEOUT_MS);
      this.waiters.set(key, (reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
      this.sendTo(slot, message);
    });
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
      for (const slot of slots) this.sendTo(slot, { type: 'abort', seq });
      throw new AmphoraConfigError([{ path: [], message: `cannot apply: ${[...new Set(errors)].join('; ')}` }]);
    }
    try {
      await this.directRouting.commit(direct);
    } catch (err) {
      this.broadcast({ type: 'abort', seq });
      throw err;
    }
    // A worker that dies now is restarted with the configuration committed here (bringUpToDate).
    const commits = await Promise.allSettled(slots.map((slot) => this.request(slot, { type: 'commit', seq }, 'committed')));
    for (const [i, c] of commits.entries()) {
      if (c.status === 'rejected') this.options.log.error({ worker: slots[i]!.index, err: (c.reason as Error).message }, 'a worker did not confirm the commit');
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
    // The living workers' (a dead one's counters died with it): a heartbeat must not wait for a restart.
    const living = this.slots.filter((slot) => slot.worker.isConnected());
    const replies = await Promise.all(living.map((slot) => this.request(slot, { type: 'snapshot', seq }, 'snapshot')));
    return this.directRouting.addTo(mergeSnapshots(replies.flatMap((r) => (r.type === 'snapshot' ? [r.snapshot] : []))));
  }

  onPersistenceLearned(listener: StickListener): void {
    this.learnListeners.push(listener);
  }

  importPersistence(poolId: string, key: string, serverId: string): void {
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
    this.health.stop();
    const direct = this.directRouting.stop();
    const exits = this.slots.map(
      (slot) =>
        new Promise<void>((resolve) => {
          if (slot.worker.isDead()) return resolve();
          slot.worker.once('exit', () => resolve());
          this.sendTo(slot, { type: 'shutdown', graceMs });
          setTimeout(() => {
            if (!slot.worker.isDead()) slot.worker.kill('SIGKILL');
          }, graceMs + 5_000).unref();
        }),
    );
    await Promise.all([...exits, direct]);
  }
}
