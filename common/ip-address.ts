// IPv4/IPv6 addresses as numbers: parsing, formatting (RFC 5952 text) and CIDR prefixes.
import { isIP } from 'node:net';

export interface Cidr {
  version: 4 | 6;
  network: bigint;
  prefix: number;
}

export function ipToBigInt(address: string): { version: 4 | 6; value: bigint } | undefined {
  const version = isIP(address);
  if (version === 4) {
    return { version: 4, value: address.split('.').reduce((acc, octet) => (acc << 8n) + BigInt(Number(octet)), 0n) };
  }
  if (version === 6) {
    let text = address.split('%')[0]!;
    let tail: bigint[] = [];
    const v4 = text.match(/(\d+\.\d+\.\d+\.\d+)$/);
    if (v4) {
      const n = ipToBigInt(v4[1]!)!.value;
      tail = [(n >> 16n) & 0xffffn, n & 0xffffn];
      // Drop the tail and its separating ':', but keep a '::' (as in ::ffff:10.0.0.1).
      text = text.slice(0, -v4[1]!.length);
      if (text.endsWith(':') && !text.endsWith('::')) text = text.slice(0, -1);
    }
    const [head, rest] = text.includes('::') ? text.split('::') : [text, undefined];
    const headParts = head ? head.split(':').filter((p) => p !== '') : [];
    const restParts = rest ? rest.split(':').filter((p) => p !== '') : [];
    const groups = 8 - tail.length;
    const missing = groups - headParts.length - restParts.length;
    const all = [...headParts, ...Array(rest !== undefined ? missing : 0).fill('0'), ...restParts].map((g) => BigInt(`0x${g}`));
    const words = [...all, ...tail];
    if (words.length !== 8) return undefined;
    return { version: 6, value: words.reduce((acc, w) => (acc << 16n) + w, 0n) };
  }
  return undefined;
}

export function parseCidr(text: string): Cidr | undefined {
  const [addr, prefixText, extra] = text.split('/');
  if (extra !== undefined || addr === undefined) return undefined;
  const ip = ipToBigInt(addr);
  if (!ip) return undefined;
  const bits = ip.version === 4 ? 32 : 128;
  let prefix = bits;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText)) return undefined;
    prefix = Number(prefixText);
    if (prefix > bits) return undefined;
  }
  const mask = prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(bits - prefix);
  return { version: ip.version, network: ip.value & mask, prefix };
}

/** Like Python's ip_network(strict=False): 192.0.2.5/24 -> 192.0.2.0/24. */
export function normalizeCidr(text: string): string {
  const c = parseCidr(text)!;
  return `${formatIp(c.version, c.network)}/${c.prefix}`;
}

export function formatIp(version: 4 | 6, value: bigint): string {
  if (version === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  const words = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export function ipVersion(address: string): 4 | 6 | 0 {
  return isIP(address) as 4 | 6 | 0;
}

/** IPv4-mapped IPv6 (::ffff:a.b.c.d): how an IPv4 address fits a 16-byte field. */
const V4_MAPPED_PREFIX = 0xffffn << 32n;

/** The 16 bytes of an address in network order, IPv4 as IPv4-mapped IPv6; throws on anything else. */
export function ipv6Bytes(address: string): Buffer {
  const ip = ipToBigInt(address);
  if (!ip) throw new Error(`not an IP address: ${address}`);
  const value = ip.version === 4 ? V4_MAPPED_PREFIX | ip.value : ip.value;
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(value >> 64n, 0);
  b.writeBigUInt64BE(value & 0xffff_ffff_ffff_ffffn, 8);
  return b;
}

/** The text of 16 address bytes: IPv4-mapped ones as plain IPv4. */
export function addressFromIpv6Bytes(b: Buffer): string {
  const value = (b.readBigUInt64BE(0) << 64n) | b.readBigUInt64BE(8);
  if (value >> 32n === 0xffffn) return formatIp(4, value & 0xffff_ffffn);
  return formatIp(6, value);
}
