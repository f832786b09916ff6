// Cache of validated tokens, keyed by the SHA-256 of the token (raw tokens are never kept as keys).
// - a valid token is trusted for min(ttl, time left before the token expires);
// - bounded size, least-recently-used entries go first;
// - concurrent validations of one token share a single request to Keystone;
// - invalid tokens are remembered for a short time so a flood of bad tokens does not reach Keystone.
// Keystone being unavailable is never cached.
import { type AuthContext, freezeAuthContext, tokenHash } from './auth-context.ts';
import { InvalidTokenError } from './keystone-client.ts';

export interface TokenCacheOptions {
  /** How long a validated token is trusted without asking Keystone again (default 300 000 ms; 0 = do not cache). */
  ttlMs?: number;
  /** Most valid tokens kept (default 10 000). */
  maxEntries?: number;
  /** How long an invalid token is remembered (default 10 000 ms; 0 = do not remember). */
  negativeTtlMs?: number;
  /** Most invalid tokens remembered (default 10 000). */
  maxNegativeEntries?: number;
  /** Clock (ms since epoch); defaults to Date.now (fake timers in tests move it). */
  now?: () => number;
}

export interface TokenCacheStats {
  hits: number;
  misses: number;
  negativeHits: number;
  inflightJoins: number;
  evictions: number;
}

interface PositiveEntry {
  ctx: Readonly<AuthContext>;
  expiresAt: number;
}

interface NegativeEntry {
  reason: string;
  expiresAt: number;
}

export class TokenCache {
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly negativeTtlMs: number;
  private readonly maxNegativeEntries: number;
  private readonly now: () => number;
  private readonly positive = new Map<string, PositiveEntry>();
  private readonly negative = new Map<string, NegativeEntry>();
  private readonly inflight = new Map<string, Promise<Readonly<AuthContext>>>();
  private readonly counters: TokenCacheStats = { hits: 0, misses: 0, negativeHits: 0, inflightJoins: 0, evictions: 0 };

  constructor(opts: TokenCacheOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 300_000;
    this.maxEntries = opts.maxEntries ?? 10_000;
    this.negativeTtlMs = opts.negativeTtlMs ?? 10_000;
    this.maxNegativeEntries = opts.maxNegativeEntries ?? 10_000;
    this.now = opts.now ?? Date.now;
    for (const [name, v] of Object.entries({
      ttlMs: this.ttlMs,
      maxEntries: this.maxEntries,
      negativeTtlMs: this.negativeTtlMs,
      maxNegativeEntries: this.maxNegativeEntries,
    })) {
      if (!Number.isFinite(v) || v < 0) throw new Error(`TokenCache: ${name} must be a finite number >= 0`);
    }
  }

  /**
   * The identity of `token`: from the cache when possible, else from `validate` (one call per token
   * at a time). Rejects with InvalidTokenError for a token known to be invalid.
   */
  getOrValidate(token: string, validate: (token: string) => Promise<AuthContext>): Promise<Readonly<AuthContext>> {
    const key = tokenHash(token);
    const now = this.now();

    const hit = this.positive.get(key);
    if (hit) {
      if (hit.expiresAt > now) {
        // Refresh recency: Map keeps insertion order, so re-inserting moves the entry to the young end.
        this.positive.delete(key);
        this.positive.set(key, hit);
        this.counters.hits++;
        return Promise.resolve(hit.ctx);
      }
      this.positive.delete(key);
    }

    const neg = this.negative.get(key);
    if (neg) {
      if (neg.expiresAt > now) {
        this.counters.negativeHits++;
        return Promise.reject(new InvalidTokenError(neg.reason));
      }
      this.negative.delete(key);
    }

    const pending = this.inflight.get(key);
    if (pending) {
      this.counters.inflightJoins++;
      return pending;
    }

    this.counters.misses++;
    const run = async (): Promise<Readonly<AuthContext>> => {
      try {
        const ctx = freezeAuthContext(await validate(token));
        if (this.inflight.get(key) === p) this.storePositive(key, ctx);
        return ctx;
      } catch (err) {
        if (err instanceof InvalidTokenError && this.inflight.get(key) === p) this.storeNegative(key, err.reason);
        throw err;
      } finally {
        if (this.inflight.get(key) === p) this.inflight.delete(key);
      }
    };
    // `run` starts on the next microtask, once `p` is assigned (even if `validate` throws synchronously).
    const p: Promise<Readonly<AuthContext>> = Promise.resolve().then(run);
    this.inflight.set(key, p);
    return p;
  }

  /** Forget everything known about one token (also detaches a validation in progress from the cache). */
  invalidate(token: string): void {
    const key = tokenHash(token);
    this.positive.delete(key);
    this.negative.delete(key);
    this.inflight.delete(key);
  }

  clear(): void {
    this.positive.clear();
    this.negative.clear();
    this.inflight.clear();
  }

  /** Number of valid tokens held (expired ones may linger until touched or evicted). */
  get size(): number {
    return this.positive.size;
  }

  get negativeSize(): number {
    return this.negative.size;
  }

  stats(): TokenCacheStats {
    return { ...this.counters };
  }

  private storePositive(key: string, ctx: Readonly<AuthContext>): void {
    const now = this.now();
    let expiresAt = now + this.ttlMs;
    if (ctx.tokenExpiresAt) expiresAt = Math.min(expiresAt, ctx.tokenExpiresAt.getTime());
    if (expiresAt <= now || this.maxEntries === 0) return;
    this.negative.delete(key);
    this.positive.delete(key);
    this.positive.set(key, { ctx, expiresAt });
    this.evict(this.positive, this.maxEntries, now);
  }

  private storeNegative(key: string, reason: string): void {
    if (this.negativeTtlMs === 0 || this.maxNegativeEntries === 0) return;
    const now = this.now();
    this.positive.delete(key);
    this.negative.delete(key);
    this.negative.set(key, { reason, expiresAt: now + this.negativeTtlMs });
    this.evict(this.negative, this.maxNegativeEntries, now);
  }

  /** Drops expired entries from the old end, then the least recently used ones until within bounds. */
  private evict(map: Map<string, { expiresAt: number }>, max: number, now: number): void {
    for (const [k, v] of map) {
      if (map.size <= max && v.expiresAt > now) break;
      map.delete(k);
      if (v.expiresAt > now) this.counters.evictions++;
    }
  }
}
