// End to end on the netns drivers (root), driven only through the HTTP API: amphorae are network
// namespaces plugged into the local network driver's bridge (on the host), members are servers in
// namespaces of their own ("other hosts" on the same bridge), and a client namespace sends real
// HTTP and TCP traffic to the VIP. Covers: create and ACTIVE after each step, round robin over two
// members, operating statuses from the heartbeats (ONLINE, ERROR/DEGRADED when a member dies),
// listener statistics, failover after kill -9 of the amphora's agent, and cascade delete.
//
// Addresses (the local network driver's default split of 10.215.77.0/24): .1 the bridge (gateway),
// .2-.127 VIPs, .128-.254 amphora management addresses, handed out lowest first (.128, .129...),
// skipping every address already on the eth0 of a namespace of the prefix. The client and members
// take .250-.252: their namespaces carry the prefix and an eth0, so no amphora can ever be given
// their addresses (and this test never runs more than three amphorae at once anyway: the load
// balancer's, the spare pool's, a replacement). Traffic only ever goes to addresses of this subnet
// held by this run's namespaces.
//
// Everything is named with a prefix of this run (bridge included) and removed in afterAll, even
// when a test failed, then checked gone.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupLocalNetwork } from '../../driver/network/local/cleanup.ts';
import { listAddresses, listLinks, listNamespaces, namespaceExists, namespacePids } from '../../driver/network/local/ip.ts';
import { bridgeName, hasPrefix, hostVethName } from '../../driver/network/local/names.ts';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';
import { IS_ROOT, testPrefix } from '../driver/local/netns-helpers.ts';
import { plugHost, startClient, startMember, type ClientProcess, type MemberProcess } from './netns-hosts.ts';
import { BoundedCleanup, waitFor, waitLoadBalancerActive } from '../helpers/wait.ts';

const run = promisify(execFile);
const PROJECT = { 'X-Project-Id': 'e2e-netns' };
const prefix = testPrefix('e');
const BRIDGE = bridgeName(prefix);
const NET = '10.215.77';
const CIDR = `${NET}.0/24`;
const SUBNET_ID = randomUUID();
const NETWORK_ID = randomUUID();
const CLIENT_NS = `${prefix}-client`;
const HOSTS = {
  client: { ns: CLIENT_NS, veth: `${prefix}-cl`, address: `${NET}.250` },
  m1: { ns: `${prefix}-m1`, veth: `${prefix}-m1`, address: `${NET}.251` },
  m2: { ns: `${prefix}-m2`, veth: `${prefix}-m2`, address: `${NET}.252` },
} as const;
const HTTP_MEMBER_PORT = 8080;
const TCP_MEMBER_PORT = 9000;
const HTTP_PORT = 80;
const TCP_PORT = 7000;

let api: TestApi | undefined;
let client: Client;
let stateDir: string;
let net: ClientProcess | undefined;
const servers = new Map<string, MemberProcess>();

function waitActive(id: string, timeoutMs = 30_000): Promise<void> {
  return waitLoadBalancerActive(client, id, timeoutMs);
}

async function create(collection: string, key: string, body: Record<string, unknown>, lbId: string): Promise<string> {
  const res = await client.post(`/v2/lbaas/${collection}`, { [key]: body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  await waitActive(lbId);
  return res.body[key].id as string;
}

interface StatusTree {
  loadbalancer: {
    operating_status: string;
    listeners: Array<{ id: string; operating_status: string; pools: Array<{ id: string; operating_status: string; members: Array<{ id: string; operating_status: string }> }> }>;
  };
}

async function statusTree(lbId: string): Promise<StatusTree> {
  return (await client.get(`/v2/lbaas/loadbalancers/${lbId}/status`)).body.statuses as StatusTree;
}

/** Operating statuses by id (load balancer, listeners, pools, members) from the status tree. */
async function operatingStatuses(lbId: string): Promise<Record<string, string>> {
  const tree = (await statusTree(lbId)).loadbalancer;
  const out: Record<string, string> = { [lbId]: tree.operating_status };
  for (const l of tree.listeners) {
    out[l.id] = l.operating_status;
    for (const p of l.pools) {
      out[p.id] = p.operating_status;
      for (const m of p.members) out[m.id] = m.operating_status;
    }
  }
  return out;
}

async function waitStatuses(lbId: string, expected: Record<string, string>, what: string, timeoutMs = 20_000): Promise<void> {
  let last: Record<string, string> = {};
  try {
    await waitFor(
      what,
      async () => {
        last = await operatingStatuses(lbId);
        return Object.entries(expected).every(([id, s]) => last[id] === s) ? true : undefined;
      },
      timeoutMs,
      150,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; expected ${JSON.stringify(expected)}, last seen ${JSON.stringify(last)}`);
  }
}

async function listenerStats(id: string): Promise<{ bytes_in: number; bytes_out: number; total_connections: number; active_connections: number; request_errors: number }> {
  return (await client.get(`/v2/lbaas/listeners/${id}/stats`)).body.stats;
}

/** Both listeners' statistics once they have not changed for 1 s (5 heartbeats). */
async function settledStats(httpListenerId: string, tcpListenerId: string): Promise<{ http: Awaited<ReturnType<typeof listenerStats>>; tcp: Awaited<ReturnType<typeof listenerStats>> }> {
  let last = '';
  let since = 0;
  return waitFor(
    'the listener statistics to settle',
    async () => {
      const now = { http: await listenerStats(httpListenerId), tcp: await listenerStats(tcpListenerId) };
      const text = JSON.stringify(now);
      if (text !== last) {
        last = text;
        since = Date.now();
        return undefined;
      }
      return Date.now() - since >= 1000 ? now : undefined;
    },
    15_000,
    200,
  );
}

async function amphoraeOf(lbId: string): Promise<Array<{ id: string; status: string; compute_id: string; lb_network_ip: string }>> {
  return (await client.get(`/v2/octavia/amphorae?loadbalancer_id=${lbId}`)).body.amphorae;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

async function neighbours(ns: string): Promise<string> {
  const { stdout } = await run('ip', ['-n', ns, 'neigh', 'show']);
  return stdout.trim().replace(/\n/g, '; ');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The namespaces of this run's prefix other than the test's own hosts: the amphorae's. */
async function amphoraNamespaces(): Promise<string[]> {
  const own = new Set<string>(Object.values(HOSTS).map((h) => h.ns));
  return (await listNamespaces()).filter((n) => hasPrefix(prefix, n) && !own.has(n)).sort();
}

/**
 * Waits until the amphora namespaces on the host are exactly those of the amphorae the API lists
 * as not DELETED (the load balancer's, and the spare pool's: READY, no load balancer), and returns
 * those amphorae. (A spare being booted in the background may briefly have a namespace before its
 * record says so, or the other way round: hence the wait.)
 */
async function namespacesMatchAmphorae(): Promise<Array<{ id: string; status: string; loadbalancer_id: string | null }>> {
  let last = '';
  try {
    return await waitFor(
      'amphora namespaces to match the amphorae in the API',
      async () => {
        const all = ((await client.get('/v2/octavia/amphorae')).body.amphorae as Array<{ id: string; status: string; loadbalancer_id: string | null }>).filter(
          (a) => a.status !== 'DELETED',
        );
        const expected = all.map((a) => `${prefix}-${a.id}`).sort();
        const actual = await amphoraNamespaces();
        last = `namespaces ${JSON.stringify(actual)}, amphorae ${JSON.stringify(all.map((a) => `${a.id} ${a.status} lb=${a.loadbalancer_id}`))}`;
        return JSON.stringify(expected) === JSON.stringify(actual) ? all : undefined;
      },
      15_000,
      200,
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}: ${last}`);
  }
}

/** Each run records its pid under its prefix, so that a later run can tell a dead run's leftovers from a live run's resources. */
const ownerFile = (p: string) => path.join(tmpdir(), `argonaut-e2e-netns-${p}.pid`);

/**
 * Leftovers of earlier runs of this file that died before their afterAll (bridges named like ours
 * holding an address of CIDR, whose run's process is gone) are removed. Runs at the same time do not
 * disturb each other: each has its own bridge.
 */
async function removeEarlierRuns(): Promise<void> {
  for (const link of await listLinks()) {
    const p = /^(e[0-9a-f]{4})-br$/.exec(link.name)?.[1];
    if (!p || p === prefix || !(await listAddresses(link.name)).some((a) => a.startsWith(`${NET}.`))) continue;
    let owner = NaN;
    try {
      owner = Number(readFileSync(ownerFile(p), 'utf8'));
    } catch {
      /* no owner recorded: dead */
    }
    if (Number.isInteger(owner) && alive(owner) && cmdline(owner).includes('node')) continue;
    await cleanupLocalNetwork(p);
    rmSync(ownerFile(p), { force: true });
  }
}

if (!IS_ROOT) console.warn('test/e2e/netns.test.ts skipped: it needs root (network namespaces, veth pairs and a bridge on the host)');

describe.skipIf(!IS_ROOT)('netns amphorae on the local network, through the HTTP API (root)', () => {
  beforeAll(async () => {
    writeFileSync(ownerFile(prefix), String(process.pid));
    await removeEarlierRuns();
    stateDir = mkdtempSync(path.join(tmpdir(), 'argonaut-e2e-netns-'));
    api = await startApi({
      controllerWorker: { computeDriver: 'netns', networkDriver: 'local', amphoraDriver: 'agent', stateDir, configAckTimeoutMs: 20_000 },
      localNetwork: { cidr: CIDR, bridge: BRIDGE, prefix, subnetId: SUBNET_ID, networkId: NETWORK_ID },
      messaging: { kind: 'in-process' },
      healthManager: { heartbeatIntervalMs: 200, heartbeatTimeoutMs: 2_000, healthCheckIntervalMs: 250 },
    });
    const base = api.client();
    client = { ...base, post: (p, b) => base.raw('POST', p, JSON.stringify(b), { 'Content-Type': 'application/json', ...PROJECT }) };
    // The API created the bridge (with the gateway's address) on the host.
    expect(await listAddresses(BRIDGE)).toEqual([`${NET}.1/24`]);
    for (const h of Object.values(HOSTS)) await plugHost({ name: h.ns, hostVeth: h.veth, bridge: BRIDGE, address: h.address, prefixLength: 24 });
    servers.set('m1-http', await startMember(HOSTS.m1.ns, 'http', HOSTS.m1.address, HTTP_MEMBER_PORT, 'member-1'));
    servers.set('m2-http', await startMember(HOSTS.m2.ns, 'http', HOSTS.m2.address, HTTP_MEMBER_PORT, 'member-2'));
    servers.set('m2-tcp', await startMember(HOSTS.m2.ns, 'tcp', HOSTS.m2.address, TCP_MEMBER_PORT, 'tcp-member-2'));
    net = await startClient(CLIENT_NS);
    // The other hosts reach each other over the bridge.
    expect((await net.get(HOSTS.m1.address, HTTP_MEMBER_PORT)).body).toBe('member-1');
  }, 60_000);

  afterAll(async () => {
    // Each step is bounded, so that the network cleanup below runs whatever happens before it.
    const cleanup = new BoundedCleanup(15_000);
    const attempt = cleanup.attempt.bind(cleanup);
    await attempt(async () => api?.close(), 'stopping the API', 20_000);
    await attempt(async () => net?.stop());
    for (const s of servers.values()) await attempt(() => s.kill());
    // Also kills whatever still runs in a namespace of the prefix, then removes them and the links.
    await attempt(() => cleanupLocalNetwork(prefix));
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    rmSync(ownerFile(prefix), { force: true });
    expect((await listNamespaces()).filter((n) => hasPrefix(prefix, n))).toEqual([]);
    expect((await listLinks()).filter((l) => hasPrefix(prefix, l.name))).toEqual([]);
    cleanup.finish('cleaning up the netns end-to-end test failed');
  }, 60_000);

  let lbId: string;
  let vip: string;
  let httpListenerId: string;
  let httpPoolId: string;
  let tcpListenerId: string;
  let tcpPoolId: string;
  let tcpMemberId: string;
  const memberIds: string[] = [];

  it('creates a load balancer on the local subnet: an amphora namespace holds the VIP', async () => {
    const res = await client.post('/v2/lbaas/loadbalancers', { loadbalancer: { name: 'e2e-netns', vip_subnet_id: SUBNET_ID } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    lbId = res.body.loadbalancer.id;
    vip = res.body.loadbalancer.vip_address;
    expect(res.body.loadbalancer.vip_network_id).toBe(NETWORK_ID);
    expect(vip).toBe(`${NET}.2`); // the first address of the VIP range
    await waitActive(lbId);
    const [amphora, ...others] = await amphoraeOf(lbId);
    expect(others).toEqual([]);
    expect(amphora!.status).toBe('ALLOCATED');
    expect(amphora!.compute_id).toBe(amphora!.id);
    // A management address from the upper half (the amphora may be a spare booted before the load balancer existed).
    const [, lastOctet] = /^10\.215\.77\.(\d+)$/.exec(amphora!.lb_network_ip) ?? [];
    expect(Number(lastOctet)).toBeGreaterThanOrEqual(128);
    expect(Number(lastOctet)).toBeLessThan(250);
    expect(await listAddresses('eth0', { netns: `${prefix}-${amphora!.id}` })).toEqual([`${amphora!.lb_network_ip}/24`, `${vip}/32`]);
    await namespacesMatchAmphorae();
  }, 40_000);

  it('creates an HTTP listener, pool, two members and an HTTP health monitor, and a TCP listener, pool and member (ACTIVE after each step)', async () => {
    httpListenerId = await create('listeners', 'listener', { loadbalancer_id: lbId, protocol: 'HTTP', protocol_port: HTTP_PORT, name: 'http' }, lbId);
    httpPoolId = await create('pools', 'pool', { listener_id: httpListenerId, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN', name: 'http' }, lbId);
    for (const [i, h] of [HOSTS.m1, HOSTS.m2].entries()) {
      memberIds.push(
        await create(
          `pools/${httpPoolId}/members`,
          'member',
          { address: h.address, protocol_port: HTTP_MEMBER_PORT, subnet_id: SUBNET_ID, name: `member-${i + 1}` },
          lbId,
        ),
      );
    }
    await create(
      'healthmonitors',
      'healthmonitor',
      { pool_id: httpPoolId, type: 'HTTP', delay: 1, timeout: 1, max_retries: 1, max_retries_down: 1, url_path: '/healthz', expected_codes: '200' },
      lbId,
    );
    tcpListenerId = await create('listeners', 'listener', { loadbalancer_id: lbId, protocol: 'TCP', protocol_port: TCP_PORT, name: 'tcp' }, lbId);
    tcpPoolId = await create('pools', 'pool', { listener_id: tcpListenerId, protocol: 'TCP', lb_algorithm: 'ROUND_ROBIN', name: 'tcp' }, lbId);
    tcpMemberId = await create(
      `pools/${tcpPoolId}/members`,
      'member',
      { address: HOSTS.m2.address, protocol_port: TCP_MEMBER_PORT, subnet_id: SUBNET_ID, name: 'tcp-member-2' },
      lbId,
    );
  }, 90_000);

  it('carries HTTP traffic from the client namespace to both members in turn, and TCP traffic to its member', async () => {
    const bodies: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await net!.get(vip, HTTP_PORT);
      expect(res.status).toBe(200);
      bodies.push(res.body);
    }
    // Round robin: the two members alternate.
    expect(new Set(bodies)).toEqual(new Set(['member-1', 'member-2']));
    for (let i = 1; i < bodies.length; i++) expect(bodies[i]).not.toBe(bodies[i - 1]);
    const tcp = await net!.exchange(vip, TCP_PORT, 'hello through the VIP\n');
    expect(tcp.data).toBe('tcp-member-2 22\n');
  }, 30_000);

  it('reports the load balancer, listeners, pools and members ONLINE', async () => {
    await waitStatuses(
      lbId,
      { [lbId]: 'ONLINE', [httpListenerId]: 'ONLINE', [tcpListenerId]: 'ONLINE', [httpPoolId]: 'ONLINE', [tcpPoolId]: 'ONLINE', [memberIds[0]!]: 'ONLINE', [memberIds[1]!]: 'ONLINE' },
      'everything ONLINE',
    );
    // The TCP pool has no health monitor.
    expect((await operatingStatuses(lbId))[tcpMemberId]).toBe('NO_MONITOR');
  }, 30_000);

  it('turns a killed member ERROR and its pool DEGRADED, and ONLINE again once it is back', async () => {
    await servers.get('m1-http')!.kill();
    await waitStatuses(lbId, { [memberIds[0]!]: 'ERROR', [memberIds[1]!]: 'ONLINE', [httpPoolId]: 'DEGRADED', [lbId]: 'DEGRADED' }, 'member-1 ERROR, pool DEGRADED');
    for (let i = 0; i < 4; i++) expect((await net!.get(vip, HTTP_PORT)).body).toBe('member-2');

    servers.set('m1-http', await startMember(HOSTS.m1.ns, 'http', HOSTS.m1.address, HTTP_MEMBER_PORT, 'member-1'));
    await waitStatuses(lbId, { [memberIds[0]!]: 'ONLINE', [memberIds[1]!]: 'ONLINE', [httpPoolId]: 'ONLINE', [lbId]: 'ONLINE' }, 'member-1 ONLINE again');
    await waitFor('member-1 serving through the VIP again', async () => ((await net!.get(vip, HTTP_PORT)).body === 'member-1' ? true : undefined), 10_000);
  }, 60_000);

  it('counts the connections and bytes sent through each listener in its statistics', async () => {
    // Earlier requests may not be reported yet (statistics come with the heartbeats): start from settled figures.
    const before = await settledStats(httpListenerId, tcpListenerId);
    let sent = 0;
    let received = 0;
    for (let i = 0; i < 5; i++) {
      const res = await net!.get(vip, HTTP_PORT, `/stats-${i}`);
      expect(res.body).toMatch(/^member-[12]$/);
      sent += res.bytesWritten;
      received += res.bytesRead;
    }
    let tcpSent = 0;
    let tcpReceived = 0;
    for (let i = 0; i < 3; i++) {
      const res = await net!.exchange(vip, TCP_PORT, `${'x'.repeat(1000 * (i + 1))}\n`);
      expect(res.data).toBe(`tcp-member-2 ${1000 * (i + 1) + 1}\n`);
      tcpSent += res.bytesWritten;
      tcpReceived += res.bytesRead;
    }
    const after = await waitFor('the statistics to count every connection', async () => {
      const http = await listenerStats(httpListenerId);
      const tcp = await listenerStats(tcpListenerId);
      const complete =
        http.total_connections >= before.http.total_connections + 5 &&
        http.bytes_in >= before.http.bytes_in + sent &&
        http.bytes_out >= before.http.bytes_out + received &&
        tcp.total_connections >= before.tcp.total_connections + 3 &&
        tcp.bytes_in >= before.tcp.bytes_in + tcpSent &&
        tcp.bytes_out >= before.tcp.bytes_out + tcpReceived;
      return complete ? { http, tcp } : undefined;
    });
    // Nothing else goes through the listeners meanwhile: the counts are exact.
    expect(after.http.total_connections - before.http.total_connections).toBe(5);
    expect(after.tcp.total_connections - before.tcp.total_connections).toBe(3);
    expect(after.http.bytes_in - before.http.bytes_in).toBe(sent);
    expect(after.http.bytes_out - before.http.bytes_out).toBe(received);
    expect(after.tcp.bytes_in - before.tcp.bytes_in).toBe(tcpSent);
    expect(after.tcp.bytes_out - before.tcp.bytes_out).toBe(tcpReceived);
    const lbStats = (await client.get(`/v2/lbaas/loadbalancers/${lbId}/stats`)).body.stats;
    expect(lbStats.total_connections).toBeGreaterThanOrEqual(after.http.total_connections + after.tcp.total_connections);
  }, 30_000);

  it('fails over an amphora whose agent got kill -9: a new amphora namespace serves the VIP', async () => {
    const [old] = await amphoraeOf(lbId);
    const oldNs = `${prefix}-${old!.compute_id}`;
    const pids = await namespacePids(oldNs);
    const agents = pids.filter((pid) => cmdline(pid).includes('argonaut-amphora.ts'));
    expect(agents, `processes in ${oldNs}: ${pids.map((p) => `${p}: ${cmdline(p)}`).join('; ')}`).toHaveLength(1);
    process.kill(agents[0]!, 'SIGKILL');
    const killedAt = Date.now();

    // Traffic returns: polled with short timeouts from the client namespace.
    const res = await waitFor(
      'HTTP traffic through the VIP again',
      async () => {
        const r = await net!.get(vip, HTTP_PORT, '/', 1000);
        return r.status === 200 ? r : undefined;
      },
      30_000,
      50,
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}; amphorae: ${JSON.stringify(await amphoraeOf(lbId))}; namespaces: ${(await amphoraNamespaces()).join(' ')}; client's neighbours: ${await neighbours(CLIENT_NS)}`);
    });
    const failoverMs = Date.now() - killedAt;
    console.log(`netns failover: kill -9 of the agent to HTTP traffic through the VIP again: ${failoverMs} ms`);
    // Detection alone takes heartbeatTimeoutMs (2 s, on stored timestamps truncated to the second).
    expect(failoverMs).toBeLessThan(15_000);
    expect(res.body).toMatch(/^member-[12]$/);
    expect((await net!.exchange(vip, TCP_PORT, 'after failover\n')).data).toBe('tcp-member-2 15\n');

    await waitActive(lbId);
    const list = await amphoraeOf(lbId);
    const replacement = list.find((a) => a.id !== old!.id && a.status === 'ALLOCATED');
    expect(replacement).toBeDefined();
    expect(list.find((a) => a.id === old!.id)?.status ?? 'DELETED').toBe('DELETED');
    expect(await namespaceExists(oldNs)).toBe(false);
    expect((await namespacesMatchAmphorae()).map((a) => a.id)).toContain(replacement!.id);
    expect(await listAddresses('eth0', { netns: `${prefix}-${replacement!.compute_id}` })).toContain(`${vip}/32`);
    // Both members serve again, and the new amphora reports them.
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) seen.add((await net!.get(vip, HTTP_PORT)).body);
    expect(seen).toEqual(new Set(['member-1', 'member-2']));
    await waitStatuses(lbId, { [lbId]: 'ONLINE', [httpPoolId]: 'ONLINE', [memberIds[0]!]: 'ONLINE', [memberIds[1]!]: 'ONLINE' }, 'ONLINE after failover');
  }, 60_000);

  it('cascade delete removes the load balancer, the amphora namespace and its processes', async () => {
    const [amphora] = (await amphoraeOf(lbId)).filter((a) => a.status === 'ALLOCATED');
    const ns = `${prefix}-${amphora!.compute_id}`;
    const pids = await namespacePids(ns);
    expect(pids.length).toBeGreaterThan(0);
    const res = await client.delete(`/v2/lbaas/loadbalancers/${lbId}?cascade=true`);
    expect(res.status).toBe(204);
    await waitFor('load balancer gone', async () => ((await client.get(`/v2/lbaas/loadbalancers/${lbId}`)).status === 404 ? true : undefined));
    await waitFor('amphora processes gone', async () => (pids.every((p) => !alive(p)) ? true : undefined), 10_000);
    expect(await namespaceExists(ns)).toBe(false);
    // What is left is the spare pool's: no load balancer, no VIP.
    const spares = await namespacesMatchAmphorae();
    for (const a of spares) {
      expect(a.loadbalancer_id).toBeNull();
      expect(await listAddresses('eth0', { netns: `${prefix}-${a.id}` })).not.toContain(`${vip}/32`);
    }
    // The deleted amphora's veth went with its namespace.
    await waitFor('only the bridge, the test hosts\' and the spares\' veths on the host', async () => {
      const links = (await listLinks()).filter((l) => hasPrefix(prefix, l.name)).map((l) => l.name).sort();
      const expected = [BRIDGE, ...Object.values(HOSTS).map((h) => h.veth), ...spares.map((a) => hostVethName(prefix, a.id))].sort();
      return JSON.stringify(links) === JSON.stringify(expected) ? true : undefined;
    }, 5000);
    await expect(net!.get(vip, HTTP_PORT, '/', 1000)).rejects.toThrow();
  }, 40_000);
});
