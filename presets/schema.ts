// The schema of a preset file (presets/*.yaml): a ready-made load balancer design, one VIP table row
// per service. presets/README.md describes the fields; presets/build.ts turns a preset, a mode and
// the members into the body of a single-call (graph) load balancer create.
import { z } from 'zod';
import { parsePortIntervals } from '../common/listener-ports.ts';

const portList = z.string().superRefine((text, ctx) => {
  try {
    parsePortIntervals(text);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
});

export const PresetMonitorSchema = z
  .object({
    type: z.enum(['HTTP', 'HTTPS', 'TCP', 'UDP-CONNECT', 'PING', 'TLS-HELLO']),
    /** Seconds, as Octavia's API. */
    delay: z.number().int().min(1).max(3600),
    timeout: z.number().int().min(1).max(3600),
    max_retries: z.number().int().min(1).max(10),
    max_retries_down: z.number().int().min(1).max(10).default(3),
    http_method: z.enum(['GET', 'HEAD', 'POST']).optional(),
    url_path: z.string().startsWith('/').optional(),
    expected_codes: z.string().regex(/^(\d{3}(,\d{3})*)$|^(\d{3}-\d{3})$/).optional(),
    expected_body: z.string().min(1).max(255).optional(),
    /** The member port the check goes to (member monitor_port) when not the member's own port. */
    port: z.number().int().min(1).max(65535).optional(),
    /** Why this check: shown by the API and the CLI. */
    reason: z.string().min(1),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.timeout > m.delay) ctx.addIssue({ code: 'custom', path: ['timeout'], message: 'must not exceed delay' });
    const http = m.type === 'HTTP' || m.type === 'HTTPS';
    for (const key of ['http_method', 'url_path', 'expected_codes', 'expected_body'] as const) {
      if (!http && m[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `only for HTTP and HTTPS monitors, not ${m.type}` });
    }
  });

export const PresetServiceSchema = z
  .object({
    /** The VIP name of the seed table; listeners and pools are named after it. */
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (at most 64)'),
    /** The seed table's mode column, word for word (informational). */
    mode: z.string().min(1),
    /** Listener protocol (the pool has the same one). */
    protocol: z.enum(['TCP', 'HTTP', 'HTTPS', 'UDP']),
    /** The seed table's ports, in appliance notation: "8080,8443" or "1935,554,50000-65535". */
    ports: portList,
    /** TCP and UDP on the same ports (the seeds' "TCP/UDP" protocol); TCP services only. */
    also_udp: z.boolean().default(false),
    forwarding: z.enum(['PROXY', 'DIRECT_ROUTING']).default('PROXY'),
    algorithm: z.enum(['ROUND_ROBIN', 'LEAST_CONNECTIONS', 'SOURCE_IP']).default('ROUND_ROBIN'),
    /** The seed table's persistence mode; null = none. */
    persistence: z.enum(['SOURCE_IP', 'HTTP_COOKIE', 'LAST_SUCCESSFUL']).nullable(),
    monitor: PresetMonitorSchema,
    description: z.string().optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const intervals = (() => {
      try {
        return parsePortIntervals(s.ports);
      } catch {
        return [];
      }
    })();
    if (s.also_udp && s.protocol !== 'TCP') ctx.addIssue({ code: 'custom', path: ['also_udp'], message: 'only for TCP services' });
    if (s.forwarding === 'DIRECT_ROUTING' && s.protocol !== 'TCP' && s.protocol !== 'UDP') {
      ctx.addIssue({ code: 'custom', path: ['forwarding'], message: 'DIRECT_ROUTING is for TCP and UDP services' });
    }
    // A proxy connects to the member's one port: a proxied service gets one listener per port, which a range cannot have.
    if (s.forwarding === 'PROXY' && intervals.some((i) => i.from !== i.to)) {
      ctx.addIssue({ code: 'custom', path: ['ports'], message: 'port ranges need DIRECT_ROUTING (a proxied service gets one listener per port)' });
    }
    if (s.persistence === 'HTTP_COOKIE' && s.protocol !== 'HTTP') ctx.addIssue({ code: 'custom', path: ['persistence'], message: 'HTTP_COOKIE needs an HTTP service' });
    if (s.persistence === 'LAST_SUCCESSFUL' && (s.protocol === 'UDP' || s.also_udp)) {
      ctx.addIssue({ code: 'custom', path: ['persistence'], message: 'LAST_SUCCESSFUL is for TCP-family services without UDP' });
    }
  });

const servicesSchema = z
  .array(PresetServiceSchema)
  .min(1)
  .superRefine((services, ctx) => {
    const names = services.map((s) => s.name);
    names.forEach((n, i) => {
      if (names.indexOf(n) !== i) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `service name ${n} is used twice` });
    });
  });

export const PresetModeSchema = z
  .object({
    description: z.string().min(1),
    services: servicesSchema,
  })
  .strict();

export const PresetSchema = z
  .object({
    /** The preset's name in the API and the CLI; the file is <name>.yaml. */
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lower-case letters, digits and -, at most 63'),
    title: z.string().min(1),
    description: z.string().min(1),
    /** Where the VIP table comes from (document names). */
    source: z.string().min(1),
    /** A preset has either one list of services or several modes (each with its services) and a default mode. */
    services: servicesSchema.optional(),
    modes: z.record(z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/), PresetModeSchema).optional(),
    default_mode: z.string().optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (!p.services === !p.modes) ctx.addIssue({ code: 'custom', path: ['services'], message: 'give exactly one of services and modes' });
    if (p.modes) {
      if (Object.keys(p.modes).length === 0) ctx.addIssue({ code: 'custom', path: ['modes'], message: 'must name at least one mode' });
      if (!p.default_mode || !(p.default_mode in p.modes)) ctx.addIssue({ code: 'custom', path: ['default_mode'], message: 'must name one of the modes' });
    } else if (p.default_mode !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['default_mode'], message: 'only with modes' });
    }
  });

export type Preset = z.output<typeof PresetSchema>;
export type PresetService = z.output<typeof PresetServiceSchema>;
export type PresetMonitor = z.output<typeof PresetMonitorSchema>;

/** The services of a preset in one of its modes (undefined: the default mode); throws for an unknown mode. */
export function servicesOf(preset: Preset, mode?: string): { mode: string | null; services: PresetService[] } {
  if (preset.services) {
    if (mode !== undefined && mode !== null) throw new Error(`preset ${preset.name} has no modes`);
    return { mode: null, services: preset.services };
  }
  const chosen = mode ?? preset.default_mode!;
  const found = preset.modes![chosen];
  if (!found) throw new Error(`preset ${preset.name} has no mode ${chosen} (modes: ${Object.keys(preset.modes!).join(', ')})`);
  return { mode: chosen, services: found.services };
}
