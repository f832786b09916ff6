/**
 * Failover benchmark: the service gap seen by a client when the MASTER amphora fails, for Argonaut's
 * election (bin/argonaut-vrrp.ts) and for keepalived 2.2.7 (VRRPv3, unicast peers, nopreempt, as
 * Octavia's amphora template configures it), in the same network namespaces, at the same advert
 * intervals and priorities (MASTER 100, BACKUP 90).
 *
 * For every implementation × interval × fault, `--count` failovers: a fresh pair (the MASTER started
 * first), a client probing the VIP with a new TCP connection every 5 ms (200 ms timeout each), the
 * fault injected into the MASTER, and the gap = the longest time between two successful answers from
 * the last one before the fault on. Also whether both ended up holding the VIP (split brain) once the
 * BACKUP had taken over. Prints median and worst per cell and the ratio Argonaut/keepalived.
 *
 *   flock /tmp/argonaut-bench.lock npx tsx bench/failover/run.ts [--count 10] [--intervals 1000,100,50]
 *       [--faults kill-election,kill-dataplane,interface-down,link-cut] [--impl argonaut,keepalived] [--json FILE]
 *
 * Root; Debian packages keepalived (2.2.7), iproute2. Addresses 10.221.0.0/16 only, in namespaces it
 * creates and removes.
 */
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { ip } from '../../driver/network/local/ip.ts';
import { IS_ROOT, testPrefix } from '../../test/driver/local/netns-helpers.ts';
import {
  createTopology,
  serviceGap,
  setInterface,
  setLink,
  startArgonaut,
  startKeepalived,
  startProber,
  startService,
  vipHolders,
  type Fault,
  type Proc,
  type Topology,
} from '../../test/vrrp/topology.ts';

const HELP = `bench/failover/run.ts: service gap of a VIP failover, Argonaut's election against keepalived 2.2.7

Usage: flock /tmp/argonaut-bench.lock npx tsx bench/failover/run.ts [options]   (root)

Options:
  --count N          failovers per implementation, interval and fault (default 10)
  --intervals LIST   advert intervals in ms (default 1000,100,50)
  --faults LIST      kill-election, kill-dataplane (Argonaut only), interface-down, link-cut (default: all)
  --impl LIST        argonaut, keepalived (default: both)
  --json FILE        also write every measurement as JSON
  -h, --help         show this help
`;

type Impl = 'argonaut' | 'keepalived';
const ALL_FAULTS: Fault[] = ['kill-election', 'kill-dataplane', 'interface-down', 'link-cut'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Measurement {
  impl: Impl;
  intervalMs: number;
  fault: Fault;
  gapMs: number | null;
  splitBrain: boolean;
}

interface Running {
  stop(): Promise<void>;
  /** SIGKILL of the election of node a (all keepalived processes of a). */
  killA(): Promise<void>;
}

async function startPair(t: Topology, impl: Impl, intervalMs: number): Promise<Running> {
  const [a, b] = t.nodes;
  if (impl === 'argonaut') {
    const pa = await startArgonaut(t, a, { advertIntervalMs: intervalMs });
    await pa.waitFor(/"to":"MASTER"/, 20_000);
    const pb = await startArgonaut(t, b, { advertIntervalMs: intervalMs });
    return {
      async stop() {
        await pa.kill('SIGTERM');
        await pb.kill('SIGTERM');
      },
      killA: () => pa.kill('SIGKILL'),
    };
  }
  const ka = await startKeepalived(t, a, intervalMs);
  await waitFor(async () => (await vipHolders(t)).includes('a'), 20_000, 'keepalived a to take the VIP');
  const kb = await startKeepalived(t, b, intervalMs);
  await sleep(Math.max(300, 2 * intervalMs));
  const killAll = async (k: { main: Proc; pids: () => Promise<number[]> }, signal: NodeJS.Signals) => {
    for (const pid of await k.pids()) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
    await k.main.kill(signal);
  };
  return {
    async stop() {
      await killAll(ka, 'SIGKILL');
      await killAll(kb, 'SIGKILL');
    },
    killA: () => killAll(ka, 'SIGKILL'),
  };
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function reset(t: Topology, services: Record<'a' | 'b', Proc>): Promise<void> {
  for (const n of t.nodes) {
    await setInterface(n, true);
    await setLink(t, n, true);
    await ip(['addr', 'del', `${t.vip}/32`, 'dev', 'eth0'], { netns: n.ns }).catch(() => undefined);
    if (!services[n.name].running()) services[n.name] = await startService(n);
  }
}

async function oneFailover(t: Topology, services: Record<'a' | 'b', Proc>, impl: Impl, intervalMs: number, fault: Fault): Promise<Measurement> {
  await reset(t, services);
  const pair = await startPair(t, impl, intervalMs);
  const [a] = t.nodes;
  const maxMs = 10 * intervalMs + 15_000;
  const prober = await startProber(t, { everyMs: 5, timeoutMs: 200, maxMs });
  let splitBrain = false;
  try {
    await prober.servedBy('a', 5000);
    await sleep(200);
    const faultAt = Date.now();
    if (fault === 'kill-election') await pair.killA();
    else if (fault === 'kill-dataplane') await services.a.kill('SIGKILL');
    else if (fault === 'interface-down') await setInterface(a, false);
    else await setLink(t, a, false);
    await waitFor(async () => (await vipHolders(t)).includes('b'), maxMs - 1000, `${impl} b to take the VIP after ${fault}`);
    // keepalived's killed MASTER may keep serving (split brain): then b may never be the one that answers.
    await prober.servedBy('b', fault === 'kill-election' && impl === 'keepalived' ? 3 * intervalMs + 2000 : maxMs - 1000).catch(() => undefined);
    await sleep(Math.max(300, 2 * intervalMs));
    const holders = await vipHolders(t);
    // a's own view: with the interface down or the link cut it cannot answer anyway; a killed election can.
    splitBrain = fault.startsWith('kill') && holders.length > 1;
    const gap = serviceGap(await prober.finish(), faultAt);
    return { impl, intervalMs, fault, gapMs: gap?.gapMs ?? null, splitBrain };
  } finally {
    await prober.finish().catch(() => undefined);
    await pair.stop();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function table(results: Measurement[], intervals: number[], faults: Fault[], impls: Impl[]): string {
  const rows: string[][] = [['interval', 'fault', ...impls.flatMap((i) => [`${i} median`, `${i} worst`]), 'ratio (median)', 'keepalived split brain']];
  for (const intervalMs of intervals) {
    for (const fault of faults) {
      const cell = (impl: Impl) => results.filter((r) => r.impl === impl && r.intervalMs === intervalMs && r.fault === fault);
      const stats = impls.map((impl) => {
        const ms = cell(impl).map((r) => r.gapMs ?? Infinity);
        return { n: ms.length, median: median(ms), worst: ms.length ? Math.max(...ms) : NaN };
      });
      if (stats.every((s) => s.n === 0)) continue;
      const fmt = (x: number) => (Number.isNaN(x) ? '-' : x === Infinity ? 'no service' : `${(x / 1000).toFixed(3)} s`);
      const ka = stats[impls.indexOf('keepalived')];
      const ar = stats[impls.indexOf('argonaut')];
      const ratio = ka && ar && ka.n && ar.n && ka.median > 0 ? (ar.median / ka.median).toFixed(2) : '-';
      const kaCells = cell('keepalived');
      const split = kaCells.length ? `${kaCells.filter((r) => r.splitBrain).length}/${kaCells.length}` : '-';
      rows.push([`${intervalMs / 1000} s`, fault, ...stats.flatMap((s) => [fmt(s.median), fmt(s.worst)]), ratio, split]);
    }
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ')).join('\n');
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      count: { type: 'string', default: '10' },
      intervals: { type: 'string', default: '1000,100,50' },
      faults: { type: 'string', default: ALL_FAULTS.join(',') },
      impl: { type: 'string', default: 'argonaut,keepalived' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (!IS_ROOT) {
    process.stderr.write('bench/failover: needs root (network namespaces)\n');
    return 2;
  }
  const count = Number(values.count);
  const intervals = values.intervals.split(',').map(Number);
  const faults = values.faults.split(',') as Fault[];
  const impls = values.impl.split(',') as Impl[];
  if (!Number.isInteger(count) || count < 1 || intervals.some((x) => !(x >= 10)) || faults.some((f) => !ALL_FAULTS.includes(f)) || impls.some((i) => i !== 'argonaut' && i !== 'keepalived')) {
    process.stderr.write(`bench/failover: bad arguments\n\n${HELP}`);
    return 2;
  }
  if (impls.includes('keepalived')) {
    const v = spawnSync('keepalived', ['--version'], { encoding: 'utf8' });
    process.stdout.write(`keepalived: ${(v.stderr || v.stdout || 'not found').split('\n')[0]}\n`);
  }
  const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
  process.stdout.write(`load average at start: ${load()}\n`);
  const t = await createTopology(testPrefix('v'));
  const results: Measurement[] = [];
  try {
    const services = { a: await startService(t.nodes[0]), b: await startService(t.nodes[1]) };
    for (const intervalMs of intervals) {
      for (const fault of faults) {
        for (const impl of impls) {
          if (impl === 'keepalived' && fault === 'kill-dataplane') continue; // its track_script is not part of the comparison
          for (let i = 0; i < count; i++) {
            const m = await oneFailover(t, services, impl, intervalMs, fault);
            results.push(m);
            process.stdout.write(`${impl} ${intervalMs} ms ${fault} #${i + 1}: gap ${m.gapMs ?? 'none'} ms${m.splitBrain ? ', SPLIT BRAIN (both hold the VIP)' : ''}\n`);
          }
        }
      }
    }
  } finally {
    await t.destroy();
  }
  process.stdout.write(`\n${table(results, intervals, faults, impls)}\n\nload average at end: ${load()}\n`);
  if (values.json) await writeFile(values.json, JSON.stringify(results, null, 2));
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench/failover: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
