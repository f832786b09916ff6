// Thin wrappers around iproute2's `ip` (run with execFile and an argument list, never a shell
// string). Every function takes `netns`: the namespace the command acts in (`ip -n`), the host's
// when absent. Deletions are idempotent: deleting what is already gone succeeds, any other failure
// is thrown. Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for namespaces).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Where {
  /** The namespace the command acts in; the host's when absent. */
  netns?: string;
}

export class IpCommandError extends Error {
  constructor(
    readonly args: string[],
    readonly stderr: string,
    readonly exitCode: number | null,
  ) {
    super(`ip ${args.join(' ')} failed${exitCode === null ? '' : ` (exit ${exitCode})`}: ${stderr.trim() || 'no error output'}`);
  }
}

/** Runs `ip [-n netns] args...` and returns its standard output. */
export async function ip(args: string[], where: Where = {}): Promise<string> {
  const full = where.netns ? ['-n', where.netns, ...args] : args;
  try {
    const { stdout } = await run('ip', full, { maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string; code?: string | number };
    if (typeof e.code === 'string') throw err; // ENOENT etc.: ip itself could not be run
    throw new IpCommandError(full, e.stderr ?? '', typeof e.code === 'number' ? e.code : null);
  }
}

/** `ip -j ...`: the parsed JSON output (an empty output is an empty list). */
async function ipJson<T>(args: string[], where: Where = {}): Promise<T[]> {
  const out = (await ip(['-j', ...args], where)).trim();
  return out ? (JSON.parse(out) as T[]) : [];
}

/** Runs a deletion; when it fails, succeeds anyway if `stillThere` says the object is gone. */
async function idempotentDelete(args: string[], where: Where, stillThere: () => Promise<boolean>): Promise<void> {
  try {
    await ip(args, where);
  } catch (err) {
    if (await stillThere()) throw err;
  }
}

// --- namespaces

export async function listNamespaces(): Promise<string[]> {
  return (await ipJson<{ name: string }>(['netns', 'list'])).map((n) => n.name);
}

export async function namespaceExists(name: string): Promise<boolean> {
  return (await listNamespaces()).includes(name);
}

/** Creates a namespace and brings its loopback up (an agent inside uses 127.0.0.1). */
export async function createNamespace(name: string): Promise<void> {
  await ip(['netns', 'add', name]);
  await ip(['link', 'set', 'lo', 'up'], { netns: name });
}

export async function deleteNamespace(name: string): Promise<void> {
  await idempotentDelete(['netns', 'delete', name], {}, () => namespaceExists(name));
}

/** Pids of the processes running in a namespace. */
export async function namespacePids(name: string): Promise<number[]> {
  const out = await ip(['netns', 'pids', name]);
  return out.split('\n').filter(Boolean).map(Number);
}

/** The command line that runs `command args...` inside a namespace. */
export function inNamespace(name: string, command: string, args: string[]): { command: string; args: string[] } {
  return { command: 'ip', args: ['netns', 'exec', name, command, ...args] };
}

/** Sets a kernel parameter, `setting` as `sysctl -w` takes it (net.ipv4.ip_forward=1), in `where.netns` (the host's when absent). */
export async function setSysctl(setting: string, where: Where = {}): Promise<void> {
  const cmd = where.netns ? inNamespace(where.netns, 'sysctl', ['-q', '-w', setting]) : { command: 'sysctl', args: ['-q', '-w', setting] };
  await run(cmd.command, cmd.args);
}

// --- links

export interface LinkInfo {
  name: string;
  /** bridge, veth, ... (undefined for plain devices such as lo). */
  kind: string | undefined;
  /** The bridge it is attached to. */
  master: string | undefined;
  mac: string | undefined;
  up: boolean;
}

export async function listLinks(where: Where = {}): Promise<LinkInfo[]> {
  type Raw = { ifname: string; flags: string[]; master?: string; address?: string; linkinfo?: { info_kind?: string } };
  return (await ipJson<Raw>(['-d', 'link', 'show'], where)).map((l) => ({
    name: l.ifname,
    kind: l.linkinfo?.info_kind,
    master: l.master,
    mac: l.address,
    up: l.flags.includes('UP'),
  }));
}

export async function linkExists(name: string, where: Where = {}): Promise<boolean> {
  return (await listLinks(where)).some((l) => l.name === name);
}

/** Creates a bridge (if missing) with an address (if given, e.g. 172.31.0.1/24) and brings it up. */
export async function ensureBridge(name: string, opts: Where & { address?: string } = {}): Promise<void> {
  const where = { netns: opts.netns };
  if (!(await linkExists(name, where))) await ip(['link', 'add', name, 'type', 'bridge'], where);
  if (opts.address) await addAddress(name, opts.address, where);
  await setLinkUp(name, where);
}

export async function deleteLink(name: string, where: Where = {}): Promise<void> {
  await idempotentDelete(['link', 'delete', name], where, () => linkExists(name, where));
}

export interface VethOptions extends Where {
  /** The end that stays where `netns` says (the host by default). */
  hostName: string;
  /** The namespace the other end goes to, named `peerName` there. */
  peerNamespace: string;
  peerName: string;
  peerMac?: string;
  /** A bridge (in `netns`) the host end is attached to. */
  bridge?: string;
}

/** Creates a veth pair with one end in another namespace, and brings both ends up. */
export async function createVeth(opts: VethOptions): Promise<void> {
  const where = { netns: opts.netns };
  const peer = { netns: opts.peerNamespace };
  // The peer is created directly in its namespace: its name never clashes with the host's interfaces.
  await ip(['link', 'add', opts.hostName, 'type', 'veth', 'peer', 'name', opts.peerName, 'netns', opts.peerNamespace], where);
  if (opts.peerMac) await setMac(opts.peerName, opts.peerMac, peer);
  if (opts.bridge) await ip(['link', 'set', opts.hostName, 'master', opts.bridge], where);
  await setLinkUp(opts.hostName, where);
  await setLinkUp(opts.peerName, peer);
}

export async function setLinkUp(name: string, where: Where = {}): Promise<void> {
  await ip(['link', 'set', name, 'up'], where);
}

export async function setMac(name: string, mac: string, where: Where = {}): Promise<void> {
  await ip(['link', 'set', name, 'address', mac], where);
}

/**
 * Sends a gratuitous ARP for every IPv4 address of a device, so that the neighbours' ARP caches
 * point at it at once: an address that moved from another host (a VIP taken over by a new amphora
 * after a failover) is otherwise unreachable until their entries expire (up to a minute). No
 * arping needed: with arp_notify on, the kernel announces the device's addresses whenever its
 * hardware address is set, even to the same value.
 */
export async function announceAddresses(device: string, where: Where = {}): Promise<void> {
  await setSysctl(`net.ipv4.conf.${device}.arp_notify=1`, where);
  const mac = (await listLinks(where)).find((l) => l.name === device)?.mac;
  if (!mac) throw new Error(`cannot announce the addresses of ${device}${where.netns ? ` in ${where.netns}` : ''}: no such device`);
  await setMac(device, mac, where);
}

// --- addresses and routes

/** Addresses of a device as CIDRs (e.g. 172.31.0.5/24), link-local ones (fe80::/64) left out. */
export async function listAddresses(device: string, where: Where = {}): Promise<string[]> {
  type Raw = { addr_info: Array<{ local: string; prefixlen: number; scope: string }> };
  const links = await ipJson<Raw>(['addr', 'show', 'dev', device], where);
  return links.flatMap((l) => l.addr_info.filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`));
}

/** Adds an address (CIDR) to a device; an address already there is left as it is. */
export async function addAddress(device: string, cidr: string, where: Where = {}): Promise<void> {
  await ip(['addr', 'replace', cidr, 'dev', device], where);
}

export async function deleteAddress(device: string, cidr: string, where: Where = {}): Promise<void> {
  await idempotentDelete(['addr', 'delete', cidr, 'dev', device], where, async () => (await linkExists(device, where)) && (await listAddresses(device, where)).includes(cidr));
}

/** Sets (or replaces) the default route of a namespace. */
export async function setDefaultRoute(gateway: string, where: Where = {}): Promise<void> {
  await ip(['route', 'replace', 'default', 'via', gateway], where);
}

export async function defaultGateway(where: Where = {}): Promise<string | undefined> {
  const routes = await ipJson<{ dst: string; gateway?: string }>(['route', 'show', 'default'], where);
  return routes.find((r) => r.dst === 'default')?.gateway;
}
