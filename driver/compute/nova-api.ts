// The parts of Nova's compute API v2.1 (microversion 2.15, as Octavia uses) and of Glance's image
// API v2 the nova compute driver uses: response shapes (zod; only the fields relied on) and one
// function per call. Ids are path-encoded.
import { z } from 'zod';
import type { ServiceClient } from '../openstack/client.ts';

/** 2.15: server groups with the soft-(anti-)affinity policies, the `policies` list form. */
export const NOVA_MICROVERSION = '2.15';
export const NOVA_MICROVERSION_HEADERS = {
  'X-OpenStack-Nova-API-Version': NOVA_MICROVERSION,
  'OpenStack-API-Version': `compute ${NOVA_MICROVERSION}`,
};

export const serverSchema = z.object({
  id: z.string(),
  status: z.string(),
  fault: z.object({ message: z.string(), code: z.number().optional() }).nullish(),
});
export type NovaServer = z.infer<typeof serverSchema>;

export const interfaceSchema = z.object({
  port_id: z.string(),
  net_id: z.string(),
  fixed_ips: z.array(z.object({ ip_address: z.string(), subnet_id: z.string().optional() })).default([]),
});

export const serverGroupSchema = z.object({ id: z.string(), name: z.string() });

const imageSchema = z.object({ id: z.string(), name: z.string().nullish(), created_at: z.string().optional() });

/** POST /servers: the documented request body (the fields this driver sends). */
export interface CreateServerBody {
  server: {
    name: string;
    imageRef: string;
    flavorRef: string;
    networks: Array<{ uuid: string } | { port: string }>;
    config_drive: boolean;
    /** Base64, at most 65535 bytes. */
    user_data: string;
    metadata: Record<string, string>;
    key_name?: string;
    availability_zone?: string;
    security_groups?: Array<{ name: string }>;
  };
  'os:scheduler_hints'?: { group: string };
}

const seg = encodeURIComponent;

export const novaApi = (c: ServiceClient) => ({
  createServer: (body: CreateServerBody) => c.post('/servers', body, z.object({ server: z.object({ id: z.string() }) })).then((r) => r.server),
  findServer: (id: string) => c.find(`/servers/${seg(id)}`, z.object({ server: serverSchema })).then((r) => r?.server),
  deleteServer: (id: string) => c.delete(`/servers/${seg(id)}`),
  listInterfaces: (id: string) =>
    c.get(`/servers/${seg(id)}/os-interface`, z.object({ interfaceAttachments: z.array(interfaceSchema) })).then((r) => r.interfaceAttachments),
  attachPort: (id: string, portId: string) =>
    c
      .post(`/servers/${seg(id)}/os-interface`, { interfaceAttachment: { port_id: portId } }, z.object({ interfaceAttachment: interfaceSchema }))
      .then((r) => r.interfaceAttachment),
  detachPort: (id: string, portId: string) => c.delete(`/servers/${seg(id)}/os-interface/${seg(portId)}`),
  listServerGroups: () => c.get('/os-server-groups', z.object({ server_groups: z.array(serverGroupSchema) })).then((r) => r.server_groups),
  createServerGroup: (name: string, policy: string) =>
    c.post('/os-server-groups', { server_group: { name, policies: [policy] } }, z.object({ server_group: serverGroupSchema })).then((r) => r.server_group),
  deleteServerGroup: (id: string) => c.delete(`/os-server-groups/${seg(id)}`),
});

export const glanceApi = (c: ServiceClient) => ({
  /** Active images with a tag, newest first (Octavia's amp_image_tag lookup). */
  imagesByTag: (tag: string, ownerId: string | null) =>
    c
      .get('/images', z.object({ images: z.array(imageSchema) }), { tag, status: 'active', sort: 'created_at:desc', limit: 2, ...(ownerId ? { owner: ownerId } : {}) })
      .then((r) => r.images),
});
