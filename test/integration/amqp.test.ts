// The AMQP transport against the real RabbitMQ on 127.0.0.1:5672 (guest/guest). It is not skipped
// when RabbitMQ is down: it fails (CI starts RabbitMQ first; by hand: ../shared/peers/rabbitmq-up.sh).
// One restart of RabbitMQ (rabbitmqctl stop_app / start_app) happens in here. Every exchange and
// queue is named with a prefix unique to this run and deleted at the end.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { connect, type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Heartbeat } from '../../common/messages.ts';
import { AmqpTransport } from '../../common/transport/amqp-transport.ts';
import {
  amphoraPrincipal,
  controllerKeyRing,
  deriveAmphoraKey,
  signEnvelope,
  toKey,
  verifyEnvelope,
  type Envelope,
} from '../../common/transport/signing.ts';
import { topologyNames } from '../../common/transport/topology.ts';
import {
  ConnectError,
  RpcTimeoutError,
  type AmphoraOrderHandlers,
  type MessageMeta,
  type TransportOptions,
} from '../../common/transport/transport.ts';
import { captureLogger, gate, heartbeat, MASTER_KEY, waitFor } from '../unit/transport/helpers.ts';

const run = promisify(execFile);
const URL = 'amqp://guest:guest@127.0.0.1:5672/';
const RUN_PREFIX = `argonaut-test-${randomUUID().slice(0, 8)}`;
let prefixes = 0;
let admin: ChannelModel | undefined;
let ch: Channel;
const transports: AmqpTransport[] = [];
const adminErrors: Error[] = [];

/** The test's own connection (inspection, raw publishing); opened again after the RabbitMQ restart. */
async function openAdmin(): Promise<void> {
  try {
    admin = await connect(URL);
  } catch (err) {
    throw new Error(`RabbitMQ is not reachable at ${URL} (${(err as Error).message}); start it with ../shared/peers/rabbitmq-up.sh`);
  }
  const conn = admin;
  conn.on('error', (err: Error) => adminErrors.push(err)); // the restart closes it; openAdmin() replaces it
  conn.on('close', () => {
    if (admin === conn) admin = undefined;
  });
  ch = await conn.createChannel();
}

beforeAll(openAdmin);

afterAll(async () => {
  await Promise.all(transports.map((t) => t.close({ drainTimeoutMs: 500 })));
  if (!admin) await openAdmin();
  const out = await run('rabbitmqctl', ['-q', '--no-table-headers', 'list_queues', 'name']);
  for (const q of out.stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith(RUN_PREFIX))) await ch.deleteQueue(q);
  const ex = await run('rabbitmqctl', ['-q', '--no-table-headers', 'list_exchanges', 'name']);
  for (const e of ex.stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith(RUN_PREFIX))) await ch.deleteExchange(e);
  await admin!.close();
}, 30_000);

/** A fresh namespace (its own health and controller queues) for one test. */
function namespace() {
  const prefix = `${RUN_PREFIX}-${++prefixes}`;
  const log = captureLogger();
  const base: Partial<TransportOptions> = {
    url: URL,
    prefix,
    logger: log.logger,
    requeueDelayMs: 10,
    initialConnectTimeoutMs: 5000,
    reconnect: { initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.2 },
  };
  const controller = async (over: Partial<TransportOptions> = {}) => {
    const t = await AmqpTransport.connect({ ...base, ...over, identity: { role: 'controller', masterKey: MASTER_KEY } });
    transports.push(t);
    return t;
  };
  const amphora = async (id: string, over: Partial<TransportOptions> = {}) => {
    const t = await AmqpTransport.connect({ ...base, ...over, identity: { role: 'amphora', amphoraId: id, key: deriveAmphoraKey(MASTER_KEY, id) } });
    transports.push(t);
    return t;
  };
  return { prefix, names: topologyNames(prefix), controller, amphora, log };
}

function acking(amphoraId: string, delayMs = 0, metas: MessageMeta[] = []): AmphoraOrderHandlers {
  return {
    configPush: async (p, meta) => {
      metas.push(meta);
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      return { amphoraId, configVersion: p.configVersion, ok: true };
    },
    command: async (c) => ({ amphoraId, kind: c.kind, ok: true }),
  };
}

function collect(into: Heartbeat[], configs: Record<string, number> = {}) {
  return {
    heartbeat: async (h: Heartbeat) => void into.push(h),
    configFetch: async (req: { amphoraId: string }) =>
      configs[req.amphoraId] === undefined ? null : { amphoraId: req.amphoraId, configVersion: configs[req.amphoraId], config: {} },
  };
}

function env(over: Partial<Envelope> & Pick<Envelope, 'from' | 'to' | 'type' | 'body'>): Envelope {
  return { v: 1, id: randomUUID(), ts: Date.now(), born: Date.now(), ...over };
}

const totalRejected = (t: AmqpTransport): number => Object.values(t.counters().rejected).reduce((a, b) => a + b, 0);

describe('AMQP transport on RabbitMQ', () => {
  it('RPC round trip: concurrent calls each get their own answer; config fetch; commands', async () => {
    const ns = namespace();
    const [a, b] = [randomUUID(), randomUUID()];
    const controller = await ns.controller();
    await controller.onAmphoraReport(collect([], { [a]: 12 }));
    const ampA = await ns.amphora(a);
    const ampB = await ns.amphora(b);
    await ampA.serveAmphora(acking(a, 150)); // A answers slowly, B at once: answers come back out of call order
    await ampB.serveAmphora(acking(b));
    const calls = [
      controller.pushConfig({ amphoraId: a, configVersion: 1, config: {} }),
      controller.pushConfig({ amphoraId: b, configVersion: 2, config: {} }),
      controller.pushConfig({ amphoraId: a, configVersion: 3, config: {} }),
      controller.pushConfig({ amphoraId: b, configVersion: 4, config: {} }),
    ];
    const acks = await Promise.all(calls);
    expect(acks.map((k) => [k.amphoraId, k.configVersion, k.ok])).toEqual([
      [a, 1, true],
      [b, 2, true],
      [a, 3, true],
      [b, 4, true],
    ]);
    expect(await controller.sendCommand(b, { kind: 'ping' })).toEqual({ amphoraId: b, kind: 'ping', ok: true });
    expect(await ampA.fetchConfig()).toEqual({ amphoraId: a, configVersion: 12, config: {} });
    expect(await ampB.fetchConfig()).toBeNull();
    expect(controller.counters()).toMatchObject({ rpcTimeouts: 0, lateReplies: 0 });
  });

  it('on the wire: the answer carries the request id as AMQP correlation id and signed `re`', async () => {
    const ns = namespace();
    const id = randomUUID();
    await (await ns.amphora(id)).serveAmphora(acking(id));
    const { queue } = await ch.assertQueue('', { exclusive: true });
    const answers: ConsumeMessage[] = [];
    await ch.consume(queue, (m) => m && answers.push(m), { noAck: true });
    const request = env({ from: 'controller', to: amphoraPrincipal(id), type: 'config.push', body: { amphoraId: id, configVersion: 8, config: {} } });
    const key = controllerKeyRing(MASTER_KEY).signingKey(amphoraPrincipal(id));
    ch.publish(ns.names.amphoraExchange, id, signEnvelope(key, request), { replyTo: queue, messageId: request.id, correlationId: request.id });
    await waitFor('the answer', () => answers.length === 1);
    expect(answers[0].properties.correlationId).toBe(request.id);
    const answer = verifyEnvelope(answers[0].content, {
      self: 'controller',
      keyFor: controllerKeyRing(MASTER_KEY).verifyingKey,
      now: Date.now(),
      maxAgeMs: 60_000,
      maxSkewMs: 5000,
      maxBytes: 1 << 20,
    });
    expect(answer).toMatchObject({ re: request.id, from: amphoraPrincipal(id), type: 'config.ack', body: { amphoraId: id, configVersion: 8, ok: true } });
  });

  it('times out when nobody answers; the unanswered orders expire from the queue', async () => {
    const ns = namespace();
    const id = randomUUID();
    const controller = await ns.controller();
    const t0 = Date.now();
    const err = await controller.pushConfig({ amphoraId: id, configVersion: 1, config: {} }, { timeoutMs: 300, retries: 1 }).catch((e: unknown) => e);
    const elapsed = Date.now() - t0;
    expect(err).toBeInstanceOf(RpcTimeoutError);
    expect(err).toMatchObject({ attempts: 2, timeoutMs: 300 });
    expect(elapsed).toBeGreaterThanOrEqual(590);
    expect(elapsed).toBeLessThan(3000);
    expect(controller.counters()).toMatchObject({ rpcTimeouts: 2, rpcRetries: 1 });
    await waitFor('the expired orders to leave the queue', async () => (await ch.checkQueue(ns.names.amphoraQueue(id))).messageCount === 0, 3000, 50);
  });

  it('retries: an amphora that starts after the first attempt timed out answers the second', async () => {
    const ns = namespace();
    const id = randomUUID();
    const controller = await ns.controller();
    const call = controller.pushConfig({ amphoraId: id, configVersion: 5, config: {} }, { timeoutMs: 400, retries: 4 });
    const outcome = call.catch((e: unknown) => e);
    await waitFor('the first attempt to time out', () => controller.counters().rpcTimeouts >= 1, 3000);
    const metas: MessageMeta[] = [];
    await (await ns.amphora(id)).serveAmphora(acking(id, 0, metas));
    expect(await outcome).toEqual({ amphoraId: id, configVersion: 5, ok: true });
    expect(metas).toHaveLength(1);
    expect(controller.counters().rpcRetries).toBeGreaterThanOrEqual(1);
  });

  it('a consumer that throws gets the message again (requeued, redelivered) and handles it; a message id is handled once', async () => {
    const ns = namespace();
    const id = randomUUID();
    const controller = await ns.controller();
    const amp = await ns.amphora(id);
    const metas: MessageMeta[] = [];
    await amp.serveAmphora({
      ...acking(id),
      configPush: async (p, meta) => {
        metas.push(meta);
        if (metas.length === 1) throw new Error('transient failure');
        return { amphoraId: id, configVersion: p.configVersion, ok: true };
      },
    });
    expect(await controller.pushConfig({ amphoraId: id, configVersion: 2, config: {} }, { timeoutMs: 5000, retries: 0 })).toMatchObject({ ok: true });
    expect(metas.map((m) => [m.attempt, m.redelivered])).toEqual([
      [1, false],
      [2, true],
    ]);
    expect(metas[1].messageId).toBe(metas[0].messageId);
    expect(amp.counters()).toMatchObject({ requeued: 1, handled: 1 });

    // The same heartbeat bytes delivered twice (a resend after a lost confirm looks like this): handled once.
    const got: Heartbeat[] = [];
    await controller.onAmphoraReport(collect(got));
    const bytes = signEnvelope(deriveAmphoraKey(MASTER_KEY, id), env({ from: amphoraPrincipal(id), to: 'controller', type: 'heartbeat', body: heartbeat(id, 1) }));
    ch.publish(ns.names.controllerExchange, 'health', bytes, { persistent: true });
    ch.publish(ns.names.controllerExchange, 'health', bytes, { persistent: true });
    await waitFor('the copy to be dropped', () => controller.counters().duplicates === 1);
    expect(got.map((h) => h.seq)).toEqual([1]);
  });

  it('refuses forged, unsigned, stale and impersonating messages: acked and dropped, never handled or requeued', async () => {
    const ns = namespace();
    const id = randomUUID();
    const other = randomUUID();
    const controller = await ns.controller();
    const got: Heartbeat[] = [];
    await controller.onAmphoraReport(collect(got));
    const amp = await ns.amphora(id);
    const orders: MessageMeta[] = [];
    await amp.serveAmphora(acking(id, 0, orders));
    const key = deriveAmphoraKey(MASTER_KEY, id);
    const hb = (over: Partial<Envelope> = {}) => env({ from: amphoraPrincipal(id), to: 'controller', type: 'heartbeat', body: heartbeat(id, 1), ...over });
    const toHealth: Buffer[] = [
      Buffer.from(JSON.stringify(hb())), // unsigned
      signEnvelope(toKey('not-the-real-key-at-all'), hb()), // forged
      signEnvelope(deriveAmphoraKey(MASTER_KEY, other), hb({ from: amphoraPrincipal(other) })), // other amphora reports as `id`
      signEnvelope(key, hb({ ts: Date.now() - 10 * 60_000 })), // replayed after the window
    ];
    for (const bytes of toHealth) ch.publish(ns.names.controllerExchange, 'health', bytes, { persistent: true });
    // an order forged by another amphora (it holds only its own key)
    const order = env({ from: 'controller', to: amphoraPrincipal(id), type: 'config.push', body: { amphoraId: id, configVersion: 666, config: {} } });
    ch.publish(ns.names.amphoraExchange, id, signEnvelope(deriveAmphoraKey(MASTER_KEY, other), order), { replyTo: 'nowhere' });
    await waitFor('the refusals', () => totalRejected(controller) === 4 && totalRejected(amp) === 1);
    expect(controller.counters().rejected).toMatchObject({ malformed: 1, 'bad-signature': 1, impersonation: 1, stale: 1 });
    expect(amp.counters().rejected['bad-signature']).toBe(1);
    // the genuine one still goes through
    await amp.publishHeartbeat(heartbeat(id, 2));
    await waitFor('the genuine heartbeat', () => got.length === 1);
    expect(got[0].seq).toBe(2);
    expect(orders).toEqual([]);
    expect((await ch.checkQueue(ns.names.healthQueue)).messageCount).toBe(0);
    expect((await ch.checkQueue(ns.names.amphoraQueue(id))).messageCount).toBe(0);
    expect(ns.log.events.filter((e) => e.msg === 'message refused and dropped')).toHaveLength(5);
  });

  it('loses no heartbeat across a RabbitMQ restart (confirms + outbox), reconnects with back-off, and finishes a call made during the outage', async () => {
    const ns = namespace();
    const id = randomUUID();
    const controller = await ns.controller();
    const handled = new Map<number, number>();
    await controller.onAmphoraReport({
      heartbeat: async (h) => void handled.set(h.seq, (handled.get(h.seq) ?? 0) + 1),
      configFetch: async () => null,
    });
    const amp = await ns.amphora(id);
    await amp.serveAmphora(acking(id));

    let seq = 0;
    const published: Array<Promise<void>> = [];
    const ticker = setInterval(() => published.push(amp.publishHeartbeat(heartbeat(id, seq++))), 40);
    let stopped = false;
    let call: Promise<unknown> | undefined;
    try {
      await waitFor('some heartbeats before the restart', () => handled.size >= 5, 5000);
      await run('rabbitmqctl', ['stop_app']);
      stopped = true;
      await waitFor('both sides to notice', () => !amp.connected && !controller.connected, 5000);
      call = controller.pushConfig({ amphoraId: id, configVersion: 42, config: {} }, { timeoutMs: 25_000, retries: 0 }).catch((e: unknown) => e);
      const beforeStart = seq;
      await waitFor('heartbeats queued during the outage', () => seq >= beforeStart + 10, 5000);
      await run('rabbitmqctl', ['start_app']);
      stopped = false;
      await waitFor('both sides to reconnect', () => amp.connected && controller.connected, 15_000, 20);
      const afterStart = seq;
      await waitFor('heartbeats after the restart', () => seq >= afterStart + 5, 5000);
    } finally {
      clearInterval(ticker);
      if (stopped) await run('rabbitmqctl', ['start_app']);
      await openAdmin();
    }
    await Promise.all(published); // every publish confirmed by the broker
    const sent = seq;
    await waitFor(`all ${sent} heartbeats handled`, () => handled.size === sent, 15_000, 20);
    expect([...handled.keys()].sort((x, y) => x - y)).toEqual([...Array(sent).keys()]);
    expect([...handled.values()].every((n) => n === 1)).toBe(true); // resends are recognised, never handled twice
    expect(await call).toEqual({ amphoraId: id, configVersion: 42, ok: true });

    for (const t of [amp, controller]) expect(t.counters()).toMatchObject({ connects: 2, connectionLosses: 1, outboxDropped: 0 });
    expect(ns.log.events.filter((e) => (e.level as number) >= 50)).toEqual([]); // nothing given up
    expect(amp.counters().connectFailures).toBeGreaterThanOrEqual(2);
    const delays = ns.log.events.filter((e) => e.msg === 'reconnecting to RabbitMQ' && e.self === `amphora:${id}`).map((e) => e.delayMs as number);
    expect(delays.length).toBeGreaterThanOrEqual(3);
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect(delays[2]).toBeGreaterThanOrEqual(320); // 100 · 2² minus at most 20 % jitter
    expect(Math.max(...delays)).toBeLessThanOrEqual(1000);
  }, 50_000);

  it('a queue deleted under a consumer is declared again (consumer cancelled -> reconnection)', async () => {
    const ns = namespace();
    const id = randomUUID();
    const controller = await ns.controller();
    const amp = await ns.amphora(id);
    await amp.serveAmphora(acking(id));
    expect(await controller.pushConfig({ amphoraId: id, configVersion: 1, config: {} })).toMatchObject({ ok: true });
    await controller.forgetAmphora(id);
    await waitFor('the amphora to reconnect', () => amp.counters().connects === 2, 10_000);
    expect(await controller.pushConfig({ amphoraId: id, configVersion: 2, config: {} }, { timeoutMs: 3000 })).toMatchObject({ configVersion: 2, ok: true });
    expect(ns.log.events.some((e) => e.msg === 'consumer cancelled by RabbitMQ (queue deleted?); reconnecting to declare it again')).toBe(true);
  });

  it('close drains: running handlers finish and ack, undelivered messages stay queued, queued publishes are confirmed', async () => {
    const ns = namespace();
    const id = randomUUID();
    const controller = await ns.controller({ prefetch: { health: 2 } });
    const release = gate();
    const started: number[] = [];
    const finished: number[] = [];
    await controller.onAmphoraReport({
      ...collect([]),
      heartbeat: async (h) => {
        started.push(h.seq);
        await release.promise;
        finished.push(h.seq);
      },
    });
    const amp = await ns.amphora(id);
    for (const s of [1, 2, 3]) await amp.publishHeartbeat(heartbeat(id, s));
    await waitFor('two handlers running', () => started.length === 2);
    let closed = false;
    const closing = controller.close({ drainTimeoutMs: 10_000 }).then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(false);
    release.open();
    await closing;
    expect(finished.sort()).toEqual([1, 2]);
    expect((await ch.checkQueue(ns.names.healthQueue)).messageCount).toBe(1); // acked, not requeued; seq 3 waits

    const last = amp.publishHeartbeat(heartbeat(id, 4)); // close() must wait for its confirm
    await amp.close();
    await last;
    const next = await ns.controller();
    const got: Heartbeat[] = [];
    await next.onAmphoraReport(collect(got));
    await waitFor('the two queued heartbeats', () => got.length === 2);
    expect(got.map((h) => h.seq).sort()).toEqual([3, 4]);
  });

  it('close requeues the message of a handler that outlives the drain timeout', async () => {
    const ns = namespace();
    const id = randomUUID();
    const controller = await ns.controller();
    const never = gate();
    let started = 0;
    await controller.onAmphoraReport({ ...collect([]), heartbeat: async () => void (started++, await never.promise) });
    await (await ns.amphora(id)).publishHeartbeat(heartbeat(id, 1));
    await waitFor('the handler to start', () => started === 1);
    await controller.close({ drainTimeoutMs: 200 });
    const m = await ch.get(ns.names.healthQueue, { noAck: true });
    expect(m && m.fields.redelivered).toBe(true);
    never.open();
  });

  it('fails start-up with ConnectError when the broker cannot be reached within initialConnectTimeoutMs', async () => {
    const t0 = Date.now();
    const err = await AmqpTransport.connect({
      url: 'amqp://guest:guest@127.0.0.1:1/',
      initialConnectTimeoutMs: 400,
      reconnect: { initialDelayMs: 50 },
      logger: captureLogger().logger,
      identity: { role: 'controller', masterKey: MASTER_KEY },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});
