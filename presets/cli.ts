// `argonaut preset`: lists, shows and applies presets through the API (/v2/argonaut/presets), with a
// Keystone token (X-Auth-Token) or, against a noauth API, a project header (X-Project-Id).
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';

export const PRESET_HELP = `Usage: argonaut preset <list|show|apply> [options]

Ready-made load balancer designs (presets/README.md), through the API's /v2/argonaut/presets.

  preset list
      Name, title, modes and origin of every preset.
  preset show NAME
      Its services: ports, protocol, forwarding, persistence, health monitor and why.
  preset apply NAME (--vip-subnet-id ID | --vip-network-id ID | --vip-port-id ID) [--vip-address IP]
                    [--name NAME] [--description TEXT] [--project-id ID] [--mode MODE]
                    [--member SERVICE=ADDRESS[:PORT]]... [--member-all ADDRESS]...
                    [--members-file FILE] [--provider NAME] [--flavor-id ID]
      Creates the load balancer in one call (all or nothing) and prints it. --member adds a member to
      one service (IPv6 with a port: SERVICE=[ADDRESS]:PORT); --member-all adds one to every service
      of the mode; --members-file is JSON or YAML {SERVICE: [{address, protocol_port, weight, ...}]}.
      Without a port a member gets the service's port.

Options:
  --url URL         The API (default: $ARGONAUT_URL, else http://127.0.0.1:9876).
  --token TOKEN     A Keystone token (default: $OS_TOKEN).
  --project ID      Against a noauth API: the project to act as (X-Project-Id).
  --json            Print the API's JSON answer instead of a table.
  -h, --help        Show this help.
`;

export interface PresetIo {
  out(text: string): void;
  err(text: string): void;
}

const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  project: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'vip-subnet-id': { type: 'string' },
  'vip-network-id': { type: 'string' },
  'vip-port-id': { type: 'string' },
  'vip-address': { type: 'string' },
  name: { type: 'string' },
  description: { type: 'string' },
  'project-id': { type: 'string' },
  mode: { type: 'string' },
  member: { type: 'string', multiple: true },
  'member-all': { type: 'string', multiple: true },
  'members-file': { type: 'string' },
  provider: { type: 'string' },
  'flavor-id': { type: 'string' },
} as const;

export function parsePresetArgs(args: string[]) {
  return parseArgs({ args, allowPositionals: true, options: OPTIONS, strict: true });
}

type Parsed = ReturnType<typeof parsePresetArgs>;
type Member = { address: string; protocol_port?: number };

/** SERVICE=ADDRESS, SERVICE=ADDRESS:PORT, SERVICE=[IPv6]:PORT. */
export function parseMemberArg(text: string): { service: string; member: Member } {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new Error(`--member ${text}: expected SERVICE=ADDRESS[:PORT]`);
  const service = text.slice(0, eq);
  return { service, member: parseAddress(text.slice(eq + 1), `--member ${text}`) };
}

function parseAddress(text: string, what: string): Member {
  if (isIP(text)) return { address: text };
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  if (!m || !isIP(m[1]!)) throw new Error(`${what}: expected an IP address, ADDRESS:PORT or [IPv6]:PORT`);
  return { address: m[1]!, protocol_port: Number(m[2]) };
}

class Api {
  constructor(
    private readonly url: string,
    private readonly headers: Record<string, string>,
  ) {}

  async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(this.url.replace(/\/+$/, '') + path, {
      method,
      headers: { Accept: 'application/json', ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...this.headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(120_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: shown as text
    }
    return { status: res.status, body: parsed };
  }
}

const faultOf = (r: { status: number; body: any }) => `${r.status}: ${typeof r.body === 'object' && r.body?.faultstring ? r.body.faultstring : JSON.stringify(r.body)}`;

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

function servicesTable(services: any[]): string {
  const rows = [['SERVICE', 'PORTS', 'PROTOCOL', 'FORWARDING', 'PERSISTENCE', 'MONITOR', 'LISTENERS']];
  for (const s of services) {
    const m = s.healthmonitor;
    const check = m.type === 'HTTP' || m.type === 'HTTPS' ? `${m.type} ${m.http_method ?? 'GET'} ${m.url_path ?? '/'}${m.expected_body ? ` "${m.expected_body}"` : ''}` : m.type;
    rows.push([s.name, s.ports, s.also_udp ? `${s.protocol}+UDP` : s.protocol, s.forwarding_method, s.session_persistence ?? '-', check, s.listeners.join(',')]);
  }
  return table(rows);
}

export async function runPreset(parsed: Parsed, io: PresetIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const v = parsed.values;
  const [sub, name] = parsed.positionals;
  const headers: Record<string, string> = {};
  const token = v.token ?? env.OS_TOKEN;
  if (token) headers['X-Auth-Token'] = token;
  if (v.project) headers['X-Project-Id'] = v.project;
  const api = new Api(v.url ?? env.ARGONAUT_URL ?? 'http://127.0.0.1:9876', headers);

  if (sub === 'list') {
    const r = await api.call('GET', '/v2/argonaut/presets');
    if (r.status !== 200) return fail(io, faultOf(r));
    if (v.json) io.out(JSON.stringify(r.body, null, 2) + '\n');
    else io.out(table([['NAME', 'MODES', 'ORIGIN', 'TITLE'], ...r.body.presets.map((p: any) => [p.name, p.modes.length ? p.modes.map((m: string) => (m === p.default_mode ? `${m}*` : m)).join(',') : '-', p.built_in ? 'built-in' : 'operator', p.title])]));
    return 0;
  }
  if (!name || (sub !== 'show' && sub !== 'apply')) return fail(io, `expected list, show NAME or apply NAME\n\n${PRESET_HELP}`, 2);
  const shown = await api.call('GET', `/v2/argonaut/presets/${encodeURIComponent(name)}`);
  if (shown.status !== 200) return fail(io, faultOf(shown));
  const preset = shown.body.preset;

  if (sub === 'show') {
    if (v.json) {
      io.out(JSON.stringify(shown.body, null, 2) + '\n');
      return 0;
    }
    io.out(`${preset.name}: ${preset.title}\n${preset.description}\nSource: ${preset.source}\n\n`);
    if (preset.services) io.out(servicesTable(preset.services));
    else {
      for (const [mode, details] of Object.entries<any>(preset.mode_details)) {
        io.out(`Mode ${mode}${mode === preset.default_mode ? ' (default)' : ''}: ${details.description}\n${servicesTable(details.services)}\n`);
      }
    }
    return 0;
  }

  let members: Record<string, unknown[]> = {};
  try {
    if (v['members-file']) members = parse(readFileSync(v['members-file'], 'utf8')) ?? {};
    if (typeof members !== 'object' || Array.isArray(members)) throw new Error(`--members-file ${v['members-file']}: expected a map of service names to member lists`);
    const services: any[] = preset.services ?? preset.mode_details[v.mode ?? preset.default_mode]?.services ?? [];
    for (const address of v['member-all'] ?? []) {
      const member = parseAddress(address, `--member-all ${address}`);
      for (const s of services) members[s.name] = [...(members[s.name] ?? []), { ...member }];
    }
    for (const text of v.member ?? []) {
      const { service, member } = parseMemberArg(text);
      members[service] = [...(members[service] ?? []), member];
    }
  } catch (e) {
    return fail(io, (e as Error).message, 2);
  }
  const request: Record<string, unknown> = { members };
  const pass: Array<[keyof typeof v, string]> = [
    ['vip-subnet-id', 'vip_subnet_id'], ['vip-network-id', 'vip_network_id'], ['vip-port-id', 'vip_port_id'], ['vip-address', 'vip_address'],
    ['name', 'name'], ['description', 'description'], ['project-id', 'project_id'], ['mode', 'mode'], ['provider', 'provider'], ['flavor-id', 'flavor_id'],
  ];
  for (const [option, field] of pass) if (v[option] !== undefined) request[field] = v[option];
  const r = await api.call('POST', `/v2/argonaut/presets/${encodeURIComponent(name)}/apply`, { preset: request });
  if (r.status !== 201) return fail(io, faultOf(r));
  if (v.json) {
    io.out(JSON.stringify(r.body, null, 2) + '\n');
    return 0;
  }
  const lb = r.body.loadbalancer;
  io.out(`Load balancer ${lb.id} (${lb.name}) created from preset ${name}: VIP ${lb.vip_address}, ${lb.provisioning_status}\n`);
  io.out(table([['LISTENER', 'PROTOCOL', 'PORT', 'ID'], ...lb.listeners.map((l: any) => [l.name, l.protocol, String(l.protocol_port), l.id])]));
  return 0;
}

function fail(io: PresetIo, message: string, code = 1): number {
  io.err(`argonaut preset: ${message}\n`);
  return code;
}
