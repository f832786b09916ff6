// The local network driver: one IPv4 subnet on a Linux bridge of this host, whose address is the
// subnet's gateway. The subnet's addresses are split in two ranges: VIPs (handed out like the
// loopback driver's) and amphora management addresses (taken by the netns compute driver, see
// amphoraNetwork()). By default the addresses other than the gateway are split in two halves.
import { formatIp, ipToBigInt, parseCidr } from '../../../common/ip-address.ts';
import type { Database } from '../../../common/db/database.ts';
import type { AmphoraNetworkOptions } from './amphora-plumbing.ts';
import { ensureBridge, type Where } from './ip.ts';
import { SingleSubnetNetworkDriver } from './single-subnet.ts';

export interface LocalNetworkOptions {
  db: Database;
  subnetId: string;
  networkId: string;
  /** The subnet, e.g. 172.31.0.0/24. */
  cidr: string;
  /** The host bridge's address in the subnet (default: the first host address). */
  gateway?: string;
  /** VIPs are handed out from this range (default: the lower half of the addresses other than the gateway). */
  allocationStart?: string;
  allocationEnd?: string;
  /** Amphora management addresses come from this range (default: the upper half). */
  managementStart?: string;
  managementEnd?: string;
}

export class LocalNetworkDriver extends SingleSubnetNetworkDriver {
  /** The bridge's address, the amphorae's default gateway. */
  readonly gateway: string;
  readonly prefixLength: number;
  readonly managementStart: string;
  readonly managementEnd: string;

  constructor(opts: LocalNetworkOptions) {
    const cidr = parseCidr(opts.cidr);
    if (!cidr || cidr.version !== 4 || cidr.prefix > 29) throw new Error(`local network: cidr ${opts.cidr} must be an IPv4 subnet of at least 8 addresses`);
    const broadcast = cidr.network + (1n << BigInt(32 - cidr.prefix)) - 1n;
    const gateway = opts.gateway ?? formatIp(4, cidr.network + 1n);
    const gw = ipToBigInt(gateway);
    if (gw?.version !== 4 || gw.value <= cidr.network || gw.value >= broadcast) {
      throw new Error(`local network: gateway ${gateway} is not a host address of ${opts.cidr}`);
    }
    // The default halves: the host addresses, less the gateway when it is at either end.
    let low = cidr.network + 1n;
    let high = broadcast - 1n;
    if (gw.value === low) low++;
    else if (gw.value === high) high--;
    const middle = low + (high - low + 1n) / 2n;
    const allocationStart = opts.allocationStart ?? formatIp(4, low);
    const allocationEnd = opts.allocationEnd ?? formatIp(4, middle - 1n);
    super({ name: 'local', db: opts.db, subnetId: opts.subnetId, networkId: opts.networkId, cidr: opts.cidr, allocationStart, allocationEnd });

    this.gateway = gateway;
    this.prefixLength = cidr.prefix;
    this.managementStart = opts.managementStart ?? formatIp(4, middle);
    this.managementEnd = opts.managementEnd ?? formatIp(4, high);
    const management = [ipToBigInt(this.managementStart), ipToBigInt(this.managementEnd)];
    if (!this.contains(this.managementStart) || !this.contains(this.managementEnd) || management[0]!.value > management[1]!.value) {
      throw new Error(`local network: management range ${this.managementStart}-${this.managementEnd} is not a range of ${this.subnet.cidr}`);
    }
    const inManagement = (address: string) => {
      const v = ipToBigInt(address)!.value;
      return v >= management[0]!.value && v <= management[1]!.value;
    };
    if (this.inAllocationRange(gateway) || inManagement(gateway)) throw new Error(`local network: gateway ${gateway} lies in the VIP or the management range`);
    if (inManagement(allocationStart) || inManagement(allocationEnd) || this.inAllocationRange(this.managementStart)) {
      throw new Error(`local network: the VIP range ${allocationStart}-${allocationEnd} and the management range ${this.managementStart}-${this.managementEnd} overlap`);
    }
  }

  /** Creates the bridge (if missing) with the gateway address and brings it up. */
  async ensureBridge(bridge: string, where: Where = {}): Promise<void> {
    await ensureBridge(bridge, { ...where, address: `${this.gateway}/${this.prefixLength}` });
  }

  /** What the netns compute driver needs to plug amphorae into this subnet. */
  amphoraNetwork(opts: { prefix: string; bridge: string; bridgeNamespace?: string }): AmphoraNetworkOptions {
    return { ...opts, gateway: this.gateway, prefixLength: this.prefixLength, managementStart: this.managementStart, managementEnd: this.managementEnd };
  }
}
