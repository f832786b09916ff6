// Issue 5's robustness promises on the real RabbitMQ (127.0.0.1:5672, guest/guest), driven through
// the HTTP API of an API service in this process: process amphorae (one agent process each,
// connected to RabbitMQ) and loopback VIPs (127.0.100.0/24), members on 127.0.0.1.
//   1. traffic balanced through the VIP over AMQP; a member added takes effect;
//   2. RabbitMQ restarted while a configuration change waits for its acknowledgement, while one is
//      published, and for longer than a heartbeat timeout with nothing in flight: operations end
//      ACTIVE, the amphora keeps its configuration and is not failed over, traffic flows throughout,
//      heartbeats and statuses resume;
//   3. an amphora agent killed while the controller waits for its acknowledgement: replaced within
//      the operation, which ends ACTIVE long before configAckTimeoutMs;
//   4. an amphora that stays silent past configAckTimeoutMs: the operation ends in ERROR (never stuck);
//   5. a load balancer deleted while RabbitMQ is down: DELETED (its amphora's queue is left behind).
// RabbitMQ is restarted four times in here (rabbitmqctl stop_app / start_app): this file is in the
// broker_restarts list of test/run-all.sh. Every queue and exchange of the run's prefix is deleted
// at the end. Fails (is not skipped) when RabbitMQ is down.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOOPBACK_SUBNET_ID } from '../../driver/network/loopback.ts';
import {
  amphorae,
  AMQP_URL,
  assertRabbitUp,
  deleteUnderPrefix,
  freePort,
  isRunning,
  lbStatus,
  MASTER_KEY,
  memberServer,
  pidOf,
  queuesUnder,
  rabbitmqctl,
  runPrefix,
  sample,
  settled,
  sleep,
  startInProcessApi,
  tail,
  waitActive,
  waitFor,
  waitTraffic,
  type ApiClient,
  type InProcessApi,
  type MemberServer,
} from './amphora-helpers.ts';

/**
 * configAckTimeoutMs: a RabbitMQ restart here takes about 2.5 s (stop_app + start_app) and both
 * ends reconnect within 1 s (reconnect.maxDelayMs) of its return, so an operation in flight
 * across a restart is acknowledged well within 15 s: it must end ACTIVE, never ERROR.
 */
const ACK_TIMEOUT_MS = 15_000;
const HEARTBEAT_TIMEOUT_MS = 3_000;
const prefix = runPrefix('amph-amqp');
const dir = mkdtempSync(path.join(tmpdir(), 'argonaut-amphora-amqp-'));
const servers: Record<string, MemberServer> = {};
let api: InProcessApi;
let client: ApiClient;
let rabbitStopped = false;

async function restartRabbit(whileDown: () => Promise<void> = async () => {}): Promise<number> {
  const started = Date.now();
  await rabbitmqctl('stop_app');
  rabbitStopped = true;
  await whileDown();
  await rabbitmqctl('start_app');
  rabbitStopped = false;
  return Date.now() - started;
}

beforeAll(async () => {
  await assertRabbitUp();
  for (const name of ['member-a', 'member-b', 'member-c', 'member-d', 'member-e', 'member-f', 'member-g']) {
    servers[name] = memberServer(name);
    await servers[name].start();
  }
  api = await startInProcessApi(dir, {
    controllerWorker: {
      computeDriver: 'process',
      networkDriver: 'loopback',
      amphoraDriver: 'agent',
      stateDir: dir,
      configAckTimeoutMs: ACK_TIMEOUT_MS,
    },
    messaging: {
      kind: 'amqp',
      masterKey: MASTER_KEY,
      amqp: { url: AMQP_URL, prefix, initialConnectTimeoutMs: 10_000, reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } },
    },
    healthManager: { heartbeatIntervalMs: 200, heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS, healthCheckIntervalMs: 250 },
  });
  client = api.client;
}, 60_000);

afterAll(async () => {
  if (rabbitStopped) await rabbitmqctl('start_app');
  await api?.close();
  for (const s of Object.values(servers)) await s.stop();
  await deleteUnderPrefix(prefix);
  if (process.env.ARGONAUT_KEEP_TEST_DIR) console.log(`test directory kept: ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}, 90_000);

describe('amphorae over RabbitMQ', () => {
  let lbId: string;
  let vip: string;
  let port: number;
  let poolId: string;
  const memberIds: Record<string, string> = {};

  const addMember = async (name: string) => {
    const res = await client.post(`/v2/lbaas/pools/${poolId}/members`, { member: { name, address: '127.0.0.1', protocol_port: servers[name]!.port } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    memberIds[name] = res.body.member.id;
    return res.body.member.id as string;
  };
  const member = async (name: string) => (await client.get(`/v2/lbaas/pools/${poolId}/members/${memberIds[name]}`)).body.member;
  const theAmphora = async () => {
    const list = (await amphorae(client, lbId)).filter((a) => a.status === 'ALLOCATED');
    expect(list).toHaveLength(1);
    return list[0]!;
  };
  const context = () => `controller log:\n${tail(api.logFile)}`;

  it('balances HTTP traffic over two members through the VIP; a member added takes effect', async () => {
    const lb = await client.post('/v2/lbaas/loadbalancers', { loadbalancer: { name: 'amqp-lb', vip_subnet_id: LOOPBACK_SUBNET_ID } });
    expect(lb.status).toBe(201);
    lbId = lb.body.loadbalancer.id;
    vip = lb.body.loadbalancer.vip_address;
    expect(vip).toMatch(/^127\.0\.100\.\d+$/);
    const t0 = Date.now();
    await waitActive(client, lbId).catch((err) => {
      throw new Error(`${err}\n${context()}`);
    });
    console.log(`load balancer ACTIVE (amphora booted, configuration acknowledged over AMQP) in ${Date.now() - t0} ms`);

    port = await freePort();
    const listener = await client.post('/v2/lbaas/listeners', { listener: { loadbalancer_id: lbId, protocol: 'HTTP', protocol_port: port } });
    expect(listener.status).toBe(201);
    await waitActive(client, lbId);
    const pool = await client.post('/v2/lbaas/pools', { pool: { listener_id: listener.body.listener.id, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN' } });
    expect(pool.status).toBe(201);
    poolId = pool.body.pool.id;
    await waitActive(client, lbId);
    for (const name of ['member-a', 'member-b']) {
      await addMember(name);
      await waitActive(client, lbId);
    }
    expect(new Set(await sample(vip, port, 10))).toEqual(new Set(['member-a', 'member-b']));

    await addMember('member-c');
    await waitActive(client, lbId);
    expect((await member('member-c')).provisioning_status).toBe('ACTIVE');
    expect(new Set(await sample(vip, port, 12))).toEqual(new Set(['member-a', 'member-b', 'member-c']));

    // Heartbeats reach the controller over RabbitMQ: a health monitor brings the members ONLINE.
    const hm = await client.post('/v2/lbaas/healthmonitors', {
      healthmonitor: { pool_id: poolId, type: 'HTTP', delay: 1, timeout: 1, max_retries: 1, max_retries_down: 1, url_path: '/healthz' },
    });
    expect(hm.status).toBe(201);
    await waitActive(client, lbId);
    await waitFor('members ONLINE', async () => {
      const statuses = await Promise.all(['member-a', 'member-b', 'member-c'].map(async (n) => (await member(n)).operating_status));
      return statuses.every((s) => s === 'ONLINE') ? true : undefined;
    });
    expect((await lbStatus(client, lbId)).operating).toBe('ONLINE');
  }, 90_000);

  it('RabbitMQ restarted while a member create waits for its acknowledgement: ACTIVE, same amphora, heartbeats and statuses resume', async () => {
    const amphora = await theAmphora();
    const pid = pidOf(amphora);
    const queue = `${prefix}.amphora.${amphora.id}`;
    // The agent is paused so that the push is certainly in RabbitMQ (delivered, unacked) when it stops.
    process.kill(pid, 'SIGSTOP');
    let resumed = false;
    try {
      await addMember('member-d');
      const postedAt = Date.now();
      await waitFor('the push in the amphora queue', async () => ((await queuesUnder(queue)).some((q) => q.messages >= 1) ? true : undefined), 10_000, 50);
      const outage = await restartRabbit(() => sleep(500));
      process.kill(pid, 'SIGCONT');
      resumed = true;
      const status = await settled(client, lbId, ACK_TIMEOUT_MS + 10_000);
      const tookMs = Date.now() - postedAt;
      console.log(`RabbitMQ restart (stop_app, 0.5 s, start_app) took ${outage} ms; the member create ended ${status} ${tookMs} ms after the POST`);
      expect(status, context()).toBe('ACTIVE');
      expect(tookMs).toBeLessThan(ACK_TIMEOUT_MS);
    } finally {
      if (!resumed) process.kill(pid, 'SIGCONT');
    }
    expect((await member('member-d')).provisioning_status).toBe('ACTIVE');
    // The same amphora serves, with the new configuration.
    expect((await theAmphora()).id).toBe(amphora.id);
    expect(isRunning(pid)).toBe(true);
    await waitTraffic(vip, port, ['member-a', 'member-b', 'member-c', 'member-d']);

    // Heartbeats resumed and statuses keep updating: member-d comes ONLINE, member-a goes ERROR when it stops.
    await waitFor('member-d ONLINE', async () => ((await member('member-d')).operating_status === 'ONLINE' ? true : undefined));
    await servers['member-a']!.stop();
    await waitFor('member-a ERROR', async () => ((await member('member-a')).operating_status === 'ERROR' ? true : undefined));
    expect((await lbStatus(client, lbId)).operating).toBe('DEGRADED');
    await servers['member-a']!.start();
    await waitFor('member-a ONLINE again', async () => ((await member('member-a')).operating_status === 'ONLINE' ? true : undefined));
    const stats = await waitFor('statistics counting new connections', async () => {
      const before = (await client.get(`/v2/lbaas/loadbalancers/${lbId}/stats`)).body.stats.total_connections as number;
      await sample(vip, port, 3);
      await sleep(600);
      const after = (await client.get(`/v2/lbaas/loadbalancers/${lbId}/stats`)).body.stats.total_connections as number;
      return after >= before + 3 ? after : undefined;
    });
    expect(stats).toBeGreaterThan(0);
    // No failover happened meanwhile: still the same amphora.
    expect((await theAmphora()).id).toBe(amphora.id);
  }, 90_000);

  it('RabbitMQ down longer than heartbeatTimeoutMs with nothing in flight: traffic flows meanwhile, no amphora is failed over, heartbeats resume', async () => {
    const amphora = await theAmphora();
    const outage = await restartRabbit(async () => {
      // The data plane does not need RabbitMQ: traffic keeps flowing while it is down.
      const until = Date.now() + HEARTBEAT_TIMEOUT_MS + 1500;
      while (Date.now() < until) {
        expect((await sample(vip, port, 1))[0]).toMatch(/^member-/);
        await sleep(200);
      }
    });
    console.log(`RabbitMQ down for ${outage} ms with no operation in flight`);
    // Longer than a heartbeat timeout after the restart: still the same amphora, ACTIVE, statuses updating.
    await sleep(HEARTBEAT_TIMEOUT_MS + 1500);
    expect(await lbStatus(client, lbId), context()).toEqual({ provisioning: 'ACTIVE', operating: 'ONLINE' });
    expect((await theAmphora()).id).toBe(amphora.id);
    await servers['member-b']!.stop();
    await waitFor('member-b ERROR', async () => ((await member('member-b')).operating_status === 'ERROR' ? true : undefined));
    await servers['member-b']!.start();
    await waitFor('member-b ONLINE again', async () => ((await member('member-b')).operating_status === 'ONLINE' ? true : undefined));
  }, 90_000);

  it('a member created while RabbitMQ is down: the push waits in the outbox and is delivered after the restart; ACTIVE', async () => {
    const amphora = await theAmphora();
    let postedAt = 0;
    await restartRabbit(async () => {
      await addMember('member-e');
      postedAt = Date.now();
      await sleep(1000);
      expect((await lbStatus(client, lbId)).provisioning).toBe('PENDING_UPDATE');
    });
    const status = await settled(client, lbId, ACK_TIMEOUT_MS + 10_000);
    console.log(`member created during the outage ended ${status} ${Date.now() - postedAt} ms after the POST`);
    expect(status, context()).toBe('ACTIVE');
    expect((await member('member-e')).provisioning_status).toBe('ACTIVE');
    await waitTraffic(vip, port, ['member-a', 'member-b', 'member-c', 'member-d', 'member-e']);
    await waitFor('member-e ONLINE', async () => ((await member('member-e')).operating_status === 'ONLINE' ? true : undefined));
    // Give the health manager more than a heartbeat timeout: the amphora is not failed over.
    await sleep(HEARTBEAT_TIMEOUT_MS + 1000);
    expect((await theAmphora()).id).toBe(amphora.id);
  }, 90_000);

  it('an amphora agent killed while the controller waits for its acknowledgement is replaced within the operation: ACTIVE', async () => {
    const old = await theAmphora();
    const pid = pidOf(old);
    const queue = `${prefix}.amphora.${old.id}`;
    process.kill(pid, 'SIGSTOP');
    await addMember('member-f');
    const postedAt = Date.now();
    await waitFor('the push in the amphora queue', async () => ((await queuesUnder(queue)).some((q) => q.messages >= 1) ? true : undefined), 10_000, 50);
    process.kill(pid, 'SIGKILL');
    const status = await settled(client, lbId, ACK_TIMEOUT_MS + 20_000);
    const tookMs = Date.now() - postedAt;
    console.log(`member create with its amphora killed ended ${status} ${tookMs} ms after the POST`);
    expect(status, context()).toBe('ACTIVE');
    expect((await member('member-f')).provisioning_status).toBe('ACTIVE');
    expect(tookMs).toBeLessThan(ACK_TIMEOUT_MS);
    const list = await amphorae(client, lbId);
    expect(list.find((a) => a.id === old.id)?.status ?? 'DELETED').toBe('DELETED');
    const replacement = await theAmphora();
    expect(replacement.id).not.toBe(old.id);
    await waitTraffic(vip, port, ['member-a', 'member-b', 'member-c', 'member-d', 'member-e', 'member-f']);
    // The old amphora's queue is gone with it.
    expect(await queuesUnder(queue)).toEqual([]);
  }, 90_000);

  it('an amphora that stays silent past configAckTimeoutMs: the member goes to ERROR, and the load balancer is not stuck', async () => {
    const amphora = await theAmphora();
    const pid = pidOf(amphora);
    process.kill(pid, 'SIGSTOP');
    try {
      await addMember('member-g');
      const postedAt = Date.now();
      // The member's status, not the load balancer's: the load balancer is ACTIVE only for a moment
      // before the health manager fails over the amphora (silent longer than heartbeatTimeoutMs).
      const status = await waitFor(
        'member-g out of PENDING_CREATE',
        async () => {
          const s = (await member('member-g')).provisioning_status as string;
          return s === 'PENDING_CREATE' ? undefined : s;
        },
        ACK_TIMEOUT_MS + 15_000,
      );
      const tookMs = Date.now() - postedAt;
      console.log(`member create to a paused amphora: member ${status} after ${tookMs} ms (configAckTimeoutMs ${ACK_TIMEOUT_MS})`);
      expect(status, context()).toBe('ERROR');
      expect(tookMs).toBeGreaterThanOrEqual(ACK_TIMEOUT_MS - 1000);
      // The reason is in the controller's log (Octavia's API has no status reason): the acknowledgement timed out.
      const failed = readFileSync(api.logFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { msg: string; err?: { message?: string } })
        .filter((e) => e.msg === 'operation failed');
      expect(failed.at(-1)?.err?.message).toContain(`no answer from amphora:${amphora.id} to config.push`);
    } finally {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        /* already replaced (killed) by the health manager's failover */
      }
    }
    // Not stuck afterwards. Either the health manager fails over the amphora (silent longer than
    // heartbeatTimeoutMs) or, resumed first, the amphora applies the late push and reports again;
    // either way the load balancer ends ACTIVE with one amphora that carries traffic (member-g
    // included: an ERROR member stays in the configuration, as with Octavia).
    await sleep(HEARTBEAT_TIMEOUT_MS + 1000);
    await waitActive(client, lbId);
    const now = await theAmphora();
    console.log(now.id === amphora.id ? 'the paused amphora resumed and kept serving' : 'the health manager replaced the paused amphora');
    await waitTraffic(vip, port, ['member-a', 'member-b', 'member-c', 'member-d', 'member-e', 'member-f', 'member-g']);
  }, 90_000);

  it('a load balancer deleted while RabbitMQ is down is deleted all the same: its amphora stops, nothing is left pending', async () => {
    const pid = pidOf(await theAmphora());
    let deletedIn = 0;
    await restartRabbit(async () => {
      const res = await client.delete(`/v2/lbaas/loadbalancers/${lbId}?cascade=true`);
      expect(res.status).toBe(204);
      const t0 = Date.now();
      await waitFor('load balancer gone', async () => ((await client.get(`/v2/lbaas/loadbalancers/${lbId}`)).status === 404 ? true : undefined), 20_000);
      deletedIn = Date.now() - t0;
    });
    console.log(`load balancer deleted during the RabbitMQ outage in ${deletedIn} ms`);
    expect(isRunning(pid)).toBe(false);
    await expect(sample(vip, port, 1)).rejects.toThrow();
  }, 90_000);
});
