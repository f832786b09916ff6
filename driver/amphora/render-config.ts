// The database graph of one load balancer -> the AmphoraConfig document its amphorae apply.
// Pure: same tree, same amphora, same version -> same document. Objects being deleted are left out.
import type { AmphoraConfigInput, ListenerInput, PoolInput, VrrpInput } from '../../common/amphora-config/index.ts';
import type { Row } from '../../common/db/database.ts';
import type { LoadBalancerTree } from '../controller/completion.ts';
import type { TreeTlsMaterial } from './tls-material.ts';
import { listenerPortSpecs } from '../../common/listener-ports.ts';
import { udpTwinId } from './udp-twin.ts';

const live = (rows: Row[]) => rows.filter((r) => r.provisioning_status !== 'PENDING_DELETE' && r.provisioning_status !== 'DELETED');
const json = <T>(text: unknown, fallback: T): T => (typeof text === 'string' && text !== '' ? (JSON.parse(text) as T) ?? fallback : fallback);
const truthy = (v: unknown) => typeof v === 'string' && ['true', 't', 'yes', 'y', 'on', '1'].includes(v.trim().toLowerCase());
const byPosition = (a: Row, b: Row) => a.position - b.position;
const byCreation = (a: Row, b: Row) => String(a.created_at).localeCompare(String(b.created_at)) || String(a.id).localeCompare(String(b.id));

const NO_TLS: TreeTlsMaterial = { listeners: new Map(), pools: new Map() };

/** ACTIVE_STANDBY: what the election section is rendered from (vrrp-settings.ts). */
export interface VrrpRenderInput {
  /** The load balancer's amphorae in service (BOOTING, ALLOCATED). */
  amphorae: Row[];
  /** Hex of deriveVrrpKey(masterKey, load balancer id). */
  authKey: string;
  advertIntervalMs: number;
  preempt: boolean;
  syncPort: number;
}

/**
 * `tls`: the listeners' and pools' certificate material, resolved beforehand (tls-material.ts
 * resolveTreeTls). `vrrp`: given for every load balancer; the section is rendered only for an
 * amphora with role MASTER or BACKUP whose address and peer's address are known.
 */
export function renderAmphoraConfig(
  tree: LoadBalancerTree,
  amphoraId: string,
  configVersion: number,
  tls: TreeTlsMaterial = NO_TLS,
  vrrp: VrrpRenderInput | null = null,
): AmphoraConfigInput {
  const { lb } = tree;
  const additional = json<Array<{ ip_address: string | null; subnet_id: string; port_id: string | null }>>(lb.additional_vips, []);
  return {
    version: 1,
    configVersion,
    amphoraId,
    loadBalancerId: lb.id,
    vips: [
      { address: lb.vip_address, ...(lb.vip_port_id ? { portId: lb.vip_port_id } : {}), ...(lb.vip_subnet_id ? { subnetId: lb.vip_subnet_id } : {}) },
      ...additional.filter((v) => v.ip_address).map((v) => ({ address: v.ip_address!, subnetId: v.subnet_id, ...(v.port_id ? { portId: v.port_id } : {}) })),
    ],
    listeners: live(tree.listeners).sort(byCreation).flatMap((l) => {
      const listener = renderListener(tree, l, tls);
      return l.also_udp ? [listener, udpTwinListener(listener)] : [listener];
    }),
    pools: live(tree.pools).sort(byCreation).flatMap((p) => {
      const pool = renderPool(tree, p, tls);
      const servesBoth = live(tree.listeners).some((l) => l.also_udp && l.default_pool_id === p.id);
      return servesBoth ? [pool, udpTwinPool(pool)] : [pool];
    }),
    vrrp: vrrp ? renderVrrp(amphoraId, vrrp) : null,
  };
}

/** The UDP half of an also_udp listener (udp-twin.ts): same ports and forwarding, the twin of its pool. */
function udpTwinListener(l: ListenerInput): ListenerInput {
  return {
    ...l,
    id: udpTwinId(l.id),
    ...(l.name ? { name: `${l.name} (UDP)` } : {}),
    protocol: 'UDP',
    defaultPoolId: l.defaultPoolId ? udpTwinId(l.defaultPoolId) : null,
  };
}

/** The UDP copy of an also_udp listener's TCP pool: same members and monitor under derived ids. */
function udpTwinPool(p: PoolInput): PoolInput {
  const persistence = p.sessionPersistence ?? null;
  if (persistence && persistence.type !== 'SOURCE_IP') {
    throw new Error(`pool ${p.id} serves a TCP+UDP listener: its ${persistence.type} session persistence cannot apply to UDP`);
  }
  return {
    ...p,
    id: udpTwinId(p.id),
    ...(p.name ? { name: `${p.name} (UDP)` } : {}),
    protocol: 'UDP',
    members: (p.members ?? []).map((m) => ({ ...m, id: udpTwinId(m.id) })),
    healthMonitor: p.healthMonitor ? { ...p.healthMonitor, id: udpTwinId(p.healthMonitor.id) } : null,
  };
}

const ELECTED_ROLES = ['MASTER', 'BACKUP'];

/** An amphora's own address on the VIP network: its VRRP port's (neutron), else its management address. */
const vrrpAddressOf = (amphora: Row): string | null => amphora.vrrp_ip ?? amphora.lb_network_ip ?? null;

function renderVrrp(amphoraId: string, input: VrrpRenderInput): VrrpInput | null {
  const self = input.amphorae.find((a) => a.id === amphoraId);
  if (!self || !ELECTED_ROLES.includes(self.role)) return null;
  const address = vrrpAddressOf(self);
  const peers = input.amphorae
    .filter((a) => a.id !== amphoraId && ELECTED_ROLES.includes(a.role))
    .sort(byCreation)
    .map(vrrpAddressOf)
    .filter((a): a is string => a !== null && a !== address);
  if (!address || peers.length === 0) return null;
  return {
    role: self.role,
    priority: self.vrrp_priority ?? (self.role === 'MASTER' ? 100 : 90),
    routerId: self.vrrp_id ?? 1,
    address,
    peers,
    interface: self.vrrp_interface ?? null,
    advertIntervalMs: input.advertIntervalMs,
    preempt: input.preempt,
    authKey: input.authKey,
    syncPort: input.syncPort,
  };
}

function renderListener(tree: LoadBalancerTree, l: Row, tls: TreeTlsMaterial): ListenerInput {
  const headers = json<Record<string, string>>(l.insert_headers, {});
  const policies = live(tree.policies).filter((p) => p.listener_id === l.id).sort(byPosition);
  return {
    id: l.id,
    ...(l.name ? { name: l.name } : {}),
    protocol: l.protocol,
    ports: listenerPortSpecs(l),
    forwarding: l.forwarding_method === 'DIRECT_ROUTING' ? 'DIRECT_ROUTING' : 'PROXY',
    enabled: Boolean(l.admin_state_up),
    connectionLimit: l.connection_limit ?? -1,
    allowedCidrs: json<string[]>(l.allowed_cidrs, []),
    timeouts: {
      clientData: l.timeout_client_data,
      memberConnect: l.timeout_member_connect,
      memberData: l.timeout_member_data,
      tcpInspect: l.timeout_tcp_inspect,
    },
    insertHeaders: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, truthy(v)])),
    defaultPoolId: l.default_pool_id ?? null,
    l7policies: policies.map((p) => ({
      id: p.id,
      ...(p.name ? { name: p.name } : {}),
      position: p.position,
      action: p.action === 'REDIRECT_PREFIX' ? 'REDIRECT_TO_PREFIX' : p.action,
      redirectUrl: p.redirect_url ?? null,
      redirectPrefix: p.redirect_prefix ?? null,
      redirectPoolId: p.redirect_pool_id ?? null,
      redirectHttpCode: p.redirect_http_code ?? null,
      enabled: Boolean(p.admin_state_up),
      rules: live(tree.rules)
        .filter((r) => r.l7policy_id === p.id)
        .sort(byCreation)
        .map((r) => ({ id: r.id, type: r.type, compareType: r.compare_type, key: r.key ?? null, value: r.value, invert: Boolean(r.invert), enabled: Boolean(r.admin_state_up) })),
    })),
    // Without resolved material (no certificate manager wired in) the reference alone, as before.
    // A TERMINATED_HTTPS listener without resolved material is refused by the data plane's schema (ERROR, with the reason).
    tls: tls.listeners.get(l.id) ?? null,
  };
}

function renderPool(tree: LoadBalancerTree, p: Row, tls: TreeTlsMaterial): PoolInput {
  const monitor = live(tree.monitors).find((h) => h.pool_id === p.id);
  return {
    id: p.id,
    ...(p.name ? { name: p.name } : {}),
    protocol: p.protocol,
    algorithm: p.lb_algorithm,
    enabled: Boolean(p.admin_state_up),
    sessionPersistence: renderPersistence(json<Row | null>(p.session_persistence, null)),
    members: live(tree.members)
      .filter((m) => m.pool_id === p.id)
      .sort(byCreation)
      .map((m) => ({
        id: m.id,
        ...(m.name ? { name: m.name } : {}),
        address: m.address,
        port: m.protocol_port,
        weight: m.weight ?? 1,
        backup: Boolean(m.backup),
        enabled: Boolean(m.admin_state_up),
        monitorAddress: m.monitor_address ?? null,
        monitorPort: m.monitor_port ?? null,
      })),
    healthMonitor: monitor
      ? {
          id: monitor.id,
          type: monitor.type,
          delay: monitor.delay * 1000,
          timeout: monitor.timeout * 1000,
          maxRetries: monitor.max_retries,
          maxRetriesDown: monitor.max_retries_down ?? 3,
          ...(monitor.http_method ? { httpMethod: monitor.http_method } : {}),
          ...(monitor.url_path ? { urlPath: monitor.url_path } : {}),
          ...(monitor.http_version ? { httpVersion: Number(monitor.http_version) >= 1.1 ? '1.1' : '1.0' } : {}),
          domainName: monitor.domain_name ?? null,
          ...(monitor.expected_codes ? { expectedCodes: String(monitor.expected_codes).replace(/\s+/g, '') } : {}),
          expectedBody: monitor.expected_body ?? null,
          enabled: Boolean(monitor.admin_state_up),
        }
      : null,
    tls: p.tls_enabled ? (tls.pools.get(p.id) ?? {}) : null,
  };
}

function renderPersistence(sp: Row | null): PoolInput['sessionPersistence'] {
  if (!sp) return null;
  switch (sp.type) {
    case 'SOURCE_IP':
      return {
        type: 'SOURCE_IP',
        ...(sp.persistence_timeout ? { timeout: sp.persistence_timeout * 1000 } : {}),
        granularity: sp.persistence_granularity ?? null,
      };
    case 'HTTP_COOKIE':
      return { type: 'HTTP_COOKIE' };
    case 'APP_COOKIE':
      return { type: 'APP_COOKIE', cookieName: sp.cookie_name };
    case 'LAST_SUCCESSFUL':
      return { type: 'LAST_SUCCESSFUL' };
    default:
      throw new Error(`session persistence type ${sp.type} cannot be rendered`);
  }
}
