/**
 * Data plane benchmark: Argonaut against HAProxy (configured as Octavia's amphora template configures
 * it), same member servers, same number of workers/threads, several alternating rounds in one run.
 * Prints the median of each scenario and the ratio Argonaut/HAProxy.
 *
 *   npx tsx bench/dataplane/run.ts [--rounds 3] [--duration 5] [--connections 50] [--workers N] [--wrk-threads 2]
 *
 * Needs the Debian packages wrk, haproxy and nginx-light (members). Traffic stays on 127.0.0.1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { renderArgonautConfig, renderHaproxyConfig, renderNginxConfig, PORTS } from './configs.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    workers: { type: 'string', default: String(availableParallelism()) },
    'wrk-threads': { type: 'string', default: '2' },
    only: { type: 'string' },
  },
});
const rounds = Number(values.rounds);
const duration = Number(values.duration);
const connections = Number(values.connections);
const workers = Number(values.workers);
const wrkThreads = Number(values['wrk-threads']);

for (const tool of ['wrk', 'haproxy', 'nginx']) {
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

async function wrk(url: string, extra: string[], conns = connections): Promise<WrkResult> {
  const out = await run('wrk', ['-t', String(wrkThreads), '-c', String(conns), '-d', `${duration}s`, ...extra, url]);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const transfer = /Transfer\/sec:\s+([\d.]+)([KMG]?B)/.exec(out);
  const errorsLine = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (rps === null || transfer === null) throw new Error(`cannot read wrk output:\n${out}`);
  const unit = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[transfer[2]] ?? 1;
  const errors = (errorsLine ? errorsLine.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0);
  return { requestsPerSecond: Number(rps[1]), bytesPerSecond: Number(transfer[1]) * unit, errors };
}

async function udpLoad(port: number): Promise<number> {
  const out = await run(process.execPath, [...process.execArgv, path.join(ROOT, 'bench/dataplane/udp-load.ts'), '127.0.0.1', String(port), String(duration)]);
  return (JSON.parse(out.trim()) as { packetsPerSecond: number }).packetsPerSecond;
}

interface Scenario {
  name: string;
  unit: string;
  target: number | null;
  argonaut: () => Promise<number>;
  reference: () => Promise<number>;
  referenceName: string;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main(): Promise<void> {
  writeFileSync(path.join(dir, 'small.txt'), 'x'.repeat(128));
  writeFileSync(path.join(dir, '1m.bin'), Buffer.alloc(1 << 20, 0x62));
  writeFileSync(path.join(dir, 'nginx.conf'), renderNginxConfig(dir));
  writeFileSync(path.join(dir, 'haproxy.cfg'), renderHaproxyConfig(workers));
  writeFileSync(path.join(dir, 'argonaut.json'), JSON.stringify(renderArgonautConfig(), null, 2));

  start('nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir], 'nginx');
  start(process.execPath, [...process.execArgv, path.join(ROOT, 'bench/dataplane/udp-echo.ts'), String(PORTS.udpMember1), String(PORTS.udpMember2)], 'udp members');
  start('haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')], 'haproxy');
  start(
    process.execPath,
    [...process.execArgv, path.join(ROOT, 'bin/argonaut-dataplane.ts'), '--config', path.join(dir, 'argonaut.json'), '--workers', String(workers), '--log-level', 'warn', '--no-watch'],
    'argonaut',
  );
  for (const port of [PORTS.member1, PORTS.member2, PORTS.haproxyHttp, PORTS.haproxyTcp, PORTS.argonautHttp, PORTS.argonautTcp]) await waitForPort(port);

  const a = (port: number, p = '/small.txt') => `http://127.0.0.1:${port}${p}`;
  const rps = (url: string, extra: string[] = [], conns?: number) => async () => {
    const r = await wrk(url, extra, conns);
    if (r.errors > 0) process.stderr.write(`  note: ${r.errors} socket errors or non-2xx responses on ${url} ${extra.join(' ')}\n`);
    return r.requestsPerSecond;
  };
  const mibps = (url: string) => async () => (await wrk(url, [], 10)).bytesPerSecond / 1024 ** 2;

  const scenarios: Scenario[] = [
    { name: 'L7 HTTP keep-alive, small responses', unit: 'req/s', target: 0.6, argonaut: rps(a(PORTS.argonautHttp)), reference: rps(a(PORTS.haproxyHttp)), referenceName: 'HAProxy' },
    {
      name: 'L7 HTTP new connection per request',
      unit: 'req/s',
      target: 0.8,
      argonaut: rps(a(PORTS.argonautHttp), ['-H', 'Connection: close']),
      reference: rps(a(PORTS.haproxyHttp), ['-H', 'Connection: close']),
      referenceName: 'HAProxy',
    },
    { name: 'L4 TCP, small responses', unit: 'req/s', target: 0.9, argonaut: rps(a(PORTS.argonautTcp)), reference: rps(a(PORTS.haproxyTcp)), referenceName: 'HAProxy' },
    { name: 'L4 TCP, 1 MiB responses', unit: 'MiB/s', target: 1.0, argonaut: mibps(a(PORTS.argonautTcp, '/1m.bin')), reference: mibps(a(PORTS.haproxyTcp, '/1m.bin')), referenceName: 'HAProxy' },
    {
      name: 'UDP echo packets/s',
      unit: 'pkt/s',
      target: null,
      argonaut: () => udpLoad(PORTS.argonautUdp),
      // HAProxy does not proxy UDP (Octavia uses LVS, which needs the ip_vs kernel module): the reference is the members reached directly.
      reference: () => udpLoad(PORTS.udpMember1),
      referenceName: 'direct (no proxy)',
    },
  ].filter((s) => values.only === undefined || s.name.toLowerCase().includes(values.only.toLowerCase()));

  process.stdout.write(`workers/threads: ${workers}, wrk: -t${wrkThreads} -c${connections} -d${duration}s, rounds: ${rounds}\n`);
  const rows: string[][] = [];
  for (const scenario of scenarios) {
    const ours: number[] = [];
    const theirs: number[] = [];
    for (let round = 0; round < rounds; round++) {
      // Alternate who goes first so that warm-up and thermal effects do not favour one side.
      if (round % 2 === 0) {
        ours.push(await scenario.argonaut());
        theirs.push(await scenario.reference());
      } else {
        theirs.push(await scenario.reference());
        ours.push(await scenario.argonaut());
      }
      process.stdout.write(`  ${scenario.name} round ${round + 1}: argonaut ${ours[round].toFixed(0)} ${scenario.referenceName} ${theirs[round].toFixed(0)} ${scenario.unit}\n`);
    }
    const ratio = median(ours) / median(theirs);
    rows.push([
      scenario.name,
      `${median(ours).toFixed(0)} ${scenario.unit}`,
      `${median(theirs).toFixed(0)} ${scenario.unit} (${scenario.referenceName})`,
      ratio.toFixed(2),
      scenario.target === null ? '-' : `${scenario.target.toFixed(1)} ${ratio >= scenario.target ? 'met' : 'NOT met'}`,
    ]);
  }
  const header = ['scenario', 'Argonaut (median)', 'reference (median)', 'ratio', 'target'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ');
  process.stdout.write(`\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${rows.map(line).join('\n')}\n`);
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
