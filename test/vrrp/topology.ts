// Two "amphora" namespaces and a client namespace on a bridge of their own (10.221.0.0/16), the
// processes that run in them (a TCP service standing for the data plane, the election — Argonaut's or
// keepalived — and a paced prober in the client), and the faults injected. Shared by the namespace
// tests (test/vrrp/) and the failover benchmark (bench/failover/). Root only.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createNamespace, createVeth, addAddress, deleteLink, deleteNamespace, ensureBridge, inNamespace, ip } from '../../driver/network/local/ip.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');

export const SERVICE_PORT = 8080;
export const VRRP_PORT = 5112;

export interface Node {
  name: 'a' | 'b';
  ns: string;
  hostVeth: string;
  address: string;
}

export interface Topology {
  prefix: string;
  bridge: string;
  vip: string;
  nodes: [Node, Node];
  client: { ns: string; address: string; hostVeth: string };
  dir: string;
  destroy(): Promise<void>;
}

/** Creates the bridge and the three namespaces. `prefix` from testPrefix('v'); the third octet comes from it. */
export async function createTopology(prefix: string): Promise<Topology> {
  const octet = parseInt(prefix.slice(1, 3), 16) || 1;
  const net = `10.221.${octet}`;
  const bridge = `${prefix}br`;
  const nodes: [Node, Node] = [
    { name: 'a', ns: `${prefix}a`, hostVeth: `${prefix}a`, address: `${net}.1` },
    { name: 'b', ns: `${prefix}b`, hostVeth: `${prefix}b`, address: `${net}.2` },
  ];
  const client = { ns: `${prefix}c`, hostVeth: `${prefix}c`, address: `${net}.10` };
  const dir = await mkdtemp(path.join(tmpdir(), `argonaut-${prefix}-`));
  const destroy = async () => {
    for (const n of [...nodes, client]) {
      await killNamespaceProcesses(n.ns);
      await deleteNamespace(n.ns);
      await deleteLink(n.hostVeth);
    }
    await deleteLink(bridge);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await ensureBridge(bridge);
    for (const n of [...nodes, client]) {
      await createNamespace(n.ns);
      await createVeth({ hostName: n.hostVeth, bridge, peerNamespace: n.ns, peerName: 'eth0' });
      await addAddress('eth0', `${n.address}/16`, { netns: n.ns });
      // The service binds to the VIP also while this namespace does not hold it.
      await sysctl(n.ns, 'net.ipv4.ip_nonlocal_bind=1');
    }
  } catch (err) {
    await destroy();
    throw err;
  }
  return { prefix, bridge, vip: `${net}.100`, nodes, client, dir, destroy };
}

export async function sysctl(ns: string, setting: string): Promise<void> {
  const c = inNamespace(ns, 'sysctl', ['-q', '-w', setting]);
  await run(c.command, c.args);
}

async function killNamespaceProcesses(ns: string): Promise<void> {
  let pids: number[] = [];
  try {
    pids = (await ip(['netns', 'pids', ns])).split('\n').filter(Boolean).map(Number);
  } catch {
    return; // no such namespace
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** The IPv4 addresses on eth0 of a namespace. */
export async function addressesOf(ns: string): Promise<string[]> {
  const out = JSON.parse(await ip(['-j', '-4', 'addr', 'show', 'dev', 'eth0'], { netns: ns })) as { addr_info: { local: string }[] }[];
  return out.flatMap((l) => l.addr_info.map((a) => a.local));
}

export async function macOf(ns: string): Promise<string> {
  const out = JSON.parse(await ip(['-j', 'link', 'show', 'dev', 'eth0'], { netns: ns })) as { address: string }[];
  return out[0].address;
}

/** The namespaces (of the two nodes) whose eth0 carries the VIP now. */
export async function vipHolders(t: Topology): Promise<string[]> {
  const held: string[] = [];
  for (const n of t.nodes) if ((await addressesOf(n.ns)).includes(t.vip)) held.push(n.name);
  return held;
}

/**
 * The MACs that answer an ARP request for the VIP, seen from the client: `arping` broadcasts
 * `count` requests a second apart and prints every reply (a split brain answers twice per request).
 */
export async function arpAnswers(t: Topology, count = 1): Promise<string[]> {
  const c = inNamespace(t.client.ns, 'arping', ['-b', '-c', String(count), '-I', 'eth0', t.vip]);
  let out = '';
  try {
    out = (await run(c.command, c.args)).stdout;
  } catch (err) {
    out = (err as { stdout?: string }).stdout ?? ''; // exit 1 when nobody answered
  }
  const macs = new Set<string>();
  for (const m of out.matchAll(/reply from \S+ \[([0-9A-Fa-f:]{17})\]/g)) macs.add(m[1].toLowerCase());
  return [...macs];
}

// --- processes

export interface Proc {
  child: ChildProcess;
  pid: number;
  /** Everything it wrote on stdout. */
  output(): string;
  running(): boolean;
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Resolves when a stdout line matches (or rejects after timeoutMs). */
  waitFor(re: RegExp, timeoutMs: number): Promise<string>;
}

export function spawnIn(ns: string, command: string, args: string[]): Proc {
  const c = inNamespace(ns, command, args);
  const child = spawn(c.command, c.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: { re: RegExp; from: number; resolve: (l: string) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      const m = w.re.exec(out.slice(w.from));
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m[0]);
      }
    }
  };
  child.stdout!.on('data', (d) => {
    out += d;
    check();
  });
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    pid: child.pid!,
    output: () => out,
    running,
    async kill(signal = 'SIGKILL') {
      if (running()) child.kill(signal);
      await exited;
    },
    waitFor(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const w = { re, from: 0, resolve };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`timed out waiting for ${re} in ${ns}; stdout: ${out.slice(-2000)} stderr: ${err.slice(-2000)}`));
        }, timeoutMs);
        w.resolve = (l) => {
          clearTimeout(timer);
          resolve(l);
        };
        waiters.push(w);
        check();
      });
    },
  };
}

const SERVICE = `
const net = require('node:net');
const [host, port, name] = process.argv.slice(1);
net.createServer((s) => { s.on('error', () => {}); s.end(name + '\\n'); })
  .listen({ host, port: Number(port), backlog: 1024 }, () => console.log('ready'));
`;

/** The service standing for the data plane: answers its name on SERVICE_PORT of every address (VIP included). */
export async function startService(node: Node): Promise<Proc> {
  const p = spawnIn(node.ns, process.execPath, ['-e', SERVICE, '0.0.0.0', String(SERVICE_PORT), node.name]);
  await p.waitFor(/ready/, 10_000);
  return p;
}

export interface ArgonautSettings {
  advertIntervalMs: number;
  authKey?: string;
  preempt?: boolean;
  /** Default: the other node. */
  peers?: string[];
}

export const PRIORITIES = { a: 100, b: 90 } as const;

/** Writes the election config file of a node (read again by a running election on SIGHUP). */
export async function writeArgonautConfig(t: Topology, node: Node, s: ArgonautSettings): Promise<string> {
  const peer = t.nodes.find((n) => n !== node)!;
  const file = path.join(t.dir, `vrrp-${node.name}.json`);
  const config = {
    interface: 'eth0',
    vips: [t.vip],
    localAddress: node.address,
    peers: s.peers ?? [peer.address],
    port: VRRP_PORT,
    priority: PRIORITIES[node.name],
    advertIntervalMs: s.advertIntervalMs,
    preempt: s.preempt ?? false,
    authKey: s.authKey ?? 'argonaut-test-key-0123456789',
  };
  await writeFile(file, JSON.stringify(config));
  return file;
}

/** Writes the election config of a node and starts bin/argonaut-vrrp.ts in its namespace (checking the service). */
export async function startArgonaut(t: Topology, node: Node, s: ArgonautSettings): Promise<Proc> {
  const file = await writeArgonautConfig(t, node, s);
  const p = spawnIn(node.ns, process.execPath, [
    '--import',
    'tsx',
    path.join(ROOT, 'bin/argonaut-vrrp.ts'),
    '--config',
    file,
    '--check-tcp',
    `127.0.0.1:${SERVICE_PORT}`,
  ]);
  await p.waitFor(/"to":"(BACKUP|FAULT)"/, 20_000);
  return p;
}

/** keepalived 2.2.7 as Octavia configures it (VRRPv3 here, unicast, nopreempt), with the same interval and priorities. */
export async function startKeepalived(t: Topology, node: Node, advertIntervalMs: number): Promise<{ main: Proc; pids: () => Promise<number[]> }> {
  const peer = t.nodes.find((n) => n !== node)!;
  const conf = path.join(t.dir, `keepalived-${node.name}.conf`);
  const pidMain = path.join(t.dir, `keepalived-${node.name}.pid`);
  const pidVrrp = path.join(t.dir, `keepalived-vrrp-${node.name}.pid`);
  await writeFile(
    conf,
    `global_defs {
  router_id ${t.prefix}${node.name}
  vrrp_garp_master_refresh 5
  vrrp_garp_master_refresh_repeat 2
  enable_script_security
  script_user root
}
vrrp_script check_service {
  script "/usr/bin/timeout 1 /bin/bash -c '</dev/tcp/127.0.0.1/${SERVICE_PORT}'"
  interval 1
  fall 1
  rise 1
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority ${PRIORITIES[node.name]}
  nopreempt
  accept
  garp_master_refresh 5
  garp_master_refresh_repeat 2
  advert_int ${advertIntervalMs / 1000}
  version 3
  unicast_src_ip ${node.address}
  unicast_peer {
    ${peer.address}
  }
  virtual_ipaddress {
    ${t.vip}/32 dev eth0
  }
  track_script {
    check_service
  }
}
`,
  );
  // A SIGKILLed keepalived leaves its pid files, and its VRRP child may linger as a zombie that
  // kill(pid, 0) still finds: keepalived would then refuse to start ("daemon is already running").
  await rm(pidMain, { force: true });
  await rm(pidVrrp, { force: true });
  const main = spawnIn(node.ns, 'keepalived', ['--dont-fork', '--log-console', '--vrrp', '-f', conf, '-p', pidMain, '-r', pidVrrp, '--log-detail']);
  await waitForFile(pidVrrp, 10_000);
  const pids = async () => {
    const out: number[] = [];
    for (const f of [pidMain, pidVrrp]) {
      try {
        out.push(Number((await readFile(f, 'utf8')).trim()));
      } catch {
        // gone
      }
    }
    return out;
  };
  return { main, pids };
}

async function waitForFile(file: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await readFile(file, 'utf8')).trim()) return;
    } catch {
      // not yet
    }
    if (Date.now() > until) throw new Error(`${file} did not appear within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// --- the client's paced prober

const PROBER = `
const net = require('node:net');
const [host, port, everyMs, timeoutMs, maxMs] = process.argv.slice(1).map((x, i) => i === 0 ? x : Number(x));
const t0 = Date.now();
const results = [];
let stopping = false;
let outstanding = 0;
let lastWho = '';
function attempt() {
  const start = Date.now();
  outstanding++;
  const s = net.connect({ host, port });
  let data = '';
  let done = false;
  const finish = (ok) => {
    if (done) return; done = true; outstanding--;
    clearTimeout(timer); s.destroy();
    const who = ok ? data.trim() : '';
    results.push([start - t0, Date.now() - t0, who]);
    if (who && who !== lastWho) { lastWho = who; process.stdout.write('served by ' + who + '\\n'); }
    if (stopping && outstanding === 0) report();
  };
  const timer = setTimeout(() => finish(false), timeoutMs);
  s.on('data', (d) => (data += d));
  s.on('end', () => finish(data.length > 0));
  s.on('error', () => finish(false));
}
const tick = setInterval(() => { if (Date.now() - t0 > maxMs) stop(); else attempt(); }, everyMs);
function stop() { if (stopping) return; stopping = true; clearInterval(tick); if (outstanding === 0) report(); }
function report() { process.stdout.write(JSON.stringify({ t0, results }) + '\\n'); process.exit(0); }
process.on('SIGTERM', stop);
console.log('started ' + t0);
`;

export interface ProbeResult {
  /** [start, end] in ms since 1970, and who answered ('' = failed). */
  attempts: { start: number; end: number; who: string }[];
}

export interface Prober {
  /** Resolves when an answer came from `who` after the previous answers came from someone else (or rejects after timeoutMs). */
  servedBy(who: string, timeoutMs: number): Promise<void>;
  /** Stops sending, waits for the outstanding attempts and returns every attempt. */
  finish(): Promise<ProbeResult>;
}

/** Connects to the VIP every `everyMs` ms (each attempt its own connection, `timeoutMs` at most), for at most `maxMs`. */
export async function startProber(t: Topology, opts: { everyMs: number; timeoutMs: number; maxMs: number }): Promise<Prober> {
  const p = spawnIn(t.client.ns, process.execPath, ['-e', PROBER, t.vip, String(SERVICE_PORT), String(opts.everyMs), String(opts.timeoutMs), String(opts.maxMs)]);
  await p.waitFor(/started \d+/, 10_000);
  return {
    async servedBy(who, timeoutMs) {
      await p.waitFor(new RegExp(`served by ${who}\\n`), timeoutMs);
    },
    async finish() {
      if (p.running()) p.child.kill('SIGTERM');
      await new Promise<void>((resolve) => (p.child.exitCode !== null ? resolve() : p.child.once('exit', () => resolve())));
      const line = p.output().split('\n').find((l) => l.startsWith('{'));
      if (!line) throw new Error(`prober gave no result: ${p.output().slice(-500)}`);
      const { t0, results } = JSON.parse(line) as { t0: number; results: [number, number, string][] };
      return { attempts: results.map(([s, e, who]) => ({ start: t0 + s, end: t0 + e, who })) };
    },
  };
}

/**
 * The service gap around a fault at `faultAt`: the longest time between two consecutive successful
 * completions from the last success before the fault on. Null when nothing succeeded after it.
 */
export function serviceGap(r: ProbeResult, faultAt: number): { gapMs: number; lastBefore: number; firstAfter: number; servedBy: string } | null {
  const ok = r.attempts.filter((a) => a.who).sort((x, y) => x.end - y.end);
  const before = ok.filter((a) => a.end <= faultAt);
  let prev = before.length ? before[before.length - 1] : null;
  if (!prev) return null;
  let best = { gapMs: 0, lastBefore: prev.end, firstAfter: prev.end, servedBy: prev.who };
  for (const a of ok.filter((x) => x.end > faultAt)) {
    if (a.end - prev.end > best.gapMs) best = { gapMs: a.end - prev.end, lastBefore: prev.end, firstAfter: a.end, servedBy: a.who };
    prev = a;
  }
  if (best.firstAfter === best.lastBefore && !ok.some((x) => x.end > faultAt)) return null;
  return best;
}

// --- faults

export type Fault = 'kill-election' | 'kill-dataplane' | 'interface-down' | 'link-cut';

/** `ip link set eth0 down` inside the node (its own view: FAULT) / up again. */
export async function setInterface(node: Node, up: boolean): Promise<void> {
  await ip(['link', 'set', 'eth0', up ? 'up' : 'down'], { netns: node.ns });
}

/**
 * Cuts the node's link on the host side without the node seeing a carrier change: its veth leaves
 * the bridge (the node keeps an up interface that reaches nobody). Restoring puts it back.
 */
export async function setLink(t: Topology, node: Node, connected: boolean): Promise<void> {
  await ip(['link', 'set', node.hostVeth, ...(connected ? ['master', t.bridge] : ['nomaster'])]);
}

/** The election's state changes and VIP events from its JSON log, one short line each (for failure reports). */
export function electionEvents(p: Proc): string {
  return p
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { time: number; localAddress?: string; msg: string; reason?: string; err?: unknown })
    .filter((j) => /->|VIPs|guardian|advert|cannot/.test(j.msg))
    .map((j) => `${new Date(j.time).toISOString().slice(17, 23)} ${j.localAddress ?? ''} ${j.msg}${j.reason ? ` (${j.reason})` : ''}${j.err ? ` ${JSON.stringify(j.err)}` : ''}`)
    .join('\n');
}

// --- VIP events, timestamped by the kernel's notification (ip -ts monitor)

export interface VipEvent {
  node: 'a' | 'b';
  /** ms since 1970, as `ip -ts` stamped the notification. */
  at: number;
  added: boolean;
}

export interface VipMonitor {
  events: VipEvent[];
  /** Longest time both held the VIP, from the events (holders at the start given); null if they never did. */
  longestOverlapMs(initial: ('a' | 'b')[], until?: number): number | null;
  stop(): Promise<void>;
}

/** Follows the VIP's additions and removals in both nodes (`ip -n NS -ts -o monitor address`). */
export async function monitorVip(t: Topology): Promise<VipMonitor> {
  const events: VipEvent[] = [];
  const procs = t.nodes.map((n) => {
    const child = spawn('ip', ['-n', n.ns, '-ts', '-o', 'monitor', 'address', 'dev', 'eth0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let rest = '';
    child.stdout!.on('data', (d: Buffer) => {
      const lines = (rest + d.toString()).split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        // [2026-12-06T13:33:01.123456] Deleted 2: eth0    inet 10.221.1.100/32 scope global eth0 ...
        const m = /^\[([0-9T:.-]+)\]\s+(Deleted\s+)?\d+:\s+eth0\s+inet\s+(\S+)\//.exec(line);
        if (m && m[3] === t.vip) events.push({ node: n.name, at: Date.parse(m[1].slice(0, 23)), added: !m[2] });
      }
    });
    return child;
  });
  await new Promise((r) => setTimeout(r, 100)); // subscribed
  return {
    events,
    longestOverlapMs(initial, until = Date.now()) {
      const held = new Set(initial);
      let since = held.size > 1 ? -Infinity : null;
      let longest: number | null = null;
      for (const e of [...events].sort((x, y) => x.at - y.at)) {
        if (e.added) held.add(e.node);
        else held.delete(e.node);
        if (held.size > 1 && since === null) since = e.at;
        if (held.size < 2 && since !== null) {
          longest = Math.max(longest ?? 0, e.at - since);
          since = null;
        }
      }
      if (since !== null) longest = Math.max(longest ?? 0, until - since);
      return longest;
    },
    async stop() {
      for (const p of procs) {
        if (p.exitCode === null) {
          const exited = new Promise((r) => p.once('exit', r));
          p.kill();
          await exited;
        }
      }
    },
  };
}

/** The guardian processes (bash "vrrp-guardian") whose last peer is one of `peers`, from /proc. */
export async function guardiansFor(peers: string[]): Promise<{ pid: number; peer: string }[]> {
  const found: { pid: number; peer: string }[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let args: string[];
    try {
      args = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0').filter(Boolean);
    } catch {
      continue; // exited meanwhile
    }
    if (args[3] !== 'vrrp-guardian') continue;
    const peer = args.at(-1)!;
    if (peers.includes(peer)) found.push({ pid: Number(entry), peer });
  }
  return found;
}
