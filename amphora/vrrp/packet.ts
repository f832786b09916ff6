// The advert: a fixed-size UDP payload authenticated with HMAC-SHA256 over everything before the MAC.
//
//   0  magic "ARVR"        4 bytes
//   4  version             u8 (1)
//   5  routerId            u8 (one election per pair; a packet of another pair is ignored)
//   6  priority            u8 (0 = the sender resigns: it has released the VIP)
//   7  state               u8 (1 BACKUP, 2 MASTER, 3 FAULT)
//   8  advertIntervalMs    u32
//  12  epoch               u64 (the sender's boot epoch: a new, larger one after every start)
//  20  seq                 u64 (strictly increasing within an epoch)
//  28  sender              16 bytes (the sender's address, IPv4-mapped for IPv4; must match the UDP source)
//  44  hmac                32 bytes
import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { addressFromIpv6Bytes, ipv6Bytes } from '../../common/ip-address.ts';

export const ADVERT_BYTES = 76;
const SIGNED_BYTES = 44;
const MAGIC = Buffer.from('ARVR', 'latin1');
const VERSION = 1;

export const WIRE_STATES = { BACKUP: 1, MASTER: 2, FAULT: 3 } as const;
export type WireState = keyof typeof WIRE_STATES;

export interface Advert {
  routerId: number;
  priority: number;
  state: WireState;
  advertIntervalMs: number;
  epoch: bigint;
  seq: bigint;
  /** The sender's address as text (IPv4 dotted or IPv6). */
  sender: string;
}

/** A boot epoch: milliseconds since 1970 shifted left 16 bits, plus 16 random bits. Larger after a restart. */
export function newEpoch(nowMs = Date.now()): bigint {
  return (BigInt(nowMs) << 16n) | BigInt(randomInt(0, 65536));
}

/** IPv4 addresses travel IPv4-mapped (::ffff:a.b.c.d) so that both families fit the 16-byte sender field. */
export const addressBytes = ipv6Bytes;

/** The canonical text of an address (as Node reports UDP sources), so that the sender field compares equal. */
export function canonicalAddress(address: string): string {
  return isIPv4(address) ? address : addressFromIpv6Bytes(addressBytes(address));
}

/** Orders two addresses numerically (IPv4 sorts below IPv6): negative, 0 or positive. */
export function compareAddresses(a: string, b: string): number {
  return Buffer.compare(addressBytes(a), addressBytes(b));
}

export function encodeAdvert(advert: Advert, key: Buffer): Buffer {
  const b = Buffer.alloc(ADVERT_BYTES);
  MAGIC.copy(b, 0);
  b.writeUInt8(VERSION, 4);
  b.writeUInt8(advert.routerId, 5);
  b.writeUInt8(advert.priority, 6);
  b.writeUInt8(WIRE_STATES[advert.state], 7);
  b.writeUInt32BE(advert.advertIntervalMs, 8);
  b.writeBigUInt64BE(advert.epoch, 12);
  b.writeBigUInt64BE(advert.seq, 20);
  addressBytes(advert.sender).copy(b, 28);
  createHmac('sha256', key).update(b.subarray(0, SIGNED_BYTES)).digest().copy(b, SIGNED_BYTES);
  return b;
}

export type DecodeResult = { ok: true; advert: Advert } | { ok: false; reason: 'malformed' | 'bad-mac' };

/** Checks the size, magic, version and MAC, then decodes. Nothing is parsed before the MAC is checked. */
export function decodeAdvert(b: Buffer, key: Buffer): DecodeResult {
  if (b.length !== ADVERT_BYTES || !b.subarray(0, 4).equals(MAGIC) || b[4] !== VERSION) return { ok: false, reason: 'malformed' };
  const mac = createHmac('sha256', key).update(b.subarray(0, SIGNED_BYTES)).digest();
  if (!timingSafeEqual(mac, b.subarray(SIGNED_BYTES))) return { ok: false, reason: 'bad-mac' };
  const state = (Object.keys(WIRE_STATES) as WireState[]).find((s) => WIRE_STATES[s] === b[7]);
  if (!state) return { ok: false, reason: 'malformed' };
  return {
    ok: true,
    advert: {
      routerId: b[5],
      priority: b[6],
      state,
      advertIntervalMs: b.readUInt32BE(8),
      epoch: b.readBigUInt64BE(12),
      seq: b.readBigUInt64BE(20),
      sender: addressFromIpv6Bytes(b.subarray(28, 44)),
    },
  };
}

/** The shared key as HMAC key bytes (the configured text, UTF-8). */
export function authKeyBytes(authKey: string): Buffer {
  return Buffer.from(authKey, 'utf8');
}

export type RejectReason = 'malformed' | 'bad-mac' | 'unknown-peer' | 'sender-mismatch' | 'other-router' | 'replay';

/**
 * Per-peer anti-replay: within an epoch the sequence must increase; a larger epoch (the peer
 * restarted) is accepted and starts over. A smaller epoch is a replay of an earlier life, except when
 * the peer has been silent for `staleAfterMs` (its clock may have gone back across a restart): then it
 * is accepted, since the worst a replayed advert can do is make this side wait, never take the VIP.
 */
export class ReplayGuard {
  private readonly last = new Map<string, { epoch: bigint; seq: bigint; at: number }>();

  constructor(public staleAfterMs: number) {}

  accept(peer: string, epoch: bigint, seq: bigint, now: number): boolean {
    const prev = this.last.get(peer);
    const fresh =
      !prev ||
      epoch > prev.epoch ||
      (epoch === prev.epoch && seq > prev.seq) ||
      (epoch < prev.epoch && now - prev.at > this.staleAfterMs);
    if (fresh) this.last.set(peer, { epoch, seq, at: now });
    return fresh;
  }
}
