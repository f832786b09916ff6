import { isIPv4, isIPv6 } from 'node:net';
import { ipv6Bytes } from '../../common/ip-address.ts';

/** The connection facts a PROXY header carries to a member. */
export interface ProxiedConnection {
  sourceAddress: string;
  sourcePort: number;
  destinationAddress: string;
  destinationPort: number;
}

/** PROXY protocol v1 (text), as HAProxy `send-proxy` writes it. */
export function proxyV1Header(c: ProxiedConnection): Buffer {
  const family = isIPv4(c.sourceAddress) && isIPv4(c.destinationAddress) ? 'TCP4' : bothIpv6OrMapped(c) ? 'TCP6' : null;
  if (family === null) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const src = family === 'TCP6' ? toIpv6(c.sourceAddress) : c.sourceAddress;
  const dst = family === 'TCP6' ? toIpv6(c.destinationAddress) : c.destinationAddress;
  return Buffer.from(`PROXY ${family} ${src} ${dst} ${c.sourcePort} ${c.destinationPort}\r\n`, 'latin1');
}

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_VERSION_PROXY = 0x21;
const V2_AF_INET_STREAM = 0x11;
const V2_AF_INET6_STREAM = 0x21;
const V2_AF_INET_DGRAM = 0x12;
const V2_AF_INET6_DGRAM = 0x22;

/**
 * PROXY protocol v2 (binary), as HAProxy `send-proxy-v2` writes it; `tlvs` (already encoded) follow the
 * addresses, as `send-proxy-v2-ssl-cn` adds its SSL TLV.
 */
export function proxyV2Header(c: ProxiedConnection, transport: 'stream' | 'dgram' = 'stream', tlvs: Buffer | null = null): Buffer {
  const extra = tlvs === null ? 0 : tlvs.length;
  if (isIPv4(c.sourceAddress) && isIPv4(c.destinationAddress)) {
    const out = Buffer.alloc(16 + 12 + extra);
    V2_SIGNATURE.copy(out, 0);
    out[12] = V2_VERSION_PROXY;
    out[13] = transport === 'stream' ? V2_AF_INET_STREAM : V2_AF_INET_DGRAM;
    out.writeUInt16BE(12 + extra, 14);
    writeIpv4(out, 16, c.sourceAddress);
    writeIpv4(out, 20, c.destinationAddress);
    out.writeUInt16BE(c.sourcePort, 24);
    out.writeUInt16BE(c.destinationPort, 26);
    tlvs?.copy(out, 28);
    return out;
  }
  if (bothIpv6OrMapped(c)) {
    const out = Buffer.alloc(16 + 36 + extra);
    V2_SIGNATURE.copy(out, 0);
    out[12] = V2_VERSION_PROXY;
    out[13] = transport === 'stream' ? V2_AF_INET6_STREAM : V2_AF_INET6_DGRAM;
    out.writeUInt16BE(36 + extra, 14);
    ipv6Bytes(c.sourceAddress).copy(out, 16);
    ipv6Bytes(c.destinationAddress).copy(out, 32);
    out.writeUInt16BE(c.sourcePort, 48);
    out.writeUInt16BE(c.destinationPort, 50);
    tlvs?.copy(out, 52);
    return out;
  }
  const out = Buffer.alloc(16 + extra);
  V2_SIGNATURE.copy(out, 0);
  out[12] = V2_VERSION_PROXY;
  out[13] = 0x00;
  out.writeUInt16BE(extra, 14);
  tlvs?.copy(out, 16);
  return out;
}

const PP2_TYPE_SSL = 0x20;
const PP2_SUBTYPE_SSL_VERSION = 0x21;
const PP2_SUBTYPE_SSL_CN = 0x22;
const PP2_CLIENT_SSL = 0x01;
const PP2_CLIENT_CERT_CONN = 0x02;
const PP2_CLIENT_CERT_SESS = 0x04;

function tlv(type: number, value: Buffer): Buffer {
  const out = Buffer.alloc(3 + value.length);
  out[0] = type;
  out.writeUInt16BE(value.length, 1);
  value.copy(out, 3);
  return out;
}

/**
 * The PP2_TYPE_SSL TLV of HAProxy `send-proxy-v2-ssl-cn` (Octavia renders it for PROXYV2 pools behind TLS
 * listeners): client flags, verify result (0 = verified or no certificate), the TLS version and, when the
 * client presented a certificate, its CN.
 */
export function proxyV2SslTlv(facts: { version: string | null; certificate: boolean; verify: number; cn: string | undefined }): Buffer {
  const subs: Buffer[] = [];
  if (facts.version !== null) subs.push(tlv(PP2_SUBTYPE_SSL_VERSION, Buffer.from(facts.version, 'latin1')));
  if (facts.certificate && facts.cn !== undefined) subs.push(tlv(PP2_SUBTYPE_SSL_CN, Buffer.from(facts.cn, 'utf8')));
  const head = Buffer.alloc(5);
  head[0] = PP2_CLIENT_SSL | (facts.certificate ? PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS : 0);
  head.writeUInt32BE(facts.certificate ? facts.verify : 0, 1);
  return tlv(PP2_TYPE_SSL, Buffer.concat([head, ...subs]));
}

function bothIpv6OrMapped(c: ProxiedConnection): boolean {
  return (isIPv6(c.sourceAddress) || isIPv4(c.sourceAddress)) && (isIPv6(c.destinationAddress) || isIPv4(c.destinationAddress));
}

function toIpv6(address: string): string {
  return isIPv4(address) ? `::ffff:${address}` : address;
}

function writeIpv4(out: Buffer, offset: number, address: string): void {
  const parts = address.split('.');
  for (let i = 0; i < 4; i++) out[offset + i] = Number(parts[i]);
}
