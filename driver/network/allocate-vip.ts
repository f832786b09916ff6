import { randomUUID } from 'node:crypto';
import type { Transaction } from 'sequelize';
import type { VipAllocation, VipRequest } from '../provider.ts';
import type { NetworkDriver } from './network-driver.ts';

/** Reserves the VIP of a new load balancer through the network driver. */
export async function allocateVip(network: NetworkDriver, req: VipRequest, transaction?: Transaction): Promise<VipAllocation> {
  const address = await network.allocateVipAddress({ subnetId: req.subnetId!, address: req.address, loadBalancerId: req.loadBalancerId, transaction });
  return {
    address,
    subnetId: req.subnetId!,
    networkId: req.networkId!,
    portId: req.portId ?? randomUUID(),
    additionalVips: req.additionalVips.map((v) => ({ subnet_id: v.subnet_id, ip_address: v.ip_address ?? null, port_id: randomUUID() })),
  };
}
