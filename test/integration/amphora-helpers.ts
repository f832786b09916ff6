// Shared by the amphora robustness tests (test/integration/amphora-*.test.ts): member servers on
// 127.0.0.1, an HTTP client for an API (in this process or a child process), polling, RabbitMQ
// restarts and the removal of everything a test run declared under its prefix.
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'amqplib';
import pino from 'pino';
import { createApiService, type ApiService } from '../../api/app.ts';
import { buildConfig, type ConfigInput } from '../../common/config.ts';
import { Database, dropMysqlDatabase, ensureMysqlDatabase } from '../../common/db/database.ts';

const run = promisify(execFile);
export const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672/';
export const MYSQL_BASE = process.env.ARGONAUT_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';
export const MASTER_KEY = 'amphora-robustness-test-master-key-0123456789';
export const PROJECT = 'amphora-it';

/** A prefix unique to this test run (exchanges and queues), valid for transportOptionsSchema. */
export function runPrefix(name: string): string {
  return `argonaut-${name}-${randomUUID().slice(0, 8)}`;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns something other than undefined; throws with `what` (and the last error) at the deadline. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await sleep(everyMs);
  }
}

// ---- member servers ------------------------------------------------------------------------------

export interface MemberServer {
  name: string;
  port: number;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 answering its name (and `ok` on /healthz); start() after stop() reuses the port. */
export function memberServer(name: string): MemberServer {
  let server: http.Server | undefined;
  const m: MemberServer = {
    name,
    port: 0,
    start: () =>
      new Promise((resolve, reject) => {
        const s = http.createServer((req, res) => {
          res.setHeader('Content-Type', 'text/plain');
          res.end(req.url === '/healthz' ? 'ok' : name);
        });
        server = s;
        s.once('error', reject);
        s.listen(m.port, '127.0.0.1', () => {
          m.port = (s.address() as AddressInfo).port;
          resolve();
        });
      }),
    stop: () =>
      new Promise((resolve) => {
        if (!server) return resolve();
        const s = server;
        server = undefined;
        s.closeAllConnections();
        s.close(() => resolve());
      }),
  };
  return m;
}

export async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** One GET on a connection of its own; resolves with the body. */
export function httpGet(url: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/** The bodies of `n` requests through the VIP. */
export async function sample(vip: string, port: number, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(await httpGet(`http://${vip}:${port}/`));
  return out;
}

/**
 * Waits until requests through the VIP reach exactly the `expected` members. Polled, because a
 * health monitor may hold a member DOWN for a check or two after a disruption (an amphora paused
 * with SIGSTOP sees its checks time out; a new amphora starts checking from scratch).
 */
export async function waitTraffic(vip: string, port: number, expected: string[], timeoutMs = 10_000): Promise<void> {
  const want = [...expected].sort().join(',');
  let last = '';
  await waitFor(
    `traffic through ${vip}:${port} to exactly ${want}`,
    async () => {
      last = [...new Set(await sample(vip, port, expected.length * 3))].sort().join(',');
      return last === want ? true : undefined;
    },
    timeoutMs,
    200,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last seen: ${last || 'nothing'}`);
  });
}

// ---- the API ------------------------------------------------------------------------------------

export interface ApiClient {
  url: string;
  get(p: string): Promise<{ status: number; body: any }>;
  post(p: string, body: unknown): Promise<{ status: number; body: any }>;
  put(p: string, body: unknown): Promise<{ status: number; body: any }>;
  delete(p: string): Promise<{ status: number; body: any }>;
}

export function apiClient(url: string): ApiClient {
  const call = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(url + p, {
      method,
      headers: { 'Content-Type': 'application/json', 'X-Project-Id': PROJECT },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* kept as text */
    }
    return { status: res.status, body: parsed as any };
  };
  return {
    url,
    get: (p) => call('GET', p),
    post: (p, b) => call('POST', p, b),
    put: (p, b) => call('PUT', p, b),
    delete: (p) => call('DELETE', p),
  };
}

export interface InProcessApi {
  client: ApiClient;
  service: ApiService;
  /** The controller's JSON log lines (logging level info). */
  logFile: string;
  close(): Promise<void>;
}

/**
 * The API and its controller worker in this process (SQLite file, or a fresh MariaDB database with
 * ARGONAUT_TEST_DB=mysql), logging at info into `<dir>/controller.log` so that a failure can be read.
 */
export async function startInProcessApi(dir: string, config: ConfigInput): Promise<InProcessApi> {
  let dbUrl = `sqlite:${path.join(dir, 'argonaut.sqlite')}`;
  const mysql = process.env.ARGONAUT_TEST_DB === 'mysql';
  if (mysql) {
    dbUrl = `${MYSQL_BASE}/argonaut_amph_${randomBytes(4).toString('hex')}`;
    await ensureMysqlDatabase(dbUrl);
  }
  const cfg = buildConfig({ ...config, api: { port: 0 }, database: { url: dbUrl }, logging: { level: 'info' } });
  const logFile = path.join(dir, 'controller.log');
  const log = pino({ level: 'info' }, pino.destination({ dest: logFile, sync: true }));
  const db = new Database({ url: dbUrl });
  const service = await createApiService(cfg, log, db);
  const server = service.app.listen(0, '127.0.0.1');
  await new Promise<void>((r) => server.once('listening', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    client: apiClient(url),
    service,
    logFile,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await service.close();
      if (mysql) await dropMysqlDatabase(dbUrl);
    },
  };
}

/** The last `n` lines of a log file (for failure messages). */
export function tail(file: string, n = 60): string {
  if (!existsSync(file)) return `(no ${file})`;
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
}

export interface Statuses {
  provisioning: string;
  operating: string;
}

export async function lbStatus(api: ApiClient, id: string): Promise<Statuses> {
  const res = await api.get(`/v2/lbaas/loadbalancers/${id}`);
  if (res.status !== 200) throw new Error(`GET load balancer ${id}: ${res.status} ${JSON.stringify(res.body)}`);
  return { provisioning: res.body.loadbalancer.provisioning_status, operating: res.body.loadbalancer.operating_status };
}

/** Waits until the load balancer is no longer PENDING_*; returns its provisioning status (ACTIVE or ERROR). */
export async function settled(api: ApiClient, id: string, timeoutMs = 30_000): Promise<string> {
  return waitFor(
    `load balancer ${id} out of PENDING_*`,
    async () => {
      const s = (await lbStatus(api, id)).provisioning;
      return s.startsWith('PENDING_') ? undefined : s;
    },
    timeoutMs,
  );
}

export async function waitActive(api: ApiClient, id: string, timeoutMs = 30_000): Promise<void> {
  const s = await settled(api, id, timeoutMs);
  if (s !== 'ACTIVE') throw new Error(`load balancer ${id} went to ${s}`);
}

export interface AmphoraView {
  id: string;
  status: string;
  compute_id: string | null;
  loadbalancer_id: string;
}

export async function amphorae(api: ApiClient, lbId: string): Promise<AmphoraView[]> {
  const res = await api.get(`/v2/octavia/amphorae?loadbalancer_id=${lbId}`);
  if (res.status !== 200) throw new Error(`GET amphorae: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.amphorae;
}

/** The pid in a process driver's compute id (`process:<pid>:<amphoraId>`). */
export function pidOf(a: AmphoraView): number {
  const pid = Number(String(a.compute_id).split(':')[1]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no pid in compute id ${a.compute_id}`);
  return pid;
}

export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Every object of the load balancer's tree with its provisioning status (from the status tree and the lists). */
export async function treeStatuses(api: ApiClient, lbId: string): Promise<Array<{ kind: string; id: string; provisioning: string }>> {
  const out: Array<{ kind: string; id: string; provisioning: string }> = [];
  const lb = await api.get(`/v2/lbaas/loadbalancers/${lbId}`);
  out.push({ kind: 'loadbalancer', id: lbId, provisioning: lb.body.loadbalancer.provisioning_status });
  const listeners = (await api.get(`/v2/lbaas/listeners?loadbalancer_id=${lbId}`)).body.listeners as any[];
  for (const l of listeners) out.push({ kind: 'listener', id: l.id, provisioning: l.provisioning_status });
  const pools = (await api.get(`/v2/lbaas/pools?loadbalancer_id=${lbId}`)).body.pools as any[];
  for (const p of pools) {
    out.push({ kind: 'pool', id: p.id, provisioning: p.provisioning_status });
    const members = (await api.get(`/v2/lbaas/pools/${p.id}/members`)).body.members as any[];
    for (const m of members) out.push({ kind: 'member', id: m.id, provisioning: m.provisioning_status });
    if (p.healthmonitor_id) {
      const hm = (await api.get(`/v2/lbaas/healthmonitors/${p.healthmonitor_id}`)).body.healthmonitor;
      out.push({ kind: 'healthmonitor', id: hm.id, provisioning: hm.provisioning_status });
    }
  }
  return out;
}

// ---- RabbitMQ ------------------------------------------------------------------------------------

export async function rabbitmqctl(...args: string[]): Promise<string> {
  return (await run('rabbitmqctl', args, { timeout: 60_000 })).stdout;
}

export async function assertRabbitUp(): Promise<void> {
  try {
    const conn = await connect(AMQP_URL);
    await conn.close();
  } catch (err) {
    throw new Error(`RabbitMQ is not reachable at ${AMQP_URL} (${(err as Error).message}); start it with ../shared/peers/rabbitmq-up.sh`);
  }
}

/** Deletes every queue and exchange whose name starts with `prefix`. */
export async function deleteUnderPrefix(prefix: string): Promise<void> {
  const names = async (what: string) =>
    (await rabbitmqctl('-q', '--no-table-headers', what, 'name'))
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith(prefix));
  const conn = await connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    for (const q of await names('list_queues')) await ch.deleteQueue(q);
    for (const e of await names('list_exchanges')) await ch.deleteExchange(e);
    await ch.close();
  } finally {
    await conn.close();
  }
}

/** Names (and message counts) of the queues under `prefix`. */
export async function queuesUnder(prefix: string): Promise<Array<{ name: string; messages: number }>> {
  return (await rabbitmqctl('-q', '--no-table-headers', 'list_queues', 'name', 'messages'))
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([name]) => name?.startsWith(prefix))
    .map(([name, messages]) => ({ name: name!, messages: Number(messages) }));
}
