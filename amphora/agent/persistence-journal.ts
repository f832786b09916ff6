// What an amphora of an ACTIVE_STANDBY pair knows of its data plane's persistence: every entry it
// learned or received from its peer, newest last, so that a MASTER can give a BACKUP that (re)connects
// the whole table at once. Entries are (pool id, key, member id): a SOURCE_IP or APP_COOKIE key, or
// `current` for the LAST_SUCCESSFUL member ('' once it failed).
//
// An entry expires `ttlMs(poolId)` after it was last learned or received: the data plane refreshes an
// entry on each use without telling anybody, so a client that keeps its member longer than that
// without being re-learned is not re-sent (documented in amphora/README.md).

import { STICK_TABLE_CAPACITY } from '../dataplane/balancer/stick-table.ts';

export type PersistenceEntry = [poolId: string, key: string, serverId: string];

/** Entries kept per pool at most: as many as the data plane's stick tables hold. */
const CAPACITY_PER_POOL = STICK_TABLE_CAPACITY;

export class PersistenceJournal {
  private readonly pools = new Map<string, Map<string, { serverId: string; at: number }>>();

  constructor(
    /** How long entries of a pool live; null: the pool has no table-based persistence (any more). */
    private readonly ttlMs: (poolId: string) => number | null,
    private readonly now: () => number = Date.now,
  ) {}

  record(poolId: string, key: string, serverId: string): void {
    let table = this.pools.get(poolId);
    if (!table) this.pools.set(poolId, (table = new Map()));
    table.delete(key);
    table.set(key, { serverId, at: this.now() });
    if (table.size > CAPACITY_PER_POOL) table.delete(table.keys().next().value!);
  }

  /** The live entries, oldest first (so that importing them in order leaves the newest winning). */
  entries(): PersistenceEntry[] {
    const now = this.now();
    const out: PersistenceEntry[] = [];
    for (const [poolId, table] of this.pools) {
      const ttl = this.ttlMs(poolId);
      if (ttl === null) {
        this.pools.delete(poolId);
        continue;
      }
      for (const [key, e] of table) {
        if (now - e.at >= ttl) table.delete(key);
        else out.push([poolId, key, e.serverId]);
      }
    }
    return out;
  }
}
