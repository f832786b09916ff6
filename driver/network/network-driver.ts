import type { Transaction } from 'sequelize';

// What the API and the controller need from the network (Neutron in production).
export interface SubnetInfo {
  id: string;
  networkId: string;
  ipVersion: 4 | 6 | null;
  cidr: string | null;
}

export interface NetworkDriver {
  readonly name: string;
  /** Subnet lookup; undefined when it does not exist. */
  getSubnet(subnetId: string): Promise<SubnetInfo | undefined>;
  /** A network's subnets; undefined when the network does not exist. */
  getNetworkSubnets(networkId: string): Promise<SubnetInfo[] | undefined>;
  getPort(portId: string): Promise<{ id: string; networkId: string; deviceId: string | null; fixedIps: Array<{ subnetId: string; address: string }>; qosPolicyId: string | null } | undefined>;
  qosPolicyExists(id: string): Promise<boolean>;
  securityGroupExists(id: string): Promise<boolean>;
  /** Chooses the VIP address (the requested one, or a free one on the subnet), inside the create transaction. */
  allocateVipAddress(req: { subnetId: string; address: string | null; loadBalancerId: string; transaction?: Transaction }): Promise<string>;
}
