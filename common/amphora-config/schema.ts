import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * The AmphoraConfig document, schema version 1.
 *
 * Rendered by the driver from the database graph, pushed to every amphora of a load balancer, applied
 * atomically by the data plane. Ids are the Octavia object ids so that heartbeats can report per
 * listener, pool and member. Every duration in this document is in milliseconds.
 */

export const AMPHORA_CONFIG_SCHEMA_VERSION = 1;

/** Octavia ids are UUIDs; accept any RFC 4122 layout (Octavia generates v4, tests and fixtures may not). */
const id = z
  .string()
  .regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, 'must be a UUID');

const ipAddress = z.string().refine((v) => isIP(v) !== 0, 'must be an IPv4 or IPv6 address');

const cidr = z.string().refine((v) => {
  const slash = v.indexOf('/');
  if (slash < 0) return false;
  const family = isIP(v.slice(0, slash));
  const bitsText = v.slice(slash + 1);
  if (family === 0 || !/^\d{1,3}$/.test(bitsText)) return false;
  const bits = Number(bitsText);
  return bits <= (family === 4 ? 32 : 128);
}, 'must be a CIDR such as 192.0.2.0/24 or 2001:db8::/32');

const port = z.number().int().min(1).max(65535);
const duration = z.number().int().min(0).max(24 * 3600 * 1000);

export const PortRangeSchema = z
  .object({ from: port, to: port })
  .strict()
  .refine((r) => r.from <= r.to, { message: 'port range "from" must be <= "to"' });

export const PortSpecSchema = z.union([port, PortRangeSchema]);

export const VipSchema = z
  .object({
    address: ipAddress,
    /** Neutron port/subnet ids are informational for the data plane; kept for the agent's plumbing. */
    portId: id.optional(),
    subnetId: id.optional(),
  })
  .strict();

export const ListenerTimeoutsSchema = z
  .object({
    clientData: duration.default(50_000),
    memberConnect: duration.default(5_000),
    memberData: duration.default(50_000),
    tcpInspect: duration.default(0),
    /** Extension: time allowed for a complete HTTP request head (slow-header defence); HAProxy's `timeout http-request`. */
    httpRequest: duration.default(10_000),
  })
  .strict();

export const InsertHeadersSchema = z
  .object({
    'X-Forwarded-For': z.boolean().default(false),
    'X-Forwarded-Port': z.boolean().default(false),
    'X-Forwarded-Proto': z.boolean().default(false),
    /** The X-SSL-* headers (TERMINATED_HTTPS listeners only) carry the client certificate, as HAProxy's ssl_c_* fetches. */
    'X-SSL-Client-Verify': z.boolean().default(false),
    'X-SSL-Client-Has-Cert': z.boolean().default(false),
    'X-SSL-Client-DN': z.boolean().default(false),
    'X-SSL-Client-CN': z.boolean().default(false),
    'X-SSL-Issuer': z.boolean().default(false),
    'X-SSL-Client-SHA1': z.boolean().default(false),
    'X-SSL-Client-Not-Before': z.boolean().default(false),
    'X-SSL-Client-Not-After': z.boolean().default(false),
  })
  .strict();

export const L7RuleSchema = z
  .object({
    id,
    type: z.enum([
      'HOST_NAME',
      'PATH',
      'FILE_TYPE',
      'HEADER',
      'COOKIE',
      'SSL_CONN_HAS_CERT',
      'SSL_VERIFY_RESULT',
      'SSL_DN_FIELD',
    ]),
    compareType: z.enum(['EQUAL_TO', 'STARTS_WITH', 'ENDS_WITH', 'CONTAINS', 'REGEX']),
    key: z.string().min(1).max(255).nullable().default(null),
    value: z.string().min(1).max(255),
    invert: z.boolean().default(false),
    enabled: z.boolean().default(true),
  })
  .strict();

export const REDIRECT_HTTP_CODES = [301, 302, 303, 307, 308] as const;

export const L7PolicySchema = z
  .object({
    id,
    name: z.string().max(255).optional(),
    position: z.number().int().min(1),
    action: z.enum(['REJECT', 'REDIRECT_TO_URL', 'REDIRECT_TO_PREFIX', 'REDIRECT_TO_POOL']),
    redirectUrl: z.string().url().nullable().default(null),
    redirectPrefix: z.string().url().nullable().default(null),
    redirectPoolId: id.nullable().default(null),
    redirectHttpCode: z
      .number()
      .int()
      .refine((c) => (REDIRECT_HTTP_CODES as readonly number[]).includes(c), 'must be one of 301, 302, 303, 307, 308')
      .nullable()
      .default(null),
    enabled: z.boolean().default(true),
    rules: z.array(L7RuleSchema).default([]),
  })
  .strict();

/**
 * TLS protocol versions by their Octavia names. SSLv3 may be listed (Octavia accepts it) but is never offered:
 * OpenSSL 3 cannot speak it, so a list must name at least one TLS version.
 */
export const TLS_VERSION_NAMES = ['SSLv3', 'TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
/** ALPN protocol ids Octavia accepts. */
export const ALPN_PROTOCOL_IDS = ['h2', 'http/1.1', 'http/1.0'] as const;
/** Octavia's defaults for TERMINATED_HTTPS listeners and TLS-enabled pools. */
export const DEFAULT_TLS_VERSIONS: readonly (typeof TLS_VERSION_NAMES)[number][] = ['TLSv1.2', 'TLSv1.3'];
export const DEFAULT_ALPN_PROTOCOLS: readonly (typeof ALPN_PROTOCOL_IDS)[number][] = ['h2', 'http/1.1', 'http/1.0'];

/**
 * PEM text (one or more `-----BEGIN ...-----` blocks), carried inline. Key material stays in memory in the
 * data plane and is never logged nor quoted in an error message (issues name the path only).
 */
const pem = z
  .string()
  .min(1)
  .max(1 << 20)
  .refine((v) => /-----BEGIN [A-Z0-9 ]+-----/.test(v), 'must be PEM text');

const tlsVersions = z
  .array(z.enum(TLS_VERSION_NAMES))
  .min(1)
  .refine((v) => new Set(v).size === v.length, 'must not repeat a version')
  .default([...DEFAULT_TLS_VERSIONS]);

/** An OpenSSL cipher string (Octavia's character set); null = OpenSSL's defaults. */
const tlsCiphers = z
  .string()
  .min(1)
  .max(2048)
  .regex(/^[A-Za-z0-9\-+!:@=_.]+$/, 'must be an OpenSSL cipher string (letters, digits and -+!:@=_.)')
  .nullable()
  .default(null);

const alpnProtocols = z
  .array(z.enum(ALPN_PROTOCOL_IDS))
  .refine((v) => new Set(v).size === v.length, 'must not repeat a protocol')
  .default([...DEFAULT_ALPN_PROTOCOLS]);

/** A certificate with its key: what an Octavia TLS container (Barbican) holds, as PEM. */
export const TlsCertificateSchema = z
  .object({
    /** Informational, not secret: the container ref or certificate id, used in logs and errors. */
    ref: z.string().max(255).nullable().default(null),
    /** The certificate (PEM). May be followed by its chain, which then counts as intermediates. */
    certificate: pem,
    /** Its private key, unencrypted PEM (PKCS#8, PKCS#1 or SEC1). */
    privateKey: pem,
    /** Intermediate certificates sent with it, leaf side first; each item may hold several PEM blocks. */
    intermediates: z.array(pem).default([]),
  })
  .strict();

/** TLS termination of a TERMINATED_HTTPS listener (HAProxy `bind ... ssl crt-list`). */
export const ListenerTlsSchema = z
  .object({
    /** Served when the client sends no server name or one no SNI certificate matches. Null: the first SNI certificate. */
    defaultCertificate: TlsCertificateSchema.nullable().default(null),
    /** Chosen by the client's server name against each certificate's SAN DNS names and CN (exact, then `*.` wildcard). */
    sniCertificates: z.array(TlsCertificateSchema).default([]),
    clientAuthentication: z.enum(['NONE', 'OPTIONAL', 'MANDATORY']).default('NONE'),
    /** CA certificates (PEM bundle) client certificates must chain to; required unless clientAuthentication is NONE. */
    clientCa: pem.nullable().default(null),
    /** Certificate revocation list(s) (PEM) of the client CA; a revoked client certificate is refused. */
    clientCrl: pem.nullable().default(null),
    versions: tlsVersions,
    ciphers: tlsCiphers,
    /** Advertised in this order (the server's order wins); [] = no ALPN. h2 is served on TERMINATED_HTTPS, not on PROMETHEUS. */
    alpnProtocols,
  })
  .strict();

/** Re-encryption towards a pool's members (HAProxy `server ... ssl`). Present = TLS enabled (Octavia tls_enabled). */
export const PoolTlsSchema = z
  .object({
    /** Client certificate presented to members (Octavia tls_container_ref). */
    clientCertificate: TlsCertificateSchema.nullable().default(null),
    /** CA bundle (PEM) member certificates must chain to (`verify required`); null = no verification (`verify none`). */
    ca: pem.nullable().default(null),
    /** CRL(s) (PEM) of that CA; needs `ca`. */
    crl: pem.nullable().default(null),
    versions: tlsVersions,
    ciphers: tlsCiphers,
    /** Offered to members; h2 is never offered on HTTP traffic (members are spoken to in HTTP/1.1). */
    alpnProtocols,
  })
  .strict();

/** HTTP Strict Transport Security on TERMINATED_HTTPS listeners (Octavia hsts_*). */
export const HstsSchema = z
  .object({
    maxAge: z.number().int().min(0).max(2 ** 31 - 1),
    includeSubdomains: z.boolean().default(false),
    preload: z.boolean().default(false),
  })
  .strict();

export const ListenerSchema = z
  .object({
    id,
    name: z.string().max(255).optional(),
    /** HTTPS is Octavia's TLS pass-through: carried as TCP. TERMINATED_HTTPS terminates TLS (`tls` required). */
    protocol: z.enum(['TCP', 'UDP', 'HTTP', 'HTTPS', 'TERMINATED_HTTPS', 'PROMETHEUS', 'SCTP']),
    ports: z.array(PortSpecSchema).min(1),
    enabled: z.boolean().default(true),
    /** -1 means the default of 50000, as Octavia renders it for HAProxy. */
    connectionLimit: z.number().int().min(-1).max(1_000_000).default(-1),
    allowedCidrs: z.array(cidr).default([]),
    timeouts: ListenerTimeoutsSchema.prefault({}),
    insertHeaders: InsertHeadersSchema.prefault({}),
    defaultPoolId: id.nullable().default(null),
    l7policies: z.array(L7PolicySchema).default([]),
    /** TLS termination: required by TERMINATED_HTTPS, optional on PROMETHEUS (metrics over HTTPS), refused elsewhere. */
    tls: ListenerTlsSchema.nullable().default(null),
    /** Strict-Transport-Security set on every response; TERMINATED_HTTPS listeners only. */
    hsts: HstsSchema.nullable().default(null),
    /**
     * Extension: PROXY (default, what Octavia does: the amphora opens its own connection to the member)
     * or DIRECT_ROUTING (L4 DR: packets reach the member with only the destination MAC rewritten; the
     * member owns the VIP on a loopback and answers the client directly). TCP and UDP listeners only.
     */
    forwarding: z.enum(['PROXY', 'DIRECT_ROUTING']).default('PROXY'),
  })
  .strict();

export const SessionPersistenceSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('SOURCE_IP'),
      /** How long an idle source stays stuck to its member (Octavia persistence_timeout, here in ms). */
      timeout: duration.min(1).default(360_000),
      /** Netmask applied to the source address before lookup (Octavia persistence_granularity). */
      granularity: z.string().nullable().default(null),
    })
    .strict(),
  z.object({ type: z.literal('HTTP_COOKIE'), cookieName: z.string().min(1).max(255).default('SRV') }).strict(),
  z.object({ type: z.literal('APP_COOKIE'), cookieName: z.string().min(1).max(255) }).strict(),
  /** Extension: all clients follow the member that last answered successfully, until it fails. */
  z.object({ type: z.literal('LAST_SUCCESSFUL') }).strict(),
]);

export const MemberSchema = z
  .object({
    id,
    name: z.string().max(255).optional(),
    address: ipAddress,
    port,
    /** 0 drains: existing sessions stay, no new ones. */
    weight: z.number().int().min(0).max(256).default(1),
    backup: z.boolean().default(false),
    /** false = admin down (MAINT): halted, no traffic at all. */
    enabled: z.boolean().default(true),
    monitorAddress: ipAddress.nullable().default(null),
    monitorPort: port.nullable().default(null),
    /** Extension: per-member connection ceiling (HAProxy server maxconn). */
    maxConnections: z.number().int().min(1).max(1_000_000).nullable().default(null),
  })
  .strict();

export const HealthMonitorSchema = z
  .object({
    id,
    type: z.enum(['HTTP', 'HTTPS', 'TCP', 'UDP-CONNECT', 'PING', 'TLS-HELLO', 'SCTP']),
    delay: duration.min(1),
    timeout: duration.min(1),
    /** Consecutive successes to go up (rise). */
    maxRetries: z.number().int().min(1).max(10).default(3),
    /** Consecutive failures to go down (fall). */
    maxRetriesDown: z.number().int().min(1).max(10).default(3),
    httpMethod: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'TRACE', 'OPTIONS', 'PATCH', 'CONNECT']).default('GET'),
    urlPath: z.string().startsWith('/').default('/'),
    httpVersion: z.enum(['1.0', '1.1']).default('1.0'),
    domainName: z.string().max(255).nullable().default(null),
    /** "200", "200,202", "200-204" or a mix, as Octavia's expected_codes. */
    expectedCodes: z
      .string()
      .regex(/^\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*$/, 'must be codes and ranges such as 200,202-204')
      .default('200'),
    /** Extension: the response body must contain this text. */
    expectedBody: z.string().min(1).nullable().default(null),
    enabled: z.boolean().default(true),
  })
  .strict();

export const PoolSchema = z
  .object({
    id,
    name: z.string().max(255).optional(),
    protocol: z.enum(['HTTP', 'HTTPS', 'TCP', 'UDP', 'PROXY', 'PROXYV2', 'SCTP']),
    algorithm: z.enum(['ROUND_ROBIN', 'LEAST_CONNECTIONS', 'SOURCE_IP', 'SOURCE_IP_PORT', 'POWER_OF_TWO_CHOICES']),
    enabled: z.boolean().default(true),
    sessionPersistence: SessionPersistenceSchema.nullable().default(null),
    members: z.array(MemberSchema).default([]),
    healthMonitor: HealthMonitorSchema.nullable().default(null),
    /** Re-encryption towards members; null = plain. */
    tls: PoolTlsSchema.nullable().default(null),
  })
  .strict();

export const LimitsSchema = z
  .object({
    /** Largest request head (request line + headers) accepted; larger gets 431. */
    maxHeaderBytes: z.number().int().min(1024).max(1 << 20).default(16_384),
    /** Most header fields in one request; more gets 431. */
    maxHeaderCount: z.number().int().min(8).max(1000).default(100),
    /** Idle keep-alive connections kept per member per worker. */
    maxIdleMemberConnections: z.number().int().min(0).max(10_000).default(64),
  })
  .strict();

/**
 * ACTIVE_STANDBY: what this amphora's election (amphora/vrrp) runs with. The controller gives both
 * amphorae of a load balancer the same listeners; the election decides which one holds the VIPs.
 */
export const VrrpSchema = z
  .object({
    /** The role the controller gave this amphora (Octavia's amphora role). */
    role: z.enum(['MASTER', 'BACKUP']),
    /** Octavia's vrrp_priority: MASTER 100, BACKUP 90. Higher wins an election. */
    priority: z.number().int().min(1).max(254),
    /** Octavia's vrrp_id (the virtual router id). */
    routerId: z.number().int().min(1).max(255).default(1),
    /** This amphora's own address on the VIP network: adverts and the persistence sync use it. */
    address: ipAddress,
    /** The other amphorae's addresses: adverts are unicast to them. */
    peers: z.array(ipAddress).min(1),
    /** The interface that carries `address` and, while MASTER, the VIPs; null: the one holding `address`. */
    interface: z.string().min(1).max(15).nullable().default(null),
    /** Time between adverts (Octavia's vrrp_advert_int, 1 s); the peer is declared dead after about 3 of them. */
    advertIntervalMs: z.number().int().min(50).max(60_000).default(1000),
    /** Whether a higher-priority amphora takes the VIP back from a running MASTER (off: one cut, not two). */
    preempt: z.boolean().default(false),
    /** Hex of the load balancer's election key (HMAC of adverts and of the persistence sync); never logged. */
    authKey: z.string().regex(/^([0-9a-fA-F]{2}){16,64}$/, 'must be 16 to 64 bytes of hex'),
    /** TCP port on `address` where the BACKUP receives the MASTER's persistence entries (extension). */
    syncPort: port.default(1114),
  })
  .strict();

export const AmphoraConfigSchema = z
  .object({
    version: z.literal(AMPHORA_CONFIG_SCHEMA_VERSION),
    /** Monotonic, set by the controller; acknowledged back after apply. */
    configVersion: z.number().int().min(0),
    amphoraId: id,
    loadBalancerId: id.optional(),
    vips: z.array(VipSchema).min(1),
    limits: LimitsSchema.prefault({}),
    listeners: z.array(ListenerSchema).default([]),
    pools: z.array(PoolSchema).default([]),
    /** ACTIVE_STANDBY only; null: this amphora holds the VIPs alone (SINGLE). */
    vrrp: VrrpSchema.nullable().default(null),
  })
  .strict();
