import { BlockList, isIPv4 } from 'node:net';

/** Sockets on dual-stack servers report IPv4 peers as `::ffff:a.b.c.d`; the domain talks in plain IPv4. */
export function plainAddress(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

export function familyOf(address: string): 'ipv4' | 'ipv6' {
  return isIPv4(address) ? 'ipv4' : 'ipv6';
}

/** allowed_cidrs: an empty list admits everyone. */
export class CidrFilter {
  private readonly list: BlockList | null;

  constructor(cidrs: readonly string[]) {
    if (cidrs.length === 0) {
      this.list = null;
      return;
    }
    const list = new BlockList();
    for (const cidr of cidrs) {
      const [network, bits] = cidr.split('/');
      list.addSubnet(network, Number(bits), familyOf(network));
    }
    this.list = list;
  }

  admits(address: string): boolean {
    return this.list === null || this.list.check(address, familyOf(address));
  }
}

/** Applies a persistence granularity (netmask or prefix length) to an address, for stick-table keys. */
export function maskAddress(address: string, granularity: string | null): string {
  if (granularity === null) return address;
  if (isIPv4(address)) {
    const prefix = /^\d+$/.test(granularity) ? Math.min(Number(granularity), 32) : netmaskBits(granularity);
    const value = address.split('.').reduce((acc, p) => ((acc << 8) | Number(p)) >>> 0, 0);
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    const masked = (value & mask) >>> 0;
    return `${masked >>> 24}.${(masked >>> 16) & 255}.${(masked >>> 8) & 255}.${masked & 255}/${prefix}`;
  }
  if (!/^\d+$/.test(granularity)) return address;
  return `${ipv6Prefix(address, Math.min(Number(granularity), 128))}`;
}

function netmaskBits(mask: string): number {
  const value = mask.split('.').reduce((acc, p) => ((acc << 8) | Number(p)) >>> 0, 0);
  let bits = 0;
  for (let i = 31; i >= 0 && (value >>> i) & 1; i--) bits++;
  return bits;
}

function ipv6Prefix(address: string, prefix: number): string {
  const [head, tail = ''] = address.split('::');
  const headParts = head ? head.split(':') : [];
  const tailParts = tail ? tail.split(':') : [];
  const groups = [...headParts, ...new Array(8 - headParts.length - tailParts.length).fill('0'), ...tailParts].map((g) =>
    parseInt(g || '0', 16),
  );
  const out = groups.map((g, i) => {
    const keep = Math.max(0, Math.min(16, prefix - i * 16));
    const mask = keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
    return (g & mask).toString(16);
  });
  return `${out.join(':')}/${prefix}`;
}
