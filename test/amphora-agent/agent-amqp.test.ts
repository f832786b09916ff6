// The real agent process (bin/argonaut-amphora.ts) against the real RabbitMQ on 127.0.0.1:5672
// (guest/guest); the test is the controller. It is not skipped when RabbitMQ is down: it fails (start
// it with ../shared/peers/rabbitmq-up.sh). RabbitMQ is restarted once in here (rabbitmqctl stop_app /
// start_app). Every exchange and queue is named with a prefix unique to this run and deleted at the end.
// Traffic only goes to loopback addresses: a VIP in 127.0.100.0/24 and members on 127.0.0.1.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { connect } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AmqpTransport } from '../../common/transport/amqp-transport.ts';
import { deriveAmphoraKey } from '../../common/transport/signing.ts';
import { freePort, Resources, startHttpMember } from '../dataplane/helpers.ts';
import {
  connectOutcome,
  document,
  FakeController,
  httpExchange,
  httpListener,
  loopbackVip,
  MASTER_KEY,
  memberPool,
  push,
  silentLogger,
  sleep,
  uuid,
  waitFor,
} from './helpers.ts';

const run = promisify(execFile);
const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672/';
const PREFIX = `argonaut-agent-test-${randomUUID().slice(0, 8)}`;
const ROOT = new URL('../..', import.meta.url).pathname;
const dir = mkdtempSync(path.join(tmpdir(), 'argonaut-agent-amqp-'));
const r = new Resources();
let child: ChildProcess | undefined;
let rabbitStopped = false;

beforeAll(async () => {
  try {
    const conn = await connect(AMQP_URL);
    await conn.close();
  } catch (err) {
    throw new Error(`RabbitMQ is not reachable at ${AMQP_URL} (${(err as Error).message}); start it with ../shared/peers/rabbitmq-up.sh`);
  }
});

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (rabbitStopped) await run('rabbitmqctl', ['start_app'], { timeout: 30_000 });
  await r.cleanup();
  const conn = await connect(AMQP_URL);
  const ch = await conn.createChannel();
  const names = async (what: string) =>
    (await run('rabbitmqctl', ['-q', '--no-table-headers', what, 'name'], { timeout: 30_000 })).stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith(PREFIX));
  for (const q of await names('list_queues')) await ch.deleteQueue(q);
  for (const e of await names('list_exchanges')) await ch.deleteExchange(e);
  await conn.close();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** Starts the agent process; its log lines (JSON) are kept. */
function startAgentProcess(settingsFile: string): { child: ChildProcess; lines: string[]; exited: Promise<number | string> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bin/argonaut-amphora.ts'), '--config', settingsFile], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let partial = '';
  proc.stdout!.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts.filter((l) => l.length > 0));
  });
  proc.stderr!.on('data', (d: Buffer) => lines.push(`stderr: ${d.toString()}`));
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return { child: proc, lines, exited };
}

describe('amphora agent process over RabbitMQ', () => {
  it('fetches, applies pushes, serves traffic, reports heartbeats across a RabbitMQ restart, and stops on SIGTERM', async () => {
    const amphoraId = uuid();
    const vip = loopbackVip();
    const [a, b] = [await startHttpMember(r, 'a'), await startHttpMember(r, 'b')];
    const port = await freePort();
    const [l1, poolA, poolB, ma, mb] = [uuid(), uuid(), uuid(), uuid(), uuid()];
    const pools = [memberPool(poolA, 'HTTP', [{ id: ma, port: a.port }]), memberPool(poolB, 'HTTP', [{ id: mb, port: b.port }])];
    const version = (n: number, poolId: string) => push(amphoraId, n, document(amphoraId, n, vip, [httpListener(l1, port, poolId)], pools));

    // The controller: the test, with the master key.
    const transport = await AmqpTransport.connect({
      url: AMQP_URL,
      prefix: PREFIX,
      identity: { role: 'controller', masterKey: MASTER_KEY },
      logger: silentLogger(),
      initialConnectTimeoutMs: 5000,
      reconnect: { initialDelayMs: 100, maxDelayMs: 500, factor: 2, jitter: 0.2 },
    });
    r.add(() => transport.close({ drainTimeoutMs: 1000 }));
    const controller = new FakeController(transport);
    controller.current = version(1, poolA);
    await controller.listen();

    const settingsFile = path.join(dir, 'agent.yaml');
    writeFileSync(path.join(dir, 'amphora.key'), deriveAmphoraKey(MASTER_KEY, amphoraId).toString('hex'));
    writeFileSync(
      settingsFile,
      JSON.stringify({
        amphoraId,
        keyFile: 'amphora.key',
        messaging: { url: AMQP_URL, prefix: PREFIX, reconnect: { initialDelayMs: 100, maxDelayMs: 500 }, drainTimeoutMs: 3000 },
        heartbeatIntervalMs: 200,
        configFetch: { timeoutMs: 1000, initialDelayMs: 200, maxDelayMs: 1000 },
        reconnectCheckMs: 100,
        dataplane: { workers: 1, drainTimeoutMs: 2000 },
      }),
    );
    const agent = startAgentProcess(settingsFile);
    child = agent.child;
    const tail = () => agent.lines.slice(-30).join('\n');
    const until = async (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000) => {
      try {
        await waitFor(what, check, timeoutMs, 50);
      } catch (err) {
        throw new Error(`${(err as Error).message}\nagent log:\n${tail()}`);
      }
    };

    // Start-up: the config is fetched and applied; the VIP serves it.
    await until('version 1 in a heartbeat', () => controller.heartbeats.some((h) => h.configVersion === 1));
    expect(controller.fetches).toBe(1);
    expect((await httpExchange(vip, port)).body).toBe('a');

    // A push is applied and acked with its version.
    expect(await transport.pushConfig(version(2, poolB), { timeoutMs: 10_000 })).toEqual({ amphoraId, configVersion: 2, ok: true });
    // Count from a quiet point: two heartbeats in a row with nothing new on l1 (the earlier request is reported).
    const idle = (i: number) => {
      const st = controller.heartbeats[i]?.listeners[l1]?.stats;
      return st !== undefined && st.tx === 0 && st.rx === 0 && st.totconns === 0;
    };
    await until('a quiet heartbeat', () => controller.heartbeats.length >= 2 && idle(controller.heartbeats.length - 1) && idle(controller.heartbeats.length - 2));
    const from = controller.heartbeats.length;
    let sent = 0;
    let received = 0;
    for (let i = 0; i < 3; i++) {
      const x = await httpExchange(vip, port, `/through-the-vip-${i}`);
      expect(x).toMatchObject({ status: 200, body: 'b' });
      sent += x.sent;
      received += x.received;
    }
    expect(b.requests.map((q) => q.url)).toEqual(['/through-the-vip-0', '/through-the-vip-1', '/through-the-vip-2']);
    const sum = (key: 'rx' | 'tx' | 'totconns') => controller.heartbeatsSince(from).reduce((n, h) => n + (h.listeners[l1]?.stats[key] ?? 0), 0);
    await until('the three connections in heartbeats', () => sum('totconns') === 3);
    await sleep(500);
    expect({ rx: sum('rx'), tx: sum('tx'), totconns: sum('totconns') }).toEqual({ rx: sent, tx: received, totconns: 3 });
    const hb = controller.heartbeats.at(-1)!;
    expect(hb).toMatchObject({ id: amphoraId, ver: 3, configVersion: 2 });
    expect(hb.listeners[l1].status).toBe('OPEN');
    expect(hb.pools).toEqual({ [`${poolB}:${l1}`]: { status: 'UP', members: { [mb]: 'no check' } } });

    // RabbitMQ restarts. Meanwhile the controller got version 3 (not pushed): the agent must fetch it
    // after reconnecting. Traffic keeps flowing; heartbeats made meanwhile are delivered afterwards.
    controller.current = version(3, poolA);
    const fetchesBefore = controller.fetches;
    await run('rabbitmqctl', ['stop_app'], { timeout: 30_000 });
    rabbitStopped = true;
    const seqAtStop = Math.max(...controller.heartbeats.map((h) => h.seq));
    await sleep(1500);
    expect((await httpExchange(vip, port)).body).toBe('b');
    await run('rabbitmqctl', ['start_app'], { timeout: 30_000 });
    rabbitStopped = false;
    await until('the config fetched again', () => controller.fetches > fetchesBefore, 20_000);
    await until('version 3 in a heartbeat', () => controller.heartbeats.some((h) => h.configVersion === 3), 20_000);
    expect((await httpExchange(vip, port)).body).toBe('a');
    await until('heartbeats resumed', () => Math.max(...controller.heartbeats.map((h) => h.seq)) >= seqAtStop + 10, 20_000);
    // Nothing lost: every sequence number from the first to the last arrived (duplicates are dropped by id).
    const seqs = [...new Set(controller.heartbeats.map((h) => h.seq))].sort((x, y) => x - y);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0] + i));
    expect(seqs[0]).toBe(0);
    expect(agent.lines.some((l) => l.includes('transport reconnected; fetching the config again'))).toBe(true);

    // SIGTERM: clean exit 0, nothing served any more.
    agent.child.kill('SIGTERM');
    const code = await Promise.race([agent.exited, sleep(15_000).then(() => 'timeout')]);
    expect(code, tail()).toBe(0);
    expect(await connectOutcome(vip, port)).toBe('ECONNREFUSED');
    // Every log line is one JSON event.
    const stdoutLines = agent.lines.filter((l) => !l.startsWith('stderr: '));
    expect(stdoutLines.length).toBeGreaterThan(5);
    for (const line of stdoutLines) expect(() => JSON.parse(line), line).not.toThrow();
    expect(agent.lines.filter((l) => l.startsWith('stderr: '))).toEqual([]);
    const stopped = stdoutLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.msg === 'amphora agent stopped');
    // Every heartbeat made was confirmed by RabbitMQ, those made while it was down included.
    expect(stopped).toMatchObject({ component: 'agent', reason: 'SIGTERM', clean: true, heartbeats: { failed: 0, pending: 0 } });
    const made = (stopped as { heartbeats: { sent: number; confirmed: number } }).heartbeats;
    expect(made.confirmed).toBe(made.sent);
    expect(made.sent).toBeGreaterThanOrEqual(seqs.length);
  }, 60_000);
});
