// /v2/lbaas/l7policies.
import type Router from '@koa/router';
import { Op, type Transaction } from 'sequelize';
import type { Row } from '../../common/db/database.ts';
import { enforce } from '../access.ts';
import { baseColumns, col, findOr404, listResource, showResource, type ResourceSpec } from '../collection.ts';
import { errors } from '../errors.ts';
import { checkQuota, checkWithProvider, lockLoadBalancer, newObject, now, providerOf, replaceTags, requireActive, setStatus } from '../mutations.ts';
import { checkPoolProtocol } from '../protocols.ts';
import { parseRequest, type Body, type Schema } from '../schema/object.ts';
import { boolean, enumOf, integer, isValidUrl, list, oneOf, string, url, uuid } from '../schema/types.ts';
import type { Ctx, Services } from '../services.ts';
import { l7policyViews } from '../views.ts';
import { listenerSpec } from './listeners.ts';

export const l7policySpec: ResourceSpec = {
  table: 'l7policy',
  display: 'L7 Policy',
  singular: 'l7policy',
  plural: 'l7policies',
  linksKey: 'l7policies_links',
  policy: 'l7policy',
  idColumn: 'id',
  hasTags: true,
  hasCreatedAt: true,
  projectScoped: true,
  view: l7policyViews,
  columns: {
    ...baseColumns,
    description: col('description'),
    listener_id: col('listener_id'),
    action: col('action'),
    redirect_pool_id: col('redirect_pool_id'),
    redirect_url: col('redirect_url'),
    redirect_prefix: col('redirect_prefix'),
    redirect_http_code: col('redirect_http_code', 'int'),
    position: col('position', 'int'),
  },
};

export const L7_ACTIONS = ['REJECT', 'REDIRECT_TO_URL', 'REDIRECT_TO_POOL', 'REDIRECT_PREFIX'] as const;
const MAX_POSITION = 2147483647;

export const policyCreateFields: Schema = {
  name: { type: string({ max: 255 }) },
  description: { type: string({ max: 255 }) },
  admin_state_up: { type: boolean },
  project_id: { type: string({ max: 36 }) },
  tenant_id: { type: string({ max: 36 }) },
  action: { type: enumOf(L7_ACTIONS), mandatory: true },
  redirect_pool_id: { type: uuid },
  redirect_url: { type: url },
  redirect_prefix: { type: url },
  redirect_http_code: { type: oneOf([301, 302, 303, 307, 308], integer()) },
  position: { type: integer({ min: 1, max: MAX_POSITION }) },
  tags: { type: list(string({ max: 255 })) },
};
const postSchema: Schema = { ...policyCreateFields, listener_id: { type: uuid, mandatory: true } };
const UPDATABLE = ['name', 'description', 'admin_state_up', 'action', 'redirect_pool_id', 'redirect_url', 'redirect_prefix', 'redirect_http_code', 'position', 'tags'];
const putSchema: Schema = Object.fromEntries(UPDATABLE.map((k) => [k, { type: policyCreateFields[k]!.type }]));

/** Octavia's action/argument normalisation: the redirect target decides the action. */
export function sanitizePolicyArgs(input: Row, create: boolean): Row {
  const p: Row = { ...input };
  if ('action' in p) {
    if (p.action === 'REJECT') Object.assign(p, { redirect_url: null, redirect_pool_id: null, redirect_prefix: null, redirect_http_code: null });
    else if (p.action === 'REDIRECT_TO_URL') {
      if (!p.redirect_url) throw errors.l7policyArgs('redirect_url must not be None');
      p.redirect_pool_id = null;
    } else if (p.action === 'REDIRECT_TO_POOL') {
      if (!p.redirect_pool_id && !p.redirect_pool) throw errors.l7policyArgs('redirect_pool_id or redirect_pool must not be None');
      p.redirect_url = null;
    } else if (p.action === 'REDIRECT_PREFIX') {
      if (!p.redirect_prefix) throw errors.l7policyArgs('redirect_prefix must not be None');
    } else throw errors.invalidL7PolicyAction(String(p.action));
  }
  if ((p.redirect_pool_id || p.redirect_pool) && (p.redirect_url || p.redirect_prefix)) {
    throw errors.l7policyArgs('Cannot specify redirect_pool_id and redirect_url or redirect_prefix at the same time');
  }
  if (p.redirect_pool_id || p.redirect_pool) Object.assign(p, { action: 'REDIRECT_TO_POOL', redirect_url: null, redirect_prefix: null, redirect_http_code: null });
  for (const field of ['redirect_url', 'redirect_prefix'] as const) {
    if (!p[field]) continue;
    if (!isValidUrl(p[field])) throw errors.invalidUrl(p[field]);
    Object.assign(p, field === 'redirect_url' ? { action: 'REDIRECT_TO_URL', redirect_prefix: null } : { action: 'REDIRECT_PREFIX', redirect_url: null });
    p.redirect_pool_id = null;
    if (!p.redirect_http_code) p.redirect_http_code = 302;
  }
  if (create && !('action' in p)) throw errors.invalidL7PolicyAction('None');
  return p;
}

async function checkRedirectPool(services: Services, listener: Row, poolId: string, t: Transaction): Promise<void> {
  const pool = (await services.db.models.pool.findOne({ where: { id: poolId, load_balancer_id: listener.load_balancer_id }, raw: true, transaction: t })) as Row | null;
  if (!pool) throw errors.notFound('Pool', poolId);
  checkPoolProtocol(listener.protocol, pool.protocol);
}

/** Builds and validates a new policy of `listener` (POST and graph create; graph passes the pool id it resolved). */
export function buildPolicy(lb: Row, listener: Row, body: Body): Row {
  if (listener.protocol === 'PROMETHEUS') throw errors.listenerNoChildren('PROMETHEUS');
  const args = sanitizePolicyArgs(
    Object.fromEntries(Object.entries(body).filter(([k]) => ['action', 'redirect_pool_id', 'redirect_pool', 'redirect_url', 'redirect_prefix', 'redirect_http_code'].includes(k))),
    true,
  );
  return {
    ...newObject(lb.project_id, body),
    listener_id: listener.id,
    name: body.name ?? null,
    description: body.description ?? null,
    action: args.action,
    redirect_pool_id: args.redirect_pool_id ?? null,
    redirect_url: args.redirect_url ?? null,
    redirect_prefix: args.redirect_prefix ?? null,
    redirect_http_code: args.redirect_http_code ?? null,
    position: body.position ?? MAX_POSITION,
  };
}

/** Puts `policy` at its requested position among the listener's policies (1..N, dense). */
export async function placePolicy(services: Services, policy: Row, t: Transaction): Promise<void> {
  const m = services.db.models.l7policy;
  const others = (await m.findAll({ where: { listener_id: policy.listener_id, id: { [Op.ne]: policy.id } }, order: [['position', 'ASC']], raw: true, transaction: t })) as Row[];
  const index = Math.min(Math.max(policy.position, 1), others.length + 1) - 1;
  others.splice(index, 0, policy);
  for (const [i, p] of others.entries()) {
    if (p.id === policy.id) policy.position = i + 1;
    else if (p.position !== i + 1) await m.update({ position: i + 1 }, { where: { id: p.id }, transaction: t });
  }
}

async function create(ctx: Ctx): Promise<void> {
  const body = parseRequest(ctx.state.body, 'l7policy', postSchema, 'l7policy_');
  const { services } = ctx.state;
  const { db } = services;
  const parent = await findOr404(services, listenerSpec, body.listener_id as string);
  enforce(ctx, 'l7policy', 'post', parent.project_id);
  let provider = '';
  const row = await db.tx(async (t) => {
    const listener = await findOr404(services, listenerSpec, parent.id, t);
    const lb = await lockLoadBalancer(services, listener.load_balancer_id, t);
    await checkQuota(ctx, lb.project_id, 'l7policy', 1, t);
    const policy = buildPolicy(lb, listener, body);
    if (policy.redirect_pool_id) await checkRedirectPool(services, listener, policy.redirect_pool_id, t);
    requireActive(lb, 'Load Balancer');
    const driver = providerOf(services, lb.provider);
    checkWithProvider(driver, lb.provider, () => driver.checks.l7policy?.(policy, listener));
    await placePolicy(services, policy, t);
    await db.models.l7policy.create(policy, { transaction: t });
    await replaceTags(services, policy.id, body.tags, t, true);
    await setStatus(services, 'listener', [listener.id], 'PENDING_UPDATE', t);
    await setStatus(services, 'load_balancer', [lb.id], 'PENDING_UPDATE', t);
    provider = lb.provider;
    return policy;
  });
  providerOf(services, provider).submit({ kind: 'l7policy', action: 'create', id: row.id, loadBalancerId: parent.load_balancer_id });
  ctx.status = 201;
  const [view] = await db.read(() => l7policyViews(db, [row]));
  ctx.body = { l7policy: view };
}

async function update(ctx: Ctx): Promise<void> {
  const body = parseRequest(ctx.state.body, 'l7policy', putSchema, 'l7policy_');
  const { services } = ctx.state;
  const { db } = services;
  const id = ctx.params.id!;
  const found = await findOr404(services, l7policySpec, id);
  enforce(ctx, 'l7policy', 'put', found.project_id);
  let provider = '';
  let lbId = '';
  const row = await db.tx(async (t) => {
    const policy = await findOr404(services, l7policySpec, id, t);
    const listener = (await db.models.listener.findByPk(policy.listener_id, { raw: true, transaction: t })) as Row;
    const lb = await lockLoadBalancer(services, listener.load_balancer_id, t);
    const redirectKeys = ['action', 'redirect_pool_id', 'redirect_url', 'redirect_prefix', 'redirect_http_code'];
    const values: Row = {};
    for (const key of ['name', 'description'] as const) if (key in body) values[key] = body[key];
    if ('admin_state_up' in body) values.admin_state_up = body.admin_state_up ?? false;
    if (redirectKeys.some((k) => k in body)) {
      const requested = Object.fromEntries(Object.entries(body).filter(([k]) => redirectKeys.includes(k)));
      if (!('action' in requested) && !requested.redirect_pool_id && !requested.redirect_url && !requested.redirect_prefix) {
        const merged = { action: policy.action, redirect_pool_id: policy.redirect_pool_id, redirect_url: policy.redirect_url, redirect_prefix: policy.redirect_prefix, ...requested };
        Object.assign(values, sanitizePolicyArgs(merged, false));
      } else {
        Object.assign(values, sanitizePolicyArgs(requested, false));
      }
      if (values.redirect_http_code === undefined) values.redirect_http_code = policy.redirect_http_code;
      if (values.action === 'REDIRECT_TO_POOL' || values.action === 'REJECT') values.redirect_http_code = null;
      if (values.redirect_pool_id) await checkRedirectPool(services, listener, values.redirect_pool_id, t);
    }
    delete values.redirect_pool;
    requireActive(lb, 'Load Balancer');
    if ('position' in body) {
      const moved = { ...policy, position: body.position ?? MAX_POSITION };
      await placePolicy(services, moved, t);
      values.position = moved.position;
    }
    values.provisioning_status = 'PENDING_UPDATE';
    values.updated_at = now();
    await db.models.l7policy.update(values, { where: { id }, transaction: t });
    await replaceTags(services, id, body.tags, t);
    await setStatus(services, 'listener', [listener.id], 'PENDING_UPDATE', t);
    await setStatus(services, 'load_balancer', [lb.id], 'PENDING_UPDATE', t);
    provider = lb.provider;
    lbId = lb.id;
    return { ...policy, ...values };
  });
  providerOf(services, provider).submit({ kind: 'l7policy', action: 'update', id, loadBalancerId: lbId });
  const [view] = await db.read(() => l7policyViews(db, [row]));
  ctx.body = { l7policy: view };
}

async function remove(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const id = ctx.params.id!;
  const found = await findOr404(services, l7policySpec, id);
  enforce(ctx, 'l7policy', 'delete', found.project_id);
  let provider = '';
  let lbId = '';
  await services.db.tx(async (t) => {
    const policy = await findOr404(services, l7policySpec, id, t);
    const listener = (await services.db.models.listener.findByPk(policy.listener_id, { raw: true, transaction: t })) as Row;
    const lb = await lockLoadBalancer(services, listener.load_balancer_id, t);
    requireActive(lb, 'Load Balancer');
    await setStatus(services, 'l7policy', [id], 'PENDING_DELETE', t);
    await setStatus(services, 'listener', [listener.id], 'PENDING_UPDATE', t);
    await setStatus(services, 'load_balancer', [lb.id], 'PENDING_UPDATE', t);
    provider = lb.provider;
    lbId = lb.id;
  });
  providerOf(services, provider).submit({ kind: 'l7policy', action: 'delete', id, loadBalancerId: lbId });
  ctx.status = 204;
}

export function routes(router: Router<any, any>): void {
  router.get('/l7policies', (ctx) => listResource(ctx as Ctx, l7policySpec));
  router.post('/l7policies', (ctx) => create(ctx as Ctx));
  router.get('/l7policies/:id', async (ctx) => showResource(ctx as Ctx, l7policySpec, await findOr404((ctx as Ctx).state.services, l7policySpec, ctx.params.id!)));
  router.put('/l7policies/:id', (ctx) => update(ctx as Ctx));
  router.delete('/l7policies/:id', (ctx) => remove(ctx as Ctx));
}
