// Floating IPs for the `local` network driver, as Neutron's L3 agent does them: an external network
// (a bridge `<prefix>-xbr` in a namespace of its own, `<prefix>-ext`) and a router namespace
// (`<prefix>-router`) with a leg on each side: `qg0` on the external bridge (the router's external
// address and every floating IP) and `eth0` on the VIP's bridge (routerInternalAddress). A floating
// IP associated with a VIP is DNATed to it; the router SNATs that traffic to its internal address
// (the amphorae route to the bridge's gateway, not to the router, so replies must come back to the
// router: members and amphorae see the router's address, not the external client's), and SNATs
// traffic from the VIP to the external network to the floating IP.
//
// The rules are one nftables table (`ip argonaut_fip`) in the router namespace, rewritten whole
// (atomically) at each change. The router's internal leg is called eth0 so that the netns compute
// driver never gives its address to an amphora (it skips the eth0 addresses of the prefix's namespaces).
import { execFile } from 'node:child_process';
import { isIPv4 } from 'node:net';
import { formatIp, parseCidr } from '../../../common/ip-address.ts';
import {
  addAddress, announceAddresses, createNamespace, createVeth, deleteAddress, deleteLink, deleteNamespace, ensureBridge, inNamespace, listAddresses, namespaceExists, setSysctl,
} from './ip.ts';
import { checkPrefix, MAX_INTERFACE_NAME } from './names.ts';

export interface FloatingNetworkOptions {
  prefix: string;
  /** The external network, e.g. 10.222.50.0/24. */
  externalCidr: string;
  /** The router's address on it (the first host address by default). */
  routerAddress?: string;
  /** The VIPs' bridge (the local network driver's) and the namespace it lives in (the host's when absent). */
  internalBridge: string;
  internalBridgeNamespace?: string;
  /** The router's address on the VIPs' subnet (outside its VIP range). */
  routerInternalAddress: string;
  internalPrefixLength: number;
}

const EXTERNAL_LEG = 'qg0';
const INTERNAL_LEG = 'eth0';
const TABLE = 'argonaut_fip';

export class LocalFloatingIps {
  readonly externalNamespace: string;
  readonly routerNamespace: string;
  readonly externalBridge: string;
  readonly routerAddress: string;
  readonly externalPrefixLength: number;
  /** floating IP -> VIP */
  private readonly associations = new Map<string, string>();

  constructor(private readonly opts: FloatingNetworkOptions) {
    checkPrefix(opts.prefix);
    const cidr = parseCidr(opts.externalCidr);
    if (!cidr || cidr.version !== 4 || cidr.prefix > 30) throw new Error(`floating network: ${opts.externalCidr} is not an IPv4 subnet of at least 4 addresses`);
    if (!isIPv4(opts.routerInternalAddress)) throw new Error(`floating network: routerInternalAddress ${opts.routerInternalAddress} is not an IPv4 address`);
    this.externalNamespace = `${opts.prefix}-ext`;
    this.routerNamespace = `${opts.prefix}-router`;
    this.externalBridge = `${opts.prefix}-xbr`;
    this.externalPrefixLength = cidr.prefix;
    this.routerAddress = opts.routerAddress ?? formatIp(4, cidr.network + 1n);
    for (const name of [this.externalBridge, this.hostEnd('rqg'), this.hostEnd('rqr')]) {
      if (name.length > MAX_INTERFACE_NAME) throw new Error(`interface name ${name} is too long`);
    }
  }

  /** The external bridge's namespace, for plugging external hosts (tests, an uplink). */
  get external(): { namespace: string; bridge: string; prefixLength: number; gateway: string } {
    return { namespace: this.externalNamespace, bridge: this.externalBridge, prefixLength: this.externalPrefixLength, gateway: this.routerAddress };
  }

  /** Creates the external network and the router (idempotent: what exists is kept). */
  async ensure(): Promise<void> {
    if (!(await namespaceExists(this.externalNamespace))) {
      await createNamespace(this.externalNamespace);
      await ensureBridge(this.externalBridge, { netns: this.externalNamespace });
    }
    if (await namespaceExists(this.routerNamespace)) return;
    await createNamespace(this.routerNamespace);
    try {
      await createVeth({ netns: this.externalNamespace, hostName: this.hostEnd('rqg'), bridge: this.externalBridge, peerNamespace: this.routerNamespace, peerName: EXTERNAL_LEG });
      await createVeth({ netns: this.opts.internalBridgeNamespace, hostName: this.hostEnd('rqr'), bridge: this.opts.internalBridge, peerNamespace: this.routerNamespace, peerName: INTERNAL_LEG });
      const inRouter = { netns: this.routerNamespace };
      await addAddress(EXTERNAL_LEG, `${this.routerAddress}/${this.externalPrefixLength}`, inRouter);
      await addAddress(INTERNAL_LEG, `${this.opts.routerInternalAddress}/${this.opts.internalPrefixLength}`, inRouter);
      await setSysctl('net.ipv4.ip_forward=1', inRouter);
      await this.writeRules();
    } catch (err) {
      await this.remove();
      throw err;
    }
  }

  /** Associates a floating IP of the external network with a VIP (replacing an earlier association of it). */
  async associate(floatingIp: string, vip: string): Promise<void> {
    if (!isIPv4(floatingIp) || !isIPv4(vip)) throw new Error(`floating IP ${floatingIp} and VIP ${vip} must be IPv4 addresses`);
    if (floatingIp === this.routerAddress) throw new Error(`${floatingIp} is the router's own address`);
    await this.ensure();
    this.associations.set(floatingIp, vip);
    await this.writeRules();
    const where = { netns: this.routerNamespace };
    await addAddress(EXTERNAL_LEG, `${floatingIp}/32`, where);
    await announceAddresses(EXTERNAL_LEG, where);
  }

  async disassociate(floatingIp: string): Promise<void> {
    if (!this.associations.delete(floatingIp)) return;
    await this.writeRules();
    await deleteAddress(EXTERNAL_LEG, `${floatingIp}/32`, { netns: this.routerNamespace });
  }

  list(): Array<{ floatingIp: string; vip: string }> {
    return [...this.associations].map(([floatingIp, vip]) => ({ floatingIp, vip }));
  }

  /** The floating IPs configured on the router's external leg (what answers ARP outside). */
  async plumbed(): Promise<string[]> {
    return (await listAddresses(EXTERNAL_LEG, { netns: this.routerNamespace })).filter((a) => a.endsWith('/32')).map((a) => a.slice(0, -3));
  }

  /** Removes the router and the external network (and every association). */
  async remove(): Promise<void> {
    this.associations.clear();
    await deleteNamespace(this.routerNamespace);
    await deleteLink(this.hostEnd('rqr'), { netns: this.opts.internalBridgeNamespace });
    await deleteNamespace(this.externalNamespace);
  }

  private hostEnd(suffix: string): string {
    return `${this.opts.prefix}-${suffix}`;
  }

  private async writeRules(): Promise<void> {
    const dnat = [...this.associations].map(([fip, vip]) => `    ip daddr ${fip} dnat to ${vip}`);
    const snat = [...this.associations].map(([fip, vip]) => `    oifname "${EXTERNAL_LEG}" ip saddr ${vip} snat to ${fip}`);
    const ruleset = [
      `table ip ${TABLE} {}`,
      `delete table ip ${TABLE}`,
      `table ip ${TABLE} {`,
      '  chain prerouting {',
      '    type nat hook prerouting priority dstnat; policy accept;',
      ...dnat,
      '  }',
      '  chain postrouting {',
      '    type nat hook postrouting priority srcnat; policy accept;',
      `    ct status dnat oifname "${INTERNAL_LEG}" snat to ${this.opts.routerInternalAddress}`,
      ...snat,
      '  }',
      '}',
      '',
    ].join('\n');
    const cmd = inNamespace(this.routerNamespace, 'nft', ['-f', '-']);
    await new Promise<void>((resolve, reject) => {
      const child = execFile(cmd.command, cmd.args, (err, _stdout, stderr) => (err ? reject(new Error(`nft in ${this.routerNamespace} failed: ${stderr.trim() || err.message}`)) : resolve()));
      child.stdin!.end(ruleset);
    });
  }
}
