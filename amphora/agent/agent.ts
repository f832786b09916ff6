// The amphora agent: one per amphora. It connects to the controller as the amphora, fetches its
// configuration (retrying with back-off while the controller does not answer, serving nothing
// meanwhile), applies it to the data plane atomically, then serves the controller's orders
// (config.push, command) in order and sends a heartbeat every interval. After each reconnection of the
// transport it fetches its configuration again and applies it when it is newer. stop() (SIGTERM, or
// the `shutdown` command) stops the heartbeats, stops taking orders, lets the order being handled
// finish, drains the data plane's connections and closes the transport.
import { setTimeout as sleep } from 'node:timers/promises';
import { safeParseAmphoraConfig } from '../../common/amphora-config/index.ts';
import type { Logger } from '../../common/logging.ts';
import type { Command, CommandAck, ConfigAck, ConfigPush } from '../../common/messages.ts';
import { backoffDelay, TransportClosedError, type AmphoraTransport, type MessageMeta } from '../../common/transport/transport.ts';
import type { DataPlane } from '../dataplane/dataplane.ts';
import { HeartbeatLoop, type HeartbeatCounters } from './heartbeats.ts';
import { VrrpRunner, type StartElection } from './vrrp-runner.ts';

export interface AgentOptions {
  amphoraId: string;
  /** Opens the transport as this amphora (AmqpTransport.connect, or an InProcessBroker in tests). */
  connect(): Promise<AmphoraTransport>;
  /** A data plane with no config yet; the agent applies configs to it and stops it when it stops. */
  dataPlane: DataPlane;
  log: Logger;
  heartbeatIntervalMs: number;
  configFetch: { timeoutMs: number; initialDelayMs: number; maxDelayMs: number; factor: number; jitter: number };
  reconnectCheckMs: number;
  /** How long the data plane's connections may finish on stop. */
  drainTimeoutMs: number;
  /** How long closing the transport may wait for the order being handled, calls and unconfirmed publishes. */
  transportDrainTimeoutMs: number;
  /** Starts the ACTIVE_STANDBY election (amphora/vrrp's startVrrp); absent: configurations with a vrrp section are served and reported FAULT. */
  startElection?: StartElection;
}

export type AgentState = 'new' | 'connecting' | 'syncing' | 'serving' | 'stopping' | 'stopped';

/** What became of a configuration handed to the agent (by a push or a fetch). */
export type ApplyOutcome =
  | { kind: 'applied'; configVersion: number; previousVersion: number | null }
  /** Not newer than the running one: acknowledged without applying (idempotent re-delivery). */
  | { kind: 'current'; configVersion: number }
  /** Invalid or not applicable: the running config (`configVersion`, null if none) stays. */
  | { kind: 'refused'; configVersion: number | null; error: string };

export interface AgentStopResult {
  reason: string;
  /** False when something failed on the way (logged): the process should exit 1. */
  clean: boolean;
}

export interface AgentStatus {
  state: AgentState;
  configVersion: number | null;
  /** Config fetches answered by the controller (start-up and after reconnections). */
  fetches: number;
  /** Reconnections of the transport the agent noticed. */
  reconnections: number;
  heartbeats: HeartbeatCounters;
}

export class Agent {
  /** Resolves once the agent has stopped (after stop(), a `shutdown` command or a failed start). */
  readonly stopped: Promise<AgentStopResult>;
  private resolveStopped!: (r: AgentStopResult) => void;
  private stopping: Promise<AgentStopResult> | null = null;
  private state: AgentState = 'new';
  private transport?: AmphoraTransport;
  private readonly heartbeats: HeartbeatLoop;
  private readonly vrrp: VrrpRunner;
  private readonly log: Logger;
  /** Every configuration change goes through this chain: one at a time, in arrival order. */
  private applyChain: Promise<unknown> = Promise.resolve();
  private dataPlaneStopped = false;
  private readonly abort = new AbortController();
  private watchTimer?: NodeJS.Timeout;
  private seenConnects = 0;
  private refetch: Promise<void> | null = null;
  private refetchAgain = false;
  private fetches = 0;
  private reconnections = 0;

  constructor(private readonly options: AgentOptions) {
    this.log = options.log;
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
    this.vrrp = new VrrpRunner({
      dataPlane: options.dataPlane,
      log: options.log,
      startElection: options.startElection ?? null,
      // The controller learns at once which amphora holds the VIP.
      onChange: () => this.heartbeats.beatNow(),
    });
    this.heartbeats = new HeartbeatLoop({
      amphoraId: options.amphoraId,
      intervalMs: options.heartbeatIntervalMs,
      dataPlane: options.dataPlane,
      vrrp: () => this.vrrp.report(),
      publish: (h) => {
        if (!this.transport) return Promise.reject(new Error('no transport'));
        return this.transport.publishHeartbeat(h);
      },
      log: options.log,
    });
  }

  status(): AgentStatus {
    return {
      state: this.state,
      configVersion: this.options.dataPlane.config?.configVersion ?? null,
      fetches: this.fetches,
      reconnections: this.reconnections,
      heartbeats: this.heartbeats.counters(),
    };
  }

  /**
   * Connects, starts the heartbeats, fetches and applies the config (retrying until the controller
   * answers), then serves orders. Resolves once serving, or early when stop() is called meanwhile;
   * rejects when the transport cannot connect (initialConnectTimeoutMs) — call stop() then.
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`start() called in state ${this.state}`);
    this.state = 'connecting';
    this.log.info({ heartbeatIntervalMs: this.options.heartbeatIntervalMs }, 'amphora agent starting');
    const transport = await this.options.connect();
    if (this.stopping) {
      // stop() came while connecting: it could not close what did not exist yet.
      await transport.close({ drainTimeoutMs: 0 });
      return;
    }
    this.transport = transport;
    this.seenConnects = transport.counters().connects;
    this.heartbeats.start();

    this.state = 'syncing';
    await this.syncWithController('start-up');
    if (this.stopping) return;

    try {
      await transport.serveAmphora({
        configPush: (push, meta) => this.onConfigPush(push, meta),
        command: (command, meta) => this.onCommand(command, meta),
      });
    } catch (err) {
      if (this.stopping && err instanceof TransportClosedError) return; // stop() closed the transport meanwhile
      throw err;
    }
    if (this.stopping) return;
    this.state = 'serving';
    this.watchTimer = setInterval(() => this.checkReconnection(), this.options.reconnectCheckMs);
    this.log.info({ configVersion: this.options.dataPlane.config?.configVersion ?? null }, 'amphora agent serving');
  }

  /** Stops cleanly (idempotent); resolves like `stopped`. */
  stop(reason: string): Promise<AgentStopResult> {
    this.stopping ??= this.shutdown(reason).then((result) => {
      this.resolveStopped(result);
      return result;
    });
    return this.stopping;
  }

  // ---- configuration -----------------------------------------------------------------------------

  /**
   * Applies one configuration, after every configuration handed over before it. Never throws: an
   * invalid or inapplicable document is refused and the running config stays.
   */
  applyConfig(push: ConfigPush, source: string): Promise<ApplyOutcome> {
    const run = this.applyChain.then(() => this.applyNow(push, source));
    this.applyChain = run.catch(() => undefined);
    return run;
  }

  private async applyNow(push: ConfigPush, source: string): Promise<ApplyOutcome> {
    const dataPlane = this.options.dataPlane;
    const running = dataPlane.config?.configVersion ?? null;
    const refuse = (error: string, details: Record<string, unknown> = {}): ApplyOutcome => {
      this.log.error({ source, configVersion: push.configVersion, runningVersion: running, ...details, error }, 'config refused; the running config stays');
      return { kind: 'refused', configVersion: running, error };
    };
    if (this.dataPlaneStopped) return refuse('the agent is shutting down');
    if (running !== null && push.configVersion <= running) {
      // A push: a re-delivery, or overtaken by a newer one. A fetch answered with an older version
      // means the controller lost track of what it sent: worth a warning.
      const level = source !== 'push' && push.configVersion < running ? 'warn' : 'info';
      this.log[level]({ source, configVersion: push.configVersion, runningVersion: running }, 'config not newer than the running one; not applied');
      return { kind: 'current', configVersion: running };
    }
    const parsed = safeParseAmphoraConfig(push.config);
    if (!parsed.ok) return refuse(parsed.error.message, { issues: parsed.error.issues });
    if (parsed.config.configVersion !== push.configVersion) {
      return refuse(`config.configVersion ${parsed.config.configVersion} differs from the push's configVersion ${push.configVersion}`);
    }
    if (parsed.config.amphoraId !== this.options.amphoraId) {
      return refuse(`config.amphoraId ${parsed.config.amphoraId} is not this amphora (${this.options.amphoraId})`);
    }
    try {
      const diff = await dataPlane.apply(push.config);
      this.log.info(
        { source, configVersion: diff.toVersion, previousVersion: diff.fromVersion, listeners: diff.listeners, pools: diff.pools },
        'config applied',
      );
      // The election follows the configuration the data plane now runs (the BACKUP serves the same listeners).
      await this.vrrp.update(dataPlane.config);
      return { kind: 'applied', configVersion: diff.toVersion, previousVersion: diff.fromVersion };
    } catch (err) {
      // The data plane applies atomically: on failure (validation, a port that cannot be bound...)
      // nothing changed.
      return refuse(err instanceof Error ? err.message : String(err), { err });
    }
  }

  private async onConfigPush(push: ConfigPush, meta: MessageMeta): Promise<ConfigAck> {
    this.log.info({ messageId: meta.messageId, configVersion: push.configVersion, attempt: meta.attempt, redelivered: meta.redelivered }, 'config push received');
    const outcome = await this.applyConfig(push, 'push');
    const ack: ConfigAck =
      outcome.kind === 'refused'
        ? { amphoraId: this.options.amphoraId, configVersion: outcome.configVersion ?? 0, ok: false, error: outcome.error }
        : { amphoraId: this.options.amphoraId, configVersion: outcome.configVersion, ok: true };
    return ack;
  }

  private async onCommand(command: Command, meta: MessageMeta): Promise<CommandAck> {
    this.log.info({ messageId: meta.messageId, command: command.kind }, 'command received');
    switch (command.kind) {
      case 'ping':
        return { amphoraId: this.options.amphoraId, kind: 'ping', ok: true };
      case 'shutdown':
        // After the answer: stopping closes the transport, which waits for this handler (and its answer).
        setImmediate(() => void this.stop('shutdown command'));
        return { amphoraId: this.options.amphoraId, kind: 'shutdown', ok: true };
    }
  }

  /**
   * Fetches the config until the controller answers (back-off between attempts, each logged), and
   * applies it when newer. Returns without an answer only when the agent stops.
   */
  private async syncWithController(reason: string): Promise<void> {
    const transport = this.transport as AmphoraTransport;
    const o = this.options.configFetch;
    for (let attempt = 0; !this.stopping; attempt++) {
      let push: ConfigPush | null;
      try {
        push = await transport.fetchConfig({ timeoutMs: o.timeoutMs, retries: 0 });
      } catch (err) {
        if (this.stopping || err instanceof TransportClosedError) {
          this.log.info({ reason, err }, 'config fetch abandoned: the agent is stopping');
          return;
        }
        const delayMs = backoffDelay(attempt, o);
        this.log.warn({ reason, attempt: attempt + 1, delayMs, err }, 'config fetch failed; retrying');
        try {
          await sleep(delayMs, undefined, { signal: this.abort.signal });
        } catch {
          return; // aborted by stop()
        }
        continue;
      }
      this.fetches++;
      if (push === null) {
        this.log.info({ reason, runningVersion: this.options.dataPlane.config?.configVersion ?? null }, 'the controller has no config for this amphora');
        return;
      }
      this.log.info({ reason, configVersion: push.configVersion }, 'config fetched');
      await this.applyConfig(push, `fetch (${reason})`);
      return;
    }
  }

  /** The transport reconnected (its connection count went up): fetch the config again. */
  private checkReconnection(): void {
    const transport = this.transport;
    if (!transport || this.stopping) return;
    const connects = transport.counters().connects;
    if (connects <= this.seenConnects) return;
    this.reconnections += connects - this.seenConnects;
    this.seenConnects = connects;
    this.log.info({ connects }, 'transport reconnected; fetching the config again');
    if (this.refetch) {
      this.refetchAgain = true;
      return;
    }
    const loop = async (): Promise<void> => {
      do {
        this.refetchAgain = false;
        await this.syncWithController('reconnection');
      } while (this.refetchAgain && !this.stopping);
    };
    this.refetch = loop()
      .catch((err: unknown) => this.log.error({ err }, 'config re-fetch after reconnection failed'))
      .finally(() => (this.refetch = null));
  }

  // ---- stop ----------------------------------------------------------------------------------------

  private async shutdown(reason: string): Promise<AgentStopResult> {
    const from = this.state;
    this.state = 'stopping';
    this.log.info({ reason, from, drainTimeoutMs: this.options.drainTimeoutMs }, 'amphora agent stopping');
    let clean = true;
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.abort.abort();

    // 1. No more heartbeats (those handed over are flushed by the transport's close).
    await this.heartbeats.stop();
    // 2. No more orders: closing cancels the consumer at once and requeues whatever is delivered
    //    afterwards; the order being handled finishes and is answered and acked during the drain.
    const transport = this.transport;
    const closing = transport
      ? transport.close({ drainTimeoutMs: this.options.transportDrainTimeoutMs }).then(
          () => true,
          (err: unknown) => {
            this.log.error({ err }, 'closing the transport failed');
            return false;
          },
        )
      : Promise.resolve(true);
    // 3. The config being applied finishes; nothing is applied after it.
    await this.applyChain;
    this.dataPlaneStopped = true;
    await this.applyChain;
    // 3b. ACTIVE_STANDBY: the VIP is released (the peer told) before the connections drain, so the peer serves new ones at once.
    await this.vrrp.stop();
    // 4. Drain the data plane's connections (bounded by drainTimeoutMs).
    try {
      await this.options.dataPlane.stop(this.options.drainTimeoutMs);
    } catch (err) {
      clean = false;
      this.log.error({ err }, 'stopping the data plane failed');
    }
    // 5. The transport finishes its drain (answers, unconfirmed heartbeats) and closes.
    if (!(await closing)) clean = false;
    if (this.refetch) await this.refetch;
    this.state = 'stopped';
    this.log.info({ reason, clean, heartbeats: this.heartbeats.counters() }, 'amphora agent stopped');
    return { reason, clean };
  }
}
