// For the tests that use the peers' Neutron: whether it (and the Keystone in front of it) answers,
// and what the controller makes there for an ACTIVE_STANDBY load balancer.
import { z } from 'zod';
import type { AmphoraVipPort, NeutronNetworkDriver } from '../../driver/network/neutron.ts';
import type { ServiceClient } from '../../driver/openstack/client.ts';

/** Null when a network list works through `client`; otherwise why not (the tests skip, saying so). */
export async function neutronUnavailable(client: ServiceClient): Promise<string | null> {
  try {
    await client.get('/networks', z.object({ networks: z.array(z.unknown()) }), { limit: 1 });
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * As the controller does for an ACTIVE_STANDBY load balancer with one HTTP listener on port 80:
 * the lb- security group (election ports open) on the VIP port, then a VRRP port for each amphora.
 */
export async function arrangeActiveStandby(
  driver: NeutronNetworkDriver,
  a: { loadBalancerId: string; subnetId: string; vip: { address: string; portId: string }; amphorae: string[] },
): Promise<{ sgId: string; plugged: AmphoraVipPort[] }> {
  const sgId = await driver.updateVipSecurityGroup({
    loadBalancerId: a.loadBalancerId,
    vipAddresses: [a.vip.address],
    listeners: [{ protocol: 'HTTP', protocolPort: 80, allowedCidrs: [] }],
    activeStandby: true,
    electionPorts: { advertUdp: 5112, syncTcp: 1114 },
    vipPortId: a.vip.portId,
  });
  const plugged: AmphoraVipPort[] = [];
  for (const amphoraId of a.amphorae) plugged.push(await driver.plugAmphoraVip({ amphoraId, subnetId: a.subnetId, vipAddresses: [a.vip.address], securityGroupIds: [sgId] }));
  return { sgId, plugged };
}
