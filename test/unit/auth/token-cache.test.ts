import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { AuthContext } from '../../../api/auth/auth-context.ts';
import { tokenHash } from '../../../api/auth/auth-context.ts';
import { InvalidTokenError, KeystoneUnavailableError } from '../../../api/auth/keystone-client.ts';
import { TokenCache } from '../../../api/auth/token-cache.ts';

const T0 = Date.parse('2030-01-01T00:00:00Z');

function ctxFor(token: string, expiresInMs = 3600_000): AuthContext {
  return {
    projectId: `project-of-${token}`,
    userId: 'u',
    roles: ['member', 'reader'],
    isAdmin: false,
    tokenExpiresAt: new Date(Date.now() + expiresInMs),
    authStrategy: 'keystone',
  };
}

/** A validator counting its calls per token. */
function counter(impl?: (token: string) => Promise<AuthContext>) {
  const calls: string[] = [];
  const validate = vi.fn(async (token: string) => {
    calls.push(token);
    return impl ? impl(token) : ctxFor(token);
  });
  return { validate, calls };
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
});

afterEach(() => {
  vi.useRealTimers();
});

describe('TokenCache', () => {
  it('validates a token once and then serves it from the cache', async () => {
    const cache = new TokenCache();
    const { validate, calls } = counter();
    const a = await cache.getOrValidate('tok-a', validate);
    const b = await cache.getOrValidate('tok-a', validate);
    expect(a.projectId).toBe('project-of-tok-a');
    expect(b).toBe(a);
    expect(calls).toEqual(['tok-a']);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 1 });
  });

  it('trusts an entry for the configured TTL only', async () => {
    const cache = new TokenCache({ ttlMs: 300_000 });
    const { validate, calls } = counter();
    await cache.getOrValidate('tok', validate);
    vi.advanceTimersByTime(299_999);
    await cache.getOrValidate('tok', validate);
    expect(calls).toHaveLength(1);
    vi.advanceTimersByTime(1);
    await cache.getOrValidate('tok', validate);
    expect(calls).toHaveLength(2);
  });

  it('never trusts an entry beyond the token expiry', async () => {
    const cache = new TokenCache({ ttlMs: 300_000 });
    const { validate, calls } = counter(async (t) => ctxFor(t, 60_000));
    await cache.getOrValidate('short', validate);
    vi.advanceTimersByTime(59_999);
    await cache.getOrValidate('short', validate);
    expect(calls).toHaveLength(1);
    vi.advanceTimersByTime(1);
    await cache.getOrValidate('short', validate);
    expect(calls).toHaveLength(2);
  });

  it('does not cache when the TTL is 0', async () => {
    const cache = new TokenCache({ ttlMs: 0 });
    const { validate, calls } = counter();
    await cache.getOrValidate('tok', validate);
    await cache.getOrValidate('tok', validate);
    expect(calls).toHaveLength(2);
    expect(cache.size).toBe(0);
  });

  it('shares one in-flight validation between concurrent requests for the same token', async () => {
    const cache = new TokenCache();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { validate, calls } = counter(async (t) => {
      await gate;
      return ctxFor(t);
    });
    const p1 = cache.getOrValidate('tok', validate);
    const p2 = cache.getOrValidate('tok', validate);
    const p3 = cache.getOrValidate('other', validate);
    release();
    const [a, b, c] = await Promise.all([p1, p2, p3]);
    expect(a).toBe(b);
    expect(c.projectId).toBe('project-of-other');
    expect(calls.sort()).toEqual(['other', 'tok']);
    expect(cache.stats().inflightJoins).toBe(1);
  });

  it('shares an in-flight failure too, and does not cache Keystone being unavailable', async () => {
    const cache = new TokenCache();
    let fail = true;
    const { validate, calls } = counter(async (t) => {
      if (fail) throw new KeystoneUnavailableError('down');
      return ctxFor(t);
    });
    const results = await Promise.allSettled([cache.getOrValidate('tok', validate), cache.getOrValidate('tok', validate)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(calls).toHaveLength(1);
    fail = false;
    expect((await cache.getOrValidate('tok', validate)).projectId).toBe('project-of-tok');
    expect(calls).toHaveLength(2);
  });

  it('remembers invalid tokens for the negative TTL', async () => {
    const cache = new TokenCache({ negativeTtlMs: 10_000 });
    const { validate, calls } = counter(async () => {
      throw new InvalidTokenError('token not found');
    });
    await expect(cache.getOrValidate('bad', validate)).rejects.toBeInstanceOf(InvalidTokenError);
    vi.advanceTimersByTime(9_999);
    for (let i = 0; i < 50; i++) {
      await expect(cache.getOrValidate('bad', validate)).rejects.toBeInstanceOf(InvalidTokenError);
    }
    expect(calls).toHaveLength(1);
    expect(cache.stats().negativeHits).toBe(50);
    vi.advanceTimersByTime(1);
    await expect(cache.getOrValidate('bad', validate)).rejects.toBeInstanceOf(InvalidTokenError);
    expect(calls).toHaveLength(2);
  });

  it('a token that became valid is revalidated once the negative entry expires', async () => {
    const cache = new TokenCache({ negativeTtlMs: 5_000 });
    let valid = false;
    const { validate } = counter(async (t) => {
      if (!valid) throw new InvalidTokenError('nope');
      return ctxFor(t);
    });
    await expect(cache.getOrValidate('tok', validate)).rejects.toThrow(InvalidTokenError);
    valid = true;
    await expect(cache.getOrValidate('tok', validate)).rejects.toThrow(InvalidTokenError);
    vi.advanceTimersByTime(5_000);
    expect((await cache.getOrValidate('tok', validate)).projectId).toBe('project-of-tok');
  });

  it('evicts the least recently used entry when full', async () => {
    const cache = new TokenCache({ maxEntries: 2 });
    const { validate, calls } = counter();
    await cache.getOrValidate('a', validate);
    await cache.getOrValidate('b', validate);
    await cache.getOrValidate('a', validate); // a is now the most recently used
    await cache.getOrValidate('c', validate); // evicts b
    expect(cache.size).toBe(2);
    calls.length = 0;
    await cache.getOrValidate('a', validate);
    await cache.getOrValidate('c', validate);
    expect(calls).toEqual([]);
    await cache.getOrValidate('b', validate);
    expect(calls).toEqual(['b']);
    expect(cache.stats().evictions).toBeGreaterThanOrEqual(1);
  });

  it('bounds the negative cache as well', async () => {
    const cache = new TokenCache({ maxNegativeEntries: 3 });
    const { validate } = counter(async () => {
      throw new InvalidTokenError('nope');
    });
    for (let i = 0; i < 20; i++) await expect(cache.getOrValidate(`bad-${i}`, validate)).rejects.toThrow();
    expect(cache.negativeSize).toBe(3);
  });

  it('keys entries by a SHA-256 of the token, never the token itself', async () => {
    const cache = new TokenCache();
    const { validate } = counter();
    const token = 'gAAAAAB-raw-token-value';
    await cache.getOrValidate(token, validate);
    const keys = [...(cache as unknown as { positive: Map<string, unknown> }).positive.keys()];
    expect(keys).toEqual([tokenHash(token)]);
    expect(keys[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(keys)).not.toContain(token);
  });

  it('hands out frozen contexts so one request cannot change the next one', async () => {
    const cache = new TokenCache();
    const { validate } = counter();
    const a = await cache.getOrValidate('tok', validate);
    expect(() => (a.roles as string[]).push('admin')).toThrow(TypeError);
    expect(() => {
      (a as AuthContext).projectId = 'evil';
    }).toThrow(TypeError);
    expect((await cache.getOrValidate('tok', validate)).roles).toEqual(['member', 'reader']);
  });

  it('invalidate() forgets a token, including a validation in progress', async () => {
    const cache = new TokenCache();
    const { validate, calls } = counter();
    await cache.getOrValidate('tok', validate);
    cache.invalidate('tok');
    await cache.getOrValidate('tok', validate);
    expect(calls).toHaveLength(2);

    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = counter(async (t) => {
      await gate;
      return ctxFor(t);
    });
    const pending = cache.getOrValidate('slow', slow.validate);
    cache.invalidate('slow');
    release();
    await pending;
    await cache.getOrValidate('slow', slow.validate);
    expect(slow.calls).toHaveLength(2); // the detached result was not stored
  });

  it('turns a validator that throws synchronously into a rejection', async () => {
    const cache = new TokenCache();
    const bad = (() => {
      throw new InvalidTokenError('sync');
    }) as unknown as (t: string) => Promise<AuthContext>;
    await expect(cache.getOrValidate('tok', bad)).rejects.toBeInstanceOf(InvalidTokenError);
    await expect(cache.getOrValidate('tok', bad)).rejects.toBeInstanceOf(InvalidTokenError);
    expect(cache.stats().negativeHits).toBe(1);
  });

  it('propagates unexpected validator errors unchanged and uncached', async () => {
    const cache = new TokenCache();
    const boom = new TypeError('bug');
    const { validate, calls } = counter(async () => {
      throw boom;
    });
    await expect(cache.getOrValidate('tok', validate)).rejects.toBe(boom);
    await expect(cache.getOrValidate('tok', validate)).rejects.toBe(boom);
    expect(calls).toHaveLength(2);
  });

  it('rejects nonsensical options', () => {
    expect(() => new TokenCache({ ttlMs: -1 })).toThrow(/ttlMs/);
    expect(() => new TokenCache({ maxEntries: Number.NaN })).toThrow(/maxEntries/);
  });
});
