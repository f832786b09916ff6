// End to end (root): presets applied through the HTTP API on the netns drivers, real traffic from
// client namespaces through the amphora namespace to member namespaces on the local network's bridge.
//   - rhosp: every one of the 23 ports answers, from a member's same port; the mysql listener's
//     LAST_SUCCESSFUL persistence keeps every client on one member until it dies, moves all of them
//     to one other member, and stays there when the first comes back (the Galera pattern).
//   - wowza, l7 mode: the GUI (HTTP) and streaming (TCP) ports, Source IP persistence.
//   - the Harmonic VOS ports as a proxied TCP+UDP listener (additional_ports, also_udp), checked with
//     the VOS HTTPS check (GET /admin/status expecting "Healthy" on 8443): 1935, 554 and 60000-60999 of
//     the 50000-65535 range, over TCP and UDP. A proxy binds one socket per port and transport: the
//     whole range twice is 33,076 sockets, over the 20,000 descriptors a process may have here (and
//     CAP_SYS_RESOURCE is not ours to raise it); the seed's VOS traffic VIP is direct routing anyway,
//     which binds none.
//   - harmonic-vos: Harmonic_Management proxied (8080, 8443), Harmonic_Traffic by direct routing over
//     TCP and UDP on 1935, 554 and ports of 50000-65535, members made real servers with the method-1
//     commands of bin/argonaut-realserver.ts; each member reports the client's own address.
//   - wowza, direct-routing mode (the guide's recommended one): 8088 and 1935, the client's address seen. The direct-routing listeners of harmonic-vos and wowza
//     (seeds' L4 DR) are covered by the direct-routing tests of the data plane, not here.
// Addresses: 10.224.<n>.0/24 (n from this run's prefix); every namespace, veth and the bridge carry
// the prefix testPrefix('p') and are removed in afterAll, then checked gone.
import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupLocalNetwork } from '../../driver/network/local/cleanup.ts';
import { inNamespace, listLinks, listNamespaces } from '../../driver/network/local/ip.ts';
import { bridgeName, hasPrefix } from '../../driver/network/local/names.ts';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';
import { BoundedCleanup, waitFor, waitLoadBalancerActive } from '../helpers/wait.ts';
import { IS_ROOT, testPrefix } from '../driver/local/netns-helpers.ts';
import { plugHost, startClient, startReadyScript, type ClientProcess, type ReadyProcess } from './netns-hosts.ts';
import { makeRealServer } from '../dataplane/direct-routing-hosts.ts';

const run = promisify(execFile);
const PROJECT = { 'X-Project-Id': 'e2e-presets' };
const prefix = testPrefix('p');
const BRIDGE = bridgeName(prefix);
const NET = `10.224.${parseInt(prefix.slice(1), 16) % 250}`;
const SUBNET_ID = randomUUID();
const NETWORK_ID = randomUUID();
const HOSTS = {
  c1: { ns: `${prefix}-c1`, veth: `${prefix}-c1`, address: `${NET}.248` },
  c2: { ns: `${prefix}-c2`, veth: `${prefix}-c2`, address: `${NET}.249` },
  m1: { ns: `${prefix}-m1`, veth: `${prefix}-m1`, address: `${NET}.251` },
  m2: { ns: `${prefix}-m2`, veth: `${prefix}-m2`, address: `${NET}.252` },
  m3: { ns: `${prefix}-m3`, veth: `${prefix}-m3`, address: `${NET}.253` },
} as const;
type MemberName = 'm1' | 'm2' | 'm3';
const MEMBERS: MemberName[] = ['m1', 'm2', 'm3'];

// Seed 003's ports (the 23 RHOSP services) and the other presets' member ports.
const RHOSP_PORTS: Record<string, number> = {
  aodh: 8042, ceilometer: 8777, cinder: 8776, glance_api: 9292, glance_registry: 9191, gnocchi: 8041, heat_api: 8004, heat_cfn: 8000,
  heat_cloudwatch: 8003, horizon: 80, keystone_admin: 35357, keystone_admin_ssh: 22, keystone_public: 5000, mysql: 3306, neutron: 9696,
  nova_ec2: 8773, nova_metadata: 8775, nova_novncproxy: 6080, nova_osapi: 8774, nova_placement: 8778, panko: 8779, redis: 6379,
  swift_proxy_server: 8080,
};
// Harmonic_Traffic's list (DR keeps the port): 1935, 554 and samples of 50000-65535.
const VOS_TRAFFIC = [1935, 554, 50000, 60321, 65535];
const TCP_PORTS = [...new Set([...Object.values(RHOSP_PORTS), 8088, 8443, ...VOS_TRAFFIC])];
const UDP_PORTS = VOS_TRAFFIC;

/**
 * One process per member namespace: TCP servers on every port (a line gets "<name> <port> <client>",
 * an HTTP GET gets 200 with "<name> <port>", or "Healthy" for /admin/status; on 8443 a TLS hello goes
 * to an HTTPS server answering the same), UDP servers answering "<name> <port> udp <client>".
 */
const MEMBER = `
const net = require('node:net');
const dgram = require('node:dgram');
const https = require('node:https');
const cfg = JSON.parse(process.argv[1]);
const body = (port, p) => (p === '/admin/status' ? 'Healthy' : cfg.name + ' ' + port);
const tls = https.createServer({ key: cfg.key, cert: cfg.cert }, (req, res) => res.end(body(req.socket.localPort, req.url)));
let pending = cfg.tcp.length + cfg.udp.length;
const ready = () => { if (--pending === 0) console.log('ready'); };
for (const port of cfg.tcp) {
  net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', (d) => {
      if (d[0] === 0x16 && port === 8443) {
        s.pause();
        s.unshift(d);
        tls.emit('connection', s);
        process.nextTick(() => s.resume());
        return;
      }
      const text = d.toString('latin1');
      const m = /^(GET|HEAD) (\\S+)/.exec(text);
      if (m) {
        const b = body(port, m[2]);
        s.end('HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: ' + b.length + '\\r\\nConnection: close\\r\\n\\r\\n' + b);
      } else s.end(cfg.name + ' ' + port + ' ' + s.remoteAddress + '\\n');
    });
  }).listen(port, '0.0.0.0', ready);
}
// The wildcard: direct routing brings packets for the VIP (on lo). A UDP answer leaves from the member's
// own address (the client below takes any); real services bind the VIP (bin/argonaut-realserver.ts says so).
for (const port of cfg.udp) {
  const u = dgram.createSocket('udp4');
  u.on('message', (m, r) => u.send(cfg.name + ' ' + port + ' udp ' + r.address, r.port, r.address));
  u.bind(port, '0.0.0.0', ready);
}
`;

const UDP_CLIENT = `
const u = require('node:dgram').createSocket('udp4');
const [host, port] = process.argv.slice(1);
const t = setTimeout(() => { console.error('timeout'); process.exit(3); }, 2000);
u.on('message', (m) => { clearTimeout(t); console.log(m.toString()); process.exit(0); });
u.send('ping', Number(port), host);
`;

let tlsPair: { key: string; cert: string };

async function startMemberServer(name: MemberName): Promise<ReadyProcess> {
  const cfg = { name, host: HOSTS[name].address, tcp: TCP_PORTS, udp: UDP_PORTS, ...tlsPair };
  return startReadyScript(HOSTS[name].ns, MEMBER, [JSON.stringify(cfg)], `member ${name}`);
}

async function udpExchange(ns: string, host: string, port: number): Promise<string> {
  const cmd = inNamespace(ns, process.execPath, ['-e', UDP_CLIENT, host, String(port)]);
  const { stdout } = await run(cmd.command, cmd.args, { timeout: 10_000 });
  return stdout.trim();
}

let api: TestApi | undefined;
let client: Client;
let stateDir: string;
const clients = new Map<string, ClientProcess>();
const members = new Map<MemberName, ReadyProcess>();

function waitActive(id: string, timeoutMs = 60_000): Promise<void> {
  return waitLoadBalancerActive(client, id, timeoutMs, 200);
}

const memberOf = (reply: string) => /^(m[123]) /.exec(reply)?.[1] as MemberName | undefined;
const everyMember = () => MEMBERS.map((m) => ({ address: HOSTS[m].address, subnet_id: SUBNET_ID, name: m }));

async function applyPreset(name: string, extra: Record<string, unknown>): Promise<{ id: string; vip: string }> {
  const res = await client.post(`/v2/argonaut/presets/${name}/apply`, { preset: { vip_subnet_id: SUBNET_ID, ...extra } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  await waitActive(res.body.loadbalancer.id);
  return { id: res.body.loadbalancer.id, vip: res.body.loadbalancer.vip_address };
}

if (!IS_ROOT) console.warn('test/e2e/presets.test.ts skipped: it needs root (network namespaces, veth pairs and a bridge on the host)');

describe.skipIf(!IS_ROOT)('presets through the API on netns amphorae (root)', () => {
  beforeAll(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'argonaut-e2e-presets-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-days', '2', '-subj', '/CN=vos.test'], { cwd: dir, stdio: 'ignore' });
    tlsPair = { key: readFileSync(path.join(dir, 'k.pem'), 'utf8'), cert: readFileSync(path.join(dir, 'c.pem'), 'utf8') };
    rmSync(dir, { recursive: true, force: true });
    stateDir = mkdtempSync(path.join(tmpdir(), 'argonaut-e2e-presets-'));
    api = await startApi({
      controllerWorker: { computeDriver: 'netns', networkDriver: 'local', amphoraDriver: 'agent', stateDir, configAckTimeoutMs: 30_000 },
      localNetwork: { cidr: `${NET}.0/24`, bridge: BRIDGE, prefix, subnetId: SUBNET_ID, networkId: NETWORK_ID },
      messaging: { kind: 'in-process' },
      healthManager: { heartbeatIntervalMs: 500, heartbeatTimeoutMs: 10_000, healthCheckIntervalMs: 500 },
    });
    const base = api.client();
    client = {
      ...base,
      get: (p) => base.raw('GET', p, undefined, PROJECT),
      post: (p, b) => base.raw('POST', p, JSON.stringify(b), { 'Content-Type': 'application/json', ...PROJECT }),
    };
    for (const h of Object.values(HOSTS)) await plugHost({ name: h.ns, hostVeth: h.veth, bridge: BRIDGE, address: h.address, prefixLength: 24 });
    for (const m of MEMBERS) members.set(m, await startMemberServer(m));
    clients.set('c1', await startClient(HOSTS.c1.ns));
    clients.set('c2', await startClient(HOSTS.c2.ns));
  }, 90_000);

  afterAll(async () => {
    const cleanup = new BoundedCleanup(20_000);
    const attempt = cleanup.attempt.bind(cleanup);
    await attempt(async () => api?.close(), 'stopping the API', 30_000);
    for (const c of clients.values()) await attempt(() => c.stop(), 'stopping a client');
    for (const m of members.values()) await attempt(() => m.kill(), 'stopping a member');
    await attempt(() => cleanupLocalNetwork(prefix), 'removing the namespaces and links');
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    expect((await listNamespaces()).filter((n) => hasPrefix(prefix, n))).toEqual([]);
    expect((await listLinks()).filter((l) => hasPrefix(prefix, l.name))).toEqual([]);
    cleanup.finish('cleaning up the presets end-to-end test failed');
  }, 90_000);

  let rhosp: { id: string; vip: string };

  it('rhosp: all 23 ports answer, each from the same port of a member', async () => {
    rhosp = await applyPreset('rhosp', { name: 'e2e-rhosp', members: Object.fromEntries(Object.keys(RHOSP_PORTS).map((s) => [s, everyMember()])) });
    const c1 = clients.get('c1')!;
    for (const [service, port] of Object.entries(RHOSP_PORTS)) {
      if (service === 'horizon') {
        const res = await c1.get(rhosp.vip, port, '/');
        expect(res.status, service).toBe(200);
        expect(res.body, service).toMatch(new RegExp(`^m[123] ${port}$`));
      } else {
        const e = await c1.exchange(rhosp.vip, port, `${service}\n`);
        expect(e.data, service).toMatch(new RegExp(`^m[123] ${port} `));
      }
    }
  }, 120_000);

  it('rhosp mysql (LAST_SUCCESSFUL): every client on one member until it dies, then all on one other, staying when the first returns', async () => {
    const ask = async () => {
      const replies: string[] = [];
      for (let i = 0; i < 6; i++) for (const c of clients.values()) replies.push((await c.exchange(rhosp.vip, 3306, 'SELECT 1\n')).data);
      return replies.map(memberOf);
    };
    const first = await ask();
    expect(new Set(first).size, JSON.stringify(first)).toBe(1);
    const pinned = first[0]!;
    expect(MEMBERS).toContain(pinned);

    await members.get(pinned)!.kill();
    // Connections in flight when it died may fail; then every answer comes from one other member.
    const moved = await waitFor(
      'the mysql clients to move to one other member',
      async () => {
        const answered = await ask().catch(() => undefined);
        return answered && new Set(answered).size === 1 && answered[0] !== pinned ? answered[0] : undefined;
      },
      30_000,
      200,
    );
    expect(MEMBERS.filter((m) => m !== pinned)).toContain(moved);

    // The health monitor (TCP, delay 5 s, 3 failures) reports it dead; it comes back and is seen again (2 successes).
    const mysqlPool = (await client.get(`/v2/lbaas/pools?loadbalancer_id=${rhosp.id}&name=mysql`)).body.pools[0];
    const pinnedStatus = async () =>
      ((await client.get(`/v2/lbaas/pools/${mysqlPool.id}/members`)).body.members as Array<{ name: string; operating_status: string }>).find((m) => m.name === pinned)?.operating_status;
    await waitFor(`member ${pinned} ERROR`, async () => ((await pinnedStatus()) === 'ERROR' ? true : undefined), 40_000, 500);
    expect(new Set(await ask())).toEqual(new Set([moved]));
    members.set(pinned, await startMemberServer(pinned));
    await waitFor(`member ${pinned} ONLINE again`, async () => ((await pinnedStatus()) === 'ONLINE' ? true : undefined), 40_000, 500);
    for (let round = 0; round < 3; round++) expect(new Set(await ask())).toEqual(new Set([moved]));
  }, 150_000);

  it('wowza (l7 mode): the GUI over HTTP and streaming over TCP, each client stuck to one member (Source IP)', async () => {
    const wowza = await applyPreset('wowza', { name: 'e2e-wowza', mode: 'l7', members: { Wowza_GUI: everyMember(), Wowza_Streaming: everyMember() } });
    for (const c of clients.values()) {
      const gui = new Set<string>();
      const streaming = new Set<string>();
      for (let i = 0; i < 5; i++) {
        const res = await c.get(wowza.vip, 8088, '/');
        expect(res.body).toMatch(/^m[123] 8088$/);
        gui.add(res.body);
        const e = await c.exchange(wowza.vip, 1935, 'connect\n');
        expect(e.data).toMatch(/^m[123] 1935 /);
        streaming.add(memberOf(e.data)!);
      }
      expect(gui.size).toBe(1);
      expect(streaming.size).toBe(1);
    }
  }, 120_000);

  it('VOS ports on a proxied TCP+UDP listener with the VOS HTTPS check: TCP and UDP over the list', async () => {
    const res = await client.post('/v2/lbaas/loadbalancers', {
      loadbalancer: {
        name: 'e2e-vos-ports',
        vip_subnet_id: SUBNET_ID,
        listeners: [{ name: 'traffic', protocol: 'TCP', protocol_port: 1935, additional_ports: '554,60000-60999', also_udp: true, default_pool: { name: 'traffic' } }],
        pools: [
          {
            name: 'traffic', protocol: 'TCP', lb_algorithm: 'ROUND_ROBIN', session_persistence: { type: 'SOURCE_IP' },
            healthmonitor: { type: 'HTTPS', delay: 1, timeout: 1, max_retries: 1, max_retries_down: 2, url_path: '/admin/status', expected_body: 'Healthy' },
            members: MEMBERS.map((m) => ({ address: HOSTS[m].address, protocol_port: 1935, monitor_port: 8443, subnet_id: SUBNET_ID, name: m })),
          },
        ],
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const lbId = res.body.loadbalancer.id;
    const vip = res.body.loadbalancer.vip_address;
    await waitActive(lbId);
    // The HTTPS check with its expected body brings every member ONLINE; the listener (TCP and its UDP twin) is ONLINE.
    await waitFor(
      'the VOS members ONLINE by the HTTPS /admin/status check',
      async () => {
        const tree = (await client.get(`/v2/lbaas/loadbalancers/${lbId}/status`)).body.statuses.loadbalancer;
        const l = tree.listeners[0];
        return l?.operating_status === 'ONLINE' && l.pools[0]?.members.length === 3 && l.pools[0].members.every((m: { operating_status: string }) => m.operating_status === 'ONLINE') ? true : undefined;
      },
      30_000,
      300,
    );
    const c1 = clients.get('c1')!;
    for (const port of [1935, 554, 60000, 60500, 60999]) {
      const e = await c1.exchange(vip, port, 'rtsp\n');
      expect(e.data, `tcp ${port}`).toMatch(/^m[123] 1935 /);
    }
    const udpReplies = new Set<string>();
    for (const port of [1935, 554, 60000, 60321, 60999]) {
      const reply = await udpExchange(HOSTS.c1.ns, vip, port);
      expect(reply, `udp ${port}`).toMatch(/^m[123] 1935 udp /);
      udpReplies.add(memberOf(reply)!);
    }
    // Source IP persistence on the UDP twin too: one client, one member.
    expect(udpReplies.size).toBe(1);
    const listenerId = (await client.get(`/v2/lbaas/listeners?loadbalancer_id=${lbId}`)).body.listeners[0].id;
    // 5 TCP connections and 5 UDP flows (one per client process), the UDP twin's folded into the listener's.
    const stats = await waitFor(
      'the listener statistics to count the TCP and UDP traffic',
      async () => {
        const s = (await client.get(`/v2/lbaas/listeners/${listenerId}/stats`)).body.stats;
        return s.total_connections >= 10 ? s : undefined;
      },
      15_000,
      300,
    );
    expect(stats.bytes_in).toBeGreaterThan(0);
  }, 120_000);
  async function waitMembersOnline(lbId: string, count: number): Promise<void> {
    await waitFor(
      `the ${count} members of ${lbId} ONLINE`,
      async () => {
        const tree = (await client.get(`/v2/lbaas/loadbalancers/${lbId}/status`)).body.statuses.loadbalancer;
        const all = tree.listeners.flatMap((l: any) => l.pools.flatMap((p: any) => p.members)) as Array<{ operating_status: string }>;
        return all.length === count && all.every((m) => m.operating_status === 'ONLINE') ? true : undefined;
      },
      40_000,
      300,
    );
  }

  it('harmonic-vos: management proxied on 8080 and 8443, traffic by direct routing over TCP and UDP; members see the client', async () => {
    const vos = await applyPreset('harmonic-vos', { name: 'e2e-vos', members: { Harmonic_Management: everyMember(), Harmonic_Traffic: everyMember() } });
    for (const m of MEMBERS) await makeRealServer(HOSTS[m].ns, vos.vip, 'arp-sysctl');
    // The guide's check (HTTPS GET /admin/status, body Healthy, on 8443) brings all 9 members ONLINE (3 pools).
    await waitMembersOnline(vos.id, 9);
    const c1 = clients.get('c1')!;
    for (const port of [8080, 8443]) {
      const e = await c1.exchange(vos.vip, port, 'status\n');
      // Proxied: the member sees the amphora, not the client.
      expect(e.data, `management ${port}`).toMatch(new RegExp(`^m[123] ${port} `));
      expect(e.data).not.toContain(HOSTS.c1.address);
    }
    const tcpMembers = new Set<string>();
    for (const port of VOS_TRAFFIC) {
      const e = await c1.exchange(vos.vip, port, 'rtsp\n');
      expect(e.data, `traffic tcp ${port}`).toBe(`${memberOf(e.data)} ${port} ${HOSTS.c1.address}\n`);
      tcpMembers.add(memberOf(e.data)!);
    }
    for (const port of VOS_TRAFFIC) {
      const reply = await udpExchange(HOSTS.c1.ns, vos.vip, port);
      expect(reply, `traffic udp ${port}`).toMatch(new RegExp(`^m[123] ${port} udp ${HOSTS.c1.address.replace(/\./g, '\\.')}$`));
    }
    // Source IP persistence: one client, one member for the traffic VIP.
    expect(tcpMembers.size).toBe(1);
  }, 150_000);

  it('wowza (direct-routing mode): GUI and streaming reach a member that sees the client, Source IP sticky', async () => {
    const wowza = await applyPreset('wowza', { name: 'e2e-wowza-dr', members: { Wowza_GUI: everyMember(), Wowza_Streaming: everyMember() } });
    for (const m of MEMBERS) await makeRealServer(HOSTS[m].ns, wowza.vip, 'arp-sysctl');
    for (const [name, c] of clients) {
      const address = HOSTS[name as 'c1' | 'c2'].address;
      for (const port of [8088, 1935]) {
        const seen = new Set<string>();
        for (let i = 0; i < 4; i++) {
          const e = await c.exchange(wowza.vip, port, 'play\n');
          expect(e.data, `${name} ${port}`).toBe(`${memberOf(e.data)} ${port} ${address}\n`);
          seen.add(memberOf(e.data)!);
        }
        expect(seen.size, `${name} ${port}`).toBe(1);
      }
    }
  }, 120_000);
});
