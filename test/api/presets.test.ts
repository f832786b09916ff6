// Presets (issue 7): the catalog API, and each preset applied through the API and through the
// `argonaut preset` command, compared field by field with the VIP tables of the seed documents.
// The tables below are written from the seeds (../shared/seeds/000-003), not from presets/*.yaml.
// No-op drivers: the documentation addresses below never carry traffic.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SUBNET = '6c1f4a49-0e64-4e5f-a4a3-5a4d4cf6e8d1';
const PROJECT = 'presets-project';
const M1 = '192.0.2.11';
const M2 = '192.0.2.12';

/** One row of a seed's VIP table, in Octavia terms. */
interface Row {
  service: string;
  /** The seed's ports, normalised: ascending, ranges as a-b. */
  ports: string;
  /** Listener (and pool) protocol: L7 TCP mode and L4 are TCP, L7 HTTP mode is HTTP. */
  protocol: 'TCP' | 'HTTP';
  /** TCP/UDP in the seed. */
  udp: boolean;
  forwarding: 'PROXY' | 'DIRECT_ROUTING';
  persistence: string | null;
  /** Only where the seed names the check. */
  monitor?: { type: string; http_method: string; url_path: string; expected_body: string };
}

const l7tcp = (service: string, port: number, persistence: string | null = null): Row => ({ service, ports: `${port}`, protocol: 'TCP', udp: false, forwarding: 'PROXY', persistence });

// Seed 003 (Load balancing Red Hat OpenStack): VIP, Mode, Port(s), Persistence Mode. The seed's
// "keystone_admin_shh" is the issue's keystone_admin_ssh.
const RHOSP: Row[] = [
  l7tcp('aodh', 8042), l7tcp('ceilometer', 8777), l7tcp('cinder', 8776), l7tcp('glance_api', 9292), l7tcp('glance_registry', 9191),
  l7tcp('gnocchi', 8041), l7tcp('heat_api', 8004), l7tcp('heat_cfn', 8000), l7tcp('heat_cloudwatch', 8003),
  { service: 'horizon', ports: '80', protocol: 'HTTP', udp: false, forwarding: 'PROXY', persistence: 'HTTP_COOKIE' },
  l7tcp('keystone_admin', 35357), l7tcp('keystone_admin_ssh', 22), l7tcp('keystone_public', 5000), l7tcp('mysql', 3306, 'LAST_SUCCESSFUL'),
  l7tcp('neutron', 9696), l7tcp('nova_ec2', 8773), l7tcp('nova_metadata', 8775), l7tcp('nova_novncproxy', 6080, 'SOURCE_IP'),
  l7tcp('nova_osapi', 8774), l7tcp('nova_placement', 8778), l7tcp('panko', 8779), l7tcp('redis', 6379, 'LAST_SUCCESSFUL'),
  l7tcp('swift_proxy_server', 8080),
];

// Seeds 000/001 (Harmonic VOS): VIP 1 L7 TCP mode 8080,8443 Source IP; VIP 2 L4 DR TCP/UDP
// 1935,554,50000-65535 Source IP; both "Negotiate HTTPS (GET) /admin/status", expecting "Healthy".
const VOS_CHECK = { type: 'HTTPS', http_method: 'GET', url_path: '/admin/status', expected_body: 'Healthy' };
const VOS: Row[] = [
  { service: 'Harmonic_Management', ports: '8080,8443', protocol: 'TCP', udp: false, forwarding: 'PROXY', persistence: 'SOURCE_IP', monitor: VOS_CHECK },
  { service: 'Harmonic_Traffic', ports: '554,1935,50000-65535', protocol: 'TCP', udp: true, forwarding: 'DIRECT_ROUTING', persistence: 'SOURCE_IP', monitor: VOS_CHECK },
];

// Seed 002 (Wowza): GUI 8088, Streaming 1935, Source IP on both; section 10 L4 DR TCP, section 11 L7
// (GUI HTTP mode, streaming TCP mode).
const WOWZA_DR: Row[] = [
  { service: 'Wowza_GUI', ports: '8088', protocol: 'TCP', udp: false, forwarding: 'DIRECT_ROUTING', persistence: 'SOURCE_IP' },
  { service: 'Wowza_Streaming', ports: '1935', protocol: 'TCP', udp: false, forwarding: 'DIRECT_ROUTING', persistence: 'SOURCE_IP' },
];
const WOWZA_L7: Row[] = [
  { service: 'Wowza_GUI', ports: '8088', protocol: 'HTTP', udp: false, forwarding: 'PROXY', persistence: 'SOURCE_IP' },
  { service: 'Wowza_Streaming', ports: '1935', protocol: 'TCP', udp: false, forwarding: 'PROXY', persistence: 'SOURCE_IP' },
];

const intervalsOf = (l: any): Array<[number, number]> => [
  [l.protocol_port, l.protocol_port],
  ...((l.additional_ports as string | undefined)?.split(',') ?? []).map((p): [number, number] => {
    const [a, b] = p.split('-').map(Number);
    return [a!, b ?? a!];
  }),
];

/**
 * What a created load balancer holds, folded back into VIP table rows: a proxied multi-port service
 * is one listener per port named <service>_<port>, whose ports are joined again here. Also checks
 * what every row must have: each listener's pool, the same members everywhere, a monitor.
 */
async function tableOf(client: Client, lbId: string, services: string[], memberPort: (service: string, listenerPort: number) => number | null): Promise<Row[]> {
  const listeners = (await client.get(`/v2/lbaas/listeners?loadbalancer_id=${lbId}`)).body.listeners as any[];
  const rows = new Map<string, Row & { intervals: Array<[number, number]> }>();
  for (const l of listeners) {
    const service = services.includes(l.name) ? l.name : l.name.replace(/_\d+$/, '');
    expect(services, `listener ${l.name}`).toContain(service);
    const pool = (await client.get(`/v2/lbaas/pools/${l.default_pool_id}`)).body.pool;
    expect(pool.protocol).toBe(l.protocol);
    expect(pool.name).toBe(l.name);
    const monitor = (await client.get(`/v2/lbaas/healthmonitors/${pool.healthmonitor_id}`)).body.healthmonitor;
    expect(monitor.delay).toBeGreaterThanOrEqual(monitor.timeout);
    const members = ((await client.get(`/v2/lbaas/pools/${pool.id}/members`)).body.members as any[]).map((m) => [m.address, m.protocol_port]).sort();
    const port = memberPort(service, l.protocol_port);
    expect(members, `members of ${l.name}`).toEqual(port === null ? [] : [[M1, port], [M2, port]]);
    const row = {
      service,
      ports: '',
      protocol: l.protocol,
      udp: Boolean(l.also_udp),
      forwarding: l.forwarding_method ?? 'PROXY',
      persistence: pool.session_persistence?.type ?? null,
      ...(monitor.type === 'HTTPS' || monitor.expected_body
        ? { monitor: { type: monitor.type, http_method: monitor.http_method, url_path: monitor.url_path, expected_body: monitor.expected_body } }
        : {}),
      intervals: intervalsOf(l),
    };
    const seen = rows.get(service);
    if (seen) {
      const { intervals, ports, ...rest } = row;
      const { intervals: before, ports: _p, ...restBefore } = seen;
      expect(rest, `the listeners of ${service} agree`).toEqual(restBefore);
      seen.intervals = [...before, ...intervals];
    } else rows.set(service, row);
  }
  return [...rows.values()]
    .map(({ intervals, ...r }) => ({ ...r, ports: intervals.sort((a, b) => a[0] - b[0]).map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',') }))
    .sort((a, b) => a.service.localeCompare(b.service));
}

const sorted = (rows: Row[]) => [...rows].sort((a, b) => a.service.localeCompare(b.service));

/** Runs `argonaut preset ...` against the test API. */
function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bin/argonaut.ts'), 'preset', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out, err });
    });
  });
}

let api: TestApi;
let client: Client;
let operatorDir: string;

beforeAll(async () => {
  operatorDir = mkdtempSync(join(tmpdir(), 'argonaut-presets-'));
  writeFileSync(
    join(operatorDir, 'echo.yaml'),
    ['name: echo', 'title: An operator preset', 'description: One UDP service.', 'source: the operator', 'services:',
      '  - {name: echo, mode: L4 proxy, protocol: UDP, ports: "7", persistence: SOURCE_IP, monitor: {type: UDP-CONNECT, delay: 5, timeout: 3, max_retries: 2, reason: "UDP echo"}}', ''].join('\n'),
  );
  api = await startApi({ presets: { directory: operatorDir } });
  client = {
    ...api.client(),
    get: (p) => api.client().raw('GET', p, undefined, { 'X-Project-Id': PROJECT }),
    post: (p, b) => api.client().raw('POST', p, JSON.stringify(b), { 'X-Project-Id': PROJECT, 'Content-Type': 'application/json' }),
  } as Client;
}, 60_000);

afterAll(async () => {
  await api?.close();
  rmSync(operatorDir, { recursive: true, force: true });
});

const apply = (name: string, preset: unknown) => client.post(`/v2/argonaut/presets/${name}/apply`, { preset });
const everyService = (rows: Row[], members: unknown[]) => Object.fromEntries(rows.map((r) => [r.service, members]));

describe('the preset catalog', () => {
  it('lists the built-in presets and the operator one, and shows each with its services', async () => {
    const list = await client.get('/v2/argonaut/presets');
    expect(list.status).toBe(200);
    expect(list.body.presets.map((p: any) => [p.name, p.built_in])).toEqual([['echo', false], ['harmonic-vos', true], ['rhosp', true], ['wowza', true]]);
    expect(list.body.presets.find((p: any) => p.name === 'wowza')).toMatchObject({ modes: ['direct-routing', 'l7'], default_mode: 'direct-routing' });
    const rhosp = await client.get('/v2/argonaut/presets/rhosp');
    expect(rhosp.status).toBe(200);
    expect(rhosp.body.preset.services).toHaveLength(23);
    for (const s of rhosp.body.preset.services) expect(s.healthmonitor.reason.length, s.name).toBeGreaterThan(10);
    const vos = (await client.get('/v2/argonaut/presets/harmonic-vos')).body.preset;
    expect(vos.services.map((s: any) => s.listeners)).toEqual([['Harmonic_Management_8080', 'Harmonic_Management_8443'], ['Harmonic_Traffic']]);
  });

  it('answers 404 for an unknown preset, on show and apply', async () => {
    const show = await client.get('/v2/argonaut/presets/nope');
    expect(show.status).toBe(404);
    expect(show.body.faultstring).toBe('Preset nope not found.');
    expect((await apply('nope', { vip_subnet_id: SUBNET })).status).toBe(404);
  });
});

describe('applying a preset through the API equals the seed tables', () => {
  const cases: Array<[string, string | undefined, Row[], string]> = [
    ['rhosp', undefined, RHOSP, '192.0.2.50'],
    ['harmonic-vos', undefined, VOS, '192.0.2.51'],
    ['wowza', 'direct-routing', WOWZA_DR, '192.0.2.52'],
    ['wowza', 'l7', WOWZA_L7, '192.0.2.53'],
  ];
  for (const [name, mode, table, vip] of cases) {
    it(`${name}${mode ? ` (${mode})` : ''}`, async () => {
      const res = await apply(name, { vip_subnet_id: SUBNET, vip_address: vip, name: `lb-${name}`, ...(mode ? { mode } : {}), members: everyService(table, [{ address: M1 }, { address: M2 }]) });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      const lb = res.body.loadbalancer;
      expect(lb).toMatchObject({ name: `lb-${name}`, vip_address: vip, project_id: PROJECT, provisioning_status: 'PENDING_CREATE' });
      expect(lb.tags).toContain(`preset:${name}`);
      await api.settle();
      expect((await client.get(`/v2/lbaas/loadbalancers/${lb.id}`)).body.loadbalancer.provisioning_status).toBe('ACTIVE');
      // Members get the listener's port (direct routing: the first port; no translation happens).
      expect(await tableOf(client, lb.id, table.map((r) => r.service), (_s, port) => port)).toEqual(sorted(table));
    });
  }

  it('points the VOS checks at 8443 (member monitor_port), the port the guide leaves implicit', async () => {
    const lbs = (await client.get('/v2/lbaas/loadbalancers?name=lb-harmonic-vos')).body.loadbalancers;
    const pools = (await client.get(`/v2/lbaas/pools?loadbalancer_id=${lbs[0].id}`)).body.pools as any[];
    expect(pools).toHaveLength(3);
    for (const p of pools) {
      const members = (await client.get(`/v2/lbaas/pools/${p.id}/members`)).body.members as any[];
      expect(members.map((m) => m.monitor_port)).toEqual([8443, 8443]);
    }
  });

  it('refuses bad members with 400 naming the field, and creates nothing', async () => {
    const before = (await client.get('/v2/lbaas/loadbalancers')).body.loadbalancers.length;
    const bad: Array<[unknown, RegExp]> = [
      [{ aodh: [{ address: 'not-an-ip' }] }, /^Invalid input for field\/attribute members\.aodh\[0\]\.address\. Value: 'not-an-ip'\. Value should be an IPv4 or IPv6 address/],
      [{ aodh: [{ address: M1, protocol_port: 70000 }] }, /^Invalid input for field\/attribute members\.aodh\[0\]\.protocol_port\. Value: '70000'\./],
      [{ aodh: [{ address: M1, colour: 'red' }] }, /^Invalid input for field\/attribute members\.aodh\[0\]\.colour\./],
      [{ nova_ec3: [{ address: M1 }] }, /^Invalid input for field\/attribute members\. Value: 'nova_ec3'\. Value should name services of preset rhosp: aodh, /],
      [{ aodh: { address: M1 } }, /^Invalid input for field\/attribute members\.aodh\./],
    ];
    for (const [members, message] of bad) {
      const res = await apply('rhosp', { vip_subnet_id: SUBNET, members });
      expect(res.status, JSON.stringify(members)).toBe(400);
      expect(res.body.faultstring).toMatch(message);
    }
    const mode = await apply('rhosp', { vip_subnet_id: SUBNET, mode: 'dr' });
    expect(mode.status).toBe(400);
    expect(mode.body.faultstring).toMatch(/^Invalid input for field\/attribute mode\. Value: 'dr'\. preset rhosp has no modes/);
    const wrongMode = await apply('wowza', { vip_subnet_id: SUBNET, mode: 'l4' });
    expect(wrongMode.body.faultstring).toMatch(/attribute mode\. Value: 'l4'\. preset wowza has no mode l4 \(modes: direct-routing, l7\)/);
    // The graph create's own checks still apply, all or nothing: a duplicate member in one pool is a 409.
    const dup = await apply('rhosp', { vip_subnet_id: SUBNET, members: { mysql: [{ address: M1 }, { address: M1 }] } });
    expect(dup.status).toBe(409);
    expect((await client.get('/v2/lbaas/loadbalancers')).body.loadbalancers.length).toBe(before);
    // No VIP at all: the load balancer create's own message.
    const novip = await apply('rhosp', {});
    expect(novip.status).toBe(400);
  });

  it('applies an operator preset from presets.directory', async () => {
    const res = await apply('echo', { vip_subnet_id: SUBNET, members: { echo: [{ address: M1 }] } });
    expect(res.status).toBe(201);
    expect(res.body.loadbalancer.listeners).toHaveLength(1);
  });
});

describe('applying a preset with the argonaut preset command equals the seed tables', () => {
  const cases: Array<[string, string | undefined, Row[], string]> = [
    ['rhosp', undefined, RHOSP, '192.0.2.60'],
    ['harmonic-vos', undefined, VOS, '192.0.2.61'],
    ['wowza', 'direct-routing', WOWZA_DR, '192.0.2.62'],
    ['wowza', 'l7', WOWZA_L7, '192.0.2.63'],
  ];
  for (const [name, mode, table, vip] of cases) {
    it(`${name}${mode ? ` (${mode})` : ''}`, async () => {
      const r = await cli(['apply', name, '--url', api.url, '--project', PROJECT, '--vip-subnet-id', SUBNET, '--vip-address', vip, '--name', `cli-${name}`,
        ...(mode ? ['--mode', mode] : []), '--member-all', M1, '--member-all', M2, '--json']);
      expect(r.code, r.err).toBe(0);
      const lb = JSON.parse(r.out).loadbalancer;
      expect(lb).toMatchObject({ name: `cli-${name}`, vip_address: vip, project_id: PROJECT });
      await api.settle();
      expect(await tableOf(client, lb.id, table.map((s) => s.service), (_s, port) => port)).toEqual(sorted(table));
    }, 90_000);
  }

  it('lists and shows presets, takes one member per service, and reports a refusal with the API message', async () => {
    const list = await cli(['list', '--url', api.url, '--project', PROJECT]);
    expect(list.code, list.err).toBe(0);
    expect(list.out).toMatch(/^NAME\s+MODES\s+ORIGIN\s+TITLE$/m);
    expect(list.out).toMatch(/^wowza\s+direct-routing\*,l7\s+built-in\s+Wowza/m);
    const show = await cli(['show', 'harmonic-vos', '--url', api.url, '--project', PROJECT]);
    expect(show.out).toMatch(/^Harmonic_Traffic\s+1935,554,50000-65535\s+TCP\+UDP\s+DIRECT_ROUTING\s+SOURCE_IP\s+HTTPS GET \/admin\/status "Healthy"/m);
    const one = await cli(['apply', 'wowza', '--url', api.url, '--project', PROJECT, '--vip-subnet-id', SUBNET, '--mode', 'l7', '--member', `Wowza_GUI=${M1}:18088`, '--member', `Wowza_Streaming=[2001:db8::5]:1935`]);
    expect(one.code, one.err).toBe(0);
    expect(one.out).toMatch(/^Load balancer [0-9a-f-]{36} \(wowza\) created from preset wowza/);
    const bad = await cli(['apply', 'wowza', '--url', api.url, '--project', PROJECT, '--vip-subnet-id', SUBNET, '--member', 'Nope=192.0.2.9']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^argonaut preset: 400: Invalid input for field\/attribute members\. Value: 'Nope'\./);
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^Usage: argonaut preset <list\|show\|apply>/);
  }, 120_000);
});

describe('preset RBAC (keystone)', () => {
  let kapi: TestApi;
  beforeAll(async () => {
    kapi = await startApi({}, { keystone: true });
  });
  afterAll(() => kapi?.close());

  it('applies as load balancer create does: a member may, a reader may not; both may read the catalog', async () => {
    const body = { preset: { vip_subnet_id: SUBNET, mode: 'l7' } };
    expect((await kapi.client('p1:reader').get('/v2/argonaut/presets')).status).toBe(200);
    expect((await kapi.client('p1:').get('/v2/argonaut/presets')).status).toBe(403);
    expect((await kapi.client('p1:reader').post('/v2/argonaut/presets/wowza/apply', body)).status).toBe(403);
    const ok = await kapi.client('p1:member').post('/v2/argonaut/presets/wowza/apply', body);
    expect(ok.status).toBe(201);
    expect(ok.body.loadbalancer.project_id).toBe('p1');
    expect((await kapi.client('p1:member').post('/v2/argonaut/presets/wowza/apply', { preset: { ...body.preset, project_id: 'p2' } })).status).toBe(403);
    expect((await kapi.client('nope').get('/v2/argonaut/presets')).status).toBe(401);
  });
});
