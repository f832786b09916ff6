// The public interface of the election for the amphora agent and the standalone command:
// startVrrp(config, options) wires the state machine to UDP adverts, the VIPs, the health checks and
// the guardian. See INTEGRATION.md.
import { EventEmitter } from 'node:events';
import { setPriority } from 'node:os';
import type { Logger } from 'pino';
import { createLogger } from '../../common/logging.ts';
import { VrrpConfigSchema, type VrrpConfig, type VrrpConfigInput } from './config.ts';
import { Election, masterDownMs, realClock, resignGraceMs, type HealthResult, type StateChange, type VrrpState } from './election.ts';
import { GuardianSlot, type GuardianOptions } from './guardian.ts';
import { interfaceHealth } from './health.ts';
import { authKeyBytes, newEpoch, type RejectReason } from './packet.ts';
import { UdpTransport } from './transport.ts';
import { IpVips, prefixOf, type VipOperations } from './vip.ts';

export { VrrpConfigSchema, DEFAULT_VRRP_PORT, type VrrpConfig, type VrrpConfigInput } from './config.ts';
export type { HealthResult, StateChange, VrrpState } from './election.ts';
export { tcpHealth, interfaceHealth } from './health.ts';

export interface VrrpOptions {
  log?: Logger;
  /** The data plane's health, asked once per advert interval (after the interface check). */
  healthCheck?: () => Promise<HealthResult> | HealthResult;
  /** Check that the interface is up (default true). */
  checkInterface?: boolean;
  /** Run the guardian (default true). Without it a SIGKILLed election leaves its VIPs behind. */
  guardian?: boolean;
  /** Re-announce the VIPs this long after taking them (default 1000 ms; 0: only once). */
  reannounceAfterMs?: number;
  /**
   * Nice value this process (and the guardian and `ip` helpers it starts) runs at, default -10; null
   * leaves it. The takeover is latency-critical: on an amphora whose data plane saturates the CPU, a
   * delayed election means a later takeover, or a false one when its adverts leave late.
   */
  nice?: number | null;
}

export interface VrrpStatus {
  state: VrrpState;
  holdsVip: boolean;
  priority: number;
  advertIntervalMs: number;
  vips: string[];
  /** When the current state was entered (ms since 1970). */
  since: number;
  lastChange: StateChange | null;
  rejectedAdverts: Record<RejectReason, number>;
  guardianPid: number | undefined;
}

export interface VrrpEvents {
  state: [StateChange];
}

/** The settings a running election adopts in place (reconfigure); a change of any other needs a restart. */
const IN_PLACE = ['peers', 'priority', 'preempt', 'advertIntervalMs', 'deadIntervals'] as const;

function guardianOptions(config: VrrpConfig): GuardianOptions {
  return {
    device: config.interface,
    vips: config.vips.map(prefixOf),
    peers: config.peers,
    port: config.port,
    // Below the peer's master-down interval: a hung election resigns before the peer takes over on its own.
    timeoutMs: (config.deadIntervals - 0.5) * config.advertIntervalMs,
    graceMs: resignGraceMs(config.advertIntervalMs),
  };
}

export class Vrrp extends EventEmitter<VrrpEvents> {
  private lastChange: StateChange | null = null;
  private since = Date.now();
  private reannounceTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private settings: VrrpConfig;

  constructor(
    config: VrrpConfig,
    private readonly election: Election,
    private readonly transport: UdpTransport,
    private readonly vips: VipOperations,
    private readonly guardian: GuardianSlot | null,
    private readonly log: Logger,
    private readonly reannounceAfterMs: number,
  ) {
    super();
    this.settings = config;
    election.on('state', (change) => {
      this.lastChange = change;
      this.since = change.at;
      this.emit('state', change);
    });
  }

  /** The settings in force (the last reconfigure's). */
  get config(): VrrpConfig {
    return this.settings;
  }

  get state(): VrrpState {
    return this.election.state;
  }

  get holdsVip(): boolean {
    return this.election.holdsVip;
  }

  status(): VrrpStatus {
    return {
      state: this.state,
      holdsVip: this.holdsVip,
      priority: this.config.priority,
      advertIntervalMs: this.config.advertIntervalMs,
      vips: this.config.vips,
      since: this.since,
      lastChange: this.lastChange,
      rejectedAdverts: { ...this.transport.rejected },
      guardianPid: this.guardian?.pid,
    };
  }

  /** Own health failed now (the data plane exited, ...): FAULT at once, VIPs released, peers told. */
  fail(reason: string): void {
    this.election.fail(reason);
  }

  /**
   * Adopts new settings without leaving the current state: a MASTER keeps the VIPs throughout. In
   * place: peers, priority, preempt, advertIntervalMs, deadIntervals (the guardian is replaced when
   * the peers or the timing change). Resolves false, changing nothing, when another setting changed
   * (interface, vips, localAddress, port, routerId, authKey): those need a restart (stop, startVrrp).
   */
  async reconfigure(input: VrrpConfigInput): Promise<boolean> {
    if (this.stopped) throw new Error('vrrp: reconfigure after stop');
    const next = VrrpConfigSchema.parse(input);
    const cur = this.settings;
    const same = (k: keyof VrrpConfig) => JSON.stringify(cur[k]) === JSON.stringify(next[k]);
    const changed = (Object.keys(next) as (keyof VrrpConfig)[]).filter((k) => !same(k));
    if (changed.some((k) => !(IN_PLACE as readonly string[]).includes(k))) {
      this.log.info({ changed }, 'vrrp: these settings need a restart');
      return false;
    }
    if (changed.length === 0) return true;
    if (this.guardian && (!same('peers') || !same('advertIntervalMs') || !same('deadIntervals'))) await this.guardian.swap(guardianOptions(next));
    this.transport.setPeers(next.peers, staleAfterMs(next));
    if (!same('advertIntervalMs')) await this.vips.setArpRetry(arpRetryMs(next));
    this.election.reconfigure(electionOptions(next));
    this.settings = next;
    this.log.info({ changed, peers: next.peers, priority: next.priority, advertIntervalMs: next.advertIntervalMs, preempt: next.preempt }, 'vrrp reconfigured in place');
    return true;
  }

  /** If MASTER: resigns (the peer takes over at once), keeps the VIPs for the grace, removes them. Then closes everything. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.reannounceTimer) clearTimeout(this.reannounceTimer);
    await this.election.stop();
    await this.guardian?.stop();
    await this.transport.close();
    this.vips.close();
    this.log.info('vrrp stopped');
  }

  /** @internal */
  scheduleReannounce(): void {
    if (this.reannounceTimer) clearTimeout(this.reannounceTimer);
    if (this.reannounceAfterMs <= 0) return;
    this.reannounceTimer = setTimeout(() => {
      this.reannounceTimer = null;
      if (this.stopped || !this.holdsVip) return;
      this.vips.announce().catch((err: unknown) => this.log.warn({ err }, 'vrrp: cannot announce the VIPs again'));
    }, this.reannounceAfterMs);
  }
}

const staleAfterMs = (c: VrrpConfig) => 10 * masterDownMs(c, c.advertIntervalMs);
const arpRetryMs = (c: VrrpConfig) => Math.min(1000, c.advertIntervalMs);
const electionOptions = (c: VrrpConfig) => ({
  priority: c.priority,
  advertIntervalMs: c.advertIntervalMs,
  preempt: c.preempt,
  deadIntervals: c.deadIntervals,
  peerCount: c.peers.length,
});

/** Validates the config, prepares the interface, starts the guardian, binds the advert socket and starts the election (BACKUP or FAULT). */
export async function startVrrp(input: VrrpConfigInput, options: VrrpOptions = {}): Promise<Vrrp> {
  const config = VrrpConfigSchema.parse(input);
  const log = (options.log ?? createLogger('vrrp')).child({ component: 'vrrp', routerId: config.routerId, localAddress: config.localAddress });
  const nice = options.nice === undefined ? -10 : options.nice;
  if (nice !== null) {
    try {
      setPriority(nice);
    } catch (err) {
      log.warn({ err: (err as Error).message, nice }, 'vrrp: cannot change the scheduling priority; running at the current one');
    }
  }
  const vips = new IpVips(config.interface, config.vips, log);
  await vips.prepare(arpRetryMs(config));
  const transport = new UdpTransport(
    {
      localAddress: config.localAddress,
      peers: config.peers,
      port: config.port,
      routerId: config.routerId,
      key: authKeyBytes(config.authKey),
      epoch: newEpoch(),
      staleAfterMs: staleAfterMs(config),
    },
    log,
  );

  let election: Election | null = null;
  let vrrp: Vrrp | null = null;
  let guardian: GuardianSlot | null = null;
  if (options.guardian !== false) {
    guardian = new GuardianSlot(log, (why) => election?.fail(why));
    await guardian.start(guardianOptions(config));
  }

  const checkInterface = options.checkInterface !== false;
  election = new Election(
    { localAddress: config.localAddress, ...electionOptions(config) },
    {
      send: (a) => transport.send(a),
      acquire: async () => {
        await vips.acquire();
        vrrp?.scheduleReannounce();
      },
      release: () => vips.release(),
      checkHealth: async () => {
        if (guardian && guardian.pid === undefined) return { ok: false, reason: 'guardian not running' };
        if (checkInterface) {
          const up = interfaceHealth(config.interface);
          if (!up.ok) return up;
        }
        return options.healthCheck ? await options.healthCheck() : { ok: true };
      },
      heartbeat: ({ resign }) => guardian?.beat(resign ? transport.encode(resign) : null),
    },
    realClock,
    log,
  );
  vrrp = new Vrrp(config, election, transport, vips, guardian, log, options.reannounceAfterMs ?? 1000);
  try {
    await transport.open((a) => election!.onAdvert(a));
    await election.start();
  } catch (err) {
    await guardian?.stop();
    await transport.close();
    vips.close();
    throw err;
  }
  return vrrp;
}
