// The agent's heartbeat loop: every interval, a snapshot of the data plane becomes a contract §4.2 v3
// heartbeat (HeartbeatBuilder: deltas since the previous one, disabled listeners left out) plus the
// running configVersion, and is handed to the transport. The transport keeps it in its outbox until
// RabbitMQ confirms it, across disconnections, so the loop never waits for a publish: it only counts
// the confirmations and logs the failures.
import type { Logger } from '../../common/logging.ts';
import type { Heartbeat, VrrpReport } from '../../common/messages.ts';
import { TransportClosedError } from '../../common/transport/transport.ts';
import type { DataPlane } from '../dataplane/dataplane.ts';
import { HeartbeatBuilder } from '../dataplane/stats/heartbeat.ts';

export interface HeartbeatLoopOptions {
  amphoraId: string;
  intervalMs: number;
  dataPlane: Pick<DataPlane, 'snapshot'>;
  publish(h: Heartbeat): Promise<void>;
  log: Logger;
  /** ACTIVE_STANDBY: the election's state for the heartbeat's `vrrp` field (undefined: none). */
  vrrp?: () => VrrpReport | undefined;
}

export interface HeartbeatCounters {
  /** Heartbeats built and handed to the transport. */
  sent: number;
  /** Confirmed by the broker. */
  confirmed: number;
  /** Given up (outbox overflow, transport closed) or never built (snapshot failed). */
  failed: number;
  /** Handed over, not yet confirmed (waiting in the transport's outbox). */
  pending: number;
}

/** Sends one heartbeat at once, then one per interval (fixed rate; a slow snapshot delays only the next). */
export class HeartbeatLoop {
  private readonly builder: HeartbeatBuilder;
  private readonly counts: HeartbeatCounters = { sent: 0, confirmed: 0, failed: 0, pending: 0 };
  private timer?: NodeJS.Timeout;
  private running: Promise<void> | null = null;
  private active = false;
  private beatAgain = false;

  constructor(private readonly options: HeartbeatLoopOptions) {
    this.builder = new HeartbeatBuilder(options.amphoraId);
  }

  start(): void {
    if (this.active) return;
    this.active = true;
    this.schedule(0);
  }

  /** Stops the loop; waits for a heartbeat being built. Heartbeats already handed over stay with the transport. */
  async stop(): Promise<void> {
    this.active = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.running) await this.running;
  }

  /** Sends a heartbeat as soon as possible (the election changed state), then keeps the interval from it. */
  beatNow(): void {
    if (!this.active) return;
    if (this.running) {
      this.beatAgain = true; // the one being built may have read the state before the change
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.schedule(0);
  }

  counters(): HeartbeatCounters {
    return { ...this.counts };
  }

  private schedule(delayMs: number): void {
    if (!this.active) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const startedAt = Date.now();
      this.running = this.beat().finally(() => {
        this.running = null;
        const again = this.beatAgain;
        this.beatAgain = false;
        this.schedule(again ? 0 : Math.max(0, this.options.intervalMs - (Date.now() - startedAt)));
      });
    }, delayMs);
  }

  private async beat(): Promise<void> {
    const { log } = this.options;
    let heartbeat: Heartbeat;
    try {
      const snapshot = await this.options.dataPlane.snapshot();
      heartbeat = { ...this.builder.build(snapshot), configVersion: snapshot.configVersion };
      const vrrp = this.options.vrrp?.();
      if (vrrp) heartbeat.vrrp = vrrp;
    } catch (err) {
      this.counts.failed++;
      log.error({ err }, 'cannot take a data plane snapshot; heartbeat skipped');
      return;
    }
    this.counts.sent++;
    this.counts.pending++;
    log.debug({ seq: heartbeat.seq, configVersion: heartbeat.configVersion, listeners: Object.keys(heartbeat.listeners).length }, 'heartbeat');
    this.options.publish(heartbeat).then(
      () => {
        this.counts.pending--;
        this.counts.confirmed++;
      },
      (err: unknown) => {
        this.counts.pending--;
        this.counts.failed++;
        // Closing gives up what RabbitMQ never confirmed (the transport logs how many): a warning here.
        if (err instanceof TransportClosedError) log.warn({ err, seq: heartbeat.seq }, 'heartbeat not delivered before the transport closed');
        else log.error({ err, seq: heartbeat.seq }, 'heartbeat not delivered');
      },
    );
  }
}
