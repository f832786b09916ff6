// Building blocks of every write: row locks and the state machine's 409s, status marking, tags,
// quota checks and provider calls. Handlers compose them inside one transaction.
import { randomUUID } from 'node:crypto';
import { Op, type Transaction } from 'sequelize';
import type { Row } from '../common/db/database.ts';
import type { TableName } from '../common/db/tables.ts';
import { nowSeconds } from '../driver/controller/completion.ts';
import { NotImplementedByProviderError, UnsupportedOptionError, type ProviderDriver } from '../driver/provider.ts';
import { errors } from './errors.ts';
import type { Ctx, Services } from './services.ts';

export const newId = () => randomUUID();
export const now = nowSeconds;

/** The fields every new object of a load balancer's tree starts with. */
export function newObject(projectId: string, body: Row, operatingStatus = 'OFFLINE'): Row {
  return {
    id: newId(),
    project_id: projectId,
    provisioning_status: 'PENDING_CREATE',
    operating_status: operatingStatus,
    admin_state_up: body.admin_state_up ?? true,
    created_at: now(),
    updated_at: null,
  };
}

export async function lockLoadBalancer(services: Services, lbId: string, t: Transaction): Promise<Row> {
  const { db } = services;
  const lb = (await db.models.load_balancer.findOne({
    where: { id: lbId, provisioning_status: { [Op.ne]: 'DELETED' } },
    raw: true,
    transaction: t,
    lock: db.lock,
  })) as Row | null;
  if (!lb) throw errors.notFound('Load Balancer', lbId);
  return lb;
}

/** Child operations need an ACTIVE load balancer (409 immutable otherwise). */
export function requireActive(row: Row, display: string): void {
  if (row.provisioning_status !== 'ACTIVE') throw errors.immutable(display, row.id);
}

export async function setStatus(services: Services, table: TableName, ids: string[], status: string, t: Transaction): Promise<void> {
  if (ids.length === 0) return;
  await services.db.models[table].update({ provisioning_status: status, updated_at: now() }, { where: { id: ids }, transaction: t });
}

/** Sets an object's tags (absent or null: unchanged). `fresh`: the object is new, it has none yet. */
export async function replaceTags(services: Services, resourceId: string, tags: unknown, t: Transaction, fresh = false): Promise<void> {
  if (tags === undefined || tags === null) return;
  const list = [...new Set(tags as string[])];
  if (!fresh) await services.db.models.tag.destroy({ where: { resource_id: resourceId }, transaction: t });
  if (list.length) await services.db.models.tag.bulkCreate(list.map((tag) => ({ resource_id: resourceId, tag })), { transaction: t });
}

/** The driver of a load balancer's provider (501 if the name has no driver). */
export function providerOf(services: Services, name: string): ProviderDriver {
  const driver = services.providers.get(name);
  if (!driver) throw errors.providerNotFound(name);
  return driver;
}

/** Runs a provider's in-transaction check, turning its refusals into Octavia's 501s. */
export function checkWithProvider(driver: ProviderDriver, providerName: string, check: () => void): void {
  try {
    check();
  } catch (err) {
    if (err instanceof UnsupportedOptionError) throw errors.providerUnsupportedOption(providerName, err.message);
    if (err instanceof NotImplementedByProviderError) throw errors.providerNotImplemented(providerName, err.message);
    throw err;
  }
}

export type QuotaKind = 'load_balancer' | 'listener' | 'pool' | 'health_monitor' | 'member' | 'l7policy' | 'l7rule';

const QUOTA_DISPLAY: Record<QuotaKind, string> = {
  load_balancer: 'Load Balancer',
  listener: 'Listener',
  pool: 'Pool',
  health_monitor: 'Health Monitor',
  member: 'Member',
  l7policy: 'L7 Policy',
  l7rule: 'L7 Rule',
};

const QUOTA_DEFAULT_KEY: Record<QuotaKind, keyof Services['config']['quotas']> = {
  load_balancer: 'loadBalancer',
  listener: 'listener',
  pool: 'pool',
  health_monitor: 'healthMonitor',
  member: 'member',
  l7policy: 'l7policy',
  l7rule: 'l7rule',
};

export function quotaDefault(services: Services, kind: QuotaKind): number {
  return services.config.quotas[QUOTA_DEFAULT_KEY[kind]];
}

/**
 * 403 when creating `count` more objects of `kind` would pass the project's quota. Locks the
 * project's quota row (creating it on first use, as Octavia does) so concurrent creates queue.
 */
export async function checkQuota(ctx: Ctx, projectId: string, kind: QuotaKind, count: number, t: Transaction): Promise<void> {
  const { services } = ctx.state;
  if (services.config.api.authStrategy === 'noauth' || count <= 0) return;
  const { db } = services;
  // The row first, then its lock: a locking read of an absent row takes a gap lock on MariaDB, and two
  // first creates of a project holding it would deadlock on each other's insert.
  await db.insertIfAbsent('quota', { project_id: projectId }, t);
  const [quota] = await db.select(`SELECT * FROM quota WHERE project_id = ?${db.forUpdate}`, [projectId], t);
  if (!quota) throw new Error(`quota row of project ${projectId} missing after it was inserted`);
  const limit = quota[kind] ?? quotaDefault(services, kind);
  if (limit === -1) return;
  const used = await usage(services, projectId, kind, t);
  if (used + count > limit) throw errors.quota(QUOTA_DISPLAY[kind]);
}

async function usage(services: Services, projectId: string, kind: QuotaKind, t: Transaction): Promise<number> {
  const deleted = kind === 'load_balancer' ? " AND provisioning_status <> 'DELETED'" : '';
  const [row] = await services.db.select(`SELECT COUNT(*) AS n FROM \`${kind}\` WHERE project_id = ?${deleted}`, [projectId], t);
  return Number(row!.n);
}
