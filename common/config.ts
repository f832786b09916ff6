// Argonaut configuration: one typed document, every option with a default and a line of documentation.
// The example with comments is etc/argonaut.example.yaml; keep the two in step.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { transportOptionsSchema } from './transport/transport.ts';
import { certificatesSection } from './certificates/config.ts';

const providers = z.record(z.string(), z.string());

/** The ACTIVE_STANDBY election settings the controller gives every amphora pair (the `vrrp` section). */
export const vrrpSettingsSchema = z
  .object({
    advertIntervalMs: z.number().int().min(50).max(60_000).default(1000).describe("ACTIVE_STANDBY: time between the election's adverts (Octavia's vrrp_advert_int, 1 s); the BACKUP takes over after about three missed ones."),
    preempt: z.boolean().default(false).describe('Whether a recovered higher-priority amphora takes the VIP back from the running MASTER (off: connections are cut once, not twice).'),
    syncPort: z.number().int().min(1).max(65535).default(1114).describe("TCP port on each amphora's own address where the BACKUP receives the MASTER's persistence entries (extension)."),
  })
  .prefault({})
  .describe('The ACTIVE_STANDBY election that the amphora agents run (amphora/vrrp).');

export type VrrpSettings = z.infer<typeof vrrpSettingsSchema>;

export const configSchema = z
  .object({
    api: z
      .object({
        host: z.string().default('127.0.0.1').describe('Address the API listens on.'),
        port: z.number().int().min(0).max(65535).default(9876).describe('Port the API listens on.'),
        authStrategy: z.enum(['noauth', 'keystone']).default('noauth').describe('noauth: every caller is admin (development only); keystone: validate X-Auth-Token.'),
        apiBaseUri: z.string().nullable().default(null).describe('Base URI used in page links; null: taken from each request.'),
        maxRequestBodySize: z.number().int().positive().default(114688).describe('Largest accepted request body in bytes (413 above).'),
        paginationMaxLimit: z.number().int().positive().default(1000).describe('Default and maximum page size.'),
        enabledProviderDrivers: providers.default({
          amphora: 'The Octavia Amphora driver.',
          octavia: 'Deprecated alias of the Octavia Amphora driver.',
          noop: 'The no-op provider: objects go ACTIVE without any data plane.',
        })
          .describe('Enabled provider drivers: name -> description (GET /v2/lbaas/providers lists them).'),
        defaultProviderDriver: z.string().default('amphora').describe('Provider used when a load balancer names none.'),
        allowTlsTerminatedListeners: z.boolean().default(true).describe('Allow TERMINATED_HTTPS listeners.'),
        allowPingHealthMonitors: z.boolean().default(true).describe('Allow PING health monitors.'),
        allowPrometheusListeners: z.boolean().default(true).describe('Allow PROMETHEUS listeners.'),
        allowVipNetworkId: z.boolean().default(true).describe('Accept vip_network_id on load balancer create.'),
        allowVipSubnetId: z.boolean().default(true).describe('Accept vip_subnet_id on load balancer create.'),
        allowVipPortId: z.boolean().default(true).describe('Accept vip_port_id on load balancer create.'),
        reservedIps: z.array(z.string()).default(['169.254.169.254']).describe('Addresses members may not use.'),
        udpConnectMinIntervalHealthMonitor: z.number().int().min(0).default(3).describe('Smallest delay of a UDP-CONNECT monitor (s).'),
        minimumTlsVersion: z.string().nullable().default(null).describe('Lowest TLS version listeners and pools may allow (null: any).'),
        tlsCipherProhibitList: z.array(z.string()).default([]).describe('Ciphers that tls_ciphers may not name.'),
        healthcheckEnabled: z.boolean().default(false).describe('Serve GET /healthcheck.'),
      })
      .prefault({}),
    database: z
      .object({
        url: z.string().default('sqlite:var/argonaut.sqlite').describe('sqlite:<file> | sqlite::memory: | mysql://user:pass@host:port/db (MariaDB/MySQL).'),
        poolMax: z.number().int().positive().default(10).describe('Most connections in the pool (MariaDB).'),
        migrateOnStart: z.boolean().default(true).describe('Apply pending migrations when a process starts.'),
      })
      .prefault({}),
    keystone: z
      .object({
        authUrl: z.string().default('http://127.0.0.1:5000/v3').describe('Keystone v3 URL.'),
        username: z.string().default('octavia').describe('Service user that validates tokens.'),
        password: z.string().default('').describe('Service user password.'),
        projectName: z.string().default('service').describe('Service user project.'),
        userDomainName: z.string().default('Default').describe('Service user domain.'),
        projectDomainName: z.string().default('Default').describe('Service project domain.'),
        region: z.string().nullable().default(null).describe('Region used to pick catalog endpoints.'),
        tokenCacheTtlSeconds: z.number().int().min(0).default(300).describe('How long a validated token is trusted without asking Keystone.'),
        timeoutMs: z.number().int().positive().default(30000).describe('Timeout of one Keystone request (a loaded Keystone can take seconds).'),
        retries: z.number().int().min(0).default(2).describe('Further attempts after a Keystone timeout or connection failure.'),
      })
      .prefault({}),
    policy: z
      .object({
        enforceNewDefaults: z.boolean().default(false).describe('true: only the Keystone default roles (admin/member/reader); false: also the deprecated load-balancer_* roles.'),
        ruleSet: z
          .enum(['keystone_default_roles', 'advanced', 'admin_or_owner'])
          .default('keystone_default_roles')
          .describe("keystone_default_roles: Octavia's current default policy; advanced: the load-balancer_* roles policy (Octavia's advanced RBAC sample, what Zed enforces and tempest's 'advanced' RBAC tests expect); admin_or_owner: Octavia's admin-or-owner sample."),
      })
      .prefault({}),
    quotas: z
      .object({
        loadBalancer: z.number().int().min(-1).default(-1).describe('Default load balancer quota (-1 unlimited).'),
        listener: z.number().int().min(-1).default(-1).describe('Default listener quota.'),
        pool: z.number().int().min(-1).default(-1).describe('Default pool quota.'),
        healthMonitor: z.number().int().min(-1).default(-1).describe('Default health monitor quota.'),
        member: z.number().int().min(-1).default(-1).describe('Default member quota.'),
        l7policy: z.number().int().min(-1).default(-1).describe('Default L7 policy quota.'),
        l7rule: z.number().int().min(-1).default(-1).describe('Default L7 rule quota.'),
      })
      .prefault({}),
    listenerDefaults: z
      .object({
        timeoutClientData: z.number().int().min(0).default(50000).describe('Default timeout_client_data (ms).'),
        timeoutMemberConnect: z.number().int().min(0).default(5000).describe('Default timeout_member_connect (ms).'),
        timeoutMemberData: z.number().int().min(0).default(50000).describe('Default timeout_member_data (ms).'),
        timeoutTcpInspect: z.number().int().min(0).default(0).describe('Default timeout_tcp_inspect (ms).'),
        tlsCiphers: z
          .string()
          .default(
            'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305',
          )
          .describe('Default tls_ciphers of TLS listeners and pools.'),
        tlsVersions: z.array(z.string()).default(['TLSv1.2', 'TLSv1.3']).describe('Default tls_versions of TLS listeners and pools.'),
        alpnProtocols: z.array(z.string()).default(['h2', 'http/1.1', 'http/1.0']).describe('Default alpn_protocols of TLS listeners and pools.'),
      })
      .prefault({}),
    controllerWorker: z
      .object({
        loadbalancerTopology: z.enum(['SINGLE', 'ACTIVE_STANDBY']).default('SINGLE').describe('Topology when the flavor names none.'),
        computeDriver: z
          .enum(['noop', 'process', 'netns', 'nova'])
          .default('process')
          .describe('How amphorae are started: noop (records only, no instance), process (a local agent process each), netns (a process in its own network namespace; root), nova (an amphora image booted through Nova; see the nova section).'),
        networkDriver: z
          .enum(['noop', 'loopback', 'local', 'neutron'])
          .default('loopback')
          .describe('How VIPs are allocated and plumbed: noop (recorded only), loopback (127.0.100.0/24 on lo; no root), local (a host bridge and veths for netns amphorae), neutron (VIP ports, allowed address pairs and security groups in Neutron).'),
        amphoraDriver: z
          .enum(['noop', 'agent'])
          .default('agent')
          .describe('How configuration reaches amphorae: noop (acknowledged at once) or agent (pushed over the transport; ACTIVE once every amphora acknowledged it).'),
        stateDir: z.string().default('var/amphorae').describe('Where compute drivers keep amphora settings files and logs.'),
        amphoraDataplaneWorkers: z
          .number()
          .int()
          .min(0)
          .default(0)
          .describe('Data plane worker processes per amphora (0: the data plane runs inside the agent process).'),
        sparePoolSize: z
          .number()
          .int()
          .min(0)
          .default(1)
          .describe("Amphorae booted ahead of need, so that a create or a failover only pushes a configuration (Octavia's spare_amphora_pool_size; ignored with computeDriver noop)."),
        spareCheckIntervalMs: z.number().int().positive().default(10_000).describe('How often dead spare amphorae are replaced.'),
        amphoraLogLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level of the amphora agents.'),
        configAckTimeoutMs: z
          .number()
          .int()
          .positive()
          .default(30_000)
          .describe('How long the controller waits for an amphora to acknowledge a configuration (a new amphora must boot first) before the operation fails with ERROR.'),
        workerDelayMs: z.number().int().min(0).default(0).describe('Delay before the worker completes an operation (tests of PENDING_* states).'),
      })
      .prefault({}),
    localNetwork: z
      .object({
        subnetId: z.string().uuid().default('10ca1000-5b5e-4e7a-9c00-000000000024').describe('Id of the one subnet of the local network driver (vip_subnet_id of its load balancers).'),
        networkId: z.string().uuid().default('10ca1000-0e70-4e7a-9c00-000000000000').describe('Id of its network (vip_network_id).'),
        cidr: z.string().default('172.31.100.0/24').describe('Its addresses: the lower half are VIPs, the upper half amphora management addresses.'),
        gateway: z.string().nullable().default(null).describe("The host bridge's address (null: the subnet's first address)."),
        bridge: z.string().max(15).default('argo-br').describe('Host bridge the amphora namespaces are plugged into (created at start).'),
        prefix: z.string().regex(/^[a-z0-9]{2,6}$/).default('argo').describe('Prefix of every namespace and interface the netns driver creates.'),
        floatingNetwork: z
          .object({
            cidr: z.string().describe('The external network, made at start: a bridge <prefix>-xbr in namespace <prefix>-ext.'),
            routerAddress: z.string().nullable().default(null).describe("The router's address on it (null: its first address)."),
            routerInternalAddress: z.string().describe("The router's address on the VIP subnet (namespace <prefix>-router): outside the VIP range, not a management address in use."),
            associations: z
              .array(z.object({ floatingIp: z.string(), vipAddress: z.string() }).strict())
              .default([])
              .describe('Floating IPs of the external network DNATed to VIPs (as Neutron L3 floating IPs), set up at start.'),
          })
          .strict()
          .nullable()
          .default(null)
          .describe('Floating IPs with the local network driver (root): an external network and a router namespace; null: none.'),
      })
      .prefault({}),
    neutron: z
      .object({
        endpoint: z.string().nullable().default(null).describe("Neutron's URL with its version, e.g. http://127.0.0.1:9696/v2.0 (null: the network endpoint of the Keystone catalog, /v2.0 appended)."),
        endpointInterface: z.enum(['public', 'internal', 'admin']).default('public').describe('Catalog interface of the network endpoint.'),
        region: z.string().nullable().default(null).describe('Catalog region of the network endpoint (null: keystone.region).'),
        timeoutMs: z.number().int().positive().default(30_000).describe('Timeout of one Neutron request.'),
        securityGroupDeleteAttempts: z.number().int().positive().default(15).describe("Attempts to delete a load balancer's security group while Neutron still finds it in use (Octavia's networking.max_retries)."),
        retryIntervalMs: z.number().int().positive().default(1000).describe("Pause between those attempts (Octavia's networking.retry_interval)."),
      })
      .prefault({})
      .describe("The neutron network driver (controllerWorker.networkDriver neutron); it authenticates as the keystone section's service user."),
    nova: z
      .object({
        endpoint: z.string().nullable().default(null).describe("Nova's URL with its version, e.g. http://127.0.0.1:8774/v2.1 (null: the compute endpoint of the Keystone catalog)."),
        imageEndpoint: z.string().nullable().default(null).describe("Glance's URL with its version, e.g. http://127.0.0.1:9292/v2, used with imageTag (null: the image endpoint of the catalog, /v2 appended)."),
        endpointInterface: z.enum(['public', 'internal', 'admin']).default('public').describe('Catalog interface of the compute and image endpoints.'),
        region: z.string().nullable().default(null).describe('Catalog region of those endpoints (null: keystone.region).'),
        timeoutMs: z.number().int().positive().default(30_000).describe('Timeout of one Nova or Glance request.'),
        flavorId: z.string().nullable().default(null).describe("Nova flavor of the amphorae (Octavia's amp_flavor_id); required with computeDriver nova."),
        imageId: z.string().nullable().default(null).describe('Glance id of the amphora image; give this or imageTag.'),
        imageTag: z.string().nullable().default(null).describe("Tag of the amphora image: the newest active image with it is booted (Octavia's amp_image_tag); give this or imageId."),
        imageOwnerId: z.string().nullable().default(null).describe("Only images of this project are taken by tag (Octavia's amp_image_owner_id; null: any)."),
        managementNetworkId: z.string().nullable().default(null).describe("Neutron network the amphorae boot on (Octavia's amp_boot_network_list); their agents reach RabbitMQ over it. Required with computeDriver nova."),
        keyName: z.string().nullable().default(null).describe("Nova key pair put into the amphorae (Octavia's amp_ssh_key_name; null: none)."),
        availabilityZone: z.string().nullable().default(null).describe("Availability zone the amphorae boot in (Octavia's nova.availability_zone; null: Nova's choice)."),
        securityGroups: z.array(z.string()).default([]).describe("Security groups (names) of the amphorae's management port (Octavia's amp_secgroup_list; empty: Nova's default)."),
        serverGroupPolicy: z.enum(['anti-affinity', 'soft-anti-affinity']).nullable().default(null).describe("ACTIVE_STANDBY amphorae of a load balancer go in a server group octavia-lb-<id> with this policy (Octavia's enable_anti_affinity and anti_affinity_policy; null: no group)."),
        bootTimeoutMs: z.number().int().positive().default(300_000).describe('How long an amphora server may take to become ACTIVE before it is deleted and the boot fails (Octavia: amp_active_retries x amp_active_wait_sec).'),
        pollIntervalMs: z.number().int().positive().default(5000).describe('Time between status polls of a booting server.'),
        amqpUrl: z.string().nullable().default(null).describe("RabbitMQ URL written into the amphorae's agent settings (null: messaging.amqp.url, which must then be reachable from the management network)."),
        agentSettingsPath: z.string().default('/etc/argonaut/amphora-agent.yaml').describe('Where cloud-init writes the agent settings in the amphora (the image starts argonaut-amphora --config with it).'),
      })
      .prefault({})
      .describe("The nova compute driver (controllerWorker.computeDriver nova); it authenticates as the keystone section's service user."),
    messaging: z
      .object({
        kind: z
          .enum(['in-process', 'amqp'])
          .default('in-process')
          .describe('Controller <-> amphora transport: in-process (embedded default; amphora processes talk to the API process over IPC) or amqp (RabbitMQ).'),
        masterKey: z
          .string()
          .min(32)
          .nullable()
          .default(null)
          .describe("Secret every amphora key is derived from (Octavia's heartbeat_key). null: a random key per start (in-process only; amphorae do not outlive the process)."),
        amqp: transportOptionsSchema.describe('RabbitMQ transport options (used when kind is amqp).'),
      })
      .prefault({}),
    vrrp: vrrpSettingsSchema,
    healthManager: z
      .object({
        heartbeatIntervalMs: z.number().int().min(10).default(10_000).describe("Time between an amphora's heartbeats (Octavia's heartbeat_interval)."),
        heartbeatTimeoutMs: z
          .number()
          .int()
          .min(1000)
          .default(60_000)
          .describe("An amphora silent this long is failed over (Octavia's heartbeat_timeout)."),
        healthCheckIntervalMs: z.number().int().positive().default(3_000).describe('How often stale amphorae are looked for (Octavia\'s health_check_interval).'),
        failoverThreshold: z
          .number()
          .int()
          .positive()
          .nullable()
          .default(null)
          .describe("Circuit breaker: when this many amphorae are stale at once, none is failed over (Octavia's failover_threshold; null: off)."),
      })
      .prefault({}),
    presets: z
      .object({
        directory: z
          .string()
          .min(1)
          .nullable()
          .default(null)
          .describe("A directory of the operator's own preset files (*.yaml, *.yml, *.json; presets/README.md), read at API start besides the built-in ones; a file with a built-in preset's name replaces it."),
      })
      .prefault({}),
    certificates: certificatesSection.describe('TLS certificate references of listeners and pools (common/certificates/).'),
    logging: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level.'),
      })
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    const cw = c.controllerWorker;
    if (cw.computeDriver === 'nova') {
      if (c.messaging.kind !== 'amqp') ctx.addIssue({ code: 'custom', path: ['messaging', 'kind'], message: 'must be amqp with computeDriver nova (amphorae in Nova servers reach the controller through RabbitMQ)' });
      if (!c.nova.flavorId) ctx.addIssue({ code: 'custom', path: ['nova', 'flavorId'], message: 'is required with computeDriver nova' });
      if (!c.nova.managementNetworkId) ctx.addIssue({ code: 'custom', path: ['nova', 'managementNetworkId'], message: 'is required with computeDriver nova' });
      if (!c.nova.imageId === !c.nova.imageTag) ctx.addIssue({ code: 'custom', path: ['nova', 'imageId'], message: 'give exactly one of nova.imageId and nova.imageTag' });
    }
    if ((cw.networkDriver === 'neutron' || cw.computeDriver === 'nova') && !c.keystone.password) {
      ctx.addIssue({ code: 'custom', path: ['keystone', 'password'], message: 'is required with the neutron and nova drivers (they act as the keystone service user)' });
    }
    if (c.messaging.kind === 'amqp' && c.controllerWorker.amphoraDriver === 'agent' && c.messaging.masterKey === null) {
      ctx.addIssue({ code: 'custom', path: ['messaging', 'masterKey'], message: 'is required with kind amqp: amphorae outlive a controller restart and must keep their keys' });
    }
    if (c.controllerWorker.computeDriver !== 'noop' && c.controllerWorker.amphoraDriver !== 'agent') {
      ctx.addIssue({ code: 'custom', path: ['controllerWorker', 'amphoraDriver'], message: `must be agent when computeDriver is ${c.controllerWorker.computeDriver} (started amphorae need their configuration)` });
    }
  });

export type ArgonautConfig = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

export class ConfigError extends Error {}

export function buildConfig(input: unknown = {}): ArgonautConfig {
  const parsed = configSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const cfg = parsed.data;
  if (!(cfg.api.defaultProviderDriver in cfg.api.enabledProviderDrivers)) {
    throw new ConfigError(`api.defaultProviderDriver '${cfg.api.defaultProviderDriver}' is not in api.enabledProviderDrivers`);
  }
  return cfg;
}

export function loadConfigFile(path: string | undefined): ArgonautConfig {
  if (!path) return buildConfig({});
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  return buildConfig(parseYaml(text) ?? {});
}
