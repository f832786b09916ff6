// /v2/octavia/amphorae (admin only): list and show the amphora records, delete broken ones,
// fail one over, re-push its agent configuration, and read its per-listener statistics.
import type Router from '@koa/router';
import { Op, type WhereOptions } from 'sequelize';
import type { Row } from '../../common/db/database.ts';
import { enforce } from '../access.ts';
import { col, findOr404, listPage, listQuery, showResource, type ResourceSpec } from '../collection.ts';
import { errors } from '../errors.ts';
import { lockLoadBalancer, now, providerOf, setStatus } from '../mutations.ts';
import type { Ctx, Services } from '../services.ts';
import { formatTime, type ApiObject } from '../views.ts';

async function amphoraViews(_db: Services['db'], rows: Row[]): Promise<ApiObject[]> {
  return rows.map((r) => ({
    id: r.id,
    loadbalancer_id: r.load_balancer_id ?? null,
    compute_id: r.compute_id ?? null,
    lb_network_ip: r.lb_network_ip ?? null,
    vrrp_ip: r.vrrp_ip ?? null,
    ha_ip: r.ha_ip ?? null,
    vrrp_port_id: r.vrrp_port_id ?? null,
    ha_port_id: r.ha_port_id ?? null,
    cert_expiration: formatTime(r.cert_expiration),
    cert_busy: Boolean(r.cert_busy),
    role: r.role ?? null,
    status: r.status,
    vrrp_interface: r.vrrp_interface ?? null,
    vrrp_id: r.vrrp_id ?? null,
    vrrp_priority: r.vrrp_priority ?? null,
    cached_zone: r.cached_zone ?? null,
    created_at: formatTime(r.created_at),
    updated_at: formatTime(r.updated_at),
    image_id: r.image_id ?? null,
    compute_flavor: r.compute_flavor ?? null,
    // Extension (ACTIVE_STANDBY): whether the amphora's last heartbeat said it holds the VIP; null before it reported.
    vip_holder: r.vip_holder == null ? null : Boolean(r.vip_holder),
  }));
}

export const amphoraSpec: ResourceSpec = {
  table: 'amphora',
  display: 'Amphora',
  singular: 'amphora',
  plural: 'amphorae',
  linksKey: 'amphorae_links',
  policy: 'amphora',
  idColumn: 'id',
  hasTags: false,
  hasCreatedAt: true,
  projectScoped: false,
  hidden: { status: { [Op.ne]: 'DELETED' } },
  view: amphoraViews,
  columns: {
    id: col('id'),
    loadbalancer_id: col('load_balancer_id'),
    load_balancer_id: col('load_balancer_id'),
    compute_id: col('compute_id'),
    lb_network_ip: col('lb_network_ip'),
    vrrp_ip: col('vrrp_ip'),
    ha_ip: col('ha_ip'),
    vrrp_port_id: col('vrrp_port_id'),
    ha_port_id: col('ha_port_id'),
    cert_expiration: col('cert_expiration'),
    cert_busy: col('cert_busy', 'bool'),
    role: col('role'),
    status: col('status'),
    vrrp_interface: col('vrrp_interface'),
    vrrp_id: col('vrrp_id', 'int'),
    vrrp_priority: col('vrrp_priority', 'int'),
    cached_zone: col('cached_zone'),
    created_at: col('created_at'),
    updated_at: col('updated_at'),
    image_id: col('image_id'),
    compute_flavor: col('compute_flavor'),
    vip_holder: col('vip_holder', 'bool'),
  },
};

const callerProject = (ctx: Ctx) => ctx.state.auth.projectId;

/** 202 with an empty body (without one Koa would write "Accepted"). */
function accepted(ctx: Ctx): void {
  ctx.status = 202;
  ctx.body = '';
}

async function list(ctx: Ctx): Promise<void> {
  const { db } = ctx.state.services;
  enforce(ctx, 'amphora', 'get_all', callerProject(ctx));
  const q = listQuery(ctx, amphoraSpec);
  const conditions: WhereOptions[] = [];
  if (q.projectId !== undefined) {
    // project_id is not an amphora attribute: it selects the amphorae of that project's load balancers.
    const lbs = (await db.read(() => db.models.load_balancer.findAll({ where: { project_id: q.projectId }, attributes: ['id'], raw: true }))) as Row[];
    conditions.push({ load_balancer_id: { [Op.in]: lbs.map((lb) => lb.id) } });
  }
  await listPage(ctx, amphoraSpec, q, conditions);
}

async function show(ctx: Ctx): Promise<void> {
  const row = await findOr404(ctx.state.services, amphoraSpec, ctx.params.id!);
  await showResource(ctx, amphoraSpec, row, callerProject(ctx));
}

async function remove(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const { db } = services;
  const id = ctx.params.id!;
  enforce(ctx, 'amphora', 'delete', callerProject(ctx));
  const amp = await db.tx(async (t) => {
    const found = await findOr404(services, amphoraSpec, id, t);
    if (found.status !== 'ERROR') throw errors.immutable('amphora', id);
    await db.models.amphora.update({ status: 'PENDING_DELETE', updated_at: now() }, { where: { id }, transaction: t });
    return found;
  });
  const lb = amp.load_balancer_id ? ((await db.read(() => db.models.load_balancer.findByPk(amp.load_balancer_id, { raw: true }))) as Row | null) : null;
  const provider = lb?.provider ?? services.config.api.defaultProviderDriver;
  providerOf(services, provider).submit({ kind: 'amphora', action: 'delete', amphoraId: id, loadBalancerId: amp.load_balancer_id ?? id });
  ctx.status = 204;
}

/** The amphora and the load balancer it serves (any status); a spare amphora cannot be acted on. */
async function amphoraAndLoadBalancer(services: Services, id: string): Promise<{ amp: Row; lb: Row }> {
  const { db } = services;
  const amp = await findOr404(services, amphoraSpec, id);
  const lb = amp.load_balancer_id
    ? ((await db.read(() => db.models.load_balancer.findByPk(amp.load_balancer_id, { raw: true }))) as Row | null)
    : null;
  if (!lb) throw errors.immutable('amphora', id);
  return { amp, lb };
}

async function failover(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const { amp, lb } = await amphoraAndLoadBalancer(services, ctx.params.id!);
  enforce(ctx, 'amphora', 'put_failover', lb.project_id ?? null);
  const driver = providerOf(services, lb.provider ?? 'amphora');
  await services.db.tx(async (t) => {
    const locked = await lockLoadBalancer(services, lb.id, t);
    if (locked.provisioning_status !== 'ACTIVE') throw errors.immutable('Load Balancer', lb.id);
    await setStatus(services, 'load_balancer', [lb.id], 'PENDING_UPDATE', t);
  });
  driver.submit({ kind: 'amphora', action: 'failover', amphoraId: amp.id, loadBalancerId: lb.id });
  accepted(ctx);
}

async function configure(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const { amp, lb } = await amphoraAndLoadBalancer(services, ctx.params.id!);
  enforce(ctx, 'amphora', 'put_config', lb.project_id ?? null);
  providerOf(services, lb.provider ?? 'amphora').submit({ kind: 'amphora', action: 'configure', amphoraId: amp.id, loadBalancerId: lb.id });
  accepted(ctx);
}

async function stats(ctx: Ctx): Promise<void> {
  const { db } = ctx.state.services;
  const id = ctx.params.id!;
  enforce(ctx, 'amphora', 'get_stats', callerProject(ctx));
  const { rows, amp } = await db.read(async () => ({
    amp: (await db.models.amphora.findByPk(id, { raw: true })) as Row | null,
    rows: (await db.models.listener_statistics.findAll({ where: { amphora_id: id }, order: [['listener_id', 'ASC']], raw: true })) as Row[],
  }));
  if (!amp || rows.length === 0) throw errors.notFound('Amphora stats for', id);
  ctx.body = {
    amphora_stats: rows.map((r) => ({
      id: r.amphora_id,
      loadbalancer_id: amp.load_balancer_id ?? null,
      listener_id: r.listener_id,
      active_connections: Number(r.active_connections),
      bytes_in: Number(r.bytes_in),
      bytes_out: Number(r.bytes_out),
      request_errors: Number(r.request_errors),
      total_connections: Number(r.total_connections),
    })),
  };
}

export function routes(router: Router<any, any>): void {
  router.get('/amphorae', (ctx) => list(ctx as Ctx));
  router.get('/amphorae/:id', (ctx) => show(ctx as Ctx));
  router.delete('/amphorae/:id', (ctx) => remove(ctx as Ctx));
  router.put('/amphorae/:id/failover', (ctx) => failover(ctx as Ctx));
  router.put('/amphorae/:id/config', (ctx) => configure(ctx as Ctx));
  router.get('/amphorae/:id/stats', (ctx) => stats(ctx as Ctx));
}
