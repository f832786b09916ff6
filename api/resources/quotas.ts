// /v2/lbaas/quotas: per-project limits. A project's quota row holds one nullable column per kind
// (null = the configured default); rows are created by the first PUT or the first object create.
import type Router from '@koa/router';
import { UniqueConstraintError } from 'sequelize';
import type { Row } from '../../common/db/database.ts';
import { enforce, listScope } from '../access.ts';
import { col, listPage, listQuery, type ResourceSpec } from '../collection.ts';
import { errors } from '../errors.ts';
import { quotaDefault, type QuotaKind } from '../mutations.ts';
import { parseRequest, type Schema } from '../schema/object.ts';
import { integer } from '../schema/types.ts';
import type { Ctx, Services } from '../services.ts';
import type { ApiObject } from '../views.ts';

const KINDS: QuotaKind[] = ['load_balancer', 'listener', 'pool', 'health_monitor', 'member', 'l7policy', 'l7rule'];

type QuotaValues = Record<QuotaKind, number | null>;

/** Both spellings of the renamed attributes are returned (the underscored ones are deprecated). */
function quotaView(projectId: string, v: QuotaValues): ApiObject {
  return {
    project_id: projectId,
    tenant_id: projectId,
    loadbalancer: v.load_balancer,
    load_balancer: v.load_balancer,
    listener: v.listener,
    pool: v.pool,
    member: v.member,
    healthmonitor: v.health_monitor,
    health_monitor: v.health_monitor,
    l7policy: v.l7policy,
    l7rule: v.l7rule,
  };
}

const stored = (row: Row): QuotaValues => Object.fromEntries(KINDS.map((k) => [k, row[k] ?? null])) as QuotaValues;
const defaults = (services: Services): QuotaValues => Object.fromEntries(KINDS.map((k) => [k, quotaDefault(services, k)])) as QuotaValues;
const withDefaults = (services: Services, row: Row | null): QuotaValues =>
  Object.fromEntries(KINDS.map((k) => [k, row?.[k] ?? quotaDefault(services, k)])) as QuotaValues;

export const quotaSpec: ResourceSpec = {
  table: 'quota',
  display: 'Quotas',
  singular: 'quota',
  plural: 'quotas',
  linksKey: 'quotas_links',
  policy: 'quota',
  idColumn: 'project_id',
  hasTags: false,
  hasCreatedAt: false,
  projectScoped: true,
  // The list shows what is stored: null means "the configured default".
  view: async (_db, rows) => rows.map((r) => quotaView(r.project_id, stored(r))),
  columns: {
    project_id: col('project_id'),
    loadbalancer: col('load_balancer', 'int'),
    load_balancer: col('load_balancer', 'int'),
    listener: col('listener', 'int'),
    pool: col('pool', 'int'),
    member: col('member', 'int'),
    healthmonitor: col('health_monitor', 'int'),
    health_monitor: col('health_monitor', 'int'),
    l7policy: col('l7policy', 'int'),
    l7rule: col('l7rule', 'int'),
  },
};

const limit = { type: integer({ min: -1, max: 2000000000 }) };
const putSchema: Schema = {
  loadbalancer: limit,
  load_balancer: limit,
  listener: limit,
  pool: limit,
  member: limit,
  healthmonitor: limit,
  health_monitor: limit,
  l7policy: limit,
  l7rule: limit,
};

/** The project in the path: required, and at most 36 characters like the column holding it. */
function pathProject(ctx: Ctx): string {
  const projectId = ctx.params.project_id;
  if (!projectId) throw errors.missingProjectId();
  if (projectId.length > 36) {
    throw errors.invalidInput('project_id', projectId, 'Value should have a maximum character requirement of 36');
  }
  return projectId;
}

async function readQuota(services: Services, projectId: string): Promise<Row | null> {
  const { db } = services;
  return db.read(async () => (await db.models.quota.findByPk(projectId, { raw: true })) as Row | null);
}

async function list(ctx: Ctx): Promise<void> {
  const q = listQuery(ctx, quotaSpec);
  const scope = listScope(ctx, 'quota', q.projectId);
  await listPage(ctx, quotaSpec, q, scope ? [{ project_id: scope }] : []);
}

async function show(ctx: Ctx): Promise<void> {
  const projectId = pathProject(ctx);
  enforce(ctx, 'quota', 'get_one', projectId);
  const row = await readQuota(ctx.state.services, projectId);
  ctx.body = { quota: quotaView(projectId, withDefaults(ctx.state.services, row)) };
}

/** GET /quotas/{project_id}/default: the configured defaults, whatever the project has set. */
async function showDefault(ctx: Ctx): Promise<void> {
  const projectId = pathProject(ctx);
  enforce(ctx, 'quota', 'get_defaults', projectId);
  ctx.body = { quota: quotaView(projectId, defaults(ctx.state.services)) };
}

/**
 * GET /quotas/defaults. Octavia serves it only by accident (as the quotas of a project called
 * "defaults", so only admins pass its RBAC); here it is a route of its own, authorised as
 * get_defaults on the caller's project. The body keeps the reference's project_id "defaults".
 */
async function showConfiguredDefaults(ctx: Ctx): Promise<void> {
  enforce(ctx, 'quota', 'get_defaults', ctx.state.auth.projectId);
  ctx.body = { quota: quotaView('defaults', defaults(ctx.state.services)) };
}

async function update(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const { db } = services;
  const body = parseRequest(ctx.state.body, 'quota', putSchema, 'quotas');
  const projectId = pathProject(ctx);
  enforce(ctx, 'quota', 'put', projectId);
  // When both spellings are sent, the current one (loadbalancer, healthmonitor) wins, as in Octavia.
  const values: Partial<QuotaValues> = {};
  for (const kind of KINDS) {
    const current = kind === 'load_balancer' ? 'loadbalancer' : kind === 'health_monitor' ? 'healthmonitor' : kind;
    if (current in body) values[kind] = body[current] as number | null;
    else if (kind in body) values[kind] = body[kind] as number | null;
  }
  const write = () =>
    db.tx(async (t) => {
      const row = await db.models.quota.findByPk(projectId, { raw: true, transaction: t, lock: db.lock });
      if (row) {
        if (Object.keys(values).length > 0) await db.models.quota.update(values, { where: { project_id: projectId }, transaction: t });
      } else {
        await db.models.quota.create({ project_id: projectId, ...values }, { transaction: t });
      }
    });
  try {
    await write();
  } catch (err) {
    // A concurrent first write (or object create) inserted the row between our read and insert.
    if (!(err instanceof UniqueConstraintError)) throw err;
    await write();
  }
  ctx.status = 202;
  ctx.body = { quota: quotaView(projectId, withDefaults(services, await readQuota(services, projectId))) };
}

/** Resets every limit to the default; the row itself stays (so the project remains listed). */
async function remove(ctx: Ctx): Promise<void> {
  const { db } = ctx.state.services;
  const projectId = pathProject(ctx);
  enforce(ctx, 'quota', 'delete', projectId);
  await db.tx(async (t) => {
    const row = await db.models.quota.findByPk(projectId, { raw: true, transaction: t, lock: db.lock });
    if (!row) throw errors.notFound('Quotas', projectId);
    await db.models.quota.update(Object.fromEntries(KINDS.map((k) => [k, null])), { where: { project_id: projectId }, transaction: t });
  });
  ctx.status = 202;
  ctx.body = ''; // empty, as in Octavia (without a body Koa would write "Accepted")
}

function missingProject(): never {
  throw errors.missingProjectId();
}

export function routes(router: Router<any, any>): void {
  router.get('/quotas', (ctx) => list(ctx as Ctx));
  router.put('/quotas', () => missingProject());
  router.delete('/quotas', () => missingProject());
  router.get('/quotas/defaults', (ctx) => showConfiguredDefaults(ctx as Ctx));
  router.get('/quotas/:project_id', (ctx) => show(ctx as Ctx));
  router.get('/quotas/:project_id/default', (ctx) => showDefault(ctx as Ctx));
  router.put('/quotas/:project_id', (ctx) => update(ctx as Ctx));
  router.delete('/quotas/:project_id', (ctx) => remove(ctx as Ctx));
}
