// The IPC transport: a real child process (ipc-child.ts, or the real agent) with an IpcTransport,
// connected through an IpcBrokerPort to an InProcessBroker in this (the parent) process, where the
// test is the controller.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ConfigPush, Heartbeat } from '../../../common/messages.ts';
import { InProcessBroker, type InProcessTransport } from '../../../common/transport/in-process-transport.ts';
import { IpcBrokerPort } from '../../../common/transport/ipc-broker-port.ts';
import { deriveAmphoraKey } from '../../../common/transport/signing.ts';
import type { MessageMeta } from '../../../common/transport/transport.ts';
import { captureLogger, MASTER_KEY, waitFor } from './helpers.ts';

const ROOT = new URL('../../..', import.meta.url).pathname;
const CHILD = path.join(ROOT, 'test/unit/transport/ipc-child.ts');
const dir = mkdtempSync(path.join(tmpdir(), 'argonaut-ipc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface Child {
  child: ChildProcess;
  /** Absent when started without a port. */
  port?: IpcBrokerPort;
  events: Array<Record<string, unknown>>;
  output: () => string;
  exited: Promise<number | string>;
}

interface Controller {
  broker: InProcessBroker;
  transport: InProcessTransport;
  heartbeats: Array<{ h: Heartbeat; meta: MessageMeta }>;
  fetches: number;
  current: ConfigPush | null;
  log: ReturnType<typeof captureLogger>;
}

async function controller(): Promise<Controller> {
  const broker = new InProcessBroker();
  const log = captureLogger();
  const transport = broker.connect({ identity: { role: 'controller', masterKey: MASTER_KEY }, logger: log.logger, requeueDelayMs: 1 });
  cleanups.push(() => transport.close({ drainTimeoutMs: 100 }));
  const c: Controller = { broker, transport, heartbeats: [], fetches: 0, current: null, log };
  await transport.onAmphoraReport({
    heartbeat: async (h, meta) => void c.heartbeats.push({ h, meta }),
    configFetch: async () => {
      c.fetches++;
      return c.current;
    },
  });
  return c;
}

/** Starts a process with an IPC channel and attaches a port for `amphoraId` to it (unless `withPort` is false). */
function startChild(c: Controller, amphoraId: string, args: string[], env: Record<string, string> = {}, withPort = true): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, AMPHORA_ID: amphoraId, AMPHORA_KEY: deriveAmphoraKey(MASTER_KEY, amphoraId).toString('hex'), ...env },
  });
  const port = withPort ? new IpcBrokerPort({ child, broker: c.broker, amphoraId, logger: c.log.logger }) : undefined;
  const events: Array<Record<string, unknown>> = [];
  let out = '';
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('{')) events.push(JSON.parse(line) as Record<string, unknown>);
  });
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return { child, port, events, output: () => out, exited };
}

const eventsOf = (ch: Child, name: string) => ch.events.filter((e) => e.event === name);

async function waitForEvent(ch: Child, name: string, count = 1): Promise<Array<Record<string, unknown>>> {
  await waitFor(`${count} "${name}" event(s) from the child; output:\n${ch.output()}`, () => eventsOf(ch, name).length >= count, 20_000, 20);
  return eventsOf(ch, name);
}

describe('IPC transport: an amphora in a child process on the parent broker', () => {
  it('fetches its config (RPC to the parent), takes pushes and commands with acks, and its heartbeats reach the controller', async () => {
    const c = await controller();
    const amphoraId = randomUUID();
    c.current = { amphoraId, configVersion: 1, config: { behaviour: 'ok' } };
    const ch = startChild(c, amphoraId, [CHILD, 'normal']);

    const [fetched] = await waitForEvent(ch, 'fetched');
    expect(fetched.push).toEqual(c.current);
    expect(c.fetches).toBe(1);

    await waitForEvent(ch, 'serving');
    const ack = await c.transport.pushConfig({ amphoraId, configVersion: 2, config: { behaviour: 'ok' } }, { timeoutMs: 5000 });
    expect(ack).toEqual({ amphoraId, configVersion: 2, ok: true });
    expect(await c.transport.sendCommand(amphoraId, { kind: 'ping' }, { timeoutMs: 5000 })).toEqual({ amphoraId, kind: 'ping', ok: true });

    await waitFor('a heartbeat at the controller', () => c.heartbeats.length >= 1);
    expect(c.heartbeats[0].h).toMatchObject({ id: amphoraId, seq: 1, ver: 3 });
    expect(c.heartbeats[0].meta.from).toBe(`amphora:${amphoraId}`);
    const [sent] = await waitForEvent(ch, 'heartbeat-sent');
    expect(sent.counters).toMatchObject({ connects: 1, connectionLosses: 0, rejected: { malformed: 0, 'bad-signature': 0 } });
    expect(ch.port!.counters()).toEqual({ malformed: 0, refused: 0, requeued: 0 });
  });

  it('requeues a push whose handler throws; the next attempt is a redelivery and is acked', async () => {
    const c = await controller();
    const amphoraId = randomUUID();
    const ch = startChild(c, amphoraId, [CHILD, 'normal']);
    await waitForEvent(ch, 'serving');

    const ack = await c.transport.pushConfig({ amphoraId, configVersion: 3, config: { behaviour: 'throw-first' } }, { timeoutMs: 5000 });
    expect(ack).toEqual({ amphoraId, configVersion: 3, ok: true });
    expect(eventsOf(ch, 'push').map((e) => [e.attempt, e.redelivered])).toEqual([
      [1, false],
      [2, true],
    ]);
  });

  it('requeues the unacked delivery of a child that dies; another consumer of the queue gets it and the call is answered', async () => {
    const c = await controller();
    const amphoraId = randomUUID();
    const ch = startChild(c, amphoraId, [CHILD, 'normal']);
    await waitForEvent(ch, 'serving');

    const call = c.transport.pushConfig({ amphoraId, configVersion: 4, config: { behaviour: 'hang' } }, { timeoutMs: 10_000, retries: 0 });
    await waitForEvent(ch, 'push');
    expect(c.broker.depth(`amphora.${amphoraId}`)).toBe(0); // delivered, unacked
    ch.child.kill('SIGKILL');
    await ch.exited;
    await waitFor('the delivery back in its queue', () => c.broker.depth(`amphora.${amphoraId}`) === 1);
    expect(ch.port!.detached).toBe(true);
    expect(ch.port!.counters().requeued).toBe(1);

    // The amphora comes back (here in-process): it gets the same order, marked redelivered, and answers the waiting call.
    const seen: MessageMeta[] = [];
    const again = c.broker.connect({ identity: { role: 'amphora', amphoraId, key: deriveAmphoraKey(MASTER_KEY, amphoraId) }, logger: c.log.logger });
    cleanups.push(() => again.close({ drainTimeoutMs: 100 }));
    await again.serveAmphora({
      configPush: async (p, meta) => {
        seen.push(meta);
        return { amphoraId, configVersion: p.configVersion, ok: true };
      },
      command: async (cmd) => ({ amphoraId, kind: cmd.kind, ok: true }),
    });
    expect(await call).toEqual({ amphoraId, configVersion: 4, ok: true });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ redelivered: true, attempt: 1 });
  });

  it('the child sees the parent go away as a lost connection and exits', async () => {
    const c = await controller();
    const amphoraId = randomUUID();
    const ch = startChild(c, amphoraId, [CHILD, 'normal']);
    await waitForEvent(ch, 'serving');
    ch.child.disconnect(); // what the child sees when its parent dies
    const [goneEvent] = await waitForEvent(ch, 'parent-gone');
    expect(goneEvent.counters).toMatchObject({ connects: 1, connectionLosses: 1 });
    expect(await ch.exited).toBe(0);
    expect(ch.port!.detached).toBe(true);
    expect(c.broker.hasQueue(`reply.${ch.port!.replyAddress}`)).toBe(false);
  });

  it('fails to connect with ConnectError when the parent has no port (no answer to the handshake)', async () => {
    const c = await controller();
    const ch = startChild(c, randomUUID(), [CHILD, 'normal'], { CONNECT_TIMEOUT_MS: '300' }, false);
    expect(await ch.exited).toBe(1);
    expect(ch.output()).toMatch(/ConnectError: the parent did not answer the IPC handshake within 300 ms/);
    expect(eventsOf(ch, 'connected')).toEqual([]);
  });

  it('ignores malformed frames and refuses what an amphora may not do, without harm to the parent or the child', async () => {
    const c = await controller();
    const amphoraId = randomUUID();
    const other = '00000000-0000-4000-8000-0000000000ff';
    c.current = { amphoraId, configVersion: 1, config: {} };
    const ch = startChild(c, amphoraId, [CHILD, 'malformed']);
    await waitForEvent(ch, 'serving');

    // string, number, null, unknown t, negative id, bad base64, then a settle of no delivery
    await waitFor('the bad frames counted', () => ch.port!.counters().malformed === 7);
    expect(ch.port!.counters().refused).toBe(2); // another amphora's queue; an order
    const warnings = c.log.events.filter((e) => e.msg === 'malformed IPC frame from the amphora process ignored');
    expect(warnings).toHaveLength(6);
    expect(warnings[5].issues).toEqual([expect.stringMatching(/^content: /)]);
    // Nothing reached the other amphora's queue, and this amphora still works.
    expect(c.broker.hasQueue(`amphora.${other}`)).toBe(false);
    expect((await waitForEvent(ch, 'fetched'))[0].push).toEqual(c.current);
    expect(await c.transport.sendCommand(amphoraId, { kind: 'ping' }, { timeoutMs: 5000 })).toEqual({ amphoraId, kind: 'ping', ok: true });
  });
});

describe('the agent process with messaging.kind ipc', () => {
  it('fetches its config from the parent, sends heartbeats, and stops (exit 0) when the parent goes away', async () => {
    const c = await controller();
    const amphoraId = randomUUID();
    const file = path.join(dir, `${amphoraId}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        amphoraId,
        key: deriveAmphoraKey(MASTER_KEY, amphoraId).toString('hex'),
        messaging: { kind: 'ipc', drainTimeoutMs: 500 },
        heartbeatIntervalMs: 100,
        dataplane: { workers: 0, drainTimeoutMs: 500 },
      }),
    );
    const ch = startChild(c, amphoraId, [path.join(ROOT, 'bin/argonaut-amphora.ts'), '--config', file]);
    await waitFor(`the agent's config fetch; output:\n${ch.output()}`, () => c.fetches >= 1, 20_000);
    await waitFor('two heartbeats', () => c.heartbeats.length >= 2, 10_000);
    expect(c.heartbeats[0].h).toMatchObject({ id: amphoraId, configVersion: null });

    ch.child.disconnect();
    expect(await ch.exited).toBe(0);
    expect(ch.output()).toContain('the parent process is gone (IPC channel closed); stopping');
    expect(ch.output()).toContain('"msg":"amphora agent stopped"');
  });
});
