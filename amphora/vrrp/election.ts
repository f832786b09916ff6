// The election state machine (VRRPv3-like, RFC 9568 §6.4, over authenticated unicast UDP). It decides;
// the caller's callbacks act (send an advert, add or remove the VIPs, check health). Time comes from
// an injected clock, so the unit tests drive it with a fake one.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { compareAddresses, type Advert, type WireState } from './packet.ts';

export type VrrpState = 'INIT' | 'BACKUP' | 'MASTER' | 'FAULT';

export interface StateChange {
  from: VrrpState;
  to: VrrpState;
  reason: string;
  /** Milliseconds since 1970 (the clock's). */
  at: number;
}

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

export interface HealthResult {
  ok: boolean;
  /** Why not, when not ok (logged and reported in the state change). */
  reason?: string;
}

/** An advert to send, before the transport adds epoch, sender and MAC. */
export interface OutgoingAdvert {
  priority: number;
  state: WireState;
  advertIntervalMs: number;
  seq: bigint;
}

export interface ElectionActions {
  /** Sends an advert to every peer. Must not throw (the transport logs send errors). */
  send(advert: OutgoingAdvert): void;
  /** Adds the VIPs and announces them (gratuitous ARP / unsolicited NA). */
  acquire(): Promise<void>;
  /** Removes the VIPs. */
  release(): Promise<void>;
  /** Own health: interface up, data plane serving. Called once per advert interval, never twice at once. */
  checkHealth(): Promise<HealthResult>;
  /**
   * Called every advert interval and at every change: whether this node holds the VIPs now, and the
   * resignation advert (priority 0) to send if this process dies while MASTER. The guardian uses it.
   */
  heartbeat(beat: { master: boolean; resign: OutgoingAdvert | null }): void;
}

export interface ElectionOptions {
  /** This node's address (the tie-break compares it with the peer's). */
  localAddress: string;
  /** 1..254; higher wins. */
  priority: number;
  advertIntervalMs: number;
  /** A BACKUP of higher priority takes the VIP from a lower-priority MASTER. Off by default. */
  preempt: boolean;
  /** Adverts missed before a BACKUP takes over (VRRP: 3). */
  deadIntervals: number;
  /** How many peers are configured: with one, a resigning MASTER is replaced without the skew wait. */
  peerCount: number;
}

/**
 * Skew added to the master-down interval: VRRPv3's (256 − priority)/256 × interval, divided by 4.
 * It only orders several BACKUPs (the highest priority takes over first) and two nodes that start
 * at once; a quarter of VRRPv3's keeps that order while a dead MASTER is replaced sooner. With a
 * single peer, once that peer was heard as MASTER there is nobody left to order: its silence is
 * timed without the skew (see onAdvert).
 */
export function skewMs(priority: number, intervalMs: number): number {
  return ((256 - priority) * intervalMs) / 256 / 4;
}

/**
 * How long a MASTER that resigns because it stops or its process died (not because it is unhealthy)
 * keeps the VIPs after sending the resignation: half an advert interval, at most 100 ms. Its data plane
 * still serves, so the clients keep getting answers while the peer takes the VIPs and announces them
 * (a few milliseconds unloaded, tens loaded); the two hold them at the same time for about this
 * long (plus the time `ip addr del` takes to run, which grows under load), well under the one
 * interval the split-brain rule allows. The cap: a takeover after a
 * resignation takes far less than 100 ms even on a loaded machine, and a longer overlap at 1 s
 * intervals would buy nothing.
 */
export function resignGraceMs(intervalMs: number): number {
  return Math.min(intervalMs / 2, 100);
}

export function masterDownMs(opts: { priority: number; deadIntervals: number }, masterIntervalMs: number): number {
  return opts.deadIntervals * masterIntervalMs + skewMs(opts.priority, masterIntervalMs);
}

export interface ElectionEvents {
  state: [StateChange];
}

export class Election extends EventEmitter<ElectionEvents> {
  private current: VrrpState = 'INIT';
  private seq = 0n;
  private masterIntervalMs: number;
  private masterDownTimer: TimerHandle | null = null;
  private tickTimer: TimerHandle | null = null;
  private checking = false;
  private stopped = true;
  /** VIP operations run one after the other, in the order the transitions asked for them. */
  private vipChain: Promise<void> = Promise.resolve();
  private holding = false;

  constructor(
    private opts: ElectionOptions,
    private readonly actions: ElectionActions,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    super();
    this.masterIntervalMs = opts.advertIntervalMs;
  }

  get state(): VrrpState {
    return this.current;
  }

  /** True while the VIPs are (being) configured here. */
  get holdsVip(): boolean {
    return this.holding;
  }

  /** Waits until the VIP operations asked for so far are done (tests, shutdown). */
  settled(): Promise<void> {
    return this.vipChain;
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.log.info({ priority: this.opts.priority, advertIntervalMs: this.opts.advertIntervalMs, preempt: this.opts.preempt }, 'vrrp election starting');
    const health = await this.runCheck();
    if (this.stopped) return;
    if (health && !health.ok) this.toFault(health.reason ?? 'unhealthy');
    else this.toBackup('started');
    this.scheduleTick();
  }

  /**
   * Leaves MASTER and stops: resigns (so the peer takes over at once), keeps the VIPs for
   * resignGraceMs while the peer takes them, then removes them.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.tickTimer?.cancel();
    this.masterDownTimer?.cancel();
    const wasMaster = this.current === 'MASTER';
    this.setState('INIT', 'stopping');
    // Before resigning: the guardian must not resign a second time if this process dies meanwhile.
    this.actions.heartbeat({ master: false, resign: null });
    if (wasMaster) this.resignThenRelease();
    await this.vipChain;
  }

  /**
   * Adopts new settings in the current state: a MASTER keeps the VIPs (and tells its peers the new
   * priority and interval at once), a BACKUP keeps waiting for its MASTER (whose next advert re-arms
   * the master-down timer with the new rules) and says hello, so that a new peer that is MASTER
   * answers at once. The local address cannot change here.
   */
  reconfigure(changes: Omit<ElectionOptions, 'localAddress'>): void {
    const intervalChanged = changes.advertIntervalMs !== this.opts.advertIntervalMs;
    this.opts = { ...this.opts, ...changes };
    this.log.info({ priority: this.opts.priority, advertIntervalMs: this.opts.advertIntervalMs, preempt: this.opts.preempt, peerCount: this.opts.peerCount }, 'vrrp election reconfigured');
    if (this.stopped) return;
    if (intervalChanged) {
      this.tickTimer?.cancel();
      this.scheduleTick();
    }
    if (this.current === 'MASTER') this.sendAdvert();
    else if (this.current === 'BACKUP') this.sendHello();
  }

  /**
   * Own health failed now (e.g. the data plane process exited): FAULT at once, without waiting for
   * the next check. The periodic check brings it back to BACKUP when healthy again.
   */
  fail(reason: string): void {
    if (!this.stopped && (this.current === 'MASTER' || this.current === 'BACKUP')) this.toFault(reason);
  }

  /** An authenticated, fresh advert from a peer. */
  onAdvert(advert: Advert): void {
    if (this.stopped) return;
    if (advert.state === 'BACKUP') {
      // A peer's hello (it has just become BACKUP): a MASTER answers at once, so the peer learns of
      // it without waiting for the next interval. It never changes anyone's state.
      if (this.current === 'MASTER') this.sendAdvert();
      return;
    }
    switch (this.current) {
      case 'BACKUP':
        if (advert.priority === 0) {
          // The skew orders several BACKUPs; the only peer resigning leaves no one to wait for.
          const wait = this.opts.peerCount > 1 ? skewMs(this.opts.priority, this.masterIntervalMs) : 0;
          this.armMasterDown(wait, `peer ${advert.sender} resigned`);
        } else if (!this.opts.preempt || advert.priority >= this.opts.priority) {
          this.masterIntervalMs = advert.advertIntervalMs;
          const down = this.opts.peerCount > 1 ? masterDownMs(this.opts, this.masterIntervalMs) : this.opts.deadIntervals * this.masterIntervalMs;
          this.armMasterDown(down, `no advert from MASTER ${advert.sender}`);
        }
        // else: preempting a lower-priority MASTER: let the master-down timer run out.
        return;
      case 'MASTER':
        if (advert.priority !== 0 && this.peerWins(advert)) {
          this.masterIntervalMs = advert.advertIntervalMs;
          this.toBackup(`peer ${advert.sender} has priority ${advert.priority} (own ${this.opts.priority})`);
        } else {
          // A resigning peer, or a second MASTER that must yield: assert ourselves now, not at the next tick.
          this.sendAdvert();
        }
        return;
      default:
        return; // INIT and FAULT ignore adverts
    }
  }

  private peerWins(advert: Advert): boolean {
    if (advert.priority !== this.opts.priority) return advert.priority > this.opts.priority;
    return compareAddresses(advert.sender, this.opts.localAddress) > 0;
  }

  private scheduleTick(): void {
    if (this.stopped) return;
    this.tickTimer = this.clock.setTimeout(() => this.tick(), this.opts.advertIntervalMs);
  }

  private tick(): void {
    if (this.stopped) return;
    this.scheduleTick();
    if (this.current === 'MASTER') this.sendAdvert();
    else this.beat();
    void this.runCheck().then((health) => {
      if (!health || this.stopped) return;
      if (!health.ok && (this.current === 'MASTER' || this.current === 'BACKUP')) this.toFault(health.reason ?? 'unhealthy');
      else if (health.ok && this.current === 'FAULT') this.toBackup('healthy again');
    });
  }

  /** Runs the health check unless one is still running (then null). A throwing check counts as failed. */
  private async runCheck(): Promise<HealthResult | null> {
    if (this.checking) return null;
    this.checking = true;
    try {
      return await this.actions.checkHealth();
    } catch (err) {
      return { ok: false, reason: `health check failed: ${(err as Error).message}` };
    } finally {
      this.checking = false;
    }
  }

  private nextSeq(): bigint {
    this.seq += 1n;
    return this.seq;
  }

  private sendAdvert(): void {
    this.actions.send({ priority: this.opts.priority, state: 'MASTER', advertIntervalMs: this.opts.advertIntervalMs, seq: this.nextSeq() });
    this.beat();
  }

  /**
   * Announces a new BACKUP (after a start or a FAULT) to the peers. Besides making the MASTER answer at
   * once, sending resolves the peers' neighbour entries for this node: after an interface was down,
   * the MASTER's entry for it is stuck INCOMPLETE (ARP retried once a second) and its adverts would
   * not arrive for up to a second, long enough for this node to take over wrongly.
   */
  private sendHello(): void {
    this.actions.send({ priority: this.opts.priority, state: 'BACKUP', advertIntervalMs: this.opts.advertIntervalMs, seq: this.nextSeq() });
  }

  /** Tells the guardian the current state; while MASTER with a resignation reserved for a sequence number above every advert sent. */
  private beat(): void {
    const master = this.current === 'MASTER';
    const resign = master ? { priority: 0, state: 'FAULT' as const, advertIntervalMs: this.opts.advertIntervalMs, seq: this.seq + 1n } : null;
    if (master) this.seq += 1n; // the reserved number is never used by a normal advert
    this.actions.heartbeat({ master, resign });
  }

  private armMasterDown(ms: number, reason: string): void {
    this.masterDownTimer?.cancel();
    this.masterDownTimer = this.clock.setTimeout(() => {
      this.masterDownTimer = null;
      if (!this.stopped && this.current === 'BACKUP') this.toMaster(reason);
    }, ms);
  }

  private setState(to: VrrpState, reason: string): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    const change: StateChange = { from, to, reason, at: this.clock.now() };
    this.log.info({ from, to, reason, priority: this.opts.priority }, `vrrp ${from} -> ${to}`);
    this.emit('state', change);
  }

  private toMaster(reason: string): void {
    this.setState('MASTER', reason);
    this.sendAdvert(); // first, so that a peer that also thinks it is MASTER yields at once
    this.holding = true;
    this.enqueue('acquire', async () => {
      if (this.current !== 'MASTER') return; // stepped down meanwhile: a later release follows
      try {
        await this.actions.acquire();
      } catch (err) {
        this.log.error({ err }, 'vrrp: cannot add the VIPs');
        if (this.current === 'MASTER') this.toFault(`cannot add the VIPs: ${(err as Error).message}`);
      }
    });
  }

  private toBackup(reason: string): void {
    const wasMaster = this.current === 'MASTER';
    this.setState('BACKUP', reason);
    if (wasMaster) this.releaseOnly();
    else this.sendHello();
    this.beat();
    this.armMasterDown(masterDownMs(this.opts, this.masterIntervalMs), 'no advert from a MASTER');
  }

  private toFault(reason: string): void {
    const wasMaster = this.current === 'MASTER';
    this.masterDownTimer?.cancel();
    this.masterDownTimer = null;
    this.setState('FAULT', reason);
    this.beat();
    if (wasMaster) this.releaseThenResign();
  }

  private releaseOnly(): void {
    this.holding = false;
    this.enqueue('release', () => this.actions.release());
  }

  /**
   * Unhealthy: removes the VIPs, then tells the peers (priority 0), so that they never hold them at
   * the same time as this node (its data plane may not serve; traffic must not come here any more).
   */
  private releaseThenResign(): void {
    this.holding = false;
    this.enqueue('release', async () => {
      await this.actions.release();
      // Numbered when sent: adverts sent meanwhile (a hello) must not make it look like a replay.
      this.actions.send({ priority: 0, state: 'FAULT', advertIntervalMs: this.opts.advertIntervalMs, seq: this.nextSeq() });
    });
  }

  /** Healthy but leaving: tells the peers first, lets this data plane serve during the takeover, then removes the VIPs. */
  private resignThenRelease(): void {
    this.enqueue('release', async () => {
      this.actions.send({ priority: 0, state: 'FAULT', advertIntervalMs: this.opts.advertIntervalMs, seq: this.nextSeq() });
      await new Promise<void>((resolve) => this.clock.setTimeout(resolve, resignGraceMs(this.opts.advertIntervalMs)));
      this.holding = false;
      await this.actions.release();
    });
  }

  private enqueue(what: string, op: () => Promise<void>): void {
    this.vipChain = this.vipChain.then(op).catch((err: unknown) => {
      this.log.error({ err }, `vrrp: ${what} of the VIPs failed`);
    });
  }
}
