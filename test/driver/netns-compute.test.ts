// The netns compute driver (root). A "fabric" namespace holds the bridge (the host's interfaces and
// routes are never touched); amphorae, a client and a member server hang off it on the test-only
// subnet 10.214.9.0/24. The first tests run a stand-in process driver whose "agent" is a tiny TCP
// server on the VIP (the namespace plumbing alone); the last one boots the real agent with the
// process compute driver and sends traffic through it to a member in another namespace. Everything
// is named with a prefix of this run, removed in afterAll, and checked gone.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InProcessBroker } from '../../common/transport/in-process-transport.ts';
import { deriveAmphoraKey } from '../../common/transport/signing.ts';
import type { AmphoraBootRequest, BootedAmphora, ComputeDriver } from '../../driver/compute/compute-driver.ts';
import { NetnsComputeDriver, type CommandWrapper, type NetnsBootRequest } from '../../driver/compute/netns.ts';
import { ProcessComputeDriver, type ProcessComputeOptions } from '../../driver/compute/process.ts';
import type { AmphoraNetworkOptions } from '../../driver/network/local/amphora-plumbing.ts';
import { cleanupLocalNetwork } from '../../driver/network/local/cleanup.ts';
import {
  addAddress, createNamespace, createVeth, defaultGateway, ensureBridge, linkExists, listAddresses, listLinks, listNamespaces, namespaceExists, namespacePids, setDefaultRoute,
} from '../../driver/network/local/ip.ts';
import { AMPHORA_INTERFACE, bridgeName, hasPrefix, hostVethName } from '../../driver/network/local/names.ts';
import { FakeController, document, httpListener, MASTER_KEY, memberPool, push, silentLogger, waitFor } from '../amphora-agent/helpers.ts';
import { IS_ROOT, requestFrom, startServerIn, testPrefix, type TestServer } from './local/netns-helpers.ts';

const prefix = testPrefix('n');
const fabric = `${prefix}-fabric`;
const client = `${prefix}-client`;
const memberNs = `${prefix}-member`;
const GATEWAY = '10.214.9.1';
const CLIENT_IP = '10.214.9.200';
const MEMBER_IP = '10.214.9.201';
const network: AmphoraNetworkOptions = {
  prefix,
  bridge: bridgeName(prefix),
  bridgeNamespace: fabric,
  gateway: GATEWAY,
  prefixLength: 24,
  managementStart: '10.214.9.10',
  managementEnd: '10.214.9.19',
};

/** The stand-in agent: answers "<role> <client address>" on the VIP's port 80, run through the wrapper like the real one. */
const AGENT = `
const net = require('node:net');
const [vip, role] = process.argv.slice(1);
net.createServer((s) => { s.on('error', () => {}); s.end(role + ' ' + s.remoteAddress); }).listen(80, vip);
setInterval(() => {}, 60000);
`;

class StandInProcesses implements ComputeDriver {
  readonly name = 'stand-in';
  readonly children = new Map<string, ChildProcess>();
  failBoot = false;
  skipWrapper = false;
  destroyed: string[] = [];
  constructor(private readonly wrap: CommandWrapper) {}

  async boot(req: AmphoraBootRequest): Promise<BootedAmphora> {
    if (this.failBoot) throw new Error('spawn failed');
    const args = ['-e', AGENT, (req as NetnsBootRequest).vipAddress ?? '0.0.0.0', req.role ?? 'SPARE'];
    const cmd = this.skipWrapper ? { command: process.execPath, args } : this.wrap(req, process.execPath, args);
    const child = spawn(cmd.command, cmd.args, { stdio: 'ignore' });
    await new Promise((resolve, reject) => child.once('spawn', resolve).once('error', reject));
    const computeId = `process:${child.pid}:${req.amphoraId}`;
    this.children.set(computeId, child);
    return { computeId, lbNetworkIp: null };
  }

  async destroy(computeId: string): Promise<void> {
    this.destroyed.push(computeId);
    const child = this.children.get(computeId);
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    this.children.delete(computeId);
  }

  async isAlive(computeId: string): Promise<boolean> {
    const child = this.children.get(computeId);
    return !!child && child.exitCode === null && child.signalCode === null;
  }

  async stop(): Promise<void> {
    for (const id of [...this.children.keys()]) await this.destroy(id);
  }
}

function standIn(): { driver: NetnsComputeDriver; processes: () => StandInProcesses } {
  let processes: StandInProcesses | undefined;
  const driver = new NetnsComputeDriver({ network, logger: silentLogger(), processes: (wrap) => (processes = new StandInProcesses(wrap)) });
  return { driver, processes: () => processes! };
}

const bootRequest = (role = 'STANDALONE', vipAddress: string | null = null): NetnsBootRequest => {
  const amphoraId = randomUUID();
  return { amphoraId, loadBalancerId: randomUUID(), key: deriveAmphoraKey(MASTER_KEY, amphoraId), role, vipAddress };
};

/** Namespaces and links of this run's prefix, on the host and in the fabric namespace. */
async function leftovers(): Promise<{ namespaces: string[]; links: string[] }> {
  const namespaces = (await listNamespaces()).filter((n) => hasPrefix(prefix, n) && ![fabric, client, memberNs].includes(n));
  const links = [...(await listLinks()), ...(await listLinks({ netns: fabric }))].map((l) => l.name).filter((n) => hasPrefix(prefix, n) && ![network.bridge, `${prefix}-cl`, `${prefix}-mb`].includes(n));
  return { namespaces, links };
}

describe.skipIf(!IS_ROOT)('netns compute driver (root)', () => {
  const stops: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    await createNamespace(fabric);
    await ensureBridge(network.bridge, { netns: fabric, address: `${GATEWAY}/24` });
    for (const [ns, address, veth] of [[client, CLIENT_IP, `${prefix}-cl`], [memberNs, MEMBER_IP, `${prefix}-mb`]] as const) {
      await createNamespace(ns);
      await createVeth({ netns: fabric, hostName: veth, bridge: network.bridge, peerNamespace: ns, peerName: AMPHORA_INTERFACE });
      await addAddress(AMPHORA_INTERFACE, `${address}/24`, { netns: ns });
      await setDefaultRoute(GATEWAY, { netns: ns });
    }
  });

  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
    await cleanupLocalNetwork(prefix);
    expect((await listNamespaces()).filter((n) => hasPrefix(prefix, n))).toEqual([]);
    expect((await listLinks()).filter((l) => hasPrefix(prefix, l.name))).toEqual([]);
  });

  it('boots an amphora in a namespace of its own, with a management address, the VIP and a default route', async () => {
    const { driver, processes } = standIn();
    stops.push(() => driver.stop());
    const req = bootRequest('STANDALONE', '10.214.9.100');
    const booted = await driver.boot(req);
    const ns = `${prefix}-${req.amphoraId}`;
    expect(booted).toEqual({ computeId: req.amphoraId, lbNetworkIp: '10.214.9.10' });
    expect(await listAddresses(AMPHORA_INTERFACE, { netns: ns })).toEqual(['10.214.9.10/24', '10.214.9.100/32']);
    expect(await defaultGateway({ netns: ns })).toBe(GATEWAY);
    expect(await driver.isAlive(booted.computeId)).toBe(true);
    await expect(driver.boot(req)).rejects.toThrow(/already booted/);
    // The agent runs inside the namespace and serves the VIP to the client namespace.
    const child = [...processes().children.values()][0]!;
    await waitFor('the agent in its namespace', async () => (await namespacePids(ns)).includes(child.pid!), 5000);
    await waitFor('the VIP to answer', () => requestFrom(client, '10.214.9.100', 80).then((r) => r === `STANDALONE ${CLIENT_IP}`, () => false), 5000);

    await driver.destroy(booted.computeId);
    expect(processes().destroyed).toEqual([expect.stringMatching(/^process:\d+:/)]);
    expect(await namespaceExists(ns)).toBe(false);
    expect(await linkExists(hostVethName(prefix, req.amphoraId), { netns: fabric })).toBe(false);
    expect(await driver.isAlive(booted.computeId)).toBe(false);
    await driver.destroy(booted.computeId); // idempotent
    await expect(requestFrom(client, '10.214.9.100', 80)).rejects.toThrow(/failed/);
    expect(await leftovers()).toEqual({ namespaces: [], links: [] });
  });

  it('gives each amphora its own management address; an ACTIVE_STANDBY pair binds the VIP without holding it until one adds it', async () => {
    const { driver } = standIn();
    stops.push(() => driver.stop());
    const vip = '10.214.9.101';
    const masterReq = bootRequest('MASTER', vip);
    const master = await driver.boot(masterReq);
    const backupReq = bootRequest('BACKUP', vip);
    const backup = await driver.boot(backupReq);
    expect([master.lbNetworkIp, backup.lbNetworkIp]).toEqual(['10.214.9.10', '10.214.9.11']);
    const masterNs = `${prefix}-${masterReq.amphoraId}`;
    const backupNs = `${prefix}-${backupReq.amphoraId}`;
    // Neither holds the VIP (the election adds it); both agents bound it all the same (ip_nonlocal_bind).
    expect(await listAddresses(AMPHORA_INTERFACE, { netns: masterNs })).toEqual(['10.214.9.10/24']);
    expect(await listAddresses(AMPHORA_INTERFACE, { netns: backupNs })).toEqual(['10.214.9.11/24']);
    expect(await listAddresses('lo', { netns: backupNs })).toEqual(['127.0.0.1/8', '::1/128']);
    await expect(requestFrom(client, vip, 80)).rejects.toThrow(/failed/);
    // What the election does on the elected amphora: the VIP on its eth0; its listener serves at once.
    await addAddress(AMPHORA_INTERFACE, `${vip}/32`, { netns: backupNs });
    await waitFor('the VIP to answer', () => requestFrom(client, vip, 80).then((r) => r.startsWith('BACKUP'), () => false), 5000);
    for (let i = 0; i < 3; i++) expect(await requestFrom(client, vip, 80)).toBe(`BACKUP ${CLIENT_IP}`);
    // A released management address is given again.
    await driver.destroy(master.computeId);
    expect((await driver.boot(bootRequest())).lbNetworkIp).toBe('10.214.9.10');
    await driver.destroy(backup.computeId);
    await driver.stop();
    expect(await leftovers()).toEqual({ namespaces: [], links: [] });
  });

  it('gives amphorae booted at the same time distinct management addresses', async () => {
    const { driver } = standIn();
    stops.push(() => driver.stop());
    // Staggered by a millisecond or two, so that some scans read namespaces that others are still plugging.
    const booted = await Promise.all(
      Array.from({ length: 6 }, (_, i) => new Promise((r) => setTimeout(r, i * 2)).then(() => driver.boot(bootRequest()))),
    );
    const addresses = booted.map((b) => b.lbNetworkIp);
    expect(new Set(addresses).size).toBe(6);
    for (const b of booted) await driver.destroy(b.computeId);
    await driver.stop();
    expect(await leftovers()).toEqual({ namespaces: [], links: [] });
  });

  it('leaves nothing behind when the boot fails, or when the process driver ignores the wrapper', async () => {
    const { driver, processes } = standIn();
    stops.push(() => driver.stop());
    processes().failBoot = true;
    await expect(driver.boot(bootRequest('STANDALONE', '10.214.9.102'))).rejects.toThrow('spawn failed');
    expect(await leftovers()).toEqual({ namespaces: [], links: [] });
    processes().failBoot = false;
    processes().skipWrapper = true;
    await expect(driver.boot(bootRequest('STANDALONE', '10.214.9.102'))).rejects.toThrow(/without wrapCommand: it would run outside its namespace/);
    expect(processes().children.size).toBe(0);
    expect(await leftovers()).toEqual({ namespaces: [], links: [] });
  });

  it('with a port on the VIP subnet (neutron): eth0 takes its address and MAC at boot, or on assign for a spare', async () => {
    const { driver } = standIn();
    stops.push(() => driver.stop());
    const eth0 = async (ns: string) => ({
      mac: (await listLinks({ netns: ns })).find((l) => l.name === AMPHORA_INTERFACE)?.mac,
      addresses: (await listAddresses(AMPHORA_INTERFACE, { netns: ns })).sort(),
    });
    // Booted for a load balancer: the port's address instead of a management address.
    const vip = '10.214.9.103';
    const port = { portId: randomUUID(), address: '10.214.9.60', mac: 'fa:16:3e:00:09:60', prefixLength: 24 };
    const req = { ...bootRequest('STANDALONE', vip), vipInterface: port };
    const booted = await driver.boot(req);
    expect(booted.lbNetworkIp).toBe(port.address);
    expect(await eth0(`${prefix}-${req.amphoraId}`)).toEqual({ mac: port.mac, addresses: ['10.214.9.103/32', '10.214.9.60/24'] });
    await waitFor('the VIP to answer', () => requestFrom(client, vip, 80).then((r) => r === `STANDALONE ${CLIENT_IP}`, () => false), 5000);
    await driver.destroy(booted.computeId);

    // A spare keeps its management address; the claim adds the port's address and MAC, and the VIP.
    const spareReq = bootRequest(null as unknown as string, null);
    const spare = await driver.boot({ ...spareReq, role: null });
    const ns = `${prefix}-${spareReq.amphoraId}`;
    expect(spare.lbNetworkIp).toBe('10.214.9.10');
    const port2 = { portId: randomUUID(), address: '10.214.9.61', mac: 'fa:16:3e:00:09:61', prefixLength: 24 };
    await driver.assign(spare.computeId, { role: 'STANDALONE', vipAddress: vip, vipInterface: port2 });
    expect(await eth0(ns)).toEqual({ mac: port2.mac, addresses: ['10.214.9.10/24', '10.214.9.103/32', '10.214.9.61/24'] });
    // The VIP moved from the first amphora: the client learns the new MAC at once (gratuitous ARP).
    await waitFor('the VIP to answer', () => requestFrom(client, vip, 80).then((r) => r === `SPARE ${CLIENT_IP}`, () => false), 5000);
    await driver.stop();
    expect(await leftovers()).toEqual({ namespaces: [], links: [] });
  });

  it('removes an amphora of an earlier controller run: what still runs in its namespace is killed', async () => {
    const { driver, processes } = standIn();
    stops.push(() => driver.stop());
    const req = bootRequest('STANDALONE', '10.214.9.103');
    // Plugged and started as an earlier run would have left it (not tracked by this driver).
    await driver.network.plug({ amphoraId: req.amphoraId, role: req.role, vipAddress: req.vipAddress });
    const orphan = await startServerIn(`${prefix}-${req.amphoraId}`, '10.214.9.103', 80, 'orphan');
    const exited = new Promise((r) => orphan.child.once('exit', r));
    expect(await driver.isAlive(req.amphoraId)).toBe(false);
    await driver.destroy(req.amphoraId);
    expect(processes().destroyed).toEqual([]); // not one of its processes
    await exited;
    expect(await leftovers()).toEqual({ namespaces: [], links: [] });
    await driver.destroy('process:1:whatever'); // not an amphora id: nothing to do
  });

  it('boots the real agent in a namespace; it serves the VIP with a member in another namespace', async () => {
    const stateDir = mkdtempSync(path.join(tmpdir(), 'argonaut-netns-driver-'));
    stops.push(async () => rmSync(stateDir, { recursive: true, force: true }));
    const broker = new InProcessBroker();
    const transport = broker.connect({ identity: { role: 'controller', masterKey: MASTER_KEY }, logger: silentLogger() });
    stops.push(() => transport.close({ drainTimeoutMs: 200 }));
    const controller = new FakeController(transport);
    await controller.listen();
    const options: ProcessComputeOptions = {
      stateDir,
      messaging: { kind: 'ipc', broker, settings: { drainTimeoutMs: 500 } },
      logger: silentLogger(),
      heartbeatIntervalMs: 200,
      drainTimeoutMs: 500,
    };
    const driver = new NetnsComputeDriver({
      network,
      logger: silentLogger(),
      // Object.assign: the option is asked of the process driver (see driver/compute/netns.ts).
      processes: (wrapCommand) => new ProcessComputeDriver(Object.assign({}, options, { wrapCommand })),
    });
    stops.push(() => driver.stop());
    const member: TestServer = await startServerIn(memberNs, MEMBER_IP, 8080, 'member');
    stops.push(() => member.stop());

    const vip = '10.214.9.104';
    const req = bootRequest('STANDALONE', vip);
    const [listener, pool, m1] = [randomUUID(), randomUUID(), randomUUID()];
    const config = document(req.amphoraId, 1, vip, [httpListener(listener, 80, pool, { protocol: 'TCP' })], [
      memberPool(pool, 'TCP', [], { members: [{ id: m1, address: MEMBER_IP, port: 8080 }] }),
    ]);
    controller.current = push(req.amphoraId, 1, config);

    const booted = await driver.boot(req);
    expect(await driver.isAlive(booted.computeId)).toBe(true);
    await waitFor('the config fetch', () => controller.fetches >= 1, 20_000);
    // The member sees the amphora's management address: the data plane runs in the namespace.
    await waitFor('traffic through the amphora', () => requestFrom(client, vip, 80).then((r) => r === `member ${booted.lbNetworkIp}`, () => false), 15_000);
    await waitFor('a heartbeat', () => controller.heartbeats.some((h) => h.configVersion === 1), 5000);

    await driver.destroy(booted.computeId);
    expect(await driver.isAlive(booted.computeId)).toBe(false);
    expect(await leftovers()).toEqual({ namespaces: [], links: [] });
  });
});
