// Database rows -> Octavia API objects. Relations are loaded in batches, so a page of N objects
// costs a fixed number of queries.
import { Op, QueryTypes, type Transaction } from 'sequelize';
import type { Database, Row } from '../common/db/database.ts';

export type ApiObject = Record<string, unknown>;

export function formatTime(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  const d = value instanceof Date ? value : new Date(String(value).replace(' +00:00', 'Z').replace(' ', 'T'));
  return d.toISOString().slice(0, 19);
}

export const json = <T>(text: unknown, fallback: T): T => (typeof text === 'string' && text !== '' ? (JSON.parse(text) as T) : fallback);
const ids = (rows: Row[]) => rows.map((r) => ({ id: r.id as string }));
const group = (rows: Row[], key: string) => {
  const map = new Map<string, Row[]>();
  for (const r of rows) map.set(r[key], [...(map.get(r[key]) ?? []), r]);
  return map;
};

async function tagsOf(db: Database, resourceIds: string[], t?: Transaction): Promise<Map<string, string[]>> {
  const map = new Map<string, string[]>();
  if (resourceIds.length === 0) return map;
  const rows = (await db.models.tag.findAll({ where: { resource_id: resourceIds }, raw: true, transaction: t })) as Row[];
  for (const r of rows) map.set(r.resource_id, [...(map.get(r.resource_id) ?? []), r.tag]);
  for (const list of map.values()) list.sort();
  return map;
}

const findAll = async (db: Database, table: keyof Database['models'], where: Row, t?: Transaction, order?: Array<[string, string]>) =>
  (await db.models[table].findAll({ where, raw: true, transaction: t, order })) as Row[];

function common(row: Row, tags: Map<string, string[]>): ApiObject {
  return {
    project_id: row.project_id ?? null,
    tenant_id: row.project_id ?? null,
    provisioning_status: row.provisioning_status,
    operating_status: row.operating_status,
    admin_state_up: Boolean(row.admin_state_up),
    created_at: formatTime(row.created_at),
    updated_at: formatTime(row.updated_at),
    tags: tags.get(row.id) ?? [],
  };
}

/**
 * The ids of a load balancer's listeners and pools and its tags in one query: each query costs a
 * round trip (a system call each way), which is most of what a show or a list costs.
 */
async function loadBalancerRelations(db: Database, lbIds: string[], t?: Transaction) {
  const tags = new Map<string, string[]>();
  const listeners = new Map<string, Row[]>();
  const pools = new Map<string, Row[]>();
  if (lbIds.length === 0) return { tags, listeners, pools };
  const rows = (await db.sequelize.query(
    `SELECT 'l' AS kind, load_balancer_id AS owner, id AS value, created_at FROM listener WHERE load_balancer_id IN (:ids)
     UNION ALL SELECT 'p', load_balancer_id, id, created_at FROM pool WHERE load_balancer_id IN (:ids)
     UNION ALL SELECT 't', resource_id, tag, NULL FROM tag WHERE resource_id IN (:ids)`,
    { replacements: { ids: lbIds }, type: QueryTypes.SELECT, transaction: t },
  )) as Array<{ kind: string; owner: string; value: string; created_at: unknown }>;
  const byCreation = (a: Row, b: Row) => String(formatTime(a.created_at)).localeCompare(String(formatTime(b.created_at))) || a.id.localeCompare(b.id);
  for (const r of rows) {
    if (r.kind === 't') tags.set(r.owner, [...(tags.get(r.owner) ?? []), r.value]);
    else {
      const target = r.kind === 'l' ? listeners : pools;
      target.set(r.owner, [...(target.get(r.owner) ?? []), { id: r.value, created_at: r.created_at }]);
    }
  }
  for (const list of tags.values()) list.sort();
  for (const list of [...listeners.values(), ...pools.values()]) list.sort(byCreation);
  return { tags, listeners, pools };
}

export async function loadBalancerViews(db: Database, rows: Row[], t?: Transaction): Promise<ApiObject[]> {
  const relations = await loadBalancerRelations(db, rows.map((r) => r.id), t);
  return rows.map((r) =>
    loadBalancerView(r, { tags: relations.tags.get(r.id) ?? [], listeners: relations.listeners.get(r.id) ?? [], pools: relations.pools.get(r.id) ?? [] }),
  );
}

/** One load balancer as the API shows it, from its row and its relations. */
export function loadBalancerView(r: Row, rel: { tags: string[]; listeners: Row[]; pools: Row[] }): ApiObject {
  return {
    id: r.id,
    name: r.name ?? '',
    description: r.description ?? '',
    ...common(r, new Map([[r.id, rel.tags]])),
    vip_address: r.vip_address ?? null,
    vip_port_id: r.vip_port_id ?? null,
    vip_subnet_id: r.vip_subnet_id ?? null,
    vip_network_id: r.vip_network_id ?? null,
    vip_qos_policy_id: r.vip_qos_policy_id ?? null,
    vip_sg_ids: json<string[]>(r.vip_sg_ids, []),
    vip_vnic_type: r.vip_vnic_type ?? 'normal',
    additional_vips: json<Row[]>(r.additional_vips, []),
    listeners: ids(rel.listeners),
    pools: ids(rel.pools),
    provider: r.provider ?? 'octavia',
    flavor_id: r.flavor_id ?? null,
    availability_zone: r.availability_zone ?? null,
  };
}

export async function listenerViews(db: Database, rows: Row[], t?: Transaction): Promise<ApiObject[]> {
  const listenerIds = rows.map((r) => r.id);
  const [tags, policies] = await Promise.all([
    tagsOf(db, listenerIds, t),
    listenerIds.length ? findAll(db, 'l7policy', { listener_id: listenerIds }, t, [['position', 'ASC']]) : [],
  ]);
  const byListener = group(policies, 'listener_id');
  return rows.map((r) => ({
    id: r.id,
    name: r.name ?? '',
    description: r.description ?? '',
    ...common(r, tags),
    protocol: r.protocol,
    protocol_port: r.protocol_port,
    connection_limit: r.connection_limit,
    default_tls_container_ref: r.default_tls_container_ref ?? null,
    sni_container_refs: json<string[]>(r.sni_container_refs, []),
    default_pool_id: r.default_pool_id ?? null,
    l7policies: ids(byListener.get(r.id) ?? []),
    insert_headers: json<Row>(r.insert_headers, {}),
    loadbalancers: [{ id: r.load_balancer_id }],
    timeout_client_data: r.timeout_client_data,
    timeout_member_connect: r.timeout_member_connect,
    timeout_member_data: r.timeout_member_data,
    timeout_tcp_inspect: r.timeout_tcp_inspect,
    client_ca_tls_container_ref: r.client_ca_tls_container_ref ?? null,
    client_authentication: r.client_authentication ?? 'NONE',
    client_crl_container_ref: r.client_crl_container_ref ?? null,
    allowed_cidrs: json<string[] | null>(r.allowed_cidrs, null)?.length ? json<string[]>(r.allowed_cidrs, []) : null,
    tls_ciphers: r.tls_ciphers ?? null,
    tls_versions: json<string[] | null>(r.tls_versions, null),
    alpn_protocols: json<string[] | null>(r.alpn_protocols, null),
    hsts_max_age: r.hsts_max_age ?? null,
    hsts_include_subdomains: Boolean(r.hsts_include_subdomains),
    hsts_preload: Boolean(r.hsts_preload),
    ...listenerExtensions(r),
  }));
}

/**
 * The appliance extensions (api/listener-ports.ts) appear only on listeners that use one, so that
 * Octavia's listener shape is unchanged for everything an Octavia client creates.
 */
function listenerExtensions(r: Row): ApiObject {
  const used = !!r.additional_ports || Boolean(r.also_udp) || (r.forwarding_method ?? 'PROXY') !== 'PROXY';
  if (!used) return {};
  return { additional_ports: r.additional_ports ?? null, also_udp: Boolean(r.also_udp), forwarding_method: r.forwarding_method ?? 'PROXY' };
}

export function sessionPersistenceView(text: unknown): ApiObject | null {
  const sp = json<Row | null>(text, null);
  if (!sp) return null;
  return {
    type: sp.type,
    cookie_name: sp.cookie_name ?? null,
    persistence_timeout: sp.persistence_timeout ?? null,
    persistence_granularity: sp.persistence_granularity ?? null,
  };
}

/** Listeners that use each pool: as default pool, or through an enabled policy that has rules. */
export async function poolListenerIds(db: Database, poolIds: string[], t?: Transaction): Promise<Map<string, string[]>> {
  const map = new Map<string, string[]>();
  if (poolIds.length === 0) return map;
  const add = (poolId: string, listenerId: string) => {
    const list = map.get(poolId) ?? [];
    if (!list.includes(listenerId)) list.push(listenerId);
    map.set(poolId, list);
  };
  const defaults = await findAll(db, 'listener', { default_pool_id: poolIds }, t, [['created_at', 'ASC'], ['id', 'ASC']]);
  for (const l of defaults) add(l.default_pool_id, l.id);
  const policies = await findAll(db, 'l7policy', { redirect_pool_id: poolIds, admin_state_up: true }, t);
  if (policies.length) {
    const withRules = new Set(
      ((await db.models.l7rule.findAll({ where: { l7policy_id: policies.map((p) => p.id) }, attributes: ['l7policy_id'], raw: true, transaction: t })) as Row[]).map(
        (r) => r.l7policy_id,
      ),
    );
    for (const p of policies) if (withRules.has(p.id)) add(p.redirect_pool_id, p.listener_id);
  }
  return map;
}

export async function poolViews(db: Database, rows: Row[], t?: Transaction): Promise<ApiObject[]> {
  const poolIds = rows.map((r) => r.id);
  const [tags, members, monitors, listeners] = await Promise.all([
    tagsOf(db, poolIds, t),
    poolIds.length ? findAll(db, 'member', { pool_id: poolIds }, t, [['created_at', 'ASC'], ['id', 'ASC']]) : [],
    poolIds.length ? findAll(db, 'health_monitor', { pool_id: poolIds }, t) : [],
    poolListenerIds(db, poolIds, t),
  ]);
  const byPoolMembers = group(members, 'pool_id');
  const monitorByPool = new Map(monitors.map((h) => [h.pool_id, h.id]));
  return rows.map((r) => ({
    id: r.id,
    name: r.name ?? '',
    description: r.description ?? '',
    ...common(r, tags),
    protocol: r.protocol,
    lb_algorithm: r.lb_algorithm,
    session_persistence: sessionPersistenceView(r.session_persistence),
    loadbalancers: [{ id: r.load_balancer_id }],
    listeners: (listeners.get(r.id) ?? []).map((id) => ({ id })),
    healthmonitor_id: monitorByPool.get(r.id) ?? null,
    members: ids(byPoolMembers.get(r.id) ?? []),
    tls_container_ref: r.tls_container_ref ?? null,
    ca_tls_container_ref: r.ca_tls_container_ref ?? null,
    crl_container_ref: r.crl_container_ref ?? null,
    tls_enabled: Boolean(r.tls_enabled),
    tls_ciphers: r.tls_ciphers ?? null,
    tls_versions: json<string[] | null>(r.tls_versions, null),
    alpn_protocols: json<string[] | null>(r.alpn_protocols, null),
  }));
}

export async function memberViews(db: Database, rows: Row[], t?: Transaction): Promise<ApiObject[]> {
  const tags = await tagsOf(db, rows.map((r) => r.id), t);
  return rows.map((r) => ({
    id: r.id,
    name: r.name ?? '',
    ...common(r, tags),
    address: r.address,
    protocol_port: r.protocol_port,
    weight: r.weight,
    backup: Boolean(r.backup),
    subnet_id: r.subnet_id ?? null,
    monitor_address: r.monitor_address ?? null,
    monitor_port: r.monitor_port ?? null,
    vnic_type: r.vnic_type ?? 'normal',
  }));
}

export async function healthMonitorViews(db: Database, rows: Row[], t?: Transaction): Promise<ApiObject[]> {
  const tags = await tagsOf(db, rows.map((r) => r.id), t);
  return rows.map((r) => ({
    id: r.id,
    name: r.name ?? '',
    ...common(r, tags),
    type: r.type,
    delay: r.delay,
    timeout: r.timeout,
    max_retries: r.max_retries,
    max_retries_down: r.max_retries_down,
    http_method: r.http_method ?? null,
    url_path: r.url_path ?? null,
    expected_codes: r.expected_codes ?? null,
    pools: [{ id: r.pool_id }],
    http_version: r.http_version ?? null,
    domain_name: r.domain_name ?? null,
    // Extension, shown only when set (Octavia's monitor shape otherwise).
    ...(r.expected_body ? { expected_body: r.expected_body } : {}),
  }));
}

export async function l7policyViews(db: Database, rows: Row[], t?: Transaction): Promise<ApiObject[]> {
  const policyIds = rows.map((r) => r.id);
  const [tags, rules] = await Promise.all([
    tagsOf(db, policyIds, t),
    policyIds.length ? findAll(db, 'l7rule', { l7policy_id: policyIds }, t, [['created_at', 'ASC'], ['id', 'ASC']]) : [],
  ]);
  const byPolicy = group(rules, 'l7policy_id');
  return rows.map((r) => ({
    id: r.id,
    name: r.name ?? '',
    description: r.description ?? '',
    ...common(r, tags),
    action: r.action,
    listener_id: r.listener_id,
    redirect_pool_id: r.redirect_pool_id ?? null,
    redirect_url: r.redirect_url ?? null,
    redirect_prefix: r.redirect_prefix ?? null,
    redirect_http_code: r.redirect_http_code ?? null,
    position: r.position,
    rules: ids(byPolicy.get(r.id) ?? []),
  }));
}

export async function l7ruleViews(db: Database, rows: Row[], t?: Transaction): Promise<ApiObject[]> {
  const tags = await tagsOf(db, rows.map((r) => r.id), t);
  return rows.map((r) => ({
    id: r.id,
    ...common(r, tags),
    type: r.type,
    compare_type: r.compare_type,
    key: r.key ?? null,
    value: r.value,
    invert: Boolean(r.invert),
  }));
}

/** The "full" form returned by a load balancer create: children expanded. */
export async function fullLoadBalancerView(db: Database, lbRow: Row, t?: Transaction): Promise<ApiObject> {
  const [lb] = await loadBalancerViews(db, [lbRow], t);
  const listenerRows = await findAll(db, 'listener', { load_balancer_id: lbRow.id }, t, [['created_at', 'ASC'], ['id', 'ASC']]);
  const poolRows = await findAll(db, 'pool', { load_balancer_id: lbRow.id }, t, [['created_at', 'ASC'], ['id', 'ASC']]);
  const listeners = await listenerViews(db, listenerRows, t);
  const pools = await poolViews(db, poolRows, t);
  const policyRows = listenerRows.length ? await findAll(db, 'l7policy', { listener_id: listenerRows.map((l) => l.id) }, t, [['position', 'ASC']]) : [];
  const policies = await l7policyViews(db, policyRows, t);
  const ruleRows = policyRows.length ? await findAll(db, 'l7rule', { l7policy_id: policyRows.map((p) => p.id) }, t, [['created_at', 'ASC'], ['id', 'ASC']]) : [];
  const rules = await l7ruleViews(db, ruleRows, t);
  const memberRows = poolRows.length ? await findAll(db, 'member', { pool_id: poolRows.map((p) => p.id) }, t, [['created_at', 'ASC'], ['id', 'ASC']]) : [];
  const members = await memberViews(db, memberRows, t);
  const monitorRows = poolRows.length ? await findAll(db, 'health_monitor', { pool_id: { [Op.in]: poolRows.map((p) => p.id) } }, t) : [];
  const monitors = await healthMonitorViews(db, monitorRows, t);

  const rulesOf = (policyId: string) => rules.filter((_, i) => ruleRows[i]!.l7policy_id === policyId);
  lb!.listeners = listeners.map((l) => {
    const { loadbalancers: _omit, ...rest } = l;
    return { ...rest, l7policies: policies.filter((_, i) => policyRows[i]!.listener_id === l.id).map((p) => ({ ...p, rules: rulesOf(p.id as string) })) };
  });
  lb!.pools = pools.map((p) => {
    const { loadbalancers: _lbs, healthmonitor_id: _hm, ...rest } = p;
    const monitor = monitors.find((_, i) => monitorRows[i]!.pool_id === p.id);
    let healthmonitor: ApiObject | null = null;
    if (monitor) {
      const { pools: _pools, ...m } = monitor;
      healthmonitor = m;
    }
    return { ...rest, members: members.filter((_, i) => memberRows[i]!.pool_id === p.id), healthmonitor };
  });
  return lb!;
}
