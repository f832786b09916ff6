// Persistence sharing between the amphorae of an ACTIVE_STANDBY pair (extension): the wire protocol
// (journal on connect, streamed entries, HMAC per connection and sequence), and two real data planes
// on loopback, each run by a VrrpRunner with a stand-in election: the SOURCE_IP entries the MASTER
// learns make the BACKUP's data plane send each client to the same member.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAmphoraConfig, type AmphoraConfigInput } from '../../common/amphora-config/index.ts';
import { createLogger } from '../../common/logging.ts';
import { PersistenceJournal, type PersistenceEntry } from '../../amphora/dataplane/balancer/persistence-journal.ts';
import { batchMac, SyncReceiver, SyncSender, SYNC_PROTOCOL } from '../../amphora/agent/persistence-sync.ts';
import { VrrpRunner, type ElectionHandle, type ElectionSettings } from '../../amphora/agent/vrrp-runner.ts';
import { config, freePort, httpListener, pool, request, Resources, startDataPlane, startHttpMember } from '../dataplane/helpers.ts';
import { waitFor } from './helpers.ts';

const log = createLogger('sync-test', process.env.ARGONAUT_TEST_LOG ?? 'silent');
const KEY = Buffer.alloc(32, 7);
const r = new Resources();
afterEach(() => r.cleanup());

async function receiver(onEntries: (e: PersistenceEntry[]) => void, key = KEY): Promise<{ rx: SyncReceiver; port: number }> {
  const port = await freePort();
  const rx = new SyncReceiver({ address: '127.0.0.1', port, key, log, onEntries });
  await rx.start();
  r.add(() => rx.stop());
  return { rx, port };
}

/** A raw client of the receiver: its hello, then lines of our own making. */
async function rawClient(port: number): Promise<{ nonce: string; socket: net.Socket; closed: Promise<void> }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  r.add(() => void socket.destroy());
  const hello = await new Promise<string>((resolve) => socket.once('data', (d) => resolve(d.toString())));
  const parsed = JSON.parse(hello);
  expect(parsed.hello).toBe(SYNC_PROTOCOL);
  return { nonce: parsed.nonce, socket, closed: new Promise((resolve) => socket.once('close', () => resolve())) };
}

describe('persistence sync protocol', () => {
  it('sends the whole journal on connect, then streams new entries; reconnects after the receiver restarts', async () => {
    const got: PersistenceEntry[] = [];
    const { rx, port } = await receiver((e) => got.push(...e));
    const journal = new PersistenceJournal(() => 60_000);
    journal.record('pool-a', '10.222.0.5', 'member-1');
    journal.record('pool-b', 'current', 'member-9');
    const tx = new SyncSender({ peer: '127.0.0.1', port, localAddress: '127.0.0.1', key: KEY, log, dump: () => journal.entries() });
    r.add(() => tx.stop());
    tx.start();
    await tx.dumped;
    await waitFor('the journal', () => got.length === 2, 5000);
    expect(got).toEqual([['pool-a', '10.222.0.5', 'member-1'], ['pool-b', 'current', 'member-9']]);
    tx.send(['pool-a', '10.222.0.6', 'member-2']);
    await waitFor('the streamed entry', () => got.length === 3, 5000);
    expect(got[2]).toEqual(['pool-a', '10.222.0.6', 'member-2']);
    expect(rx.received).toBe(3);

    await rx.stop();
    journal.record('pool-a', '10.222.0.6', 'member-2');
    const again: PersistenceEntry[] = [];
    const rx2 = new SyncReceiver({ address: '127.0.0.1', port, key: KEY, log, onEntries: (e) => again.push(...e) });
    await rx2.start();
    r.add(() => rx2.stop());
    await waitFor('the journal after the reconnection', () => again.length === 3, 5000);
  });

  it('refuses a wrong MAC, a replayed or skipped sequence and garbage, closing the connection and applying nothing', async () => {
    const got: PersistenceEntry[] = [];
    const { rx, port } = await receiver((e) => got.push(...e));
    const entries: PersistenceEntry[] = [['p', 'k', 'm']];
    const line = (nonce: string, seq: number, key = KEY) => `${JSON.stringify({ seq, entries, mac: batchMac(key, nonce, seq, entries) })}\n`;

    const good = await rawClient(port);
    good.socket.write(line(good.nonce, 1));
    await waitFor('the good line', () => got.length === 1, 5000);
    good.socket.write(line(good.nonce, 1)); // replayed sequence
    await good.closed;

    const wrongKey = await rawClient(port);
    wrongKey.socket.write(line(wrongKey.nonce, 1, Buffer.alloc(32, 8)));
    await wrongKey.closed;

    const otherNonce = await rawClient(port);
    otherNonce.socket.write(line(good.nonce, 1)); // a line of another connection
    await otherNonce.closed;

    const skipped = await rawClient(port);
    skipped.socket.write(line(skipped.nonce, 2));
    await skipped.closed;

    const garbage = await rawClient(port);
    garbage.socket.write('{"seq":1}\nnot json\n');
    await garbage.closed;

    expect(got).toHaveLength(1);
    expect(rx.rejected).toBe(5);
  });

  it('the journal drops expired entries and keeps the newest value of a key last', () => {
    let now = 0;
    const journal = new PersistenceJournal((poolId) => (poolId === 'gone' ? null : 1000), () => now);
    journal.record('p', 'a', 'm1');
    journal.record('gone', 'a', 'm1');
    now = 600;
    journal.record('p', 'b', 'm2');
    journal.record('p', 'a', 'm3');
    expect(journal.entries()).toEqual([['p', 'b', 'm2'], ['p', 'a', 'm3']]);
    now = 1700;
    expect(journal.entries()).toEqual([]);
  });
});

/** Holds or does not hold the VIP as the test says; records its settings. */
class StandInElection implements ElectionHandle {
  holdsVip = false;
  stopped = false;
  private listener: ((c: { from: string; to: string; reason: string }) => void) | null = null;
  constructor(readonly settings: ElectionSettings) {}
  status() {
    return { state: this.holdsVip ? 'MASTER' : 'BACKUP', holdsVip: this.holdsVip };
  }
  on(_event: 'state', listener: (c: { from: string; to: string; reason: string }) => void) {
    this.listener = listener;
    return this;
  }
  take(): void {
    this.holdsVip = true;
    this.listener?.({ from: 'BACKUP', to: 'MASTER', reason: 'test' });
  }
  fail(): void {}
  async stop(): Promise<void> {
    this.stopped = true;
    this.holdsVip = false;
  }
}

/** Adopts new settings in place unless `adopt` says no (as amphora/vrrp's reconfigure does for a new key or interface). */
class ReconfigurableElection extends StandInElection {
  reconfigured: ElectionSettings[] = [];
  constructor(
    settings: ElectionSettings,
    private readonly adopt: (s: ElectionSettings) => boolean,
  ) {
    super(settings);
  }
  async reconfigure(s: ElectionSettings): Promise<boolean> {
    if (!this.adopt(s)) return false;
    this.reconfigured.push(s);
    return true;
  }
}

describe('VrrpRunner', () => {
  it('a new peer (the failed amphora replaced) is adopted in place: the election holding the VIP is not restarted; a new key restarts it', async () => {
    const dp = await startDataPlane(r, config([], []));
    const started: ReconfigurableElection[] = [];
    const runner = new VrrpRunner({
      dataPlane: dp,
      log,
      startElection: async (settings) => {
        const e = new ReconfigurableElection(settings, (s) => s.authKey === settings.authKey);
        started.push(e);
        return e;
      },
      onChange: () => {},
    });
    r.add(() => runner.stop());
    const section = { role: 'MASTER', priority: 100, address: '127.0.0.67', peers: ['127.0.0.68'], interface: 'lo', authKey: 'ef'.repeat(32), syncPort: await freePort() };
    const withSection = (v: Record<string, unknown>) => parseAmphoraConfig({ ...config([], []), vrrp: { ...section, ...v } } as AmphoraConfigInput);
    await runner.update(withSection({}));
    started[0]!.take();
    await runner.update(withSection({ peers: ['127.0.0.69'] }));
    expect(started).toHaveLength(1);
    expect(started[0]!.stopped).toBe(false);
    expect(started[0]!.reconfigured.map((s) => s.peers)).toEqual([['127.0.0.69']]);
    expect(runner.report()).toEqual({ state: 'MASTER', holdsVip: true });
    // Unchanged settings: nothing to do.
    await runner.update(withSection({ peers: ['127.0.0.69'] }));
    expect(started[0]!.reconfigured).toHaveLength(1);
    // Refused in place: stopped and started again with the new settings.
    await runner.update(withSection({ peers: ['127.0.0.69'], authKey: 'cd'.repeat(32) }));
    expect(started).toHaveLength(2);
    expect(started[0]!.stopped).toBe(true);
    expect(started[1]!.settings.authKey).toBe('cd'.repeat(32));
  });

  it('shares SOURCE_IP entries: the BACKUP sends each client to the member the MASTER chose', async () => {
    const members = [await startHttpMember(r, 'one'), await startHttpMember(r, 'two')];
    const syncPort = await freePort();
    const pair = [
      { address: '127.0.0.61', peer: '127.0.0.62', port: await freePort(), amphora: '00000000-0000-4000-8000-0000000000a1' },
      { address: '127.0.0.62', peer: '127.0.0.61', port: await freePort(), amphora: '00000000-0000-4000-8000-0000000000a2' },
    ];
    const elections: StandInElection[] = [];
    const changes = [0, 0];
    const runners: VrrpRunner[] = [];
    /** The client addresses whose entries the BACKUP's data plane got from the MASTER. */
    const imported = new Set<string>();
    // The BACKUP first: it listens before the MASTER's sender connects (a sender that finds nobody
    // tries again only 500 ms later).
    for (const i of [1, 0]) {
      const p = pair[i]!;
      const input: AmphoraConfigInput = {
        ...config([httpListener(1, p.port, 2)], [pool(2, 'HTTP', members.map((m, j) => ({ id: 10 + j, port: m.port })), { sessionPersistence: { type: 'SOURCE_IP', timeout: 60_000 } })]),
        amphoraId: p.amphora,
        vrrp: { role: i === 0 ? 'MASTER' : 'BACKUP', priority: i === 0 ? 100 : 90, address: p.address, peers: [p.peer], interface: 'lo', authKey: 'ef'.repeat(32), syncPort },
      };
      const dp = await startDataPlane(r, input);
      if (i === 1) {
        const importPersistence = dp.importPersistence.bind(dp);
        dp.importPersistence = (poolId, key, serverId) => {
          imported.add(key);
          importPersistence(poolId, key, serverId);
        };
      }
      const runner = new VrrpRunner({
        dataPlane: dp,
        log,
        startElection: async (settings) => {
          const e = new StandInElection(settings);
          elections[i] = e;
          return e;
        },
        onChange: () => changes[i]!++,
      });
      r.add(() => runner.stop());
      await runner.update(parseAmphoraConfig(input));
      runners[i] = runner;
    }
    expect(elections[0]!.settings).toEqual({
      interface: 'lo', vips: ['127.0.0.1'], localAddress: '127.0.0.61', peers: ['127.0.0.62'], routerId: 1, priority: 100, advertIntervalMs: 1000, preempt: false, authKey: 'ef'.repeat(32),
    });
    expect(runners[1]!.report()).toEqual({ state: 'BACKUP', holdsVip: false });
    elections[0]!.take();
    expect(runners[0]!.report()).toEqual({ state: 'MASTER', holdsVip: true });
    expect(changes[0]).toBeGreaterThanOrEqual(2);

    const clients = ['127.0.0.71', '127.0.0.72', '127.0.0.73', '127.0.0.74', '127.0.0.75', '127.0.0.76'];
    const onMaster = new Map<string, string>();
    for (const c of clients) onMaster.set(c, (await request(pair[0]!.port, { localAddress: c })).body);
    expect(new Set(onMaster.values()).size).toBe(2);
    // The BACKUP's own round robin would start again from the first member: the shared entries win.
    await waitFor("the MASTER's entries at the BACKUP", () => clients.every((c) => imported.has(c)), 5000);
    for (const c of [...clients].reverse()) expect((await request(pair[1]!.port, { localAddress: c })).body).toBe(onMaster.get(c));

    // A configuration without the section stops the election and reports nothing.
    await runners[1]!.update(parseAmphoraConfig({ ...config([], []), amphoraId: pair[1]!.amphora }));
    expect(elections[1]!.stopped).toBe(true);
    expect(runners[1]!.report()).toBeUndefined();
  });

  it('without an election to start, a configuration asking for one is reported FAULT; stop() reports STOPPED', async () => {
    const dp = await startDataPlane(r, config([], []));
    const runner = new VrrpRunner({ dataPlane: dp, log, startElection: null, onChange: () => {} });
    const input = { ...config([], []), vrrp: { role: 'MASTER', priority: 100, address: '127.0.0.63', peers: ['127.0.0.64'], interface: 'lo', authKey: 'ef'.repeat(32), syncPort: await freePort() } };
    await runner.update(parseAmphoraConfig(input as AmphoraConfigInput));
    expect(runner.report()).toEqual({ state: 'FAULT', holdsVip: false });
    await runner.stop();
    expect(runner.report()).toEqual({ state: 'STOPPED', holdsVip: false });
  });
});
