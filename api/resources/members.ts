// /v2/lbaas/pools/{pool_id}/members, including the batch update (PUT on the collection).
import type Router from '@koa/router';
import type { Transaction } from 'sequelize';
import type { Row } from '../../common/db/database.ts';
import { enforce } from '../access.ts';
import { baseColumns, col, findOr404, listResource, showResource, type ResourceSpec } from '../collection.ts';
import { errors } from '../errors.ts';
import { checkQuota, checkWithProvider, lockLoadBalancer, newObject, now, providerOf, replaceTags, requireActive, setStatus } from '../mutations.ts';
import { parseObject, parseRequest, type Body, type Schema } from '../schema/object.ts';
import { boolean, integer, ipAddress, list, string, uuid } from '../schema/types.ts';
import type { Ctx, Services } from '../services.ts';
import { json, memberViews } from '../views.ts';
import { markPoolParents, poolSpec } from './pools.ts';

export const memberSpec: ResourceSpec = {
  table: 'member',
  display: 'Member',
  singular: 'member',
  plural: 'members',
  linksKey: 'members_links',
  policy: 'member',
  idColumn: 'id',
  hasTags: true,
  hasCreatedAt: true,
  projectScoped: false,
  view: memberViews,
  columns: {
    ...baseColumns,
    address: col('address'),
    protocol_port: col('protocol_port', 'int'),
    weight: col('weight', 'int'),
    backup: col('backup', 'bool'),
    subnet_id: col('subnet_id'),
    monitor_address: col('monitor_address'),
    monitor_port: col('monitor_port', 'int'),
    vnic_type: col('vnic_type'),
  },
};

export const memberCreateFields: Schema = {
  name: { type: string({ max: 255 }) },
  admin_state_up: { type: boolean },
  address: { type: ipAddress, mandatory: true },
  protocol_port: { type: integer({ min: 1, max: 65535 }), mandatory: true },
  weight: { type: integer({ min: 0, max: 256 }) },
  backup: { type: boolean },
  subnet_id: { type: uuid },
  monitor_address: { type: ipAddress },
  monitor_port: { type: integer({ min: 1, max: 65535 }) },
  request_sriov: { type: boolean },
  project_id: { type: string({ max: 36 }) },
  tenant_id: { type: string({ max: 36 }) },
  tags: { type: list(string({ max: 255 })) },
};
const UPDATABLE = ['name', 'admin_state_up', 'weight', 'backup', 'monitor_address', 'monitor_port', 'tags'];
const putSchema: Schema = Object.fromEntries(UPDATABLE.map((k) => [k, { type: memberCreateFields[k]!.type }]));

/** Builds and validates a new member row of `pool` (POST, batch and graph create). */
export async function buildMember(services: Services, lb: Row, pool: Row, hasMonitor: boolean, body: Body): Promise<Row> {
  const { config, providers } = services;
  if (config.api.reservedIps.includes(body.address as string)) throw errors.invalidOption(body.address, 'member address');
  if (body.subnet_id && !(await providers.network.getSubnet(body.subnet_id as string))) {
    throw errors.invalidSubresource('Subnet', body.subnet_id as string);
  }
  if (body.request_sriov) {
    const allowed = await flavorAllowsMemberSriov(services, lb);
    if (!allowed) throw errors.validation('The load balancer flavor does not allow SR-IOV member ports.');
  }
  return {
    ...newObject(lb.project_id, body, hasMonitor ? 'OFFLINE' : 'NO_MONITOR'),
    pool_id: pool.id,
    name: body.name ?? null,
    address: body.address,
    protocol_port: body.protocol_port,
    weight: body.weight ?? 1,
    backup: body.backup ?? false,
    subnet_id: body.subnet_id ?? null,
    monitor_address: body.monitor_address ?? null,
    monitor_port: body.monitor_port ?? null,
    vnic_type: body.request_sriov ? 'direct' : 'normal',
  };
}

async function flavorAllowsMemberSriov(services: Services, lb: Row): Promise<boolean> {
  if (!lb.flavor_id) return false;
  const { db } = services;
  const flavor = (await db.models.flavor.findByPk(lb.flavor_id, { raw: true })) as Row | null;
  const profile = flavor ? ((await db.models.flavor_profile.findByPk(flavor.flavor_profile_id, { raw: true })) as Row | null) : null;
  return json<Row>(profile?.flavor_data, {}).allow_member_sriov === true;
}

async function poolAndLock(ctx: Ctx, t: Transaction): Promise<{ pool: Row; lb: Row }> {
  const { services } = ctx.state;
  const pool = await findOr404(services, poolSpec, ctx.params.pool_id!, t);
  const lb = await lockLoadBalancer(services, pool.load_balancer_id, t);
  return { pool, lb };
}

const poolServesListeners = async (services: Services, poolId: string, t: Transaction) =>
  (await services.db.models.listener.count({ where: { default_pool_id: poolId }, transaction: t })) > 0;

const hasMonitor = async (services: Services, poolId: string, t: Transaction) =>
  (await services.db.models.health_monitor.count({ where: { pool_id: poolId }, transaction: t })) > 0;

async function create(ctx: Ctx): Promise<void> {
  const body = parseRequest(ctx.state.body, 'member', memberCreateFields, 'member_');
  const { services } = ctx.state;
  const { db } = services;
  const parent = await findOr404(services, poolSpec, ctx.params.pool_id!);
  enforce(ctx, 'member', 'post', parent.project_id);
  let provider = '';
  const row = await db.tx(async (t) => {
    const { pool, lb } = await poolAndLock(ctx, t);
    const member = await buildMember(services, lb, pool, await hasMonitor(services, pool.id, t), body);
    await checkQuota(ctx, lb.project_id, 'member', 1, t);
    // Octavia checks the parent before the load balancer.
    requireActive(pool, 'Pool');
    requireActive(lb, 'Load Balancer');
    const duplicate = await db.models.member.count({ where: { pool_id: pool.id, address: member.address, protocol_port: member.protocol_port }, transaction: t });
    if (duplicate) throw errors.duplicateMember(member.address, member.protocol_port);
    const driver = providerOf(services, lb.provider);
    const servesListeners = await poolServesListeners(services, pool.id, t);
    checkWithProvider(driver, lb.provider, () => driver.checks.member?.(member, pool, lb, servesListeners));
    await db.models.member.create(member, { transaction: t });
    await replaceTags(services, member.id, body.tags, t, true);
    await setStatus(services, 'pool', [pool.id], 'PENDING_UPDATE', t);
    await markPoolParents(services, pool, t);
    provider = lb.provider;
    return member;
  });
  providerOf(services, provider).submit({ kind: 'member', action: 'create', id: row.id, loadBalancerId: parent.load_balancer_id });
  ctx.status = 201;
  const [view] = await db.read(() => memberViews(db, [row]));
  ctx.body = { member: view };
}

async function findMember(ctx: Ctx, t?: Transaction): Promise<{ parent: Row; member: Row }> {
  const { services } = ctx.state;
  const parent = await findOr404(services, poolSpec, ctx.params.pool_id!, t);
  const member = await findOr404(services, memberSpec, ctx.params.id!, t);
  if (member.pool_id !== parent.id) throw errors.notFound('Member', ctx.params.id!);
  return { parent, member };
}

async function show(ctx: Ctx): Promise<void> {
  const { member } = await findMember(ctx);
  await showResource(ctx, memberSpec, member);
}

function applyUpdate(body: Body): Row {
  const values: Row = {};
  for (const key of ['name', 'monitor_address', 'monitor_port'] as const) if (key in body) values[key] = body[key];
  if ('admin_state_up' in body) values.admin_state_up = body.admin_state_up ?? false;
  if ('weight' in body) values.weight = body.weight ?? 1;
  if ('backup' in body) values.backup = body.backup ?? false;
  return values;
}

async function update(ctx: Ctx): Promise<void> {
  const body = parseRequest(ctx.state.body, 'member', putSchema, 'member_');
  const { services } = ctx.state;
  const { db } = services;
  const { member: found } = await findMember(ctx);
  enforce(ctx, 'member', 'put', found.project_id);
  let provider = '';
  const row = await db.tx(async (t) => {
    const { pool, lb } = await poolAndLock(ctx, t);
    const { member } = await findMember(ctx, t);
    // Octavia checks the parent before the load balancer.
    requireActive(pool, 'Pool');
    requireActive(lb, 'Load Balancer');
    const values = { ...applyUpdate(body), provisioning_status: 'PENDING_UPDATE', updated_at: now() };
    await db.models.member.update(values, { where: { id: member.id }, transaction: t });
    await replaceTags(services, member.id, body.tags, t);
    await setStatus(services, 'pool', [pool.id], 'PENDING_UPDATE', t);
    await markPoolParents(services, pool, t);
    provider = lb.provider;
    return { ...member, ...values } as Row;
  });
  providerOf(services, provider).submit({ kind: 'member', action: 'update', id: row.id, loadBalancerId: (await poolOf(services, row.pool_id)).load_balancer_id });
  const [view] = await db.read(() => memberViews(db, [row]));
  ctx.body = { member: view };
}

const poolOf = async (services: Services, poolId: string) => (await services.db.read(() => services.db.models.pool.findByPk(poolId, { raw: true }))) as Row;

async function remove(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const { member: found, parent } = await findMember(ctx);
  enforce(ctx, 'member', 'delete', found.project_id);
  let provider = '';
  await services.db.tx(async (t) => {
    const { pool, lb } = await poolAndLock(ctx, t);
    await findMember(ctx, t);
    // Octavia checks the parent before the load balancer.
    requireActive(pool, 'Pool');
    requireActive(lb, 'Load Balancer');
    await setStatus(services, 'member', [found.id], 'PENDING_DELETE', t);
    await setStatus(services, 'pool', [pool.id], 'PENDING_UPDATE', t);
    await markPoolParents(services, pool, t);
    provider = lb.provider;
  });
  providerOf(services, provider).submit({ kind: 'member', action: 'delete', id: found.id, loadBalancerId: parent.load_balancer_id });
  ctx.status = 204;
}

async function batchUpdate(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const { db } = services;
  const parent = await findOr404(services, poolSpec, ctx.params.pool_id!);
  const additiveOnly = ['true', '1', 'yes', 'y', 't', 'on'].includes(String(ctx.query.additive_only ?? '').toLowerCase());
  enforce(ctx, 'member', 'post', parent.project_id);
  enforce(ctx, 'member', 'put', parent.project_id);
  if (!additiveOnly) enforce(ctx, 'member', 'delete', parent.project_id);
  const raw = ctx.state.body;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw errors.mandatory('members');
  const extra = Object.keys(raw).filter((k) => k !== 'members');
  if (extra.length) throw errors.unknownAttributes('members_', extra);
  const items = (raw as Row).members;
  if (!Array.isArray(items)) throw errors.invalidInput('members', items, `Value not a valid list: ${String(items)}`);
  const requested = items.map((m) => parseObject(memberCreateFields, m, 'members_.members'));
  const keys = requested.map((m) => `${m.address}/${m.protocol_port}`);
  if (new Set(keys).size !== keys.length) throw errors.validation('Member must be updated only once in the same request.');

  let provider = '';
  const changed = await db.tx(async (t) => {
    const { pool, lb } = await poolAndLock(ctx, t);
    // Octavia checks the parent before the load balancer.
    requireActive(pool, 'Pool');
    requireActive(lb, 'Load Balancer');
    const existing = (await db.models.member.findAll({ where: { pool_id: pool.id }, raw: true, transaction: t })) as Row[];
    const byKey = new Map(existing.map((m) => [`${m.address}/${m.protocol_port}`, m]));
    const monitored = await hasMonitor(services, pool.id, t);
    const driver = providerOf(services, lb.provider);
    const created: Row[] = [];
    const updated: Array<[Row, Row]> = [];
    for (const [i, body] of requested.entries()) {
      const match = byKey.get(keys[i]!);
      if (match) {
        const { request_sriov: _ignored, ...rest } = body;
        const values = applyUpdate(rest);
        // Octavia updates every matched member (PENDING_UPDATE, sent to the provider) even when
        // nothing changes; only an empty request on an empty pool is a no-op.
        updated.push([match, { ...values, tags: body.tags }]);
      } else {
        created.push({ ...(await buildMember(services, lb, pool, monitored, body)), tags: body.tags });
      }
    }
    const deleted = additiveOnly ? [] : existing.filter((m) => !keys.includes(`${m.address}/${m.protocol_port}`));
    if (created.length + updated.length + deleted.length === 0) return false;
    await checkQuota(ctx, lb.project_id, 'member', created.length - deleted.length, t);
    const servesListeners = await poolServesListeners(services, pool.id, t);
    for (const member of created) {
      const { tags, ...rowValues } = member;
      checkWithProvider(driver, lb.provider, () => driver.checks.member?.(rowValues, pool, lb, servesListeners));
      await db.models.member.create(rowValues, { transaction: t });
      await replaceTags(services, member.id, tags, t, true);
    }
    for (const [member, { tags, ...values }] of updated) {
      await db.models.member.update({ ...values, provisioning_status: 'PENDING_UPDATE', updated_at: now() }, { where: { id: member.id }, transaction: t });
      await replaceTags(services, member.id, tags, t);
    }
    await setStatus(services, 'member', deleted.map((m) => m.id), 'PENDING_DELETE', t);
    await setStatus(services, 'pool', [pool.id], 'PENDING_UPDATE', t);
    await markPoolParents(services, pool, t);
    provider = lb.provider;
    return true;
  });
  if (changed) providerOf(services, provider).submit({ kind: 'member_batch', poolId: parent.id, loadBalancerId: parent.load_balancer_id });
  ctx.status = 202;
  ctx.body = '';
}

async function listMembers(ctx: Ctx): Promise<void> {
  const parent = await findOr404(ctx.state.services, poolSpec, ctx.params.pool_id!);
  await listResource(ctx, memberSpec, { where: { pool_id: parent.id }, authorizeParentProject: parent.project_id });
}

export function routes(router: Router<any, any>): void {
  router.get('/pools/:pool_id/members', (ctx) => listMembers(ctx as Ctx));
  router.post('/pools/:pool_id/members', (ctx) => create(ctx as Ctx));
  router.put('/pools/:pool_id/members', (ctx) => batchUpdate(ctx as Ctx));
  router.get('/pools/:pool_id/members/:id', (ctx) => show(ctx as Ctx));
  router.put('/pools/:pool_id/members/:id', (ctx) => update(ctx as Ctx));
  router.delete('/pools/:pool_id/members/:id', (ctx) => remove(ctx as Ctx));
}
