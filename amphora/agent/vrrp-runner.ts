// Runs the ACTIVE_STANDBY election (amphora/vrrp) from the `vrrp` section of the running
// configuration: starts it with the first configuration that has one, restarts it when a later
// configuration changes its settings (or reconfigures it in place when the election can adopt them),
// stops it when a configuration drops the section and when the agent stops (the VIP released, the
// peer told). It feeds the election the data plane's health, reports its state for the heartbeats,
// and shares the data plane's persistence entries with the peer (persistence-sync.ts).
import { networkInterfaces } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AmphoraConfig, Vrrp } from '../../common/amphora-config/index.ts';
import type { Logger } from '../../common/logging.ts';
import type { VrrpReport } from '../../common/messages.ts';
import type { DataPlane } from '../dataplane/dataplane.ts';
import { PersistenceJournal, persistenceTtl } from '../dataplane/balancer/persistence-journal.ts';
import { SyncReceiver, SyncSender } from './persistence-sync.ts';

/** What the election is started with (amphora/vrrp's VrrpConfigInput; the advert port keeps its default). */
export interface ElectionSettings {
  interface: string;
  vips: string[];
  localAddress: string;
  peers: string[];
  routerId: number;
  priority: number;
  advertIntervalMs: number;
  preempt: boolean;
  authKey: string;
}

export interface ElectionHealth {
  ok: boolean;
  reason?: string;
}

/** The part of amphora/vrrp's Vrrp object the agent uses. */
export interface ElectionHandle {
  status(): { state: string; holdsVip: boolean };
  on(event: 'state', listener: (change: { from: string; to: string; reason: string }) => void): unknown;
  /** Own health failed now: FAULT at once, the VIP released. */
  fail(reason: string): void;
  /** Hands the VIP to the peer (resignation first, the VIP released after a short grace) and closes everything. */
  stop(): Promise<void>;
  /**
   * Adopts new settings without releasing the VIP (new peers, priority, preempt, advert interval);
   * resolves false, changing nothing, when the change needs a restart (interface, VIPs, own address,
   * key, router id).
   */
  reconfigure?(settings: ElectionSettings): Promise<boolean>;
}

export type StartElection = (settings: ElectionSettings, options: { log: Logger; healthCheck: () => ElectionHealth }) => Promise<ElectionHandle>;

export interface VrrpRunnerOptions {
  dataPlane: DataPlane;
  log: Logger;
  /** amphora/vrrp's startVrrp; null: this agent cannot run an election (configurations asking for one are served, reported FAULT). */
  startElection: StartElection | null;
  /** The election's state changed (a heartbeat should go out now). */
  onChange(): void;
}

/** How long a restart of an election holding the VIP waits for the peers to get the persistence journal. */
const RESTART_SYNC_WAIT_MS = 2000;

const STATES = new Set<VrrpReport['state']>(['INIT', 'BACKUP', 'MASTER', 'FAULT', 'STOPPED']);

export class VrrpRunner {
  private election: ElectionHandle | null = null;
  private settings: ElectionSettings | null = null;
  private section: Vrrp | null = null;
  private failedToStart = false;
  private stopped = false;
  private receiver: SyncReceiver | null = null;
  private senders: SyncSender[] = [];
  private syncKey = '';
  private readonly journal: PersistenceJournal;
  private readonly log: Logger;
  /** update() and stop() run one at a time. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: VrrpRunnerOptions) {
    this.log = opts.log.child({ component: 'vrrp-runner' });
    this.journal = new PersistenceJournal((poolId) => persistenceTtl(opts.dataPlane.config, poolId));
    opts.dataPlane.onPersistenceLearned((poolId, key, serverId) => {
      if (!this.section) return;
      this.journal.record(poolId, key, serverId);
      for (const sender of this.senders) sender.send([poolId, key, serverId]);
    });
    // FAULT at once (the VIP goes to the peer); the election's next check brings it back once serving.
    opts.dataPlane.onStoppedServing((reason) => {
      if (!this.election) return;
      this.log.error({ reason }, 'vrrp: the data plane stopped serving; the election goes FAULT now');
      this.election.fail(reason);
    });
  }

  /** The heartbeat's `vrrp` field; undefined when the running configuration has no election. */
  report(): VrrpReport | undefined {
    if (!this.section) return undefined;
    if (!this.election) return { state: this.stopped ? 'STOPPED' : this.failedToStart ? 'FAULT' : 'INIT', holdsVip: false };
    const { state, holdsVip } = this.election.status();
    return { state: STATES.has(state as VrrpReport['state']) ? (state as VrrpReport['state']) : 'FAULT', holdsVip };
  }

  /** Follows the configuration the data plane runs now (after each successful apply). Never throws: failures are logged and reported FAULT. */
  update(config: AmphoraConfig | null): Promise<void> {
    const run = this.chain.then(() => this.updateNow(config));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Stops the election (the VIP released) and the persistence sync. */
  stop(): Promise<void> {
    const run = this.chain.then(async () => {
      this.stopped = true;
      await this.stopElection('the agent stops');
      await this.stopSync();
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async updateNow(config: AmphoraConfig | null): Promise<void> {
    if (this.stopped) return;
    const section = config?.vrrp ?? null;
    this.log.debug({ configVersion: config?.configVersion ?? null, vrrp: section !== null }, 'vrrp: following the running configuration');
    if (!section) {
      this.section = null;
      await this.stopElection('the configuration has no vrrp section');
      await this.stopSync();
      return;
    }
    this.section = section;
    await this.updateSync(section);
    let settings: ElectionSettings;
    try {
      settings = electionSettings(config!, section);
    } catch (err) {
      this.failedToStart = true;
      this.log.error({ err }, 'vrrp: cannot derive the election settings; reported FAULT');
      await this.stopElection('invalid settings');
      return;
    }
    if (this.election && sameSettings(this.settings, settings)) return;
    if (this.election?.reconfigure) {
      // E.g. the health manager replaced the failed peer: the survivor keeps the VIP, the new
      // amphora joins as BACKUP, and the VIP does not move a second time.
      let adopted = false;
      try {
        adopted = await this.election.reconfigure(settings);
      } catch (err) {
        this.log.error({ err }, 'vrrp: reconfiguring the election failed; restarting it');
      }
      if (adopted) {
        this.settings = settings;
        this.log.info(describe(settings), 'vrrp: election reconfigured in place');
        this.onStateChange();
        return;
      }
    }
    if (this.election?.status().holdsVip) {
      // Restarting releases the VIP, which the peer (maybe just booted) then takes: give it the
      // persistence journal first (bounded wait; the VIP moves regardless).
      await Promise.race([Promise.all(this.senders.map((s) => s.dumped)), sleep(RESTART_SYNC_WAIT_MS)]);
    }
    await this.stopElection('its settings changed');
    await this.startElection(settings);
  }

  private async startElection(settings: ElectionSettings): Promise<void> {
    if (!this.opts.startElection) {
      this.failedToStart = true;
      this.log.error('vrrp: the configuration asks for an election but this agent has none; reported FAULT');
      return;
    }
    try {
      const election = await this.opts.startElection(settings, {
        log: this.opts.log,
        healthCheck: () => this.opts.dataPlane.serving(),
      });
      this.election = election;
      this.settings = settings;
      this.failedToStart = false;
      election.on('state', (change) => {
        this.log.info({ from: change.from, to: change.to, reason: change.reason }, 'vrrp: state changed');
        this.onStateChange();
      });
      this.log.info(describe(settings), 'vrrp: election started');
      this.onStateChange();
    } catch (err) {
      this.failedToStart = true;
      this.log.error({ err }, 'vrrp: the election did not start; reported FAULT');
    }
  }

  private async stopElection(reason: string): Promise<void> {
    const election = this.election;
    if (!election) return;
    this.election = null;
    this.settings = null;
    try {
      await election.stop();
      this.log.info({ reason }, 'vrrp: election stopped');
    } catch (err) {
      this.log.error({ err, reason }, 'vrrp: stopping the election failed');
    }
    this.onStateChange();
  }

  private onStateChange(): void {
    this.opts.onChange();
  }

  private async updateSync(section: Vrrp): Promise<void> {
    const key = JSON.stringify([section.address, section.syncPort, section.peers, section.authKey]);
    if (key === this.syncKey) return;
    await this.stopSync();
    const authKey = Buffer.from(section.authKey, 'hex');
    this.receiver = new SyncReceiver({
      address: section.address,
      port: section.syncPort,
      key: authKey,
      log: this.log,
      onEntries: (entries) => {
        for (const [poolId, k, serverId] of entries) {
          this.journal.record(poolId, k, serverId);
          this.opts.dataPlane.importPersistence(poolId, k, serverId);
        }
      },
    });
    try {
      await this.receiver.start();
    } catch (err) {
      // The VIP still moves without it; sticky clients may change member on failover.
      this.log.error({ err, address: section.address, port: section.syncPort }, 'persistence sync: cannot listen; persistence is not shared');
      this.receiver = null;
    }
    this.senders = section.peers.map(
      (peer) => new SyncSender({ peer, port: section.syncPort, localAddress: section.address, key: authKey, log: this.log, dump: () => this.journal.entries() }),
    );
    this.syncKey = key;
    // Whatever the election's state: a new peer gets the whole journal as soon as it listens, so that
    // it can take the VIP with it even if that happens before this amphora's election settles.
    for (const sender of this.senders) sender.start();
  }

  private async stopSync(): Promise<void> {
    for (const sender of this.senders) sender.stop();
    this.senders = [];
    await this.receiver?.stop();
    this.receiver = null;
    this.syncKey = '';
  }
}

/** The election's settings from a configuration; the interface is looked up when the section leaves it null. */
export function electionSettings(config: AmphoraConfig, section: Vrrp): ElectionSettings {
  return {
    interface: section.interface ?? interfaceOf(section.address),
    vips: config.vips.map((v) => v.address),
    localAddress: section.address,
    peers: section.peers,
    routerId: section.routerId,
    priority: section.priority,
    advertIntervalMs: section.advertIntervalMs,
    preempt: section.preempt,
    authKey: section.authKey,
  };
}

/** The interface that carries `address` (in this process's network namespace). */
export function interfaceOf(address: string): string {
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    if (addresses?.some((a) => a.address === address)) return name;
  }
  throw new Error(`no interface carries the amphora's own address ${address}`);
}

function sameSettings(a: ElectionSettings | null, b: ElectionSettings): boolean {
  return a !== null && JSON.stringify(a) === JSON.stringify(b);
}

/** For logs: everything but the key. */
function describe(s: ElectionSettings): Record<string, unknown> {
  const { authKey: _secret, ...rest } = s;
  return rest;
}
