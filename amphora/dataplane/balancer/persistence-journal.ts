// What is known of a data plane's persistence: every entry learned (or received from the peer amphora),
// newest last, so that the whole table can be given at once to whoever lacks it: the BACKUP of an
// ACTIVE_STANDBY pair that (re)connects, a data plane worker that was restarted. Entries are (pool id,
// key, member id): a SOURCE_IP or APP_COOKIE key, or `current` for the LAST_SUCCESSFUL member ('' once
// it failed).
//
// An entry expires `ttlMs(poolId)` after it was last learned or received: the data plane refreshes an
// entry on each use without telling anybody, so a client that keeps its member longer than that
// without being re-learned is not re-sent (documented in amphora/README.md).

import type { AmphoraConfig } from '../../../common/amphora-config/index.ts';
import { APP_COOKIE_TTL_MS } from './persistence.ts';
import { STICK_TABLE_CAPACITY } from './stick-table.ts';

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

/** How long a pool's entries live (its stick table's expiry) in `config`; null: nothing of it to keep. */
export function persistenceTtl(config: AmphoraConfig | null, poolId: string): number | null {
  const sp = config?.pools.find((p) => p.id === poolId)?.sessionPersistence;
  switch (sp?.type) {
    case 'SOURCE_IP':
      return sp.timeout;
    case 'APP_COOKIE':
      return APP_COOKIE_TTL_MS;
    case 'LAST_SUCCESSFUL':
      return Number.POSITIVE_INFINITY;
    default:
      return null;
  }
}
