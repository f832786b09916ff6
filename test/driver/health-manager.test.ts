// The health manager on the real database (SQLite, or MariaDB with ARGONAUT_TEST_DB=mysql):
// heartbeats change operating statuses, health timestamps and listener statistics as Octavia's
// health manager does (contract §4.3); silent amphorae are failed over once, with the circuit
// breaker and the load balancer state checks of Octavia's health_check (contract §4.4).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database, Row } from '../../common/db/database.ts';
import { createLogger } from '../../common/logging.ts';
import type { Heartbeat } from '../../common/messages.ts';
import type { MessageMeta } from '../../common/transport/transport.ts';
import { HealthManager, type HealthManagerOptions } from '../../driver/health/health-manager.ts';
import { providerOf } from '../../api/mutations.ts';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';
import { BASE, fixtures, type Fixtures, type Obj } from '../helpers/fixtures.ts';
import { waitFor } from '../helpers/wait.ts';

const TIMEOUT = 60_000;
let api: TestApi;
let db: Database;
let owner: Client;
let f: Fixtures;
// Half a second past a whole second: stored timestamps are truncated to the second.
let clock = Math.floor(Date.now() / 1000) * 1000 + 500;

beforeAll(async () => {
  api = await startApi({}, { keystone: true });
  db = api.service.services.db;
  owner = api.client('p1:member');
  f = fixtures(api, owner);
});
afterAll(async () => api?.close());

function manager(over: Partial<HealthManagerOptions> = {}): HealthManager {
  return new HealthManager({
    db,
    log: createLogger('health-test', 'silent'),
    heartbeatTimeoutMs: TIMEOUT,
    healthCheckIntervalMs: 1000,
    failoverThreshold: null,
    failover: async () => {},
    now: () => clock,
    ...over,
  });
}

const meta = (createdAt = clock): MessageMeta => ({
  messageId: randomUUID(), from: 'amphora:x', signedAt: createdAt, createdAt, attempt: 1, redelivered: false,
});

const stats = (n = 0, conns = 0) => ({ rx: n, tx: 2 * n, conns, totconns: 3 * n, ereq: n });

interface Tree {
  lb: Obj;
  listener: Obj;
  pool: Obj;
  members: Obj[];
  amphoraId: string;
}

/** An ACTIVE load balancer with one listener, its default pool and two members, and its amphora. */
async function tree(): Promise<Tree> {
  const lb = await f.lb();
  const listener = await f.listener(lb.id);
  const pool = await f.pool({ listener_id: listener.id });
  const members = [await f.member(pool.id, { address: '192.0.2.10' }), await f.member(pool.id, { address: '192.0.2.11' })];
  const amps = (await db.read(() => db.models.amphora.findAll({ where: { load_balancer_id: lb.id, status: 'ALLOCATED' }, raw: true }))) as Row[];
  expect(amps).toHaveLength(1);
  return { lb, listener, pool, members, amphoraId: amps[0]!.id };
}

function heartbeat(t: Tree, memberStates: [string, string], opts: { listenerStatus?: string; n?: number; conns?: number; poolStatus?: 'UP' | 'DOWN' } = {}): Heartbeat {
  return {
    id: t.amphoraId,
    seq: 1,
    ver: 3,
    configVersion: 1,
    listeners: { [t.listener.id]: { status: opts.listenerStatus ?? 'OPEN', stats: stats(opts.n ?? 0, opts.conns ?? 0) } },
    pools: {
      [`${t.pool.id}:${t.listener.id}`]: {
        status: opts.poolStatus ?? 'UP',
        members: { [t.members[0]!.id]: memberStates[0], [t.members[1]!.id]: memberStates[1] },
      },
    },
  };
}

async function row(table: 'load_balancer' | 'listener' | 'pool' | 'member' | 'amphora', id: string): Promise<Row> {
  return (await db.read(() => db.models[table].findByPk(id, { raw: true }))) as Row;
}

async function operating(t: Tree): Promise<Record<string, string>> {
  return {
    lb: (await row('load_balancer', t.lb.id)).operating_status,
    listener: (await row('listener', t.listener.id)).operating_status,
    pool: (await row('pool', t.pool.id)).operating_status,
    m0: (await row('member', t.members[0]!.id)).operating_status,
    m1: (await row('member', t.members[1]!.id)).operating_status,
  };
}

async function health(amphoraId: string): Promise<{ lastUpdate: number; busy: boolean } | null> {
  const r = (await db.read(() => db.models.amphora_health.findByPk(amphoraId, { raw: true }))) as Row | null;
  return r ? { lastUpdate: new Date(r.last_update).getTime(), busy: Boolean(r.busy) } : null;
}

async function statisticsRows(amphoraId: string): Promise<Row[]> {
  const rows = (await db.read(() => db.models.listener_statistics.findAll({ where: { amphora_id: amphoraId }, raw: true }))) as Row[];
  return rows.map((r) => ({
    listener_id: r.listener_id, bytes_in: Number(r.bytes_in), bytes_out: Number(r.bytes_out), active_connections: Number(r.active_connections),
    total_connections: Number(r.total_connections), request_errors: Number(r.request_errors),
  }));
}

/** Everything a heartbeat may write, for "changed nothing" checks. */
async function everything(t: Tree): Promise<unknown> {
  const dump = async (table: 'amphora_health' | 'listener_statistics') => db.read(() => db.models[table].findAll({ raw: true }));
  return { statuses: await operating(t), lb: await row('load_balancer', t.lb.id), health: await dump('amphora_health'), stats: await dump('listener_statistics') };
}

/** What a heartbeat may write about one load balancer. */
async function scoped(t: Tree): Promise<unknown> {
  const stats = await db.read(() => db.models.listener_statistics.findAll({ where: { listener_id: t.listener.id }, raw: true }));
  return { statuses: await operating(t), lb: await row('load_balancer', t.lb.id), health: await health(t.amphoraId), stats };
}

const secondOf = (ms: number) => Math.floor(ms / 1000) * 1000;

describe('heartbeats', () => {
  it('a healthy amphora makes everything ONLINE and records its health (to the second)', async () => {
    const t = await tree();
    expect(await operating(t)).toEqual({ lb: 'OFFLINE', listener: 'OFFLINE', pool: 'OFFLINE', m0: 'NO_MONITOR', m1: 'NO_MONITOR' });
    const hm = manager();
    await hm.handleHeartbeat(heartbeat(t, ['UP', 'UP']), meta());
    expect(await operating(t)).toEqual({ lb: 'ONLINE', listener: 'ONLINE', pool: 'ONLINE', m0: 'ONLINE', m1: 'ONLINE' });
    expect(await health(t.amphoraId)).toEqual({ lastUpdate: secondOf(clock), busy: false });
    expect(hm.counters).toMatchObject({ heartbeatsHandled: 1, heartbeatsIgnored: 0, heartbeatsStale: 0 });
  });

  it('the election report (extension) sets the amphora\'s vip_holder, shown by the API; a heartbeat without it makes it null', async () => {
    const t = await tree();
    const admin = api.client('admin-project:admin');
    const shown = async () => (await admin.get(`/v2/octavia/amphorae/${t.amphoraId}`)).body.amphora.vip_holder;
    expect(await shown()).toBeNull();
    const hm = manager();
    await hm.handleHeartbeat({ ...heartbeat(t, ['UP', 'UP']), vrrp: { state: 'MASTER', holdsVip: true } }, meta());
    expect(await shown()).toBe(true);
    expect((await admin.get(`/v2/octavia/amphorae?loadbalancer_id=${t.lb.id}&vip_holder=true`)).body.amphorae.map((a: Obj) => a.id)).toEqual([t.amphoraId]);
    await hm.handleHeartbeat({ ...heartbeat(t, ['UP', 'UP']), vrrp: { state: 'MASTER', holdsVip: true } }, meta());
    expect(await shown()).toBe(true);
    await hm.handleHeartbeat({ ...heartbeat(t, ['UP', 'UP']), vrrp: { state: 'BACKUP', holdsVip: false } }, meta());
    expect(await shown()).toBe(false);
    // An election in FAULT keeps the amphora from being refreshed: it goes stale and is failed over.
    const before = await health(t.amphoraId);
    clock += 2000;
    await hm.handleHeartbeat({ ...heartbeat(t, ['UP', 'UP']), vrrp: { state: 'FAULT', holdsVip: false } }, meta());
    expect(await health(t.amphoraId)).toEqual(before);
    await hm.handleHeartbeat({ ...heartbeat(t, ['UP', 'UP']), vrrp: { state: 'BACKUP', holdsVip: false } }, meta());
    expect(await health(t.amphoraId)).toEqual({ lastUpdate: secondOf(clock), busy: false });
    // A heartbeat without the report (the configuration has no election any more): null again.
    await hm.handleHeartbeat(heartbeat(t, ['UP', 'UP']), meta());
    expect(await shown()).toBeNull();
    await hm.handleHeartbeat({ ...heartbeat(t, ['UP', 'UP']), vrrp: { state: 'BACKUP', holdsVip: false } }, meta());
    // A stale heartbeat says nothing about now.
    await hm.handleHeartbeat({ ...heartbeat(t, ['UP', 'UP']), vrrp: { state: 'MASTER', holdsVip: true } }, meta(clock - TIMEOUT));
    expect(await shown()).toBe(false);
  });

  it('a DOWN member is ERROR and its pool and load balancer DEGRADED; back UP, ONLINE again; only changed rows are written', async () => {
    const t = await tree();
    const hm = manager();
    await hm.handleHeartbeat(heartbeat(t, ['UP', 'UP']), meta());
    const m0Before = (await row('member', t.members[0]!.id)).updated_at;
    clock += 5000;
    await hm.handleHeartbeat(heartbeat(t, ['UP', 'DOWN 1/3']), meta());
    expect(await operating(t)).toEqual({ lb: 'DEGRADED', listener: 'ONLINE', pool: 'DEGRADED', m0: 'ONLINE', m1: 'ERROR' });
    expect(new Date((await row('member', t.members[1]!.id)).updated_at).getTime()).toBe(secondOf(clock));
    expect((await row('member', t.members[0]!.id)).updated_at).toEqual(m0Before);
    expect(await health(t.amphoraId)).toEqual({ lastUpdate: secondOf(clock), busy: false });
    clock += 5000;
    await hm.handleHeartbeat(heartbeat(t, ['UP', 'UP']), meta());
    expect(await operating(t)).toEqual({ lb: 'ONLINE', listener: 'ONLINE', pool: 'ONLINE', m0: 'ONLINE', m1: 'ONLINE' });
    clock += 5000;
    await hm.handleHeartbeat(heartbeat(t, ['DOWN', 'DOWN'], { poolStatus: 'DOWN' }), meta());
    expect(await operating(t)).toEqual({ lb: 'ERROR', listener: 'ONLINE', pool: 'ERROR', m0: 'ERROR', m1: 'ERROR' });
  });

  it('listener statistics add up over heartbeats (active_connections replaced) and stats show reports the sums', async () => {
    const t = await tree();
    const hm = manager();
    await hm.handleHeartbeat(heartbeat(t, ['UP', 'UP'], { n: 100, conns: 5 }), meta());
    await hm.handleHeartbeat(heartbeat(t, ['UP', 'UP'], { n: 11, conns: 2 }), meta());
    const expected = { bytes_in: 111, bytes_out: 222, active_connections: 2, total_connections: 333, request_errors: 111 };
    expect(await statisticsRows(t.amphoraId)).toEqual([{ listener_id: t.listener.id, ...expected }]);
    expect((await owner.get(`${BASE}/loadbalancers/${t.lb.id}/stats`)).body).toEqual({ stats: expected });
    expect((await owner.get(`${BASE}/listeners/${t.listener.id}/stats`)).body).toEqual({ stats: expected });
  });

  it('ignores listeners, pools and members that are not in the database (or not of this load balancer)', async () => {
    const t = await tree();
    const other = await tree();
    const h = heartbeat(t, ['UP', 'UP'], { n: 1 });
    h.listeners[randomUUID()] = { status: 'OPEN', stats: stats(7) };
    h.listeners[other.listener.id] = { status: 'FULL', stats: stats(9) };
    h.pools[`${randomUUID()}:${t.listener.id}`] = { status: 'DOWN', members: { [randomUUID()]: 'DOWN' } };
    h.pools[`${t.pool.id}:${t.listener.id}`]!.members[randomUUID()] = 'DOWN';
    const otherBefore = await scoped(other);
    await manager().handleHeartbeat(h, meta());
    expect(await operating(t)).toEqual({ lb: 'ONLINE', listener: 'ONLINE', pool: 'ONLINE', m0: 'ONLINE', m1: 'ONLINE' });
    expect((await statisticsRows(t.amphoraId)).map((r) => r.listener_id)).toEqual([t.listener.id]);
    expect(await scoped(other)).toEqual(otherBefore);
  });

  it('concurrent heartbeats of one amphora (competing controllers) are all applied, none lost', async () => {
    const t = await tree();
    const hms = [manager(), manager(), manager()];
    await Promise.all(Array.from({ length: 6 }, (_, i) => hms[i % 3]!.handleHeartbeat(heartbeat(t, ['UP', 'UP'], { n: 1, conns: 1 }), meta())));
    expect(await statisticsRows(t.amphoraId)).toEqual([
      { listener_id: t.listener.id, bytes_in: 6, bytes_out: 12, active_connections: 1, total_connections: 18, request_errors: 6 },
    ]);
    expect(await health(t.amphoraId)).toEqual({ lastUpdate: secondOf(clock), busy: false });
    expect(await operating(t)).toEqual({ lb: 'ONLINE', listener: 'ONLINE', pool: 'ONLINE', m0: 'ONLINE', m1: 'ONLINE' });
  });

  it('a heartbeat from an unknown or a DELETED amphora changes nothing', async () => {
    const t = await tree();
    const hm = manager();
    await hm.handleHeartbeat(heartbeat(t, ['UP', 'UP']), meta());
    const deleted = randomUUID();
    await db.tx((tx) =>
      db.models.amphora.create({ id: deleted, load_balancer_id: t.lb.id, status: 'DELETED', role: 'STANDALONE', cert_busy: false, created_at: new Date() }, { transaction: tx }),
    );
    const before = await everything(t);
    clock += 5000;
    for (const id of [randomUUID(), deleted]) {
      await hm.handleHeartbeat({ ...heartbeat(t, ['DOWN', 'DOWN'], { n: 50, poolStatus: 'DOWN' }), id }, meta());
    }
    expect(await everything(t)).toEqual(before);
    expect(await health(deleted)).toBeNull();
    expect(hm.counters).toMatchObject({ heartbeatsHandled: 1, heartbeatsIgnored: 2 });
  });

  it('a heartbeat missing an enabled listener does not refresh health; the missing listener is ERROR', async () => {
    const t = await tree();
    const second = await f.listener(t.lb.id, { protocol_port: 8080 });
    const hm = manager();
    await hm.handleHeartbeat({ ...heartbeat(t, ['UP', 'UP']), listeners: { ...heartbeat(t, ['UP', 'UP']).listeners, [second.id]: { status: 'OPEN', stats: stats() } } }, meta());
    const refreshed = await health(t.amphoraId);
    expect(refreshed).toEqual({ lastUpdate: secondOf(clock), busy: false });
    clock += 5000;
    await hm.handleHeartbeat(heartbeat(t, ['UP', 'UP']), meta());
    expect(await health(t.amphoraId)).toEqual(refreshed);
    expect((await row('listener', second.id)).operating_status).toBe('ERROR');
    expect((await row('listener', t.listener.id)).operating_status).toBe('ONLINE');
  });

  it('a heartbeat created heartbeatTimeoutMs ago refreshes neither health nor statuses, but its deltas count', async () => {
    const t = await tree();
    const hm = manager();
    await hm.handleHeartbeat(heartbeat(t, ['UP', 'UP'], { n: 10, conns: 4 }), meta());
    const before = { statuses: await operating(t), health: await health(t.amphoraId) };
    clock += 5000;
    await hm.handleHeartbeat(heartbeat(t, ['DOWN', 'DOWN'], { n: 1, conns: 99, poolStatus: 'DOWN' }), meta(clock - TIMEOUT));
    expect({ statuses: await operating(t), health: await health(t.amphoraId) }).toEqual(before);
    expect(await statisticsRows(t.amphoraId)).toEqual([
      { listener_id: t.listener.id, bytes_in: 11, bytes_out: 22, active_connections: 4, total_connections: 33, request_errors: 11 },
    ]);
    expect(hm.counters).toMatchObject({ heartbeatsHandled: 1, heartbeatsStale: 1 });
    // Just under the timeout it is applied.
    await hm.handleHeartbeat(heartbeat(t, ['DOWN', 'DOWN'], { poolStatus: 'DOWN' }), meta(clock - TIMEOUT + 1));
    expect((await operating(t)).pool).toBe('ERROR');
  });
});

describe('stale amphorae', () => {
  beforeEach(async () => {
    await db.tx((t) => db.models.amphora_health.destroy({ where: {}, transaction: t }));
  });

  /** An ACTIVE load balancer whose amphora sent one heartbeat at the current clock. */
  async function reporting(hm: HealthManager): Promise<Tree> {
    const t = await tree();
    await hm.handleHeartbeat(heartbeat(t, ['UP', 'UP']), meta());
    return t;
  }

  const provisioning = async (t: Tree) => (await row('load_balancer', t.lb.id)).provisioning_status;

  it('fails a silent amphora over once, after heartbeatTimeoutMs (compared to the second)', async () => {
    const calls: string[][] = [];
    const hm = manager({ failover: async (a, l) => void calls.push([a, l]) });
    const a = await reporting(hm);
    const b = await reporting(hm);
    clock += TIMEOUT - 1;
    expect(await hm.checkStale()).toEqual({ stale: [], failedOver: [], circuitOpen: false });
    // b reports again; a stays silent past the timeout.
    await hm.handleHeartbeat(heartbeat(b, ['UP', 'UP']), meta());
    clock += 1001;
    const result = await hm.checkStale();
    expect(result).toEqual({ stale: [a.amphoraId], failedOver: [a.amphoraId], circuitOpen: false });
    expect(calls).toEqual([[a.amphoraId, a.lb.id]]);
    expect(await health(a.amphoraId)).toMatchObject({ busy: true });
    expect(await hm.checkStale()).toEqual({ stale: [], failedOver: [], circuitOpen: false });
    expect(calls).toHaveLength(1);
    expect(hm.counters).toMatchObject({ failoversTriggered: 1, failoversFailed: 0 });
  });

  it('two controllers checking at once fail each stale amphora over exactly once', async () => {
    const calls: string[] = [];
    const failover = async (a: string) => void calls.push(a);
    const one = manager({ failover });
    const two = manager({ failover });
    const amps = [await reporting(one), await reporting(one), await reporting(one)];
    clock += TIMEOUT + 1000;
    await Promise.all([one.checkStale(), two.checkStale(), one.checkStale()]);
    expect(calls.sort()).toEqual(amps.map((t) => t.amphoraId).sort());
  });

  it('a check racing heartbeats and an API change of the same load balancer: no deadlock, claimed only while stale', async () => {
    const calls: string[] = [];
    const hm = manager({ failover: async (a) => void calls.push(a) });
    const ts = [await reporting(hm), await reporting(hm), await reporting(hm)];
    clock += TIMEOUT + 1000;
    await Promise.all([
      hm.checkStale(),
      ...ts.map((t) => hm.handleHeartbeat(heartbeat(t, ['UP', 'DOWN']), meta())),
      f.member(ts[0]!.pool.id, { address: '192.0.2.99' }),
      hm.checkStale(),
    ]);
    for (const t of ts) {
      const h = (await health(t.amphoraId))!;
      // Either the heartbeat came first (fresh, not busy) or the check did (busy, handed over once).
      expect(h.lastUpdate).toBe(secondOf(clock));
      expect(h.busy).toBe(calls.includes(t.amphoraId));
    }
    expect(new Set(calls).size).toBe(calls.length);
  });

  it('circuit breaker: failoverThreshold or more stale amphorae are not failed over, each check logs an error', async () => {
    const calls: string[] = [];
    const errors: string[] = [];
    const log = createLogger('health-test', 'silent');
    log.error = ((_obj: unknown, msg: string) => void errors.push(msg)) as typeof log.error;
    const hm = manager({ failoverThreshold: 2, log, failover: async (a) => void calls.push(a) });
    const a = await reporting(hm);
    const b = await reporting(hm);
    clock += TIMEOUT + 1000;
    expect(await hm.checkStale()).toEqual({ stale: expect.arrayContaining([a.amphoraId, b.amphoraId]), failedOver: [], circuitOpen: true });
    expect(await hm.checkStale()).toMatchObject({ failedOver: [], circuitOpen: true });
    expect(calls).toEqual([]);
    expect(errors).toEqual([expect.stringMatching(/threshold/), expect.stringMatching(/threshold/)]);
    expect(hm.counters.circuitBreakerTrips).toBe(2);
    expect(await health(a.amphoraId)).toMatchObject({ busy: false });
    expect(await provisioning(a)).toBe('ACTIVE');
    // One of them comes back: below the threshold, the other is failed over.
    await hm.handleHeartbeat(heartbeat(b, ['UP', 'UP']), meta());
    expect(await hm.checkStale()).toEqual({ stale: [a.amphoraId], failedOver: [a.amphoraId], circuitOpen: false });
    expect(calls).toEqual([a.amphoraId]);
  });

  it('skips amphorae of a load balancer in PENDING_* and fails them over once it is ACTIVE or ERROR', async () => {
    const calls: string[] = [];
    const hm = manager({ failover: async (a) => void calls.push(a) });
    const t = await reporting(hm);
    await db.tx((tx) => db.models.load_balancer.update({ provisioning_status: 'PENDING_UPDATE' }, { where: { id: t.lb.id }, transaction: tx }));
    clock += TIMEOUT + 1000;
    expect(await hm.checkStale()).toEqual({ stale: [t.amphoraId], failedOver: [], circuitOpen: false });
    expect(await health(t.amphoraId)).toMatchObject({ busy: false });
    await db.tx((tx) => db.models.load_balancer.update({ provisioning_status: 'ERROR' }, { where: { id: t.lb.id }, transaction: tx }));
    expect(await hm.checkStale()).toMatchObject({ failedOver: [t.amphoraId] });
    expect(calls).toEqual([t.amphoraId]);
  });

  it('does not fail over amphorae that are not ALLOCATED; drops the health rows of DELETED ones', async () => {
    const calls: string[] = [];
    const hm = manager({ failover: async (a) => void calls.push(a) });
    const erred = await reporting(hm);
    const deleted = await reporting(hm);
    await db.tx(async (tx) => {
      await db.models.amphora.update({ status: 'ERROR' }, { where: { id: erred.amphoraId }, transaction: tx });
      await db.models.amphora.update({ status: 'DELETED' }, { where: { id: deleted.amphoraId }, transaction: tx });
    });
    clock += TIMEOUT + 1000;
    expect(await hm.checkStale()).toEqual({ stale: [erred.amphoraId], failedOver: [], circuitOpen: false });
    expect(calls).toEqual([]);
    expect(await health(deleted.amphoraId)).toBeNull();
    expect(await health(erred.amphoraId)).toMatchObject({ busy: false });
  });

  it('a failover callback that rejects is counted and the amphora is considered again at the next check', async () => {
    let fail = true;
    const calls: string[] = [];
    const hm = manager({
      failover: async (a) => {
        calls.push(a);
        if (fail) throw new Error('worker stopped');
      },
    });
    const t = await reporting(hm);
    clock += TIMEOUT + 1000;
    await hm.checkStale();
    expect(hm.counters).toMatchObject({ failoversTriggered: 0, failoversFailed: 1 });
    expect(await health(t.amphoraId)).toMatchObject({ busy: false });
    fail = false;
    await hm.checkStale();
    expect(calls).toEqual([t.amphoraId, t.amphoraId]);
    expect(hm.counters).toMatchObject({ failoversTriggered: 1, failoversFailed: 1 });
    expect(await health(t.amphoraId)).toMatchObject({ busy: true });
  });

  it('with the API failover path as callback, the amphora is replaced and its health row dropped afterwards', async () => {
    const { services } = api.service;
    const hm = manager({
      failover: async (amphoraId, loadBalancerId) => {
        await db.tx((tx) => db.models.load_balancer.update({ provisioning_status: 'PENDING_UPDATE' }, { where: { id: loadBalancerId }, transaction: tx }));
        providerOf(services, 'amphora').submit({ kind: 'amphora', action: 'failover', amphoraId, loadBalancerId });
      },
    });
    const t = await reporting(hm);
    clock += TIMEOUT + 1000;
    expect(await hm.checkStale()).toMatchObject({ failedOver: [t.amphoraId] });
    await api.settle();
    expect(await provisioning(t)).toBe('ACTIVE');
    expect((await row('amphora', t.amphoraId)).status).toBe('DELETED');
    const replacement = (await db.read(() => db.models.amphora.findAll({ where: { load_balancer_id: t.lb.id, status: 'ALLOCATED' }, raw: true }))) as Row[];
    expect(replacement).toHaveLength(1);
    expect(await hm.checkStale()).toEqual({ stale: [], failedOver: [], circuitOpen: false });
    expect(await health(t.amphoraId)).toBeNull();
  });

  it('start() waits heartbeatTimeoutMs, then checks every healthCheckIntervalMs; stop() ends it', async () => {
    const calls: string[] = [];
    const hm = manager({ heartbeatTimeoutMs: 1000, healthCheckIntervalMs: 20, failover: async (a) => void calls.push(a) });
    const t = await reporting(hm);
    clock += 2000;
    hm.start();
    await new Promise((r) => setTimeout(r, 600));
    expect(calls).toEqual([]);
    // After the 1 s wait, the first check fails the stale amphora over (a loaded machine may take longer).
    await waitFor('the stale amphora failed over', async () => (calls.length > 0 ? true : undefined), 5_000, 20);
    // Ten more intervals: the checks go on, and the amphora, busy now, is not failed over again.
    await new Promise((r) => setTimeout(r, 200));
    await hm.stop();
    expect(calls).toEqual([t.amphoraId]);
    expect(hm.counters.checkErrors).toBe(0);
    // Stopped: nothing runs any more.
    await db.tx((tx) => db.models.amphora_health.update({ busy: false }, { where: { amphora_id: t.amphoraId }, transaction: tx }));
    await new Promise((r) => setTimeout(r, 100));
    expect(calls).toHaveLength(1);
  });
});
