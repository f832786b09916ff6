/**
 * A bounded key → server table whose entries expire after `ttlMs` without use (HAProxy `stick-table ...
 * expire`). Map insertion order doubles as recency order, so the oldest entry goes first when full.
 */
/** Entries a stick table holds before the oldest goes (per pool). */
export const STICK_TABLE_CAPACITY = 10_000;

export class StickTable {
  private readonly entries = new Map<string, { serverId: string; expiresAt: number }>();

  constructor(
    private ttlMs: number,
    private readonly capacity = STICK_TABLE_CAPACITY,
    private readonly now: () => number = Date.now,
  ) {}

  setTtl(ttlMs: number): void {
    this.ttlMs = ttlMs;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The server a key sticks to, refreshing the entry's expiry; undefined when absent or expired. */
  get(key: string): string | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    const now = this.now();
    if (entry.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    this.entries.delete(key);
    entry.expiresAt = now + this.ttlMs;
    this.entries.set(key, entry);
    return entry.serverId;
  }

  set(key: string, serverId: string): void {
    this.entries.delete(key);
    this.entries.set(key, { serverId, expiresAt: this.now() + this.ttlMs });
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Drops expired entries; called periodically so idle tables do not hold memory. */
  sweep(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }
}
