import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  amphoraKeyRing,
  amphoraPrincipal,
  controllerKeyRing,
  deriveAmphoraKey,
  ReplayGuard,
  SignatureError,
  signEnvelope,
  toKey,
  verifyEnvelope,
  type Envelope,
  type VerifyOptions,
} from '../../../common/transport/signing.ts';
import { MASTER_KEY } from './helpers.ts';

const amp = randomUUID();
const other = randomUUID();
const NOW = 1_700_000_000_000;

function envelope(over: Partial<Envelope> = {}): Envelope {
  return { v: 1, id: randomUUID(), ts: NOW, born: NOW, from: amphoraPrincipal(amp), to: 'controller', type: 'heartbeat', body: { hello: 'world' }, ...over };
}

const controller = controllerKeyRing(MASTER_KEY);
const opts = (over: Partial<VerifyOptions> = {}): VerifyOptions => ({
  self: 'controller',
  keyFor: controller.verifyingKey,
  now: NOW,
  maxAgeMs: 60_000,
  maxSkewMs: 5_000,
  maxBytes: 1 << 20,
  ...over,
});

function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof SignatureError) return err.reason;
    throw err;
  }
  throw new Error('expected a SignatureError');
}

describe('signed envelope', () => {
  const ampKey = deriveAmphoraKey(MASTER_KEY, amp);

  it('round-trips: payload JSON followed by 64 lowercase hex characters of HMAC-SHA256', () => {
    const env = envelope();
    const wire = signEnvelope(ampKey, env);
    expect(wire.subarray(-64).toString()).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.parse(wire.subarray(0, -64).toString())).toEqual(env);
    expect(verifyEnvelope(wire, opts())).toEqual(env);
  });

  it('refuses a changed body, a changed signature, a truncated or unsigned message', () => {
    const wire = signEnvelope(ampKey, envelope({ body: { n: 1 } }));
    const tamperedBody = Buffer.from(wire.toString().replace('"n":1', '"n":2'));
    expect(failure(() => verifyEnvelope(tamperedBody, opts()))).toBe('bad-signature');
    const sig = wire.subarray(-64).toString();
    const flipped = Buffer.concat([wire.subarray(0, -64), Buffer.from((sig[0] === 'a' ? 'b' : 'a') + sig.slice(1))]);
    expect(failure(() => verifyEnvelope(flipped, opts()))).toBe('bad-signature');
    expect(failure(() => verifyEnvelope(wire.subarray(0, -1), opts()))).toBe('malformed');
    expect(failure(() => verifyEnvelope(Buffer.from(JSON.stringify(envelope())), opts()))).toBe('malformed');
    expect(failure(() => verifyEnvelope(Buffer.from('x'), opts()))).toBe('malformed');
  });

  it('refuses a message signed with another key (the master key, another amphora key, a guess)', () => {
    const env = envelope();
    expect(failure(() => verifyEnvelope(signEnvelope(toKey(MASTER_KEY), env), opts()))).toBe('bad-signature');
    expect(failure(() => verifyEnvelope(signEnvelope(deriveAmphoraKey(MASTER_KEY, other), env), opts()))).toBe('bad-signature');
    expect(failure(() => verifyEnvelope(signEnvelope(toKey('guessed-key-guessed-key'), env), opts()))).toBe('bad-signature');
  });

  it('refuses bad headers, messages for someone else, and senders without a key', () => {
    const bad = Buffer.concat([Buffer.from(JSON.stringify({ ...envelope(), v: 2 })), Buffer.from('0'.repeat(64))]);
    expect(failure(() => verifyEnvelope(bad, opts()))).toBe('malformed');
    const forOther = signEnvelope(ampKey, envelope({ to: amphoraPrincipal(other) }));
    expect(failure(() => verifyEnvelope(forOther, opts()))).toBe('misaddressed');
    // controller -> controller: nobody holds a key for that
    const fromController = signEnvelope(toKey(MASTER_KEY), envelope({ from: 'controller' }));
    expect(failure(() => verifyEnvelope(fromController, opts()))).toBe('unknown-sender');
  });

  it('refuses messages older than the replay window or too far in the future', () => {
    expect(verifyEnvelope(signEnvelope(ampKey, envelope({ ts: NOW - 60_000 })), opts()).ts).toBe(NOW - 60_000);
    expect(failure(() => verifyEnvelope(signEnvelope(ampKey, envelope({ ts: NOW - 60_001 })), opts()))).toBe('stale');
    expect(verifyEnvelope(signEnvelope(ampKey, envelope({ ts: NOW + 5_000 })), opts()).ts).toBe(NOW + 5_000);
    expect(failure(() => verifyEnvelope(signEnvelope(ampKey, envelope({ ts: NOW + 5_001 })), opts()))).toBe('future');
  });

  it('refuses messages above the size limit before parsing them', () => {
    const wire = signEnvelope(ampKey, envelope({ body: 'x'.repeat(2000) }));
    expect(failure(() => verifyEnvelope(wire, opts({ maxBytes: 1000 })))).toBe('too-large');
  });
});

describe('keys', () => {
  it('derives one stable key per amphora, different from the master key and from other amphorae', () => {
    const a1 = deriveAmphoraKey(MASTER_KEY, amp);
    expect(a1).toHaveLength(32);
    expect(deriveAmphoraKey(MASTER_KEY, amp).equals(a1)).toBe(true);
    expect(deriveAmphoraKey(MASTER_KEY, other).equals(a1)).toBe(false);
    expect(deriveAmphoraKey(`${MASTER_KEY}x`, amp).equals(a1)).toBe(false);
  });

  it('refuses keys shorter than 16 bytes', () => {
    expect(() => toKey('short')).toThrow(RangeError);
    expect(() => controllerKeyRing('0123456789abcde')).toThrow(RangeError);
    expect(toKey('0123456789abcdef')).toHaveLength(16);
  });

  it('an amphora signs only for the controller and accepts only the controller, addressed to itself', () => {
    const ring = amphoraKeyRing(amp, deriveAmphoraKey(MASTER_KEY, amp));
    expect(ring.self).toBe(`amphora:${amp}`);
    expect(() => ring.signingKey(amphoraPrincipal(other))).toThrow(/only signs messages for the controller/);
    expect(ring.verifyingKey('controller', amphoraPrincipal(amp))).toBeDefined();
    expect(ring.verifyingKey('controller', amphoraPrincipal(other))).toBeUndefined();
    expect(ring.verifyingKey(amphoraPrincipal(amp), amphoraPrincipal(amp))).toBeUndefined();
  });

  it('the controller and an amphora agree on the amphora key; orders signed for one amphora fail at another', () => {
    const order = envelope({ from: 'controller', to: amphoraPrincipal(amp), type: 'config.push' });
    const wire = signEnvelope(controller.signingKey(amphoraPrincipal(amp)), order);
    const ampRing = amphoraKeyRing(amp, deriveAmphoraKey(MASTER_KEY, amp));
    expect(verifyEnvelope(wire, opts({ self: ampRing.self, keyFor: ampRing.verifyingKey })).id).toBe(order.id);
    // re-addressed to another amphora: the signature no longer matches (the address is signed)
    const readdressed = Buffer.from(wire.toString().replace(amp, other));
    const otherRing = amphoraKeyRing(other, deriveAmphoraKey(MASTER_KEY, other));
    expect(failure(() => verifyEnvelope(readdressed, opts({ self: otherRing.self, keyFor: otherRing.verifyingKey })))).toBe('bad-signature');
    // an amphora's own report cannot be reflected back to it as an order
    const report = signEnvelope(deriveAmphoraKey(MASTER_KEY, amp), envelope());
    expect(failure(() => verifyEnvelope(report, opts({ self: ampRing.self, keyFor: ampRing.verifyingKey })))).toBe('misaddressed');
    expect(() => controller.signingKey('controller')).toThrow();
  });
});

describe('ReplayGuard', () => {
  it('tracks new -> in-flight -> done, keeps the answer, and forgets ids after the retention time', () => {
    const g = new ReplayGuard<string>(1000);
    expect(g.state('m1', 0)).toBe('new');
    expect(g.begin('m1', 0)).toBe(1);
    expect(g.state('m1', 10)).toBe('in-flight');
    g.complete('m1', 20, 'answer');
    expect(g.state('m1', 30)).toBe('done');
    expect(g.reply('m1')).toBe('answer');
    expect(g.state('m1', 1019)).toBe('done');
    expect(g.state('m1', 1020)).toBe('new');
    expect(g.size).toBe(0);
  });

  it('a failed attempt makes the next copy new again and counts attempts', () => {
    const g = new ReplayGuard(1000);
    g.begin('m', 0);
    g.retry('m');
    expect(g.state('m', 1)).toBe('new');
    expect(g.begin('m', 2)).toBe(2);
  });

  it('collects reply addresses of duplicates that arrive while the first copy is handled', () => {
    const g = new ReplayGuard(1000);
    g.begin('m', 0);
    g.addWaiter('m', 'q1');
    g.addWaiter('m', 'q1');
    g.addWaiter('m', 'q2');
    expect(g.complete('m', 1)).toEqual(['q1', 'q2']);
    g.addWaiter('m', 'q3'); // done: no longer collected
    expect(g.complete('m', 2)).toEqual([]);
  });

  it('is bounded: the oldest ids go first', () => {
    const g = new ReplayGuard(1_000_000, 3);
    for (const id of ['a', 'b', 'c', 'd']) g.complete(id, 0);
    expect(g.size).toBe(3);
    expect(g.state('a', 1)).toBe('new');
    expect(g.state('d', 1)).toBe('done');
  });
});
