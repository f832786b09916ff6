// The database side of stale-amphora detection (Octavia's AmphoraHealthRepository.get_stale_amphora
// and the load balancer test of HealthManager._test_and_set_failover_prov_status).
import { Op } from 'sequelize';
import type { Database, Row } from '../../common/db/database.ts';

/** Load balancer states an amphora failover may start from (Octavia's FAILOVERABLE_STATUSES). */
export const FAILOVERABLE = ['ACTIVE', 'ERROR'];

export interface ExpiredHealth {
  /** Health rows (busy or not) older than the cutoff whose amphora is gone or DELETED. */
  gone: string[];
  /** Not busy, older than the cutoff, amphora still recorded: what the circuit breaker counts. */
  stale: Array<{ amphoraId: string; status: string; loadBalancerId: string | null }>;
}

export async function findExpired(db: Database, cutoff: Date): Promise<ExpiredHealth> {
  return db.read(async () => {
    const rows = (await db.models.amphora_health.findAll({ where: { last_update: { [Op.lt]: cutoff } }, raw: true })) as Row[];
    if (rows.length === 0) return { gone: [], stale: [] };
    const amphorae = new Map(
      ((await db.models.amphora.findAll({ where: { id: rows.map((r) => r.amphora_id) }, attributes: ['id', 'status', 'load_balancer_id'], raw: true })) as Row[]).map(
        (a) => [a.id as string, a],
      ),
    );
    const result: ExpiredHealth = { gone: [], stale: [] };
    for (const row of rows) {
      const amp = amphorae.get(row.amphora_id);
      if (!amp || amp.status === 'DELETED') result.gone.push(row.amphora_id);
      else if (!row.busy) result.stale.push({ amphoraId: row.amphora_id, status: amp.status, loadBalancerId: amp.load_balancer_id ?? null });
    }
    return result;
  });
}

/** Stops watching amphorae that no longer exist (still only if their row has not been refreshed since). */
export async function dropHealth(db: Database, amphoraIds: string[], cutoff: Date): Promise<void> {
  await db.tx((t) =>
    db.models.amphora_health.destroy({ where: { amphora_id: amphoraIds, last_update: { [Op.lt]: cutoff } }, transaction: t }),
  );
}

export type ClaimResult =
  | { claimed: true; loadBalancerId: string }
  | { claimed: false; reason: 'not in service' | 'no load balancer' | 'load balancer busy' | 'refreshed or claimed meanwhile'; detail?: string };

/**
 * Marks one stale amphora busy if it may be failed over now: still ALLOCATED, its load balancer
 * ACTIVE or ERROR, its health row still stale and not busy. The busy flag is set by a conditional
 * UPDATE, so of several controllers checking at once exactly one claims the amphora.
 */
export async function claimForFailover(db: Database, amphoraId: string, cutoff: Date): Promise<ClaimResult> {
  return db.tx(async (t) => {
    const m = db.models;
    const amp = (await m.amphora.findByPk(amphoraId, { raw: true, transaction: t })) as Row | null;
    if (!amp || amp.status !== 'ALLOCATED') return { claimed: false, reason: 'not in service', detail: amp?.status ?? 'missing' };
    const lb = amp.load_balancer_id ? ((await m.load_balancer.findByPk(amp.load_balancer_id, { raw: true, transaction: t })) as Row | null) : null;
    if (!lb) return { claimed: false, reason: 'no load balancer' };
    if (!FAILOVERABLE.includes(lb.provisioning_status)) return { claimed: false, reason: 'load balancer busy', detail: lb.provisioning_status };
    const [count] = await m.amphora_health.update(
      { busy: true },
      { where: { amphora_id: amphoraId, busy: false, last_update: { [Op.lt]: cutoff } }, transaction: t },
    );
    return count === 1 ? { claimed: true, loadBalancerId: lb.id } : { claimed: false, reason: 'refreshed or claimed meanwhile' };
  });
}

/** Makes an amphora a failover candidate again (its failover could not be started). */
export async function releaseClaim(db: Database, amphoraId: string): Promise<void> {
  await db.tx((t) => db.models.amphora_health.update({ busy: false }, { where: { amphora_id: amphoraId }, transaction: t }));
}
