// Issue 5's promise "restarting the controller and the API mid-operation leaves every object ACTIVE
// or ERROR, never stuck", with real amphorae: the API (and its controller worker) runs as a child
// process (bin/argonaut.ts api) on MariaDB, with process amphorae over the real RabbitMQ and
// loopback VIPs; it is killed with SIGKILL twice mid-operation and started again. The process
// driver's agents stop when their parent goes, so each new controller must replace the amphorae of
// the previous one: at start, every load balancer with an amphora the compute driver does not know
// alive is made pending and resumed like those the crash left pending (driver/amphora/
// dead-amphorae.ts). The last test kills an amphora (not the controller) right after its load
// balancer went ACTIVE: the health manager fails it over. Members are HTTP servers on 127.0.0.1.
// Needs MariaDB on 127.0.0.1:3306 (root, no password) and RabbitMQ on 127.0.0.1:5672 (guest/guest);
// does not restart RabbitMQ. Every queue and exchange of the run's prefix and the database are
// removed at the end.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropMysqlDatabase } from '../../common/db/database.ts';
import { LOOPBACK_SUBNET_ID } from '../../driver/network/loopback.ts';
import { freePort as freeApiPort, startApiProcess, type ApiProcess } from '../helpers/process.ts';
import {
  amphorae,
  AMQP_URL,
  apiClient,
  assertRabbitUp,
  deleteUnderPrefix,
  freePort,
  isRunning,
  MASTER_KEY,
  memberServer,
  MYSQL_BASE,
  pidOf,
  runPrefix,
  sample,
  settled,
  treeStatuses,
  waitActive,
  waitFor,
  type ApiClient,
  type MemberServer,
} from './amphora-helpers.ts';

const HEARTBEAT_TIMEOUT_MS = 2_000;
const ACK_TIMEOUT_MS = 15_000;
/** How long a restarted controller may take to bring every object out of PENDING_* and every load balancer back to traffic. */
const CONVERGE_MS = 30_000;
const prefix = runPrefix('amph-restart');
const dir = mkdtempSync(path.join(tmpdir(), 'argonaut-amphora-restart-'));
const dbUrl = `${MYSQL_BASE}/argonaut_amph_restart_${randomBytes(4).toString('hex')}`;
const servers: Record<string, MemberServer> = {};
const processes: ApiProcess[] = [];
let apiPort: number;

function config(workerDelayMs: number, heartbeats = { heartbeatIntervalMs: 200, heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS }): Record<string, unknown> {
  return {
    api: { port: apiPort },
    database: { url: dbUrl },
    logging: { level: 'info' },
    controllerWorker: {
      computeDriver: 'process',
      networkDriver: 'loopback',
      amphoraDriver: 'agent',
      stateDir: dir,
      configAckTimeoutMs: ACK_TIMEOUT_MS,
      workerDelayMs,
    },
    messaging: {
      kind: 'amqp',
      masterKey: MASTER_KEY,
      amqp: { url: AMQP_URL, prefix, initialConnectTimeoutMs: 10_000, reconnect: { initialDelayMs: 100, maxDelayMs: 1000 } },
    },
    healthManager: { ...heartbeats, healthCheckIntervalMs: 250 },
  };
}

const running = (p: ApiProcess) => p.child.exitCode === null && p.child.signalCode === null;

/** SIGTERM (the controller stops its amphorae), SIGKILL after 15 s. */
async function stopController(p: ApiProcess): Promise<void> {
  if (!running(p)) return;
  p.child.kill('SIGTERM');
  await Promise.race([p.exited, new Promise((r) => setTimeout(r, 15_000))]);
  if (running(p)) p.child.kill('SIGKILL');
  await p.exited;
}

async function startController(name: string, workerDelayMs: number, heartbeats?: Parameters<typeof config>[1]): Promise<{ proc: ApiProcess; api: ApiClient }> {
  // A test that failed before stopping its controller left it answering on the API port: the new
  // one could not listen, and the next test would have driven (and killed) the wrong process.
  for (const p of processes) await stopController(p);
  const proc = await startApiProcess(dir, config(workerDelayMs, heartbeats), `${name}.yaml`);
  processes.push(proc);
  return { proc, api: apiClient(proc.url) };
}

/** SIGKILL, as a crash; returns the pids of the amphora agents it had started (they must stop on their own). */
async function crash(proc: ApiProcess, api: ApiClient, lbIds: string[]): Promise<number[]> {
  const pids: number[] = [];
  for (const id of lbIds) for (const a of await amphorae(api, id)) if (a.compute_id && a.status !== 'DELETED') pids.push(pidOf(a));
  proc.child.kill('SIGKILL');
  expect(await proc.exited).toBe('SIGKILL');
  return pids;
}

const controllerOutput = () => processes.map((p, i) => `--- controller ${i} ---\n${p.output().trimEnd().split('\n').slice(-40).join('\n')}`).join('\n');

beforeAll(async () => {
  await assertRabbitUp();
  for (const name of ['one-a', 'one-b', 'one-c', 'two-a', 'two-b']) {
    servers[name] = memberServer(name);
    await servers[name].start();
  }
  // After the member servers (which listen on port 0): one of them once got the port freeApiPort() had just released.
  apiPort = await freeApiPort();
}, 60_000);

afterAll(async () => {
  for (const p of processes) await stopController(p);
  if (process.env.ARGONAUT_KEEP_TEST_DIR) {
    processes.forEach((p, i) => writeFileSync(path.join(dir, `controller-${i}.log`), p.output()));
    console.log(`test directory kept: ${dir}`);
  }
  for (const s of Object.values(servers)) await s.stop();
  await deleteUnderPrefix(prefix);
  await dropMysqlDatabase(dbUrl);
  if (!process.env.ARGONAUT_KEEP_TEST_DIR) rmSync(dir, { recursive: true, force: true });
}, 90_000);

describe('the API/controller process killed with SIGKILL mid-operation and started again', () => {
  let lb1: { id: string; vip: string; port: number; poolId: string };
  let lb2: { id: string; vip: string; port: number; poolId: string };

  async function build(api: ApiClient, name: string, memberNames: string[]) {
    const lb = await api.post('/v2/lbaas/loadbalancers', { loadbalancer: { name, vip_subnet_id: LOOPBACK_SUBNET_ID } });
    expect(lb.status, JSON.stringify(lb.body)).toBe(201);
    const id = lb.body.loadbalancer.id as string;
    await waitActive(api, id);
    const port = await freePort();
    const listener = await api.post('/v2/lbaas/listeners', { listener: { loadbalancer_id: id, protocol: 'HTTP', protocol_port: port } });
    expect(listener.status).toBe(201);
    await waitActive(api, id);
    const pool = await api.post('/v2/lbaas/pools', { pool: { listener_id: listener.body.listener.id, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN' } });
    expect(pool.status).toBe(201);
    await waitActive(api, id);
    const poolId = pool.body.pool.id as string;
    for (const m of memberNames) {
      const res = await api.post(`/v2/lbaas/pools/${poolId}/members`, { member: { name: m, address: '127.0.0.1', protocol_port: servers[m]!.port } });
      expect(res.status).toBe(201);
      await waitActive(api, id);
    }
    return { id, vip: lb.body.loadbalancer.vip_address as string, port, poolId };
  }

  /** Every object of the load balancer ACTIVE, one living amphora, and traffic through the VIP to exactly `expected`. */
  async function converged(api: ApiClient, lb: { id: string; vip: string; port: number }, expected: string[]): Promise<void> {
    await waitFor(
      `load balancer ${lb.id} converged`,
      async () => {
        const statuses = await treeStatuses(api, lb.id);
        if (statuses.some((s) => s.provisioning.startsWith('PENDING_'))) return undefined;
        const allocated = (await amphorae(api, lb.id)).filter((a) => a.status === 'ALLOCATED');
        if (allocated.length !== 1 || !isRunning(pidOf(allocated[0]!))) return undefined;
        const seen = new Set(await sample(lb.vip, lb.port, expected.length * 3));
        return [...seen].sort().join(',') === [...expected].sort().join(',') ? true : undefined;
      },
      CONVERGE_MS,
      200,
    );
    const statuses = await treeStatuses(api, lb.id);
    expect(statuses.filter((s) => s.provisioning !== 'ACTIVE')).toEqual([]);
  }

  it('killed while a load balancer create and a member create wait in the worker: the next process finishes both and replaces the dead amphora', async () => {
    // A slow worker: every operation waits 1 s before it starts (controllerWorker.workerDelayMs).
    const a = await startController('a', 1000);
    lb1 = await build(a.api, 'one', ['one-a', 'one-b']);
    expect(new Set(await sample(lb1.vip, lb1.port, 6))).toEqual(new Set(['one-a', 'one-b']));

    const lb = await a.api.post('/v2/lbaas/loadbalancers', { loadbalancer: { name: 'two', vip_subnet_id: LOOPBACK_SUBNET_ID } });
    expect(lb.status).toBe(201);
    const member = await a.api.post(`/v2/lbaas/pools/${lb1.poolId}/members`, { member: { name: 'one-c', address: '127.0.0.1', protocol_port: servers['one-c']!.port } });
    expect(member.status).toBe(201);
    expect((await a.api.get(`/v2/lbaas/loadbalancers/${lb.body.loadbalancer.id}`)).body.loadbalancer.provisioning_status).toBe('PENDING_CREATE');
    expect((await a.api.get(`/v2/lbaas/loadbalancers/${lb1.id}`)).body.loadbalancer.provisioning_status).toBe('PENDING_UPDATE');
    const agents = await crash(a.proc, a.api, [lb1.id]);
    expect(agents.length).toBeGreaterThan(0);
    // The process driver's agents stop when their parent goes.
    await waitFor('the agents of the killed controller to stop', async () => (agents.every((pid) => !isRunning(pid)) ? true : undefined), 20_000);

    const startedAt = Date.now();
    const b = await startController('b', 0);
    await converged(b.api, lb1, ['one-a', 'one-b', 'one-c']);
    const lb2Id = lb.body.loadbalancer.id as string;
    expect(await settled(b.api, lb2Id, CONVERGE_MS)).toBe('ACTIVE');
    console.log(`restarted controller: both pending operations finished and traffic restored ${Date.now() - startedAt} ms after its start`);
    const list = await amphorae(b.api, lb1.id);
    expect(list.filter((x) => x.status === 'ALLOCATED')).toHaveLength(1);
    expect(list.filter((x) => x.status !== 'ALLOCATED').every((x) => x.status === 'DELETED')).toBe(true);

    // The load balancer created across the crash carries traffic too.
    const port = await freePort();
    const listener = await b.api.post('/v2/lbaas/listeners', { listener: { loadbalancer_id: lb2Id, protocol: 'HTTP', protocol_port: port } });
    expect(listener.status).toBe(201);
    await waitActive(b.api, lb2Id);
    const pool = await b.api.post('/v2/lbaas/pools', { pool: { listener_id: listener.body.listener.id, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN' } });
    await waitActive(b.api, lb2Id);
    const res = await b.api.post(`/v2/lbaas/pools/${pool.body.pool.id}/members`, { member: { name: 'two-a', address: '127.0.0.1', protocol_port: servers['two-a']!.port } });
    expect(res.status).toBe(201);
    await waitActive(b.api, lb2Id);
    lb2 = { id: lb2Id, vip: lb.body.loadbalancer.vip_address, port, poolId: pool.body.pool.id };
    expect(new Set(await sample(lb2.vip, lb2.port, 3))).toEqual(new Set(['two-a']));
  }, 120_000);

  it('killed while it waits for an amphora to acknowledge a configuration: the next process finishes it, and repairs at start the ACTIVE load balancer whose amphora died with it', async () => {
    const b = processes.at(-1)!;
    const api = apiClient(b.url);
    // The amphora of lb2 is paused: the member create certainly waits for its acknowledgement when the controller dies.
    const amp2 = (await amphorae(api, lb2.id)).find((x) => x.status === 'ALLOCATED')!;
    const pid2 = pidOf(amp2);
    process.kill(pid2, 'SIGSTOP');
    const res = await api.post(`/v2/lbaas/pools/${lb2.poolId}/members`, { member: { name: 'two-b', address: '127.0.0.1', protocol_port: servers['two-b']!.port } });
    expect(res.status).toBe(201);
    await new Promise((r) => setTimeout(r, 500));
    expect((await api.get(`/v2/lbaas/loadbalancers/${lb2.id}`)).body.loadbalancer.provisioning_status).toBe('PENDING_UPDATE');
    const agents = await crash(b, api, [lb1.id, lb2.id]);
    process.kill(pid2, 'SIGCONT');
    await waitFor('the agents of the killed controller to stop', async () => (agents.every((pid) => !isRunning(pid)) ? true : undefined), 20_000);

    const startedAt = Date.now();
    const c = await startController('c', 0);
    // lb2 was pending: resumed, its dead amphora replaced, the member created.
    await converged(c.api, lb2, ['two-a', 'two-b']);
    // lb1 was ACTIVE: its amphora died with the controller; the new one repairs it at start.
    await converged(c.api, lb1, ['one-a', 'one-b', 'one-c']);
    const tookMs = Date.now() - startedAt;
    console.log(`restarted controller: pending member create finished and both load balancers carry traffic ${tookMs} ms after its start`);
    expect(tookMs).toBeLessThan(CONVERGE_MS);
    for (const lb of [lb1, lb2]) {
      const list = await amphorae(c.api, lb.id);
      expect(list.filter((x) => x.status === 'ALLOCATED')).toHaveLength(1);
      expect(list.filter((x) => x.status !== 'ALLOCATED').every((x) => x.status === 'DELETED')).toBe(true);
    }

    // A clean stop of the last controller stops its amphorae.
    const pids = [lb1, lb2].map(async (lb) => pidOf((await amphorae(c.api, lb.id)).find((x) => x.status === 'ALLOCATED')!));
    const living = await Promise.all(pids);
    c.proc.child.kill('SIGTERM');
    expect(await c.proc.exited, controllerOutput()).toBe(0);
    expect(living.filter(isRunning)).toEqual([]);
  }, 120_000);

  it('killed right after a create went ACTIVE, before any heartbeat of the new amphora was handled: the next process replaces that amphora at start', async () => {
    // Heartbeats every 1.5 s: the controller dies within the first interval after the amphora
    // acknowledged its configuration, so no heartbeat of it (as an ALLOCATED amphora) was handled.
    const heartbeats = { heartbeatIntervalMs: 1500, heartbeatTimeoutMs: 4000 };
    const d = await startController('d', 0, heartbeats);
    // With a spare amphora ready (when the spare pool is on), the create only pushes a configuration:
    // the load balancer is ACTIVE within milliseconds of the amphora becoming ALLOCATED.
    const spare = await waitFor(
      'a READY spare amphora',
      async () => ((await d.api.get('/v2/octavia/amphorae')).body.amphorae as Array<{ status: string }>).some((x) => x.status === 'READY') || undefined,
      10_000,
    ).catch(() => false);
    console.log(spare ? 'a spare amphora is ready: the create claims it' : 'no spare amphora: the create boots one');
    const port = await freePort();
    const lb = await d.api.post('/v2/lbaas/loadbalancers', {
      loadbalancer: {
        name: 'three',
        vip_subnet_id: LOOPBACK_SUBNET_ID,
        listeners: [
          {
            protocol: 'HTTP',
            protocol_port: port,
            default_pool: { name: 'three-pool', protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN', members: [{ address: '127.0.0.1', protocol_port: servers['two-a']!.port }] },
          },
        ],
      },
    });
    expect(lb.status, JSON.stringify(lb.body)).toBe(201);
    const lb3 = { id: lb.body.loadbalancer.id as string, vip: lb.body.loadbalancer.vip_address as string, port };
    await waitFor('load balancer three ACTIVE', async () => ((await d.api.get(`/v2/lbaas/loadbalancers/${lb3.id}`)).body.loadbalancer.provisioning_status === 'ACTIVE' ? true : undefined), 20_000, 20);
    const agents = await crash(d.proc, d.api, [lb3.id]);
    await waitFor('the agents of the killed controller to stop', async () => (agents.every((pid) => !isRunning(pid)) ? true : undefined), 20_000);

    const startedAt = Date.now();
    const e = await startController('e', 0, heartbeats);
    await converged(e.api, lb3, ['two-a']);
    const tookMs = Date.now() - startedAt;
    console.log(`restarted controller: the amphora that died before its first heartbeat was replaced; traffic ${tookMs} ms after the start`);
    expect(tookMs).toBeLessThan(CONVERGE_MS);
  }, 120_000);

  it('an amphora killed right after its load balancer went ACTIVE, before any heartbeat of it was handled: the health manager fails it over', async () => {
    const e = processes.at(-1)!;
    const api = apiClient(e.url);
    await waitFor(
      'a READY spare amphora',
      async () => ((await api.get('/v2/octavia/amphorae')).body.amphorae as Array<{ status: string }>).some((x) => x.status === 'READY') || undefined,
      10_000,
    ).catch(() => false);
    const port = await freePort();
    const lb = await api.post('/v2/lbaas/loadbalancers', {
      loadbalancer: {
        name: 'four',
        vip_subnet_id: LOOPBACK_SUBNET_ID,
        listeners: [
          {
            protocol: 'HTTP',
            protocol_port: port,
            default_pool: { name: 'four-pool', protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN', members: [{ address: '127.0.0.1', protocol_port: servers['one-a']!.port }] },
          },
        ],
      },
    });
    expect(lb.status, JSON.stringify(lb.body)).toBe(201);
    const lb4 = { id: lb.body.loadbalancer.id as string, vip: lb.body.loadbalancer.vip_address as string, port };
    await waitFor('load balancer four ACTIVE', async () => ((await api.get(`/v2/lbaas/loadbalancers/${lb4.id}`)).body.loadbalancer.provisioning_status === 'ACTIVE' ? true : undefined), 20_000, 20);
    const old = (await amphorae(api, lb4.id)).find((x) => x.status === 'ALLOCATED')!;
    process.kill(pidOf(old), 'SIGKILL');
    const killedAt = Date.now();
    await converged(api, lb4, ['one-a']);
    const tookMs = Date.now() - killedAt;
    console.log(`amphora killed right after ACTIVE: failed over, traffic again ${tookMs} ms after the kill`);
    expect((await amphorae(api, lb4.id)).find((x) => x.id === old.id)?.status ?? 'DELETED').toBe('DELETED');
    e.child.kill('SIGTERM');
    expect(await e.exited, controllerOutput()).toBe(0);
  }, 120_000);
});
