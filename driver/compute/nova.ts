// The `nova` compute driver: each amphora is a Nova server booted from the amphora image (by id, or
// the newest active Glance image with a tag), on the management network, with a config drive whose
// user data writes the agent's settings (nova-user-data.ts). boot() resolves once Nova reports the
// server ACTIVE; the agent then connects to RabbitMQ by itself.
//
// computeId: the server id. lbNetworkIp: the server's address on the management network. For
// ACTIVE_STANDBY amphorae, an optional server group `octavia-lb-<lbId>` (anti-affinity or
// soft-anti-affinity) keeps MASTER and BACKUP on different hosts; deleteServerGroup() removes it
// with the load balancer. Servers outlive the controller: stop() leaves them running.
import { setTimeout as sleep } from 'node:timers/promises';
import type { FetchLike } from '../../api/auth/keystone-client.ts';
import type { Logger } from '../../common/logging.ts';
import { AmphoraIdSchema } from '../../common/messages.ts';
import { ServiceClient, type ServiceCredentials } from '../openstack/client.ts';
import type { AmphoraAssignRequest, AmphoraBootRequest, BootedAmphora, ComputeDriver } from './compute-driver.ts';
import { glanceApi, novaApi, NOVA_MICROVERSION_HEADERS, type CreateServerBody } from './nova-api.ts';
import { agentSettings, DEFAULT_AGENT_SETTINGS_PATH, userData, type AgentTemplate } from './nova-user-data.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Statuses of a server that exists and runs or is about to. */
const ALIVE = new Set(['ACTIVE', 'BUILD']);

export interface NovaComputeOptions {
  credentials: ServiceCredentials;
  /** Nova's URL with its version (http://host:8774/v2.1); null: the catalog's `compute` endpoint. */
  endpoint?: string | null;
  /** Glance's URL with its version (http://host:9292/v2); null: the catalog's `image` endpoint. Only used with imageTag. */
  imageEndpoint?: string | null;
  interface?: 'public' | 'internal' | 'admin';
  /** Catalog region; undefined: the credentials' region. */
  region?: string | null;
  timeoutMs: number;
  flavorId: string;
  /** Exactly one of imageId and imageTag. */
  imageId?: string | null;
  imageTag?: string | null;
  /** Only images of this project are taken by tag (Octavia's amp_image_owner_id). */
  imageOwnerId?: string | null;
  managementNetworkId: string;
  keyName?: string | null;
  availabilityZone?: string | null;
  /** Security groups (names) of the management port. */
  securityGroups?: string[];
  /** Server group policy for MASTER/BACKUP amphorae; null: no server group. */
  serverGroupPolicy?: 'anti-affinity' | 'soft-anti-affinity' | null;
  /** How long a server may take to become ACTIVE. */
  bootTimeoutMs: number;
  /** Time between status polls while booting (default 5000). */
  pollIntervalMs?: number;
  agent: AgentTemplate;
  /** Where cloud-init writes the agent settings in the instance. */
  agentSettingsPath?: string;
  logger: Logger;
  fetch?: FetchLike;
}

/** The boot request, plus Neutron ports to plug at boot (e.g. the VRRP port from plugAmphoraVip()). */
export type NovaBootRequest = AmphoraBootRequest & { portIds?: string[] };

export class NovaComputeDriver implements ComputeDriver {
  readonly name = 'nova';
  private readonly nova: ReturnType<typeof novaApi>;
  private readonly glance: ReturnType<typeof glanceApi>;
  private readonly log: Logger;
  /** Server groups being found or created, by load balancer (MASTER and BACKUP boot together). */
  private readonly groups = new Map<string, Promise<string>>();

  get antiAffinity(): boolean {
    return Boolean(this.opts.serverGroupPolicy);
  }

  constructor(private readonly opts: NovaComputeOptions) {
    if (!opts.imageId === !opts.imageTag) throw new Error('nova compute driver: give exactly one of imageId and imageTag');
    if (!opts.flavorId) throw new Error('nova compute driver: flavorId is required');
    if (!opts.managementNetworkId) throw new Error('nova compute driver: managementNetworkId is required');
    const common = {
      credentials: opts.credentials,
      ...(opts.interface ? { interface: opts.interface } : {}),
      ...(opts.region !== undefined ? { region: opts.region } : {}),
      timeoutMs: opts.timeoutMs,
      ...(opts.fetch ? { fetch: opts.fetch } : {}),
    };
    this.nova = novaApi(new ServiceClient({ ...common, serviceType: 'compute', serviceName: 'Nova', endpoint: opts.endpoint ?? null, headers: NOVA_MICROVERSION_HEADERS }));
    this.glance = glanceApi(new ServiceClient({ ...common, serviceType: 'image', serviceName: 'Glance', endpoint: opts.imageEndpoint ?? null, versionPath: '/v2' }));
    this.log = opts.logger.child({ component: 'compute', driver: 'nova' });
  }

  async boot(req: NovaBootRequest): Promise<BootedAmphora> {
    const amphoraId = AmphoraIdSchema.parse(req.amphoraId);
    const o = this.opts;
    const settings = agentSettings(o.agent, amphoraId, req.key);
    const imageRef = await this.imageId();
    const group = o.serverGroupPolicy && req.loadBalancerId && (req.role === 'MASTER' || req.role === 'BACKUP') ? await this.serverGroup(req.loadBalancerId) : null;
    const body: CreateServerBody = {
      server: {
        name: `amphora-${amphoraId}`,
        imageRef,
        flavorRef: o.flavorId,
        networks: [{ uuid: o.managementNetworkId }, ...portsAtBoot(req).map((port) => ({ port }))],
        config_drive: true,
        user_data: userData(settings, o.agentSettingsPath ?? DEFAULT_AGENT_SETTINGS_PATH),
        metadata: { 'argonaut-amphora-id': amphoraId, ...(req.loadBalancerId ? { 'argonaut-load-balancer-id': req.loadBalancerId } : {}) },
        ...(o.keyName ? { key_name: o.keyName } : {}),
        ...(o.availabilityZone ? { availability_zone: o.availabilityZone } : {}),
        ...(o.securityGroups?.length ? { security_groups: o.securityGroups.map((name) => ({ name })) } : {}),
      },
      ...(group ? { 'os:scheduler_hints': { group } } : {}),
    };
    const { id } = await this.nova.createServer(body);
    this.log.info({ amphoraId, loadBalancerId: req.loadBalancerId, role: req.role, serverId: id, imageRef, serverGroup: group }, 'amphora server requested');
    try {
      await this.waitActive(amphoraId, id);
      const lbNetworkIp = await this.managementAddress(id);
      this.log.info({ amphoraId, serverId: id, lbNetworkIp }, 'amphora server active');
      return { computeId: id, lbNetworkIp };
    } catch (err) {
      await this.destroy(id).catch((cleanupErr: unknown) => {
        throw new AggregateError([err, cleanupErr], `booting amphora ${amphoraId} failed, and so did deleting its server ${id}`);
      });
      throw err;
    }
  }

  async destroy(computeId: string): Promise<void> {
    if (!UUID.test(computeId)) {
      this.log.warn({ computeId }, 'destroy of a computeId that is not a Nova server id: nothing to do');
      return;
    }
    const deleted = await this.nova.deleteServer(computeId);
    this.log.info({ serverId: computeId, deleted }, deleted ? 'amphora server deleted' : 'amphora server already gone');
  }

  async isAlive(computeId: string): Promise<boolean> {
    if (!UUID.test(computeId)) return false;
    const server = await this.nova.findServer(computeId);
    return server !== undefined && ALIVE.has(server.status);
  }

  /** Nothing: servers outlive the controller (a restarted controller finds them by their heartbeats). */
  async stop(): Promise<void> {}

  /** A spare given to a load balancer: its VRRP port (neutron) is plugged into the running server. */
  async assign(computeId: string, req: AmphoraAssignRequest): Promise<void> {
    if (req.vipInterface) await this.attachPort(computeId, req.vipInterface.portId);
  }

  /** Plugs a Neutron port (e.g. the VRRP port) into a running amphora. */
  async attachPort(computeId: string, portId: string): Promise<void> {
    await this.nova.attachPort(computeId, portId);
    this.log.info({ serverId: computeId, portId }, 'port attached');
  }

  /** Unplugs a port; idempotent (an unknown server or port is not an error). */
  async detachPort(computeId: string, portId: string): Promise<void> {
    await this.nova.detachPort(computeId, portId);
  }

  /** Deletes the load balancer's server group if there is one; idempotent. */
  async deleteServerGroup(loadBalancerId: string): Promise<void> {
    this.groups.delete(loadBalancerId);
    const name = serverGroupName(loadBalancerId);
    for (const group of (await this.nova.listServerGroups()).filter((g) => g.name === name)) {
      await this.nova.deleteServerGroup(group.id);
      this.log.info({ loadBalancerId, serverGroupId: group.id }, 'server group deleted');
    }
  }

  // ---- internals ----------------------------------------------------------------------------------

  private async imageId(): Promise<string> {
    if (this.opts.imageId) return this.opts.imageId;
    const tag = this.opts.imageTag as string;
    const images = await this.glance.imagesByTag(tag, this.opts.imageOwnerId ?? null);
    if (images.length === 0) throw new Error(`no active Glance image has the tag ${tag}${this.opts.imageOwnerId ? ` (owner ${this.opts.imageOwnerId})` : ''}`);
    if (images.length > 1) this.log.warn({ tag, imageId: images[0]!.id }, 'several images have the amphora tag: the newest is used');
    return images[0]!.id;
  }

  private serverGroup(loadBalancerId: string): Promise<string> {
    let pending = this.groups.get(loadBalancerId);
    if (!pending) {
      pending = this.findOrCreateServerGroup(loadBalancerId);
      this.groups.set(loadBalancerId, pending);
      pending.catch(() => this.groups.delete(loadBalancerId));
    }
    return pending;
  }

  private async findOrCreateServerGroup(loadBalancerId: string): Promise<string> {
    const name = serverGroupName(loadBalancerId);
    const existing = (await this.nova.listServerGroups()).find((g) => g.name === name);
    if (existing) return existing.id;
    const created = await this.nova.createServerGroup(name, this.opts.serverGroupPolicy as string);
    this.log.info({ loadBalancerId, serverGroupId: created.id, policy: this.opts.serverGroupPolicy }, 'server group created');
    return created.id;
  }

  private async waitActive(amphoraId: string, serverId: string): Promise<void> {
    const deadline = Date.now() + this.opts.bootTimeoutMs;
    for (;;) {
      const server = await this.nova.findServer(serverId);
      if (!server) throw new Error(`Nova server ${serverId} of amphora ${amphoraId} disappeared while booting`);
      if (server.status === 'ACTIVE') return;
      if (server.status === 'ERROR') throw new Error(`Nova could not boot amphora ${amphoraId} (server ${serverId}): ${server.fault?.message ?? 'no fault given'}`);
      if (server.status !== 'BUILD') throw new Error(`Nova server ${serverId} of amphora ${amphoraId} went ${server.status} while booting`);
      if (Date.now() >= deadline) throw new Error(`Nova server ${serverId} of amphora ${amphoraId} was not ACTIVE within ${this.opts.bootTimeoutMs} ms`);
      await sleep(Math.min(this.opts.pollIntervalMs ?? 5000, Math.max(0, deadline - Date.now())));
    }
  }

  /** The server's first address on the management network (null if Nova lists none). */
  private async managementAddress(serverId: string): Promise<string | null> {
    const interfaces = await this.nova.listInterfaces(serverId);
    const address = interfaces.find((i) => i.net_id === this.opts.managementNetworkId)?.fixed_ips[0]?.ip_address ?? null;
    if (!address) this.log.warn({ serverId, managementNetworkId: this.opts.managementNetworkId }, 'amphora server has no address on the management network');
    return address;
  }
}

export const serverGroupName = (loadBalancerId: string) => `octavia-lb-${loadBalancerId}`;

/** The Neutron ports the server is created with, after its management network: its VRRP port first. */
function portsAtBoot(req: NovaBootRequest): string[] {
  return [...new Set([...(req.vipInterface ? [req.vipInterface.portId] : []), ...(req.portIds ?? [])])];
}
