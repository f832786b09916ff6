// End to end through the real `openstack loadbalancer` CLI (issue 5's second end-to-end test), with
// the real peers of ../shared/peers: Argonaut runs as a child process (bin/argonaut.ts api, MariaDB
// database of its own) under Keystone (service user octavia/secret, policy ruleSet advanced), with
// the `neutron` network driver (the VIP port is allocated by the real API-only Neutron) and the
// `netns` compute driver (amphorae are network namespaces on a host bridge of this run; the VIP
// address Neutron allocated is plumbed into the amphora's namespace). Members and the client are
// namespaces of their own on the same bridge; the client sends real HTTP traffic to the VIP.
// As Octavia's allowed-address-pairs driver does, the controller keeps the security group
// `lb-<id>` (set on the VIP port) matching the listeners, and gives each amphora a VRRP port
// `octavia-lb-vrrp-<amphoraId>` on the VIP subnet (the VIP as an allowed address pair) whose address
// and MAC the amphora's eth0 carries; both are gone after the cascade delete.
//
// The Keystone catalog is never touched: the CLI is given a clouds.yaml of its own (in the run's
// temporary directory, through OS_CLIENT_CONFIG_FILE, with a clean environment) whose clouds set
// `load_balancer_endpoint_override` to this run's Argonaut (osc_lib's ClientManager takes
// `<service_type>_endpoint_override` before the catalog). The Neutron calls (the CLI's subnet
// lookups and Argonaut's) go to the catalog's network endpoint. afterAll checks that the catalog's
// load-balancer endpoints are what they were.
//
// Addresses: a /24 of its own per run, 10.217.<n>.0/24 with n chosen so that no Neutron subnet and
// no host route has it; .1 is Neutron's gateway and the bridge's address. Neutron's allocation pool
// (the VIPs) is the lower half, .2-.127; the netns driver takes amphora management addresses from
// the upper half (.128-.254, its default split), skipping the addresses of the client and the
// members (.250-.252: namespaces of the run's prefix with an eth0). Never the peers'
// 198.51.100.0/24 (documentation range).
//
// Needs root, Keystone on 127.0.0.1:5000, Neutron on 127.0.0.1:9696, the `openstack` CLI (with
// python3-octaviaclient) and MariaDB on 127.0.0.1:3306 (root, no password); skipped with the
// reason printed otherwise. Everything (namespaces and links of the prefix, the Neutron network,
// subnet and ports, the child process, the database) is removed in afterAll even when a test
// failed, then checked gone; leftovers of an earlier run that died are removed at the start.
// Every `openstack` call costs 2-4 s here (Python start, a Keystone token): the file takes 1.5-2 min.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dropMysqlDatabase } from '../../common/db/database.ts';
import { cleanupLocalNetwork } from '../../driver/network/local/cleanup.ts';
import { listAddresses, listLinks, listNamespaces, namespaceExists } from '../../driver/network/local/ip.ts';
import { securityGroupName, vrrpPortName } from '../../driver/network/neutron.ts';
import { bridgeName, hasPrefix } from '../../driver/network/local/names.ts';
import { IS_ROOT, testPrefix } from '../driver/local/netns-helpers.ts';
import { freePort, startApiProcess, type ApiProcess } from '../helpers/process.ts';
import { plugHost, startClient, startMember, type ClientProcess, type MemberProcess } from './netns-hosts.ts';
import { chooseNet, realBackendsConfig } from './real-backends.ts';
import { waitFor as pollUntil } from '../helpers/wait.ts';

const run = promisify(execFile);
const KEYSTONE_URL = 'http://127.0.0.1:5000/v3';
const NEUTRON_URL = 'http://127.0.0.1:9696';
const MYSQL_BASE = process.env.ARGONAUT_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';
/** Names of this file's Neutron networks and subnets: `<NAME_PREFIX><run prefix>`. */
const NAME_PREFIX = 'argonaut-e2e-cli-';
const prefix = testPrefix('c');
const NAME = `${NAME_PREFIX}${prefix}`;
const BRIDGE = bridgeName(prefix);
const dbUrl = `${MYSQL_BASE}/argonaut_e2e_cli_${prefix}`;
const HTTP_MEMBER_PORT = 8080;
const HTTP_PORT = 80;
/** Each `openstack` call: 2-4 s when all is well; a loaded machine and --wait take longer. */
const CLI_TIMEOUT_MS = 180_000;

// ---- availability ---------------------------------------------------------------------------------

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(3000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

async function skipReason(): Promise<string | null> {
  if (!IS_ROOT) return 'it needs root (network namespaces, veth pairs and a bridge on the host)';
  try {
    // The interpreter of the `openstack` script (not whatever python3 comes first in PATH) must have octaviaclient.
    const where = (await run('sh', ['-c', 'command -v openstack'])).stdout.trim();
    const shebang = /^#!\s*(\S+)/.exec(readFileSync(where, 'utf8').split('\n', 1)[0]!)?.[1];
    await run(shebang ?? 'python3', ['-c', 'import octaviaclient.osc.plugin'], { timeout: 30_000 });
  } catch {
    return 'the `openstack` CLI with python3-octaviaclient is not installed (../shared/peers/keystone-up.sh installs it)';
  }
  if (!(await answers(KEYSTONE_URL))) return `Keystone does not answer at ${KEYSTONE_URL} (../shared/peers/keystone-up.sh)`;
  if (!(await answers(`${NEUTRON_URL}/`))) return `Neutron does not answer at ${NEUTRON_URL} (../shared/peers/neutron-up.sh)`;
  const mysql = new URL(MYSQL_BASE);
  if (!(await portOpen(mysql.hostname, Number(mysql.port || 3306)))) return `MariaDB does not answer at ${mysql.host} (../shared/peers/mariadb-up.sh)`;
  return null;
}

const SKIP = await skipReason();
if (SKIP) console.warn(`test/e2e/cli.test.ts skipped: ${SKIP}`);

// ---- the CLI --------------------------------------------------------------------------------------

const dir = SKIP ? '' : mkdtempSync(path.join(tmpdir(), 'argonaut-e2e-cli-'));
const cloudsFile = path.join(dir, 'clouds.yaml');

/** The clouds.yaml of this run: admin and demo of ../shared/peers, the load-balancer endpoint overridden (when given). */
function writeClouds(lbEndpoint: string | null): void {
  const cloud = (user: string) => ({
    auth: { auth_url: KEYSTONE_URL, username: user, password: 'secret', project_name: user, user_domain_name: 'Default', project_domain_name: 'Default' },
    region_name: 'RegionOne',
    interface: 'public',
    identity_api_version: 3,
    ...(lbEndpoint ? { load_balancer_endpoint_override: lbEndpoint } : {}),
  });
  writeFileSync(cloudsFile, stringify({ clouds: { 'argonaut-e2e-admin': cloud('admin'), 'argonaut-e2e-demo': cloud('demo') } }), { mode: 0o600 });
}

/** The commands run, with their wall time (printed at the end). */
const timings: Array<{ command: string; ms: number }> = [];

/** Runs `openstack --os-cloud <as> args...` with a clean environment (no OS_* of the caller) and returns its standard output. */
async function openstack(as: 'admin' | 'demo', args: string[]): Promise<string> {
  const started = Date.now();
  try {
    const { stdout } = await run('openstack', ['--os-cloud', `argonaut-e2e-${as}`, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, LANG: 'C.UTF-8', OS_CLIENT_CONFIG_FILE: cloudsFile },
      timeout: CLI_TIMEOUT_MS,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string; code?: number | string; killed?: boolean };
    throw new Error(`openstack ${args.join(' ')} (as ${as}) failed${e.killed ? ' (timed out)' : ` (exit ${e.code})`}: ${(e.stderr ?? e.message).trim()}`);
  } finally {
    timings.push({ command: `${as}: openstack ${args.slice(0, 3).join(' ')}`, ms: Date.now() - started });
  }
}

async function openstackJson<T = Record<string, unknown>>(as: 'admin' | 'demo', args: string[]): Promise<T> {
  const out = await openstack(as, [...args, '-f', 'json']);
  return JSON.parse(out) as T;
}

// ---- leftovers ------------------------------------------------------------------------------------

const ownerFile = (p: string) => path.join(tmpdir(), `argonaut-e2e-cli-${p}.pid`);

function aliveNode(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('node');
  } catch {
    return false;
  }
}

interface NeutronPortDetail {
  id: string;
  name: string;
  mac_address: string;
  network_id: string;
  device_owner: string;
  fixed_ips: Array<{ subnet_id: string; ip_address: string }>;
  allowed_address_pairs: Array<{ ip_address: string; mac_address?: string }>;
  security_group_ids: string[];
}

interface SecurityGroupDetail {
  id: string;
  name: string;
  rules: Array<{ direction: string; ethertype: string; protocol: string | null; port_range_min: number | null; port_range_max: number | null; remote_ip_prefix: string | null }>;
}

/** The ingress rules of a group, as `<ethertype> <protocol> <min>-<max> <remote prefix or any>`, sorted. */
function ingressRules(group: SecurityGroupDetail): string[] {
  return group.rules
    .filter((r) => r.direction === 'ingress')
    .map((r) => `${r.ethertype} ${r.protocol} ${r.port_range_min}-${r.port_range_max} ${r.remote_ip_prefix ?? 'any'}`)
    .sort();
}

interface NeutronPortRow {
  ID: string;
  Name: string;
  'Fixed IP Addresses': Array<{ subnet_id: string; ip_address: string }>;
}

/** Deletes the ports of a network, then the network (its subnets go with it). */
async function deleteNeutronNetwork(networkId: string): Promise<void> {
  const ports = await openstackJson<NeutronPortRow[]>('admin', ['port', 'list', '--network', networkId]);
  if (ports.length > 0) await openstack('admin', ['port', 'delete', ...ports.map((p) => p.ID)]);
  await openstack('admin', ['network', 'delete', networkId]);
}

/**
 * Networks of this file whose run is gone (no live node process recorded under their prefix) are
 * removed with their ports and subnets, and so are the run's namespaces, links and database.
 * Runs at the same time are left alone.
 */
async function removeEarlierRuns(networks: Array<{ ID: string; Name: string }>): Promise<void> {
  for (const n of networks) {
    const p = n.Name.startsWith(NAME_PREFIX) ? n.Name.slice(NAME_PREFIX.length) : '';
    if (!/^c[0-9a-f]{4}$/.test(p) || p === prefix) continue;
    let owner = NaN;
    try {
      owner = Number(readFileSync(ownerFile(p), 'utf8'));
    } catch {
      /* none recorded: dead */
    }
    if (Number.isInteger(owner) && aliveNode(owner)) continue;
    console.warn(`test/e2e/cli.test.ts: removing the leftovers of an earlier run (${p}): Neutron network ${n.ID}, namespaces and links ${p}-*, database`);
    await deleteNeutronNetwork(n.ID);
    await cleanupLocalNetwork(p);
    await dropMysqlDatabase(`${MYSQL_BASE}/argonaut_e2e_cli_${p}`);
    rmSync(ownerFile(p), { force: true });
  }
}

// ---- waiting --------------------------------------------------------------------------------------

/** The CLI is slow (seconds per call): poll every 500 ms. */
const waitFor = <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 500): Promise<T> =>
  pollUntil(what, probe, timeoutMs, intervalMs);

interface StatusTree {
  loadbalancer: {
    id: string;
    operating_status: string;
    provisioning_status: string;
    listeners: Array<{
      id: string;
      operating_status: string;
      pools: Array<{ id: string; operating_status: string; health_monitor?: { id: string }; members: Array<{ id: string; address: string; operating_status: string }> }>;
    }>;
  };
}

/** Every operating status of the tree, by id. */
function statusesOf(tree: StatusTree): Record<string, string> {
  const lb = tree.loadbalancer;
  const out: Record<string, string> = { [lb.id]: lb.operating_status };
  for (const l of lb.listeners) {
    out[l.id] = l.operating_status;
    for (const p of l.pools) {
      out[p.id] = p.operating_status;
      for (const m of p.members) out[m.id] = m.operating_status;
    }
  }
  return out;
}

// ---- the run --------------------------------------------------------------------------------------

let NET = '';
let CIDR = '';
let networkId = '';
let subnetId = '';
let catalogBefore = '';
let api: ApiProcess | undefined;
let net: ClientProcess | undefined;
const members: MemberProcess[] = [];
const hosts = () => ({
  client: { ns: `${prefix}-client`, veth: `${prefix}-cl`, address: `${NET}.250` },
  m1: { ns: `${prefix}-m1`, veth: `${prefix}-m1`, address: `${NET}.251` },
  m2: { ns: `${prefix}-m2`, veth: `${prefix}-m2`, address: `${NET}.252` },
});

/** The load-balancer endpoints of the catalog, as text (compared before and after). */
async function catalogLoadBalancer(): Promise<string> {
  const endpoints = await openstackJson<Array<{ ID: string; Interface: string; URL: string; Region: string }>>('admin', ['endpoint', 'list', '--service', 'load-balancer']);
  return JSON.stringify(endpoints.map((e) => `${e.ID} ${e.Region} ${e.Interface} ${e.URL}`).sort());
}

describe.skipIf(SKIP !== null)('the real openstack CLI against Argonaut: Keystone, Neutron VIP ports, netns amphorae (root)', () => {
  beforeEach((ctx) => {
    ctx.onTestFailed(() => {
      if (api) console.error(`test/e2e/cli.test.ts: "${ctx.task.name}" failed; the last lines of Argonaut's output:\n${api.output().split('\n').slice(-60).join('\n')}`);
    });
  });

  beforeAll(async () => {
    const started = Date.now();
    writeFileSync(ownerFile(prefix), String(process.pid));
    writeClouds(null);
    const [networks, subnets, catalog] = await Promise.all([
      openstackJson<Array<{ ID: string; Name: string }>>('admin', ['network', 'list']),
      openstackJson<Array<{ Subnet: string }>>('admin', ['subnet', 'list']),
      catalogLoadBalancer(),
    ]);
    catalogBefore = catalog;
    await removeEarlierRuns(networks);
    NET = await chooseNet('10.217', subnets.map((s) => s.Subnet));
    CIDR = `${NET}.0/24`;

    // Neutron: a network and a subnet of the demo project (the demo user's CLI resolves the subnet).
    networkId = (await openstackJson<{ id: string }>('admin', ['network', 'create', '--project', 'demo', NAME])).id;
    const subnet = await openstackJson<{ id: string; cidr: string; gateway_ip: string; allocation_pools: Array<{ start: string; end: string }> }>('admin', [
      'subnet', 'create', NAME, '--project', 'demo', '--network', networkId, '--subnet-range', CIDR, '--gateway', `${NET}.1`, '--no-dhcp',
      '--allocation-pool', `start=${NET}.2,end=${NET}.127`,
    ]);
    subnetId = subnet.id;
    expect(subnet.cidr).toBe(CIDR);
    expect(subnet.allocation_pools).toEqual([{ start: `${NET}.2`, end: `${NET}.127` }]);

    // Argonaut, under Keystone, with Neutron VIPs and netns amphorae on this run's bridge.
    const port = await freePort();
    api = await startApiProcess(dir, realBackendsConfig({ port, dbUrl, keystoneUrl: KEYSTONE_URL, dir, net: NET, bridge: BRIDGE, prefix, subnetId, networkId }));
    writeClouds(api.url);
    // Argonaut created the bridge, with Neutron's gateway address.
    expect(await listAddresses(BRIDGE)).toEqual([`${NET}.1/24`]);

    const h = hosts();
    for (const host of Object.values(h)) await plugHost({ name: host.ns, hostVeth: host.veth, bridge: BRIDGE, address: host.address, prefixLength: 24 });
    members.push(await startMember(h.m1.ns, 'http', h.m1.address, HTTP_MEMBER_PORT, 'member-1'));
    members.push(await startMember(h.m2.ns, 'http', h.m2.address, HTTP_MEMBER_PORT, 'member-2'));
    net = await startClient(h.client.ns);
    expect((await net.get(h.m1.address, HTTP_MEMBER_PORT)).body).toBe('member-1');
    console.log(`test/e2e/cli.test.ts: prefix ${prefix}, subnet ${CIDR} (${subnetId}), Argonaut at ${api.url}; set up in ${Date.now() - started} ms`);
  }, 300_000);

  afterAll(async () => {
    const errors: unknown[] = [];
    const attempt = async (what: string, f: () => Promise<unknown>, timeoutMs = 60_000) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([f(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${timeoutMs} ms`)), timeoutMs)))]);
      } catch (err) {
        errors.push(new Error(`${what}: ${(err as Error).message}`));
      } finally {
        clearTimeout(timer);
      }
    };
    await attempt('stopping Argonaut', async () => {
      if (!api || api.child.exitCode !== null || api.child.signalCode !== null) return;
      api.child.kill('SIGTERM');
      const killer = setTimeout(() => api!.child.kill('SIGKILL'), 20_000);
      await api.exited;
      clearTimeout(killer);
    }, 30_000);
    await attempt('stopping the client', async () => net?.stop());
    for (const m of members) await attempt(`stopping ${m.name}`, () => m.kill());
    // Whatever still runs in a namespace of the prefix is killed; the namespaces and links (bridge included) go.
    await attempt('removing the namespaces and links', () => cleanupLocalNetwork(prefix));
    if (networkId) await attempt('removing the Neutron network', () => deleteNeutronNetwork(networkId), 120_000);
    await attempt('dropping the database', () => dropMysqlDatabase(dbUrl));

    // Nothing is left.
    expect((await listNamespaces()).filter((n) => hasPrefix(prefix, n))).toEqual([]);
    expect((await listLinks()).filter((l) => hasPrefix(prefix, l.name))).toEqual([]);
    if (api) expect(api.child.exitCode !== null || api.child.signalCode !== null).toBe(true);
    const [networksLeft, subnetsLeft, catalogAfter] = await Promise.all([
      openstackJson<Array<{ Name: string }>>('admin', ['network', 'list', '--name', NAME]),
      openstackJson<Array<{ Name: string }>>('admin', ['subnet', 'list', '--name', NAME]),
      catalogLoadBalancer(),
    ]);
    expect(networksLeft).toEqual([]);
    expect(subnetsLeft).toEqual([]);
    // The catalog was never changed.
    expect(catalogAfter).toBe(catalogBefore);
    rmSync(dir, { recursive: true, force: true });
    rmSync(ownerFile(prefix), { force: true });
    const total = timings.reduce((s, t) => s + t.ms, 0);
    console.log(`test/e2e/cli.test.ts: ${timings.length} openstack calls, ${(total / 1000).toFixed(1)} s in all (mean ${(total / timings.length / 1000).toFixed(1)} s)`);
    if (errors.length > 0) throw new AggregateError(errors, `cleaning up the CLI end-to-end test failed: ${errors.map((e) => (e as Error).message).join('; ')}`);
  }, 300_000);

  let lbId: string;
  let vip: string;
  let vipPortId: string;
  let securityGroupId: string;
  let vrrpPortId: string;
  let listenerId: string;
  let poolId: string;
  const memberIds: string[] = [];
  let requests = 0;

  /**
   * The amphora's VRRP port (service project): on the VIP subnet, the VIP as its allowed address
   * pair, the lb- group, recorded on the amphora (vrrp_port_id, vrrp_ip); eth0 in the amphora's
   * namespace carries its MAC and address, and the VIP. The amphora was a spare (the usual case:
   * it keeps its management address, from the upper half) or booted for the load balancer when no
   * spare was ready (then the VRRP address is its only one, and its lb_network_ip). Answers the port's id.
   */
  async function checkVrrpPort(amphora: { id: string; lb_network_ip: string }): Promise<string> {
    const shown = await openstackJson<Record<string, string | null>>('admin', ['loadbalancer', 'amphora', 'show', amphora.id]);
    const portId = shown.vrrp_port_id!;
    const vrrpPort = await openstackJson<NeutronPortDetail>('admin', ['port', 'show', portId]);
    expect(vrrpPort).toMatchObject({ name: vrrpPortName(amphora.id), network_id: networkId, device_owner: 'Octavia' });
    expect(vrrpPort.fixed_ips).toHaveLength(1);
    expect(vrrpPort.fixed_ips[0]!.subnet_id).toBe(subnetId);
    const vrrpIp = vrrpPort.fixed_ips[0]!.ip_address;
    expect(vrrpPort.allowed_address_pairs.map((p) => p.ip_address)).toEqual([vip]);
    expect(vrrpPort.security_group_ids).toEqual([securityGroupId]);
    expect(shown).toMatchObject({ vrrp_ip: vrrpIp, ha_ip: vip, ha_port_id: vipPortId, lb_network_ip: amphora.lb_network_ip });

    const netns = `${prefix}-${amphora.id}`;
    expect((await listLinks({ netns })).find((l) => l.name === 'eth0')?.mac).toBe(vrrpPort.mac_address);
    const eth0 = (await listAddresses('eth0', { netns })).sort(); // the kernel lists secondaries in no fixed order
    if (amphora.lb_network_ip === vrrpIp) {
      expect(eth0).toEqual([`${vrrpIp}/24`, `${vip}/32`].sort());
    } else {
      const mgmt = Number(amphora.lb_network_ip.split('.')[3]);
      expect(amphora.lb_network_ip.startsWith(`${NET}.`)).toBe(true);
      expect(mgmt).toBeGreaterThanOrEqual(128);
      expect(mgmt).toBeLessThan(250);
      expect(eth0).toEqual([`${amphora.lb_network_ip}/24`, `${vrrpIp}/24`, `${vip}/32`].sort());
    }
    return portId;
  }

  it('creates a load balancer on the Neutron subnet: Neutron allocates the VIP port, an amphora namespace holds the address', async () => {
    const lb = await openstackJson<Record<string, string>>('demo', ['loadbalancer', 'create', '--name', NAME, '--vip-subnet-id', subnetId, '--wait']);
    lbId = lb.id!;
    vip = lb.vip_address!;
    vipPortId = lb.vip_port_id!;
    expect(lb.provisioning_status).toBe('ACTIVE');
    expect(lb.vip_subnet_id).toBe(subnetId);
    expect(lb.vip_network_id).toBe(networkId);
    // An address of Neutron's allocation pool (the lower half), on Neutron's VIP port of the load balancer.
    const [, lastOctet] = new RegExp(`^${NET.replace(/\./g, '\\.')}\\.(\\d+)$`).exec(vip) ?? [];
    expect(Number(lastOctet)).toBeGreaterThanOrEqual(2);
    expect(Number(lastOctet)).toBeLessThanOrEqual(127);
    const port = await openstackJson<{ id: string; name: string; device_owner: string; device_id: string; project_id: string; network_id: string; fixed_ips: Array<{ subnet_id: string; ip_address: string }> }>(
      'admin', ['port', 'show', vipPortId],
    );
    expect(port).toMatchObject({ name: `octavia-lb-${lbId}`, device_owner: 'Octavia', device_id: `lb-${lbId}`, network_id: networkId, project_id: lb.project_id });
    expect(port.fixed_ips).toEqual([{ subnet_id: subnetId, ip_address: vip }]);

    // The amphora (admin): a namespace of the run with a management address from the upper half, and the VIP.
    const amphorae = await openstackJson<Array<{ id: string; loadbalancer_id: string; status: string; role: string; lb_network_ip: string; ha_ip: string }>>('admin', [
      'loadbalancer', 'amphora', 'list', '--loadbalancer', lbId,
    ]);
    expect(amphorae).toHaveLength(1);
    const [amphora] = amphorae;
    expect(amphora).toMatchObject({ loadbalancer_id: lbId, status: 'ALLOCATED', role: 'STANDALONE', ha_ip: vip });

    // The security group lb-<id> is on the VIP port; no listener yet, so no ingress rule.
    const vipPort = await openstackJson<NeutronPortDetail>('admin', ['port', 'show', vipPortId]);
    expect(vipPort.security_group_ids).toHaveLength(1);
    securityGroupId = vipPort.security_group_ids[0]!;
    const group = await openstackJson<SecurityGroupDetail>('admin', ['security', 'group', 'show', securityGroupId]);
    expect(group.name).toBe(securityGroupName(lbId));
    expect(ingressRules(group)).toEqual([]);

    vrrpPortId = await checkVrrpPort(amphora!);
  }, 300_000);

  it('creates a listener (allowed CIDR: the run\'s subnet, where the client is), a pool, two members and a health monitor with --wait', async () => {
    const h = hosts();
    const listener = await openstackJson<Record<string, string>>('demo', [
      'loadbalancer', 'listener', 'create', '--name', 'http', '--protocol', 'HTTP', '--protocol-port', String(HTTP_PORT), '--allowed-cidr', CIDR, '--wait', lbId,
    ]);
    listenerId = listener.id!;
    // The lb- group lets the listener's port in from its allowed CIDR only.
    const group = await openstackJson<SecurityGroupDetail>('admin', ['security', 'group', 'show', securityGroupId]);
    expect(ingressRules(group)).toEqual([`IPv4 tcp ${HTTP_PORT}-${HTTP_PORT} ${CIDR}`]);
    const pool = await openstackJson<Record<string, string>>('demo', ['loadbalancer', 'pool', 'create', '--name', 'web', '--listener', listenerId, '--protocol', 'HTTP', '--lb-algorithm', 'ROUND_ROBIN', '--wait']);
    poolId = pool.id!;
    for (const [name, m] of [['m1', h.m1], ['m2', h.m2]] as const) {
      const member = await openstackJson<Record<string, string>>('demo', [
        'loadbalancer', 'member', 'create', '--name', name, '--subnet-id', subnetId, '--address', m.address, '--protocol-port', String(HTTP_MEMBER_PORT), '--wait', poolId,
      ]);
      expect(member.address).toBe(m.address);
      memberIds.push(member.id!);
    }
    const hm = await openstackJson<Record<string, string>>('demo', [
      'loadbalancer', 'healthmonitor', 'create', '--name', 'hm', '--type', 'HTTP', '--url-path', '/healthz', '--delay', '1', '--timeout', '1', '--max-retries', '1', '--wait', poolId,
    ]);
    expect(hm.provisioning_status).toBe('ACTIVE');
    const lb = await openstackJson<Record<string, string>>('demo', ['loadbalancer', 'show', lbId]);
    expect(lb.provisioning_status).toBe('ACTIVE');
    // A listener change reaches the group: one more allowed CIDR (the client's address), one more rule.
    await openstack('demo', ['loadbalancer', 'listener', 'set', '--allowed-cidr', CIDR, '--allowed-cidr', `${h.client.address}/32`, '--wait', listenerId]);
    const after = await openstackJson<SecurityGroupDetail>('admin', ['security', 'group', 'show', securityGroupId]);
    expect(ingressRules(after)).toEqual([`IPv4 tcp ${HTTP_PORT}-${HTTP_PORT} ${CIDR}`, `IPv4 tcp ${HTTP_PORT}-${HTTP_PORT} ${h.client.address}/32`].sort());
  }, 600_000);

  it('carries HTTP traffic from the client namespace through the VIP to both members', async () => {
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await net!.get(vip, HTTP_PORT, `/cli-${i}`);
      requests++;
      expect(res.status).toBe(200);
      seen.push(res.body);
    }
    expect(new Set(seen)).toEqual(new Set(['member-1', 'member-2']));
    // Round robin: they alternate.
    for (let i = 1; i < seen.length; i++) expect(seen[i]).not.toBe(seen[i - 1]);
  }, 60_000);

  it('shows every object ONLINE in loadbalancer status show', async () => {
    let last: Record<string, string> = {};
    const tree = await waitFor(
      'every operating status ONLINE',
      async () => {
        const t = JSON.parse(await openstack('demo', ['loadbalancer', 'status', 'show', lbId])) as StatusTree;
        last = statusesOf(t);
        return Object.values(last).every((s) => s === 'ONLINE') && Object.keys(last).length === 5 ? t : undefined;
      },
      120_000,
      1000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last seen ${JSON.stringify(last)}`);
    });
    const lb = tree.loadbalancer;
    expect(lb.provisioning_status).toBe('ACTIVE');
    expect(lb.listeners.map((l) => l.id)).toEqual([listenerId]);
    expect(lb.listeners[0]!.pools.map((p) => p.id)).toEqual([poolId]);
    expect(lb.listeners[0]!.pools[0]!.members.map((m) => m.id).sort()).toEqual([...memberIds].sort());
  }, 180_000);

  it('counts the connections through the VIP in loadbalancer stats show', async () => {
    for (let i = 0; i < 4; i++) {
      expect((await net!.get(vip, HTTP_PORT, `/stats-${i}`)).body).toMatch(/^member-[12]$/);
      requests++;
    }
    // Statistics come with the heartbeats; nothing but this test's requests went through the VIP.
    let last: Record<string, number> = {};
    const stats = await waitFor(
      `total_connections ${requests}`,
      async () => {
        last = await openstackJson<Record<string, number>>('demo', ['loadbalancer', 'stats', 'show', lbId]);
        return last.total_connections! >= requests ? last : undefined;
      },
      60_000,
      1000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last seen ${JSON.stringify(last)}`);
    });
    expect(stats.total_connections).toBe(requests);
    expect(stats.bytes_in).toBeGreaterThan(0);
    expect(stats.bytes_out).toBeGreaterThan(0);
    expect(stats.request_errors).toBe(0);
  }, 120_000);

  it('fails the amphora over: the replacement gets a VRRP port of its own, the old one is deleted, traffic goes on', async () => {
    const [old] = await openstackJson<Array<{ id: string }>>('admin', ['loadbalancer', 'amphora', 'list', '--loadbalancer', lbId]);
    await openstack('admin', ['loadbalancer', 'amphora', 'failover', old!.id]);
    await waitFor('the load balancer ACTIVE again', async () => {
      const lb = await openstackJson<Record<string, string>>('demo', ['loadbalancer', 'show', lbId]);
      return lb.provisioning_status === 'ACTIVE' ? lb : undefined;
    }, 120_000, 1000);
    const amphorae = await openstackJson<Array<{ id: string; status: string; lb_network_ip: string }>>('admin', ['loadbalancer', 'amphora', 'list', '--loadbalancer', lbId]);
    const living = amphorae.filter((a) => a.status === 'ALLOCATED');
    expect(living).toHaveLength(1);
    expect(living[0]!.id).not.toBe(old!.id);
    const oldPortId = vrrpPortId;
    vrrpPortId = await checkVrrpPort(living[0]!);
    expect(vrrpPortId).not.toBe(oldPortId);
    await expect(openstack('admin', ['port', 'show', oldPortId])).rejects.toThrow();
    expect(await namespaceExists(`${prefix}-${old!.id}`)).toBe(false);
    // The new MAC was announced: the client reaches the VIP at once.
    for (let i = 0; i < 4; i++) expect((await net!.get(vip, HTTP_PORT, `/after-failover-${i}`)).body).toMatch(/^member-[12]$/);
  }, 300_000);

  it('deletes everything with loadbalancer delete --cascade --wait, the Neutron VIP and VRRP ports and the security group included', async () => {
    const listed = await openstackJson<Array<{ id: string; status: string }>>('admin', ['loadbalancer', 'amphora', 'list', '--loadbalancer', lbId]);
    const [amphora] = listed.filter((a) => a.status === 'ALLOCATED'); // the failed-over one is DELETED
    expect(await namespaceExists(`${prefix}-${amphora!.id}`)).toBe(true);
    await openstack('demo', ['loadbalancer', 'delete', '--cascade', '--wait', lbId]);
    const lbs = await openstackJson<Array<{ id: string }>>('demo', ['loadbalancer', 'list']);
    expect(lbs.map((l) => l.id)).not.toContain(lbId);
    // Neutron: no port left on the network (the VIP port was the only one).
    const ports = await openstackJson<NeutronPortRow[]>('admin', ['port', 'list', '--network', networkId]);
    expect(ports.map((p) => `${p.Name} ${p.ID}`)).toEqual([]);
    // The VRRP port was one of them; the lb- group went too.
    await expect(openstack('admin', ['port', 'show', vrrpPortId])).rejects.toThrow();
    const groups = await openstackJson<Array<{ ID: string; Name: string }>>('admin', ['security', 'group', 'list']);
    expect(groups.filter((g) => g.ID === securityGroupId || g.Name === securityGroupName(lbId))).toEqual([]);
    // The amphora's namespace went; only the spare pool's amphora is left, without the VIP.
    expect(await namespaceExists(`${prefix}-${amphora!.id}`)).toBe(false);
    const own = new Set(Object.values(hosts()).map((h) => h.ns));
    for (const ns of (await listNamespaces()).filter((n) => hasPrefix(prefix, n) && !own.has(n))) {
      expect(await listAddresses('eth0', { netns: ns })).not.toContain(`${vip}/32`);
    }
    await expect(net!.get(vip, HTTP_PORT, '/', 1000)).rejects.toThrow();
  }, 300_000);
});
