// Direct routing end to end, in network namespaces (root): an amphora running the data plane standalone
// with DR listeners, three real servers that solve the ARP problem with the commands bin/argonaut-realserver.ts
// prints (two with the VIP on lo and arp_ignore/arp_announce, one with an nftables redirect), and a client,
// all on one L2 segment. Addresses 10.223.10.0/24, namespaces from testPrefix('d').
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AmphoraConfigInput, PoolInput } from '../../common/amphora-config/index.ts';
import { inNamespace } from '../../driver/network/local/ip.ts';
import { IS_ROOT, testPrefix } from '../driver/local/netns-helpers.ts';
import {
  createSwitch,
  macOf,
  makeRealServer,
  plugHost,
  removeNamespaces,
  runIn,
  startDrClient,
  startDrMember,
  type DrClient,
  type DrMember,
} from './direct-routing-hosts.ts';
import { eventually, uid } from './helpers.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/argonaut-dataplane.ts');
const HAVE_NFT = spawnSync('nft', ['--version']).status === 0;
if (!IS_ROOT || !HAVE_NFT) console.warn('direct-routing.test.ts skipped: needs root and the nft command (Debian package nftables)');

const NET = '10.223.10';
const VIP = `${NET}.100`;
const AMPHORA = `${NET}.1`;
const CLIENT = `${NET}.50`;
const EXTRA_SOURCES = [51, 52, 53, 54, 55, 56, 57, 58].map((n) => `${NET}.${n}`);
// m1 and m2 solve the ARP problem with the VIP on lo (method 1), m3 with an nftables NAT redirect (method 3).
const MEMBERS = [
  { name: 'm1', address: `${NET}.11`, method: 'arp-sysctl' as const },
  { name: 'm2', address: `${NET}.12`, method: 'arp-sysctl' as const },
  { name: 'm3', address: `${NET}.13`, method: 'nftables' as const },
];
/** The address a member's service sees as its own: the VIP, or its own after a NAT redirect. */
const reachedAt = (name: string) => {
  const m = MEMBERS.find((x) => x.name === name)!;
  return m.method === 'arp-sysctl' ? VIP : m.address;
};
const TCP_PORT = 7000;
const RANGE_PORT = 7002; // inside the TCP listener's 7001-7003 range
const STICKY_PORT = 8000;
const HEALTH_PORT = 7100;
const METRICS_PORT = 9100;

const L_TCP = uid(1);
const L_UDP = uid(2);
const L_STICKY = uid(3);
const L_METRICS = uid(4);
const P_TCP = uid(11);
const P_UDP = uid(12);
const P_STICKY = uid(13);
const memberId = (pool: number, i: number) => uid(0x100 * pool + i + 1);

interface MemberSettings {
  enabled?: boolean;
  weight?: number;
}

function render(version: number, tcpMembers: MemberSettings[] = [{}, {}, {}], extraPool?: Partial<PoolInput>): AmphoraConfigInput {
  const members = (pool: number, settings: MemberSettings[] = [{}, {}, {}]) =>
    MEMBERS.map((m, i) => ({ id: memberId(pool, i), address: m.address, port: TCP_PORT, ...settings[i] }));
  return {
    version: 1,
    configVersion: version,
    amphoraId: uid(0xa0),
    vips: [{ address: VIP }],
    listeners: [
      { id: L_TCP, protocol: 'TCP', ports: [TCP_PORT, { from: 7001, to: 7003 }], defaultPoolId: P_TCP, forwarding: 'DIRECT_ROUTING' },
      { id: L_UDP, protocol: 'UDP', ports: [TCP_PORT], defaultPoolId: P_UDP, forwarding: 'DIRECT_ROUTING' },
      { id: L_STICKY, protocol: 'TCP', ports: [STICKY_PORT], defaultPoolId: P_STICKY, forwarding: 'DIRECT_ROUTING' },
      { id: L_METRICS, protocol: 'PROMETHEUS', ports: [METRICS_PORT] },
    ],
    pools: [
      {
        id: P_TCP,
        protocol: 'TCP',
        algorithm: 'ROUND_ROBIN',
        members: members(1, tcpMembers).map((m) => ({ ...m, monitorPort: HEALTH_PORT })),
        healthMonitor: { id: uid(21), type: 'TCP', delay: 300, timeout: 250, maxRetries: 1, maxRetriesDown: 1 },
        ...extraPool,
      },
      { id: P_UDP, protocol: 'UDP', algorithm: 'SOURCE_IP', sessionPersistence: { type: 'SOURCE_IP' }, members: members(2) },
      { id: P_STICKY, protocol: 'TCP', algorithm: 'ROUND_ROBIN', sessionPersistence: { type: 'SOURCE_IP' }, members: members(3) },
    ],
  };
}

const namespaces = (prefix: string) => ({ sw: `${prefix}-sw`, amphora: `${prefix}-a`, client: `${prefix}-c`, members: MEMBERS.map((m) => `${prefix}-${m.name}`) });
let ns: ReturnType<typeof namespaces>;
let dir: string;
let file: string;
let dataplane: ChildProcess;
let exited: Promise<number | null>;
let logs: Record<string, unknown>[] = [];
let members: DrMember[] = [];
let client: DrClient;
let amphoraMac: string;

const loaded = (version: number) => logs.some((l) => l.msg === 'config loaded' && l.configVersion === version);
const nameOf = (text: string) => text.split(' ')[0];

async function reload(input: AmphoraConfigInput): Promise<void> {
  writeFileSync(file, JSON.stringify(input));
  dataplane.kill('SIGHUP');
  await eventually(() => loaded(input.configVersion), 15_000);
}

async function spread(n: number, send: () => Promise<string>): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const name = nameOf(await send());
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

async function metrics(): Promise<string> {
  return client.get(VIP, METRICS_PORT, '/metrics');
}

function sample(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  if (line === undefined) throw new Error(`no sample ${name}{${labels}} in:\n${text}`);
  return Number(line.split(' ').pop());
}

async function drTable(): Promise<string> {
  return runIn(ns.amphora, 'nft', ['list', 'ruleset']);
}

// Workers 1: the cluster data plane (DR programmed by the primary); 0: everything in one process. The
// agent hosts one or the other, so this is the agent's path too.
describe.skipIf(!IS_ROOT || !HAVE_NFT).each([1, 0])('direct routing (network namespaces, nftables netdev, %i workers)', (workers) => {
  beforeAll(async () => {
    ns = namespaces(testPrefix('d'));
    logs = [];
    members = [];
    await createSwitch(ns.sw, 'br0');
    await plugHost({ switchNs: ns.sw, bridge: 'br0', name: ns.amphora, port: 'pa', addresses: [`${AMPHORA}/24`, `${VIP}/24`] });
    await plugHost({ switchNs: ns.sw, bridge: 'br0', name: ns.client, port: 'pc', addresses: [`${CLIENT}/24`, ...EXTRA_SOURCES.map((a) => `${a}/24`)] });
    for (const [i, m] of MEMBERS.entries()) {
      await plugHost({ switchNs: ns.sw, bridge: 'br0', name: ns.members[i], port: `p${m.name}`, addresses: [`${m.address}/24`] });
      await makeRealServer(ns.members[i], VIP, m.method);
    }
    amphoraMac = await macOf(ns.amphora);
    members = await Promise.all(
      MEMBERS.map((m, i) => startDrMember(ns.members[i], m.name, m.method === 'arp-sysctl' ? VIP : '0.0.0.0', [TCP_PORT, RANGE_PORT, STICKY_PORT], HEALTH_PORT)),
    );
    client = await startDrClient(ns.client);
    // Counts, on the client, the answers from the VIP that come straight from a member vs through the amphora.
    const script = [
      'table netdev drtest {',
      '  counter from_vip {}',
      '  counter via_amphora {}',
      '  chain in {',
      '    type filter hook ingress device "eth0" priority 0; policy accept;',
      `    ip saddr ${VIP} counter name "from_vip"`,
      `    ip saddr ${VIP} ether saddr ${amphoraMac} counter name "via_amphora"`,
      '  }',
      '}',
    ].join('\n');
    dir = mkdtempSync(path.join(tmpdir(), 'argonaut-dr-'));
    writeFileSync(path.join(dir, 'client.nft'), script);
    await runIn(ns.client, 'nft', ['-f', path.join(dir, 'client.nft')]);

    file = path.join(dir, 'amphora.json');
    writeFileSync(file, JSON.stringify(render(1)));
    const cmd = inNamespace(ns.amphora, process.execPath, ['--import', 'tsx', BIN, '--config', file, '--workers', String(workers), '--drain-timeout', '1000', '--no-watch']);
    dataplane = spawn(cmd.command, cmd.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    exited = new Promise((resolve) => dataplane.once('exit', (code) => resolve(code)));
    let buffered = '';
    dataplane.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) if (line.startsWith('{')) logs.push(JSON.parse(line) as Record<string, unknown>);
    });
    await eventually(() => loaded(1), 30_000);
  }, 60_000);

  afterAll(async () => {
    if (dataplane !== undefined && dataplane.exitCode === null) {
      dataplane.kill('SIGKILL');
      await exited;
    }
    await client?.stop();
    for (const m of members) await m.stop();
    await removeNamespaces([ns.amphora, ns.client, ...ns.members, ns.sw]);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('forwards TCP to the members, which see the client address and answer it directly', async () => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 30; i++) {
      const answer = await client.tcp(VIP, i % 2 === 0 ? TCP_PORT : RANGE_PORT);
      const [name, seenClient, local] = answer.text.split(' ');
      expect(seenClient).toBe(CLIENT);
      expect(local).toBe(reachedAt(name));
      counts[name] = (counts[name] ?? 0) + 1;
    }
    // Flows are hashed on their 5-tuple: 30 connections from one client reach all three members.
    expect(Object.keys(counts).sort()).toEqual(['m1', 'm2', 'm3']);

    const counters = JSON.parse(await runIn(ns.client, 'nft', ['-j', 'list', 'counters', 'table', 'netdev', 'drtest'])) as {
      nftables: { counter?: { name: string; packets: number } }[];
    };
    const value = (name: string) => counters.nftables.find((c) => c.counter?.name === name)?.counter?.packets;
    expect(value('from_vip')).toBeGreaterThan(30);
    expect(value('via_amphora')).toBe(0);
  });

  it('forwards UDP, answered from the VIP by the member, sticky per source address', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const answer = await client.udp(VIP, TCP_PORT);
      const [name, seenClient] = answer.text.split(' ');
      expect(answer.from).toBe(VIP);
      expect(seenClient).toBe(CLIENT);
      seen.add(name);
    }
    expect(seen.size).toBe(1); // SOURCE_IP persistence: every datagram of this client reaches one member
  });

  it('keeps each source address on one member with SOURCE_IP persistence, and spreads the sources', async () => {
    const bySource = new Map<string, string>();
    for (const source of [CLIENT, ...EXTRA_SOURCES]) {
      const names = await spread(5, async () => (await client.tcp(VIP, STICKY_PORT, source)).text);
      expect(Object.keys(names)).toHaveLength(1);
      bySource.set(source, Object.keys(names)[0]);
    }
    expect(new Set(bySource.values()).size).toBeGreaterThan(1);
  });

  it('reports DR listeners in the stats: bytes in only (replies bypass the amphora), connections per member', async () => {
    const text = await metrics();
    expect(sample(text, 'octavia_listener_bytes_in_total', `listener="${L_TCP}"`)).toBeGreaterThan(0);
    expect(sample(text, 'octavia_listener_bytes_out_total', `listener="${L_TCP}"`)).toBe(0);
    expect(sample(text, 'octavia_listener_sessions_total', `listener="${L_TCP}"`)).toBeGreaterThanOrEqual(30);
    expect(sample(text, 'octavia_listener_bytes_in_total', `listener="${L_UDP}"`)).toBeGreaterThan(0);
    const perMember = MEMBERS.map((_, i) => sample(text, 'octavia_member_sessions_total', `pool="${P_TCP}",member="${memberId(1, i)}"`));
    expect(perMember.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(30);
    for (const n of perMember) expect(n).toBeGreaterThan(0);
  });

  it('sends no new flows to a member its health monitor takes down, and takes it back when it recovers', async () => {
    await members[0].health(false);
    const m1Chain = `m_${L_TCP.replace(/-/g, '')}_${memberId(1, 0).replace(/-/g, '')}`;
    await eventually(async () => !(await drTable()).includes(m1Chain), 10_000, 100);
    expect(sample(await metrics(), 'octavia_member_status', `pool="${P_TCP}",member="${memberId(1, 0)}",state="DOWN"`)).toBe(1);
    const counts = await spread(20, async () => (await client.tcp(VIP, TCP_PORT)).text);
    expect(counts.m1).toBeUndefined();
    expect((counts.m2 ?? 0) + (counts.m3 ?? 0)).toBe(20);

    await members[0].health(true);
    await eventually(async () => (await drTable()).includes(m1Chain), 10_000, 100);
    const back = await spread(30, async () => (await client.tcp(VIP, TCP_PORT)).text);
    expect(back.m1).toBeGreaterThan(0);
  });

  it('follows admin state and weights on reload, and keeps serving', async () => {
    const bytesBefore = sample(await metrics(), 'octavia_listener_bytes_in_total', `listener="${L_TCP}"`);
    await reload(render(2, [{}, { enabled: false }, { weight: 0 }]));
    const onlyM1 = await spread(15, async () => (await client.tcp(VIP, TCP_PORT)).text);
    expect(onlyM1).toEqual({ m1: 15 });
    // Counters survive the table's replacement.
    expect(sample(await metrics(), 'octavia_listener_bytes_in_total', `listener="${L_TCP}"`)).toBeGreaterThan(bytesBefore);
    expect(sample(await metrics(), 'octavia_member_status', `pool="${P_TCP}",member="${memberId(1, 1)}",state="MAINT"`)).toBe(1);

    await reload(render(3, [{ weight: 1 }, { weight: 4 }, { weight: 0 }]));
    const weighted = await spread(40, async () => (await client.tcp(VIP, TCP_PORT)).text);
    expect(weighted.m3).toBeUndefined();
    expect(weighted.m2).toBeGreaterThan(weighted.m1 ?? 0);
    // The other listeners kept working through the reloads.
    expect(nameOf((await client.udp(VIP, TCP_PORT)).text)).toMatch(/^m[123]$/);
  });

  it('refuses a member off the VIP segment and keeps the running rules', async () => {
    const bad = render(4);
    (bad.pools as PoolInput[])[2].members![0] = { id: memberId(3, 0), address: '10.223.99.5', port: TCP_PORT };
    writeFileSync(file, JSON.stringify(bad));
    dataplane.kill('SIGHUP');
    await eventually(() => logs.some((l) => l.msg === 'config rejected; running config stays' && /L2 segment|not reachable/.test(String(l.err))), 15_000);
    expect(nameOf((await client.tcp(VIP, STICKY_PORT)).text)).toMatch(/^m[123]$/);
  });

  it('removes its nftables table on SIGTERM', async () => {
    expect(await drTable()).toContain('argonaut_dr_');
    dataplane.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(await drTable()).not.toContain('argonaut_dr_');
  });
});
