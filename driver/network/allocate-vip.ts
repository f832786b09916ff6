import { randomUUID } from 'node:crypto';
import type { Transaction } from 'sequelize';
import type { VipAllocation, VipRequest } from '../provider.ts';
import type { NetworkDriver } from './network-driver.ts';
import { NeutronNetworkDriver } from './neutron.ts';

/** Reserves the VIP of a new load balancer through the network driver. */
export async function allocateVip(network: NetworkDriver, req: VipRequest, transaction?: Transaction): Promise<VipAllocation> {
  if (network instanceof NeutronNetworkDriver) {
    // Neutron allocates the port (its id is the VIP's port id) and the address.
    const vip = await network.allocateVip({ loadBalancerId: req.loadBalancerId, projectId: req.projectId, subnetId: req.subnetId!, networkId: req.networkId, address: req.address, portId: req.portId, additionalVips: req.additionalVips });
    return { address: vip.address, subnetId: vip.subnetId, networkId: vip.networkId, portId: vip.portId, additionalVips: vip.additionalVips };
  }
  const address = await network.allocateVipAddress({ subnetId: req.subnetId!, address: req.address, loadBalancerId: req.loadBalancerId, transaction });
  return {
    address,
    subnetId: req.subnetId!,
    networkId: req.networkId!,
    portId: req.portId ?? randomUUID(),
    additionalVips: req.additionalVips.map((v) => ({ subnet_id: v.subnet_id, ip_address: v.ip_address ?? null, port_id: randomUUID() })),
  };
}
