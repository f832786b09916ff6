// An ACTIVE_STANDBY load balancer's VIP behind a floating IP, with the neutron network driver and the
// peers' real Neutron (API only: ports, routers and floating IPs are records, no traffic is sent):
// the driver allocates the VIP port in the user's project and plugs two amphora ports carrying the
// VIP as an allowed address pair; the user (demo) associates a floating IP with the VIP port through
// Neutron, as `openstack floating ip set --port <vip_port_id> <fip>` does; deleting the load balancer
// leaves the user's floating IP in place, disassociated.
//
// Needs Neutron's L3 plugin (`router`), which ../shared/peers/neutron-up.sh leaves out: run
// test/peers/neutron-l3.sh first; without it the test fails saying so. Skipped, saying why, when
// Keystone or Neutron do not answer (as test/driver/neutron-network.test.ts).
//   ARGONAUT_KEYSTONE_URL (default http://127.0.0.1:5000/v3), ARGONAUT_KEYSTONE_SERVICE_USER/_PASSWORD/_PROJECT,
//   ARGONAUT_KEYSTONE_DEMO_USER/_PASSWORD/_PROJECT (default demo/secret/demo)
//
// Each run makes, with a random suffix: as demo a network `argo-fip-<s>` (192.0.2.0/24) and a router
// `argo-fip-<s>` with an interface on it; as the service user (admin: external networks are an
// admin's) an external network `argo-fip-ext-<s>` (203.0.113.0/24). All documentation ranges,
// overlapping other runs' being allowed (allow_overlapping_ips). afterAll removes all of it.
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { KeystoneClient } from '../../api/auth/keystone-client.ts';
import { createLogger } from '../../common/logging.ts';
import { neutronApi } from '../../driver/network/neutron-api.ts';
import { NeutronNetworkDriver, vipPortName, vrrpPortName } from '../../driver/network/neutron.ts';
import { ServiceClient } from '../../driver/openstack/client.ts';
import { peerServiceOptions } from '../helpers/keystone.ts';
import { arrangeActiveStandby, neutronUnavailable } from '../helpers/neutron.ts';

const env = (name: string, fallback: string) => process.env[name] ?? fallback;
const AUTH_URL = env('ARGONAUT_KEYSTONE_URL', 'http://127.0.0.1:5000/v3');
const SLOW = { timeout: 240_000 };
const TENANT_CIDR = '192.0.2.0/24';
const EXTERNAL_CIDR = '203.0.113.0/24';

const serviceCredentials = new KeystoneClient({ ...peerServiceOptions(AUTH_URL), retries: 1 });
const demoCredentials = new KeystoneClient({
  ...peerServiceOptions(AUTH_URL),
  username: env('ARGONAUT_KEYSTONE_DEMO_USER', 'demo'),
  password: env('ARGONAUT_KEYSTONE_DEMO_PASSWORD', 'secret'),
  projectName: env('ARGONAUT_KEYSTONE_DEMO_PROJECT', 'demo'),
  retries: 1,
});
const clientFor = (credentials: KeystoneClient) =>
  new ServiceClient({ credentials, serviceType: 'network', serviceName: 'Neutron', versionPath: '/v2.0', timeoutMs: 20_000 });
const admin = clientFor(serviceCredentials);
const demo = clientFor(demoCredentials);
const neutron = neutronApi(admin);

const skipReason = await neutronUnavailable(admin);
if (skipReason) console.warn(`neutron floating IP test skipped: Keystone (${AUTH_URL}) or Neutron do not answer: ${skipReason}`);

const id = z.object({ id: z.string() });
const floatingIpSchema = z.object({
  id: z.string(),
  floating_ip_address: z.string(),
  floating_network_id: z.string(),
  port_id: z.string().nullable(),
  fixed_ip_address: z.string().nullable(),
  router_id: z.string().nullable(),
  project_id: z.string(),
});

describe.skipIf(skipReason !== null)(`a floating IP on an ACTIVE_STANDBY VIP, against the peers' Neutron${skipReason ? ` (skipped: ${skipReason})` : ''}`, SLOW, () => {
  const suffix = randomUUID().slice(0, 8);
  const driver = new NeutronNetworkDriver({ credentials: serviceCredentials, timeoutMs: 20_000, retryIntervalMs: 200, securityGroupDeleteAttempts: 5, logger: createLogger('test', 'silent') });
  const lbId = randomUUID();
  const amphorae = [randomUUID(), randomUUID()];
  const made: { network?: string; subnet?: string; external?: string; router?: string; interfaceAdded?: boolean; floatingIp?: string } = {};

  afterAll(async () => {
    // Every step is tried (each call bounded by the client's 20 s timeout); the first failure is rethrown.
    const failures: unknown[] = [];
    const step = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        console.error(`neutron floating IP test cleanup: ${what} failed: ${(err as Error).message}`);
        failures.push(err);
      }
    };
    if (made.floatingIp) await step('deleting the floating IP', () => demo.delete(`/floatingips/${made.floatingIp}`));
    await step('deallocating the VIP', () => driver.deallocateVip({ loadBalancerId: lbId, portId: null, amphoraIds: amphorae }));
    if (made.router) {
      if (made.interfaceAdded) await step('removing the router interface', () => demo.put(`/routers/${made.router}/remove_router_interface`, { subnet_id: made.subnet }, z.unknown()));
      await step('deleting the router', () => demo.delete(`/routers/${made.router}`));
    }
    for (const network of [made.network, made.external]) {
      if (!network) continue;
      await step(`deleting network ${network}`, async () => {
        for (const p of await neutron.listPorts({ network_id: network })) await neutron.deletePort(p.id);
        await admin.delete(`/networks/${network}`);
      });
    }
    if (failures.length) throw failures[0];
  }, SLOW.timeout);

  it('associates a floating IP with the VIP port the amphorae share, and deleting the load balancer leaves it disassociated', async () => {
    const extensions = (await demo.get('/extensions', z.object({ extensions: z.array(z.object({ alias: z.string() })) }))).extensions.map((e) => e.alias);
    if (!extensions.includes('router')) {
      throw new Error("Neutron has no `router` extension (no routers, no floating IPs): run test/peers/neutron-l3.sh, which enables Neutron's L3 plugin on the peers' Neutron");
    }
    const demoProject = (await demoCredentials.serviceProjectId())!;
    expect(demoProject).toBeTruthy();

    // The user's tenant network, its external network (an admin's: demo may not set router:external) and router.
    const name = `argo-fip-${suffix}`;
    made.network = (await demo.post('/networks', { network: { name } }, z.object({ network: id }))).network.id;
    made.subnet = (
      await demo.post('/subnets', { subnet: { name, network_id: made.network, ip_version: 4, cidr: TENANT_CIDR, enable_dhcp: false } }, z.object({ subnet: id }))
    ).subnet.id;
    made.external = (await admin.post('/networks', { network: { name: `argo-fip-ext-${suffix}`, 'router:external': true } }, z.object({ network: id }))).network.id;
    await admin.post(
      '/subnets',
      { subnet: { name: `argo-fip-ext-${suffix}`, network_id: made.external, ip_version: 4, cidr: EXTERNAL_CIDR, enable_dhcp: false } },
      z.object({ subnet: id }),
    );
    made.router = (await demo.post('/routers', { router: { name, external_gateway_info: { network_id: made.external } } }, z.object({ router: id }))).router.id;
    await demo.put(`/routers/${made.router}/add_router_interface`, { subnet_id: made.subnet }, z.object({ port_id: z.string() }));
    made.interfaceAdded = true;

    // What the controller does for an ACTIVE_STANDBY load balancer of the demo project.
    const vip = await driver.allocateVip({ loadBalancerId: lbId, projectId: demoProject, subnetId: made.subnet, networkId: made.network, address: null });
    expect(vip.address.startsWith('192.0.2.')).toBe(true);
    const { sgId, plugged } = await arrangeActiveStandby(driver, { loadBalancerId: lbId, subnetId: made.subnet, vip, amphorae });

    const vipPort = await neutron.findPort(vip.portId);
    expect(vipPort).toMatchObject({ name: vipPortName(lbId), device_owner: 'Octavia', project_id: demoProject, network_id: made.network });
    expect(vipPort!.fixed_ips).toEqual([{ subnet_id: made.subnet, ip_address: vip.address }]);
    for (const [i, p] of plugged.entries()) {
      const port = await neutron.findPort(p.vrrpPortId);
      expect(port).toMatchObject({ name: vrrpPortName(amphorae[i]!), device_owner: 'Octavia', network_id: made.network, security_groups: [sgId] });
      expect(port!.allowed_address_pairs).toEqual([{ ip_address: vip.address, mac_address: port!.mac_address }]);
      expect(p.vrrpIp).not.toBe(vip.address);
    }
    expect(plugged[0]!.vrrpIp).not.toBe(plugged[1]!.vrrpIp);
    // The user sees the VIP port (it is in their project), as `openstack port show <vip_port_id>` does.
    expect((await demo.get(`/ports/${vip.portId}`, z.object({ port: id }))).port.id).toBe(vip.portId);

    // `openstack floating ip create <ext>` then `openstack floating ip set --port <vip_port_id> <fip>`.
    const created = (await demo.post('/floatingips', { floatingip: { floating_network_id: made.external } }, z.object({ floatingip: floatingIpSchema }))).floatingip;
    made.floatingIp = created.id;
    expect(created).toMatchObject({ port_id: null, fixed_ip_address: null, project_id: demoProject, floating_network_id: made.external });
    expect(created.floating_ip_address.startsWith('203.0.113.')).toBe(true);
    const associated = (await demo.put(`/floatingips/${created.id}`, { floatingip: { port_id: vip.portId } }, z.object({ floatingip: floatingIpSchema }))).floatingip;
    expect(associated).toMatchObject({ port_id: vip.portId, fixed_ip_address: vip.address, router_id: made.router, floating_ip_address: created.floating_ip_address });
    const shown = async () => (await demo.get(`/floatingips/${created.id}`, z.object({ floatingip: floatingIpSchema }))).floatingip;
    expect(await shown()).toMatchObject({ port_id: vip.portId, fixed_ip_address: vip.address, router_id: made.router });
    // Looked up the way the CLI lists a port's floating IPs.
    const byPort = (await demo.get('/floatingips', z.object({ floatingips: z.array(floatingIpSchema) }), { port_id: vip.portId })).floatingips;
    expect(byPort.map((f) => f.id)).toEqual([created.id]);

    // Load balancer deletion: the VIP port, the amphorae's ports (and their pairs) and the lb- group go.
    await driver.deallocateVip({ loadBalancerId: lbId, portId: vip.portId, amphoraIds: amphorae });
    expect(await neutron.findPort(vip.portId)).toBeUndefined();
    for (const p of plugged) expect(await neutron.findPort(p.vrrpPortId)).toBeUndefined();
    const pairs = (await neutron.listPorts({ network_id: made.network })).flatMap((p) => p.allowed_address_pairs.map((a) => a.ip_address));
    expect(pairs).not.toContain(vip.address);
    expect(await driver.findVipSecurityGroup(lbId)).toBeUndefined();
    // The floating IP is the user's: still there, with the same address, associated with nothing.
    expect(await shown()).toMatchObject({ floating_ip_address: created.floating_ip_address, port_id: null, fixed_ip_address: null, router_id: null });
  });
});
