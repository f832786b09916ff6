// The signed envelope every transport message travels in, and the keys that sign it.
//
// Wire format (like Octavia's heartbeat envelope, without zlib):
//   <payload: UTF-8 JSON of {v, id, ts, born, from, to, type, re?, body}> <64 lowercase hex chars: HMAC-SHA256(key, payload)>
// The signature covers the exact payload bytes, so no canonical JSON is needed.
//
// Keys: one secret is configured on the controller (`masterKey`, the analogue of Octavia's heartbeat_key).
// Each amphora gets only its own key, derived with HKDF-SHA256(masterKey, info "amphora:<id>"), and
// both directions of one amphora's traffic are signed with that key. The signed `from`/`to` fields
// stop a message of one direction being replayed in the other; the derived keys mean that an
// amphora that is compromised can only speak as itself (it cannot order other amphorae nor report
// as another amphora), which one shared key would allow.
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

export const SIGNATURE_HEX_LENGTH = 64;
const MIN_KEY_BYTES = 16;
const HKDF_SALT = 'argonaut-transport-v1';

export type Principal = 'controller' | `amphora:${string}`;

export function amphoraPrincipal(amphoraId: string): Principal {
  return `amphora:${amphoraId}`;
}

/** The amphora id of an `amphora:<id>` principal, or undefined for the controller. */
export function amphoraIdOf(p: Principal): string | undefined {
  return p.startsWith('amphora:') ? p.slice('amphora:'.length) : undefined;
}

export interface EnvelopeHeader {
  v: 1;
  /** Message id: unique per logical message, kept across retries and resends (idempotency key). */
  id: string;
  /** When this copy was signed (ms since epoch): what the replay window is checked against. */
  ts: number;
  /** When the message was first created (ms since epoch); equals ts unless it was resent. */
  born: number;
  from: Principal;
  to: Principal;
  type: string;
  /** For replies: the id of the request answered. */
  re?: string;
}

export interface Envelope<B = unknown> extends EnvelopeHeader {
  body: B;
}

const principal = z.custom<Principal>(
  (v) => typeof v === 'string' && (v === 'controller' || /^amphora:[A-Za-z0-9-]{1,64}$/.test(v)),
  'must be "controller" or "amphora:<id>"',
);

const EnvelopeSchema = z.object({
  v: z.literal(1),
  id: z.string().min(8).max(128),
  ts: z.number().int().min(0),
  born: z.number().int().min(0),
  from: principal,
  to: principal,
  type: z.string().min(1).max(64),
  re: z.string().min(8).max(128).optional(),
  body: z.unknown(),
});

export type SignatureFailure =
  | 'malformed' // not <json><hex signature>, or the header is invalid
  | 'too-large'
  | 'unknown-sender' // no key for the claimed sender (or the sender may not talk to this receiver)
  | 'misaddressed' // signed for another receiver
  | 'bad-signature'
  | 'stale' // signed longer ago than the replay window
  | 'future'; // signed further in the future than the allowed clock skew

export class SignatureError extends Error {
  override name = 'SignatureError';
  constructor(
    readonly reason: SignatureFailure,
    message: string,
    /** The header, when it could be read (for logs; not trusted unless reason is stale/future). */
    readonly header?: Partial<EnvelopeHeader>,
  ) {
    super(message);
  }
}

/** A key given as a string (UTF-8) or bytes; at least 16 bytes. */
export function toKey(key: string | Buffer): Buffer {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key);
  if (bytes.length < MIN_KEY_BYTES) throw new RangeError(`a signing key needs at least ${MIN_KEY_BYTES} bytes`);
  return bytes;
}

/** The key of one amphora, derived from the controller's master key (give it to that amphora only). */
export function deriveAmphoraKey(masterKey: string | Buffer, amphoraId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', toKey(masterKey), HKDF_SALT, `amphora:${amphoraId}`, 32));
}

/**
 * The election key of one load balancer (ACTIVE_STANDBY): both of its amphorae get it in their
 * configuration and authenticate their adverts and persistence sync with it. Distinct from every
 * amphora key (another HKDF info), so it grants nothing on the controller's transport.
 */
export function deriveVrrpKey(masterKey: string | Buffer, loadBalancerId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', toKey(masterKey), HKDF_SALT, `vrrp:${loadBalancerId}`, 32));
}

function hmacHex(key: Buffer, payload: Buffer): string {
  return createHmac('sha256', key).update(payload).digest('hex');
}

/** Signs one envelope with `key`: returns the bytes to put on the wire. */
export function signEnvelope(key: Buffer, envelope: Envelope): Buffer {
  const payload = Buffer.from(JSON.stringify(envelope), 'utf8');
  return Buffer.concat([payload, Buffer.from(hmacHex(key, payload), 'ascii')]);
}

/** Who may sign for whom: the key to check a message from `from` to `to` with, or undefined. */
export type VerifyKeyLookup = (from: Principal, to: Principal) => Buffer | undefined;

export interface VerifyOptions {
  /** The receiver: messages signed for anyone else are refused. */
  self: Principal;
  keyFor: VerifyKeyLookup;
  now: number;
  /** Oldest acceptable signing time: now - maxAgeMs. */
  maxAgeMs: number;
  /** Latest acceptable signing time: now + maxSkewMs. */
  maxSkewMs: number;
  maxBytes: number;
}

const HEX_SIGNATURE = /^[0-9a-f]{64}$/;

/**
 * Checks one wire message: size, shape, addressee, HMAC (constant-time compare), then age.
 * Returns the envelope (body not validated: that is the schema's job) or throws SignatureError.
 */
export function verifyEnvelope(data: Buffer, opts: VerifyOptions): Envelope {
  if (data.length > opts.maxBytes) throw new SignatureError('too-large', `message of ${data.length} bytes exceeds ${opts.maxBytes}`);
  if (data.length <= SIGNATURE_HEX_LENGTH) throw new SignatureError('malformed', 'message too short to carry a signature');
  const payload = data.subarray(0, data.length - SIGNATURE_HEX_LENGTH);
  const givenHex = data.subarray(data.length - SIGNATURE_HEX_LENGTH).toString('latin1');
  if (!HEX_SIGNATURE.test(givenHex)) throw new SignatureError('malformed', 'no hex HMAC-SHA256 signature at the end of the message');

  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new SignatureError('malformed', 'payload is not JSON');
  }
  const header = EnvelopeSchema.safeParse(parsed);
  if (!header.success) {
    throw new SignatureError('malformed', `invalid envelope: ${header.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  const env = header.data as Envelope;
  const seen: Partial<EnvelopeHeader> = { id: env.id, from: env.from, to: env.to, type: env.type, ts: env.ts };
  if (env.to !== opts.self) throw new SignatureError('misaddressed', `message for ${env.to} received by ${opts.self}`, seen);
  const key = opts.keyFor(env.from, env.to);
  if (!key) throw new SignatureError('unknown-sender', `no key for messages from ${env.from} to ${env.to}`, seen);

  const expected = Buffer.from(hmacHex(key, payload), 'ascii');
  if (!timingSafeEqual(expected, Buffer.from(givenHex, 'ascii'))) {
    throw new SignatureError('bad-signature', `bad signature on a message claiming to be from ${env.from}`, seen);
  }
  if (env.ts < opts.now - opts.maxAgeMs) {
    throw new SignatureError('stale', `message signed ${opts.now - env.ts} ms ago, older than the replay window of ${opts.maxAgeMs} ms`, seen);
  }
  if (env.ts > opts.now + opts.maxSkewMs) {
    throw new SignatureError('future', `message signed ${env.ts - opts.now} ms in the future (allowed skew ${opts.maxSkewMs} ms)`, seen);
  }
  return env;
}

// ---------------------------------------------------------------------------------------------
// Keys of each side

export interface KeyRing {
  readonly self: Principal;
  /** The key to sign a message for `to` with. Throws when this side may not talk to `to`. */
  signingKey(to: Principal): Buffer;
  /** The key that a message from `from` to `to` must be signed with, or undefined (refused). */
  verifyingKey: VerifyKeyLookup;
}

/** The controller: holds the master key and derives each amphora's key on demand. */
export function controllerKeyRing(masterKey: string | Buffer): KeyRing {
  const master = toKey(masterKey);
  const cache = new Map<string, Buffer>();
  const keyOf = (amphoraId: string): Buffer => {
    let k = cache.get(amphoraId);
    if (!k) {
      if (cache.size >= 10_000) cache.clear();
      k = deriveAmphoraKey(master, amphoraId);
      cache.set(amphoraId, k);
    }
    return k;
  };
  return {
    self: 'controller',
    signingKey(to) {
      const id = amphoraIdOf(to);
      if (!id) throw new Error(`the controller does not sign messages for ${to}`);
      return keyOf(id);
    },
    verifyingKey(from, to) {
      const id = amphoraIdOf(from);
      return id !== undefined && to === 'controller' ? keyOf(id) : undefined;
    },
  };
}

/** One amphora: holds only its own derived key and talks only to the controller. */
export function amphoraKeyRing(amphoraId: string, amphoraKey: string | Buffer): KeyRing {
  const key = toKey(amphoraKey);
  const self = amphoraPrincipal(amphoraId);
  return {
    self,
    signingKey(to) {
      if (to !== 'controller') throw new Error(`amphora ${amphoraId} only signs messages for the controller, not ${to}`);
      return key;
    },
    verifyingKey(from, to) {
      return from === 'controller' && to === self ? key : undefined;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Replays and duplicates

export type ReplayState = 'new' | 'in-flight' | 'done';

interface ReplayEntry<R> {
  state: 'in-flight' | 'done' | 'retry';
  expiresAt: number;
  attempts: number;
  reply?: R;
  /** Other reply addresses that asked while the first copy was being handled. */
  waitingReplyTo: string[];
}

/**
 * Remembers message ids for as long as a copy of them could still pass the age check, so that a
 * message is handled at most once per receiver (a replayed or resent copy is recognised) while a
 * copy that failed and was requeued is handled again. Bounded: the oldest ids go first.
 */
export class ReplayGuard<R = unknown> {
  private readonly entries = new Map<string, ReplayEntry<R>>();

  constructor(
    /** How long an id is remembered: the replay window plus the allowed clock skew. */
    private readonly retentionMs: number,
    private readonly maxEntries = 200_000,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  state(id: string, now: number): ReplayState {
    this.prune(now);
    const e = this.entries.get(id);
    if (!e || e.state === 'retry') return 'new';
    return e.state;
  }

  /** Marks `id` as being handled; returns the attempt number (1 for the first). */
  begin(id: string, now: number): number {
    const e = this.entries.get(id);
    const attempts = (e?.state === 'retry' ? e.attempts : 0) + 1;
    this.entries.delete(id); // re-insert at the end: the map stays ordered by expiry
    this.entries.set(id, { state: 'in-flight', expiresAt: now + this.retentionMs, attempts, waitingReplyTo: e?.waitingReplyTo ?? [] });
    this.evictOverflow();
    return attempts;
  }

  /** The handler failed and the message goes back to the queue: a later copy is handled again. */
  retry(id: string): void {
    const e = this.entries.get(id);
    if (e) e.state = 'retry';
  }

  /** Handled (or dropped for good): later copies are duplicates; `reply` is kept to answer them. */
  complete(id: string, now: number, reply?: R): string[] {
    const e = this.entries.get(id);
    const waiting = e?.waitingReplyTo ?? [];
    this.entries.delete(id);
    this.entries.set(id, { state: 'done', expiresAt: now + this.retentionMs, attempts: e?.attempts ?? 1, reply, waitingReplyTo: [] });
    this.evictOverflow();
    return waiting;
  }

  reply(id: string): R | undefined {
    return this.entries.get(id)?.reply;
  }

  /** A duplicate arrived while the first copy is in flight: answer it too when that finishes. */
  addWaiter(id: string, replyTo: string): void {
    const e = this.entries.get(id);
    if (e && e.state === 'in-flight' && !e.waitingReplyTo.includes(replyTo)) e.waitingReplyTo.push(replyTo);
  }

  private prune(now: number): void {
    for (const [id, e] of this.entries) {
      if (e.expiresAt > now) break;
      if (e.state === 'in-flight') continue;
      this.entries.delete(id);
    }
  }

  private evictOverflow(): void {
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}
