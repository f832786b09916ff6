// The `neutron` network driver: Octavia's allowed-address-pairs driver, reduced to what Argonaut
// needs, against Neutron's v2.0 API as the Keystone service user.
//
// What it creates, with Octavia's names so that either can clean up after the other:
// - the VIP port `octavia-lb-<lbId>` (device_owner Octavia, device_id lb-<lbId>, admin state down,
//   owned by the load balancer's project): it only reserves the VIP address;
// - per amphora, its VRRP (base) port `octavia-lb-vrrp-<amphoraId>` on the VIP subnet, with the VIP
//   addresses as allowed address pairs, so that the amphora may answer for them;
// - the security group `lb-<lbId>` (service project) letting in the listener ports (from their
//   allowed_cidrs, or from anywhere) and, for ACTIVE_STANDBY, VRRP and AH between the amphorae.
// Attaching the VRRP port to an instance is the compute driver's job (netns: its address and MAC on
// the namespace's eth0, see driver/amphora/provider.ts; nova: attachPort, or a port given at boot,
// not done yet).
//
// The controller's calls, in order: allocateVip() (the API, at create); updateVipSecurityGroup()
// (at create, and whenever listeners change); plugAmphoraVip() per amphora (before or after its
// boot), unplugAmphoraVip() when an amphora goes (failover, delete); deallocateVip() at load
// balancer delete. Each may be repeated after a failure.
//
// Lookups answer undefined/false for Neutron's 404; any other Neutron error is thrown (OpenStackError,
// with Neutron's message). VIP allocation errors are turned into what Octavia's API answers: 409
// "The VIP IP address is already in use: <Neutron's message>" for Neutron's conflicts (address taken,
// subnet full), otherwise a 500 carrying Neutron's message.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Transaction } from 'sequelize';
import { ApiError, errors } from '../../api/errors.ts';
import { ipToBigInt } from '../../common/ip-address.ts';
import type { Logger } from '../../common/logging.ts';
import { OpenStackError, ServiceClient, type ServiceCredentials } from '../openstack/client.ts';
import { neutronApi, type NeutronApi, type NeutronPort, type NeutronRule, type NeutronSecurityGroup, type NeutronSubnet, type RuleSpec } from './neutron-api.ts';
import type { NetworkDriver, SubnetInfo } from './network-driver.ts';

export const OCTAVIA_OWNER = 'Octavia';
export const vipPortName = (loadBalancerId: string) => `octavia-lb-${loadBalancerId}`;
export const vrrpPortName = (amphoraId: string) => `octavia-lb-vrrp-${amphoraId}`;
export const securityGroupName = (loadBalancerId: string) => `lb-${loadBalancerId}`;
const VRRP_PROTOCOL = '112';
const AH_PROTOCOL = '51';

export interface NeutronNetworkOptions {
  credentials: ServiceCredentials;
  /** Neutron's URL with its version (http://host:9696/v2.0); null: the catalog's `network` endpoint. */
  endpoint?: string | null;
  interface?: 'public' | 'internal' | 'admin';
  /** Catalog region; undefined: the credentials' region. */
  region?: string | null;
  timeoutMs: number;
  /** Attempts to delete a security group still in use (Neutron frees it only once its ports are gone). */
  securityGroupDeleteAttempts?: number;
  retryIntervalMs?: number;
  logger: Logger;
  fetch?: ConstructorParameters<typeof ServiceClient>[0]['fetch'];
}

export interface VipPortRequest {
  loadBalancerId: string;
  /** The load balancer's project: the VIP port is made in it, as Octavia does. */
  projectId?: string | null;
  subnetId: string;
  /** The subnet's network (looked up when absent). */
  networkId?: string | null;
  /** The requested VIP address; null: Neutron picks a free one. */
  address: string | null;
  /** vip_port_id: the user's port is used as it is, never deleted by deallocateVip(). */
  portId?: string | null;
  additionalVips?: Array<{ subnet_id: string; ip_address?: string | null }>;
  /** vip_sg_ids: set on the VIP port instead of the project's default group. */
  securityGroupIds?: string[];
  /** The API's create transaction; unused (Neutron has its own), accepted for NetworkDriver. */
  transaction?: Transaction;
}

export interface VipPort {
  portId: string;
  networkId: string;
  subnetId: string;
  address: string;
  additionalVips: Array<{ subnet_id: string; ip_address: string; port_id: string }>;
  /** Created by this driver (deallocateVip deletes it); false for a user's vip_port_id. */
  octaviaOwned: boolean;
}

export interface ListenerRuleSpec {
  /** TCP, HTTP, HTTPS, TERMINATED_HTTPS, PROMETHEUS (all tcp), UDP or SCTP. */
  protocol: string;
  protocolPort: number;
  /** Extension (additional_ports): every port interval served, protocol_port's included; absent: protocolPort alone. */
  ports?: Array<{ from: number; to: number }>;
  /** Extension (also_udp): a TCP listener that serves UDP on the same ports too. */
  alsoUdp?: boolean;
  /** allowed_cidrs; empty: from anywhere. */
  allowedCidrs: string[];
}

export interface VipSecurityGroupRequest {
  loadBalancerId: string;
  /** The VIP and additional VIP addresses: rules are made for their IP versions. */
  vipAddresses: string[];
  /** The listeners that are not being deleted. */
  listeners: ListenerRuleSpec[];
  /** ACTIVE_STANDBY: VRRP (protocol 112) and AH (51) are let in as well, and the election's ports. */
  activeStandby: boolean;
  /** ACTIVE_STANDBY: the election's adverts (UDP) and persistence sync (TCP) between the amphorae. */
  electionPorts?: { advertUdp: number; syncTcp: number };
  /** The VIP port: the group (and vipSgIds) are set on it. */
  vipPortId?: string | null;
  /** vip_sg_ids: when given the listener rules are left out (the user's groups decide), as Octavia does. */
  vipSgIds?: string[];
}

export interface AmphoraVipRequest {
  amphoraId: string;
  /** The VIP subnet: the VRRP port gets an address of its own there. */
  subnetId: string;
  /** The addresses the amphora may answer for (VIP and additional VIPs): its allowed address pairs. */
  vipAddresses: string[];
  /** The port's groups (the lb- group, then vip_sg_ids); undefined: Neutron's default group. */
  securityGroupIds?: string[];
}

export interface AmphoraVipPort {
  vrrpPortId: string;
  vrrpIp: string;
  networkId: string;
  /** The port's MAC address (what the amphora's interface must carry). */
  mac: string;
  /** The VIP subnet's prefix length (the VRRP address is configured with it). */
  prefixLength: number;
}

/** A VIP could not be allocated for another reason than a conflict: Octavia's DriverError (500). */
export class VipAllocationError extends Error {
  override name = 'VipAllocationError';
  readonly httpStatus = 500;
  constructor(
    readonly faultstring: string,
    options?: { cause?: unknown },
  ) {
    super(faultstring, options);
  }
}

export class NeutronNetworkDriver implements NetworkDriver {
  readonly name = 'neutron';
  private readonly api: NeutronApi;
  private readonly log: Logger;
  private readonly deleteAttempts: number;
  private readonly retryIntervalMs: number;

  constructor(private readonly opts: NeutronNetworkOptions) {
    const client = new ServiceClient({
      credentials: opts.credentials,
      serviceType: 'network',
      serviceName: 'Neutron',
      endpoint: opts.endpoint ?? null,
      ...(opts.interface ? { interface: opts.interface } : {}),
      ...(opts.region !== undefined ? { region: opts.region } : {}),
      versionPath: '/v2.0',
      timeoutMs: opts.timeoutMs,
      ...(opts.fetch ? { fetch: opts.fetch } : {}),
    });
    this.api = neutronApi(client);
    this.log = opts.logger.child({ component: 'network', driver: 'neutron' });
    this.deleteAttempts = opts.securityGroupDeleteAttempts ?? 15;
    this.retryIntervalMs = opts.retryIntervalMs ?? 1000;
  }

  // ---- lookups (NetworkDriver) --------------------------------------------------------------------

  async getSubnet(subnetId: string): Promise<SubnetInfo | undefined> {
    const subnet = await this.api.findSubnet(subnetId);
    return subnet && subnetInfo(subnet);
  }

  async getNetworkSubnets(networkId: string): Promise<SubnetInfo[] | undefined> {
    const network = await this.api.findNetwork(networkId);
    if (!network) return undefined;
    if (network.subnets.length === 0) return [];
    const subnets = await this.api.listSubnets({ network_id: networkId });
    // In the network's own order (the API takes the first IPv4 subnet when none is named).
    const order = new Map(network.subnets.map((id, i) => [id, i]));
    const rank = (id: string) => order.get(id) ?? order.size;
    return subnets.sort((a, b) => rank(a.id) - rank(b.id)).map(subnetInfo);
  }

  async getPort(portId: string) {
    const port = await this.api.findPort(portId);
    if (!port) return undefined;
    return {
      id: port.id,
      networkId: port.network_id,
      deviceId: port.device_id || null,
      fixedIps: port.fixed_ips.map((ip) => ({ subnetId: ip.subnet_id, address: ip.ip_address })),
      qosPolicyId: port.qos_policy_id ?? null,
    };
  }

  async qosPolicyExists(id: string): Promise<boolean> {
    // Without the qos extension Neutron answers 404 as well: no policy exists then.
    return this.api.qosPolicyExists(id);
  }

  async securityGroupExists(id: string): Promise<boolean> {
    return (await this.api.findSecurityGroup(id)) !== undefined;
  }

  // ---- the VIP ------------------------------------------------------------------------------------

  async allocateVipAddress(req: VipPortRequest): Promise<string> {
    return (await this.allocateVip(req)).address;
  }

  /**
   * Creates the VIP port on the subnet (the requested address, or one Neutron picks), or takes the
   * user's vip_port_id as it is. Not undone by a rollback of the caller's transaction: call
   * deallocateVip() when the load balancer is not created after all.
   */
  async allocateVip(req: VipPortRequest): Promise<VipPort> {
    if (req.portId) return this.existingVipPort(req, req.portId);
    const networkId = req.networkId ?? (await this.getSubnet(req.subnetId))?.networkId;
    if (!networkId) throw errors.invalidSubresource('Subnet', req.subnetId);
    const fixedIps = [
      { subnet_id: req.subnetId, ...(req.address ? { ip_address: req.address } : {}) },
      ...(req.additionalVips ?? []).map((v) => ({ subnet_id: v.subnet_id, ...(v.ip_address ? { ip_address: v.ip_address } : {}) })),
    ];
    const port: Record<string, unknown> = {
      name: vipPortName(req.loadBalancerId),
      network_id: networkId,
      admin_state_up: false,
      device_id: `lb-${req.loadBalancerId}`,
      device_owner: OCTAVIA_OWNER,
      fixed_ips: fixedIps,
      ...(req.projectId ? { project_id: req.projectId } : {}),
      ...(req.securityGroupIds?.length ? { security_groups: req.securityGroupIds } : {}),
    };
    let created: NeutronPort;
    try {
      created = await this.api.createPort(port);
    } catch (err) {
      throw vipError(err, networkId);
    }
    this.log.info({ loadBalancerId: req.loadBalancerId, portId: created.id, fixedIps: created.fixed_ips }, 'VIP port created');
    return toVipPort(created, req.subnetId, true);
  }

  /**
   * Undoes allocateVip() and what the amphorae of the load balancer had: their VRRP ports, the VIP
   * port if this driver created it (a user's port only loses the lb- group), and the lb- group.
   * Idempotent: what is already gone is skipped.
   */
  async deallocateVip(req: { loadBalancerId: string; portId: string | null; amphoraIds: string[] }): Promise<void> {
    for (const amphoraId of req.amphoraIds) await this.unplugAmphoraVip(amphoraId);
    const group = await this.findVipSecurityGroup(req.loadBalancerId);
    const port = req.portId ? await this.api.findPort(req.portId) : undefined;
    if (!port) {
      // The recorded port id is unknown to Neutron (or none was recorded): the port this driver made
      // for the load balancer, if any, is found by its name, owner and device id.
      const lbId = req.loadBalancerId;
      for (const own of await this.api.listPorts({ name: vipPortName(lbId), device_owner: OCTAVIA_OWNER, device_id: `lb-${lbId}` })) {
        await this.api.deletePort(own.id);
        this.log.info({ loadBalancerId: lbId, portId: own.id, recordedPortId: req.portId }, 'VIP port deleted (found by name)');
      }
    } else if (port.device_owner === OCTAVIA_OWNER && port.name === vipPortName(req.loadBalancerId)) {
      await this.api.deletePort(port.id);
      this.log.info({ loadBalancerId: req.loadBalancerId, portId: port.id }, 'VIP port deleted');
    } else {
      if (group && port.security_groups.includes(group.id)) {
        await this.api.updatePort(port.id, { security_groups: port.security_groups.filter((id) => id !== group.id) });
      }
      this.log.info({ loadBalancerId: req.loadBalancerId, portId: port.id }, 'VIP port not created by Octavia: kept');
    }
    if (group) await this.deleteSecurityGroup(group.id);
  }

  // ---- the security group -------------------------------------------------------------------------

  /** The lb-<lbId> group of the service project, with its rules; undefined when there is none. */
  async findVipSecurityGroup(loadBalancerId: string): Promise<NeutronSecurityGroup | undefined> {
    const found = await this.api.listSecurityGroups({ name: securityGroupName(loadBalancerId), ...(await this.ownProject()) });
    if (found.length > 1) throw new Error(`Neutron has ${found.length} security groups named ${securityGroupName(loadBalancerId)} in the service project`);
    return found[0];
  }

  /**
   * Creates the lb-<lbId> group if missing and makes its ingress rules exactly what the listeners
   * need (stale rules deleted, missing ones created; egress rules left alone); sets it on the VIP
   * port when one is given. Returns the group's id, for plugAmphoraVip().
   */
  async updateVipSecurityGroup(req: VipSecurityGroupRequest): Promise<string> {
    const group =
      (await this.findVipSecurityGroup(req.loadBalancerId)) ??
      (await this.api.createSecurityGroup(securityGroupName(req.loadBalancerId), `Argonaut load balancer ${req.loadBalancerId}`));
    const wanted = wantedRules(req);
    const have = group.security_group_rules.filter((r) => r.direction === 'ingress');
    for (const rule of have) {
      if (!wanted.has(ruleKey(ruleSpecOf(rule)))) await this.api.deleteRule(rule.id);
    }
    const haveKeys = new Set(have.map((r) => ruleKey(ruleSpecOf(r))));
    const missing = [...wanted.values()].filter((r) => !haveKeys.has(ruleKey(r)));
    if (missing.length) await this.api.createRules(group.id, missing);
    if (req.vipPortId) await this.api.updatePort(req.vipPortId, { security_groups: [group.id, ...(req.vipSgIds ?? [])] });
    this.log.info({ loadBalancerId: req.loadBalancerId, securityGroupId: group.id, rules: wanted.size }, 'VIP security group updated');
    return group.id;
  }

  // ---- amphora ports ------------------------------------------------------------------------------

  /**
   * Creates the amphora's VRRP port on the VIP subnet (or updates the one a failed attempt left),
   * allowed to carry the VIP addresses. The compute driver attaches it to the instance.
   */
  async plugAmphoraVip(req: AmphoraVipRequest): Promise<AmphoraVipPort> {
    const subnet = await this.api.findSubnet(req.subnetId);
    if (!subnet) throw new Error(`cannot plug amphora ${req.amphoraId}: VIP subnet ${req.subnetId} not found in Neutron`);
    const settings: Record<string, unknown> = {
      // Neutron refuses a request that names one pair twice.
      allowed_address_pairs: [...new Set(req.vipAddresses)].map((ip_address) => ({ ip_address })),
      ...(req.securityGroupIds ? { security_groups: req.securityGroupIds } : {}),
    };
    const [existing, ...extra] = await this.vrrpPorts(req.amphoraId);
    if (extra.length) throw new Error(`Neutron has ${extra.length + 1} ports named ${vrrpPortName(req.amphoraId)}`);
    let port: NeutronPort;
    if (existing && existing.network_id === subnet.network_id && existing.fixed_ips.some((ip) => ip.subnet_id === subnet.id)) {
      port = await this.api.updatePort(existing.id, settings);
    } else {
      if (existing) await this.api.deletePort(existing.id); // left on another subnet: not ours to reuse
      port = await this.api.createPort({
        name: vrrpPortName(req.amphoraId),
        network_id: subnet.network_id,
        fixed_ips: [{ subnet_id: subnet.id }],
        admin_state_up: true,
        device_owner: OCTAVIA_OWNER,
        ...settings,
      });
    }
    const vrrpIp = port.fixed_ips.find((ip) => ip.subnet_id === subnet.id)?.ip_address;
    if (!vrrpIp) throw new Error(`Neutron port ${port.id} of amphora ${req.amphoraId} has no address on subnet ${subnet.id}`);
    this.log.info({ amphoraId: req.amphoraId, portId: port.id, vrrpIp, vipAddresses: req.vipAddresses }, 'amphora VRRP port ready');
    if (!port.mac_address) throw new Error(`Neutron port ${port.id} of amphora ${req.amphoraId} has no MAC address`);
    const prefixLength = Number(subnet.cidr.split('/')[1]);
    return { vrrpPortId: port.id, vrrpIp, networkId: port.network_id, mac: port.mac_address, prefixLength };
  }

  /** Deletes the amphora's VRRP port; idempotent. */
  async unplugAmphoraVip(amphoraId: string): Promise<void> {
    for (const port of await this.vrrpPorts(amphoraId)) {
      if (await this.api.deletePort(port.id)) this.log.info({ amphoraId, portId: port.id }, 'amphora VRRP port deleted');
    }
  }

  // ---- internals ----------------------------------------------------------------------------------

  private async existingVipPort(req: VipPortRequest, portId: string): Promise<VipPort> {
    const port = await this.api.findPort(portId);
    if (!port) throw errors.invalidSubresource('Port', portId);
    const fixed = port.fixed_ips.find((ip) => ip.subnet_id === req.subnetId && (!req.address || sameAddress(ip.ip_address, req.address)));
    if (!fixed) {
      const what = req.address ? `the address ${req.address}` : 'an address';
      throw new VipAllocationError(`VIP port ${portId} does not have ${what} on subnet ${req.subnetId}`);
    }
    return toVipPort(port, req.subnetId, false);
  }

  private async vrrpPorts(amphoraId: string): Promise<NeutronPort[]> {
    return this.api.listPorts({ name: vrrpPortName(amphoraId), ...(await this.ownProject()) });
  }

  /** The filter that keeps lookups by name to the service project (a user may name things lb-<id> too). */
  private async ownProject(): Promise<{ project_id?: string }> {
    const id = await this.opts.credentials.serviceProjectId();
    return id ? { project_id: id } : {};
  }

  /** Neutron refuses (409) to delete a group while a port still has it: tried again for a while. */
  private async deleteSecurityGroup(id: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.api.deleteSecurityGroup(id);
        this.log.info({ securityGroupId: id }, 'VIP security group deleted');
        return;
      } catch (err) {
        if (!(err instanceof OpenStackError && err.status === 409) || attempt >= this.deleteAttempts) throw err;
        this.log.warn({ securityGroupId: id, attempt, detail: err.detail }, 'security group still in use; trying again');
        await sleep(this.retryIntervalMs);
      }
    }
  }
}

function subnetInfo(s: NeutronSubnet): SubnetInfo {
  return { id: s.id, networkId: s.network_id, ipVersion: s.ip_version, cidr: s.cidr };
}

function toVipPort(port: NeutronPort, subnetId: string, octaviaOwned: boolean): VipPort {
  const primary = port.fixed_ips.find((ip) => ip.subnet_id === subnetId);
  if (!primary) throw new VipAllocationError(`Neutron port ${port.id} has no address on subnet ${subnetId}`);
  return {
    portId: port.id,
    networkId: port.network_id,
    subnetId,
    address: primary.ip_address,
    additionalVips: port.fixed_ips.filter((ip) => ip !== primary).map((ip) => ({ subnet_id: ip.subnet_id, ip_address: ip.ip_address, port_id: port.id })),
    octaviaOwned,
  };
}

/** Octavia's API answers: Neutron's conflicts are 409 with its message, the rest a driver error (500). */
function vipError(err: unknown, networkId: string): Error {
  if (!(err instanceof OpenStackError)) return err as Error;
  if (err.status === 409) return new ApiError(409, `The VIP IP address is already in use: ${err.detail}`);
  const message = err.status === null ? `Error creating neutron port on network ${networkId}: ${err.detail}` : err.detail;
  return new VipAllocationError(message, { cause: err });
}

function sameAddress(a: string, b: string): boolean {
  const x = ipToBigInt(a);
  const y = ipToBigInt(b);
  return !!x && !!y && x.version === y.version && x.value === y.value;
}

function ethertypeOf(addressOrCidr: string): 'IPv4' | 'IPv6' {
  return addressOrCidr.includes(':') ? 'IPv6' : 'IPv4';
}

/** The ingress rules the group must hold, by ruleKey(). */
function wantedRules(req: VipSecurityGroupRequest): Map<string, RuleSpec> {
  const ethertypes = new Set(req.vipAddresses.map(ethertypeOf));
  const primary = req.vipAddresses[0] ? ethertypeOf(req.vipAddresses[0]) : 'IPv4';
  const rules: RuleSpec[] = [];
  if (!req.vipSgIds?.length) {
    for (const l of req.listeners) {
      const first = l.protocol === 'UDP' ? 'udp' : l.protocol === 'SCTP' ? 'sctp' : 'tcp';
      const protocols = l.alsoUdp && first !== 'udp' ? [first, 'udp'] : [first];
      for (const protocol of protocols) {
        for (const range of l.ports ?? [{ from: l.protocolPort, to: l.protocolPort }]) {
          const port = { protocol, port_range_min: range.from, port_range_max: range.to };
          if (l.allowedCidrs.length === 0) {
            for (const ethertype of ethertypes) rules.push({ ...port, ethertype, remote_ip_prefix: null });
          } else {
            for (const cidr of l.allowedCidrs) {
              if (ethertypes.has(ethertypeOf(cidr))) rules.push({ ...port, ethertype: ethertypeOf(cidr), remote_ip_prefix: cidr });
            }
          }
        }
      }
    }
  }
  if (req.activeStandby) {
    for (const protocol of [VRRP_PROTOCOL, AH_PROTOCOL]) rules.push({ ethertype: primary, protocol, port_range_min: null, port_range_max: null, remote_ip_prefix: null });
    // Argonaut's election is not IP protocol 112: HMAC-authenticated UDP adverts and a TCP persistence sync.
    if (req.electionPorts) {
      const { advertUdp, syncTcp } = req.electionPorts;
      rules.push({ ethertype: primary, protocol: 'udp', port_range_min: advertUdp, port_range_max: advertUdp, remote_ip_prefix: null });
      rules.push({ ethertype: primary, protocol: 'tcp', port_range_min: syncTcp, port_range_max: syncTcp, remote_ip_prefix: null });
    }
  }
  return new Map(rules.map((r) => [ruleKey(r), r]));
}

function ruleSpecOf(r: NeutronRule): RuleSpec {
  return { ethertype: r.ethertype, protocol: r.protocol ?? '', port_range_min: r.port_range_min, port_range_max: r.port_range_max, remote_ip_prefix: r.remote_ip_prefix };
}

/** Neutron may give protocols 112/51 back by name. */
const PROTOCOL_NUMBERS: Record<string, string> = { vrrp: VRRP_PROTOCOL, ah: AH_PROTOCOL };

function ruleKey(r: RuleSpec): string {
  const protocol = PROTOCOL_NUMBERS[r.protocol.toLowerCase()] ?? r.protocol.toLowerCase();
  return [r.ethertype, protocol, r.port_range_min ?? '', r.port_range_max ?? '', r.remote_ip_prefix ?? ''].join('|');
}
