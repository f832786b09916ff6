// bench/api: create / list / show latency and throughput of Argonaut and of the reference Octavia
// API, measured in the same run against the same Keystone and MariaDB, and their ratios.
// Needs both APIs up under Keystone (README "Checking against the real OpenStack"):
//   npx tsx bin/argonaut.ts api --config etc/peers.yaml &      (Argonaut on :9876)
//   ../shared/peers/octavia-ref-up.sh                            (reference on :19876)
//   npx tsx bench/api/run.ts [--duration 10] [--concurrency 8] [--creates 200] [--warmup 5] [--objects 40]
// Creates are sequential, after `warmup` untimed ones (first-use paths: quota row, JIT); show and
// list then run on `objects` load balancers (the other created ones are deleted first). The creates'
// latency is also printed as Argonaut timed it itself (Server-Timing): on a shared machine the
// client's figure holds waits for a CPU that the service's own time does not.
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';

const { values: opts } = parseArgs({
  options: {
    argonaut: { type: 'string', default: 'http://127.0.0.1:9876' },
    reference: { type: 'string', default: 'http://127.0.0.1:19876' },
    keystone: { type: 'string', default: 'http://127.0.0.1:5000/v3' },
    duration: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '8' },
    creates: { type: 'string', default: '200' },
    warmup: { type: 'string', default: '5' },
    objects: { type: 'string', default: '40' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (opts.help) {
  console.log('Usage: tsx bench/api/run.ts [--argonaut URL] [--reference URL] [--keystone URL] [--duration S] [--concurrency N] [--creates N] [--warmup N] [--objects N]');
  process.exit(0);
}
const DURATION_MS = Number(opts.duration) * 1000;
const CONCURRENCY = Number(opts.concurrency);
const SUBNET = '6c1f4a49-0e64-4e5f-a4a3-5a4d4cf6e8d1';

async function token(): Promise<string> {
  const res = await fetch(`${opts.keystone}/auth/tokens`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: { methods: ['password'], password: { user: { name: 'demo', domain: { name: 'Default' }, password: 'secret' } } },
        scope: { project: { name: 'demo', domain: { name: 'Default' } } },
      },
    }),
  });
  if (res.status !== 201) throw new Error(`Keystone answered ${res.status}`);
  return res.headers.get('x-subject-token')!;
}

interface Target {
  name: string;
  base: string;
}

async function call(t: Target, tok: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any; ms: number; serverMs: number | null }> {
  const start = performance.now();
  const res = await fetch(`${t.base}/v2.0${path}`, {
    method,
    headers: { 'X-Auth-Token': tok, 'Content-Type': 'application/json', Accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const ms = performance.now() - start;
  // Argonaut says how long it spent on the request (Server-Timing: app;dur=<ms>); the reference does not.
  const timing = /app;dur=([\d.]+)/.exec(res.headers.get('server-timing') ?? '');
  return { status: res.status, json: text ? JSON.parse(text) : null, ms, serverMs: timing ? Number(timing[1]) : null };
}

async function waitActive(t: Target, tok: string, id: string): Promise<void> {
  // The reference's worker takes its time with a few hundred creates queued.
  const deadline = Date.now() + 900_000;
  while (Date.now() < deadline) {
    const r = await call(t, tok, 'GET', `/lbaas/loadbalancers/${id}`);
    if (r.json?.loadbalancer?.provisioning_status === 'ACTIVE') return;
    if (r.json?.loadbalancer?.provisioning_status === 'ERROR') throw new Error(`${t.name}: load balancer ${id} went to ERROR`);
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`${t.name}: load balancer ${id} not ACTIVE after 900 s`);
}

async function waitGone(t: Target, tok: string, id: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const r = await call(t, tok, 'GET', `/lbaas/loadbalancers/${id}`);
    if (r.status === 404 || r.json?.loadbalancer?.provisioning_status === 'DELETED') return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`${t.name}: load balancer ${id} not deleted after 120 s`);
}

// Nearest-rank percentile: with 200 samples p99 is the 198th, not the maximum.
const pct = (sorted: number[], p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
const summary = (samples: number[]) => {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, p50: pct(s, 50), p99: pct(s, 99) };
};

async function measureCreates(t: Target, tok: string, count: number, warmup: number): Promise<{ p50: number; p99: number; ids: string[]; server: ReturnType<typeof summary> | null }> {
  const samples: number[] = [];
  const server: number[] = [];
  const ids: string[] = [];
  for (let i = 0; i < warmup + count; i++) {
    const r = await call(t, tok, 'POST', '/lbaas/loadbalancers', { loadbalancer: { name: `bench-${i}`, vip_subnet_id: SUBNET } });
    if (r.status !== 201) throw new Error(`${t.name}: create answered ${r.status} ${JSON.stringify(r.json)}`);
    if (i >= warmup) samples.push(r.ms);
    if (i >= warmup && r.serverMs !== null) server.push(r.serverMs);
    ids.push(r.json.loadbalancer.id);
  }
  return { ...summary(samples), ids, server: server.length === samples.length ? summary(server) : null };
}

async function measureLoad(t: Target, tok: string, path: () => string): Promise<{ rps: number; p50: number; p99: number; errors: number }> {
  const samples: number[] = [];
  let errors = 0;
  const end = performance.now() + DURATION_MS;
  const worker = async () => {
    while (performance.now() < end) {
      const r = await call(t, tok, 'GET', path());
      if (r.status !== 200) errors++;
      else samples.push(r.ms);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const seconds = (performance.now() - start) / 1000;
  return { rps: samples.length / seconds, ...summary(samples), errors };
}

async function cleanup(t: Target, tok: string, ids: string[]): Promise<void> {
  for (const id of ids) {
    const r = await call(t, tok, 'DELETE', `/lbaas/loadbalancers/${id}?cascade=true`);
    if (r.status !== 204 && r.status !== 404) console.error(`${t.name}: delete ${id} answered ${r.status}`);
  }
}

async function main(): Promise<void> {
  const tok = await token();
  const targets: Target[] = [
    { name: 'argonaut', base: opts.argonaut! },
    { name: 'reference', base: opts.reference! },
  ];
  const results: Record<string, Record<string, { rps?: number; p50: number; p99: number }>> = {};
  const createServer: Record<string, { p50: number; p99: number } | null> = {};
  for (const t of targets) {
    // One untimed request first: each service validates the new token with Keystone once.
    const warm = await call(t, tok, 'GET', '/lbaas/loadbalancers');
    if (warm.status !== 200) throw new Error(`${t.name}: GET /lbaas/loadbalancers answered ${warm.status}`);
    process.stderr.write(`${t.name}: creating ${opts.warmup} + ${opts.creates} load balancers...\n`);
    const creates = await measureCreates(t, tok, Number(opts.creates), Number(opts.warmup));
    for (const id of creates.ids) await waitActive(t, tok, id);
    const ids = creates.ids.slice(0, Number(opts.objects));
    await cleanup(t, tok, creates.ids.slice(ids.length));
    for (const id of creates.ids.slice(ids.length)) await waitGone(t, tok, id);
    let i = 0;
    process.stderr.write(`${t.name}: show for ${opts.duration}s at concurrency ${CONCURRENCY}...\n`);
    const show = await measureLoad(t, tok, () => `/lbaas/loadbalancers/${ids[i++ % ids.length]}`);
    process.stderr.write(`${t.name}: list for ${opts.duration}s at concurrency ${CONCURRENCY}...\n`);
    const list = await measureLoad(t, tok, () => '/lbaas/loadbalancers');
    if (show.errors + list.errors > 0) console.error(`${t.name}: ${show.errors + list.errors} failed requests`);
    results[t.name] = { create: creates, show, list };
    createServer[t.name] = creates.server;
    await cleanup(t, tok, ids);
  }
  const a = results.argonaut!;
  const r = results.reference!;
  const f = (n: number | undefined) => (n === undefined ? '-' : n.toFixed(1));
  console.log(`\nbench/api  (${opts.creates} sequential creates after ${opts.warmup} untimed; show and list: ${opts.duration}s each at concurrency ${CONCURRENCY}; ${opts.objects} load balancers listed)`);
  console.log('operation  metric     argonaut   reference  ratio (argonaut/reference)');
  for (const op of ['create', 'show', 'list']) {
    for (const metric of ['rps', 'p50', 'p99'] as const) {
      const av = a[op]![metric];
      const rv = r[op]![metric];
      if (av === undefined) continue;
      const ratio = metric === 'rps' ? av / rv! : rv! / av;
      console.log(`${op.padEnd(10)} ${(metric === 'rps' ? 'req/s' : `${metric} ms`).padEnd(10)} ${f(av).padStart(8)} ${f(rv).padStart(11)}  ${ratio.toFixed(1)}x ${metric === 'rps' ? 'throughput' : 'faster'}`);
    }
  }
  // The same creates as the service timed them itself (Server-Timing): what the client's figure holds beyond it is network, client and waiting for a CPU.
  for (const metric of ['p50', 'p99'] as const) {
    console.log(`${'create'.padEnd(10)} ${`server ${metric}`.padEnd(10)} ${f(createServer.argonaut?.[metric]).padStart(8)} ${f(createServer.reference?.[metric]).padStart(11)}  (Server-Timing)`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
