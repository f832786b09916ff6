// The current shape of every table, as the models see it. A change here needs a new migration in
// migrations/: migrations are frozen history and never import this file.
import { bigint, bool, date, float, id, int, ref, statuses, str, text, timestamps } from './columns.ts';

export const tables = {
  load_balancer: {
    id: id(), project_id: str(36), name: str(), description: str(), ...statuses(), admin_state_up: bool(),
    topology: str(36), provider: str(64), flavor_id: ref(), availability_zone: str(),
    vip_address: str(64), vip_port_id: ref(), vip_subnet_id: ref(), vip_network_id: ref(), vip_qos_policy_id: ref(),
    vip_sg_ids: text(), vip_vnic_type: str(16), additional_vips: text(), ...timestamps(),
  },
  listener: {
    id: id(), project_id: str(36), load_balancer_id: ref(false), name: str(), description: str(), ...statuses(),
    admin_state_up: bool(), protocol: str(32, false), protocol_port: int(false), connection_limit: int(),
    default_pool_id: ref(), default_tls_container_ref: str(), sni_container_refs: text(), client_authentication: str(10),
    client_ca_tls_container_ref: str(), client_crl_container_ref: str(), insert_headers: text(),
    timeout_client_data: int(), timeout_member_connect: int(), timeout_member_data: int(), timeout_tcp_inspect: int(),
    allowed_cidrs: text(), tls_ciphers: str(2048), tls_versions: text(), alpn_protocols: text(),
    hsts_max_age: int(), hsts_include_subdomains: bool(), hsts_preload: bool(),
    additional_ports: text(), also_udp: { ...bool(), defaultValue: false },
    forwarding_method: { ...str(16, false), defaultValue: 'PROXY' }, ...timestamps(),
  },
  pool: {
    id: id(), project_id: str(36), load_balancer_id: ref(false), name: str(), description: str(), ...statuses(),
    admin_state_up: bool(), protocol: str(16, false), lb_algorithm: str(255, false), session_persistence: text(),
    tls_enabled: bool(), tls_container_ref: str(), ca_tls_container_ref: str(), crl_container_ref: str(),
    tls_ciphers: str(2048), tls_versions: text(), alpn_protocols: text(), ...timestamps(),
  },
  member: {
    id: id(), project_id: str(36), pool_id: ref(false), name: str(), ...statuses(), admin_state_up: bool(),
    address: str(64, false), protocol_port: int(false), weight: int(), backup: bool(), subnet_id: ref(),
    monitor_address: str(64), monitor_port: int(), vnic_type: str(16), ...timestamps(),
  },
  health_monitor: {
    id: id(), project_id: str(36), pool_id: ref(false), name: str(), ...statuses(), admin_state_up: bool(),
    type: str(36, false), delay: int(false), timeout: int(false), max_retries: int(false), max_retries_down: int(),
    http_method: str(16), url_path: str(2048), expected_codes: str(64), http_version: float(), domain_name: str(),
    expected_body: str(), ...timestamps(),
  },
  l7policy: {
    id: id(), project_id: str(36), listener_id: ref(false), name: str(), description: str(), ...statuses(),
    admin_state_up: bool(), action: str(36, false), redirect_pool_id: ref(), redirect_url: str(2048),
    redirect_prefix: str(2048), redirect_http_code: int(), position: int(false), ...timestamps(),
  },
  l7rule: {
    id: id(), project_id: str(36), l7policy_id: ref(false), ...statuses(), admin_state_up: bool(),
    type: str(36, false), compare_type: str(36, false), key: str(), value: str(255, false), invert: bool(),
    ...timestamps(),
  },
  tag: { resource_id: { ...ref(false), primaryKey: true }, tag: { ...str(255, false), primaryKey: true } },
  quota: {
    project_id: { ...str(36, false), primaryKey: true }, load_balancer: int(), listener: int(), pool: int(),
    health_monitor: int(), member: int(), l7policy: int(), l7rule: int(),
  },
  flavor_profile: { id: id(), name: str(255, false), provider_name: str(255, false), flavor_data: text() },
  flavor: { id: id(), name: str(255, false), description: str(), enabled: bool(), flavor_profile_id: ref(false) },
  availability_zone_profile: {
    id: id(), name: str(255, false), provider_name: str(255, false), availability_zone_data: text(),
  },
  availability_zone: {
    name: { ...str(255, false), primaryKey: true }, description: str(), enabled: bool(),
    availability_zone_profile_id: ref(false),
  },
  amphora: {
    id: id(), load_balancer_id: ref(), compute_id: str(64), lb_network_ip: str(64), vrrp_ip: str(64), ha_ip: str(64),
    vrrp_port_id: ref(), ha_port_id: ref(), cert_expiration: date(), cert_busy: bool(), role: str(36),
    status: str(36, false), vrrp_interface: str(16), vrrp_id: int(), vrrp_priority: int(), cached_zone: str(),
    image_id: str(36), compute_flavor: str(255), ...timestamps(),
    // Extension (migration 0005): whether its last heartbeat said it holds the VIP; null until it reports.
    vip_holder: bool(true),
  },
  amphora_health: { amphora_id: { ...ref(false), primaryKey: true }, last_update: date(false), busy: bool() },
  listener_statistics: {
    listener_id: { ...ref(false), primaryKey: true }, amphora_id: { ...ref(false), primaryKey: true },
    bytes_in: bigint(), bytes_out: bigint(), active_connections: bigint(), total_connections: bigint(),
    request_errors: bigint(),
  },
  // The configuration each amphora was last given (what it fetches when it starts or reconnects).
  // `document` is MEDIUMTEXT on MariaDB (migration 0002): TEXT stops at 64 KiB.
  amphora_config: {
    amphora_id: { ...ref(false), primaryKey: true }, config_version: int(false), document: { ...text(), allowNull: false }, updated_at: date(false),
  },
  // The local certificate manager's store (migration 0003; common/certificates/local.ts): `sealed` is
  // AES-256-GCM under certificates.localKey (MEDIUMTEXT on MariaDB); key_id names that key.
  certificate: {
    id: id(), project_id: str(36, false), name: str(255, false), kind: str(16, false), not_after: date(), key_id: str(16, false),
    sealed: { ...text(), allowNull: false }, created_at: date(false),
  },
} as const;

export type TableName = keyof typeof tables;
