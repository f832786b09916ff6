// The advert on the wire: authentication, replay protection and the checks of a received datagram.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { VrrpConfigSchema } from '../../amphora/vrrp/config.ts';
import { ADVERT_BYTES, canonicalAddress, compareAddresses, decodeAdvert, encodeAdvert, newEpoch, type Advert } from '../../amphora/vrrp/packet.ts';
import { UdpTransport } from '../../amphora/vrrp/transport.ts';

const KEY = Buffer.from('argonaut-test-key-0123456789');
const quiet = pino({ level: 'silent' });

const sample = (over: Partial<Advert> = {}): Advert => ({
  routerId: 7,
  priority: 100,
  state: 'MASTER',
  advertIntervalMs: 50,
  epoch: 123456789n,
  seq: 42n,
  sender: '10.221.0.1',
  ...over,
});

describe('vrrp packet', () => {
  it('round-trips every field, IPv4 and IPv6 senders', () => {
    for (const sender of ['10.221.0.1', 'fd00:221::1']) {
      const a = sample({ sender });
      const b = encodeAdvert(a, KEY);
      expect(b.length).toBe(ADVERT_BYTES);
      expect(decodeAdvert(b, KEY)).toEqual({ ok: true, advert: a });
    }
  });

  it('rejects a wrong key and any flipped bit', () => {
    const b = encodeAdvert(sample(), KEY);
    expect(decodeAdvert(b, Buffer.from('another-key-of-some-length'))).toEqual({ ok: false, reason: 'bad-mac' });
    const raised = Buffer.from(b);
    raised[6] = 255; // a stranger raising the priority
    expect(decodeAdvert(raised, KEY)).toEqual({ ok: false, reason: 'bad-mac' });
    expect(decodeAdvert(b.subarray(0, 60), KEY)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('orders addresses numerically (the tie-break), not as text', () => {
    expect(compareAddresses('10.221.0.10', '10.221.0.9')).toBeGreaterThan(0);
    expect(compareAddresses('10.221.0.1', '10.221.0.1')).toBe(0);
    expect(compareAddresses('fd00::2', 'fd00::10')).toBeLessThan(0);
    expect(canonicalAddress('FD00:0:0:0:0:0:0:1')).toBe('fd00::1');
  });

  it('an IPv4 peer seen as an IPv4-mapped source (dual-stack socket) is the same peer', () => {
    expect(canonicalAddress('::ffff:10.221.0.9')).toBe('10.221.0.9');
    expect(canonicalAddress('0:0:0:0:0:ffff:10.221.0.9')).toBe('10.221.0.9');
    expect(compareAddresses('::ffff:10.221.0.9', '10.221.0.9')).toBe(0);
  });

  it('a new epoch is larger than one taken earlier', () => {
    expect(newEpoch(1000)).toBeLessThan(newEpoch(1001));
  });
});

describe('vrrp transport: what is accepted', () => {
  const transport = () =>
    new UdpTransport({ localAddress: '10.221.0.2', peers: ['10.221.0.1'], port: 5112, routerId: 7, key: KEY, epoch: 1n, staleAfterMs: 10_000 }, quiet);

  it('accepts a fresh advert of a peer, then rejects its replay and an older sequence', () => {
    const t = transport();
    const first = encodeAdvert(sample({ seq: 10n }), KEY);
    expect(t.accept(first, '10.221.0.1', 0)?.seq).toBe(10n);
    expect(t.accept(first, '10.221.0.1', 1)).toBeNull();
    expect(t.accept(encodeAdvert(sample({ seq: 9n }), KEY), '10.221.0.1', 2)).toBeNull();
    expect(t.accept(encodeAdvert(sample({ seq: 11n }), KEY), '10.221.0.1', 3)?.seq).toBe(11n);
    expect(t.rejected.replay).toBe(2);
  });

  it('accepts a restarted peer (larger epoch, sequence from 1); rejects an earlier life unless the peer has been silent long', () => {
    const t = transport();
    expect(t.accept(encodeAdvert(sample({ epoch: 100n, seq: 500n }), KEY), '10.221.0.1', 0)).not.toBeNull();
    expect(t.accept(encodeAdvert(sample({ epoch: 200n, seq: 1n }), KEY), '10.221.0.1', 100)).not.toBeNull();
    expect(t.accept(encodeAdvert(sample({ epoch: 100n, seq: 501n }), KEY), '10.221.0.1', 200)).toBeNull();
    expect(t.accept(encodeAdvert(sample({ epoch: 100n, seq: 502n }), KEY), '10.221.0.1', 200 + 10_001)).not.toBeNull();
  });

  it('rejects a stranger, a forged sender, another group and a bad MAC', () => {
    const t = transport();
    expect(t.accept(encodeAdvert(sample({ sender: '10.221.0.66' }), KEY), '10.221.0.66', 0)).toBeNull();
    expect(t.accept(encodeAdvert(sample({ sender: '10.221.0.2' }), KEY), '10.221.0.1', 0)).toBeNull(); // our own advert reflected
    expect(t.accept(encodeAdvert(sample({ routerId: 8 }), KEY), '10.221.0.1', 0)).toBeNull();
    expect(t.accept(encodeAdvert(sample(), Buffer.from('not-the-shared-key-at-all')), '10.221.0.1', 0)).toBeNull();
    expect(t.rejected).toMatchObject({ 'unknown-peer': 1, 'sender-mismatch': 1, 'other-router': 1, 'bad-mac': 1, replay: 0 });
  });

  it('signs what it sends with its epoch and address', () => {
    const t = transport();
    const d = decodeAdvert(t.encode({ priority: 90, state: 'MASTER', advertIntervalMs: 50, seq: 3n }), KEY);
    expect(d).toEqual({ ok: true, advert: { routerId: 7, priority: 90, state: 'MASTER', advertIntervalMs: 50, epoch: 1n, seq: 3n, sender: '10.221.0.2' } });
  });
});

describe('vrrp config', () => {
  const base = { interface: 'eth0', vips: ['10.221.0.100'], localAddress: '10.221.0.1', peers: ['10.221.0.2'], priority: 100, authKey: 'k'.repeat(16) };
  it('fills the defaults: 1 s interval, no preemption, 3 dead intervals', () => {
    expect(VrrpConfigSchema.parse(base)).toMatchObject({ advertIntervalMs: 1000, preempt: false, deadIntervals: 3, port: 5112, routerId: 1 });
  });
  it('refuses a short key, a peer of another family, itself as peer, priority 0 or 255', () => {
    expect(VrrpConfigSchema.safeParse({ ...base, authKey: 'short' }).success).toBe(false);
    expect(VrrpConfigSchema.safeParse({ ...base, peers: ['fd00::2'] }).success).toBe(false);
    expect(VrrpConfigSchema.safeParse({ ...base, peers: ['10.221.0.1'] }).success).toBe(false);
    expect(VrrpConfigSchema.safeParse({ ...base, priority: 0 }).success).toBe(false);
    expect(VrrpConfigSchema.safeParse({ ...base, priority: 255 }).success).toBe(false);
  });
});
