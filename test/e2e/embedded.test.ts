// End to end on the embedded default's drivers (process compute, loopback network, in-process
// transport with IPC to the amphora processes), driven only through the HTTP API: real HTTP
// traffic through a real amphora process to member servers on the loopback, health monitoring,
// statistics, failover after kill -9 of the amphora, and cascade delete.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOOPBACK_SUBNET_ID } from '../../driver/network/loopback.ts';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';
import { GiveUp, waitFor } from '../helpers/wait.ts';

const PROJECT = { 'X-Project-Id': 'e2e-project' };
let api: TestApi;
let client: Client;
let stateDir: string;
const members: MemberServer[] = [];

interface MemberServer {
  name: string;
  port: number;
  server: http.Server;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function memberServer(name: string): MemberServer {
  const m: MemberServer = {
    name,
    port: 0,
    server: http.createServer((req, res) => {
      res.setHeader('Content-Type', 'text/plain');
      res.end(req.url === '/healthz' ? 'ok' : name);
    }),
    start: () =>
      new Promise((resolve) => {
        m.server.listen(m.port, '127.0.0.1', () => {
          m.port = (m.server.address() as AddressInfo).port;
          resolve();
        });
      }),
    stop: () =>
      new Promise((resolve) => {
        m.server.closeAllConnections();
        m.server.close(() => resolve());
      }),
  };
  return m;
}

async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function lbStatus(id: string): Promise<{ provisioning: string; operating: string }> {
  const res = await client.get(`/v2/lbaas/loadbalancers/${id}`);
  return { provisioning: res.body.loadbalancer.provisioning_status, operating: res.body.loadbalancer.operating_status };
}

async function waitActive(id: string): Promise<void> {
  await waitFor(`load balancer ${id} ACTIVE`, async () => {
    const s = await lbStatus(id);
    if (s.provisioning === 'ERROR') throw new GiveUp('load balancer went to ERROR');
    return s.provisioning === 'ACTIVE' ? true : undefined;
  });
}

async function get(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return res.text();
}

/** One request on a connection of its own (fetch keeps connections alive; statistics count connections). */
function getOnNewConnection(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false, timeout: 2000 }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

beforeAll(async () => {
  stateDir = mkdtempSync(path.join(tmpdir(), 'argonaut-e2e-'));
  api = await startApi({
    controllerWorker: { computeDriver: 'process', networkDriver: 'loopback', amphoraDriver: 'agent', stateDir, configAckTimeoutMs: 20_000 },
    messaging: { kind: 'in-process' },
    healthManager: { heartbeatIntervalMs: 200, heartbeatTimeoutMs: 2_000, healthCheckIntervalMs: 250 },
  });
  const base = api.client();
  client = { ...base, post: (p, b) => base.raw('POST', p, JSON.stringify(b), { 'Content-Type': 'application/json', ...PROJECT }) };
  for (const name of ['member-a', 'member-b']) {
    const m = memberServer(name);
    await m.start();
    members.push(m);
  }
}, 60_000);

afterAll(async () => {
  await api?.close();
  for (const m of members) await m.stop().catch(() => undefined);
  rmSync(stateDir, { recursive: true, force: true });
}, 60_000);

describe('embedded default: process amphorae on the loopback', () => {
  let lbId: string;
  let vip: string;
  let listenerId: string;
  let poolId: string;
  let memberIds: string[] = [];
  let port: number;

  it('creates a load balancer whose VIP is on 127.0.100.0/24 and an amphora process that acknowledges its configuration', async () => {
    const res = await client.post('/v2/lbaas/loadbalancers', { loadbalancer: { name: 'e2e', vip_subnet_id: LOOPBACK_SUBNET_ID } });
    expect(res.status).toBe(201);
    lbId = res.body.loadbalancer.id;
    vip = res.body.loadbalancer.vip_address;
    expect(vip).toMatch(/^127\.0\.100\.\d+$/);
    await waitActive(lbId);
    const amphorae = await client.get(`/v2/octavia/amphorae?loadbalancer_id=${lbId}`);
    expect(amphorae.body.amphorae).toHaveLength(1);
    expect(amphorae.body.amphorae[0].status).toBe('ALLOCATED');
  }, 30_000);

  it('balances real HTTP traffic over two members', async () => {
    port = await freePort();
    const listener = await client.post('/v2/lbaas/listeners', { listener: { loadbalancer_id: lbId, protocol: 'HTTP', protocol_port: port } });
    expect(listener.status).toBe(201);
    listenerId = listener.body.listener.id;
    await waitActive(lbId);
    const pool = await client.post('/v2/lbaas/pools', { pool: { listener_id: listenerId, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN' } });
    expect(pool.status).toBe(201);
    poolId = pool.body.pool.id;
    await waitActive(lbId);
    for (const m of members) {
      const res = await client.post(`/v2/lbaas/pools/${poolId}/members`, { member: { address: '127.0.0.1', protocol_port: m.port, name: m.name } });
      expect(res.status).toBe(201);
      memberIds.push(res.body.member.id);
      await waitActive(lbId);
    }
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) seen.add(await get(`http://${vip}:${port}/`));
    expect([...seen].sort()).toEqual(['member-a', 'member-b']);
  }, 60_000);

  it('reports members ONLINE through the health monitor, ERROR when one stops, ONLINE again when it returns', async () => {
    const hm = await client.post('/v2/lbaas/healthmonitors', {
      healthmonitor: { pool_id: poolId, type: 'HTTP', delay: 1, timeout: 1, max_retries: 1, max_retries_down: 1, url_path: '/healthz' },
    });
    expect(hm.status).toBe(201);
    await waitActive(lbId);
    const memberStatus = async (id: string) => (await client.get(`/v2/lbaas/pools/${poolId}/members/${id}`)).body.member.operating_status as string;
    const poolStatus = async () => (await client.get(`/v2/lbaas/pools/${poolId}`)).body.pool.operating_status as string;
    await waitFor('both members ONLINE', async () => ((await memberStatus(memberIds[0]!)) === 'ONLINE' && (await memberStatus(memberIds[1]!)) === 'ONLINE' ? true : undefined));
    expect((await lbStatus(lbId)).operating).toBe('ONLINE');

    await members[0]!.stop();
    await waitFor('member-a ERROR', async () => ((await memberStatus(memberIds[0]!)) === 'ERROR' ? true : undefined));
    expect(await poolStatus()).toBe('DEGRADED');
    expect((await lbStatus(lbId)).operating).toBe('DEGRADED');
    // Traffic goes to the living member only.
    for (let i = 0; i < 4; i++) expect(await get(`http://${vip}:${port}/`)).toBe('member-b');

    members[0]!.server = http.createServer((req, res) => res.end(req.url === '/healthz' ? 'ok' : 'member-a'));
    await members[0]!.start();
    await waitFor('member-a ONLINE', async () => ((await memberStatus(memberIds[0]!)) === 'ONLINE' ? true : undefined));
    expect(await poolStatus()).toBe('ONLINE');
  }, 60_000);

  it('counts the connections and bytes in the listener statistics', async () => {
    const before = (await client.get(`/v2/lbaas/listeners/${listenerId}/stats`)).body.stats;
    for (let i = 0; i < 5; i++) expect(await getOnNewConnection(`http://${vip}:${port}/`)).toMatch(/^member-/);
    const stats = await waitFor('statistics to count 5 more connections', async () => {
      const s = (await client.get(`/v2/lbaas/listeners/${listenerId}/stats`)).body.stats;
      return s.total_connections >= before.total_connections + 5 ? s : undefined;
    });
    expect(stats.bytes_in).toBeGreaterThan(before.bytes_in);
    expect(stats.bytes_out).toBeGreaterThan(before.bytes_out);
    const lbStats = (await client.get(`/v2/lbaas/loadbalancers/${lbId}/stats`)).body.stats;
    expect(lbStats.total_connections).toBeGreaterThanOrEqual(stats.total_connections);
  }, 30_000);

  it('fails over an amphora killed with SIGKILL: a new amphora serves the VIP', async () => {
    const old = (await client.get(`/v2/octavia/amphorae?loadbalancer_id=${lbId}`)).body.amphorae[0];
    const pid = Number(String(old.compute_id).split(':')[1]);
    expect(Number.isInteger(pid)).toBe(true);
    process.kill(pid, 'SIGKILL');
    const killedAt = Date.now();
    const replacement = await waitFor('a replacement amphora ALLOCATED', async () => {
      const list = (await client.get(`/v2/octavia/amphorae?loadbalancer_id=${lbId}`)).body.amphorae as Array<{ id: string; status: string }>;
      return list.find((a) => a.id !== old.id && a.status === 'ALLOCATED');
    });
    expect(replacement).toBeDefined();
    await waitFor('traffic through the VIP again', async () => ((await get(`http://${vip}:${port}/`).catch(() => '')) ? true : undefined));
    expect(Date.now() - killedAt).toBeLessThan(15_000);
    await waitActive(lbId);
    const list = (await client.get(`/v2/octavia/amphorae?loadbalancer_id=${lbId}`)).body.amphorae as Array<{ id: string; status: string }>;
    expect(list.find((a) => a.id === old.id)?.status ?? 'DELETED').toBe('DELETED');
  }, 40_000);

  it('cascade delete removes the load balancer and stops its amphora', async () => {
    const amphora = (await client.get(`/v2/octavia/amphorae?loadbalancer_id=${lbId}`)).body.amphorae.find((a: { status: string }) => a.status === 'ALLOCATED');
    const pid = Number(String(amphora.compute_id).split(':')[1]);
    const res = await client.delete(`/v2/lbaas/loadbalancers/${lbId}?cascade=true`);
    expect(res.status).toBe(204);
    await waitFor('load balancer gone', async () => ((await client.get(`/v2/lbaas/loadbalancers/${lbId}`)).status === 404 ? true : undefined));
    await waitFor('amphora process gone', async () => {
      try {
        process.kill(pid, 0);
        return undefined;
      } catch {
        return true;
      }
    });
    await expect(get(`http://${vip}:${port}/`)).rejects.toThrow();
  }, 30_000);
});
