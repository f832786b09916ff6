// /v2/lbaas/listeners and /listeners/{id}/stats.
import type Router from '@koa/router';
import type { Transaction } from 'sequelize';
import type { Row } from '../../common/db/database.ts';
import { normalizeCidr, parseCidr } from '../../common/ip-address.ts';
import { enforce, isAllowed } from '../access.ts';
import { baseColumns, col, findOr404, listResource, showResource, type ResourceSpec } from '../collection.ts';
import { errors } from '../errors.ts';
import { checkQuota, checkWithProvider, lockLoadBalancer, newObject, now, providerOf, replaceTags, requireActive, setStatus } from '../mutations.ts';
import {
  checkAlpnProtocols, checkCiphers, checkInsertHeaders, checkPoolProtocol, checkTlsVersions, LISTENER_PROTOCOLS, LVS_PROTOCOLS,
} from '../protocols.ts';
import { parseRequest, type Body, type Schema } from '../schema/object.ts';
import { alpnProtocol, boolean, cidr, dict, enumOf, integer, list, string, uuid } from '../schema/types.ts';
import type { Ctx, Services } from '../services.ts';
import { json, listenerViews } from '../views.ts';
import { vipVersions } from '../vip.ts';
import { listenerStatistics } from '../statistics.ts';
import { checkListenerExtensions, checkListenerPool, checkPortConflicts, FORWARDING_METHODS, portList } from '../listener-ports.ts';
import { listenerCreatePlan, listenerUpdateCaCrl, listenerUpdatePlan, NO_MANAGER, planHasRefs, resolveRefs, TlsRefs } from '../tls-refs.ts';

export const listenerSpec: ResourceSpec = {
  table: 'listener',
  display: 'Listener',
  singular: 'listener',
  plural: 'listeners',
  linksKey: 'listeners_links',
  policy: 'listener',
  idColumn: 'id',
  hasTags: true,
  hasCreatedAt: true,
  projectScoped: true,
  view: listenerViews,
  columns: {
    ...baseColumns,
    description: col('description'),
    loadbalancer_id: col('load_balancer_id'),
    protocol: col('protocol'),
    protocol_port: col('protocol_port', 'int'),
    connection_limit: col('connection_limit', 'int'),
    default_pool_id: col('default_pool_id'),
    default_tls_container_ref: col('default_tls_container_ref'),
    client_authentication: col('client_authentication'),
    client_ca_tls_container_ref: col('client_ca_tls_container_ref'),
    client_crl_container_ref: col('client_crl_container_ref'),
    timeout_client_data: col('timeout_client_data', 'int'),
    timeout_member_connect: col('timeout_member_connect', 'int'),
    timeout_member_data: col('timeout_member_data', 'int'),
    timeout_tcp_inspect: col('timeout_tcp_inspect', 'int'),
    tls_ciphers: col('tls_ciphers'),
    hsts_max_age: col('hsts_max_age', 'int'),
    hsts_include_subdomains: col('hsts_include_subdomains', 'bool'),
    hsts_preload: col('hsts_preload', 'bool'),
    additional_ports: col('additional_ports'),
    also_udp: col('also_udp', 'bool'),
    forwarding_method: col('forwarding_method'),
  },
};

const str255 = { type: string({ max: 255 }) };
const timeout = { type: integer({ min: 0, max: 2073600000 }) };

/** Attributes a listener may be created with (the graph form adds default_pool and l7policies). */
export const listenerCreateFields: Schema = {
  name: str255,
  description: str255,
  admin_state_up: { type: boolean },
  protocol: { type: enumOf(LISTENER_PROTOCOLS), mandatory: true },
  protocol_port: { type: integer({ min: 1, max: 65535 }), mandatory: true },
  connection_limit: { type: integer({ min: -1 }) },
  default_tls_container_ref: str255,
  sni_container_refs: { type: list(string({ max: 255 })) },
  project_id: { type: string({ max: 36 }) },
  tenant_id: { type: string({ max: 36 }) },
  default_pool_id: { type: uuid },
  insert_headers: { type: dict(string({ max: 255 })) },
  timeout_client_data: timeout,
  timeout_member_connect: timeout,
  timeout_member_data: timeout,
  timeout_tcp_inspect: timeout,
  tags: { type: list(string({ max: 255 })) },
  client_ca_tls_container_ref: str255,
  client_authentication: { type: enumOf(['NONE', 'OPTIONAL', 'MANDATORY']) },
  client_crl_container_ref: str255,
  allowed_cidrs: { type: list(cidr) },
  tls_ciphers: { type: string({ max: 2048 }) },
  tls_versions: { type: list(string({ max: 32 })) },
  alpn_protocols: { type: list(alpnProtocol) },
  hsts_max_age: { type: integer({ min: 0 }) },
  hsts_include_subdomains: { type: boolean },
  hsts_preload: { type: boolean },
  // Extensions (api/listener-ports.ts): set at create only.
  additional_ports: { type: portList },
  also_udp: { type: boolean },
  forwarding_method: { type: enumOf(FORWARDING_METHODS) },
};

const postSchema: Schema = { ...listenerCreateFields, loadbalancer_id: { type: uuid, mandatory: true } };

const UPDATABLE = [
  'name', 'description', 'admin_state_up', 'connection_limit', 'default_tls_container_ref', 'sni_container_refs', 'default_pool_id',
  'insert_headers', 'timeout_client_data', 'timeout_member_connect', 'timeout_member_data', 'timeout_tcp_inspect', 'tags',
  'client_ca_tls_container_ref', 'client_authentication', 'client_crl_container_ref', 'allowed_cidrs', 'tls_ciphers', 'tls_versions',
  'alpn_protocols', 'hsts_max_age', 'hsts_include_subdomains', 'hsts_preload',
];
const putSchema: Schema = Object.fromEntries(UPDATABLE.map((k) => [k, { type: listenerCreateFields[k]!.type }]));

/**
 * Builds and validates a new listener row for load balancer `lb` (POST and graph create); `tls` holds
 * its certificate references, resolved before the transaction (api/tls-refs.ts).
 */
export async function buildListener(services: Services, lb: Row, body: Body, t: Transaction, graph = false, tls: TlsRefs = TlsRefs.none(services)): Promise<Row> {
  const { config, db } = services;
  const protocol = body.protocol as string;
  const d = config.listenerDefaults;
  const tlsOffload = isTlsOffload(protocol, body);
  const row: Row = {
    ...newObject(lb.project_id, body),
    load_balancer_id: lb.id,
    name: body.name ?? null,
    description: body.description ?? null,
    protocol,
    protocol_port: body.protocol_port,
    connection_limit: body.connection_limit ?? -1,
    default_pool_id: body.default_pool_id ?? null,
    default_tls_container_ref: body.default_tls_container_ref ?? null,
    sni_container_refs: JSON.stringify(body.sni_container_refs ?? []),
    client_authentication: body.client_authentication ?? 'NONE',
    client_ca_tls_container_ref: body.client_ca_tls_container_ref ?? null,
    client_crl_container_ref: body.client_crl_container_ref ?? null,
    insert_headers: JSON.stringify(body.insert_headers ?? {}),
    timeout_client_data: body.timeout_client_data ?? d.timeoutClientData,
    timeout_member_connect: body.timeout_member_connect ?? d.timeoutMemberConnect,
    timeout_member_data: body.timeout_member_data ?? d.timeoutMemberData,
    timeout_tcp_inspect: body.timeout_tcp_inspect ?? d.timeoutTcpInspect,
    allowed_cidrs: JSON.stringify(normalizeCidrs(body.allowed_cidrs as string[] | null)),
    tls_ciphers: body.tls_ciphers ?? (protocol === 'TERMINATED_HTTPS' ? d.tlsCiphers : null),
    tls_versions: JSON.stringify(body.tls_versions ?? (protocol === 'TERMINATED_HTTPS' ? d.tlsVersions : null)),
    alpn_protocols: JSON.stringify(body.alpn_protocols ?? (protocol === 'TERMINATED_HTTPS' ? d.alpnProtocols : null)),
    hsts_max_age: body.hsts_max_age ?? null,
    hsts_include_subdomains: body.hsts_include_subdomains ?? false,
    hsts_preload: body.hsts_preload ?? false,
    additional_ports: body.additional_ports ?? null,
    also_udp: body.also_udp ?? false,
    forwarding_method: body.forwarding_method ?? 'PROXY',
  };
  checkListenerExtensions(row);

  if (body.insert_headers) checkInsertHeaders(Object.keys(body.insert_headers as Row), protocol);
  const hasRefs = !!(body.default_tls_container_ref || body.client_ca_tls_container_ref || (body.sni_container_refs as string[] | undefined)?.length);
  if (LVS_PROTOCOLS.includes(protocol) && (hasRefs || body.insert_headers)) {
    throw errors.validation(`${protocol} protocol listener does not support TLS.`);
  }
  const offloadName = protocol === 'PROMETHEUS' ? `${protocol} with TLS` : protocol;
  if (!config.api.allowTlsTerminatedListeners && tlsOffload) throw errors.disabledOption('protocol', offloadName);
  if (!config.api.allowPrometheusListeners && protocol === 'PROMETHEUS') throw errors.disabledOption('protocol', 'PROMETHEUS');
  if (!tlsOffload && hasRefs) throw errors.validation(`Certificate container references are not allowed on ${protocol} protocol listeners.`);
  const hasCert = !!(body.default_tls_container_ref || (body.sni_container_refs as string[] | undefined)?.length);
  if (body.client_ca_tls_container_ref && !hasCert) {
    throw errors.validation('An SNI or default certificate container reference must be provided with a client CA container reference.');
  }
  if (tlsOffload && !hasCert) throw errors.validation(`An SNI or default certificate container reference must be provided for ${offloadName} protocol listeners.`);
  if (row.client_authentication !== 'NONE' && !row.client_ca_tls_container_ref) {
    throw errors.validation(`Client authentication setting ${row.client_authentication} requires a client CA container reference.`);
  }
  if (row.client_crl_container_ref && !row.client_ca_tls_container_ref) {
    throw errors.validation('A client authentication CA reference is required to specify a client authentication revocation list.');
  }
  checkCiphers(row.tls_ciphers, config.api.tlsCipherProhibitList);
  if (hasRefs) {
    if (!tls.configured) throw errors.validation(NO_MANAGER);
    tls.checkCertRefs([...((body.sni_container_refs as string[] | null) ?? []), body.default_tls_container_ref as string | null]);
    if (body.client_ca_tls_container_ref) tls.checkCaAndCrl(body.client_ca_tls_container_ref as string, body.client_crl_container_ref as string | null);
  }

  if (!graph) {
    const sameLb = (await db.models.listener.findAll({ where: { load_balancer_id: lb.id }, raw: true, transaction: t })) as Row[];
    checkPortConflicts(sameLb, row);
  }
  checkCidrsAgainstVips(lb, json<string[]>(row.allowed_cidrs, []));
  if (tlsOffload) {
    checkTlsVersions(json<string[] | null>(row.tls_versions, null), config.api.minimumTlsVersion);
    checkAlpnProtocols(json<string[] | null>(row.alpn_protocols, null));
  }
  checkHsts(row);
  return row;
}

function isTlsOffload(protocol: string, values: Row): boolean {
  const refs = !!(values.default_tls_container_ref || values.client_ca_tls_container_ref || json<string[]>(typeof values.sni_container_refs === 'string' ? values.sni_container_refs : JSON.stringify(values.sni_container_refs ?? []), []).length);
  return protocol === 'TERMINATED_HTTPS' || (protocol === 'PROMETHEUS' && refs);
}

function normalizeCidrs(cidrs: string[] | null | undefined): string[] {
  const out: string[] = [];
  for (const c of cidrs ?? []) {
    const n = normalizeCidr(c);
    if (!out.includes(n)) out.push(n);
  }
  return out;
}

function checkCidrsAgainstVips(lb: Row, cidrs: string[]): void {
  if (cidrs.length === 0) return;
  if (json<string[]>(lb.vip_sg_ids, []).length) throw errors.validation('Allowed CIDRs are not allowed when using custom VIP Security Groups.');
  const versions = vipVersions(lb);
  const vips = [lb.vip_address, ...json<Row[]>(lb.additional_vips, []).map((v) => v.ip_address)].filter(Boolean);
  for (const c of cidrs) {
    if (!versions.includes(parseCidr(c)!.version)) {
      throw errors.validation(`CIDR ${c} IP version incompatible with all VIPs [${vips.map((v) => `'${v}'`).join(', ')}] IP version.`);
    }
  }
}

function checkHsts(row: Row): void {
  const maxAgeSet = row.hsts_max_age !== null && row.hsts_max_age !== undefined;
  if ((row.hsts_include_subdomains || row.hsts_preload) && !maxAgeSet) {
    throw errors.validation('HSTS configuration options hsts_include_subdomains and hsts_preload only make sense if hsts_max_age is set as well.');
  }
  if (maxAgeSet && row.protocol !== 'TERMINATED_HTTPS') {
    throw errors.validation('The HSTS feature can only be used for listeners using the TERMINATED_HTTPS protocol.');
  }
}

async function checkDefaultPool(services: Services, lbId: string, poolId: string, listener: Row, t: Transaction): Promise<void> {
  if (listener.protocol === 'PROMETHEUS') throw errors.listenerNoChildren('PROMETHEUS');
  const pool = (await services.db.models.pool.findOne({ where: { id: poolId, load_balancer_id: lbId }, raw: true, transaction: t })) as Row | null;
  if (!pool) throw errors.notFound('Pool', poolId);
  checkPoolProtocol(listener.protocol, pool.protocol);
  checkListenerPool(listener, pool);
}

async function create(ctx: Ctx): Promise<void> {
  const body = parseRequest(ctx.state.body, 'listener', postSchema, 'listener_');
  const { services } = ctx.state;
  const { db } = services;
  const lbId = body.loadbalancer_id as string;
  // Certificate references are fetched before the transaction and judged inside it (api/tls-refs.ts).
  const plan = listenerCreatePlan(body);
  const parent = planHasRefs(plan) ? ((await db.read(() => db.models.load_balancer.findByPk(lbId, { raw: true }))) as Row | null) : null;
  const tls = await resolveRefs(ctx, parent?.project_id ?? null, parent && isAllowed(ctx, 'listener', 'post', parent.project_id) ? plan : { certs: [], secrets: [] });
  let provider = '';
  const row = await db.tx(async (t) => {
    const lb = await lockLoadBalancer(services, lbId, t);
    enforce(ctx, 'listener', 'post', lb.project_id);
    const driver = providerOf(services, lb.provider);
    await checkQuota(ctx, lb.project_id, 'listener', 1, t);
    if (body.default_pool_id) await checkDefaultPool(services, lbId, body.default_pool_id as string, body, t);
    requireActive(lb, 'Load Balancer');
    const listener = await buildListener(services, lb, body, t, false, tls);
    checkWithProvider(driver, lb.provider, () => driver.checks.listener?.(listener));
    await db.models.listener.create(listener, { transaction: t });
    await replaceTags(services, listener.id, body.tags, t, true);
    await setStatus(services, 'load_balancer', [lbId], 'PENDING_UPDATE', t);
    provider = lb.provider;
    return listener;
  });
  providerOf(services, provider).submit({ kind: 'listener', action: 'create', id: row.id, loadBalancerId: lbId });
  ctx.status = 201;
  const [view] = await db.read(() => listenerViews(db, [row]));
  ctx.body = { listener: view };
}

async function update(ctx: Ctx): Promise<void> {
  const body = parseRequest(ctx.state.body, 'listener', putSchema, 'listener_');
  const { services } = ctx.state;
  const { db, config } = services;
  const id = ctx.params.id!;
  const found = await findOr404(services, listenerSpec, id);
  enforce(ctx, 'listener', 'put', found.project_id);
  const d = config.listenerDefaults;
  const protocol = found.protocol as string;
  const tls = await resolveRefs(ctx, found.project_id, isTlsOffload(protocol, { ...found, ...body }) ? listenerUpdatePlan(body, found) : { certs: [], secrets: [] });
  let provider = '';
  const row = await db.tx(async (t) => {
    const current = await findOr404(services, listenerSpec, id, t);
    const lb = await lockLoadBalancer(services, current.load_balancer_id, t);
    const values: Row = {};
    const set = (key: string, value: unknown) => (values[key] = value);
    for (const key of ['name', 'description', 'default_tls_container_ref', 'client_ca_tls_container_ref', 'client_crl_container_ref', 'hsts_max_age'] as const) {
      if (key in body) set(key, body[key]);
    }
    if ('admin_state_up' in body) set('admin_state_up', body.admin_state_up ?? false);
    if ('connection_limit' in body) set('connection_limit', body.connection_limit ?? -1);
    if ('sni_container_refs' in body) set('sni_container_refs', JSON.stringify(body.sni_container_refs ?? []));
    const tlsRefsInBody = !!(body.default_tls_container_ref || body.client_ca_tls_container_ref || (body.sni_container_refs as string[] | null)?.length);
    if (LVS_PROTOCOLS.includes(protocol) && (tlsRefsInBody || (body.insert_headers && Object.keys(body.insert_headers).length))) {
      throw errors.validation(`${protocol} protocol listener does not support TLS or header insertion.`);
    }
    if ('insert_headers' in body) {
      if (body.insert_headers) checkInsertHeaders(Object.keys(body.insert_headers as Row), protocol);
      set('insert_headers', JSON.stringify(body.insert_headers ?? {}));
    }
    const timeoutDefaults: Record<string, number> = {
      timeout_client_data: d.timeoutClientData, timeout_member_connect: d.timeoutMemberConnect,
      timeout_member_data: d.timeoutMemberData, timeout_tcp_inspect: d.timeoutTcpInspect,
    };
    for (const [key, def] of Object.entries(timeoutDefaults)) if (key in body) set(key, body[key] ?? def);
    if ('client_authentication' in body) set('client_authentication', body.client_authentication ?? 'NONE');
    if ('hsts_include_subdomains' in body) set('hsts_include_subdomains', body.hsts_include_subdomains ?? false);
    if ('hsts_preload' in body) set('hsts_preload', body.hsts_preload ?? false);
    // null resets to the configured defaults whatever the protocol (Octavia's _set_default_on_none).
    if ('tls_ciphers' in body) set('tls_ciphers', body.tls_ciphers ?? d.tlsCiphers);
    if ('tls_versions' in body) {
      checkTlsVersions(body.tls_versions as string[] | null, config.api.minimumTlsVersion);
      set('tls_versions', JSON.stringify(body.tls_versions ?? d.tlsVersions));
    }
    if ('alpn_protocols' in body) {
      checkAlpnProtocols(body.alpn_protocols as string[] | null);
      set('alpn_protocols', JSON.stringify(body.alpn_protocols ?? d.alpnProtocols));
    }
    if ('allowed_cidrs' in body) {
      const cidrs = normalizeCidrs(body.allowed_cidrs as string[] | null);
      checkCidrsAgainstVips(lb, cidrs);
      set('allowed_cidrs', JSON.stringify(cidrs));
    }
    const merged = { ...current, ...values };
    const hasRefs = !!(merged.default_tls_container_ref || merged.client_ca_tls_container_ref || json<string[]>(merged.sni_container_refs, []).length);
    if (hasRefs && ('default_tls_container_ref' in body || 'sni_container_refs' in body || 'client_ca_tls_container_ref' in body)) {
      if (!isTlsOffload(protocol, merged)) throw errors.validation(`Certificate container references are not allowed on ${protocol} protocol listeners.`);
      if (!tls.configured) throw errors.validation(NO_MANAGER);
    }
    if (merged.client_authentication !== 'NONE' && !merged.client_ca_tls_container_ref) {
      throw errors.validation(`Client authentication setting ${merged.client_authentication} requires a client CA container reference.`);
    }
    // Octavia's PUT: the body's certificate refs, then the CA and CRL (the body's, else the stored ones).
    if (tls.configured && isTlsOffload(protocol, merged)) {
      tls.checkCertRefs([...((body.sni_container_refs as string[] | null) ?? []), body.default_tls_container_ref as string | null]);
    }
    if (merged.client_crl_container_ref && !merged.client_ca_tls_container_ref) {
      throw errors.validation('A client authentication CA reference is required to specify a client authentication revocation list.');
    }
    if (tls.configured && isTlsOffload(protocol, merged)) {
      const { ca, crl } = listenerUpdateCaCrl(body, current);
      if (ca) tls.checkCaAndCrl(ca, crl);
    }
    checkCiphers(merged.tls_ciphers, config.api.tlsCipherProhibitList);
    // Octavia's check_hsts_options_put words the missing max_age case differently from create.
    if ((body.hsts_include_subdomains || body.hsts_preload) && (merged.hsts_max_age === null || merged.hsts_max_age === undefined)) {
      throw errors.validation('Cannot enable hsts_include_subdomains or hsts_preload if hsts_max_age was not set as well.');
    }
    if ('hsts_max_age' in body || 'hsts_include_subdomains' in body || 'hsts_preload' in body) checkHsts(merged);
    if ('default_pool_id' in body) {
      if (body.default_pool_id) await checkDefaultPool(services, lb.id, body.default_pool_id as string, current, t);
      set('default_pool_id', body.default_pool_id ?? null);
    }
    requireActive(lb, 'Load Balancer');
    const driver = providerOf(services, lb.provider);
    checkWithProvider(driver, lb.provider, () => driver.checks.listener?.(merged));
    values.provisioning_status = 'PENDING_UPDATE';
    values.updated_at = now();
    await db.models.listener.update(values, { where: { id }, transaction: t });
    await replaceTags(services, id, body.tags, t);
    await setStatus(services, 'load_balancer', [lb.id], 'PENDING_UPDATE', t);
    provider = lb.provider;
    return { ...merged, ...values };
  });
  providerOf(services, provider).submit({ kind: 'listener', action: 'update', id, loadBalancerId: row.load_balancer_id });
  const [view] = await db.read(() => listenerViews(db, [row]));
  ctx.body = { listener: view };
}

async function remove(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const id = ctx.params.id!;
  const found = await findOr404(services, listenerSpec, id);
  enforce(ctx, 'listener', 'delete', found.project_id);
  const lbId = found.load_balancer_id as string;
  let provider = '';
  await services.db.tx(async (t) => {
    await findOr404(services, listenerSpec, id, t);
    const lb = await lockLoadBalancer(services, lbId, t);
    requireActive(lb, 'Load Balancer');
    await setStatus(services, 'listener', [id], 'PENDING_DELETE', t);
    await setStatus(services, 'load_balancer', [lbId], 'PENDING_UPDATE', t);
    provider = lb.provider;
  });
  providerOf(services, provider).submit({ kind: 'listener', action: 'delete', id, loadBalancerId: lbId });
  ctx.status = 204;
}

async function stats(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const row = await findOr404(services, listenerSpec, ctx.params.id!);
  enforce(ctx, 'listener', 'get_stats', row.project_id);
  ctx.body = { stats: await listenerStatistics(services, [row.id]) };
}

export function routes(router: Router<any, any>): void {
  router.get('/listeners', (ctx) => listResource(ctx as Ctx, listenerSpec));
  router.post('/listeners', (ctx) => create(ctx as Ctx));
  router.get('/listeners/:id', async (ctx) => showResource(ctx as Ctx, listenerSpec, await findOr404((ctx as Ctx).state.services, listenerSpec, ctx.params.id!)));
  router.put('/listeners/:id', (ctx) => update(ctx as Ctx));
  router.delete('/listeners/:id', (ctx) => remove(ctx as Ctx));
  router.get('/listeners/:id/stats', (ctx) => stats(ctx as Ctx));
}
