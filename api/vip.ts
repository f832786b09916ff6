// Validation of a new load balancer's VIP request, resolved through the network driver as
// Octavia's API does: a port gives its network, a subnet gives its network, a network alone gets
// its subnet chosen (the one holding vip_address, else the first, preferring IPv4).
import type { Services } from './services.ts';
import { errors } from './errors.ts';
import { ipVersion, parseCidr, ipToBigInt } from '../common/ip-address.ts';
import type { Body } from './schema/object.ts';

export interface ResolvedVip {
  address: string | null;
  subnetId: string;
  networkId: string;
  portId: string | null;
  qosPolicyId: string | null;
  additionalVips: Array<{ subnet_id: string; ip_address?: string | null }>;
}

export async function resolveVip(services: Services, body: Body): Promise<ResolvedVip> {
  const api = services.config.api;
  const net = services.providers.network;
  const allowed = [
    ...(api.allowVipPortId ? ['vip_port_id'] : []),
    ...(api.allowVipNetworkId ? ['vip_network_id'] : []),
    ...(api.allowVipSubnetId ? ['vip_subnet_id'] : []),
  ];
  for (const [field, allow] of [['vip_port_id', api.allowVipPortId], ['vip_network_id', api.allowVipNetworkId], ['vip_subnet_id', api.allowVipSubnetId]] as const) {
    if (body[field] && !allow) throw errors.validation(`use of ${field} is disallowed by this deployment's configuration.`);
  }
  if (!body.vip_port_id && !body.vip_network_id && !body.vip_subnet_id) {
    throw errors.validation(`VIP must contain one of: ${allowed.join(', ')}.`);
  }
  let subnetId = (body.vip_subnet_id as string | null) ?? null;
  let networkId = (body.vip_network_id as string | null) ?? null;
  let address = (body.vip_address as string | null) ?? null;
  let qosPolicyId = (body.vip_qos_policy_id as string | null) ?? null;
  const portId = (body.vip_port_id as string | null) ?? null;

  if (portId) {
    const port = await net.getPort(portId);
    if (!port) throw errors.invalidSubresource('Port', portId);
    if (port.deviceId) throw errors.validation(`Port ${portId} is already used by device ${port.deviceId}`);
    networkId = port.networkId;
    if (!('vip_qos_policy_id' in body) && port.qosPolicyId) qosPolicyId = port.qosPolicyId;
    if (subnetId) {
      const fixed = port.fixedIps.find((ip) => ip.subnetId === subnetId);
      if (port.fixedIps.length && !fixed) throw errors.validation(`Port ${portId} does not have an IP on subnet ${subnetId}.`);
      if (fixed && !address) address = fixed.address;
    } else if (port.fixedIps.length) {
      const fixed = address ? port.fixedIps.find((ip) => ip.address === address) : port.fixedIps[0];
      if (!fixed) throw errors.validation(`Port ${portId} does not have the IP address ${address}.`);
      subnetId = fixed.subnetId;
      address = fixed.address;
    }
  } else if (networkId) {
    const subnets = await net.getNetworkSubnets(networkId);
    if (!subnets) throw errors.invalidSubresource('Network', networkId);
    if (subnetId) {
      if (!subnets.some((s) => s.id === subnetId)) {
        const subnet = await net.getSubnet(subnetId);
        if (!subnet || subnet.networkId !== networkId) throw errors.validation(`Subnet ${subnetId} not found in network ${networkId}.`);
      }
    } else if (address) {
      const match = subnets.find((s) => s.cidr === null || containsIp(s.cidr, address!));
      if (!match) throw errors.validation('Supplied network does not contain a subnet for VIP address specified.');
      subnetId = match.id;
    } else {
      if (subnets.length === 0) throw errors.validation('Supplied network does not contain a subnet.');
      subnetId = (subnets.find((s) => s.ipVersion === 4) ?? subnets[0]!).id;
    }
  } else {
    const subnet = await net.getSubnet(subnetId!);
    if (!subnet) throw errors.invalidSubresource('Subnet', subnetId!);
    networkId = subnet.networkId;
    if (address && subnet.cidr && !containsIp(subnet.cidr, address)) {
      throw errors.validation(`VIP address ${address} is not in subnet ${subnetId}.`);
    }
  }
  if (qosPolicyId && !(await net.qosPolicyExists(qosPolicyId))) throw errors.invalidSubresource('qos_policy', qosPolicyId);

  const additionalVips = ((body.additional_vips as Body[] | null) ?? []).map((v) => ({ subnet_id: v.subnet_id as string, ip_address: (v.ip_address as string | null) ?? null }));
  const subnetIds = [subnetId!, ...additionalVips.map((v) => v.subnet_id)];
  if (new Set(subnetIds).size !== subnetIds.length) throw errors.validation('Duplicate VIP subnet(s) specified. Only one IP can be bound per subnet.');
  for (const extra of additionalVips) {
    const subnet = await net.getSubnet(extra.subnet_id);
    if (!subnet) throw errors.invalidSubresource('Subnet', extra.subnet_id);
    if (subnet.networkId !== networkId) throw errors.validation('All VIP subnets must belong to the same network.');
  }
  for (const sg of (body.vip_sg_ids as string[] | null) ?? []) {
    if (!(await net.securityGroupExists(sg))) throw errors.invalidSubresource('Security Group', sg);
  }
  return { address, subnetId: subnetId!, networkId: networkId!, portId, qosPolicyId, additionalVips };
}

function containsIp(cidrText: string, address: string): boolean {
  const cidr = parseCidr(cidrText);
  const ip = ipToBigInt(address);
  if (!cidr || !ip || cidr.version !== ip.version) return false;
  const bits = cidr.version === 4 ? 32 : 128;
  const mask = cidr.prefix === 0 ? 0n : ((1n << BigInt(cidr.prefix)) - 1n) << BigInt(bits - cidr.prefix);
  return (ip.value & mask) === cidr.network;
}

export const vipVersions = (lb: Record<string, any>): Array<4 | 6> => {
  const addresses = [lb.vip_address, ...((lb.additional_vips ? JSON.parse(lb.additional_vips) : []) as Array<{ ip_address: string | null }>).map((v) => v.ip_address)];
  return addresses.filter((a): a is string => !!a).map((a) => ipVersion(a) as 4 | 6);
};
