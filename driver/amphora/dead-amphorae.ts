// At controller start: load balancers whose amphorae are known dead are repaired at once. The
// `process` driver's amphorae stop with the controller process that started them, so after a
// restart every ACTIVE load balancer has a dead amphora; waiting for the health manager would
// leave it without traffic for heartbeatTimeoutMs (60 s by default), and forever for an amphora
// that died before its first heartbeat was handled (no health row to go stale).
import { Op } from 'sequelize';
import type { Database, Row } from '../../common/db/database.ts';
import type { Logger } from '../../common/logging.ts';
import type { ComputeDriver } from '../compute/compute-driver.ts';
import { nowSeconds } from '../controller/completion.ts';

/** States a load balancer may be repaired from (Octavia's FAILOVERABLE_STATUSES). */
const REPAIRABLE = ['ACTIVE', 'ERROR'];

/**
 * Moves every ACTIVE or ERROR load balancer with an ALLOCATED amphora that the compute driver does
 * not report alive to PENDING_UPDATE, so that the worker's resumption of pending load balancers
 * (which runs next, at start) replaces the dead amphorae and pushes the configuration again, as
 * for an operation a stopped controller left pending. Returns the load balancers marked. A
 * liveness check that fails (a compute API error) counts as alive: the health manager still
 * watches that amphora.
 */
export async function markLoadBalancersWithDeadAmphorae(db: Database, compute: ComputeDriver, log: Logger): Promise<string[]> {
  const allocated = (await db.read(() =>
    db.models.amphora.findAll({ where: { status: 'ALLOCATED', load_balancer_id: { [Op.ne]: null } }, raw: true }),
  )) as Row[];
  const dead = new Map<string, string[]>();
  for (const amphora of allocated) {
    const alive = amphora.compute_id ? await compute.isAlive(amphora.compute_id).catch(() => true) : false;
    if (!alive) dead.set(amphora.load_balancer_id, [...(dead.get(amphora.load_balancer_id) ?? []), amphora.id]);
  }
  const marked: string[] = [];
  for (const [loadBalancerId, amphoraIds] of dead) {
    const [count] = await db.tx((t) =>
      db.models.load_balancer.update(
        { provisioning_status: 'PENDING_UPDATE', updated_at: nowSeconds() },
        { where: { id: loadBalancerId, provisioning_status: REPAIRABLE }, transaction: t },
      ),
    );
    if (count === 1) {
      marked.push(loadBalancerId);
      log.warn({ loadBalancerId, amphoraIds }, 'amphorae found dead at start: their load balancer is repaired now');
    }
  }
  return marked;
}
