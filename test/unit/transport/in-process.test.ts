// The shared transport semantics (core.ts) through the in-process transport.
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { Heartbeat } from '../../../common/messages.ts';
import { MessageValidationError } from '../../../common/messages.ts';
import { InProcessBroker, type InProcessTransport } from '../../../common/transport/in-process-transport.ts';
import { amphoraPrincipal, deriveAmphoraKey, signEnvelope, toKey, type Envelope } from '../../../common/transport/signing.ts';
import {
  RemoteError,
  RpcTimeoutError,
  TransportClosedError,
  type AmphoraOrderHandlers,
  type MessageMeta,
  type TransportOptions,
} from '../../../common/transport/transport.ts';
import { captureLogger, gate, heartbeat, MASTER_KEY, waitFor } from './helpers.ts';

const open: InProcessTransport[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close({ drainTimeoutMs: 100 })));
});

function setup(extra: Partial<TransportOptions> = {}) {
  const broker = new InProcessBroker();
  const log = captureLogger();
  const base = { logger: log.logger, requeueDelayMs: 1, ...extra };
  const controller = broker.connect({ ...base, identity: { role: 'controller', masterKey: MASTER_KEY } });
  open.push(controller);
  const amphora = (id = randomUUID(), over: Partial<TransportOptions> = {}) => {
    const t = broker.connect({ ...base, ...over, identity: { role: 'amphora', amphoraId: id, key: deriveAmphoraKey(MASTER_KEY, id) } });
    open.push(t);
    return t;
  };
  return { broker, controller, amphora, log };
}

function acking(amphoraId: string, seen: Array<{ version: number; meta: MessageMeta }> = []): AmphoraOrderHandlers {
  return {
    configPush: async (p, meta) => {
      seen.push({ version: p.configVersion, meta });
      return { amphoraId, configVersion: p.configVersion, ok: true };
    },
    command: async (c) => ({ amphoraId, kind: c.kind, ok: true }),
  };
}

function reports(into: Array<{ h: Heartbeat; meta: MessageMeta }>, configs: Record<string, number> = {}) {
  return {
    heartbeat: async (h: Heartbeat, meta: MessageMeta) => void into.push({ h, meta }),
    configFetch: async (req: { amphoraId: string }) =>
      configs[req.amphoraId] === undefined ? null : { amphoraId: req.amphoraId, configVersion: configs[req.amphoraId], config: { v: configs[req.amphoraId] } },
  };
}

describe('RPC', () => {
  it('pushes a configuration and returns the amphora ack; the handler sees who sent it', async () => {
    const { controller, amphora } = setup();
    const id = randomUUID();
    const seen: Array<{ version: number; meta: MessageMeta }> = [];
    await amphora(id).serveAmphora(acking(id, seen));
    const ack = await controller.pushConfig({ amphoraId: id, configVersion: 5, config: { listeners: [] } }, { timeoutMs: 1000 });
    expect(ack).toEqual({ amphoraId: id, configVersion: 5, ok: true });
    expect(seen).toHaveLength(1);
    expect(seen[0].meta).toMatchObject({ from: 'controller', attempt: 1, redelivered: false });
    expect(controller.counters()).toMatchObject({ rpcTimeouts: 0, rpcRetries: 0 });
    expect(await controller.sendCommand(id, { kind: 'ping' })).toEqual({ amphoraId: id, kind: 'ping', ok: true });
  });

  it('matches each answer to its call (correlation by message id) when answers come back out of order', async () => {
    const { controller, amphora } = setup();
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    for (const [i, id] of ids.entries()) {
      await amphora(id).serveAmphora({
        ...acking(id),
        configPush: async (p) => {
          await new Promise((r) => setTimeout(r, 60 - i * 25)); // the first called answers last
          return { amphoraId: id, configVersion: p.configVersion, ok: true };
        },
      });
    }
    const acks = await Promise.all(ids.map((id, i) => controller.pushConfig({ amphoraId: id, configVersion: 10 + i, config: {} })));
    expect(acks.map((a) => [a.amphoraId, a.configVersion])).toEqual(ids.map((id, i) => [id, 10 + i]));
  });

  it('serves config fetches: the configuration, or null when the amphora has none', async () => {
    const { controller, amphora } = setup();
    const known = randomUUID();
    const unknown = randomUUID();
    await controller.onAmphoraReport(reports([], { [known]: 9 }));
    expect(await amphora(known).fetchConfig()).toEqual({ amphoraId: known, configVersion: 9, config: { v: 9 } });
    expect(await amphora(unknown).fetchConfig()).toBeNull();
  });

  it('refuses at the sender a message the receiver would refuse as too large', async () => {
    const { broker, controller } = setup({ maxMessageBytes: 1000 });
    const id = randomUUID();
    await expect(controller.pushConfig({ amphoraId: id, configVersion: 1, config: 'x'.repeat(2000) })).rejects.toThrow(RangeError);
    expect(broker.depth(`amphora.${id}`)).toBe(0);
    expect(await controller.sendCommand(id, { kind: 'ping' }, { timeoutMs: 20, retries: 0 }).catch((e: unknown) => e)).toBeInstanceOf(RpcTimeoutError);
  });

  it('answers a copy of an already answered config fetch again (reads are not cached), but handles a copied order once', async () => {
    const { broker, controller } = setup();
    const id = randomUUID();
    let fetches = 0;
    await controller.onAmphoraReport({ ...reports([]), configFetch: async () => (fetches++, null) });
    broker.queue('reply.probe'); // a reply queue for the injected requests
    const fetch = signEnvelope(deriveAmphoraKey(MASTER_KEY, id), {
      v: 1,
      id: randomUUID(),
      ts: Date.now(),
      born: Date.now(),
      from: amphoraPrincipal(id),
      to: 'controller',
      type: 'config.fetch',
      body: { amphoraId: id },
    });
    broker.inject({ kind: 'controller' }, fetch, 'probe');
    await waitFor('the first answer', () => broker.depth('reply.probe') === 1);
    broker.inject({ kind: 'controller' }, fetch, 'probe');
    await waitFor('the second answer', () => broker.depth('reply.probe') === 2);
    expect(fetches).toBe(2);
  });

  it('times out when nobody answers, after every attempt; the unanswered orders expire in the queue', async () => {
    const { broker, controller, amphora } = setup();
    const id = randomUUID();
    const started = Date.now();
    const err = await controller.pushConfig({ amphoraId: id, configVersion: 1, config: {} }, { timeoutMs: 80, retries: 1 }).catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(RpcTimeoutError);
    expect(err).toMatchObject({ attempts: 2, timeoutMs: 80, target: `amphora:${id}` });
    expect(elapsed).toBeGreaterThanOrEqual(150);
    expect(elapsed).toBeLessThan(2000);
    expect(controller.counters()).toMatchObject({ rpcTimeouts: 2, rpcRetries: 1 });
    // an amphora that starts now does not apply the stale order
    const seen: Array<{ version: number; meta: MessageMeta }> = [];
    await amphora(id).serveAmphora(acking(id, seen));
    await new Promise((r) => setTimeout(r, 30));
    expect(seen).toEqual([]);
    expect(broker.depth(`amphora.${id}`)).toBe(0);
  });

  it('retries: an amphora that starts after the first attempt timed out answers the second', async () => {
    const { controller, amphora } = setup();
    const id = randomUUID();
    const seen: Array<{ version: number; meta: MessageMeta }> = [];
    const call = controller.pushConfig({ amphoraId: id, configVersion: 2, config: {} }, { timeoutMs: 100, retries: 3 });
    await waitFor('first attempt to time out', () => controller.counters().rpcTimeouts === 1, 2000, 5);
    await amphora(id).serveAmphora(acking(id, seen));
    expect(await call).toMatchObject({ configVersion: 2, ok: true });
    expect(seen).toHaveLength(1);
    expect(controller.counters().rpcRetries).toBeGreaterThanOrEqual(1);
  });

  it.each([1, 4])('a call retried while its order is being handled (prefetch %i) is handled once; the one answer settles it', async (prefetch) => {
    const { controller, amphora } = setup();
    const id = randomUUID();
    const slow = gate();
    let calls = 0;
    const amp = amphora(id, { prefetch: { amphora: prefetch } });
    await amp.serveAmphora({
      ...acking(id),
      configPush: async (p) => {
        calls++;
        await slow.promise;
        return { amphoraId: id, configVersion: p.configVersion, ok: true };
      },
    });
    const call = controller.pushConfig({ amphoraId: id, configVersion: 3, config: {} }, { timeoutMs: 60, retries: 50 });
    const outcome = call.catch((e: unknown) => e);
    await waitFor('two retries', () => controller.counters().rpcRetries >= 2, 2000, 5);
    // with prefetch > 1 the retries reach the amphora while the first copy runs: dropped as duplicates
    if (prefetch > 1) await waitFor('duplicates at the amphora', () => amp.counters().duplicates >= 2, 2000, 5);
    slow.open();
    expect(await outcome).toMatchObject({ configVersion: 3, ok: true });
    expect(calls).toBe(1);
    expect(amp.counters().handled).toBe(1);
  });

  it('a handler that throws gets the message again (requeued), then succeeds', async () => {
    const { controller, amphora, log } = setup();
    const id = randomUUID();
    const metas: MessageMeta[] = [];
    const amp = amphora(id);
    await amp.serveAmphora({
      ...acking(id),
      configPush: async (p, meta) => {
        metas.push(meta);
        if (metas.length === 1) throw new Error('disk full');
        return { amphoraId: id, configVersion: p.configVersion, ok: true };
      },
    });
    expect(await controller.pushConfig({ amphoraId: id, configVersion: 4, config: {} }, { timeoutMs: 2000, retries: 0 })).toMatchObject({ ok: true });
    expect(metas.map((m) => [m.attempt, m.redelivered])).toEqual([
      [1, false],
      [2, true],
    ]);
    expect(metas[0].messageId).toBe(metas[1].messageId);
    expect(amp.counters()).toMatchObject({ requeued: 1, handled: 1, handlerFailures: 0 });
    expect(log.events.some((e) => e.msg === 'handler failed; message requeued' && (e.err as { message: string }).message === 'disk full')).toBe(true);
  });

  it('a handler that always throws is not retried forever: the caller gets a RemoteError', async () => {
    const { broker, controller, amphora } = setup({ maxHandlerAttempts: 3 });
    const id = randomUUID();
    let calls = 0;
    const amp = amphora(id);
    await amp.serveAmphora({
      ...acking(id),
      configPush: async () => {
        calls++;
        throw new Error('cannot apply');
      },
    });
    const err = await controller.pushConfig({ amphoraId: id, configVersion: 1, config: {} }, { timeoutMs: 2000, retries: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteError);
    expect((err as RemoteError).remoteMessage).toMatch(/config\.push failed 3 times: cannot apply/);
    expect(calls).toBe(3);
    expect(amp.counters()).toMatchObject({ requeued: 2, handlerFailures: 1 });
    expect(broker.depth(`amphora.${id}`)).toBe(0);
  });

  it('an ack that does not match the schema or names another amphora counts as a handler failure', async () => {
    const { controller, amphora } = setup({ maxHandlerAttempts: 1 });
    const id = randomUUID();
    await amphora(id).serveAmphora({
      ...acking(id),
      configPush: async (p) => ({ amphoraId: randomUUID(), configVersion: p.configVersion, ok: true }),
      command: async () => ({ amphoraId: id, kind: 'ping', ok: false }) as never, // no error text
    });
    await expect(controller.pushConfig({ amphoraId: id, configVersion: 1, config: {} })).rejects.toThrow(/answered for amphora/);
    await expect(controller.sendCommand(id, { kind: 'ping' })).rejects.toThrow(/invalid command.ack message/);
  });
});

describe('heartbeats', () => {
  it('arrive with their sender, and each message id is handled once even if the same bytes come twice', async () => {
    const { broker, controller, amphora } = setup();
    const id = randomUUID();
    const got: Array<{ h: Heartbeat; meta: MessageMeta }> = [];
    await controller.onAmphoraReport(reports(got));
    const amp = amphora(id);
    for (let seq = 0; seq < 5; seq++) await amp.publishHeartbeat(heartbeat(id, seq));
    await waitFor('5 heartbeats', () => got.length === 5);
    expect(got.map((g) => g.h.seq)).toEqual([0, 1, 2, 3, 4]);
    expect(got[0].meta.from).toBe(`amphora:${id}`);
    // replay of a captured message: same id, valid signature -> dropped as a duplicate
    const replay = signEnvelope(deriveAmphoraKey(MASTER_KEY, id), {
      v: 1,
      id: got[2].meta.messageId,
      ts: Date.now(),
      born: Date.now(),
      from: amphoraPrincipal(id),
      to: 'controller',
      type: 'heartbeat',
      body: heartbeat(id, 2),
    });
    broker.inject({ kind: 'health' }, replay);
    await waitFor('the duplicate to be dropped', () => controller.counters().duplicates === 1);
    expect(got).toHaveLength(5);
    expect(broker.depth('health')).toBe(0);
  });

  it('a heartbeat handler that throws sees the message again; a poison message is dropped after the limit', async () => {
    const { broker, controller, amphora } = setup({ maxHandlerAttempts: 4 });
    const id = randomUUID();
    const attempts = new Map<number, number>();
    await controller.onAmphoraReport({
      ...reports([]),
      heartbeat: async (h) => {
        attempts.set(h.seq, (attempts.get(h.seq) ?? 0) + 1);
        if (h.seq === 1 && attempts.get(1)! < 2) throw new Error('database busy');
        if (h.seq === 2) throw new Error('always fails');
      },
    });
    const amp = amphora(id);
    await amp.publishHeartbeat(heartbeat(id, 1));
    await amp.publishHeartbeat(heartbeat(id, 2));
    await waitFor('both settled', () => controller.counters().handled + controller.counters().handlerFailures === 2);
    expect(Object.fromEntries(attempts)).toEqual({ 1: 2, 2: 4 });
    expect(controller.counters()).toMatchObject({ handled: 1, handlerFailures: 1, requeued: 4 });
    expect(broker.depth('health')).toBe(0);
  });

  it('are validated before they are sent, and only for the amphora itself', async () => {
    const { controller, amphora } = setup();
    const id = randomUUID();
    const amp = amphora(id);
    await expect(amp.publishHeartbeat({ ...heartbeat(id, 1), ver: 2 } as never)).rejects.toBeInstanceOf(MessageValidationError);
    await expect(amp.publishHeartbeat(heartbeat(randomUUID(), 1))).rejects.toThrow(/cannot publish a heartbeat for/);
    await expect(controller.publishHeartbeat(heartbeat(id, 1))).rejects.toThrow(/is for an amphora/);
    await expect(amp.pushConfig({ amphoraId: id, configVersion: 1, config: {} })).rejects.toThrow(/is for the controller/);
  });
});

describe('refused messages (acked, dropped, logged, counted; never handled, never requeued)', () => {
  it('forged, unsigned, stale, misaddressed or invalid heartbeats', async () => {
    const { broker, controller, log } = setup();
    const id = randomUUID();
    const other = randomUUID();
    const handled: Heartbeat[] = [];
    await controller.onAmphoraReport({ ...reports([]), heartbeat: async (h) => void handled.push(h) });
    const env = (over: Partial<Envelope> = {}): Envelope => ({
      v: 1,
      id: randomUUID(),
      ts: Date.now(),
      born: Date.now(),
      from: amphoraPrincipal(id),
      to: 'controller',
      type: 'heartbeat',
      body: heartbeat(id, 1),
      ...over,
    });
    const key = deriveAmphoraKey(MASTER_KEY, id);
    const forged: Array<[string, Buffer]> = [
      ['malformed', Buffer.from(JSON.stringify(env()))], // unsigned
      ['bad-signature', signEnvelope(toKey('an-attacker-guessed-this'), env())],
      ['bad-signature', signEnvelope(deriveAmphoraKey(MASTER_KEY, other), env())], // another amphora's key, claiming to be `id`
      ['impersonation', signEnvelope(deriveAmphoraKey(MASTER_KEY, other), env({ from: amphoraPrincipal(other) }))], // other reports for id
      ['stale', signEnvelope(key, env({ ts: Date.now() - 301_000 }))],
      ['future', signEnvelope(key, env({ ts: Date.now() + 60_000 }))],
      ['misaddressed', signEnvelope(key, env({ to: amphoraPrincipal(id) }))],
      ['invalid', signEnvelope(key, env({ body: { ...heartbeat(id, 1), ver: 1 } }))],
      ['unexpected-type', signEnvelope(key, env({ type: 'config.fetch', body: { amphoraId: id } }))],
    ];
    for (const [, bytes] of forged) broker.inject({ kind: 'health' }, bytes);
    await waitFor('every forged message to be refused', () => Object.values(controller.counters().rejected).reduce((a, b) => a + b, 0) === forged.length);
    const expected: Record<string, number> = {};
    for (const [reason] of forged) expected[reason] = (expected[reason] ?? 0) + 1;
    expect(controller.counters().rejected).toMatchObject(expected);
    expect(handled).toEqual([]);
    expect(controller.counters().handled).toBe(0);
    expect(broker.depth('health')).toBe(0);
    const warnings = log.events.filter((e) => e.msg === 'message refused and dropped');
    expect(warnings.map((w) => w.reason).sort()).toEqual(forged.map(([r]) => r).sort());
    expect(warnings.every((w) => w.level === 40)).toBe(true);
  });

  it('orders not signed by the controller, or for another amphora, are refused by the amphora', async () => {
    const { broker, amphora } = setup();
    const id = randomUUID();
    const other = randomUUID();
    const seen: Array<{ version: number; meta: MessageMeta }> = [];
    const amp = amphora(id);
    await amp.serveAmphora(acking(id, seen));
    const order = (over: Partial<Envelope> = {}): Envelope => ({
      v: 1,
      id: randomUUID(),
      ts: Date.now(),
      born: Date.now(),
      from: 'controller',
      to: amphoraPrincipal(id),
      type: 'config.push',
      body: { amphoraId: id, configVersion: 99, config: {} },
      ...over,
    });
    const reply = 'nobody';
    // an amphora (holding only its own key) forging an order for another amphora
    broker.inject({ kind: 'amphora', amphoraId: id }, signEnvelope(deriveAmphoraKey(MASTER_KEY, other), order()), reply);
    // signed with the master key itself (no amphora key is the master key)
    broker.inject({ kind: 'amphora', amphoraId: id }, signEnvelope(toKey(MASTER_KEY), order()), reply);
    // a genuine order for `other`, dropped into this amphora's queue
    broker.inject({ kind: 'amphora', amphoraId: id }, signEnvelope(deriveAmphoraKey(MASTER_KEY, other), order({ to: amphoraPrincipal(other) })), reply);
    // correctly signed for `id`, but the body targets `other`
    broker.inject({ kind: 'amphora', amphoraId: id }, signEnvelope(deriveAmphoraKey(MASTER_KEY, id), order({ body: { amphoraId: other, configVersion: 1, config: {} } })), reply);
    await waitFor('4 refusals', () => Object.values(amp.counters().rejected).reduce((a, b) => a + b, 0) === 4);
    expect(amp.counters().rejected).toMatchObject({ 'bad-signature': 2, misaddressed: 2 });
    expect(seen).toEqual([]);
  });

  it('an answer from the wrong amphora does not settle a call', async () => {
    const { controller, amphora } = setup();
    const id = randomUUID();
    const impostor = randomUUID();
    const impostorKey = deriveAmphoraKey(MASTER_KEY, impostor);
    const amp = amphora(id);
    const broker = (controller as unknown as { broker: InProcessBroker }).broker;
    // The real amphora answers late; an impostor answers first with its own (valid) key.
    const release = gate();
    await amp.serveAmphora({
      ...acking(id),
      configPush: async (p, meta) => {
        const fake = signEnvelope(impostorKey, {
          v: 1,
          id: randomUUID(),
          ts: Date.now(),
          born: Date.now(),
          from: amphoraPrincipal(impostor),
          to: 'controller',
          type: 'config.ack',
          re: meta.messageId,
          body: { amphoraId: id, configVersion: p.configVersion, ok: false, error: 'forged' },
        });
        const replyQueue = [...(broker as unknown as { queues: Map<string, unknown> }).queues.keys()].find((q) => q.startsWith('reply.'))!;
        broker.inject({ kind: 'reply', address: replyQueue.slice('reply.'.length) }, fake);
        await release.promise;
        return { amphoraId: id, configVersion: p.configVersion, ok: true };
      },
    });
    const call = controller.pushConfig({ amphoraId: id, configVersion: 7, config: {} }, { timeoutMs: 2000, retries: 0 });
    await waitFor('the forged answer to be refused', () => controller.counters().rejected.impersonation === 1);
    release.open();
    expect(await call).toEqual({ amphoraId: id, configVersion: 7, ok: true });
  });
});

describe('close', () => {
  it('lets running handlers finish and ack; undelivered messages stay queued for the next consumer', async () => {
    const { broker, controller, amphora } = setup({ prefetch: { health: 1 } });
    const id = randomUUID();
    const release = gate();
    const started: number[] = [];
    const finished: number[] = [];
    await controller.onAmphoraReport({
      ...reports([]),
      heartbeat: async (h) => {
        started.push(h.seq);
        await release.promise;
        finished.push(h.seq);
      },
    });
    const amp = amphora(id);
    await amp.publishHeartbeat(heartbeat(id, 1));
    await amp.publishHeartbeat(heartbeat(id, 2));
    await waitFor('the first handler to start', () => started.length === 1);
    const closing = controller.close({ drainTimeoutMs: 5000 });
    let closed = false;
    void closing.then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(closed).toBe(false); // waits for the running handler
    await expect(controller.pushConfig({ amphoraId: id, configVersion: 1, config: {} })).rejects.toBeInstanceOf(TransportClosedError);
    release.open();
    await closing;
    expect(finished).toEqual([1]);
    expect(broker.depth('health')).toBe(1); // seq 2 was never delivered: still queued

    const next = broker.connect({ identity: { role: 'controller', masterKey: MASTER_KEY }, logger: captureLogger().logger });
    open.push(next);
    const got: Array<{ h: Heartbeat; meta: MessageMeta }> = [];
    await next.onAmphoraReport(reports(got));
    await waitFor('the queued heartbeat', () => got.length === 1);
    expect(got[0].h.seq).toBe(2);
  });

  it('requeues the message of a handler that outlives the drain timeout', async () => {
    const { broker, controller, amphora } = setup();
    const id = randomUUID();
    const never = gate();
    let started = 0;
    await controller.onAmphoraReport({ ...reports([]), heartbeat: async () => void (started++, await never.promise) });
    await amphora(id).publishHeartbeat(heartbeat(id, 7));
    await waitFor('the handler to start', () => started === 1);
    const t0 = Date.now();
    await controller.close({ drainTimeoutMs: 50 });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(broker.depth('health')).toBe(1);
    never.open();
  });

  it('fails a call still waiting at the drain deadline with TransportClosedError', async () => {
    const { controller } = setup();
    const call = controller.pushConfig({ amphoraId: randomUUID(), configVersion: 1, config: {} }, { timeoutMs: 10_000 });
    const result = call.catch((e: unknown) => e);
    await controller.close({ drainTimeoutMs: 20 });
    expect(await result).toBeInstanceOf(TransportClosedError);
  });

  it('forgetAmphora deletes the orders still waiting for a gone amphora', async () => {
    const { broker, controller } = setup();
    const id = randomUUID();
    const call = controller.pushConfig({ amphoraId: id, configVersion: 1, config: {} }, { timeoutMs: 10_000, retries: 0 }).catch((e: unknown) => e);
    await waitFor('the order to be queued', () => broker.depth(`amphora.${id}`) === 1);
    await controller.forgetAmphora(id);
    expect(broker.hasQueue(`amphora.${id}`)).toBe(false);
    await controller.close({ drainTimeoutMs: 0 });
    expect(await call).toBeInstanceOf(TransportClosedError);
  });
});
