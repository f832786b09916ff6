// The local network plumbing (driver/network/local/) and the local network driver. The plumbing
// tests need root: a "fabric" namespace holds the bridge (so the host's own interfaces and
// routes are never touched), two "amphora" namespaces and a client namespace hang off it with
// veths, on the test-only subnet 10.213.7.0/24. Everything is named with a prefix of this run
// and removed in afterAll, and the test checks nothing of it is left.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../../api/errors.ts';
import type { Database } from '../../common/db/database.ts';
import { cleanupLocalNetwork } from '../../driver/network/local/cleanup.ts';
import {
  addAddress, createNamespace, createVeth, defaultGateway, deleteAddress, deleteLink, deleteNamespace, ensureBridge, inNamespace, ip,
  IpCommandError, listAddresses, listLinks, listNamespaces, namespaceExists, setDefaultRoute, setSysctl,
} from '../../driver/network/local/ip.ts';
import { LocalNetworkDriver } from '../../driver/network/local/local-network-driver.ts';
import { AMPHORA_INTERFACE, bridgeName, hasPrefix, hostVethName, macFor, namespaceName } from '../../driver/network/local/names.ts';
import { openTestDatabase } from '../helpers/database.ts';
import { IS_ROOT, requestFrom, startServerIn, testPrefix } from './local/netns-helpers.ts';

const SUBNET_ID = randomUUID();
const NETWORK_ID = randomUUID();

describe('names', () => {
  it('fit in 15 characters and carry the prefix', () => {
    const id = '7c0e9a41-55d2-4f3b-9c1e-0a1b2c3d4e5f';
    expect(namespaceName('argo', id)).toBe(`argo-${id}`);
    expect(hostVethName('argo', id)).toBe('argo-7c0e9a4155');
    expect(hostVethName('abcdef', id)).toBe('abcdef-7c0e9a41');
    expect(bridgeName('argo')).toBe('argo-br');
    expect(hasPrefix('argo', 'argo-br')).toBe(true);
    expect(hasPrefix('arg', 'argo-br')).toBe(false);
    expect(macFor(id)).toMatch(/^02(:[0-9a-f]{2}){5}$/);
    expect(macFor(id)).toBe(macFor(id));
    expect(() => namespaceName('Argo', id)).toThrow(/prefix/);
    expect(() => namespaceName('abcdefg', id)).toThrow(/prefix/);
    expect(() => namespaceName('a-b', id)).toThrow(/prefix/);
    expect(() => hostVethName('argo', 'not-an-id')).toThrow(/UUID/);
  });
});

describe('LocalNetworkDriver', () => {
  let db: Database;
  let closeDb: () => Promise<void>;
  beforeAll(async () => {
    ({ db, close: closeDb } = await openTestDatabase());
  });
  afterAll(() => closeDb());

  const driver = (extra: Partial<ConstructorParameters<typeof LocalNetworkDriver>[0]> = {}) =>
    new LocalNetworkDriver({ db, subnetId: SUBNET_ID, networkId: NETWORK_ID, cidr: '10.213.7.0/24', ...extra });

  it('answers for its subnet; VIPs from the lower half, management addresses from the upper half', async () => {
    const net = driver();
    expect(net.name).toBe('local');
    expect([net.gateway, net.prefixLength, net.managementStart, net.managementEnd]).toEqual(['10.213.7.1', 24, '10.213.7.128', '10.213.7.254']);
    expect(net.inAllocationRange('10.213.7.2')).toBe(true);
    expect(net.inAllocationRange('10.213.7.127')).toBe(true);
    expect(net.inAllocationRange('10.213.7.128')).toBe(false);
    expect(await net.getSubnet(SUBNET_ID)).toEqual({ id: SUBNET_ID, networkId: NETWORK_ID, ipVersion: 4, cidr: '10.213.7.0/24' });
    expect(await net.getNetworkSubnets(NETWORK_ID)).toEqual([await net.getSubnet(SUBNET_ID)]);
    expect(await net.getSubnet(NETWORK_ID)).toBeUndefined();
    expect(await net.allocateVipAddress({ subnetId: SUBNET_ID, address: null, loadBalancerId: randomUUID() })).toBe('10.213.7.2');
    expect(await net.allocateVipAddress({ subnetId: SUBNET_ID, address: null, loadBalancerId: randomUUID() })).toBe('10.213.7.3');
    const err = await net.allocateVipAddress({ subnetId: SUBNET_ID, address: '10.213.7.200', loadBalancerId: randomUUID() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).faultstring).toBe(`Validation failure: VIP address 10.213.7.200 is outside the allocation range 10.213.7.2-10.213.7.127 of subnet ${SUBNET_ID}.`);
    expect(net.amphoraNetwork({ prefix: 'argo', bridge: 'argo-br' })).toEqual({
      prefix: 'argo', bridge: 'argo-br', gateway: '10.213.7.1', prefixLength: 24, managementStart: '10.213.7.128', managementEnd: '10.213.7.254',
    });
  });

  it('leaves a gateway at the top of the subnet out of the halves, and takes configured ranges', async () => {
    const top = driver({ gateway: '10.213.7.254' });
    expect([top.managementStart, top.managementEnd, top.inAllocationRange('10.213.7.1'), top.inAllocationRange('10.213.7.126')]).toEqual(['10.213.7.127', '10.213.7.253', true, true]);
    const net = driver({ allocationStart: '10.213.7.100', allocationEnd: '10.213.7.101', managementStart: '10.213.7.20', managementEnd: '10.213.7.29' });
    const next = () => net.allocateVipAddress({ subnetId: SUBNET_ID, address: null, loadBalancerId: randomUUID() });
    expect(await next()).toBe('10.213.7.100');
    expect(await next()).toBe('10.213.7.101');
    await expect(next()).rejects.toMatchObject({ httpStatus: 409 });
    await expect(net.allocateVipAddress({ subnetId: SUBNET_ID, address: '10.213.7.50', loadBalancerId: randomUUID() })).rejects.toMatchObject({ httpStatus: 400 });
  });

  it('refuses a gateway or ranges that do not fit the subnet or overlap', () => {
    expect(() => driver({ gateway: '10.213.8.1' })).toThrow(/not a host address/);
    expect(() => driver({ gateway: '10.213.7.255' })).toThrow(/not a host address/);
    expect(() => driver({ gateway: '10.213.7.10' })).toThrow(/gateway 10.213.7.10 lies in the VIP or the management range/);
    expect(() => driver({ gateway: '10.213.7.200' })).toThrow(/gateway 10.213.7.200 lies in the VIP or the management range/);
    expect(() => driver({ allocationEnd: '10.213.7.130' })).toThrow(/overlap/);
    expect(() => driver({ managementStart: '10.213.7.100' })).toThrow(/overlap/);
    expect(() => driver({ managementEnd: '10.213.8.5' })).toThrow(/management range/);
    expect(() => driver({ allocationEnd: '10.213.8.5' })).toThrow(/not a host address/);
    expect(() => driver({ cidr: '10.213.7.0/30' })).toThrow(/at least 8 addresses/);
    expect(() => driver({ cidr: 'fd00::/64' })).toThrow(/IPv4/);
  });
});

describe.skipIf(!IS_ROOT)('local network plumbing (root)', () => {
  const prefix = testPrefix('l');
  const fabric = `${prefix}-fabric`;
  const bridge = bridgeName(prefix);
  const amphorae = [randomUUID(), randomUUID()];
  const client = `${prefix}-client`;
  const VIP = '10.213.7.100';
  const address = (i: number) => `10.213.7.${11 + i}`;

  /** A namespace plugged into the fabric's bridge, as the netns compute driver plugs an amphora. */
  async function plug(ns: string, id: string, cidr: string): Promise<void> {
    await createNamespace(ns);
    await createVeth({ netns: fabric, hostName: hostVethName(prefix, id), bridge, peerNamespace: ns, peerName: AMPHORA_INTERFACE, peerMac: macFor(id) });
    await addAddress(AMPHORA_INTERFACE, cidr, { netns: ns });
    await setDefaultRoute('10.213.7.1', { netns: ns });
  }

  beforeAll(async () => {
    await createNamespace(fabric);
    await ensureBridge(bridge, { netns: fabric, address: '10.213.7.1/24' });
    for (const [i, id] of amphorae.entries()) await plug(namespaceName(prefix, id), id, `${address(i)}/24`);
    await plug(client, randomUUID(), '10.213.7.50/24');
  });

  afterAll(async () => {
    await cleanupLocalNetwork(prefix);
    expect((await listNamespaces()).filter((n) => hasPrefix(prefix, n))).toEqual([]);
    expect((await listLinks()).filter((l) => hasPrefix(prefix, l.name))).toEqual([]);
  });

  it('plugs namespaces into the bridge: veth ends, MACs, addresses, default routes', async () => {
    const links = await listLinks({ netns: fabric });
    expect(links.find((l) => l.name === bridge)).toMatchObject({ kind: 'bridge', up: true });
    for (const id of amphorae) expect(links.find((l) => l.name === hostVethName(prefix, id))).toMatchObject({ kind: 'veth', master: bridge, up: true });
    const ns = namespaceName(prefix, amphorae[0]!);
    const inside = await listLinks({ netns: ns });
    expect(inside.find((l) => l.name === AMPHORA_INTERFACE)).toMatchObject({ kind: 'veth', mac: macFor(amphorae[0]!), up: true });
    expect(inside.find((l) => l.name === 'lo')).toMatchObject({ up: true });
    expect(await listAddresses(AMPHORA_INTERFACE, { netns: ns })).toEqual(['10.213.7.11/24']);
    expect(await defaultGateway({ netns: ns })).toBe('10.213.7.1');
    // The host sees none of it.
    expect((await listLinks()).filter((l) => hasPrefix(prefix, l.name))).toEqual([]);
  });

  it('sets a kernel parameter inside a namespace, leaving the host as it was', async () => {
    const ns = namespaceName(prefix, amphorae[0]!);
    const key = 'net.ipv4.ip_nonlocal_bind';
    const read = async (netns?: string) => {
      const cmd = netns ? inNamespace(netns, 'sysctl', ['-n', key]) : { command: 'sysctl', args: ['-n', key] };
      return (await promisify(execFile)(cmd.command, cmd.args)).stdout.trim();
    };
    const onHost = await read();
    expect(await read(ns)).toBe('0');
    await setSysctl(`${key}=1`, { netns: ns });
    expect(await read(ns)).toBe('1');
    expect(await read()).toBe(onHost);
    await expect(setSysctl('net.ipv4.no_such_parameter=1', { netns: ns })).rejects.toThrow(/no_such_parameter/);
  });

  it('carries TCP between namespaces, to a VIP added and removed as a secondary address', async () => {
    const a = namespaceName(prefix, amphorae[0]!);
    const b = namespaceName(prefix, amphorae[1]!);
    const member = await startServerIn(b, address(1), 8080, 'member');
    try {
      expect(await requestFrom(a, address(1), 8080)).toBe(`member ${address(0)}`);
    } finally {
      await member.stop();
    }

    await addAddress(AMPHORA_INTERFACE, `${VIP}/32`, { netns: a });
    await addAddress(AMPHORA_INTERFACE, `${VIP}/32`, { netns: a }); // again: no error, no duplicate
    expect(await listAddresses(AMPHORA_INTERFACE, { netns: a })).toEqual(['10.213.7.11/24', `${VIP}/32`]);
    const vip = await startServerIn(a, VIP, 80, 'vip');
    try {
      expect(await requestFrom(client, VIP, 80)).toBe('vip 10.213.7.50');
      // Through the gateway: the fabric namespace reaches the VIP from its bridge address.
      expect(await requestFrom(fabric, VIP, 80)).toBe('vip 10.213.7.1');
    } finally {
      await vip.stop();
    }
    await deleteAddress(AMPHORA_INTERFACE, `${VIP}/32`, { netns: a });
    await deleteAddress(AMPHORA_INTERFACE, `${VIP}/32`, { netns: a }); // idempotent
    expect(await listAddresses(AMPHORA_INTERFACE, { netns: a })).toEqual(['10.213.7.11/24']);
    await expect(requestFrom(client, VIP, 80)).rejects.toThrow(/failed/);
  });

  it('deletes idempotently and reports real failures with the command and its error output', async () => {
    const ns = `${prefix}-scratch`;
    await createNamespace(ns);
    await expect(createNamespace(ns)).rejects.toBeInstanceOf(IpCommandError);
    await deleteNamespace(ns);
    await deleteNamespace(ns);
    expect(await namespaceExists(ns)).toBe(false);
    await deleteLink(`${prefix}-nothing`, { netns: fabric });
    await deleteAddress(`${prefix}-nothing`, '10.213.7.9/32', { netns: fabric });
    const err = await ip(['link', 'set', `${prefix}-nothing`, 'up'], { netns: fabric }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IpCommandError);
    expect((err as IpCommandError).message).toMatch(new RegExp(`ip -n ${fabric} link set ${prefix}-nothing up failed \\(exit 1\\): .*${prefix}-nothing`));
  });

  it('removes a veth pair with either end, and a bridge', async () => {
    const id = randomUUID();
    const ns = namespaceName(prefix, id);
    await plug(ns, id, '10.213.7.30/24');
    await deleteLink(hostVethName(prefix, id), { netns: fabric });
    expect(await listLinks({ netns: ns }).then((l) => l.map((x) => x.name))).toEqual(['lo']);
    await deleteNamespace(ns);
    const extra = `${prefix}-br2`;
    await ensureBridge(extra, { netns: fabric });
    await ensureBridge(extra, { netns: fabric }); // exists: left as it is
    await deleteLink(extra, { netns: fabric });
    expect((await listLinks({ netns: fabric })).some((l) => l.name === extra)).toBe(false);
  });

  it('cleanup kills what runs in its namespaces and removes them with their links', async () => {
    const prefix2 = testPrefix('m');
    const ns = `${prefix2}-a`;
    await createNamespace(ns);
    await ensureBridge(bridgeName(prefix2), { netns: fabric });
    const server = await startServerIn(ns, '127.0.0.1', 9000, 'x');
    try {
      const removed = await cleanupLocalNetwork(prefix2, { netns: fabric });
      expect(removed.namespaces).toEqual([ns]);
      expect(removed.links).toEqual([bridgeName(prefix2)]);
      expect(removed.killed.length).toBeGreaterThan(0);
    } finally {
      await server.stop();
    }
    expect(server.child.signalCode ?? server.child.exitCode).toBeTruthy();
    expect(await namespaceExists(ns)).toBe(false);
    expect(await cleanupLocalNetwork(prefix2, { netns: fabric })).toEqual({ namespaces: [], links: [], killed: [] });
  });
});
