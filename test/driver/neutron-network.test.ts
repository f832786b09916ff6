// The neutron network driver against the peers' real Neutron (API only: ports are records, nothing
// is plumbed and no traffic is sent anywhere), authenticated by the peers' Keystone with the service
// user octavia/secret (project service). Skipped, saying why, when either does not answer.
//   ARGONAUT_KEYSTONE_URL (default http://127.0.0.1:5000/v3), ARGONAUT_KEYSTONE_SERVICE_USER/_PASSWORD/_PROJECT
//
// Each run makes its own network `argo-test-<random>` with two private subnets (10.199.<n>.0/28 and
// a /30 that holds one address) and removes it, with every port on it, in afterAll.
import { randomInt, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { KeystoneClient } from '../../api/auth/keystone-client.ts';
import { ApiError } from '../../api/errors.ts';
import { createLogger } from '../../common/logging.ts';
import { neutronApi, type NeutronPort } from '../../driver/network/neutron-api.ts';
import { NeutronNetworkDriver, VipAllocationError, securityGroupName, vipPortName, vrrpPortName } from '../../driver/network/neutron.ts';
import { ServiceClient } from '../../driver/openstack/client.ts';
import { peerServiceOptions } from '../helpers/keystone.ts';
import { arrangeActiveStandby, neutronUnavailable } from '../helpers/neutron.ts';

const env = (name: string, fallback: string) => process.env[name] ?? fallback;
const AUTH_URL = env('ARGONAUT_KEYSTONE_URL', 'http://127.0.0.1:5000/v3');
// Keystone and Neutron answer in 0.1-2 s per call on the shared 2-core box.
const SLOW = { timeout: 180_000 };

const credentials = new KeystoneClient({ ...peerServiceOptions(AUTH_URL), retries: 1 });
const client = new ServiceClient({ credentials, serviceType: 'network', serviceName: 'Neutron', versionPath: '/v2.0', timeoutMs: 20_000 });
const neutron = neutronApi(client);

const skipReason = await neutronUnavailable(client);
if (skipReason) console.warn(`neutron network driver tests skipped: Keystone (${AUTH_URL}) or Neutron do not answer: ${skipReason}`);

describe.skipIf(skipReason !== null)(`neutron network driver against the peers' Neutron${skipReason ? ` (skipped: ${skipReason})` : ''}`, SLOW, () => {
  const n = randomInt(0, 256);
  const cidrA = `10.199.${n}.0/28`;
  const cidrB = `10.199.${n}.16/30`;
  const addr = (last: number) => `10.199.${n}.${last}`;
  const driver = new NeutronNetworkDriver({ credentials, timeoutMs: 20_000, retryIntervalMs: 200, securityGroupDeleteAttempts: 5, logger: createLogger('test', 'silent') });
  const lbIds: string[] = [];
  const newLb = () => {
    const id = randomUUID();
    lbIds.push(id);
    return id;
  };
  let networkId: string;
  let subnetA: string;
  let subnetB: string;
  let projectId: string;

  const created = z.object({ id: z.string() });
  const port = async (id: string): Promise<NeutronPort | undefined> => neutron.findPort(id);
  const rejection = async (p: Promise<unknown>): Promise<unknown> => p.then(() => new Error('expected a rejection'), (e: unknown) => e);

  beforeAll(async () => {
    const name = `argo-test-${randomUUID().slice(0, 8)}`;
    networkId = (await client.post('/networks', { network: { name } }, z.object({ network: created }))).network.id;
    const subnet = async (cidr: string) =>
      (await client.post('/subnets', { subnet: { name, network_id: networkId, ip_version: 4, cidr, enable_dhcp: false } }, z.object({ subnet: created }))).subnet.id;
    subnetA = await subnet(cidrA);
    subnetB = await subnet(cidrB);
    projectId = (await credentials.serviceProjectId())!;
  }, SLOW.timeout);

  afterAll(async () => {
    if (!networkId) return;
    for (const p of await neutron.listPorts({ network_id: networkId })) await neutron.deletePort(p.id);
    for (const lbId of lbIds) {
      for (const sg of await neutron.listSecurityGroups({ name: securityGroupName(lbId) })) await neutron.deleteSecurityGroup(sg.id);
    }
    await client.delete(`/networks/${networkId}`);
  }, SLOW.timeout);

  it('looks up subnets, networks, ports, QoS policies and security groups (404: not there)', async () => {
    expect(await driver.getSubnet(subnetA)).toEqual({ id: subnetA, networkId, ipVersion: 4, cidr: cidrA });
    // In the order of the network's `subnets` (Neutron's, not necessarily the creation order).
    const order = (await client.get(`/networks/${networkId}`, z.object({ network: z.object({ subnets: z.array(z.string()) }) }))).network.subnets;
    const cidrs: Record<string, string> = { [subnetA]: cidrA, [subnetB]: cidrB };
    expect([...order].sort()).toEqual([subnetA, subnetB].sort());
    expect(await driver.getNetworkSubnets(networkId)).toEqual(order.map((id) => ({ id, networkId, ipVersion: 4, cidr: cidrs[id] })));
    const missing = randomUUID();
    expect(await driver.getSubnet(missing)).toBeUndefined();
    expect(await driver.getSubnet('not-a-uuid')).toBeUndefined();
    expect(await driver.getNetworkSubnets(missing)).toBeUndefined();
    expect(await driver.getPort(missing)).toBeUndefined();
    expect(await driver.qosPolicyExists(missing)).toBe(false);
    expect(await driver.securityGroupExists(missing)).toBe(false);
    const [defaultGroup] = await neutron.listSecurityGroups({ name: 'default', project_id: projectId });
    expect(defaultGroup).toBeDefined();
    expect(await driver.securityGroupExists(defaultGroup!.id)).toBe(true);
  });

  it('allocates the VIP port as Octavia does: the requested address, then a free one', async () => {
    const lbId = newLb();
    const vip = await driver.allocateVip({ loadBalancerId: lbId, projectId, subnetId: subnetA, networkId, address: addr(5) });
    expect(vip).toMatchObject({ networkId, subnetId: subnetA, address: addr(5), additionalVips: [], octaviaOwned: true });
    const p = await port(vip.portId);
    expect(p).toMatchObject({ name: vipPortName(lbId), network_id: networkId, device_owner: 'Octavia', device_id: `lb-${lbId}`, project_id: projectId });
    expect(p!.fixed_ips).toEqual([{ subnet_id: subnetA, ip_address: addr(5) }]);
    const raw = await client.get(`/ports/${vip.portId}`, z.object({ port: z.object({ admin_state_up: z.boolean() }) }));
    expect(raw.port.admin_state_up).toBe(false);
    expect(await driver.getPort(vip.portId)).toEqual({
      id: vip.portId,
      networkId,
      deviceId: `lb-${lbId}`,
      fixedIps: [{ subnetId: subnetA, address: addr(5) }],
      qosPolicyId: null,
    });

    // No address asked for, no network given: the subnet's network, and an address Neutron picks.
    const auto = await driver.allocateVipAddress({ loadBalancerId: newLb(), subnetId: subnetA, address: null });
    expect(auto).toMatch(new RegExp(`^10\\.199\\.${n}\\.(\\d+)$`));
    const last = Number(auto.split('.')[3]);
    expect(last).toBeGreaterThanOrEqual(2);
    expect(last).toBeLessThanOrEqual(14);
    expect(auto).not.toBe(addr(5));
  });

  it("refuses a taken address and a full subnet with 409 and Neutron's message, other refusals with a 500", async () => {
    // An address Neutron handed out (whichever: earlier tests took some of the /28), asked for again.
    const first = await driver.allocateVip({ loadBalancerId: newLb(), subnetId: subnetA, networkId, address: null });
    const taken = await rejection(driver.allocateVip({ loadBalancerId: newLb(), subnetId: subnetA, networkId, address: first.address }));
    expect(taken).toBeInstanceOf(ApiError);
    expect(taken).toMatchObject({ httpStatus: 409, faultstring: `The VIP IP address is already in use: IP address ${first.address} already allocated in subnet ${subnetA}` });

    // The /30 has one address to give (the other is the gateway).
    expect(await driver.allocateVipAddress({ loadBalancerId: newLb(), subnetId: subnetB, address: null })).toBe(addr(18));
    const full = await rejection(driver.allocateVip({ loadBalancerId: newLb(), subnetId: subnetB, networkId, address: null }));
    expect(full).toMatchObject({ httpStatus: 409, faultstring: `The VIP IP address is already in use: No more IP addresses available on network ${networkId}.` });

    const outside = await rejection(driver.allocateVip({ loadBalancerId: newLb(), subnetId: subnetA, networkId, address: '10.198.0.5' }));
    expect(outside).toBeInstanceOf(VipAllocationError);
    expect(outside).toMatchObject({ httpStatus: 500, faultstring: 'IP address 10.198.0.5 is not a valid IP for the specified subnet.' });

    const noSubnet = await rejection(driver.allocateVip({ loadBalancerId: newLb(), subnetId: randomUUID(), address: null }));
    expect(noSubnet).toMatchObject({ httpStatus: 400 });
  });

  it("takes a user's vip_port_id as it is and never deletes it", async () => {
    // Neutron picks the port's address (a fixed one may have gone to an earlier test's automatic allocation).
    const userPort = await neutron.createPort({ name: 'argo-test-user-port', network_id: networkId, fixed_ips: [{ subnet_id: subnetA }] });
    const userAddress = userPort.fixed_ips[0]!.ip_address;
    const lbId = newLb();
    const vip = await driver.allocateVip({ loadBalancerId: lbId, subnetId: subnetA, networkId, address: null, portId: userPort.id });
    expect(vip).toEqual({ portId: userPort.id, networkId, subnetId: subnetA, address: userAddress, additionalVips: [], octaviaOwned: false });
    const otherAddress = userAddress === addr(12) ? addr(13) : addr(12);
    await expect(driver.allocateVip({ loadBalancerId: lbId, subnetId: subnetA, networkId, address: otherAddress, portId: userPort.id })).rejects.toBeInstanceOf(VipAllocationError);

    await driver.updateVipSecurityGroup({ loadBalancerId: lbId, vipAddresses: [userAddress], listeners: [], activeStandby: false, vipPortId: userPort.id });
    await driver.deallocateVip({ loadBalancerId: lbId, portId: userPort.id, amphoraIds: [] });
    const kept = await port(userPort.id);
    expect(kept).toBeDefined();
    expect(kept!.security_groups).toEqual([]);
    expect(await driver.findVipSecurityGroup(lbId)).toBeUndefined();
  });

  it('keeps the lb- security group to exactly the rules the listeners need', async () => {
    const lbId = newLb();
    const vip = await driver.allocateVip({ loadBalancerId: lbId, subnetId: subnetA, networkId, address: null });
    const sgId = await driver.updateVipSecurityGroup({
      loadBalancerId: lbId,
      vipAddresses: [vip.address, 'fd00:199::5'],
      listeners: [
        { protocol: 'HTTP', protocolPort: 80, allowedCidrs: [] },
        { protocol: 'UDP', protocolPort: 53, allowedCidrs: ['10.0.0.0/8', '2001:db8::/32'] },
        { protocol: 'TCP', protocolPort: 8080, allowedCidrs: ['192.168.0.0/16'] },
        { protocol: 'SCTP', protocolPort: 9000, allowedCidrs: [] },
      ],
      activeStandby: true,
      electionPorts: { advertUdp: 5112, syncTcp: 1114 },
      vipPortId: vip.portId,
    });
    expect(await driver.securityGroupExists(sgId)).toBe(true);
    const rulesOf = async () => {
      const group = await driver.findVipSecurityGroup(lbId);
      expect(group?.id).toBe(sgId);
      expect(group?.name).toBe(`lb-${lbId}`);
      return group!.security_group_rules
        .filter((r) => r.direction === 'ingress')
        .map((r) => `${r.ethertype} ${r.protocol} ${r.port_range_min ?? '-'}-${r.port_range_max ?? '-'} ${r.remote_ip_prefix ?? 'any'}`)
        .sort();
    };
    expect(await rulesOf()).toEqual(
      [
        'IPv4 tcp 80-80 any',
        'IPv6 tcp 80-80 any',
        'IPv4 udp 53-53 10.0.0.0/8',
        'IPv6 udp 53-53 2001:db8::/32',
        'IPv4 tcp 8080-8080 192.168.0.0/16',
        'IPv4 sctp 9000-9000 any',
        'IPv6 sctp 9000-9000 any',
        'IPv4 112 --- any',
        'IPv4 51 --- any',
        'IPv4 udp 5112-5112 any',
        'IPv4 tcp 1114-1114 any',
      ].sort(),
    );
    expect((await port(vip.portId))!.security_groups).toEqual([sgId]);
    // Neutron's own egress rules are left alone.
    expect((await driver.findVipSecurityGroup(lbId))!.security_group_rules.filter((r) => r.direction === 'egress')).toHaveLength(2);

    const next = {
      loadBalancerId: lbId,
      vipAddresses: [vip.address],
      listeners: [
        { protocol: 'HTTP', protocolPort: 80, allowedCidrs: [] },
        { protocol: 'HTTPS', protocolPort: 443, allowedCidrs: ['203.0.113.0/24', '2001:db8::/32'] },
      ],
      activeStandby: false,
    };
    expect(await driver.updateVipSecurityGroup(next)).toBe(sgId);
    const after = await rulesOf();
    expect(after).toEqual(['IPv4 tcp 443-443 203.0.113.0/24', 'IPv4 tcp 80-80 any'].sort());
    const ids = (await driver.findVipSecurityGroup(lbId))!.security_group_rules.map((r) => r.id).sort();
    await driver.updateVipSecurityGroup(next);
    expect((await driver.findVipSecurityGroup(lbId))!.security_group_rules.map((r) => r.id).sort()).toEqual(ids);

    // vip_sg_ids given: no listener rules, the user's groups go on the VIP port after ours.
    const [userGroup] = await neutron.listSecurityGroups({ name: 'default', project_id: projectId });
    await driver.updateVipSecurityGroup({ ...next, vipPortId: vip.portId, vipSgIds: [userGroup!.id] });
    expect(await rulesOf()).toEqual([]);
    expect((await port(vip.portId))!.security_groups.sort()).toEqual([sgId, userGroup!.id].sort()); // Neutron keeps no order
  });

  it('opens every port and range of a listener, over TCP and UDP when it serves both (issue 7 extensions)', async () => {
    const lbId = newLb();
    const vip = await driver.allocateVip({ loadBalancerId: lbId, subnetId: subnetA, networkId, address: null });
    const sgId = await driver.updateVipSecurityGroup({
      loadBalancerId: lbId,
      vipAddresses: [vip.address],
      listeners: [
        { protocol: 'TCP', protocolPort: 1935, ports: [{ from: 1935, to: 1935 }, { from: 554, to: 554 }, { from: 50000, to: 65535 }], alsoUdp: true, allowedCidrs: [] },
        { protocol: 'TCP', protocolPort: 8080, ports: [{ from: 8080, to: 8080 }, { from: 8443, to: 8443 }], allowedCidrs: ['10.0.0.0/8'] },
      ],
      activeStandby: false,
      vipPortId: vip.portId,
    });
    const group = await driver.findVipSecurityGroup(lbId);
    expect(group?.id).toBe(sgId);
    const rules = group!.security_group_rules
      .filter((r) => r.direction === 'ingress')
      .map((r) => `${r.ethertype} ${r.protocol} ${r.port_range_min}-${r.port_range_max} ${r.remote_ip_prefix ?? 'any'}`)
      .sort();
    expect(rules).toEqual(
      [
        'IPv4 tcp 1935-1935 any', 'IPv4 tcp 554-554 any', 'IPv4 tcp 50000-65535 any',
        'IPv4 udp 1935-1935 any', 'IPv4 udp 554-554 any', 'IPv4 udp 50000-65535 any',
        'IPv4 tcp 8080-8080 10.0.0.0/8', 'IPv4 tcp 8443-8443 10.0.0.0/8',
      ].sort(),
    );
  });

  it("plugs an amphora's VRRP port with the VIP as allowed address pair, idempotently, and unplugs it", async () => {
    const lbId = newLb();
    const amphoraId = randomUUID();
    const vip = await driver.allocateVip({ loadBalancerId: lbId, subnetId: subnetA, networkId, address: null });
    const sgId = await driver.updateVipSecurityGroup({ loadBalancerId: lbId, vipAddresses: [vip.address], listeners: [{ protocol: 'TCP', protocolPort: 22, allowedCidrs: [] }], activeStandby: false });
    const plugged = await driver.plugAmphoraVip({ amphoraId, subnetId: subnetA, vipAddresses: [vip.address], securityGroupIds: [sgId] });
    expect(plugged.networkId).toBe(networkId);
    const p = await port(plugged.vrrpPortId);
    expect(p).toMatchObject({ name: vrrpPortName(amphoraId), device_owner: 'Octavia', network_id: networkId, security_groups: [sgId], project_id: projectId });
    expect(p!.fixed_ips).toEqual([{ subnet_id: subnetA, ip_address: plugged.vrrpIp }]);
    expect(p!.allowed_address_pairs.map((a) => a.ip_address)).toEqual([vip.address]);
    expect(p!.allowed_address_pairs[0]!.mac_address).toBeTruthy(); // Neutron fills in the port's own MAC
    expect(plugged.vrrpIp).not.toBe(vip.address);
    // What the amphora's interface must carry: the port's MAC, and the subnet's prefix length (a /28).
    expect(plugged.mac).toBe(p!.mac_address);
    expect(plugged.mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    expect(plugged.prefixLength).toBe(28);

    // A second plug (a retried operation) reuses the port and updates its pairs.
    // (Another address than the VIP, whichever Neutron handed out for it.)
    const second = [addr(13), addr(14)].find((a) => a !== vip.address && a !== plugged.vrrpIp)!;
    const again = await driver.plugAmphoraVip({ amphoraId, subnetId: subnetA, vipAddresses: [vip.address, second], securityGroupIds: [sgId] });
    expect(again).toEqual({ ...plugged });
    expect((await port(plugged.vrrpPortId))!.allowed_address_pairs.map((a) => a.ip_address).sort()).toEqual([vip.address, second].sort());

    await driver.unplugAmphoraVip(amphoraId);
    expect(await port(plugged.vrrpPortId)).toBeUndefined();
    await driver.unplugAmphoraVip(amphoraId);
  });

  it('deallocates everything of a load balancer: VRRP ports, VIP port, security group; again is a no-op', async () => {
    const lbId = newLb();
    const amphorae = [randomUUID(), randomUUID()];
    const vip = await driver.allocateVip({ loadBalancerId: lbId, subnetId: subnetA, networkId, address: null });
    const { sgId, plugged: ports } = await arrangeActiveStandby(driver, { loadBalancerId: lbId, subnetId: subnetA, vip, amphorae });

    await driver.deallocateVip({ loadBalancerId: lbId, portId: vip.portId, amphoraIds: amphorae });
    expect(await port(vip.portId)).toBeUndefined();
    for (const p of ports) expect(await port(p.vrrpPortId)).toBeUndefined();
    expect(await driver.securityGroupExists(sgId)).toBe(false);
    expect(await driver.findVipSecurityGroup(lbId)).toBeUndefined();

    await driver.deallocateVip({ loadBalancerId: lbId, portId: vip.portId, amphoraIds: amphorae });
  });

  it('finds the VIP port by its name when the recorded port id is unknown to Neutron', async () => {
    const lbId = newLb();
    const vip = await driver.allocateVip({ loadBalancerId: lbId, subnetId: subnetA, networkId, address: null });
    const other = await driver.allocateVip({ loadBalancerId: newLb(), subnetId: subnetA, networkId, address: null });
    await driver.deallocateVip({ loadBalancerId: lbId, portId: randomUUID(), amphoraIds: [] });
    expect(await port(vip.portId)).toBeUndefined();
    expect(await port(other.portId)).toBeDefined();
  });
});
