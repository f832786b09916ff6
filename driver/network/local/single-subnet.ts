// A network driver that knows one IPv4 subnet and hands out its VIP addresses itself: the base of
// the loopback driver (127.0.100.0/24 on lo) and of the local driver (a host bridge for netns
// amphorae). There are no ports, QoS policies or security groups.
//
// A VIP is taken when a load balancer that is not DELETED has it as vip_address. An address handed
// out is also *reserved* in memory until the load balancer row that uses it can be seen in the
// database (or its transaction rolled back): the API allocates inside its create transaction, so on
// MariaDB two concurrent creates would otherwise both pick the lowest free address before either row
// is committed. (On SQLite the transactions are serialised anyway.) The reservations protect one
// process: these subnets are local to one host, served by one controller process.
import { Op, type Transaction } from 'sequelize';
import { ApiError, errors } from '../../../api/errors.ts';
import { formatIp, ipToBigInt, parseCidr } from '../../../common/ip-address.ts';
import type { Database, Row } from '../../../common/db/database.ts';
import type { NetworkDriver, SubnetInfo } from '../network-driver.ts';

export interface SingleSubnetOptions {
  /** The driver's name (NetworkDriver.name). */
  name: string;
  db: Database;
  subnetId: string;
  networkId: string;
  /** IPv4 CIDR, e.g. 127.0.100.0/24. */
  cidr: string;
  /** First and last address handed out (inclusive); requested addresses must lie in this range too. */
  allocationStart: string;
  allocationEnd: string;
  /** How long a reservation made without a transaction is kept when its row never appears (rolled back). */
  reservationTtlMs?: number;
}

/** The request of NetworkDriver.allocateVipAddress, plus the API's transaction when it passes one. */
export interface VipAddressRequest {
  subnetId: string;
  address: string | null;
  loadBalancerId: string;
  transaction?: Transaction;
}

interface Reservation {
  loadBalancerId: string;
  transaction: Transaction | undefined;
  expiresAt: number;
}

const DEFAULT_RESERVATION_TTL_MS = 5 * 60_000;

export class SingleSubnetNetworkDriver implements NetworkDriver {
  readonly name: string;
  readonly subnet: SubnetInfo & { cidr: string };
  private readonly db: Database;
  private readonly network: bigint;
  private readonly broadcast: bigint;
  private readonly first: bigint;
  private readonly last: bigint;
  private readonly ttlMs: number;
  private readonly reserved = new Map<string, Reservation>();

  constructor(opts: SingleSubnetOptions) {
    const cidr = parseCidr(opts.cidr);
    if (!cidr || cidr.version !== 4) throw new Error(`${opts.name} network: ${opts.cidr} is not an IPv4 CIDR`);
    this.name = opts.name;
    this.db = opts.db;
    this.network = cidr.network;
    this.broadcast = cidr.network + (1n << BigInt(32 - cidr.prefix)) - 1n;
    this.subnet = { id: opts.subnetId, networkId: opts.networkId, ipVersion: 4, cidr: `${formatIp(4, cidr.network)}/${cidr.prefix}` };
    this.first = this.hostAddress(opts.allocationStart, 'allocationStart');
    this.last = this.hostAddress(opts.allocationEnd, 'allocationEnd');
    if (this.first > this.last) throw new Error(`${opts.name} network: allocationStart ${opts.allocationStart} is after allocationEnd ${opts.allocationEnd}`);
    this.ttlMs = opts.reservationTtlMs ?? DEFAULT_RESERVATION_TTL_MS;
  }

  async getSubnet(subnetId: string): Promise<SubnetInfo | undefined> {
    return subnetId === this.subnet.id ? { ...this.subnet } : undefined;
  }

  async getNetworkSubnets(networkId: string): Promise<SubnetInfo[] | undefined> {
    return networkId === this.subnet.networkId ? [{ ...this.subnet }] : undefined;
  }

  async getPort(_portId: string): Promise<undefined> {
    return undefined;
  }

  async qosPolicyExists(_id: string): Promise<boolean> {
    return false;
  }

  async securityGroupExists(_id: string): Promise<boolean> {
    return false;
  }

  /** Whether an address belongs to this subnet (network and broadcast included). */
  contains(address: string): boolean {
    const ip = ipToBigInt(address);
    return !!ip && ip.version === 4 && ip.value >= this.network && ip.value <= this.broadcast;
  }

  /** Whether an address lies in the range VIPs are handed out from. */
  inAllocationRange(address: string): boolean {
    const ip = ipToBigInt(address);
    return !!ip && ip.version === 4 && ip.value >= this.first && ip.value <= this.last;
  }

  async allocateVipAddress(req: VipAddressRequest): Promise<string> {
    if (req.subnetId !== this.subnet.id) throw errors.invalidSubresource('Subnet', req.subnetId);
    const requested = req.address === null ? null : this.requestedAddress(req.address);
    const taken = await this.takenAddresses(req.transaction);
    let chosen: bigint | undefined;
    if (requested !== null) {
      if (taken.has(requested)) throw conflict(`IP address ${req.address} already allocated in subnet ${this.subnet.id}.`);
      chosen = requested;
    } else {
      for (let a = this.first; a <= this.last; a++) {
        if (!taken.has(a)) {
          chosen = a;
          break;
        }
      }
      if (chosen === undefined) throw conflict(`No more IP addresses available on network ${this.subnet.networkId}.`);
    }
    // No await between reading the taken set and reserving: concurrent allocations in this process
    // see each other's reservations.
    const address = formatIp(4, chosen);
    this.reserved.set(address, { loadBalancerId: req.loadBalancerId, transaction: req.transaction, expiresAt: Date.now() + this.ttlMs });
    return address;
  }

  /** Addresses in use by load balancers that are not DELETED, plus live reservations. */
  private async takenAddresses(transaction: Transaction | undefined): Promise<Set<bigint>> {
    const reservedIds = [...this.reserved.values()].map((r) => r.loadBalancerId);
    const rows = (await this.db.models.load_balancer.findAll({
      attributes: ['id', 'vip_address', 'provisioning_status'],
      where: { [Op.or]: [{ provisioning_status: { [Op.ne]: 'DELETED' } }, ...(reservedIds.length ? [{ id: reservedIds }] : [])] },
      raw: true,
      transaction,
    })) as Row[];
    const seen = new Set(rows.map((r) => r.id as string));
    const taken = new Set<bigint>();
    for (const row of rows) {
      if (row.provisioning_status === 'DELETED' || !row.vip_address) continue;
      const ip = ipToBigInt(row.vip_address);
      if (ip && ip.version === 4) taken.add(ip.value);
    }
    const now = Date.now();
    for (const [address, r] of this.reserved) {
      // Settled: its row is visible (the row now says whether the address is taken), its
      // transaction rolled back, or (made without a transaction) it is too old to be in flight.
      const settled = seen.has(r.loadBalancerId) || rolledBack(r.transaction) || (!r.transaction && now >= r.expiresAt);
      if (settled) this.reserved.delete(address);
      else taken.add(ipToBigInt(address)!.value);
    }
    return taken;
  }

  private requestedAddress(address: string): bigint {
    const ip = ipToBigInt(address);
    if (!ip || !this.contains(address)) throw errors.validation(`VIP address ${address} is not in subnet ${this.subnet.id}.`);
    if (ip.value < this.first || ip.value > this.last) {
      throw errors.validation(
        `VIP address ${address} is outside the allocation range ${formatIp(4, this.first)}-${formatIp(4, this.last)} of subnet ${this.subnet.id}.`,
      );
    }
    return ip.value;
  }

  private hostAddress(address: string, what: string): bigint {
    const ip = ipToBigInt(address);
    if (!ip || ip.version !== 4 || ip.value <= this.network || ip.value >= this.broadcast) {
      throw new Error(`${this.name} network: ${what} ${address} is not a host address of ${this.subnet.cidr}`);
    }
    return ip.value;
  }
}

/** Sequelize sets `finished` on a transaction when it ends; its typings leave the field out. */
function rolledBack(t: Transaction | undefined): boolean {
  return (t as (Transaction & { finished?: 'commit' | 'rollback' }) | undefined)?.finished === 'rollback';
}

/** 409, as Neutron answers for a taken or exhausted address (Octavia wraps Neutron's refusal in a 500). */
const conflict = (message: string) => new ApiError(409, message);
