// /v2/lbaas/loadbalancers: create (also the single-call graph create), show, list, update,
// delete (with cascade), status tree, statistics and failover.
import type Router from '@koa/router';
import { Op } from 'sequelize';
import type { Row } from '../../common/db/database.ts';
import { enforce } from '../access.ts';
import { baseColumns, col, findOr404, listResource, showResource, type ResourceSpec } from '../collection.ts';
import { errors } from '../errors.ts';
import { checkQuota, lockLoadBalancer, newId, now, providerOf, replaceTags, setStatus } from '../mutations.ts';
import { object, parseRequest, type Body, type Schema } from '../schema/object.ts';
import { boolean, ipAddress, list, string, uuid } from '../schema/types.ts';
import type { Ctx, Services } from '../services.ts';
import { json, loadBalancerView, loadBalancerViews, fullLoadBalancerView } from '../views.ts';
import { resolveVip } from '../vip.ts';
import { createGraphChildren, graphItemSchemas } from './graph.ts';
import { graphPlan, resolveRefs } from '../tls-refs.ts';
import { statusTree } from './status-tree.ts';
import { listenerStatistics } from '../statistics.ts';

export const loadBalancerSpec: ResourceSpec = {
  table: 'load_balancer',
  display: 'Load Balancer',
  singular: 'loadbalancer',
  plural: 'loadbalancers',
  linksKey: 'loadbalancers_links',
  policy: 'loadbalancer',
  idColumn: 'id',
  hasTags: true,
  hasCreatedAt: true,
  projectScoped: true,
  hidden: { provisioning_status: { [Op.ne]: 'DELETED' } },
  view: loadBalancerViews,
  columns: {
    ...baseColumns,
    description: col('description'),
    provider: col('provider'),
    flavor_id: col('flavor_id'),
    availability_zone: col('availability_zone'),
    vip_address: col('vip_address'),
    vip_port_id: col('vip_port_id'),
    vip_subnet_id: col('vip_subnet_id'),
    vip_network_id: col('vip_network_id'),
    vip_qos_policy_id: col('vip_qos_policy_id'),
    vip_vnic_type: col('vip_vnic_type'),
    topology: col('topology'),
  },
};

const name = { type: string({ max: 255 }) };
const tags = { type: list(string({ max: 255 })) };

const postSchema: Schema = {
  name,
  description: name,
  admin_state_up: { type: boolean },
  project_id: { type: string({ max: 36 }) },
  tenant_id: { type: string({ max: 36 }) },
  vip_address: { type: ipAddress },
  vip_port_id: { type: uuid },
  vip_subnet_id: { type: uuid },
  vip_network_id: { type: uuid },
  vip_qos_policy_id: { type: uuid },
  vip_sg_ids: { type: list(uuid) },
  additional_vips: { type: list(object({ subnet_id: { type: uuid, mandatory: true }, ip_address: { type: ipAddress } }, 'additional_vips')) },
  provider: { type: string({ max: 64 }) },
  flavor_id: { type: uuid },
  availability_zone: { type: string({ max: 255 }) },
  tags,
  listeners: { type: list(object(graphItemSchemas.listener, 'listeners')) },
  pools: { type: list(object(graphItemSchemas.pool, 'pools')) },
};

const putSchema: Schema = {
  name,
  description: name,
  admin_state_up: { type: boolean },
  vip_qos_policy_id: { type: uuid },
  vip_sg_ids: { type: list(uuid) },
  tags,
};

/** POST /v2/lbaas/loadbalancers (also the preset apply of api/resources/presets.ts, with a built body). */
export async function create(ctx: Ctx): Promise<void> {
  const body = parseRequest(ctx.state.body, 'loadbalancer', postSchema, 'load_balancer');
  const { services, auth } = ctx.state;
  const { db } = services;
  const projectId = (body.tenant_id as string | null) ?? (body.project_id as string | null) ?? auth.projectId;
  if (!projectId) throw errors.validation('Missing project ID in request where one is required. An administrator should check the keystone settings in the Octavia configuration.');
  enforce(ctx, 'loadbalancer', 'post', projectId);
  if (body.vip_sg_ids) enforce(ctx, 'loadbalancer', 'post:vip_sg_ids', projectId);

  const vip = await resolveVip(services, body);
  const { provider, topology } = await resolveProviderAndFlavor(services, body);
  await resolveAvailabilityZone(services, body.availability_zone as string | null | undefined);
  const driver = providerOf(services, provider);
  const lbId = newId();
  // The certificate references of its listeners and pools, fetched before the transaction (api/tls-refs.ts).
  const tls = await resolveRefs(ctx, projectId, graphPlan(body));

  const row = await db.tx(async (t) => {
    await checkQuota(ctx, projectId, 'load_balancer', 1, t);
    const lb: Row = {
      id: lbId,
      project_id: projectId,
      name: body.name ?? null,
      description: body.description ?? null,
      provisioning_status: 'PENDING_CREATE',
      operating_status: 'OFFLINE',
      admin_state_up: body.admin_state_up ?? true,
      topology,
      provider,
      flavor_id: body.flavor_id ?? null,
      availability_zone: body.availability_zone ?? null,
      vip_address: vip.address,
      vip_port_id: vip.portId,
      vip_subnet_id: vip.subnetId,
      vip_network_id: vip.networkId,
      vip_qos_policy_id: vip.qosPolicyId,
      vip_sg_ids: JSON.stringify(body.vip_sg_ids ?? []),
      vip_vnic_type: 'normal',
      additional_vips: JSON.stringify([]),
      created_at: now(),
      updated_at: null,
    };
    const allocation = await driver.createVipPort(
      { loadBalancerId: lbId, projectId, address: vip.address, subnetId: vip.subnetId, networkId: vip.networkId, portId: vip.portId, additionalVips: vip.additionalVips },
      t,
    );
    lb.vip_address = allocation.address;
    lb.vip_port_id = allocation.portId;
    lb.vip_subnet_id = allocation.subnetId;
    lb.vip_network_id = allocation.networkId;
    lb.additional_vips = JSON.stringify(allocation.additionalVips);
    await db.insert('load_balancer', lb, t);
    await replaceTags(services, lbId, body.tags, t, true);
    await createGraphChildren(ctx, lb, driver, body, t, tls);
    return lb;
  });
  driver.submit({ kind: 'loadbalancer', action: 'create', loadBalancerId: lbId });
  ctx.status = 201;
  const hasChildren = ((body.listeners as unknown[] | null)?.length ?? 0) + ((body.pools as unknown[] | null)?.length ?? 0) > 0;
  ctx.body = {
    loadbalancer: hasChildren
      ? await db.read(() => fullLoadBalancerView(db, row))
      : loadBalancerView(row, { tags: [...new Set((body.tags as string[] | null) ?? [])].sort(), listeners: [], pools: [] }),
  };
}

async function resolveProviderAndFlavor(services: Services, body: Body): Promise<{ provider: string; topology: string | null }> {
  const { db, providers, config } = services;
  let provider = body.provider as string | undefined | null;
  let topology: string | null = null;
  if (body.flavor_id) {
    const flavor = (await db.read(() => db.models.flavor.findByPk(body.flavor_id as string, { raw: true }))) as Row | null;
    if (!flavor) throw errors.validation('Invalid flavor_id.');
    if (!flavor.enabled) throw errors.disabledOption('flavor', body.flavor_id);
    const profile = (await db.read(() => db.models.flavor_profile.findByPk(flavor.flavor_profile_id, { raw: true }))) as Row | null;
    if (profile) {
      if (provider && provider !== profile.provider_name && !sameDriver(services, provider, profile.provider_name)) {
        throw errors.providerFlavorMismatch(body.flavor_id as string, provider);
      }
      provider = provider ?? profile.provider_name;
      topology = (json<Row>(profile.flavor_data, {}).loadbalancer_topology as string | undefined) ?? null;
    }
  }
  provider = provider ?? config.api.defaultProviderDriver;
  if (!providers.isEnabled(provider)) throw errors.providerNotEnabled(provider);
  return { provider, topology: topology ?? config.controllerWorker.loadbalancerTopology };
}

const sameDriver = (services: Services, a: string, b: string) => {
  const da = services.providers.get(a);
  return da !== undefined && da === services.providers.get(b);
};

async function resolveAvailabilityZone(services: Services, name: string | null | undefined): Promise<void> {
  if (!name) return;
  const { db } = services;
  const az = (await db.read(() => db.models.availability_zone.findByPk(name, { raw: true }))) as Row | null;
  if (!az) throw errors.validation('Invalid availability zone.');
  if (!az.enabled) throw errors.disabledOption('availability_zone', name);
}

async function show(ctx: Ctx): Promise<void> {
  const row = await findOr404(ctx.state.services, loadBalancerSpec, ctx.params.id!);
  await showResource(ctx, loadBalancerSpec, row);
}

async function update(ctx: Ctx): Promise<void> {
  const body = parseRequest(ctx.state.body, 'loadbalancer', putSchema, 'load_balancer');
  const { services } = ctx.state;
  const { db } = services;
  const id = ctx.params.id!;
  const found = await findOr404(services, loadBalancerSpec, id);
  enforce(ctx, 'loadbalancer', 'put', found.project_id);
  if ('vip_sg_ids' in body) enforce(ctx, 'loadbalancer', 'put:vip_sg_ids', found.project_id);
  if (body.vip_qos_policy_id && !(await services.providers.network.qosPolicyExists(body.vip_qos_policy_id as string))) {
    throw errors.invalidSubresource('qos_policy', body.vip_qos_policy_id as string);
  }
  const driver = providerOf(services, found.provider);
  const row = await db.tx(async (t) => {
    const lb = await lockLoadBalancer(services, id, t);
    if (lb.provisioning_status !== 'ACTIVE') throw errors.pendingState(lb.provisioning_status, id);
    const values: Row = { provisioning_status: 'PENDING_UPDATE', updated_at: now() };
    for (const key of ['name', 'description', 'vip_qos_policy_id'] as const) if (key in body) values[key] = body[key];
    if ('admin_state_up' in body) values.admin_state_up = body.admin_state_up ?? false;
    if ('vip_sg_ids' in body) values.vip_sg_ids = JSON.stringify(body.vip_sg_ids ?? []);
    await db.models.load_balancer.update(values, { where: { id }, transaction: t });
    await replaceTags(services, id, body.tags, t);
    return { ...lb, ...values };
  });
  driver.submit({ kind: 'loadbalancer', action: 'update', loadBalancerId: id });
  const [view] = await db.read(() => loadBalancerViews(db, [row]));
  ctx.body = { loadbalancer: view };
}

async function remove(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const { db } = services;
  const id = ctx.params.id!;
  const found = await findOr404(services, loadBalancerSpec, id);
  enforce(ctx, 'loadbalancer', 'delete', found.project_id);
  const cascade = ['true', '1', 'yes', 'y', 't', 'on'].includes(String(ctx.query.cascade ?? '').toLowerCase());
  const driver = providerOf(services, found.provider);
  await db.tx(async (t) => {
    const lb = await lockLoadBalancer(services, id, t);
    if (lb.provisioning_status !== 'ACTIVE' && lb.provisioning_status !== 'ERROR') throw errors.pendingState(lb.provisioning_status, id);
    if (!cascade) {
      const listeners = await db.models.listener.count({ where: { load_balancer_id: id }, transaction: t });
      const pools = await db.models.pool.count({ where: { load_balancer_id: id }, transaction: t });
      if (listeners + pools > 0) throw errors.validation(`Cannot delete Load Balancer ${id} - it has children`);
    }
    await setStatus(services, 'load_balancer', [id], 'PENDING_DELETE', t);
  });
  driver.submit({ kind: 'loadbalancer', action: 'delete', loadBalancerId: id });
  ctx.status = 204;
}

async function status(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const row = await findOr404(services, loadBalancerSpec, ctx.params.id!);
  enforce(ctx, 'loadbalancer', 'get_status', row.project_id);
  ctx.body = { statuses: { loadbalancer: await services.db.read(() => statusTree(services.db, row)) } };
}

async function stats(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const { db } = services;
  const row = await findOr404(services, loadBalancerSpec, ctx.params.id!);
  enforce(ctx, 'loadbalancer', 'get_stats', row.project_id);
  const listeners = (await db.read(() => db.models.listener.findAll({ where: { load_balancer_id: row.id }, attributes: ['id'], raw: true }))) as Row[];
  ctx.body = { stats: await listenerStatistics(services, listeners.map((l) => l.id)) };
}

async function failover(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const { db } = services;
  const id = ctx.params.id!;
  const found = await findOr404(services, loadBalancerSpec, id);
  enforce(ctx, 'loadbalancer', 'put_failover', found.project_id);
  const driver = providerOf(services, found.provider);
  await db.tx(async (t) => {
    const lb = await lockLoadBalancer(services, id, t);
    if (lb.provisioning_status !== 'ACTIVE' && lb.provisioning_status !== 'ERROR') throw errors.pendingState(lb.provisioning_status, id);
    await setStatus(services, 'load_balancer', [id], 'PENDING_UPDATE', t);
  });
  driver.submit({ kind: 'loadbalancer', action: 'failover', loadBalancerId: id });
  ctx.status = 202;
  ctx.body = '';
}

export function routes(router: Router<any, any>): void {
  router.get('/loadbalancers', (ctx) => listResource(ctx as Ctx, loadBalancerSpec));
  router.post('/loadbalancers', (ctx) => create(ctx as Ctx));
  router.get('/loadbalancers/:id', (ctx) => show(ctx as Ctx));
  router.put('/loadbalancers/:id', (ctx) => update(ctx as Ctx));
  router.delete('/loadbalancers/:id', (ctx) => remove(ctx as Ctx));
  router.get('/loadbalancers/:id/status', (ctx) => status(ctx as Ctx));
  router.get('/loadbalancers/:id/statuses', (ctx) => status(ctx as Ctx));
  router.get('/loadbalancers/:id/stats', (ctx) => stats(ctx as Ctx));
  router.put('/loadbalancers/:id/failover', (ctx) => failover(ctx as Ctx));
}
