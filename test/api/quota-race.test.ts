// checkQuota locks the project's quota row, creating it on the project's first create. On MariaDB
// (ARGONAUT_TEST_DB=mysql) several first creates of one project at the same moment must queue on that
// row, not deadlock on the gap where it is about to be inserted or collide on its key.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkQuota } from '../../api/mutations.ts';
import type { Ctx } from '../../api/services.ts';
import type { Database } from '../../common/db/database.ts';
import { openTestDatabase } from '../helpers/database.ts';

let db: Database;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ db, close } = await openTestDatabase());
});
afterAll(() => close());

/** What checkQuota reads from the request: the database, the auth strategy and the default quotas. */
function ctxWith(loadBalancerQuota: number): Ctx {
  const quotas = { loadBalancer: loadBalancerQuota, listener: -1, pool: -1, healthMonitor: -1, member: -1, l7policy: -1, l7rule: -1 };
  return { state: { services: { db, config: { api: { authStrategy: 'keystone' }, quotas } } } } as unknown as Ctx;
}

describe('checkQuota on a project with no quota row yet', () => {
  it('many first creates at once all pass, and the row is created once', async () => {
    const ctx = ctxWith(-1);
    // Open the pool's connections first, so that the transactions below really run side by side.
    await Promise.all(Array.from({ length: 8 }, () => db.tx((t) => db.select('SELECT 1 AS one', [], t))));
    for (let round = 0; round < 5; round++) {
      const project = randomUUID().replaceAll('-', '');
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => db.tx((t) => checkQuota(ctx, project, 'load_balancer', 1, t))));
      expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
      const rows = await db.select('SELECT project_id FROM quota WHERE project_id = ?', [project]);
      expect(rows).toHaveLength(1);
    }
  });

  it('still refuses past the limit once the row exists', async () => {
    const project = randomUUID().replaceAll('-', '');
    await db.tx((t) => checkQuota(ctxWith(1), project, 'load_balancer', 1, t));
    await expect(db.tx((t) => checkQuota(ctxWith(1), project, 'load_balancer', 2, t))).rejects.toMatchObject({ httpStatus: 403 });
  });
});
