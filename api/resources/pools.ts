// /v2/lbaas/pools.
import type Router from '@koa/router';
import type { Transaction } from 'sequelize';
import type { Row } from '../../common/db/database.ts';
import { enforce, isAllowed } from '../access.ts';
import { baseColumns, col, findOr404, listResource, showResource, type ResourceSpec } from '../collection.ts';
import { errors } from '../errors.ts';
import { checkQuota, checkWithProvider, lockLoadBalancer, newObject, now, providerOf, replaceTags, requireActive, setStatus } from '../mutations.ts';
import { checkListenerPool } from '../listener-ports.ts';
import { checkAlpnProtocols, checkCiphers, checkPoolProtocol, checkTlsVersions, LB_ALGORITHMS, LVS_PROTOCOLS, POOL_PROTOCOLS } from '../protocols.ts';
import { object, parseRequest, type Body, type Schema } from '../schema/object.ts';
import { alpnProtocol, boolean, enumOf, integer, list, string, uuid } from '../schema/types.ts';
import type { Ctx, Services } from '../services.ts';
import { json, poolListenerIds, poolViews } from '../views.ts';
import { NO_MANAGER, planHasRefs, poolCreatePlan, poolUpdateCaCrl, poolUpdatePlan, resolveRefs, TlsRefs } from '../tls-refs.ts';

export const poolSpec: ResourceSpec = {
  table: 'pool',
  display: 'Pool',
  singular: 'pool',
  plural: 'pools',
  linksKey: 'pools_links',
  policy: 'pool',
  idColumn: 'id',
  hasTags: true,
  hasCreatedAt: true,
  projectScoped: true,
  view: poolViews,
  columns: {
    ...baseColumns,
    description: col('description'),
    loadbalancer_id: col('load_balancer_id'),
    protocol: col('protocol'),
    lb_algorithm: col('lb_algorithm'),
    tls_enabled: col('tls_enabled', 'bool'),
    tls_container_ref: col('tls_container_ref'),
    ca_tls_container_ref: col('ca_tls_container_ref'),
    crl_container_ref: col('crl_container_ref'),
    tls_ciphers: col('tls_ciphers'),
  },
};

const str255 = { type: string({ max: 255 }) };
export const sessionPersistenceSchema: Schema = {
  /** LAST_SUCCESSFUL is an extension: every client follows the member that last answered, until it fails (TCP-family pools). */
  type: { type: enumOf(['SOURCE_IP', 'HTTP_COOKIE', 'APP_COOKIE', 'LAST_SUCCESSFUL']) },
  cookie_name: { type: string({ max: 255, pattern: /^[^\s,;\\]+$/ }) },
  persistence_timeout: { type: integer({ min: 0 }) },
  persistence_granularity: { type: string({ max: 64 }) },
};

/** Attributes a pool may be created with (the graph form adds healthmonitor and members). */
export const poolCreateFields: Schema = {
  name: str255,
  description: str255,
  admin_state_up: { type: boolean },
  project_id: { type: string({ max: 36 }) },
  tenant_id: { type: string({ max: 36 }) },
  protocol: { type: enumOf(POOL_PROTOCOLS), mandatory: true },
  lb_algorithm: { type: enumOf(LB_ALGORITHMS), mandatory: true },
  session_persistence: { type: object(sessionPersistenceSchema, 'session_persistence') },
  tags: { type: list(string({ max: 255 })) },
  tls_enabled: { type: boolean },
  tls_container_ref: str255,
  ca_tls_container_ref: str255,
  crl_container_ref: str255,
  tls_ciphers: { type: string({ max: 2048 }) },
  tls_versions: { type: list(string({ max: 32 })) },
  alpn_protocols: { type: list(alpnProtocol) },
};

const postSchema: Schema = { ...poolCreateFields, loadbalancer_id: { type: uuid }, listener_id: { type: uuid } };
const UPDATABLE = ['name', 'description', 'admin_state_up', 'lb_algorithm', 'session_persistence', 'tags', 'tls_enabled', 'tls_container_ref', 'ca_tls_container_ref', 'crl_container_ref', 'tls_ciphers', 'tls_versions', 'alpn_protocols'];
const putSchema: Schema = Object.fromEntries(UPDATABLE.map((k) => [k, { type: poolCreateFields[k]!.type }]));

/** Session persistence rules shared by create and update; returns the JSON to store (or null). */
function checkSessionPersistence(protocol: string, sp: Body | null | undefined, update = false): string | null {
  if (!sp || Object.keys(sp).length === 0) return null;
  if (LVS_PROTOCOLS.includes(protocol)) {
    if (sp.type === 'SOURCE_IP' && sp.cookie_name) {
      throw errors.validation('session_persistence SOURCE_IP type for UDP and SCTP protocols only accepts: type, persistence_timeout, persistence_granularity.');
    }
    if (sp.cookie_name) throw errors.validation('Cookie names are not supported for UDP/SCTP pools.');
    if (sp.type === 'HTTP_COOKIE' || sp.type === 'APP_COOKIE' || sp.type === 'LAST_SUCCESSFUL') {
      throw errors.validation(`Session persistence of type ${sp.type} is not supported for UDP/SCTP protocol pools.`);
    }
  } else if (sp.persistence_timeout || sp.persistence_granularity) {
    // Octavia's pool PUT still says "UDP protocol pools" (its POST says "UDP and SCTP").
    throw errors.validation(`persistence_timeout and persistence_granularity is only for ${update ? 'UDP' : 'UDP and SCTP'} protocol pools.`);
  }
  if (sp.cookie_name) {
    if (sp.type !== 'APP_COOKIE') throw errors.validation('Field "cookie_name" can only be specified with session persistence of type "APP_COOKIE".');
    if (/[\x00-\x20\x22\x28\x29\x2c\x2f\x3a-\x40\x5b-\x5d\x7b\x7d\x7f]/.test(sp.cookie_name as string)) {
      throw errors.validation('Supplied "cookie_name" is invalid.');
    }
  }
  if (sp.type === 'APP_COOKIE' && !sp.cookie_name) {
    throw errors.validation('Field "cookie_name" must be specified when using the "APP_COOKIE" session persistence type.');
  }
  if (!sp.type) throw errors.mandatory('type');
  return JSON.stringify({
    type: sp.type,
    cookie_name: sp.cookie_name ?? null,
    persistence_timeout: sp.persistence_timeout ?? null,
    persistence_granularity: sp.persistence_granularity ?? null,
  });
}

/**
 * The TLS rules of a pool create or update: Octavia's order (CRL needs a CA, the certificate ref, the
 * CA and CRL, the cipher prohibit list). `caCrl` is what an update validates (body or stored values).
 */
function checkTls(services: Services, values: Row, body: Body, tls: TlsRefs, caCrl: { ca: string | null; crl: string | null }): void {
  if (values.crl_container_ref && !values.ca_tls_container_ref) {
    throw errors.validation('A CA certificate reference is required to specify a revocation list.');
  }
  if (!tls.configured) {
    if (body.tls_container_ref || body.ca_tls_container_ref || body.crl_container_ref) throw errors.validation(NO_MANAGER);
  } else {
    tls.checkCertRefs([body.tls_container_ref as string | null]);
    if (caCrl.ca) tls.checkCaAndCrl(caCrl.ca, caCrl.crl);
  }
  checkCiphers(values.tls_ciphers, services.config.api.tlsCipherProhibitList);
}

/**
 * Builds and validates a new pool row for load balancer `lb` (POST and graph create); `tls` holds its
 * certificate references, resolved before the transaction (api/tls-refs.ts).
 */
export function buildPool(services: Services, lb: Row, body: Body, tls: TlsRefs = TlsRefs.none(services)): Row {
  const d = services.config.listenerDefaults;
  const protocol = body.protocol as string;
  const tlsEnabled = (body.tls_enabled as boolean | null) ?? false;
  const row: Row = {
    ...newObject(lb.project_id, body),
    load_balancer_id: lb.id,
    name: body.name ?? null,
    description: body.description ?? null,
    protocol,
    lb_algorithm: body.lb_algorithm,
    session_persistence: checkSessionPersistence(protocol, body.session_persistence as Body | null),
    tls_enabled: tlsEnabled,
    tls_container_ref: body.tls_container_ref ?? null,
    ca_tls_container_ref: body.ca_tls_container_ref ?? null,
    crl_container_ref: body.crl_container_ref ?? null,
    tls_ciphers: body.tls_ciphers ?? (tlsEnabled ? d.tlsCiphers : null),
    tls_versions: JSON.stringify(body.tls_versions ?? (tlsEnabled ? d.tlsVersions : null)),
    alpn_protocols: JSON.stringify(body.alpn_protocols ?? (tlsEnabled ? d.alpnProtocols : null)),
  };
  checkTls(services, row, body, tls, { ca: row.ca_tls_container_ref, crl: row.crl_container_ref });
  if (tlsEnabled) {
    checkTlsVersions(json<string[] | null>(row.tls_versions, null), services.config.api.minimumTlsVersion);
    checkAlpnProtocols(json<string[] | null>(row.alpn_protocols, null));
  }
  return row;
}

/** The project a new pool's certificate references are resolved for (its load balancer's), when the caller may create it. */
async function poolProject(services: Services, body: Body): Promise<string | null> {
  const { db } = services;
  let lbId = body.loadbalancer_id as string | undefined;
  if (!lbId && body.listener_id) {
    const listener = (await db.read(() => db.models.listener.findByPk(body.listener_id as string, { raw: true }))) as Row | null;
    lbId = listener?.load_balancer_id;
  }
  if (!lbId) return null;
  const lb = (await db.read(() => db.models.load_balancer.findByPk(lbId, { raw: true }))) as Row | null;
  return lb?.project_id ?? null;
}

async function create(ctx: Ctx): Promise<void> {
  const body = parseRequest(ctx.state.body, 'pool', postSchema, 'pool_');
  const { services } = ctx.state;
  const { db } = services;
  const plan = poolCreatePlan(body);
  const project = planHasRefs(plan) ? await poolProject(services, body) : null;
  const tls = await resolveRefs(ctx, project, project && isAllowed(ctx, 'pool', 'post', project) ? plan : { certs: [], secrets: [] });
  let submitTo: { provider: string; lbId: string } | undefined;
  const row = await db.tx(async (t) => {
    let listener: Row | null = null;
    let lbId = body.loadbalancer_id as string | undefined;
    if (!lbId && body.listener_id) {
      listener = (await db.models.listener.findByPk(body.listener_id as string, { raw: true, transaction: t })) as Row | null;
      if (!listener) throw errors.notFound('Listener', body.listener_id as string);
      lbId = listener.load_balancer_id;
    } else if (lbId && body.listener_id) {
      listener = (await db.models.listener.findOne({ where: { id: body.listener_id as string, load_balancer_id: lbId }, raw: true, transaction: t })) as Row | null;
      if (!listener) throw errors.notFound('Listener', body.listener_id as string);
    }
    if (!lbId) throw errors.validation('Must provide at least one of: loadbalancer_id, listener_id');
    const lb = await lockLoadBalancer(services, lbId, t);
    enforce(ctx, 'pool', 'post', lb.project_id);
    if (listener && !body.loadbalancer_id) {
      if (listener.protocol === 'PROMETHEUS') throw errors.listenerNoChildren('PROMETHEUS');
      checkPoolProtocol(listener.protocol, body.protocol as string);
    }
    const pool = buildPool(services, lb, body, tls);
    if (listener && !body.loadbalancer_id) checkListenerPool(listener, pool);
    const driver = providerOf(services, lb.provider);
    await checkQuota(ctx, lb.project_id, 'pool', 1, t);
    if (listener?.default_pool_id) throw errors.duplicatePool();
    // Octavia locks the load balancer only: a listener in ERROR can still get a default pool.
    requireActive(lb, 'Load Balancer');
    await db.models.pool.create(pool, { transaction: t });
    await replaceTags(services, pool.id, body.tags, t, true);
    if (listener) {
      await db.models.listener.update({ default_pool_id: pool.id, provisioning_status: 'PENDING_UPDATE', updated_at: now() }, { where: { id: listener.id }, transaction: t });
    }
    checkWithProvider(driver, lb.provider, () => driver.checks.pool?.(pool));
    await setStatus(services, 'load_balancer', [lb.id], 'PENDING_UPDATE', t);
    submitTo = { provider: lb.provider, lbId: lb.id };
    return pool;
  });
  providerOf(services, submitTo!.provider).submit({ kind: 'pool', action: 'create', id: row.id, loadBalancerId: submitTo!.lbId });
  ctx.status = 201;
  const [view] = await db.read(() => poolViews(db, [row]));
  ctx.body = { pool: view };
}

/** Marks a pool's parents PENDING_UPDATE: its load balancer and every listener using it. */
export async function markPoolParents(services: Services, pool: Row, t: Transaction): Promise<void> {
  const listeners = (await poolListenerIds(services.db, [pool.id], t)).get(pool.id) ?? [];
  await setStatus(services, 'listener', listeners, 'PENDING_UPDATE', t);
  await setStatus(services, 'load_balancer', [pool.load_balancer_id], 'PENDING_UPDATE', t);
}

async function update(ctx: Ctx): Promise<void> {
  const body = parseRequest(ctx.state.body, 'pool', putSchema, 'pool_');
  const { services } = ctx.state;
  const { db, config } = services;
  const id = ctx.params.id!;
  const found = await findOr404(services, poolSpec, id);
  enforce(ctx, 'pool', 'put', found.project_id);
  const d = config.listenerDefaults;
  const tls = await resolveRefs(ctx, found.project_id, poolUpdatePlan(body, found));
  let provider = '';
  const row = await db.tx(async (t) => {
    const current = await findOr404(services, poolSpec, id, t);
    const lb = await lockLoadBalancer(services, current.load_balancer_id, t);
    const values: Row = {};
    for (const key of ['name', 'description', 'tls_container_ref', 'ca_tls_container_ref', 'crl_container_ref'] as const) if (key in body) values[key] = body[key];
    if ('admin_state_up' in body) values.admin_state_up = body.admin_state_up ?? false;
    if ('lb_algorithm' in body) {
      if (body.lb_algorithm === null) throw errors.invalidOption('None', 'lb_algorithm');
      values.lb_algorithm = body.lb_algorithm;
    }
    if ('session_persistence' in body) {
      const sp = body.session_persistence as Body | null;
      const existing = json<Row | null>(current.session_persistence, null);
      const merged = sp && Object.keys(sp).length ? { ...(existing && !sp.type ? { type: existing.type } : {}), ...sp } : null;
      values.session_persistence = checkSessionPersistence(current.protocol, merged, true);
      const users = (await db.models.listener.findAll({ where: { default_pool_id: current.id }, raw: true, transaction: t })) as Row[];
      for (const l of users) checkListenerPool(l, { ...current, session_persistence: values.session_persistence });
    }
    const tlsEnabled = 'tls_enabled' in body ? ((body.tls_enabled as boolean | null) ?? false) : Boolean(current.tls_enabled);
    if ('tls_enabled' in body) values.tls_enabled = tlsEnabled;
    // null resets ciphers and versions to the configured defaults, as Octavia's pool PUT does.
    if ('tls_ciphers' in body) values.tls_ciphers = body.tls_ciphers ?? d.tlsCiphers;
    if ('tls_versions' in body) {
      checkTlsVersions(body.tls_versions as string[] | null, config.api.minimumTlsVersion);
      values.tls_versions = JSON.stringify(body.tls_versions ?? d.tlsVersions);
    }
    if ('alpn_protocols' in body) {
      checkAlpnProtocols(body.alpn_protocols as string[] | null);
      values.alpn_protocols = JSON.stringify(body.alpn_protocols ?? (tlsEnabled ? d.alpnProtocols : null));
    }
    const merged = { ...current, ...values };
    if ('ca_tls_container_ref' in body && !body.ca_tls_container_ref && current.ca_tls_container_ref && merged.crl_container_ref) {
      throw errors.validation('A CA reference cannot be removed when a certificate revocation list is present.');
    }
    if (merged.crl_container_ref && !merged.ca_tls_container_ref) throw errors.validation('A CA reference is required to specify a certificate revocation list.');
    checkTls(services, merged, body, tls, poolUpdateCaCrl(body, current));
    requireActive(lb, 'Load Balancer');
    const driver = providerOf(services, lb.provider);
    checkWithProvider(driver, lb.provider, () => driver.checks.pool?.(merged));
    values.provisioning_status = 'PENDING_UPDATE';
    values.updated_at = now();
    await db.models.pool.update(values, { where: { id }, transaction: t });
    await replaceTags(services, id, body.tags, t);
    await markPoolParents(services, merged, t);
    provider = lb.provider;
    return { ...merged, ...values };
  });
  providerOf(services, provider).submit({ kind: 'pool', action: 'update', id, loadBalancerId: row.load_balancer_id });
  const [view] = await db.read(() => poolViews(db, [row]));
  ctx.body = { pool: view };
}

async function remove(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const { db } = services;
  const id = ctx.params.id!;
  const found = await findOr404(services, poolSpec, id);
  enforce(ctx, 'pool', 'delete', found.project_id);
  let provider = '';
  await db.tx(async (t) => {
    const pool = await findOr404(services, poolSpec, id, t);
    const lb = await lockLoadBalancer(services, pool.load_balancer_id, t);
    const policy = (await db.models.l7policy.findOne({ where: { redirect_pool_id: id }, raw: true, transaction: t })) as Row | null;
    if (policy) throw errors.poolInUse(id, policy.id);
    requireActive(lb, 'Load Balancer');
    await markPoolParents(services, pool, t);
    await setStatus(services, 'pool', [id], 'PENDING_DELETE', t);
    provider = lb.provider;
  });
  providerOf(services, provider).submit({ kind: 'pool', action: 'delete', id, loadBalancerId: found.load_balancer_id });
  ctx.status = 204;
}

export function routes(router: Router<any, any>): void {
  router.get('/pools', (ctx) => listResource(ctx as Ctx, poolSpec));
  router.post('/pools', (ctx) => create(ctx as Ctx));
  router.get('/pools/:id', async (ctx) => showResource(ctx as Ctx, poolSpec, await findOr404((ctx as Ctx).state.services, poolSpec, ctx.params.id!)));
  router.put('/pools/:id', (ctx) => update(ctx as Ctx));
  router.delete('/pools/:id', (ctx) => remove(ctx as Ctx));
}
