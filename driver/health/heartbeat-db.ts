// What one heartbeat reads and writes, inside the caller's transaction: the load balancer's
// statuses, the amphora's health row, and its listener statistics.
//
// Locks (MariaDB): the API locks the object it changes, then its load balancer, then the parents it
// marks PENDING_UPDATE, so no lock order of ours could be deadlock-free against it. A heartbeat
// therefore never waits for a row lock while holding one: it takes the load balancer's lock and
// those of the rows it will write with NOWAIT, and if any is held it gives up at once
// (LockBusyError) and the caller tries again. Holding the load balancer's lock also serialises
// the heartbeats of one load balancer and keeps them out of its operations' transactions.
import { udpTwinId } from '../amphora/udp-twin.ts';
import { QueryTypes, type Transaction } from 'sequelize';
import type { Database, Row } from '../../common/db/database.ts';
import type { TableName } from '../../common/db/tables.ts';
import type { Heartbeat } from '../../common/messages.ts';
import type { LoadBalancerSnapshot, StatusChanges } from './heartbeat-status.ts';

export interface LoadBalancerState {
  lb: Row;
  snapshot: LoadBalancerSnapshot;
  listenerIds: Set<string>;
  /** UDP twin listener id -> its also_udp listener's id (driver/amphora/udp-twin.ts). */
  udpTwins: Map<string, string>;
  udpTwinPools: Set<string>;
}

export class LockBusyError extends Error {
  override name = 'LockBusyError';
  constructor(
    readonly table: string,
    readonly ids: string[],
  ) {
    super(`${table} ${ids.join(', ')} locked by another transaction`);
  }
}

// MariaDB answers a NOWAIT lock that is held with ER_LOCK_WAIT_TIMEOUT, MySQL 8 with ER_LOCK_NOWAIT;
// a deadlock (ER_LOCK_DEADLOCK: none should involve us) is tried again the same way.
const LOCK_BUSY_ERRNOS = new Set([1205, 3572, 1213]);

/** Locks rows at once or throws LockBusyError; nothing to do on SQLite, whose transactions are exclusive. */
export async function lockNow(db: Database, table: TableName, ids: string[], t: Transaction): Promise<void> {
  if (db.dialect !== 'mysql' || ids.length === 0) return;
  try {
    await db.sequelize.query(`SELECT id FROM \`${table}\` WHERE id IN (:ids) FOR UPDATE NOWAIT`, {
      replacements: { ids },
      type: QueryTypes.SELECT,
      transaction: t,
    });
  } catch (err) {
    const errno = (err as { original?: { errno?: number } }).original?.errno;
    if (errno !== undefined && LOCK_BUSY_ERRNOS.has(errno)) throw new LockBusyError(table, ids);
    throw err;
  }
}

/** Timestamps are stored to the second (MariaDB DATETIME); every health timestamp is truncated the same way. */
export const wholeSeconds = (ms: number): Date => new Date(Math.floor(ms / 1000) * 1000);

/**
 * Locks the load balancer, then reads it with its listeners, pools and members; undefined if it
 * does not exist. The lock is the transaction's first read: on MariaDB (REPEATABLE READ) the plain
 * reads that follow then see what was committed before it was granted.
 */
export async function loadLoadBalancer(db: Database, lbId: string, t: Transaction): Promise<LoadBalancerState | undefined> {
  const m = db.models;
  await lockNow(db, 'load_balancer', [lbId], t);
  const lb = (await m.load_balancer.findByPk(lbId, { raw: true, transaction: t })) as Row | null;
  if (!lb) return undefined;
  const listeners = (await m.listener.findAll({ where: { load_balancer_id: lbId }, raw: true, transaction: t })) as Row[];
  const pools = (await m.pool.findAll({ where: { load_balancer_id: lbId }, raw: true, transaction: t })) as Row[];
  const members = pools.length
    ? ((await m.member.findAll({ where: { pool_id: pools.map((p) => p.id) }, raw: true, transaction: t })) as Row[])
    : [];
  const snapshot: LoadBalancerSnapshot = {
    enabled: Boolean(lb.admin_state_up),
    provisioningStatus: lb.provisioning_status,
    operatingStatus: lb.operating_status,
    listeners: listeners.map((l) => ({ id: l.id, enabled: Boolean(l.admin_state_up), operatingStatus: l.operating_status })),
    pools: pools.map((p) => ({
      id: p.id,
      operatingStatus: p.operating_status,
      members: members.filter((x) => x.pool_id === p.id).map((x) => ({ id: x.id, operatingStatus: x.operating_status })),
    })),
  };
  const dual = listeners.filter((l) => l.also_udp);
  return {
    lb,
    snapshot,
    listenerIds: new Set(listeners.map((l) => l.id as string)),
    udpTwins: new Map(dual.map((l) => [udpTwinId(l.id), l.id as string])),
    udpTwinPools: new Set(dual.filter((l) => l.default_pool_id).map((l) => udpTwinId(l.default_pool_id))),
  };
}

/** Writes the operating statuses that changed, the load balancer's last (its lock is already held). */
export async function writeStatusChanges(db: Database, lbId: string, changes: StatusChanges, at: Date, t: Transaction): Promise<void> {
  const m = db.models;
  const tables = [
    ['listener', changes.listeners],
    ['member', changes.members],
    ['pool', changes.pools],
  ] as const;
  for (const [table, byId] of tables) await lockNow(db, table, Object.keys(byId), t);
  for (const [table, byId] of tables) {
    const idsByStatus = new Map<string, string[]>();
    for (const [id, status] of Object.entries(byId)) idsByStatus.set(status, [...(idsByStatus.get(status) ?? []), id]);
    for (const [status, ids] of idsByStatus) {
      await m[table].update({ operating_status: status, updated_at: at }, { where: { id: ids }, transaction: t });
    }
  }
  if (changes.loadBalancer) {
    await m.load_balancer.update({ operating_status: changes.loadBalancer, updated_at: at }, { where: { id: lbId }, transaction: t });
  }
}

/**
 * Upserts the amphora's health row with a new last_update; `busy` is left as it is. Insert-if-absent
 * first: a read-then-create raced the other writer of a new amphora's row (a heartbeat against the
 * acknowledgement of its first configuration) into a duplicate key.
 */
export async function refreshHealth(db: Database, amphoraId: string, at: Date, t: Transaction): Promise<void> {
  await db.insertIfAbsent('amphora_health', { amphora_id: amphoraId, last_update: at, busy: false }, t);
  await db.models.amphora_health.update({ last_update: at }, { where: { amphora_id: amphoraId }, transaction: t });
}

/** ACTIVE_STANDBY (extension): whether the amphora holds the VIP, as its heartbeat says. */
export async function recordVipHolder(db: Database, amphoraId: string, holdsVip: boolean | null, t: Transaction): Promise<void> {
  await lockNow(db, 'amphora', [amphoraId], t);
  await db.models.amphora.update({ vip_holder: holdsVip }, { where: { id: amphoraId }, transaction: t });
}

/**
 * Adds a v3 heartbeat's deltas (rx, tx, totconns, ereq) to the (listener, amphora) rows of the
 * listeners the load balancer has; `conns` replaces active_connections when `setActive` (a late
 * heartbeat's deltas still count, its connection gauge is out of date).
 */
export async function addListenerStatistics(
  db: Database,
  amphoraId: string,
  reports: Heartbeat['listeners'],
  listenerIds: Set<string>,
  setActive: boolean,
  t: Transaction,
): Promise<void> {
  const m = db.models;
  const known = Object.entries(reports).filter(([id]) => listenerIds.has(id));
  if (known.length === 0) return;
  const existing = new Set(
    ((await m.listener_statistics.findAll({
      where: { amphora_id: amphoraId, listener_id: known.map(([id]) => id) },
      attributes: ['listener_id'],
      raw: true,
      transaction: t,
    })) as Row[]).map((r) => r.listener_id as string),
  );
  for (const [listenerId, { stats }] of known) {
    const where = { listener_id: listenerId, amphora_id: amphoraId };
    if (existing.has(listenerId)) {
      // Added in SQL so that counters beyond 2^53 are not rounded through a JS number.
      const plus = (column: string, delta: number) => db.sequelize.literal(`${column} + ${sqlCount(delta)}`);
      const values: Row = {
        bytes_in: plus('bytes_in', stats.rx),
        bytes_out: plus('bytes_out', stats.tx),
        total_connections: plus('total_connections', stats.totconns),
        request_errors: plus('request_errors', stats.ereq),
      };
      if (setActive) values.active_connections = stats.conns;
      await m.listener_statistics.update(values, { where, transaction: t });
    } else {
      await m.listener_statistics.create(
        {
          ...where,
          bytes_in: stats.rx,
          bytes_out: stats.tx,
          active_connections: setActive ? stats.conns : 0,
          total_connections: stats.totconns,
          request_errors: stats.ereq,
        },
        { transaction: t },
      );
    }
  }
}

/** A counter as SQL text; the heartbeat schema already guarantees it, this keeps the literal safe regardless. */
function sqlCount(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`invalid statistics counter: ${n}`);
  return String(n);
}
