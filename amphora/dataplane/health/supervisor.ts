import type { AmphoraConfig, HealthMonitor, Member, Pool } from '../../../common/amphora-config/index.ts';
import type { Logger } from '../log.ts';
import { MemberTls, tlsFingerprintOf } from '../tls/member-tls.ts';
import { CheckState } from './check-state.ts';
import { probe, type ProbeTarget, type ProbeTls } from './probes.ts';

/** A member's health as the monitors see it; broadcast to every worker. */
export interface HealthReport {
  poolId: string;
  memberId: string;
  healthy: boolean;
  /** "UP", "DOWN", "UP 1/3", "DOWN 1/2". */
  label: string;
}

export type HealthListener = (report: HealthReport) => void;

/** Checks one member of one pool in a loop: probe, record, wait `delay`, again. */
class MemberChecker {
  readonly state: CheckState;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    readonly poolId: string,
    readonly memberId: string,
    readonly fingerprint: string,
    private readonly monitor: HealthMonitor,
    private readonly target: ProbeTarget,
    private readonly secure: ProbeTls | null,
    private readonly onChange: (checker: MemberChecker) => void,
    private readonly log: Logger,
  ) {
    this.state = new CheckState(monitor.maxRetries, monitor.maxRetriesDown);
  }

  start(): void {
    // Spread the first checks so that a big pool is not probed in one burst.
    this.schedule(Math.floor(Math.random() * Math.min(this.monitor.delay, 500)));
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => this.run(), ms);
    this.timer.unref();
  }

  private run(): void {
    this.timer = null;
    probe(this.monitor, this.target, this.secure).then(
      (result) => {
        if (this.stopped) return;
        const wasUp = this.state.up;
        if (this.state.record(result.ok)) this.onChange(this);
        if (wasUp !== this.state.up) {
          this.log.info(
            { poolId: this.poolId, memberId: this.memberId, status: this.state.label, reason: result.ok ? undefined : result.reason },
            this.state.up ? 'member is up' : 'member is down',
          );
        }
        this.schedule(this.monitor.delay);
      },
      (err: Error) => {
        this.log.error({ poolId: this.poolId, memberId: this.memberId, err: err.message }, 'health check crashed');
        this.schedule(this.monitor.delay);
      },
    );
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
  }
}

/**
 * Runs the health monitors of a config, once for the whole data plane (not per worker), and reports
 * every change of a member's health. Checkers whose monitor and target did not change survive applies.
 */
export class HealthSupervisor {
  private readonly checkers = new Map<string, MemberChecker>();
  /** Pool TLS contexts for HTTPS and TLS-HELLO checks, by pool id, rebuilt when the pool's TLS changes. */
  private readonly probeTls = new Map<string, { fingerprint: string; tls: ProbeTls }>();

  constructor(
    private readonly onReport: HealthListener,
    private readonly log: Logger,
  ) {}

  update(config: AmphoraConfig): void {
    const wanted = new Set<string>();
    for (const pool of config.pools) {
      const monitor = pool.healthMonitor;
      if (monitor === null || !monitor.enabled || !pool.enabled) continue;
      const secure = monitor.type === 'HTTPS' || monitor.type === 'TLS-HELLO' ? this.probeTlsOf(pool) : null;
      for (const member of pool.members) {
        if (!member.enabled) continue; // MAINT members are not checked, as in HAProxy
        const key = `${pool.id}/${member.id}`;
        wanted.add(key);
        const target = checkTarget(member);
        const fingerprint = JSON.stringify([monitor, target, secure === null ? null : this.probeTls.get(pool.id)?.fingerprint ?? '']);
        const existing = this.checkers.get(key);
        if (existing !== undefined && existing.fingerprint === fingerprint) continue;
        existing?.stop();
        const checker = new MemberChecker(pool.id, member.id, fingerprint, monitor, target, secure, (c) => this.report(c), this.log);
        this.checkers.set(key, checker);
        checker.start();
      }
    }
    for (const [key, checker] of [...this.checkers]) {
      if (wanted.has(key)) continue;
      checker.stop();
      this.checkers.delete(key);
    }
    const pools = new Set(config.pools.map((p) => p.id));
    for (const id of [...this.probeTls.keys()]) if (!pools.has(id)) this.probeTls.delete(id);
  }

  /** A TLS-enabled pool's context (client certificate, versions, ciphers); OpenSSL defaults for a plain pool. */
  private probeTlsOf(pool: Pool): ProbeTls {
    const fingerprint = pool.tls === null ? 'plain' : tlsFingerprintOf(pool.tls);
    const known = this.probeTls.get(pool.id);
    if (known !== undefined && known.fingerprint === fingerprint) return known.tls;
    const member = pool.tls === null ? null : new MemberTls(pool.tls);
    const tls: ProbeTls = { context: member?.context, alpn: member?.httpAlpn };
    this.probeTls.set(pool.id, { fingerprint, tls });
    return tls;
  }

  private report(checker: MemberChecker): void {
    this.onReport({ poolId: checker.poolId, memberId: checker.memberId, healthy: checker.state.up, label: checker.state.label });
  }

  /** Every checked member's current health, to bring a new or reconfigured worker up to date. */
  reports(): HealthReport[] {
    return [...this.checkers.values()].map((c) => ({ poolId: c.poolId, memberId: c.memberId, healthy: c.state.up, label: c.state.label }));
  }

  stop(): void {
    for (const checker of this.checkers.values()) checker.stop();
    this.checkers.clear();
  }
}

/** monitor_address / monitor_port override the member's own address and port for checks only. */
function checkTarget(member: Member): ProbeTarget {
  return { address: member.monitorAddress ?? member.address, port: member.monitorPort ?? member.port };
}
