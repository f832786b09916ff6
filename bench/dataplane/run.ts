/**
 * Data plane benchmark: Argonaut against HAProxy (configured as Octavia's amphora template configures
 * it), same member servers, same number of workers/threads, several alternating rounds in one run.
 * Prints the median of each scenario and the ratio Argonaut/HAProxy.
 *
 *   npx tsx bench/dataplane/run.ts [--rounds 3] [--duration 5] [--warmup 2] [--connections 50] [--workers N]
 *                                  [--wrk-threads 2] [--only TEXT] [--tls-key ec|rsa]
 *
 * Every scenario first warms both proxies up (JIT, connection pools) for --warmup seconds, unmeasured;
 * then rounds alternate who goes first. Besides throughput it reports the CPU time each proxy spent per
 * request (or per GiB): on a machine shared with other jobs throughput swings with the load, CPU cost
 * per unit much less. The load average is printed at the start and the end so noisy runs are visible.
 *
 * Needs the Debian packages wrk, haproxy and nginx-light (members); the HTTP/2 scenario runs when h2load
 * (nghttp2-client) is there. Traffic stays on 127.0.0.1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { renderArgonautConfig, renderHaproxyConfig, renderNginxConfig, PORTS, type BenchTls } from './configs.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '50' },
    workers: { type: 'string', default: String(availableParallelism()) },
    'wrk-threads': { type: 'string', default: '2' },
    only: { type: 'string' },
    'tls-key': { type: 'string', default: 'ec' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(`Data plane benchmark: Argonaut against HAProxy (Octavia's template, nbthread = workers), same nginx members.

Usage: npx tsx bench/dataplane/run.ts [options]
  --rounds N         measured rounds per scenario, alternating who goes first (default 3); medians are reported
  --duration S       seconds per measured round (default 5)
  --warmup S         unmeasured seconds per side before a scenario's rounds (default 2; 0 = none)
  --connections N    wrk connections for the request scenarios (default 50; the 1 MiB scenario uses 10)
  --workers N        Argonaut workers and HAProxy nbthread (default: available cores, ${availableParallelism()} here)
  --wrk-threads N    wrk threads (default 2)
  --only TEXT        run only the scenarios whose name contains TEXT (e.g. "1 MiB", "new connection", "TLS")
  --tls-key ec|rsa   key of the TERMINATED_HTTPS certificate both proxies serve: EC P-256 (default) or RSA 2048

Prints each round, then a table of medians: throughput, the ratio Argonaut/HAProxy with its target, and the
CPU time each proxy spent per request or per GiB (less sensitive to other jobs on the machine than
throughput). The load average is printed at the start and the end. Needs wrk, haproxy and nginx-light.
`);
  process.exit(0);
}
const rounds = Number(values.rounds);
const duration = Number(values.duration);
const warmup = Number(values.warmup);
const connections = Number(values.connections);
const workers = Number(values.workers);
const wrkThreads = Number(values['wrk-threads']);
for (const [name, v] of Object.entries({ rounds, duration, warmup: Number(values.warmup), connections, workers, 'wrk-threads': wrkThreads })) {
  if (!Number.isFinite(v) || v < 0 || (name !== 'warmup' && v === 0)) {
    process.stderr.write(`--${name} must be a positive number\n`);
    process.exit(2);
  }
}

const tlsKey = values['tls-key'];
if (tlsKey !== 'ec' && tlsKey !== 'rsa') {
  process.stderr.write('--tls-key must be ec or rsa\n');
  process.exit(2);
}

for (const tool of ['wrk', 'haproxy', 'nginx', 'openssl']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    process.stderr.write(`${tool} is missing: apt-get install -y wrk haproxy nginx-light\n`);
    process.exit(2);
  }
}

const dir = mkdtempSync(path.join(tmpdir(), 'argonaut-bench-'));
// nginx workers run unprivileged: they must be able to read the served files.
chmodSync(dir, 0o755);
const children: ChildProcess[] = [];

function start(command: string, args: string[], name: string): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: ROOT });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.on('exit', (code, signal) => {
    if (!shuttingDown) process.stderr.write(`${name} exited (${code ?? signal}): ${stderr.slice(-2000)}\n`);
  });
  children.push(child);
  return child;
}

let shuttingDown = false;
function cleanup(): void {
  shuttingDown = true;
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

async function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  const net = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`port ${port} did not open`);
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} failed (${code}): ${err}${out}`))));
  });
}

interface WrkResult {
  requestsPerSecond: number;
  bytesPerSecond: number;
  errors: number;
}

async function wrk(url: string, extra: string[], conns = connections, seconds = duration): Promise<WrkResult> {
  const out = await run('wrk', ['-t', String(wrkThreads), '-c', String(conns), '-d', `${seconds}s`, ...extra, url]);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const transfer = /Transfer\/sec:\s+([\d.]+)([KMG]?B)/.exec(out);
  const errorsLine = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (rps === null || transfer === null) throw new Error(`cannot read wrk output:\n${out}`);
  const unit = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[transfer[2]] ?? 1;
  const errors = (errorsLine ? errorsLine.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0);
  return { requestsPerSecond: Number(rps[1]), bytesPerSecond: Number(transfer[1]) * unit, errors };
}

/** HTTP/2 load with h2load (Debian nghttp2-client): `conns` connections, `streams` concurrent streams each. */
async function h2load(url: string, seconds: number, conns = 10, streams = 10): Promise<number> {
  const out = await run('h2load', ['-t', String(wrkThreads), '-c', String(conns), '-m', String(streams), '-D', String(seconds), url]);
  const rps = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
  const failed = /requests: .* (\d+) failed/.exec(out);
  if (rps === null) throw new Error(`cannot read h2load output:\n${out}`);
  if (failed !== null && Number(failed[1]) > 0) process.stderr.write(`  note: ${failed[1]} failed HTTP/2 requests on ${url}\n`);
  return Number(rps[1]);
}
const haveH2load = spawnSync('sh', ['-c', 'command -v h2load']).status === 0;

async function udpLoad(port: number, seconds = duration): Promise<number> {
  const out = await run(process.execPath, [...process.execArgv, path.join(ROOT, 'bench/dataplane/udp-load.ts'), '127.0.0.1', String(port), String(seconds)]);
  return (JSON.parse(out.trim()) as { packetsPerSecond: number }).packetsPerSecond;
}

interface Scenario {
  name: string;
  unit: string;
  /** Unit of CPU cost: per request, or per GiB moved. */
  cpuUnit: 'req' | 'GiB';
  target: number | null;
  argonaut: (seconds: number) => Promise<number>;
  reference: (seconds: number) => Promise<number>;
  referenceName: string;
  /** Whose CPU time counts for the reference (null: not measured). */
  referencePid: number | null;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** utime + stime of a process (all its threads) and of its children (cluster workers), in seconds. */
function cpuSeconds(pid: number): number {
  const read = (p: number): { ticks: number; ppid: number } | null => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return { ticks: Number(fields[11]) + Number(fields[12]), ppid: Number(fields[1]) };
    } catch {
      return null;
    }
  };
  let ticks = read(pid)?.ticks ?? 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const info = read(Number(entry));
    if (info !== null && info.ppid === pid) ticks += info.ticks;
  }
  return ticks / CLOCK_TICKS;
}

/** Runs `load` and returns its figure with the CPU seconds `pid` spent meanwhile. */
async function measured(load: () => Promise<number>, pid: number | null): Promise<{ value: number; cpu: number | null }> {
  const before = pid === null ? 0 : cpuSeconds(pid);
  const value = await load();
  return { value, cpu: pid === null ? null : cpuSeconds(pid) - before };
}

const loadLine = () => loadavg().map((x) => x.toFixed(2)).join(' ');

/** One self-signed certificate both proxies serve on their TERMINATED_HTTPS listener. */
async function makeCertificate(): Promise<BenchTls> {
  const key = path.join(dir, 'tls.key');
  const cert = path.join(dir, 'tls.crt');
  const keyArgs = tlsKey === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  await run('openssl', ['req', '-x509', ...keyArgs, '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=bench.example.com', '-addext', 'subjectAltName=DNS:bench.example.com']);
  const certificate = readFileSync(cert, 'utf8');
  const privateKey = readFileSync(key, 'utf8');
  // Octavia writes one PEM per certificate (certificate, intermediates, key) and lists it in a crt-list.
  const pemFile = path.join(dir, 'bench.pem');
  writeFileSync(pemFile, certificate + privateKey, { mode: 0o600 });
  const crtListFile = path.join(dir, 'crt-list');
  writeFileSync(crtListFile, `${pemFile}\n`);
  return { certificate, privateKey, crtListFile };
}

async function main(): Promise<void> {
  writeFileSync(path.join(dir, 'small.txt'), 'x'.repeat(128));
  writeFileSync(path.join(dir, '1m.bin'), Buffer.alloc(1 << 20, 0x62));
  writeFileSync(path.join(dir, 'nginx.conf'), renderNginxConfig(dir));
  const tls = await makeCertificate();
  writeFileSync(path.join(dir, 'haproxy.cfg'), renderHaproxyConfig(workers, tls));
  writeFileSync(path.join(dir, 'argonaut.json'), JSON.stringify(renderArgonautConfig(tls), null, 2), { mode: 0o600 });

  start('nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir], 'nginx');
  start(process.execPath, [...process.execArgv, path.join(ROOT, 'bench/dataplane/udp-echo.ts'), String(PORTS.udpMember1), String(PORTS.udpMember2)], 'udp members');
  const haproxy = start('haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], 'haproxy');
  const argonaut = start(
    process.execPath,
    [...process.execArgv, path.join(ROOT, 'bin/argonaut-dataplane.ts'), '--config', path.join(dir, 'argonaut.json'), '--workers', String(workers), '--log-level', 'warn', '--no-watch'],
    'argonaut',
  );
  for (const port of [PORTS.member1, PORTS.member2, PORTS.haproxyHttp, PORTS.haproxyTcp, PORTS.haproxyHttps, PORTS.argonautHttp, PORTS.argonautTcp, PORTS.argonautHttps]) {
    await waitForPort(port);
  }

  const a = (port: number, p = '/small.txt') => `http://127.0.0.1:${port}${p}`;
  const s = (port: number, p = '/small.txt') => `https://127.0.0.1:${port}${p}`;
  const rps = (url: string, extra: string[] = [], conns?: number) => async (seconds: number) => {
    const r = await wrk(url, extra, conns, seconds);
    if (r.errors > 0) process.stderr.write(`  note: ${r.errors} socket errors or non-2xx responses on ${url} ${extra.join(' ')}\n`);
    return r.requestsPerSecond;
  };
  const mibps = (url: string) => async (seconds: number) => (await wrk(url, [], 10, seconds)).bytesPerSecond / 1024 ** 2;
  const haproxyPid = haproxy.pid ?? null;

  const all: Scenario[] = [
    {
      name: 'L7 HTTP keep-alive, small responses',
      unit: 'req/s',
      cpuUnit: 'req',
      target: 0.6,
      argonaut: rps(a(PORTS.argonautHttp)),
      reference: rps(a(PORTS.haproxyHttp)),
      referenceName: 'HAProxy',
      referencePid: haproxyPid,
    },
    {
      name: 'L7 HTTP new connection per request',
      unit: 'req/s',
      cpuUnit: 'req',
      target: 0.8,
      argonaut: rps(a(PORTS.argonautHttp), ['-H', 'Connection: close']),
      reference: rps(a(PORTS.haproxyHttp), ['-H', 'Connection: close']),
      referenceName: 'HAProxy',
      referencePid: haproxyPid,
    },
    {
      name: 'TLS termination keep-alive, small responses',
      unit: 'req/s',
      cpuUnit: 'req',
      target: null,
      argonaut: rps(s(PORTS.argonautHttps)),
      reference: rps(s(PORTS.haproxyHttps)),
      referenceName: 'HAProxy',
      referencePid: haproxyPid,
    },
    {
      // wrk resumes TLS sessions where it can: a mix of full and resumed handshakes, as real clients do.
      name: 'TLS termination new connection per request (handshakes/s)',
      unit: 'req/s',
      cpuUnit: 'req',
      target: null,
      argonaut: rps(s(PORTS.argonautHttps), ['-H', 'Connection: close']),
      reference: rps(s(PORTS.haproxyHttps), ['-H', 'Connection: close']),
      referenceName: 'HAProxy',
      referencePid: haproxyPid,
    },
    ...(haveH2load
      ? [
          {
            name: 'TLS termination HTTP/2, 10 connections x 10 streams (h2load)',
            unit: 'req/s',
            cpuUnit: 'req' as const,
            target: null,
            argonaut: (seconds: number) => h2load(s(PORTS.argonautHttps), seconds),
            reference: (seconds: number) => h2load(s(PORTS.haproxyHttps), seconds),
            referenceName: 'HAProxy',
            referencePid: haproxyPid,
          },
        ]
      : []),
    {
      name: 'L4 TCP, small responses',
      unit: 'req/s',
      cpuUnit: 'req',
      target: 0.9,
      argonaut: rps(a(PORTS.argonautTcp)),
      reference: rps(a(PORTS.haproxyTcp)),
      referenceName: 'HAProxy',
      referencePid: haproxyPid,
    },
    {
      name: 'L4 TCP, 1 MiB responses',
      unit: 'MiB/s',
      cpuUnit: 'GiB',
      target: 1.0,
      argonaut: mibps(a(PORTS.argonautTcp, '/1m.bin')),
      reference: mibps(a(PORTS.haproxyTcp, '/1m.bin')),
      referenceName: 'HAProxy',
      referencePid: haproxyPid,
    },
    {
      name: 'UDP echo packets/s',
      unit: 'pkt/s',
      cpuUnit: 'req',
      target: null,
      argonaut: (seconds) => udpLoad(PORTS.argonautUdp, seconds),
      // HAProxy does not proxy UDP (Octavia uses LVS, which needs the ip_vs kernel module): the reference is the members reached directly.
      reference: (seconds) => udpLoad(PORTS.udpMember1, seconds),
      referenceName: 'direct (no proxy)',
      referencePid: null,
    },
  ];
  const scenarios = all.filter((s) => values.only === undefined || s.name.toLowerCase().includes(values.only.toLowerCase()));

  process.stdout.write(
    `workers/threads: ${workers}, wrk: -t${wrkThreads} -c${connections} -d${duration}s, warm-up: ${warmup}s, rounds: ${rounds}\n` +
      `cpus: ${availableParallelism()}, load average at start: ${loadLine()}\n`,
  );
  // CPU cost per unit of work: µs per request, or CPU-seconds per GiB.
  const perUnit = (cpu: number | null, value: number, scenario: Scenario) => {
    if (cpu === null || value <= 0) return null;
    const work = value * duration; // requests, or MiB
    return scenario.cpuUnit === 'req' ? (cpu * 1e6) / work : cpu / (work / 1024);
  };
  const cpuText = (x: number | null, scenario: Scenario) =>
    x === null ? '-' : scenario.cpuUnit === 'req' ? `${x.toFixed(1)} µs/req` : `${x.toFixed(2)} s/GiB`;
  const argonautPid = argonaut.pid ?? null;
  const rows: string[][] = [];
  for (const scenario of scenarios) {
    if (warmup > 0) {
      await scenario.argonaut(warmup);
      await scenario.reference(warmup);
    }
    const ours: number[] = [];
    const theirs: number[] = [];
    const ourCpu: number[] = [];
    const theirCpu: number[] = [];
    const record = (into: number[], cpuInto: number[], r: { value: number; cpu: number | null }) => {
      into.push(r.value);
      const c = perUnit(r.cpu, r.value, scenario);
      if (c !== null) cpuInto.push(c);
    };
    for (let round = 0; round < rounds; round++) {
      // Alternate who goes first so that warm-up and thermal effects do not favour one side.
      if (round % 2 === 0) {
        record(ours, ourCpu, await measured(() => scenario.argonaut(duration), argonautPid));
        record(theirs, theirCpu, await measured(() => scenario.reference(duration), scenario.referencePid));
      } else {
        record(theirs, theirCpu, await measured(() => scenario.reference(duration), scenario.referencePid));
        record(ours, ourCpu, await measured(() => scenario.argonaut(duration), argonautPid));
      }
      process.stdout.write(
        `  ${scenario.name} round ${round + 1}: argonaut ${ours[round].toFixed(0)} ${scenario.referenceName} ${theirs[round].toFixed(0)} ${scenario.unit}` +
          ` (cpu ${cpuText(ourCpu[round] ?? null, scenario)} vs ${cpuText(theirCpu[round] ?? null, scenario)}; load ${loadavg()[0].toFixed(2)})\n`,
      );
    }
    const ratio = median(ours) / median(theirs);
    const ourCost = ourCpu.length > 0 ? median(ourCpu) : null;
    const theirCost = theirCpu.length > 0 ? median(theirCpu) : null;
    rows.push([
      scenario.name,
      `${median(ours).toFixed(0)} ${scenario.unit}`,
      `${median(theirs).toFixed(0)} ${scenario.unit} (${scenario.referenceName})`,
      ratio.toFixed(2),
      scenario.target === null ? '-' : `${scenario.target.toFixed(1)} ${ratio >= scenario.target ? 'met' : 'NOT met'}`,
      `${cpuText(ourCost, scenario)} vs ${cpuText(theirCost, scenario)}`,
    ]);
  }
  const header = ['scenario', 'Argonaut (median)', 'reference (median)', 'ratio', 'target', 'proxy CPU per unit (median)'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  process.stdout.write(`\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${rows.map(line).join('\n')}\n`);
  process.stdout.write(`load average at end: ${loadLine()}\n`);
}

main().then(
  () => {
    cleanup();
    process.exit(0);
  },
  (err: Error) => {
    process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
    cleanup();
    process.exit(1);
  },
);
