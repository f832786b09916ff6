// /v2/lbaas/healthmonitors.
import type Router from '@koa/router';
import type { Row } from '../../common/db/database.ts';
import type { Services } from '../services.ts';
import { enforce } from '../access.ts';
import { baseColumns, col, findOr404, listResource, showResource, type ResourceSpec } from '../collection.ts';
import { errors } from '../errors.ts';
import { checkQuota, checkWithProvider, lockLoadBalancer, newObject, now, providerOf, replaceTags, requireActive, setStatus } from '../mutations.ts';
import { LVS_PROTOCOLS } from '../protocols.ts';
import { parseRequest, type Body, type Schema } from '../schema/object.ts';
import { boolean, DOMAIN_NAME_RE, enumOf, integer, list, number, oneOf, string, urlPath, uuid } from '../schema/types.ts';
import type { Ctx } from '../services.ts';
import { healthMonitorViews } from '../views.ts';
import { markPoolParents, poolSpec } from './pools.ts';

export const healthMonitorSpec: ResourceSpec = {
  table: 'health_monitor',
  display: 'Health Monitor',
  singular: 'healthmonitor',
  plural: 'healthmonitors',
  linksKey: 'healthmonitors_links',
  policy: 'healthmonitor',
  idColumn: 'id',
  hasTags: true,
  hasCreatedAt: true,
  projectScoped: true,
  view: healthMonitorViews,
  columns: {
    ...baseColumns,
    pool_id: col('pool_id'),
    type: col('type'),
    delay: col('delay', 'int'),
    timeout: col('timeout', 'int'),
    max_retries: col('max_retries', 'int'),
    max_retries_down: col('max_retries_down', 'int'),
    http_method: col('http_method'),
    url_path: col('url_path'),
    expected_codes: col('expected_codes'),
    http_version: col('http_version', 'float'),
    domain_name: col('domain_name'),
    expected_body: col('expected_body'),
  },
};

const HM_TYPES = ['HTTP', 'HTTPS', 'PING', 'TCP', 'TLS-HELLO', 'UDP-CONNECT', 'SCTP'] as const;
const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'TRACE', 'OPTIONS', 'CONNECT', 'PATCH'] as const;
const retries = integer({ min: 1, max: 10 });

export const monitorCreateFields: Schema = {
  name: { type: string({ max: 255 }) },
  type: { type: enumOf(HM_TYPES), mandatory: true },
  delay: { type: integer({ min: 0 }), mandatory: true },
  timeout: { type: integer({ min: 0 }), mandatory: true },
  max_retries_down: { type: retries },
  max_retries: { type: retries, mandatory: true },
  http_method: { type: enumOf(HTTP_METHODS) },
  url_path: { type: urlPath },
  expected_codes: { type: string({ pattern: /^(\d{3}(\s*,\s*\d{3})*)$|^(\d{3}-\d{3})$/ }) },
  admin_state_up: { type: boolean },
  project_id: { type: string({ max: 36 }) },
  tenant_id: { type: string({ max: 36 }) },
  tags: { type: list(string({ max: 255 })) },
  http_version: { type: oneOf([1.0, 1.1], number) },
  domain_name: { type: string({ min: 1, max: 255, pattern: DOMAIN_NAME_RE }) },
  /** Extension: HTTP/HTTPS monitors only; the response body must contain this text (besides an expected code). */
  expected_body: { type: string({ min: 1, max: 255 }) },
};
const postSchema: Schema = { ...monitorCreateFields, pool_id: { type: uuid, mandatory: true } };
const UPDATABLE = ['name', 'delay', 'timeout', 'max_retries_down', 'max_retries', 'http_method', 'url_path', 'expected_codes', 'admin_state_up', 'tags', 'http_version', 'domain_name', 'expected_body'];
const putSchema: Schema = Object.fromEntries(UPDATABLE.map((k) => [k, { type: monitorCreateFields[k]!.type }]));

const isHttp = (type: string) => type === 'HTTP' || type === 'HTTPS';

function checkHttpOptions(values: Row, type: string): void {
  if (isHttp(type)) return;
  for (const field of ['http_method', 'url_path', 'expected_codes', 'expected_body']) {
    if (values[field] !== undefined && values[field] !== null) throw errors.invalidOption(field, `health monitors of type ${type}`);
  }
}

function checkDomainName(domainName: unknown, httpVersion: unknown): void {
  if (domainName && !httpVersion) throw errors.validation("'http_version' must be specified when 'domain_name' is provided.");
  if (domainName && httpVersion && Number(httpVersion) < 1.1) {
    throw errors.invalidOption(`http_version ${Number(httpVersion).toFixed(1)}`, 'health monitors HTTP 1.1 domain name health check');
  }
}

/** Builds and validates a new monitor for `pool` (POST and graph create). */
export function buildHealthMonitor(services: Services, lb: Row, pool: Row, body: Body): Row {
  const type = body.type as string;
  const { config } = services;
  if (!config.api.allowPingHealthMonitors && type === 'PING') throw errors.disabledOption('type', 'PING');
  if (LVS_PROTOCOLS.includes(pool.protocol)) {
    const allowed = ['UDP-CONNECT', 'SCTP', 'TCP', 'HTTP'];
    if (!allowed.includes(type)) {
      throw errors.validation(`The associated pool protocol is ${pool.protocol}, so only a ${allowed.join('/')} health monitor is supported.`);
    }
    const minDelay = config.api.udpConnectMinIntervalHealthMonitor;
    if (type === 'UDP-CONNECT' && minDelay > 0 && (body.delay as number) < minDelay) {
      throw errors.validation(`The request delay value ${body.delay} should be larger than ${minDelay} for ${type} health monitor type.`);
    }
  } else if (type === 'UDP-CONNECT' || type === 'SCTP') {
    throw errors.validation(`The ${type} type is only supported for pools of type UDP/SCTP.`);
  }
  checkHttpOptions(body, type);
  checkDomainName(body.domain_name, body.http_version);
  return {
    ...newObject(lb.project_id, body),
    pool_id: pool.id,
    name: body.name ?? null,
    type,
    delay: body.delay,
    timeout: body.timeout,
    max_retries: body.max_retries,
    max_retries_down: body.max_retries_down ?? 3,
    http_method: isHttp(type) ? (body.http_method ?? 'GET') : null,
    url_path: isHttp(type) ? (body.url_path ?? '/') : null,
    expected_codes: isHttp(type) ? (body.expected_codes ?? '200') : null,
    expected_body: isHttp(type) ? (body.expected_body ?? null) : null,
    http_version: body.http_version ?? null,
    domain_name: body.domain_name ?? null,
  };
}

async function create(ctx: Ctx): Promise<void> {
  const body = parseRequest(ctx.state.body, 'healthmonitor', postSchema, 'health_monitor_');
  const { services } = ctx.state;
  const { db } = services;
  const parent = await findOr404(services, poolSpec, body.pool_id as string);
  enforce(ctx, 'healthmonitor', 'post', parent.project_id);
  let provider = '';
  const row = await db.tx(async (t) => {
    const pool = await findOr404(services, poolSpec, parent.id, t);
    const lb = await lockLoadBalancer(services, pool.load_balancer_id, t);
    const monitor = buildHealthMonitor(services, lb, pool, body);
    await checkQuota(ctx, lb.project_id, 'health_monitor', 1, t);
    requireActive(pool, 'Pool');
    requireActive(lb, 'Load Balancer');
    if (await db.models.health_monitor.count({ where: { pool_id: pool.id }, transaction: t })) throw errors.duplicateHealthMonitor();
    const driver = providerOf(services, lb.provider);
    checkWithProvider(driver, lb.provider, () => driver.checks.healthMonitor?.(monitor, pool));
    await db.models.health_monitor.create(monitor, { transaction: t });
    await replaceTags(services, monitor.id, body.tags, t, true);
    await setStatus(services, 'pool', [pool.id], 'PENDING_UPDATE', t);
    await markPoolParents(services, pool, t);
    provider = lb.provider;
    return monitor;
  });
  providerOf(services, provider).submit({ kind: 'healthmonitor', action: 'create', id: row.id, loadBalancerId: parent.load_balancer_id });
  ctx.status = 201;
  const [view] = await db.read(() => healthMonitorViews(db, [row]));
  ctx.body = { healthmonitor: view };
}

async function update(ctx: Ctx): Promise<void> {
  const body = parseRequest(ctx.state.body, 'healthmonitor', putSchema, 'health_monitor_');
  const { services } = ctx.state;
  const { db } = services;
  const id = ctx.params.id!;
  const found = await findOr404(services, healthMonitorSpec, id);
  enforce(ctx, 'healthmonitor', 'put', found.project_id);
  checkHttpOptions(Object.fromEntries(Object.keys(body).filter((k) => ['http_method', 'url_path', 'expected_codes', 'expected_body'].includes(k)).map((k) => [k, true])), found.type);
  for (const field of ['delay', 'max_retries', 'timeout']) if (field in body && body[field] === null) throw errors.invalidOption('None', field);
  // As Octavia's _validate_update_hm: the request's domain needs a version (request or stored); the
  // effective version must be >= 1.1 whenever a domain (request or stored) is in effect.
  if (body.domain_name && !(found.http_version || body.http_version)) checkDomainName(body.domain_name, null);
  checkDomainName(body.domain_name || found.domain_name || null, body.http_version || found.http_version || null);
  let provider = '';
  let lbId = '';
  const row = await db.tx(async (t) => {
    const monitor = await findOr404(services, healthMonitorSpec, id, t);
    const pool = (await db.models.pool.findByPk(monitor.pool_id, { raw: true, transaction: t })) as Row;
    const lb = await lockLoadBalancer(services, pool.load_balancer_id, t);
    const minDelay = services.config.api.udpConnectMinIntervalHealthMonitor;
    if (LVS_PROTOCOLS.includes(pool.protocol) && monitor.type === 'UDP-CONNECT' && typeof body.delay === 'number' && minDelay > 0 && body.delay < minDelay) {
      throw errors.validation(`The request delay value ${body.delay} should be larger than ${minDelay} for ${monitor.type} health monitor type.`);
    }
    const values: Row = {};
    for (const key of ['name', 'delay', 'timeout', 'max_retries', 'http_version', 'domain_name'] as const) if (key in body) values[key] = body[key];
    if ('admin_state_up' in body) values.admin_state_up = body.admin_state_up ?? false;
    if ('max_retries_down' in body) values.max_retries_down = body.max_retries_down ?? 3;
    if (isHttp(monitor.type)) {
      if ('http_method' in body) values.http_method = body.http_method ?? 'GET';
      if ('url_path' in body) values.url_path = body.url_path ?? '/';
      if ('expected_codes' in body) values.expected_codes = body.expected_codes ?? '200';
      if ('expected_body' in body) values.expected_body = body.expected_body ?? null;
    }
    requireActive(pool, 'Pool');
    requireActive(lb, 'Load Balancer');
    values.provisioning_status = 'PENDING_UPDATE';
    values.updated_at = now();
    await db.models.health_monitor.update(values, { where: { id }, transaction: t });
    await replaceTags(services, id, body.tags, t);
    await setStatus(services, 'pool', [pool.id], 'PENDING_UPDATE', t);
    await markPoolParents(services, pool, t);
    provider = lb.provider;
    lbId = lb.id;
    return { ...monitor, ...values };
  });
  providerOf(services, provider).submit({ kind: 'healthmonitor', action: 'update', id, loadBalancerId: lbId });
  const [view] = await db.read(() => healthMonitorViews(db, [row]));
  ctx.body = { healthmonitor: view };
}

async function remove(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const id = ctx.params.id!;
  const found = await findOr404(services, healthMonitorSpec, id);
  enforce(ctx, 'healthmonitor', 'delete', found.project_id);
  let provider = '';
  let lbId = '';
  await services.db.tx(async (t) => {
    const monitor = await findOr404(services, healthMonitorSpec, id, t);
    const pool = (await services.db.models.pool.findByPk(monitor.pool_id, { raw: true, transaction: t })) as Row;
    const lb = await lockLoadBalancer(services, pool.load_balancer_id, t);
    requireActive(pool, 'Pool');
    requireActive(lb, 'Load Balancer');
    await setStatus(services, 'health_monitor', [id], 'PENDING_DELETE', t);
    await setStatus(services, 'pool', [pool.id], 'PENDING_UPDATE', t);
    await markPoolParents(services, pool, t);
    provider = lb.provider;
    lbId = lb.id;
  });
  providerOf(services, provider).submit({ kind: 'healthmonitor', action: 'delete', id, loadBalancerId: lbId });
  ctx.status = 204;
}

export function routes(router: Router<any, any>): void {
  router.get('/healthmonitors', (ctx) => listResource(ctx as Ctx, healthMonitorSpec));
  router.post('/healthmonitors', (ctx) => create(ctx as Ctx));
  router.get('/healthmonitors/:id', async (ctx) => showResource(ctx as Ctx, healthMonitorSpec, await findOr404((ctx as Ctx).state.services, healthMonitorSpec, ctx.params.id!)));
  router.put('/healthmonitors/:id', (ctx) => update(ctx as Ctx));
  router.delete('/healthmonitors/:id', (ctx) => remove(ctx as Ctx));
}
