// Octavia's health manager for Argonaut: applies amphora heartbeats to the database (operating
// statuses, health timestamps, listener statistics) and fails over amphorae that went silent.
// The rules are Octavia's (contract §4.3, §4.4); the differences are listed on each method.
import { foldUdpTwins } from '../amphora/udp-twin.ts';
import type { Database } from '../../common/db/database.ts';
import type { Logger } from '../../common/logging.ts';
import type { Heartbeat } from '../../common/messages.ts';
import type { MessageMeta } from '../../common/transport/transport.ts';
import { KeyedQueue } from '../controller/keyed-queue.ts';
import { addListenerStatistics, loadLoadBalancer, LockBusyError, recordVipHolder, refreshHealth, wholeSeconds, writeStatusChanges } from './heartbeat-db.ts';
import { statusChanges, type StatusChanges } from './heartbeat-status.ts';
import { claimForFailover, dropHealth, findExpired, releaseClaim } from './stale-amphorae.ts';

/** Attempts at a heartbeat whose rows are locked by another transaction, and the first pause (doubled each time, ±50 %). */
const LOCK_ATTEMPTS = 6;
const LOCK_RETRY_MS = 20;

type Amphora = { status: string; load_balancer_id: string | null; vip_holder?: boolean | number | null } | null;

type HeartbeatOutcome =
  | { ignored: string }
  | { stale: true }
  | { changes: StatusChanges; loadBalancerId: string; expected: number };

const notInService = (amp: Amphora): string | null =>
  !amp ? 'unknown amphora' : amp.status !== 'ALLOCATED' ? `amphora is ${amp.status}` : !amp.load_balancer_id ? 'amphora serves no load balancer' : null;

/**
 * Starts the failover of a stale amphora. When it is called, the amphora's health row is already
 * marked busy (so no check, in this or another controller, picks it again) and its load balancer
 * was ACTIVE or ERROR. It must:
 * - atomically move the load balancer to PENDING_UPDATE, refusing (rejecting) if it is no longer
 *   ACTIVE or ERROR, and start the amphora failover (e.g. submit it to the controller worker);
 *   resolve once the failover is started, not when it is finished;
 * - when the replacement is in place, delete the old amphora's amphora_health row (Octavia's
 *   DisableAmphoraHealthMonitoring; the replacement gets its own row with its first heartbeat;
 *   failing that, checkStale deletes it once the amphora is DELETED and the row stale). If
 *   the failover fails, leave the row busy (Octavia's amphora goes to ERROR and is not failed over
 *   again automatically) or set busy false to have it considered again.
 * If it rejects, the health manager logs the error, counts it and clears busy, so the amphora is
 * considered again at the next check.
 */
export type FailoverCallback = (amphoraId: string, loadBalancerId: string) => Promise<void>;

export interface HealthManagerOptions {
  db: Database;
  log: Logger;
  /** An amphora silent this long is failed over; a heartbeat created this long ago is stale (>= 1000). */
  heartbeatTimeoutMs: number;
  /** Time between the end of a stale-amphora check and the start of the next (start()). */
  healthCheckIntervalMs: number;
  /** Circuit breaker: when this many amphorae are stale at once, none is failed over; null: off. */
  failoverThreshold: number | null;
  failover: FailoverCallback;
  /**
   * The state of the path heartbeats take to this controller (its transport): whether it is
   * connected, and how many times it has connected. While it is down, and for heartbeatTimeoutMs
   * after each (re)connection, no amphora is found stale: their silence is the transport's (a
   * RabbitMQ restart), not theirs. Absent: always connected (in-process transport, tests).
   */
  reportPath?: () => { connected: boolean; connects: number };
  /** The clock, ms since epoch (tests). */
  now?: () => number;
}

export interface HealthManagerCounters {
  /** Heartbeats applied to the database. */
  heartbeatsHandled: number;
  /** Heartbeats of amphorae unknown, not ALLOCATED, or whose load balancer is gone: nothing written. */
  heartbeatsIgnored: number;
  /** Heartbeats older than heartbeatTimeoutMs: only their statistics deltas were added. */
  heartbeatsStale: number;
  /** Failover callbacks that resolved. */
  failoversTriggered: number;
  /** Failover callbacks that rejected (the amphora is considered again at the next check). */
  failoversFailed: number;
  /** Checks that found failoverThreshold or more stale amphorae and failed none over. */
  circuitBreakerTrips: number;
  /** Checks skipped because the heartbeats' path (the transport) was down or had just reconnected. */
  checksPaused: number;
  /** Heartbeat transactions given up and retried because a row they write was locked (MariaDB). */
  lockConflicts: number;
  /** Periodic checks that threw (logged). */
  checkErrors: number;
}

export interface StaleCheckResult {
  /** Amphorae stale and not busy (what the circuit breaker counts). */
  stale: string[];
  /** Amphorae handed to the failover callback (it may have rejected). */
  failedOver: string[];
  circuitOpen: boolean;
}

export class HealthManager {
  private readonly db: Database;
  private readonly log: Logger;
  private readonly heartbeatTimeoutMs: number;
  private readonly healthCheckIntervalMs: number;
  private readonly failoverThreshold: number | null;
  private readonly failover: FailoverCallback;
  private readonly reportPath?: () => { connected: boolean; connects: number };
  /** No stale checks before this time (ms): the report path was down or reconnected; Infinity while down. */
  private pausedUntil = 0;
  private seenConnects: number | undefined;
  private readonly now: () => number;
  private readonly counts: HealthManagerCounters = {
    heartbeatsHandled: 0,
    heartbeatsIgnored: 0,
    heartbeatsStale: 0,
    failoversTriggered: 0,
    failoversFailed: 0,
    circuitBreakerTrips: 0,
    checksPaused: 0,
    lockConflicts: 0,
    checkErrors: 0,
  };
  /** Heartbeats of one load balancer are applied one at a time in this process (they would only contend for its lock). */
  private readonly perLoadBalancer = new KeyedQueue();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private started = false;

  constructor(opts: HealthManagerOptions) {
    if (!Number.isInteger(opts.heartbeatTimeoutMs) || opts.heartbeatTimeoutMs < 1000) {
      throw new RangeError(`heartbeatTimeoutMs must be an integer >= 1000 (got ${opts.heartbeatTimeoutMs})`);
    }
    if (!(opts.healthCheckIntervalMs > 0)) throw new RangeError(`healthCheckIntervalMs must be positive (got ${opts.healthCheckIntervalMs})`);
    if (opts.failoverThreshold !== null && !(Number.isInteger(opts.failoverThreshold) && opts.failoverThreshold > 0)) {
      throw new RangeError(`failoverThreshold must be a positive integer or null (got ${opts.failoverThreshold})`);
    }
    this.db = opts.db;
    this.log = opts.log;
    this.heartbeatTimeoutMs = opts.heartbeatTimeoutMs;
    this.healthCheckIntervalMs = opts.healthCheckIntervalMs;
    this.failoverThreshold = opts.failoverThreshold;
    this.failover = opts.failover;
    this.reportPath = opts.reportPath;
    this.now = opts.now ?? Date.now;
  }

  get counters(): Readonly<HealthManagerCounters> {
    return { ...this.counts };
  }

  /**
   * Applies one heartbeat, in one transaction: listener statistics deltas, the health timestamp
   * (only when the amphora reports every enabled listener, §4.3) and the operating statuses that
   * changed, the load balancer's last. On MariaDB, when a row it writes is locked by another
   * transaction (an API operation, a heartbeat of the other amphora) it steps back and tries again
   * (LOCK_ATTEMPTS times within about a second; see heartbeat-db.ts). Database errors, and LockBusyError
   * after the last attempt, are thrown: the transport requeues the message, nothing of it was written.
   *
   * Ignored: amphorae unknown or not ALLOCATED, and load balancers gone or DELETED (Octavia also
   * ignores them, and deletes the compute instance of an amphora attached to no load balancer:
   * not done here). A heartbeat created heartbeatTimeoutMs or more ago (e.g. delivered late after
   * a broker restart) refreshes neither health nor statuses (Octavia drops heartbeats processed
   * heartbeat_interval after receipt) but its statistics deltas are added: they count traffic that
   * did happen, and Octavia's statistics path has no age check either.
   */
  async handleHeartbeat(h: Heartbeat, meta: MessageMeta): Promise<void> {
    const now = this.now();
    const ageMs = now - meta.createdAt;
    const stale = ageMs >= this.heartbeatTimeoutMs;
    const found = (await this.db.read(() => this.db.models.amphora.findByPk(h.id, { raw: true }))) as Amphora;
    const why = notInService(found);
    const outcome = why ? { ignored: why } : await this.applyWithRetries(h, found!.load_balancer_id!, stale, wholeSeconds(now));

    const ctx = { amphoraId: h.id, seq: h.seq, messageId: meta.messageId };
    if ('ignored' in outcome) {
      this.counts.heartbeatsIgnored++;
      this.log.debug({ ...ctx, reason: outcome.ignored }, 'heartbeat ignored');
    } else if ('stale' in outcome) {
      this.counts.heartbeatsStale++;
      this.log.debug({ ...ctx, ageMs }, 'stale heartbeat: statistics added, health and statuses left as they are');
    } else {
      this.counts.heartbeatsHandled++;
      if (!outcome.changes.refreshHealth) {
        this.log.warn(
          { ...ctx, loadBalancerId: outcome.loadBalancerId, reported: Object.keys(h.listeners).length, expected: outcome.expected },
          'heartbeat does not report every enabled listener: amphora health not refreshed',
        );
      }
    }
  }

  /**
   * One stale-amphora check. Health rows older than heartbeatTimeoutMs (truncated to the second,
   * like the stored timestamps) and not busy are stale. If failoverThreshold or more are stale,
   * none is failed over and an error is logged (Octavia also sets them FAILOVER_STOPPED until
   * their heartbeats resume: not done here). Otherwise each stale ALLOCATED amphora whose load
   * balancer is ACTIVE or ERROR is marked busy and handed to the failover callback; those of a
   * PENDING_* load balancer are skipped this time (Octavia's FAILOVERABLE_STATUSES). Health rows of
   * DELETED or vanished amphorae are deleted (Octavia's failover does that for a DELETED amphora).
   */
  async checkStale(): Promise<StaleCheckResult> {
    if (this.reportPathPaused()) {
      this.counts.checksPaused++;
      return { stale: [], failedOver: [], circuitOpen: false };
    }
    const cutoff = wholeSeconds(this.now() - this.heartbeatTimeoutMs);
    const expired = await findExpired(this.db, cutoff);
    if (expired.gone.length > 0) {
      this.log.info({ amphoraIds: expired.gone }, 'deleting the health records of deleted amphorae');
      await dropHealth(this.db, expired.gone, cutoff);
    }
    const stale = expired.stale.map((s) => s.amphoraId);
    if (stale.length === 0) return { stale, failedOver: [], circuitOpen: false };
    if (this.failoverThreshold !== null && stale.length >= this.failoverThreshold) {
      this.counts.circuitBreakerTrips++;
      this.log.error(
        { threshold: this.failoverThreshold, count: stale.length, amphoraIds: stale },
        'stale amphora count reached the failover threshold: no amphora is failed over',
      );
      return { stale, failedOver: [], circuitOpen: true };
    }

    const claimed: Array<{ amphoraId: string; loadBalancerId: string }> = [];
    for (const { amphoraId } of expired.stale) {
      const claim = await claimForFailover(this.db, amphoraId, cutoff);
      if (claim.claimed) claimed.push({ amphoraId, loadBalancerId: claim.loadBalancerId });
      else if (claim.reason === 'load balancer busy') {
        this.log.warn({ amphoraId, provisioningStatus: claim.detail }, 'stale amphora: its load balancer is immutable, failover skipped this time');
      } else this.log.debug({ amphoraId, reason: claim.reason, detail: claim.detail }, 'stale amphora not failed over');
    }
    await Promise.all(claimed.map((c) => this.startFailover(c.amphoraId, c.loadBalancerId)));
    return { stale, failedOver: claimed.map((c) => c.amphoraId), circuitOpen: false };
  }

  /**
   * Runs checkStale every healthCheckIntervalMs (counted from the end of the previous check). The
   * first check waits heartbeatTimeoutMs, as Octavia's health manager pauses at start, so that
   * amphorae get a full timeout to report to a controller that was down.
   */
  start(): void {
    if (this.started || this.running) throw new Error('health manager already started (or still stopping)');
    this.started = true;
    this.log.info({ heartbeatTimeoutMs: this.heartbeatTimeoutMs, healthCheckIntervalMs: this.healthCheckIntervalMs, failoverThreshold: this.failoverThreshold }, 'health manager started');
    this.schedule(this.heartbeatTimeoutMs);
  }

  /** Stops the periodic checks and waits for a running one to finish. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /**
   * Whether stale checks wait for the heartbeats' path: down now, or (re)connected less than
   * heartbeatTimeoutMs ago (seen at this check: a reconnection between two checks counts from the
   * later one). Heartbeats made during an outage arrive late and are stale themselves, so every
   * amphora needs a full timeout of fresh heartbeats after the path is back, as after a start.
   */
  private reportPathPaused(): boolean {
    if (!this.reportPath) return false;
    const now = this.now();
    const { connected, connects } = this.reportPath();
    if (!connected) {
      if (this.pausedUntil !== Infinity) this.log.warn('the transport is disconnected: no amphora is failed over until heartbeats can arrive again');
      this.pausedUntil = Infinity;
    } else if (this.seenConnects !== undefined && connects !== this.seenConnects) {
      this.pausedUntil = now + this.heartbeatTimeoutMs;
      this.log.info({ pauseMs: this.heartbeatTimeoutMs }, 'the transport reconnected: stale amphora checks resume after a heartbeat timeout');
    } else if (this.pausedUntil === Infinity) {
      this.pausedUntil = now + this.heartbeatTimeoutMs; // connected again, counted from now
    }
    this.seenConnects = connects;
    return now < this.pausedUntil;
  }

  /** applyHeartbeat, one heartbeat of the load balancer at a time in this process, tried again while rows are locked. */
  private async applyWithRetries(h: Heartbeat, lbId: string, stale: boolean, at: Date): Promise<HeartbeatOutcome> {
    let outcome: HeartbeatOutcome | undefined;
    await this.perLoadBalancer.run(lbId, async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          outcome = await this.applyHeartbeat(h, lbId, stale, at);
          return;
        } catch (err) {
          if (!(err instanceof LockBusyError) || attempt >= LOCK_ATTEMPTS) throw err;
          this.counts.lockConflicts++;
          await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MS * 2 ** (attempt - 1) * (0.5 + Math.random())));
        }
      }
    });
    return outcome!;
  }

  /** One attempt at a heartbeat of an amphora of load balancer lbId, in one transaction (LockBusyError: nothing was written). */
  private async applyHeartbeat(received: Heartbeat, lbId: string, stale: boolean, at: Date): Promise<HeartbeatOutcome> {
    return this.db.tx(async (t): Promise<HeartbeatOutcome> => {
      const state = await loadLoadBalancer(this.db, lbId, t);
      if (!state || state.lb.provisioning_status === 'DELETED') return { ignored: 'load balancer is gone' };
      const h = foldUdpTwins(received, state.udpTwins, state.udpTwinPools);
      // Again under the load balancer's lock: an operation may have retired the amphora meanwhile.
      const amp = (await this.db.models.amphora.findByPk(h.id, { raw: true, transaction: t })) as Amphora;
      const whyNow = notInService(amp) ?? (amp!.load_balancer_id !== lbId ? 'amphora moved to another load balancer' : null);
      if (whyNow) return { ignored: whyNow };
      await addListenerStatistics(this.db, h.id, h.listeners, state.listenerIds, !stale, t);
      if (stale) return { stale: true };
      const changes = statusChanges(state.snapshot, h);
      await writeStatusChanges(this.db, lbId, changes, at, t);
      // An amphora whose election is in FAULT (its VIP interface or data plane failed) cannot take
      // the VIP: it is not refreshed, so that it goes stale and is failed over like a silent one.
      if (changes.refreshHealth && h.vrrp?.state !== 'FAULT') await refreshHealth(this.db, h.id, at, t);
      // No election report (SINGLE, or the configuration dropped the section): null, "not reported".
      const holds = h.vrrp ? h.vrrp.holdsVip : null;
      const stored = amp!.vip_holder == null ? null : Boolean(amp!.vip_holder);
      if (stored !== holds) await recordVipHolder(this.db, h.id, holds, t);
      return { changes, loadBalancerId: lbId, expected: state.snapshot.listeners.filter((l) => l.enabled).length };
    });
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.checkStale()
        .then(
          () => undefined,
          (err: unknown) => {
            this.counts.checkErrors++;
            this.log.error({ err }, 'stale amphora check failed');
          },
        )
        .finally(() => {
          this.running = null;
          if (this.started) this.schedule(this.healthCheckIntervalMs);
        });
    }, delayMs);
  }

  private async startFailover(amphoraId: string, loadBalancerId: string): Promise<void> {
    this.log.warn({ amphoraId, loadBalancerId }, 'amphora stopped sending heartbeats: failing it over');
    try {
      await this.failover(amphoraId, loadBalancerId);
      this.counts.failoversTriggered++;
    } catch (err) {
      this.counts.failoversFailed++;
      this.log.error({ err, amphoraId, loadBalancerId }, 'amphora failover could not be started: it is considered again at the next check');
      await releaseClaim(this.db, amphoraId);
    }
  }
}
