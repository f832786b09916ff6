// Plugs an amphora's namespace into the local bridge, and unplugs it: the namespace, a veth whose
// host end is on the bridge and whose other end is the amphora's eth0 (stable MAC), a management
// address from the management range, the default route via the bridge's address, and the VIP.
//
// The VIP: on eth0 for a STANDALONE amphora. The amphorae of an ACTIVE_STANDBY pair (MASTER,
// BACKUP) get no VIP: their election (amphora/vrrp) puts it on the elected MASTER's eth0; both may
// bind it meanwhile (ip_nonlocal_bind), so that the BACKUP serves as soon as it takes the VIP.
//
// With the `neutron` network driver the amphora has a Neutron port on the VIP subnet (its VRRP
// port): an amphora booted for a load balancer gets that port's address and MAC on eth0 instead of
// a management address; a spare (booted before it has a load balancer, hence a port) keeps its
// management address, and gets the port's MAC and address added when it is claimed (assignVip).
import { formatIp, ipToBigInt } from '../../../common/ip-address.ts';
import {
  addAddress, announceAddresses, createNamespace, createVeth, deleteLink, deleteNamespace, inNamespace, linkExists, listAddresses, listNamespaces, namespaceExists, setDefaultRoute, setMac, setSysctl,
} from './ip.ts';
import { AMPHORA_INTERFACE, checkPrefix, hasPrefix, hostVethName, macFor, namespaceName } from './names.ts';

export interface AmphoraNetworkOptions {
  /** Every namespace and interface name starts with `<prefix>-` (default names: see names.ts). */
  prefix: string;
  /** The bridge the amphorae are plugged into (it must exist). */
  bridge: string;
  /** The namespace the bridge lives in; the host's when absent (tests use a namespace of their own). */
  bridgeNamespace?: string;
  /** The bridge's address: the amphorae's default gateway. */
  gateway: string;
  /** Prefix length of the subnet (the management addresses are configured with it). */
  prefixLength: number;
  /** Management addresses (lb_network_ip) are taken from this range; keep it apart from the VIPs' range. */
  managementStart: string;
  managementEnd: string;
}

export interface PlugRequest {
  amphoraId: string;
  /** STANDALONE, MASTER or BACKUP; null for a spare (no VIP until assignVip()). */
  role: string | null;
  vipAddress?: string | null;
  /** The amphora's port on the VIP subnet (neutron): eth0 carries its address and MAC instead of a management address. */
  vipInterface?: VipInterface | null;
}

/** An address and MAC that eth0 must carry (a Neutron port's). */
export interface VipInterface {
  address: string;
  mac: string;
  prefixLength: number;
}

export interface PluggedAmphora {
  namespace: string;
  managementAddress: string;
}

export class AmphoraNetwork {
  private readonly first: bigint;
  private readonly last: bigint;
  /**
   * Management addresses this process gave out (address -> amphora id), until that amphora is unplugged.
   * A scan alone is not enough: a plug scanning while another one creates its namespace may not see that
   * address yet, even after the other plug has finished.
   */
  private readonly reserved = new Map<string, string>();

  constructor(readonly opts: AmphoraNetworkOptions) {
    checkPrefix(opts.prefix);
    const first = ipToBigInt(opts.managementStart);
    const last = ipToBigInt(opts.managementEnd);
    if (first?.version !== 4 || last?.version !== 4 || first.value > last.value) {
      throw new Error(`management range ${opts.managementStart}-${opts.managementEnd} is not an IPv4 range`);
    }
    this.first = first.value;
    this.last = last.value;
  }

  namespaceOf(amphoraId: string): string {
    return namespaceName(this.opts.prefix, amphoraId);
  }

  /** The command line that runs `command args...` in the amphora's namespace. */
  wrap(amphoraId: string, command: string, args: string[]): { command: string; args: string[] } {
    return inNamespace(this.namespaceOf(amphoraId), command, args);
  }

  /** Creates and plugs the amphora's namespace; a leftover of the same amphora is removed first. On failure nothing is left. */
  async plug(req: PlugRequest): Promise<PluggedAmphora> {
    const namespace = this.namespaceOf(req.amphoraId);
    await this.unplug(req.amphoraId);
    const own = req.vipInterface ?? null;
    const managementAddress = own ? own.address : await this.reserveManagementAddress(req.amphoraId);
    try {
      await createNamespace(namespace);
      await createVeth({
        netns: this.opts.bridgeNamespace,
        hostName: hostVethName(this.opts.prefix, req.amphoraId),
        bridge: this.opts.bridge,
        peerNamespace: namespace,
        peerName: AMPHORA_INTERFACE,
        peerMac: own ? own.mac : macFor(req.amphoraId),
      });
      const inside = { netns: namespace };
      await addAddress(AMPHORA_INTERFACE, `${managementAddress}/${own ? own.prefixLength : this.opts.prefixLength}`, inside);
      await setDefaultRoute(this.opts.gateway, inside);
      if (req.vipAddress && req.role) await this.addVip(namespace, req.vipAddress, req.role);
      return { namespace, managementAddress };
    } catch (err) {
      await this.unplug(req.amphoraId).catch((cleanupErr: unknown) => {
        throw new AggregateError([err, cleanupErr], `plugging amphora ${req.amphoraId} failed, and so did removing what was created`);
      });
      throw err;
    }
  }

  /** Removes the amphora's namespace and veth; idempotent. Processes still inside should be stopped first. */
  async unplug(amphoraId: string): Promise<void> {
    await deleteNamespace(this.namespaceOf(amphoraId));
    // The host end goes with the namespace, unless a process still holds the namespace open.
    await deleteLink(hostVethName(this.opts.prefix, amphoraId), { netns: this.opts.bridgeNamespace });
    for (const [address, owner] of this.reserved) if (owner === amphoraId) this.reserved.delete(address);
  }

  async isPlugged(amphoraId: string): Promise<boolean> {
    return namespaceExists(this.namespaceOf(amphoraId));
  }

  /**
   * Plumbs the VIP into a spare amphora's namespace when it is given to a load balancer; with a
   * port on the VIP subnet (neutron), eth0 takes the port's MAC and address first (its management
   * address stays).
   */
  async assignVip(amphoraId: string, vip: string | null, role: string, vipInterface?: VipInterface | null): Promise<void> {
    const namespace = this.namespaceOf(amphoraId);
    if (vipInterface) {
      await setMac(AMPHORA_INTERFACE, vipInterface.mac, { netns: namespace });
      await addAddress(AMPHORA_INTERFACE, `${vipInterface.address}/${vipInterface.prefixLength}`, { netns: namespace });
    }
    if (vip) await this.addVip(namespace, vip, role);
  }

  /**
   * STANDALONE: the VIP on eth0, announced. MASTER/BACKUP (ACTIVE_STANDBY): no VIP at all; the
   * amphorae's election adds it to the elected MASTER's eth0 and removes it, so the data plane of
   * both binds it without holding it (ip_nonlocal_bind).
   */
  private async addVip(namespace: string, vip: string, role: string): Promise<void> {
    if (role === 'MASTER' || role === 'BACKUP') {
      for (const setting of ['net.ipv4.ip_nonlocal_bind=1', 'net.ipv6.ip_nonlocal_bind=1']) await setSysctl(setting, { netns: namespace });
      return;
    }
    await addAddress(AMPHORA_INTERFACE, `${vip}/32`, { netns: namespace });
    // The VIP may have been another amphora's a moment ago (failover): the neighbours learn its new MAC now.
    await announceAddresses(AMPHORA_INTERFACE, { netns: namespace });
  }

  /** The lowest management address neither configured in one of our namespaces nor given out by this process. */
  private async reserveManagementAddress(amphoraId: string): Promise<string> {
    const used = new Set<string>();
    for (const ns of (await listNamespaces()).filter((n) => hasPrefix(this.opts.prefix, n))) {
      for (const cidr of await addressesIn(ns)) used.add(cidr.split('/')[0]!);
    }
    // `reserved` is read after the scan, with no await before the pick: two plugs at once (a boot and
    // a spare top-up) never pick the same address.
    for (let a = this.first; a <= this.last; a++) {
      const address = formatIp(4, a);
      if (!used.has(address) && !this.reserved.has(address)) {
        this.reserved.set(address, amphoraId);
        return address;
      }
    }
    throw new Error(`no free management address left in ${formatIp(4, this.first)}-${formatIp(4, this.last)}`);
  }
}

/** The addresses of a namespace's eth0: none while it is being created (its address is then pending) or once it is gone. */
async function addressesIn(ns: string): Promise<string[]> {
  const where = { netns: ns };
  try {
    return (await linkExists(AMPHORA_INTERFACE, where)) ? await listAddresses(AMPHORA_INTERFACE, where) : [];
  } catch (err) {
    if (!(await namespaceExists(ns))) return []; // removed meanwhile
    throw err;
  }
}
