// The no-op network driver, as in Octavia's no-op gate: every network object exists, nothing is
// plumbed, and a VIP without a requested address gets 198.51.100.1. It sends no traffic anywhere.
import { randomUUID } from 'node:crypto';
import type { NetworkDriver, SubnetInfo } from './network-driver.ts';

export const NOOP_VIP_ADDRESS = '198.51.100.1';

export class NoopNetworkDriver implements NetworkDriver {
  readonly name = 'noop';
  private readonly subnets = new Map<string, SubnetInfo>();
  private readonly networks = new Map<string, string[]>();
  /** Like Octavia's no-op driver, an unknown subnet belongs to the network looked up last. */
  private currentNetwork: string | null = null;

  async getSubnet(subnetId: string): Promise<SubnetInfo> {
    let subnet = this.subnets.get(subnetId);
    if (!subnet) {
      subnet = { id: subnetId, networkId: this.currentNetwork ?? randomUUID(), ipVersion: null, cidr: null };
      this.subnets.set(subnetId, subnet);
    }
    return subnet;
  }

  async getNetworkSubnets(networkId: string): Promise<SubnetInfo[]> {
    this.currentNetwork = networkId;
    let ids = this.networks.get(networkId);
    if (!ids) {
      const subnet: SubnetInfo = { id: randomUUID(), networkId, ipVersion: null, cidr: null };
      this.subnets.set(subnet.id, subnet);
      ids = [subnet.id];
      this.networks.set(networkId, ids);
    }
    return ids.map((id) => this.subnets.get(id)!);
  }

  async getPort(portId: string) {
    return { id: portId, networkId: randomUUID(), deviceId: null, fixedIps: [], qosPolicyId: null };
  }

  async qosPolicyExists(): Promise<boolean> {
    return true;
  }

  async securityGroupExists(): Promise<boolean> {
    return true;
  }

  async allocateVipAddress(req: { address: string | null }): Promise<string> {
    return req.address ?? NOOP_VIP_ADDRESS;
  }
}
