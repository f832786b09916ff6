// The parts of Neutron's v2.0 API the neutron network driver uses: response shapes (zod; only the
// fields relied on, anything else is dropped) and one function per call. Ids are path-encoded.
import { z } from 'zod';
import type { Query, ServiceClient } from '../openstack/client.ts';

export const subnetSchema = z.object({
  id: z.string(),
  name: z.string().nullish(),
  network_id: z.string(),
  ip_version: z.union([z.literal(4), z.literal(6)]),
  cidr: z.string(),
});
export type NeutronSubnet = z.infer<typeof subnetSchema>;

export const networkSchema = z.object({
  id: z.string(),
  subnets: z.array(z.string()).default([]),
  port_security_enabled: z.boolean().optional(),
});

const fixedIpSchema = z.object({ subnet_id: z.string(), ip_address: z.string() });

export const portSchema = z.object({
  id: z.string(),
  name: z.string().nullish(),
  network_id: z.string(),
  mac_address: z.string().nullish(),
  device_id: z.string().nullish(),
  device_owner: z.string().nullish(),
  project_id: z.string().nullish(),
  fixed_ips: z.array(fixedIpSchema).default([]),
  security_groups: z.array(z.string()).default([]),
  allowed_address_pairs: z.array(z.object({ ip_address: z.string(), mac_address: z.string().nullish() })).default([]),
  /** Present only with the qos extension. */
  qos_policy_id: z.string().nullish(),
});
export type NeutronPort = z.infer<typeof portSchema>;

export const ruleSchema = z.object({
  id: z.string(),
  direction: z.enum(['ingress', 'egress']),
  ethertype: z.enum(['IPv4', 'IPv6']),
  protocol: z.string().nullable(),
  port_range_min: z.number().int().nullable(),
  port_range_max: z.number().int().nullable(),
  remote_ip_prefix: z.string().nullable(),
});
export type NeutronRule = z.infer<typeof ruleSchema>;

export const securityGroupSchema = z.object({
  id: z.string(),
  name: z.string(),
  security_group_rules: z.array(ruleSchema).default([]),
});
export type NeutronSecurityGroup = z.infer<typeof securityGroupSchema>;

/** What POST /security-group-rules takes (security_group_id and direction are added by the caller). */
export interface RuleSpec {
  ethertype: 'IPv4' | 'IPv6';
  protocol: string;
  port_range_min: number | null;
  port_range_max: number | null;
  remote_ip_prefix: string | null;
}

const seg = encodeURIComponent;

export const neutronApi = (c: ServiceClient) => ({
  findSubnet: (id: string) => c.find(`/subnets/${seg(id)}`, z.object({ subnet: subnetSchema })).then((r) => r?.subnet),
  listSubnets: (query: Query) => c.get('/subnets', z.object({ subnets: z.array(subnetSchema) }), query).then((r) => r.subnets),
  findNetwork: (id: string) => c.find(`/networks/${seg(id)}`, z.object({ network: networkSchema })).then((r) => r?.network),
  findPort: (id: string) => c.find(`/ports/${seg(id)}`, z.object({ port: portSchema })).then((r) => r?.port),
  listPorts: (query: Query) => c.get('/ports', z.object({ ports: z.array(portSchema) }), query).then((r) => r.ports),
  createPort: (port: Record<string, unknown>) => c.post('/ports', { port }, z.object({ port: portSchema })).then((r) => r.port),
  updatePort: (id: string, port: Record<string, unknown>) => c.put(`/ports/${seg(id)}`, { port }, z.object({ port: portSchema })).then((r) => r.port),
  deletePort: (id: string) => c.delete(`/ports/${seg(id)}`),
  qosPolicyExists: (id: string) => c.find(`/qos/policies/${seg(id)}`, z.object({ policy: z.object({ id: z.string() }) })).then((r) => r !== undefined),
  findSecurityGroup: (id: string) =>
    c.find(`/security-groups/${seg(id)}`, z.object({ security_group: securityGroupSchema })).then((r) => r?.security_group),
  listSecurityGroups: (query: Query) =>
    c.get('/security-groups', z.object({ security_groups: z.array(securityGroupSchema) }), query).then((r) => r.security_groups),
  createSecurityGroup: (name: string, description: string) =>
    c.post('/security-groups', { security_group: { name, description } }, z.object({ security_group: securityGroupSchema })).then((r) => r.security_group),
  deleteSecurityGroup: (id: string) => c.delete(`/security-groups/${seg(id)}`),
  /** Neutron's bulk create: all the rules or none. */
  createRules: (securityGroupId: string, rules: RuleSpec[]) =>
    c
      .post(
        '/security-group-rules',
        { security_group_rules: rules.map((r) => ({ ...r, security_group_id: securityGroupId, direction: 'ingress' })) },
        z.object({ security_group_rules: z.array(ruleSchema) }),
      )
      .then((r) => r.security_group_rules),
  deleteRule: (id: string) => c.delete(`/security-group-rules/${seg(id)}`),
});

export type NeutronApi = ReturnType<typeof neutronApi>;
