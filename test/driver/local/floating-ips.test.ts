// Floating IPs of the local network driver (root): the router namespace DNATs a floating IP of the
// external network to a VIP on the internal bridge and SNATs it to its internal address; dissociation
// and removal undo it. The internal bridge lives in a namespace of the test (the host is not touched);
// a "VIP host" namespace answers on the VIP, an external client namespace connects from outside.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupLocalNetwork } from '../../../driver/network/local/cleanup.ts';
import { LocalFloatingIps } from '../../../driver/network/local/floating-ips.ts';
import { addAddress, createNamespace, createVeth, ensureBridge, listNamespaces, namespaceExists } from '../../../driver/network/local/ip.ts';
import { bridgeName, hasPrefix } from '../../../driver/network/local/names.ts';
import { IS_ROOT, requestFrom, startServerIn, testPrefix, type TestServer } from './netns-helpers.ts';

const prefix = testPrefix('a');
const fabric = `${prefix}-fabric`;
const vipHost = `${prefix}-viphost`;
const outsider = `${prefix}-outsider`;
const INTERNAL = '10.222.250';
const EXTERNAL = '10.222.251';
const VIP = `${INTERNAL}.2`;
const FIP = `${EXTERNAL}.10`;

describe.skipIf(!IS_ROOT)('local floating IPs (root)', () => {
  let router: LocalFloatingIps;
  let server: TestServer | undefined;

  beforeAll(async () => {
    await createNamespace(fabric);
    await ensureBridge(bridgeName(prefix), { netns: fabric, address: `${INTERNAL}.1/24` });
    await createNamespace(vipHost);
    await createVeth({ netns: fabric, hostName: `${prefix}-vh`, bridge: bridgeName(prefix), peerNamespace: vipHost, peerName: 'eth0' });
    await addAddress('eth0', `${VIP}/24`, { netns: vipHost });
    server = await startServerIn(vipHost, VIP, 80, 'vip');
    router = new LocalFloatingIps({
      prefix, externalCidr: `${EXTERNAL}.0/24`, internalBridge: bridgeName(prefix), internalBridgeNamespace: fabric, routerInternalAddress: `${INTERNAL}.249`, internalPrefixLength: 24,
    });
    await router.ensure();
    await createNamespace(outsider);
    await createVeth({ netns: router.external.namespace, hostName: `${prefix}-out`, bridge: router.external.bridge, peerNamespace: outsider, peerName: 'eth0' });
    await addAddress('eth0', `${EXTERNAL}.20/24`, { netns: outsider });
  }, 30_000);

  afterAll(async () => {
    await server?.stop();
    await cleanupLocalNetwork(prefix);
    expect((await listNamespaces()).filter((n) => hasPrefix(prefix, n))).toEqual([]);
  }, 30_000);

  it('DNATs the floating IP to the VIP (the VIP host sees the router), and stops when dissociated', async () => {
    expect(router.external).toEqual({ namespace: `${prefix}-ext`, bridge: `${prefix}-xbr`, prefixLength: 24, gateway: `${EXTERNAL}.1` });
    await expect(requestFrom(outsider, FIP, 80)).rejects.toThrow(/failed/);
    await router.associate(FIP, VIP);
    expect(router.list()).toEqual([{ floatingIp: FIP, vip: VIP }]);
    expect(await router.plumbed()).toEqual([FIP]);
    expect(await requestFrom(outsider, FIP, 80)).toBe(`vip ${INTERNAL}.249`);
    await router.associate(FIP, VIP); // idempotent
    expect(router.list()).toHaveLength(1);
    await router.disassociate(FIP);
    expect(await router.plumbed()).toEqual([]);
    await expect(requestFrom(outsider, FIP, 80)).rejects.toThrow(/failed/);
  }, 60_000);

  it('refuses the router\'s own address and non-IPv4 addresses; remove() takes the router and the external network away', async () => {
    await expect(router.associate(`${EXTERNAL}.1`, VIP)).rejects.toThrow(/router's own address/);
    await expect(router.associate('fd00::10', VIP)).rejects.toThrow(/IPv4/);
    await router.remove();
    expect(await namespaceExists(`${prefix}-router`)).toBe(false);
    expect(await namespaceExists(`${prefix}-ext`)).toBe(false);
  }, 30_000);
});
