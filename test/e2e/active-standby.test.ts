// ACTIVE_STANDBY end to end on the netns drivers (root), driven through the HTTP API: a load
// balancer gets two amphorae (MASTER, BACKUP), each in a namespace of its own on the local
// network's bridge; their election (amphora/vrrp, run by the agents) puts the VIP on one of them.
// Members and a client are namespaces of their own on the bridge; an external client reaches the
// VIP through a floating IP (a router namespace DNATs it). The amphorae run their data plane in a
// worker process (as on a VM, where it runs one per core). Then the amphora holding the VIP is hit
// four times (kill -9 of its agent, kill -9 of its data plane worker, its eth0 taken down, its veth
// cut on the host side) while the client sends a bounded request loop to the VIP: each time the VIP
// moves, the other amphora serves, sticky (SOURCE_IP) clients keep their member, one amphora answers
// ARP for the VIP, the API shows one VIP holder, the service gap is logged, and the pair is whole
// again with the VIP on the survivor (the health manager replaces the failed amphora; one whose data
// plane worker was restarted may recover as BACKUP instead).
//
// Addresses (10.222.0.0/16 only; one /24 per run, from its prefix): .1 the bridge (gateway),
// .2-.127 VIPs, .128-.254 amphora management addresses; the test's hosts and the router's internal
// leg take .240-.252 on the eth0 of namespaces of the prefix, which the management allocation skips.
// The external network is another /24: .1 the router, .10 the floating IP, .20 the external client.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupLocalNetwork } from '../../driver/network/local/cleanup.ts';
import { addAddress, createNamespace, createVeth, listAddresses, listLinks, listNamespaces, namespaceExists, namespacePids } from '../../driver/network/local/ip.ts';
import { bridgeName, hasPrefix, hostVethName } from '../../driver/network/local/names.ts';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';
import { BoundedCleanup, waitFor, waitLoadBalancerActive } from '../helpers/wait.ts';
import { IS_ROOT, testPrefix } from '../driver/local/netns-helpers.ts';
import { plugHost, startClient, startMember, type ClientProcess, type MemberProcess } from './netns-hosts.ts';

const run = promisify(execFile);
const PROJECT = { 'X-Project-Id': 'e2e-active-standby' };
const prefix = testPrefix('a');
const BRIDGE = bridgeName(prefix);
const octet = 10 + (parseInt(prefix.slice(1), 16) % 110);
const NET = `10.222.${octet}`;
const EXT = `10.222.${octet + 128}`;
const VIP = `${NET}.2`;
const FIP = `${EXT}.10`;
const SUBNET_ID = randomUUID();
const NETWORK_ID = randomUUID();
const HOSTS = {
  client: { ns: `${prefix}-client`, veth: `${prefix}-cl`, address: `${NET}.250` },
  m1: { ns: `${prefix}-m1`, veth: `${prefix}-m1`, address: `${NET}.251` },
  m2: { ns: `${prefix}-m2`, veth: `${prefix}-m2`, address: `${NET}.252` },
} as const;
const EXTERNAL_CLIENT = { ns: `${prefix}-xc`, veth: `${prefix}-xc`, address: `${EXT}.20` };
/** Sticky clients: extra addresses of the client namespace. */
const STICKY = [`${NET}.240`, `${NET}.241`, `${NET}.242`, `${NET}.243`];
const PORT = 80;
const MEMBER_PORT = 8080;
const ADVERT_MS = 100;
const HEARTBEAT_TIMEOUT_MS = 2_000;

let api: TestApi | undefined;
let client: Client;
let stateDir: string;
let net: ClientProcess | undefined;
let outside: ClientProcess | undefined;
const servers: MemberProcess[] = [];

interface Amphora {
  id: string;
  status: string;
  role: string;
  vip_holder: boolean | null;
  lb_network_ip: string;
}

async function amphoraeOf(lbId: string): Promise<Amphora[]> {
  return ((await client.get(`/v2/octavia/amphorae?loadbalancer_id=${lbId}`)).body.amphorae as Amphora[]).filter((a) => a.status !== 'DELETED');
}

const nsOf = (amphoraId: string) => `${prefix}-${amphoraId}`;

/** The amphora namespaces whose eth0 carries the VIP now. */
async function vipNamespaces(): Promise<string[]> {
  const own = new Set([...Object.values(HOSTS).map((h) => h.ns), EXTERNAL_CLIENT.ns, `${prefix}-router`, `${prefix}-ext`]);
  const holders: string[] = [];
  for (const ns of (await listNamespaces()).filter((n) => hasPrefix(prefix, n) && !own.has(n))) {
    const addresses = await listAddresses('eth0', { netns: ns }).catch(() => [] as string[]);
    if (addresses.includes(`${VIP}/32`)) holders.push(ns);
  }
  return holders;
}

/** The MACs that answer ARP for the VIP, as the client sees them (iputils arping, broadcast requests). */
async function arpResponders(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'exec', HOSTS.client.ns, 'arping', '-b', '-c', '3', '-w', '2', '-I', 'eth0', VIP]).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
  return [...new Set([...stdout.matchAll(/reply from \S+ \[([0-9a-f:]+)\]/gi)].map((m) => m[1]!.toLowerCase()))];
}

function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function macOf(ns: string): Promise<string> {
  return (await listLinks({ netns: ns })).find((l) => l.name === 'eth0')!.mac!.toLowerCase();
}

function waitActive(id: string, timeoutMs = 40_000): Promise<void> {
  return waitLoadBalancerActive(client, id, timeoutMs, 100);
}

/**
 * The pair is whole: the load balancer ACTIVE, two ALLOCATED amphorae (one MASTER, one BACKUP),
 * exactly one namespace holding the VIP, and the API saying that very amphora (and only it) holds it.
 */
async function waitPairWhole(lbId: string, what: string, replaced: string | null = null, timeoutMs = 45_000): Promise<{ holder: Amphora; other: Amphora }> {
  let last = '';
  try {
    return await waitFor(
      what,
      async () => {
        const lb = (await client.get(`/v2/lbaas/loadbalancers/${lbId}`)).body.loadbalancer;
        const amps = await amphoraeOf(lbId);
        const holders = await vipNamespaces();
        last = `lb ${lb.provisioning_status}; amphorae ${JSON.stringify(amps.map((a) => [a.id.slice(0, 8), a.status, a.role, a.vip_holder, a.lb_network_ip]))}; VIP on ${JSON.stringify(holders)}`;
        if (lb.provisioning_status !== 'ACTIVE' || amps.length !== 2 || amps.some((a) => a.status !== 'ALLOCATED' || a.id === replaced)) return undefined;
        if (JSON.stringify(amps.map((a) => a.role).sort()) !== '["BACKUP","MASTER"]') return undefined;
        if (holders.length !== 1) return undefined;
        const holder = amps.find((a) => nsOf(a.id) === holders[0]);
        const other = amps.find((a) => a !== holder);
        if (!holder || !other || holder.vip_holder !== true || other.vip_holder !== false) return undefined;
        return { holder, other };
      },
      timeoutMs,
      200,
    );
  } catch (err) {
    const logs = (await amphoraeOf(lbId)).map((a) => `--- ${a.id} ${a.lb_network_ip}:\n${agentLogLines(a.id, /vrrp|error|fatal/i)}`).join('\n');
    throw new Error(`${(err as Error).message}: ${last}\n${logs}`);
  }
}

/** The last lines of an amphora agent's log that match `pattern` (for failure messages). */
function agentLogLines(amphoraId: string, pattern: RegExp): string {
  try {
    const lines = readFileSync(path.join(stateDir, 'amphorae', amphoraId, 'agent.log'), 'utf8').split('\n').filter((l) => pattern.test(l));
    return lines.slice(-15).map((l) => l.slice(0, 400)).join('\n');
  } catch {
    return '(no log)';
  }
}

interface Probe {
  startedAt: number;
  at: number;
  ok: boolean;
}

/** Sends GETs to the VIP one after another (each bounded by 300 ms) until `stop` resolves or 60 s passed. */
async function probeLoop(stop: Promise<void>): Promise<Probe[]> {
  const results: Probe[] = [];
  let stopped = false;
  void stop.then(() => (stopped = true));
  const deadline = Date.now() + 60_000;
  while (!stopped && Date.now() < deadline) {
    const startedAt = Date.now();
    const ok = await net!.get(VIP, PORT, '/probe', 300).then((r) => r.status === 200, () => false);
    results.push({ startedAt, at: Date.now(), ok });
    if (!ok) await sleep(10);
  }
  return results;
}

/** The time without service: from the last answer completed before the fault to the first answer to a request sent after it. */
function serviceGap(results: Probe[], faultAt: number): number {
  const before = results.filter((r) => r.ok && r.at <= faultAt).at(-1)?.at ?? faultAt;
  const after = results.find((r) => r.ok && r.startedAt > faultAt)?.at;
  if (after === undefined) throw new Error('the service never came back during the probe loop');
  return after - before;
}

async function stickyMembers(): Promise<string[]> {
  const out: string[] = [];
  for (const address of STICKY) out.push((await net!.get(VIP, PORT, '/sticky', 2000, address)).body);
  return out;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

if (!IS_ROOT) console.warn('test/e2e/active-standby.test.ts skipped: it needs root (network namespaces, veth pairs, a bridge on the host, nftables)');

describe.skipIf(!IS_ROOT)('ACTIVE_STANDBY amphorae with the election and a floating IP, through the HTTP API (root)', () => {
  beforeAll(async () => {
    stateDir = mkdtempSync(path.join(tmpdir(), 'argonaut-e2e-as-'));
    api = await startApi({
      controllerWorker: {
        computeDriver: 'netns', networkDriver: 'local', amphoraDriver: 'agent', stateDir, configAckTimeoutMs: 20_000, loadbalancerTopology: 'ACTIVE_STANDBY',
        amphoraDataplaneWorkers: 1,
      },
      localNetwork: {
        cidr: `${NET}.0/24`, bridge: BRIDGE, prefix, subnetId: SUBNET_ID, networkId: NETWORK_ID,
        floatingNetwork: { cidr: `${EXT}.0/24`, routerInternalAddress: `${NET}.249`, associations: [{ floatingIp: FIP, vipAddress: VIP }] },
      },
      messaging: { kind: 'in-process' },
      healthManager: { heartbeatIntervalMs: 200, heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS, healthCheckIntervalMs: 250 },
      vrrp: { advertIntervalMs: ADVERT_MS },
    });
    const base = api.client();
    client = { ...base, post: (p, b) => base.raw('POST', p, JSON.stringify(b), { 'Content-Type': 'application/json', ...PROJECT }) };
    for (const h of Object.values(HOSTS)) await plugHost({ name: h.ns, hostVeth: h.veth, bridge: BRIDGE, address: h.address, prefixLength: 24 });
    for (const address of STICKY) await addAddress('eth0', `${address}/24`, { netns: HOSTS.client.ns });
    // The external client hangs off the external network's bridge, in that network's namespace.
    await createNamespace(EXTERNAL_CLIENT.ns);
    await createVeth({ netns: `${prefix}-ext`, hostName: EXTERNAL_CLIENT.veth, bridge: `${prefix}-xbr`, peerNamespace: EXTERNAL_CLIENT.ns, peerName: 'eth0' });
    await addAddress('eth0', `${EXTERNAL_CLIENT.address}/24`, { netns: EXTERNAL_CLIENT.ns });
    servers.push(await startMember(HOSTS.m1.ns, 'http', HOSTS.m1.address, MEMBER_PORT, 'member-1'));
    servers.push(await startMember(HOSTS.m2.ns, 'http', HOSTS.m2.address, MEMBER_PORT, 'member-2'));
    net = await startClient(HOSTS.client.ns);
    outside = await startClient(EXTERNAL_CLIENT.ns);
  }, 60_000);

  afterAll(async () => {
    const cleanup = new BoundedCleanup(20_000);
    const attempt = cleanup.attempt.bind(cleanup);
    await attempt(async () => api?.close(), 'stopping the API');
    await attempt(async () => net?.stop(), 'stopping the client');
    await attempt(async () => outside?.stop(), 'stopping the external client');
    for (const s of servers) await attempt(() => s.kill(), 'stopping a member');
    await attempt(() => cleanupLocalNetwork(prefix), 'removing the namespaces and links');
    if (stateDir && !process.env.ARGONAUT_KEEP_STATE) rmSync(stateDir, { recursive: true, force: true });
    expect((await listNamespaces()).filter((n) => hasPrefix(prefix, n))).toEqual([]);
    expect((await listLinks()).filter((l) => hasPrefix(prefix, l.name))).toEqual([]);
    cleanup.finish('cleaning up the ACTIVE_STANDBY end-to-end test failed');
  }, 90_000);

  let lbId: string;
  let sticky: string[] = [];

  it('creates an ACTIVE_STANDBY load balancer: two amphorae, exactly one holding the VIP, as the API says', async () => {
    const res = await client.post('/v2/lbaas/loadbalancers', {
      loadbalancer: {
        name: 'e2e-active-standby', vip_subnet_id: SUBNET_ID,
        listeners: [{
          name: 'http', protocol: 'HTTP', protocol_port: PORT,
          default_pool: {
            name: 'sticky', protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN', session_persistence: { type: 'SOURCE_IP' },
            members: [{ address: HOSTS.m1.address, protocol_port: MEMBER_PORT }, { address: HOSTS.m2.address, protocol_port: MEMBER_PORT }],
          },
        }],
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    lbId = res.body.loadbalancer.id;
    expect(res.body.loadbalancer.vip_address).toBe(VIP);
    expect(res.body.loadbalancer.topology ?? 'ACTIVE_STANDBY').toBe('ACTIVE_STANDBY');
    const { holder, other } = await waitPairWhole(lbId, 'the pair elected');
    expect(holder.lb_network_ip).not.toBe(other.lb_network_ip);
    expect(await arpResponders()).toEqual([await macOf(nsOf(holder.id))]);
  }, 60_000);

  it('serves through the VIP and through the floating IP; sticky clients keep their member', async () => {
    await waitFor('the VIP to serve', async () => ((await net!.get(VIP, PORT, '/', 1000).catch(() => null))?.status === 200 ? true : undefined), 10_000);
    sticky = await stickyMembers();
    // Round robin over the first pick of each address: both members get sticky clients.
    expect(new Set(sticky)).toEqual(new Set(['member-1', 'member-2']));
    for (let i = 0; i < 2; i++) expect(await stickyMembers()).toEqual(sticky);
    const viaFloating = await outside!.get(FIP, PORT, '/floating', 3000);
    expect(viaFloating.status).toBe(200);
    expect(viaFloating.body).toMatch(/^member-[12]$/);
  }, 30_000);

  /** Kills the one process of the amphora's namespace whose command line names `script`. */
  async function killProcess(amphoraId: string, script: string): Promise<void> {
    const pids = await namespacePids(nsOf(amphoraId));
    const found = pids.filter((pid) => cmdline(pid).includes(script));
    expect(found, `processes: ${pids.map((p) => `${p}: ${cmdline(p)}`).join('; ')}`).toHaveLength(1);
    process.kill(found[0]!, 'SIGKILL');
  }

  /**
   * recovers: the failed amphora may come back by itself (then the health manager need not replace it);
   * logged: what its agent logs when it gives the VIP up itself (the VIP did not move by a failover).
   */
  const faults: Array<{ name: string; recovers: boolean; logged?: RegExp; apply: (amphoraId: string) => Promise<void> }> = [
    { name: 'kill -9 of the agent', recovers: false, apply: (amphoraId) => killProcess(amphoraId, 'argonaut-amphora.ts') },
    {
      name: 'kill -9 of its data plane',
      recovers: true,
      logged: /the data plane stopped serving; the election goes FAULT now/,
      apply: (amphoraId) => killProcess(amphoraId, 'worker-main.ts'),
    },
    { name: 'its eth0 taken down', recovers: false, apply: async (amphoraId) => void (await run('ip', ['-n', nsOf(amphoraId), 'link', 'set', 'eth0', 'down'])) },
    { name: 'its link cut (host end of its veth down)', recovers: false, apply: async (amphoraId) => void (await run('ip', ['link', 'set', hostVethName(prefix, amphoraId), 'down'])) },
  ];

  for (const fault of faults) {
    it(`moves the VIP to the other amphora when the holder suffers ${fault.name}; the health manager restores the pair`, async () => {
      const { holder, other } = await waitPairWhole(lbId, 'the pair whole before the fault');
      let stopProbe!: () => void;
      const probing = probeLoop(new Promise<void>((resolve) => (stopProbe = resolve)));
      await sleep(500);
      await fault.apply(holder.id);
      const faultAt = Date.now();
      // The VIP moves to the other amphora and the client gets answers again.
      await waitFor('the VIP on the other amphora', async () => ((await vipNamespaces()).includes(nsOf(other.id)) ? true : undefined), 20_000, 20);
      if (fault.logged) expect(agentLogLines(holder.id, fault.logged)).toMatch(fault.logged);
      await waitFor('an answer through the VIP after the fault', async () => ((await net!.get(VIP, PORT, '/', 500).catch(() => null))?.status === 200 ? true : undefined), 20_000, 20);
      await sleep(300);
      stopProbe();
      const results = await probing;
      const gap = serviceGap(results, faultAt);
      const failed = results.filter((r) => !r.ok && r.at > faultAt).length;
      console.log(`active-standby failover (${fault.name}, advert interval ${ADVERT_MS} ms): service gap ${gap} ms, ${failed} failed requests of ${results.length}`);
      expect(gap).toBeLessThan(15_000);

      // Exactly one amphora holds the VIP and answers ARP for it: the other one. The failed holder gives
      // it up at its next own health check (its interface is down or its agent dead); on a loaded
      // machine that may come a little after the new holder already answers, hence the bounded wait.
      await waitFor('the VIP on the other amphora only', async () => (sameList(await vipNamespaces(), [nsOf(other.id)]) ? true : undefined), 3_000, 20);
      expect(await arpResponders()).toEqual([await macOf(nsOf(other.id))]);
      // Sticky clients kept their member; the floating IP reaches the new holder.
      expect(await stickyMembers()).toEqual(sticky);
      expect((await outside!.get(FIP, PORT, '/floating', 3000)).status).toBe(200);

      // The health manager replaces the failed amphora; the pair is whole again.
      let restored = await waitPairWhole(lbId, 'the pair restored', fault.recovers ? null : holder.id);
      if (fault.recovers) {
        // Its data plane restarted, the failed amphora leaves FAULT as BACKUP; had FAULT outlasted the
        // heartbeat timeout, the health manager replaces it. Either has happened once that has passed.
        await sleep(HEARTBEAT_TIMEOUT_MS + 1000);
        restored = await waitPairWhole(lbId, 'the pair settled');
      } else {
        expect([restored.holder.id, restored.other.id]).not.toContain(holder.id);
        expect(await namespaceExists(nsOf(holder.id))).toBe(false);
      }
      expect([restored.holder.id, restored.other.id]).toContain(other.id);
      // The survivor keeps the VIP: a replacement joins as BACKUP (its election adopts the new peer in
      // place, vrrp.reconfigure), a recovered amphora without preemption too; it does not move a second time.
      expect(restored.holder.id).toBe(other.id);
      expect(await arpResponders()).toEqual([await macOf(nsOf(restored.holder.id))]);
      expect(await stickyMembers()).toEqual(sticky);
    }, 120_000);
  }

  it('cascade delete removes both amphorae and their namespaces; the floating IP answers no more', async () => {
    const amps = await amphoraeOf(lbId);
    expect(amps).toHaveLength(2);
    const res = await client.delete(`/v2/lbaas/loadbalancers/${lbId}?cascade=true`);
    expect(res.status).toBe(204);
    await waitFor('load balancer gone', async () => ((await client.get(`/v2/lbaas/loadbalancers/${lbId}`)).status === 404 ? true : undefined), 20_000);
    for (const a of amps) expect(await namespaceExists(nsOf(a.id))).toBe(false);
    expect(await vipNamespaces()).toEqual([]);
    await expect(outside!.get(FIP, PORT, '/', 1000)).rejects.toThrow();
  }, 40_000);
});
