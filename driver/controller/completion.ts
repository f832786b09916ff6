// The last step of every provider operation: the objects a load balancer has in PENDING_* become
// ACTIVE (or disappear, for deletes) in one transaction; on failure the target becomes ERROR and
// its parents return to ACTIVE. The API allows one pending operation per load balancer at a time,
// so "everything pending under this load balancer" is exactly what the operation touched.
import { Op, type Transaction } from 'sequelize';
import type { Database, Row } from '../../common/db/database.ts';

const PENDING = ['PENDING_CREATE', 'PENDING_UPDATE', 'PENDING_DELETE'];

export const nowSeconds = (): Date => {
  const d = new Date();
  d.setMilliseconds(0);
  return d;
};

export interface LoadBalancerTree {
  lb: Row;
  listeners: Row[];
  pools: Row[];
  members: Row[];
  monitors: Row[];
  policies: Row[];
  rules: Row[];
}

export async function loadTree(db: Database, lbId: string, t?: Transaction): Promise<LoadBalancerTree | undefined> {
  const m = db.models;
  const lb = (await m.load_balancer.findByPk(lbId, { raw: true, transaction: t, lock: t ? db.lock : undefined })) as Row | null;
  if (!lb) return undefined;
  const listeners = (await m.listener.findAll({ where: { load_balancer_id: lbId }, raw: true, transaction: t })) as Row[];
  const pools = (await m.pool.findAll({ where: { load_balancer_id: lbId }, raw: true, transaction: t })) as Row[];
  const poolIds = pools.map((p) => p.id);
  const listenerIds = listeners.map((l) => l.id);
  const members = poolIds.length ? ((await m.member.findAll({ where: { pool_id: poolIds }, raw: true, transaction: t })) as Row[]) : [];
  const monitors = poolIds.length ? ((await m.health_monitor.findAll({ where: { pool_id: poolIds }, raw: true, transaction: t })) as Row[]) : [];
  const policies = listenerIds.length ? ((await m.l7policy.findAll({ where: { listener_id: listenerIds }, raw: true, transaction: t })) as Row[]) : [];
  const policyIds = policies.map((p) => p.id);
  const rules = policyIds.length ? ((await m.l7rule.findAll({ where: { l7policy_id: policyIds }, raw: true, transaction: t })) as Row[]) : [];
  return { lb, listeners, pools, members, monitors, policies, rules };
}

type ChildTable = 'listener' | 'pool' | 'member' | 'health_monitor' | 'l7policy' | 'l7rule';

/** Writes made in the transaction that ends an operation (driver/controller/worker.ts). */
export type EndWrite = (t: Transaction) => Promise<void>;

/**
 * What completion reads of a load balancer's objects (ids, statuses, parents, policy positions),
 * the load balancer row locked first. The children come in one statement: completion is the
 * worker's part of every operation and runs while the API answers the next requests.
 */
async function loadStatuses(db: Database, lbId: string, t: Transaction): Promise<LoadBalancerTree | undefined> {
  const [lb] = await db.select(`SELECT * FROM load_balancer WHERE id = ?${db.forUpdate}`, [lbId], t);
  if (!lb) return undefined;
  const rows = await db.select(STATUS_QUERY, [lbId, lbId, lbId, lbId, lbId, lbId], t);
  const tree: LoadBalancerTree = { lb, listeners: [], pools: [], members: [], monitors: [], policies: [], rules: [] };
  for (const r of rows) {
    const row: Row = { id: r.id, provisioning_status: r.provisioning_status, admin_state_up: r.admin_state_up };
    if (r.kind === 'listener') tree.listeners.push(row);
    else if (r.kind === 'pool') tree.pools.push(row);
    else if (r.kind === 'member') tree.members.push({ ...row, pool_id: r.parent_id });
    else if (r.kind === 'health_monitor') tree.monitors.push({ ...row, pool_id: r.parent_id });
    else if (r.kind === 'l7policy') tree.policies.push({ ...row, listener_id: r.parent_id, position: r.position });
    else tree.rules.push({ ...row, l7policy_id: r.parent_id });
  }
  return tree;
}

const STATUS_COLUMNS = 'x.id, x.provisioning_status, x.admin_state_up';
const STATUS_QUERY = [
  `SELECT 'listener' AS kind, ${STATUS_COLUMNS}, NULL AS parent_id, NULL AS position FROM listener x WHERE x.load_balancer_id = ?`,
  `SELECT 'pool', ${STATUS_COLUMNS}, NULL, NULL FROM pool x WHERE x.load_balancer_id = ?`,
  `SELECT 'member', ${STATUS_COLUMNS}, x.pool_id, NULL FROM member x JOIN pool p ON p.id = x.pool_id WHERE p.load_balancer_id = ?`,
  `SELECT 'health_monitor', ${STATUS_COLUMNS}, x.pool_id, NULL FROM health_monitor x JOIN pool p ON p.id = x.pool_id WHERE p.load_balancer_id = ?`,
  `SELECT 'l7policy', ${STATUS_COLUMNS}, x.listener_id, x.position FROM l7policy x JOIN listener l ON l.id = x.listener_id WHERE l.load_balancer_id = ?`,
  `SELECT 'l7rule', ${STATUS_COLUMNS}, x.l7policy_id, NULL FROM l7rule x JOIN l7policy y ON y.id = x.l7policy_id JOIN listener l ON l.id = y.listener_id WHERE l.load_balancer_id = ?`,
].join(' UNION ALL ');

/** Sets the columns of the rows with these ids (none: nothing). */
async function setColumns(db: Database, table: ChildTable | 'load_balancer', ids: string[], values: Row, t: Transaction): Promise<void> {
  if (ids.length === 0) return;
  const columns = Object.keys(values);
  await db.run(
    `UPDATE \`${table}\` SET ${columns.map((c) => `\`${c}\` = ?`).join(', ')} WHERE id IN (${ids.map(() => '?').join(', ')})`,
    [...columns.map((c) => values[c]), ...ids],
    t,
  );
}

/**
 * Marks the operation on this load balancer done, with `writes` in the same transaction.
 * Returns false if the load balancer is gone.
 */
export async function completeLoadBalancer(db: Database, lbId: string, writes: EndWrite[] = []): Promise<boolean> {
  return db.tx(async (t) => {
    const tree = await loadStatuses(db, lbId, t);
    if (!tree) return false;
    for (const write of writes) await write(t);
    const now = nowSeconds();
    if (tree.lb.provisioning_status === 'PENDING_DELETE') {
      await deleteTree(db, tree, t);
      await db.models.load_balancer.update({ provisioning_status: 'DELETED', updated_at: now }, { where: { id: lbId }, transaction: t });
      await db.models.amphora.update({ status: 'DELETED', updated_at: now }, { where: { load_balancer_id: lbId }, transaction: t });
      await db.models.tag.destroy({ where: { resource_id: lbId }, transaction: t });
      return true;
    }
    const m = db.models;
    const gone = (rows: Row[]) => rows.filter((r) => r.provisioning_status === 'PENDING_DELETE').map((r) => r.id as string);

    const deletedListeners = gone(tree.listeners);
    const deletedPools = gone(tree.pools);
    const deletedPolicies = [...gone(tree.policies), ...tree.policies.filter((p) => deletedListeners.includes(p.listener_id)).map((p) => p.id)];
    const deletedRules = [...gone(tree.rules), ...tree.rules.filter((r) => deletedPolicies.includes(r.l7policy_id)).map((r) => r.id)];
    const deletedMonitors = [...gone(tree.monitors), ...tree.monitors.filter((h) => deletedPools.includes(h.pool_id)).map((h) => h.id)];
    const deletedMembers = [...gone(tree.members), ...tree.members.filter((x) => deletedPools.includes(x.pool_id)).map((x) => x.id)];

    await removeRows(db, 'l7rule', deletedRules, t);
    await removeRows(db, 'l7policy', deletedPolicies, t);
    await removeRows(db, 'member', deletedMembers, t);
    for (const monitor of tree.monitors.filter((h) => deletedMonitors.includes(h.id) && !deletedPools.includes(h.pool_id))) {
      await m.member.update({ operating_status: 'NO_MONITOR' }, { where: { pool_id: monitor.pool_id }, transaction: t });
    }
    await removeRows(db, 'health_monitor', deletedMonitors, t);
    if (deletedPools.length) {
      await m.listener.update({ default_pool_id: null }, { where: { default_pool_id: deletedPools }, transaction: t });
    }
    await removeRows(db, 'pool', deletedPools, t);
    if (deletedListeners.length) await m.listener_statistics.destroy({ where: { listener_id: deletedListeners }, transaction: t });
    await removeRows(db, 'listener', deletedListeners, t);
    await repackPositions(db, tree.policies.filter((p) => !deletedPolicies.includes(p.id)), t);

    // One statement per table and resulting status (not one per object).
    const activate = async (table: ChildTable, rows: Row[], withOperating: boolean) => {
      const pending = rows.filter((row) => row.provisioning_status === 'PENDING_CREATE' || row.provisioning_status === 'PENDING_UPDATE');
      if (!withOperating) return setColumns(db, table, pending.map((r) => r.id), { provisioning_status: 'ACTIVE', updated_at: now }, t);
      for (const up of [true, false]) {
        const ids = pending.filter((r) => !!r.admin_state_up === up).map((r) => r.id);
        await setColumns(db, table, ids, { provisioning_status: 'ACTIVE', operating_status: up ? 'ONLINE' : 'OFFLINE', updated_at: now }, t);
      }
    };
    await activate('listener', tree.listeners, false);
    await activate('pool', tree.pools, false);
    await activate('member', tree.members, false);
    await activate('health_monitor', tree.monitors, true);
    await activate('l7policy', tree.policies, true);
    await activate('l7rule', tree.rules, true);
    await setColumns(db, 'load_balancer', [lbId], { provisioning_status: 'ACTIVE', updated_at: now }, t);
    return true;
  });
}

export interface FailureTarget {
  table: ChildTable | 'load_balancer';
  ids: string[];
}

/** Marks the operation failed: the targets go to ERROR, every other pending object back to ACTIVE. */
export async function failLoadBalancer(db: Database, lbId: string, target: FailureTarget): Promise<void> {
  await db.tx(async (t) => {
    const tree = await loadStatuses(db, lbId, t);
    if (!tree) return;
    const now = nowSeconds();
    const m = db.models;
    const tables: Array<[ChildTable, Row[]]> = [
      ['listener', tree.listeners], ['pool', tree.pools], ['member', tree.members],
      ['health_monitor', tree.monitors], ['l7policy', tree.policies], ['l7rule', tree.rules],
    ];
    for (const [table, rows] of tables) {
      for (const row of rows) {
        if (!PENDING.includes(row.provisioning_status)) continue;
        const failed = target.table === table && target.ids.includes(row.id);
        await m[table].update({ provisioning_status: failed ? 'ERROR' : 'ACTIVE', updated_at: now }, { where: { id: row.id }, transaction: t });
      }
    }
    const lbFailed = target.table === 'load_balancer';
    await m.load_balancer.update({ provisioning_status: lbFailed ? 'ERROR' : 'ACTIVE', updated_at: now }, { where: { id: lbId }, transaction: t });
  });
}

async function removeRows(db: Database, table: ChildTable, ids: string[], t: Transaction): Promise<void> {
  if (ids.length === 0) return;
  await db.models[table].destroy({ where: { id: ids }, transaction: t });
  await db.models.tag.destroy({ where: { resource_id: ids }, transaction: t });
}

async function deleteTree(db: Database, tree: LoadBalancerTree, t: Transaction): Promise<void> {
  await removeRows(db, 'l7rule', tree.rules.map((r) => r.id), t);
  await removeRows(db, 'l7policy', tree.policies.map((r) => r.id), t);
  await removeRows(db, 'member', tree.members.map((r) => r.id), t);
  await removeRows(db, 'health_monitor', tree.monitors.map((r) => r.id), t);
  await removeRows(db, 'pool', tree.pools.map((r) => r.id), t);
  const listenerIds = tree.listeners.map((r) => r.id);
  if (listenerIds.length) await db.models.listener_statistics.destroy({ where: { listener_id: listenerIds }, transaction: t });
  await removeRows(db, 'listener', listenerIds, t);
}

/** Positions of a listener's policies are dense (1..N) after deletes. */
async function repackPositions(db: Database, policies: Row[], t: Transaction): Promise<void> {
  const byListener = new Map<string, Row[]>();
  for (const p of policies) byListener.set(p.listener_id, [...(byListener.get(p.listener_id) ?? []), p]);
  for (const list of byListener.values()) {
    list.sort((a, b) => a.position - b.position);
    for (const [i, p] of list.entries()) {
      if (p.position !== i + 1) await db.models.l7policy.update({ position: i + 1 }, { where: { id: p.id }, transaction: t });
    }
  }
}

/** Load balancers left in PENDING_* (by a crash or restart): the worker resumes them on start. */
export async function pendingLoadBalancers(db: Database): Promise<Row[]> {
  return db.read(async () => (await db.models.load_balancer.findAll({ where: { provisioning_status: { [Op.in]: PENDING } }, raw: true })) as Row[]);
}
