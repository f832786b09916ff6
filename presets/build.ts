// A preset applied: the preset's services in the chosen mode, the VIP and the members per service
// -> the body of one single-call (graph) load balancer create, so that the whole design is created
// in one transaction or not at all, with every check of a load balancer create.
import { isIP } from 'node:net';
import { z } from 'zod';
import { formatPortIntervals, parsePortIntervals } from '../common/listener-ports.ts';
import { servicesOf, type Preset, type PresetService } from './schema.ts';

/** A refusal of the apply request, naming the field (the API answers 400). */
export class PresetRequestError extends Error {
  constructor(
    readonly field: string,
    readonly value: unknown,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'PresetRequestError';
  }
}

const uuid = z.string().regex(/^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/, 'Value should be UUID format');
const port = z.number().int('Value should be an integer').min(1, 'Value should be greater or equal to 1').max(65535, 'Value should be lower or equal to 65535');

export const PresetMemberSchema = z
  .object({
    address: z.string().refine((v) => isIP(v) !== 0, 'Value should be an IPv4 or IPv6 address'),
    /** Default: the port of the service's listener. */
    protocol_port: port.optional(),
    name: z.string().max(255).optional(),
    weight: z.number().int().min(0).max(256).optional(),
    subnet_id: uuid.optional(),
    monitor_address: z.string().refine((v) => isIP(v) !== 0, 'Value should be an IPv4 or IPv6 address').optional(),
    /** Default: the preset monitor's port, if it names one. */
    monitor_port: port.optional(),
    backup: z.boolean().optional(),
    admin_state_up: z.boolean().optional(),
  })
  .strict();

/** The body of an apply request (POST /v2/argonaut/presets/{name}/apply, `argonaut preset apply`). */
export const PresetApplySchema = z
  .object({
    name: z.string().max(255).optional(),
    description: z.string().max(255).optional(),
    project_id: z.string().max(36).optional(),
    vip_subnet_id: uuid.optional(),
    vip_network_id: uuid.optional(),
    vip_port_id: uuid.optional(),
    vip_address: z.string().refine((v) => isIP(v) !== 0, 'Value should be an IPv4 or IPv6 address').optional(),
    provider: z.string().max(64).optional(),
    flavor_id: uuid.optional(),
    availability_zone: z.string().max(255).optional(),
    /** For presets with modes; default: the preset's default_mode. */
    mode: z.string().optional(),
    /** Members by service name (the preset's service names); a service left out gets a pool without members. */
    members: z.record(z.string(), z.array(PresetMemberSchema)).default({}),
  })
  .strict();

export type PresetApply = z.input<typeof PresetApplySchema>;
type Body = Record<string, unknown>;

function fieldOf(path: PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || 'preset';
}

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let v = input;
  for (const p of path) v = v !== null && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[p] : undefined;
  return v;
}

/** Validates an apply request; PresetRequestError names the first bad field. */
export function parseApplyRequest(input: unknown): z.output<typeof PresetApplySchema> {
  const result = PresetApplySchema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    throw new PresetRequestError(fieldOf([...issue.path, key]), valueAt(input, [...issue.path, key]), 'Unknown attribute');
  }
  throw new PresetRequestError(fieldOf(issue.path), valueAt(input, issue.path), issue.message);
}

/** One listener + pool of a service: a proxied service gets one per port (a proxy reaches one member port). */
interface Part {
  name: string;
  ports: Array<{ from: number; to: number }>;
}

export function partsOf(service: PresetService): Part[] {
  const intervals = parsePortIntervals(service.ports);
  if (service.forwarding === 'PROXY' && intervals.length > 1) {
    return intervals.map((i) => ({ name: `${service.name}_${i.from}`, ports: [i] }));
  }
  return [{ name: service.name, ports: intervals }];
}

/** The graph create body (`{loadbalancer: {...}}`) of a preset applied with `request`. */
export function buildLoadBalancerBody(preset: Preset, request: z.output<typeof PresetApplySchema>): { loadbalancer: Body } {
  let chosen: ReturnType<typeof servicesOf>;
  try {
    chosen = servicesOf(preset, request.mode);
  } catch (e) {
    throw new PresetRequestError('mode', request.mode, (e as Error).message);
  }
  const names = chosen.services.map((s) => s.name);
  for (const key of Object.keys(request.members)) {
    if (!names.includes(key)) {
      throw new PresetRequestError('members', key, `Value should name services of preset ${preset.name}${chosen.mode ? ` (mode ${chosen.mode})` : ''}: ${names.join(', ')}`);
    }
  }
  const listeners: Body[] = [];
  const pools: Body[] = [];
  for (const service of chosen.services) {
    for (const part of partsOf(service)) {
      const first = part.ports[0]!.from;
      const m = service.monitor;
      pools.push({
        name: part.name,
        protocol: service.protocol,
        lb_algorithm: service.algorithm,
        ...(service.persistence ? { session_persistence: { type: service.persistence } } : {}),
        healthmonitor: {
          type: m.type,
          delay: m.delay,
          timeout: m.timeout,
          max_retries: m.max_retries,
          max_retries_down: m.max_retries_down,
          ...(m.http_method ? { http_method: m.http_method } : {}),
          ...(m.url_path ? { url_path: m.url_path } : {}),
          ...(m.expected_codes ? { expected_codes: m.expected_codes } : {}),
          ...(m.expected_body ? { expected_body: m.expected_body } : {}),
        },
        members: (request.members[service.name] ?? []).map((member) => ({
          ...member,
          protocol_port: member.protocol_port ?? first,
          ...(member.monitor_port ?? m.port ? { monitor_port: member.monitor_port ?? m.port } : {}),
        })),
      });
      const rest = part.ports.slice(1);
      const singleFirst = part.ports[0]!.from === part.ports[0]!.to;
      // A first item that is a range: protocol_port is its first port, the rest of it goes with the additional ports.
      const additional = singleFirst ? rest : [{ from: first + 1, to: part.ports[0]!.to }, ...rest];
      listeners.push({
        name: part.name,
        protocol: service.protocol,
        protocol_port: first,
        ...(additional.length ? { additional_ports: formatPortIntervals(additional) } : {}),
        ...(service.also_udp ? { also_udp: true } : {}),
        ...(service.forwarding !== 'PROXY' ? { forwarding_method: service.forwarding } : {}),
        default_pool: { name: part.name },
      });
    }
  }
  const passThrough = ['description', 'project_id', 'vip_subnet_id', 'vip_network_id', 'vip_port_id', 'vip_address', 'provider', 'flavor_id', 'availability_zone'] as const;
  const loadbalancer: Body = { name: request.name ?? preset.name };
  for (const key of passThrough) if (request[key] !== undefined) loadbalancer[key] = request[key];
  loadbalancer.tags = [`preset:${preset.name}`, ...(chosen.mode ? [`preset-mode:${chosen.mode}`] : [])];
  loadbalancer.listeners = listeners;
  loadbalancer.pools = pools;
  return { loadbalancer };
}
