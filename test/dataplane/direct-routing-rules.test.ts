// Direct routing without a network: the config rules, the slot table, the nftables script, and the
// controller against a fake host (what it refuses, how it follows health, counters, stop). The real
// kernel path is in direct-routing.test.ts (root).
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseAmphoraConfig, safeParseAmphoraConfig, type AmphoraConfigInput, type PoolInput } from '../../common/amphora-config/index.ts';
import { LocalDataPlane } from '../../amphora/dataplane/dataplane.ts';
import { DirectRouting } from '../../amphora/dataplane/directrouting/controller.ts';
import type { DrHost } from '../../amphora/dataplane/directrouting/host.ts';
import { assignSlots, buildPlan, eligibleTargets, portRuns, SLOT_COUNT, type DrPlan } from '../../amphora/dataplane/directrouting/plan.ts';
import { renderRemoval, renderRuleset } from '../../amphora/dataplane/directrouting/ruleset.ts';
import { createLogger } from '../../amphora/dataplane/log.ts';
import { HeartbeatBuilder } from '../../amphora/dataplane/stats/heartbeat.ts';
import { uid } from './helpers.ts';

const VIP = '192.0.2.10';
const MEMBER_ADDRESSES = ['192.0.2.11', '192.0.2.12', '192.0.2.13'];
const MACS: Record<string, string> = { '192.0.2.11': '02:00:00:00:00:11', '192.0.2.12': '02:00:00:00:00:12', '192.0.2.13': '02:00:00:00:00:13' };

function drConfig(opts: { listener?: Record<string, unknown>; pool?: Partial<PoolInput>; members?: Record<string, unknown>[]; version?: number } = {}): AmphoraConfigInput {
  return {
    version: 1,
    configVersion: opts.version ?? 1,
    amphoraId: uid(0xa0),
    vips: [{ address: VIP }],
    listeners: [{ id: uid(1), protocol: 'TCP', ports: [1935, 554, { from: 50000, to: 65535 }], defaultPoolId: uid(2), forwarding: 'DIRECT_ROUTING', ...opts.listener }],
    pools: [
      {
        id: uid(2),
        protocol: 'TCP',
        algorithm: 'ROUND_ROBIN',
        members: MEMBER_ADDRESSES.map((address, i) => ({ id: uid(10 + i), address, port: 1935, ...opts.members?.[i] })),
        ...opts.pool,
      },
    ],
  };
}

const bare = (id: string) => id.replace(/-/g, '');
const TABLE = `argonaut_dr_${bare(uid(0xa0))}`;

const errorOf = (input: AmphoraConfigInput) => {
  const r = safeParseAmphoraConfig(input);
  return r.ok ? '' : r.error.message;
};

describe('DIRECT_ROUTING config rules', () => {
  it('accepts TCP and UDP listeners with plain pools and SOURCE_IP persistence', () => {
    expect(errorOf(drConfig({ pool: { sessionPersistence: { type: 'SOURCE_IP', granularity: '255.255.255.0' } } }))).toBe('');
    const udp = drConfig({ listener: { protocol: 'UDP' }, pool: { protocol: 'UDP' } });
    expect(errorOf(udp)).toBe('');
    expect(parseAmphoraConfig(drConfig()).listeners[0].forwarding).toBe('DIRECT_ROUTING');
  });

  it('refuses what a stateless L4 forwarder cannot honour, naming the path', () => {
    expect(errorOf(drConfig({ listener: { protocol: 'HTTP' }, pool: { protocol: 'HTTP' } }))).toMatch(/listeners\.0\.forwarding: DIRECT_ROUTING needs a TCP or UDP listener, not HTTP/);
    expect(errorOf(drConfig({ pool: { protocol: 'PROXY' } }))).toMatch(/listeners\.0\.defaultPoolId: a DIRECT_ROUTING TCP listener needs a TCP pool, not PROXY/);
    expect(errorOf(drConfig({ pool: { sessionPersistence: { type: 'LAST_SUCCESSFUL' } } }))).toMatch(/pools\.0\.sessionPersistence: .*SOURCE_IP persistence only/);
    expect(errorOf(drConfig({ pool: { sessionPersistence: { type: 'SOURCE_IP', granularity: '64' } } }))).toMatch(/granularity: .*IPv4 netmask/);
    expect(errorOf(drConfig({ listener: { connectionLimit: 100 } }))).toMatch(/listeners\.0\.connectionLimit: .*keeps no connection state/);
    expect(errorOf(drConfig({ members: [{ maxConnections: 10 }] }))).toMatch(/pools\.0\.members\.0\.maxConnections/);
    expect(errorOf(drConfig({ members: [{ address: '2001:db8::11' }] }))).toMatch(/pools\.0\.members\.0\.address: .*IPv4/);
    expect(errorOf({ ...drConfig(), vips: [{ address: '2001:db8::10' }] })).toMatch(/vips\.0\.address: DIRECT_ROUTING serves IPv4 VIPs only/);
    // A proxied listener is not affected by these rules.
    expect(errorOf(drConfig({ listener: { forwarding: 'PROXY', connectionLimit: 100 }, pool: { protocol: 'PROXY' } }))).toBe('');
  });
});

describe('DIRECT_ROUTING slot table', () => {
  it('gives members slots in proportion to their weights', () => {
    const slots = assignSlots([
      { id: 'a', weight: 1 },
      { id: 'b', weight: 3 },
    ]);
    expect(slots).toHaveLength(SLOT_COUNT);
    const b = slots.filter((s) => s === 1).length / SLOT_COUNT;
    expect(b).toBeGreaterThan(0.65);
    expect(b).toBeLessThan(0.85);
  });

  it('moves only the slots of a member that leaves', () => {
    const three = [
      { id: 'a', weight: 1 },
      { id: 'b', weight: 1 },
      { id: 'c', weight: 1 },
    ];
    const before = assignSlots(three).map((i) => three[i].id);
    const two = three.filter((m) => m.id !== 'b');
    const after = assignSlots(two).map((i) => two[i].id);
    before.forEach((id, slot) => {
      if (id !== 'b') expect(after[slot]).toBe(id);
    });
    expect(after).not.toContain('b');
  });

  it('serves enabled, weighted, healthy, resolved members; backups only when no primary can', () => {
    const config = parseAmphoraConfig(
      drConfig({
        members: [{ weight: 0 }, { enabled: false }, { backup: true }],
        pool: { healthMonitor: { id: uid(30), type: 'TCP', delay: 1000, timeout: 500 } },
      }),
    );
    const pool = config.pools[0];
    const facts = (healthy: boolean, resolved = true) => ({ healthy: () => healthy, mac: (a: string) => (resolved ? MACS[a] : undefined) });
    expect(eligibleTargets(pool, facts(true)).map((t) => t.address)).toEqual(['192.0.2.13']); // only the backup is left
    expect(eligibleTargets(pool, facts(false))).toEqual([]);
    expect(eligibleTargets(pool, facts(true, false))).toEqual([]);
    const primaries = parseAmphoraConfig(drConfig({ members: [{}, {}, { backup: true }] })).pools[0];
    expect(eligibleTargets(primaries, facts(true)).map((t) => t.address)).toEqual(['192.0.2.11', '192.0.2.12']);
    expect(eligibleTargets({ ...primaries, enabled: false }, facts(true))).toEqual([]);
  });

  it('compresses port lists into runs', () => {
    expect(portRuns([554, 1935, 50000, 50001, 50002])).toEqual([
      [554, 554],
      [1935, 1935],
      [50000, 50002],
    ]);
  });
});

function plan(input: AmphoraConfigInput): DrPlan {
  return buildPlan(parseAmphoraConfig(input), 'eth0', '02:00:00:00:00:01', { healthy: () => true, mac: (a) => MACS[a] });
}

describe('DIRECT_ROUTING nftables script', () => {
  it('replaces the table atomically and rewrites the MACs towards the hashed member', () => {
    const script = renderRuleset(plan(drConfig({ pool: { sessionPersistence: { type: 'SOURCE_IP', granularity: '24' } }, listener: { allowedCidrs: ['198.51.100.0/24'] } })));
    const lines = script.split('\n');
    const table = TABLE;
    expect(lines.slice(0, 3)).toEqual([`table netdev ${table} {}`, `delete table netdev ${table}`, `table netdev ${table} {`]);
    expect(script).toContain('type filter hook ingress device "eth0" priority -500; policy accept;');
    expect(script).toContain(`ip daddr ${VIP} tcp dport { 554, 1935, 50000-65535 } jump l_${bare(uid(1))}`);
    expect(script).toContain('ip saddr != { 198.51.100.0/24 } drop');
    expect(script).toMatch(/jhash ip saddr & 255\.255\.255\.0 mod 256 seed 0x0 vmap \{ 0 : jump m_\w+, 1 : jump m_\w+/);
    expect(script).toContain(
      `counter name "cm_${bare(uid(1))}_${bare(uid(11))}" ether saddr set 02:00:00:00:00:01 ether daddr set 02:00:00:00:00:12 fwd to "eth0"`,
    );
    expect(script).toContain(`tcp flags & (syn | ack) == syn counter name "cs_${bare(uid(1))}_${bare(uid(10))}"`);
    expect((script.match(/ : jump m_/g) ?? []).length).toBe(SLOT_COUNT);
    expect(renderRemoval(table)).toBe(`table netdev ${table} {}\ndelete table netdev ${table}\n`);
  });

  it('hashes flows (symhash) without persistence, and drops when nobody can serve', () => {
    const udp = renderRuleset(plan(drConfig({ listener: { protocol: 'UDP' }, pool: { protocol: 'UDP' } })));
    expect(udp).toContain('udp dport { 554, 1935, 50000-65535 }');
    expect(udp).toMatch(/symhash mod 256 vmap/);
    expect(udp).not.toContain('tcp flags');
    const empty = renderRuleset(plan(drConfig({ members: [{ enabled: false }, { enabled: false }, { enabled: false }] })));
    expect(empty).not.toContain('vmap');
    expect(empty).toMatch(/counter name "cl_\w+"\n {4}drop\n/);
  });

  it.skipIf(process.getuid?.() !== 0 || spawnSync('nft', ['--version']).status !== 0)('is a script the kernel accepts (nft -c, changes nothing)', () => {
    const p = { ...plan(drConfig({ pool: { sessionPersistence: { type: 'SOURCE_IP' } } })), device: 'lo' };
    const check = spawnSync('nft', ['-c', '-f', '-'], { input: renderRuleset(p), encoding: 'utf8' });
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
  });
});

/** A host where everything works unless told otherwise; records the scripts it runs. */
class FakeHost implements DrHost {
  netdev: string | null = null;
  scripts: string[] = [];
  table = new Map<string, { packets: number; bytes: number }>();
  vipDevice: string | null = 'eth0';
  offLink = new Set<string>();

  async probeNetdev(): Promise<string | null> {
    return this.netdev;
  }
  async interfaceOf(address: string) {
    if (address !== VIP || this.vipDevice === null) return null;
    return { device: this.vipDevice, mac: this.vipDevice === 'lo' ? '00:00:00:00:00:00' : '02:00:00:00:00:01', loopback: this.vipDevice === 'lo' };
  }
  async macOf(device: string) {
    return device === 'eth0' ? '02:00:00:00:00:01' : '00:00:00:00:00:00';
  }
  async routeTo(address: string) {
    return this.offLink.has(address) ? { device: 'eth0', gateway: '192.0.2.1', local: false } : { device: 'eth0', gateway: null, local: false };
  }
  async resolveMac(_device: string, address: string) {
    return MACS[address];
  }
  async nft(script: string, check = false) {
    if (check) return;
    this.scripts.push(script);
    this.table.clear(); // a replaced or removed table starts its counters again

  }
  async counters() {
    return new Map(this.table);
  }
  get last(): string {
    return this.scripts[this.scripts.length - 1] ?? '';
  }
}

const silent = createLogger('silent');

describe('DIRECT_ROUTING controller', () => {
  it('refuses clearly where nftables netdev is missing, the VIP is not here or a member is off the segment', async () => {
    const host = new FakeHost();
    const dr = new DirectRouting({ log: silent, host });
    host.netdev = 'the nft command is missing (Debian package nftables)';
    await expect(dr.prepare(parseAmphoraConfig(drConfig()))).rejects.toThrow(
      /listeners\.0\.forwarding: DIRECT_ROUTING cannot be served on this host: the nft command is missing/,
    );
    host.netdev = null;
    host.vipDevice = null;
    await expect(dr.prepare(parseAmphoraConfig(drConfig()))).rejects.toThrow(/vips\.0\.address: DIRECT_ROUTING: no interface of this amphora holds the VIP/);
    host.vipDevice = 'eth0';
    host.offLink.add('192.0.2.12');
    await expect(dr.prepare(parseAmphoraConfig(drConfig()))).rejects.toThrow(/pools\.0\.members\.1\.address: .*not on the VIP's L2 segment \(eth0\); it is reached via 192\.0\.2\.1/);
    expect(host.scripts).toEqual([]);
    // A BACKUP amphora (VIP on lo, ARP off) keeps its rules on the interface that reaches the members.
    host.offLink.clear();
    host.vipDevice = 'lo';
    const backup = await dr.prepare(parseAmphoraConfig(drConfig()));
    expect(backup.link).toEqual({ device: 'eth0', mac: '02:00:00:00:00:01' });
    // Without DR listeners nothing is asked of the host.
    host.netdev = 'no netdev';
    const proxied = await dr.prepare(parseAmphoraConfig(drConfig({ listener: { forwarding: 'PROXY' } })));
    expect(proxied.link).toBeNull();
  });

  it('follows health, carries counters across replacements and removes its table on stop', async () => {
    const host = new FakeHost();
    const dr = new DirectRouting({ log: silent, host });
    const config = parseAmphoraConfig(drConfig({ pool: { healthMonitor: { id: uid(30), type: 'TCP', delay: 1000, timeout: 500 } } }));
    await dr.commit(await dr.prepare(config));
    expect(host.scripts).toHaveLength(1);
    expect(host.last).toContain('ether daddr set 02:00:00:00:00:11');

    host.table.set(`cl_${bare(uid(1))}`, { packets: 3, bytes: 300 });
    dr.setHealth([{ poolId: uid(2), memberId: uid(10), healthy: false, label: 'DOWN' }]);
    await dr.idle();
    expect(host.scripts).toHaveLength(2);
    expect(host.last).not.toContain('ether daddr set 02:00:00:00:00:11');
    expect(host.last).toContain('ether daddr set 02:00:00:00:00:12');
    // The same health again changes nothing.
    dr.setHealth([{ poolId: uid(2), memberId: uid(10), healthy: false, label: 'DOWN' }]);
    await dr.idle();
    expect(host.scripts).toHaveLength(2);
    // Back up: the member gets its slots again.
    dr.setHealth([{ poolId: uid(2), memberId: uid(10), healthy: true, label: 'UP' }]);
    await dr.idle();
    expect(host.last).toContain('ether daddr set 02:00:00:00:00:11');
    const snap = await dr.addTo({ configVersion: 1, listeners: {}, pools: {} });
    expect(snap.listeners[uid(1)].traffic.bytesIn).toBe(300);

    await dr.stop();
    expect(host.last).toBe(renderRemoval(TABLE));
  });

  it('adds DR listeners to the data plane snapshot and heartbeat: bytes in, opened TCP connections, no bytes out', async () => {
    const host = new FakeHost();
    const dp = new LocalDataPlane({ log: silent, directRoutingHost: host });
    await dp.apply(drConfig());
    const listenerId = bare(uid(1));
    const memberBare = bare(uid(11));
    host.table.set(`cl_${listenerId}`, { packets: 10, bytes: 1000 });
    host.table.set(`cm_${listenerId}_${memberBare}`, { packets: 10, bytes: 1000 });
    host.table.set(`cs_${listenerId}_${memberBare}`, { packets: 2, bytes: 120 });
    const snap = await dp.snapshot();
    expect(snap.listeners[uid(1)].traffic).toEqual({ bytesIn: 1000, bytesOut: 0, activeConnections: 0, totalConnections: 2, requestErrors: 0 });
    expect(snap.pools[uid(2)].members[uid(11)].traffic.bytesIn).toBe(1000);
    const beat = new HeartbeatBuilder(uid(0xa0)).build(snap);
    expect(beat.listeners[uid(1)]).toEqual({ status: 'OPEN', stats: { tx: 0, rx: 1000, conns: 0, totconns: 2, ereq: 0 } });
    expect(beat.pools[`${uid(2)}:${uid(1)}`].members[uid(11)]).toBe('no check');

    // A reload replaces the table; what the old one counted is kept.
    await dp.apply(drConfig({ version: 2, members: [{}, { weight: 5 }, {}] }));
    host.table.clear();
    expect((await dp.snapshot()).listeners[uid(1)].traffic.bytesIn).toBe(1000);
    await dp.stop(0);
    expect(host.last).toContain('delete table netdev argonaut_dr_');
  });
});
