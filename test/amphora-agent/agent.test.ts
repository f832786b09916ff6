// The amphora agent over the in-process transport, with a real data plane (in-process), real member
// servers on 127.0.0.1 and real traffic through a loopback VIP (127.0.100.x).
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, type AgentOptions } from '../../amphora/agent/agent.ts';
import { LocalDataPlane } from '../../amphora/dataplane/dataplane.ts';
import type { Heartbeat } from '../../common/messages.ts';
import { deriveAmphoraKey, InProcessBroker, RpcTimeoutError, type AmphoraTransport, type TransportCounters } from '../../common/transport/index.ts';
import { freePort, Resources, startHttpMember, startTcpMember } from '../dataplane/helpers.ts';
import {
  captureLogger,
  connectOutcome,
  document,
  FakeController,
  httpExchange,
  httpListener,
  httpMonitor,
  loopbackVip,
  MASTER_KEY,
  memberPool,
  push,
  RecordingDataPlane,
  silentLogger,
  sleep,
  uuid,
  waitFor,
} from './helpers.ts';

const r = new Resources();
afterEach(() => r.cleanup());

interface Setup {
  broker: InProcessBroker;
  controller: FakeController;
  amphoraId: string;
  vip: string;
}

function setup(): Setup {
  const broker = new InProcessBroker();
  const transport = broker.connect({ identity: { role: 'controller', masterKey: MASTER_KEY }, logger: silentLogger() });
  r.add(() => transport.close({ drainTimeoutMs: 200 }));
  return { broker, controller: new FakeController(transport), amphoraId: uuid(), vip: loopbackVip() };
}

interface Started {
  agent: Agent;
  dp: RecordingDataPlane;
  events: Array<Record<string, unknown>>;
  /** Resolves when start() finished. */
  started: Promise<void>;
}

/** An agent on the broker (start() not awaited); `wrap` may replace its transport. */
function startAgent(s: Setup, over: Partial<AgentOptions> = {}, wrap?: (t: AmphoraTransport) => AmphoraTransport): Started {
  const { logger, events } = captureLogger('info');
  const dp = new RecordingDataPlane(new LocalDataPlane({ log: silentLogger() }));
  const agent = new Agent({
    amphoraId: s.amphoraId,
    connect: async () => {
      const t = s.broker.connect({
        identity: { role: 'amphora', amphoraId: s.amphoraId, key: deriveAmphoraKey(MASTER_KEY, s.amphoraId) },
        logger: silentLogger(),
      });
      return wrap ? wrap(t) : t;
    },
    dataPlane: dp,
    log: logger,
    heartbeatIntervalMs: 60_000,
    configFetch: { timeoutMs: 150, initialDelayMs: 20, maxDelayMs: 80, factor: 2, jitter: 0 },
    reconnectCheckMs: 20,
    drainTimeoutMs: 2000,
    transportDrainTimeoutMs: 2000,
    ...over,
  });
  r.add(() => agent.stop('test end'));
  const started = agent.start();
  started.catch(() => undefined); // asserted by the tests that care
  return { agent, dp, events, started };
}

/** One HTTP listener on the VIP in front of one member pool. */
async function simpleConfig(s: Setup, version: number, memberPort: number, listenerPort: number) {
  const [listener, pool, member] = [uuid(), uuid(), uuid()];
  const config = document(s.amphoraId, version, s.vip, [httpListener(listener, listenerPort, pool)], [memberPool(pool, 'HTTP', [{ id: member, port: memberPort }])]);
  return { config, listener, pool, member };
}

describe('amphora agent: configuration', () => {
  it('fetches its config at start-up, retrying with back-off while the controller does not answer, serving nothing meanwhile', async () => {
    const s = setup();
    const a = await startHttpMember(r, 'a');
    const port = await freePort();
    const { config } = await simpleConfig(s, 1, a.port, port);
    const { agent, dp, events, started } = startAgent(s);

    const retries = () => events.filter((e) => e.msg === 'config fetch failed; retrying');
    await waitFor('three failed fetches', () => retries().length >= 3);
    expect(retries().slice(0, 3).map((e) => e.attempt)).toEqual([1, 2, 3]);
    expect(retries().slice(0, 3).map((e) => e.delayMs)).toEqual([20, 40, 80]); // back-off (no jitter here), capped at maxDelayMs
    expect(agent.status()).toMatchObject({ state: 'syncing', configVersion: null });
    expect(await connectOutcome(s.vip, port)).toBe('ECONNREFUSED');
    expect(dp.applied).toEqual([]);

    s.controller.current = { amphoraId: s.amphoraId, configVersion: 1, config };
    await s.controller.listen();
    await started;
    expect(agent.status()).toMatchObject({ state: 'serving', configVersion: 1 });
    expect(dp.applied).toEqual([1]);
    expect((await httpExchange(s.vip, port)).body).toBe('a');
  });

  it('starts with nothing when the controller has no config, and takes the first push', async () => {
    const s = setup();
    await s.controller.listen();
    const a = await startHttpMember(r, 'a');
    const port = await freePort();
    const { agent, dp, started } = startAgent(s);
    await started;
    expect(s.controller.fetches).toBe(1);
    expect(agent.status()).toMatchObject({ state: 'serving', configVersion: null });
    // A refusal before any config reports version 0.
    const refused = await s.controller.transport.pushConfig(push(s.amphoraId, 1, { version: 1 }));
    expect(refused).toMatchObject({ amphoraId: s.amphoraId, ok: false, configVersion: 0 });
    const { config } = await simpleConfig(s, 1, a.port, port);
    expect(await s.controller.transport.pushConfig(push(s.amphoraId, 1, config))).toEqual({ amphoraId: s.amphoraId, configVersion: 1, ok: true });
    expect(dp.applied).toEqual([1]);
    expect((await httpExchange(s.vip, port)).body).toBe('a');
  });

  it('applies pushes in order and acks the applied version; re-deliveries and older versions are acked without re-applying', async () => {
    const s = setup();
    const [a, b] = [await startHttpMember(r, 'a'), await startHttpMember(r, 'b')];
    const [p1, p2] = [await freePort(), await freePort()];
    const [l1, l2, poolA, poolB, ma, mb] = [uuid(), uuid(), uuid(), uuid(), uuid(), uuid()];
    const pools = [memberPool(poolA, 'HTTP', [{ id: ma, port: a.port }]), memberPool(poolB, 'HTTP', [{ id: mb, port: b.port }])];
    const v = (version: number, l2Pool: string | null = null) =>
      document(s.amphoraId, version, s.vip, [httpListener(l1, p1, poolA), ...(l2Pool ? [httpListener(l2, p2, l2Pool)] : [])], pools);
    s.controller.current = push(s.amphoraId, 1, v(1));
    await s.controller.listen();
    const { agent, dp, started } = startAgent(s);
    await started;
    expect(await connectOutcome(s.vip, p2)).toBe('ECONNREFUSED');

    const ctl = s.controller.transport;
    expect(await ctl.pushConfig(push(s.amphoraId, 2, v(2, poolB)))).toEqual({ amphoraId: s.amphoraId, configVersion: 2, ok: true });
    expect((await httpExchange(s.vip, p2)).body).toBe('b');
    // The same version again (a controller retry with a new message id), then an older one: ok, not applied.
    expect(await ctl.pushConfig(push(s.amphoraId, 2, v(2, poolB)))).toEqual({ amphoraId: s.amphoraId, configVersion: 2, ok: true });
    expect(await ctl.pushConfig(push(s.amphoraId, 1, v(1)))).toEqual({ amphoraId: s.amphoraId, configVersion: 2, ok: true });
    expect(dp.applied).toEqual([1, 2]);
    expect((await httpExchange(s.vip, p2)).body).toBe('b');

    // Several pushes at once, each apply slowed down: handled one at a time, in order.
    dp.applyDelayMs = 40;
    const acks = await Promise.all([3, 4, 5].map((n) => ctl.pushConfig(push(s.amphoraId, n, v(n, n % 2 ? poolA : poolB)))));
    expect(acks.map((x) => [x.ok, x.configVersion])).toEqual([[true, 3], [true, 4], [true, 5]]);
    expect(dp.begun).toEqual([1, 2, 3, 4, 5]);
    expect(dp.applied).toEqual([1, 2, 3, 4, 5]);
    // A newer push overtaking an older one: the older is acked with the running version, not applied.
    const [ack7, ack6] = await Promise.all([ctl.pushConfig(push(s.amphoraId, 7, v(7, poolA))), ctl.pushConfig(push(s.amphoraId, 6, v(6, poolB)))]);
    expect(ack7).toEqual({ amphoraId: s.amphoraId, configVersion: 7, ok: true });
    expect(ack6).toEqual({ amphoraId: s.amphoraId, configVersion: 7, ok: true });
    expect(dp.applied).toEqual([1, 2, 3, 4, 5, 7]);
    expect(agent.status().configVersion).toBe(7);
    expect((await httpExchange(s.vip, p2)).body).toBe('a');
  });

  it('refuses an invalid or inapplicable config with the reason, and keeps serving the running one', async () => {
    const s = setup();
    const [a, b] = [await startHttpMember(r, 'a'), await startHttpMember(r, 'b')];
    const [p1, busyPort] = [await freePort(), await freePort()];
    const [l1, l2, poolA, poolB, ma, mb] = [uuid(), uuid(), uuid(), uuid(), uuid(), uuid()];
    const pools = [memberPool(poolA, 'HTTP', [{ id: ma, port: a.port }]), memberPool(poolB, 'HTTP', [{ id: mb, port: b.port }])];
    s.controller.current = push(s.amphoraId, 1, document(s.amphoraId, 1, s.vip, [httpListener(l1, p1, poolA)], pools));
    await s.controller.listen();
    const { agent, dp, events, started } = startAgent(s);
    await started;
    const ctl = s.controller.transport;
    const refusals = () => events.filter((e) => e.msg === 'config refused; the running config stays');

    // Schema/semantics: a listener pointing at a pool that does not exist.
    const missingPool = document(s.amphoraId, 2, s.vip, [httpListener(l1, p1, uuid())], pools);
    const ack1 = await ctl.pushConfig(push(s.amphoraId, 2, missingPool));
    expect(ack1).toMatchObject({ amphoraId: s.amphoraId, ok: false, configVersion: 1 });
    expect(ack1.error).toMatch(/listeners\.0\.defaultPoolId/);
    expect(refusals()).toHaveLength(1);
    expect(refusals()[0]).toMatchObject({ level: 50, configVersion: 2, runningVersion: 1 });

    // The envelope's version and the document's disagree; a document for another amphora.
    const mismatch = await ctl.pushConfig(push(s.amphoraId, 2, document(s.amphoraId, 3, s.vip, [httpListener(l1, p1, poolB)], pools)));
    expect(mismatch).toMatchObject({ ok: false, configVersion: 1, error: expect.stringMatching(/configVersion 3 differs/) });
    const foreign = await ctl.pushConfig(push(s.amphoraId, 2, document(uuid(), 2, s.vip, [httpListener(l1, p1, poolB)], pools)));
    expect(foreign).toMatchObject({ ok: false, configVersion: 1, error: expect.stringMatching(/is not this amphora/) });

    // Valid, but a port of it cannot be bound: nothing of it is applied (l1 keeps going to a).
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(busyPort, s.vip, () => resolve()));
    r.add(() => new Promise<void>((resolve) => squatter.close(() => resolve())));
    const busy = document(s.amphoraId, 2, s.vip, [httpListener(l1, p1, poolB), httpListener(l2, busyPort, poolB)], pools);
    const ack2 = await ctl.pushConfig(push(s.amphoraId, 2, busy));
    expect(ack2).toMatchObject({ ok: false, configVersion: 1, error: expect.stringMatching(/EADDRINUSE/) });

    expect(agent.status().configVersion).toBe(1);
    expect(dp.applied).toEqual([1]);
    expect((await httpExchange(s.vip, p1)).body).toBe('a');

    // A valid version 2 afterwards is taken.
    const good = document(s.amphoraId, 2, s.vip, [httpListener(l1, p1, poolB)], pools);
    expect(await ctl.pushConfig(push(s.amphoraId, 2, good))).toEqual({ amphoraId: s.amphoraId, configVersion: 2, ok: true });
    expect((await httpExchange(s.vip, p1)).body).toBe('b');
  });

  it('fetches its config again after the transport reconnects, and applies it only when newer', async () => {
    const s = setup();
    const [a, b] = [await startHttpMember(r, 'a'), await startHttpMember(r, 'b')];
    const port = await freePort();
    const [l1, poolA, poolB, ma, mb] = [uuid(), uuid(), uuid(), uuid(), uuid()];
    const pools = [memberPool(poolA, 'HTTP', [{ id: ma, port: a.port }]), memberPool(poolB, 'HTTP', [{ id: mb, port: b.port }])];
    const v = (n: number, poolId: string) => push(s.amphoraId, n, document(s.amphoraId, n, s.vip, [httpListener(l1, port, poolId)], pools));
    s.controller.current = v(1, poolA);
    await s.controller.listen();
    // The in-process transport never disconnects: this one reports a new connection when told to.
    let extraConnects = 0;
    const reconnecting = (t: AmphoraTransport): AmphoraTransport => ({
      self: t.self,
      close: (o) => t.close(o),
      counters: (): TransportCounters => {
        const c = t.counters();
        return { ...c, connects: c.connects + extraConnects };
      },
      serveAmphora: (h) => t.serveAmphora(h),
      publishHeartbeat: (h) => t.publishHeartbeat(h),
      fetchConfig: (o) => t.fetchConfig(o),
    });
    const { agent, dp, started } = startAgent(s, {}, reconnecting);
    await started;
    expect(s.controller.fetches).toBe(1);
    await sleep(100);
    expect(s.controller.fetches).toBe(1); // no reconnection, no fetch

    extraConnects++; // same config at the controller: fetched, not applied again
    await waitFor('the second fetch', () => s.controller.fetches === 2);
    await sleep(50);
    expect(dp.applied).toEqual([1]);

    s.controller.current = v(3, poolB);
    extraConnects++;
    await waitFor('version 3 applied', () => agent.status().configVersion === 3);
    expect(s.controller.fetches).toBe(3);
    expect(dp.applied).toEqual([1, 3]);
    expect(agent.status().reconnections).toBe(2);
    expect((await httpExchange(s.vip, port)).body).toBe('b');
  });
});

describe('amphora agent: heartbeats', () => {
  it('sends v3 heartbeats every interval with statuses, exact traffic deltas and the config version; disabled listeners left out', async () => {
    const s = setup();
    const a = await startHttpMember(r, 'a');
    const tcp = await startTcpMember(r, 't');
    const [deadPort, p1, p2, p3, p4] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
    const id = { l1: uuid(), l2: uuid(), l3: uuid(), l4: uuid(), p1: uuid(), p2: uuid(), p3: uuid(), ma: uuid(), mDead: uuid(), mt: uuid(), mOff: uuid(), mDead2: uuid() };
    const config = document(
      s.amphoraId,
      4,
      s.vip,
      [
        httpListener(id.l1, p1, id.p1),
        { id: id.l2, protocol: 'TCP', ports: [p2], defaultPoolId: id.p2, connectionLimit: 1 },
        httpListener(id.l3, p3, id.p1, { enabled: false }),
        httpListener(id.l4, p4, id.p3),
      ],
      [
        memberPool(id.p1, 'HTTP', [{ id: id.ma, port: a.port }, { id: id.mDead, port: deadPort }], { healthMonitor: httpMonitor(uuid()) }),
        memberPool(id.p2, 'TCP', [{ id: id.mt, port: tcp.port }, { id: id.mOff, port: tcp.port, enabled: false }]),
        memberPool(id.p3, 'HTTP', [{ id: id.mDead2, port: deadPort }], { healthMonitor: httpMonitor(uuid()) }),
      ],
    );
    s.controller.current = push(s.amphoraId, 4, config);
    await s.controller.listen();
    const { agent, started } = startAgent(s, { heartbeatIntervalMs: 100 });
    await started;

    // Statuses once the monitors have spoken.
    const last = (): Heartbeat | undefined => s.controller.heartbeats.at(-1);
    await waitFor('members checked', () => last()?.pools[`${id.p1}:${id.l1}`]?.members[id.mDead] === 'DOWN' && last()?.pools[`${id.p3}:${id.l4}`]?.status === 'DOWN');
    const hb = last()!;
    expect(hb).toMatchObject({ id: s.amphoraId, ver: 3, configVersion: 4 });
    expect(Object.keys(hb.listeners).sort()).toEqual([id.l1, id.l2, id.l4].sort());
    expect(hb.listeners[id.l1].status).toBe('OPEN');
    expect(hb.pools).toEqual({
      [`${id.p1}:${id.l1}`]: { status: 'UP', members: { [id.ma]: 'UP', [id.mDead]: 'DOWN' } },
      [`${id.p2}:${id.l2}`]: { status: 'UP', members: { [id.mt]: 'no check', [id.mOff]: 'MAINT' } },
      [`${id.p3}:${id.l4}`]: { status: 'DOWN', members: { [id.mDead2]: 'DOWN' } },
    });

    // Traffic: the deltas of every heartbeat from here add up to exactly what crossed the wire.
    const from = s.controller.heartbeats.length;
    let sent = 0;
    let received = 0;
    for (let i = 0; i < 3; i++) {
      const x = await httpExchange(s.vip, p1, `/req-${i}`);
      expect(x.body).toBe('a');
      sent += x.sent;
      received += x.received;
    }
    const sum = (key: 'rx' | 'tx' | 'totconns' | 'ereq') => s.controller.heartbeatsSince(from).reduce((n, h) => n + (h.listeners[id.l1]?.stats[key] ?? 0), 0);
    await waitFor('three connections reported', () => sum('totconns') === 3);
    // Then two quiet heartbeats in a row (instead of a fixed wait that a loaded machine may fill with
    // fewer heartbeats): everything is reported, and nothing more may be added.
    const quiet = (h: Heartbeat | undefined) => JSON.stringify(h?.listeners[id.l1]?.stats) === JSON.stringify({ tx: 0, rx: 0, conns: 0, totconns: 0, ereq: 0 });
    await waitFor('two quiet heartbeats', () => {
      const since = s.controller.heartbeatsSince(from);
      return since.length >= 2 && quiet(since.at(-1)) && quiet(since.at(-2));
    });
    expect({ rx: sum('rx'), tx: sum('tx'), totconns: sum('totconns'), ereq: sum('ereq') }).toEqual({ rx: sent, tx: received, totconns: 3, ereq: 0 });

    // A TCP listener with connectionLimit 1 and one client connected: FULL, conns 1 (absolute).
    const client = net.connect({ host: s.vip, port: p2 });
    r.add(() => void client.destroy());
    await new Promise<void>((resolve) => client.once('data', () => resolve()));
    await waitFor('FULL reported', () => last()?.listeners[id.l2]?.status === 'FULL');
    expect(last()!.listeners[id.l2].stats.conns).toBe(1);
    client.destroy();
    await waitFor('OPEN again', () => last()?.listeners[id.l2]?.status === 'OPEN' && last()!.listeners[id.l2].stats.conns === 0);

    // Sequence numbers go up by one; the cadence follows heartbeatIntervalMs.
    const seqs = s.controller.heartbeats.map((h) => h.seq);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0] + i));
    // 10 a second at 100 ms; a loaded machine delays the timers, so the floor only tells periodic
    // heartbeats from none or one a second (at most 2 in the window); the ceiling is one per interval
    // over the window actually slept.
    const before = s.controller.heartbeats.length;
    const startedAt = Date.now();
    await sleep(1000);
    const window = Date.now() - startedAt;
    const inWindow = s.controller.heartbeats.length - before;
    expect(inWindow).toBeGreaterThanOrEqual(4);
    expect(inWindow).toBeLessThanOrEqual(Math.floor(window / 100) + 2);
    expect(agent.status().heartbeats.failed).toBe(0);
  });

  it('reports configVersion null and no listeners before the first config', async () => {
    const s = setup();
    await s.controller.listen();
    const { started } = startAgent(s, { heartbeatIntervalMs: 50 });
    await started;
    await waitFor('two heartbeats', () => s.controller.heartbeats.length >= 2);
    expect(s.controller.heartbeats[0]).toEqual({ id: s.amphoraId, seq: 0, ver: 3, listeners: {}, pools: {}, configVersion: null });
  });
});

describe('amphora agent: commands and stopping', () => {
  it('answers ping; shutdown is acked, lets in-flight requests finish, stops serving and stops the heartbeats', async () => {
    const s = setup();
    const a = await startHttpMember(r, 'a');
    a.handler = (_req, res) => setTimeout(() => res.end('slow a'), 300);
    const port = await freePort();
    const { config } = await simpleConfig(s, 1, a.port, port);
    s.controller.current = push(s.amphoraId, 1, config);
    await s.controller.listen();
    const { agent, dp, started } = startAgent(s, { heartbeatIntervalMs: 50 });
    await started;
    const ctl = s.controller.transport;
    expect(await ctl.sendCommand(s.amphoraId, { kind: 'ping' })).toEqual({ amphoraId: s.amphoraId, kind: 'ping', ok: true });

    const inFlight = httpExchange(s.vip, port);
    await waitFor('the request at the member', () => a.requests.length === 1);
    expect(await ctl.sendCommand(s.amphoraId, { kind: 'shutdown' })).toEqual({ amphoraId: s.amphoraId, kind: 'shutdown', ok: true });
    expect(await agent.stopped).toEqual({ reason: 'shutdown command', clean: true });
    expect(await inFlight).toMatchObject({ status: 200, body: 'slow a' });
    expect(dp.stopped).toBe(true);
    expect(agent.status().state).toBe('stopped');
    expect(await connectOutcome(s.vip, port)).toBe('ECONNREFUSED');
    const count = s.controller.heartbeats.length;
    await sleep(200);
    expect(s.controller.heartbeats.length).toBe(count);
    // Orders now wait in the amphora's queue for its next start.
    const late = ctl.pushConfig(push(s.amphoraId, 2, config), { timeoutMs: 300, retries: 0 }).catch((e: unknown) => e);
    await sleep(50);
    expect(s.broker.depth(`amphora.${s.amphoraId}`)).toBe(1);
    expect(await late).toBeInstanceOf(RpcTimeoutError);
  });

  it('stop(): the push being applied finishes and is acked; later pushes stay queued and go to the next agent', async () => {
    const s = setup();
    const a = await startHttpMember(r, 'a');
    const port = await freePort();
    const { config } = await simpleConfig(s, 1, a.port, port);
    const next = (n: number) => push(s.amphoraId, n, { ...config, configVersion: n });
    s.controller.current = next(1);
    await s.controller.listen();
    const first = startAgent(s, { heartbeatIntervalMs: 50 });
    await first.started;
    first.dp.applyDelayMs = 300;
    const ctl = s.controller.transport;
    const ack2 = ctl.pushConfig(next(2));
    await waitFor('version 2 being applied', () => first.dp.begun.includes(2));
    const stopping = first.agent.stop('SIGTERM');
    const ack3 = ctl.pushConfig(next(3), { timeoutMs: 5000, retries: 0 });
    expect(await ack2).toEqual({ amphoraId: s.amphoraId, configVersion: 2, ok: true });
    expect(await stopping).toEqual({ reason: 'SIGTERM', clean: true });
    expect(first.dp.applied).toEqual([1, 2]);
    expect(first.dp.begun).toEqual([1, 2]);
    expect(s.broker.depth(`amphora.${s.amphoraId}`)).toBe(1);

    // The next incarnation fetches (the controller now has version 3) and takes the queued push.
    s.controller.current = next(3);
    const second = startAgent(s);
    await second.started;
    expect(await ack3).toEqual({ amphoraId: s.amphoraId, configVersion: 3, ok: true });
    expect(second.dp.applied).toEqual([3]);
    expect((await httpExchange(s.vip, port)).body).toBe('a');
  });

  it('stop() during the start-up fetch retries ends the start and stops cleanly', async () => {
    const s = setup(); // the controller never answers
    const { agent, dp, started } = startAgent(s, { configFetch: { timeoutMs: 100, initialDelayMs: 50, maxDelayMs: 50, factor: 1, jitter: 0 } });
    await waitFor('syncing', () => agent.status().state === 'syncing');
    const t0 = Date.now();
    expect(await agent.stop('SIGTERM')).toEqual({ reason: 'SIGTERM', clean: true });
    expect(Date.now() - t0).toBeLessThan(1500);
    await started;
    expect(dp.stopped).toBe(true);
    expect(dp.applied).toEqual([]);
  });
});

describe('amphora agent: the election (ACTIVE_STANDBY)', () => {
  it('starts the election from the vrrp section, reports it in a heartbeat sent at once on a change, and stops it before draining', async () => {
    const s = setup();
    await s.controller.listen();
    const order: string[] = [];
    let onState: ((c: { from: string; to: string; reason: string }) => void) | undefined;
    let holds = false;
    let started: Record<string, unknown> | undefined;
    const { agent, dp, started: agentStarted } = startAgent(s, {
      startElection: async (settings) => {
        started = { ...settings };
        return {
          status: () => ({ state: holds ? 'MASTER' : 'BACKUP', holdsVip: holds }),
          on: (_event, listener) => (onState = listener),
          fail: () => {},
          stop: async () => void order.push(`election stopped (data plane stopped: ${dp.stopped})`),
        };
      },
    });
    await agentStarted;
    const config = {
      ...document(s.amphoraId, 1, s.vip, [], []),
      vrrp: { role: 'BACKUP', priority: 90, address: '127.0.0.65', peers: ['127.0.0.66'], interface: 'lo', advertIntervalMs: 50, authKey: 'ab'.repeat(32), syncPort: await freePort() },
    };
    const ack = await s.controller.transport.pushConfig(push(s.amphoraId, 1, config), { timeoutMs: 5000, retries: 0 });
    expect(ack.ok).toBe(true);
    expect(started).toEqual({ interface: 'lo', vips: [s.vip], localAddress: '127.0.0.65', peers: ['127.0.0.66'], routerId: 1, priority: 90, advertIntervalMs: 50, preempt: false, authKey: 'ab'.repeat(32) });
    await waitFor('a heartbeat reporting BACKUP', () => s.controller.heartbeats.some((h: Heartbeat) => h.vrrp?.state === 'BACKUP'));
    // The heartbeat interval is a minute here: the next one comes because the state changed.
    holds = true;
    const changedAt = Date.now();
    onState!({ from: 'BACKUP', to: 'MASTER', reason: 'test' });
    await waitFor('a heartbeat reporting the VIP held', () => s.controller.heartbeats.some((h: Heartbeat) => h.vrrp?.holdsVip === true), 3000);
    expect(s.controller.heartbeatTimes.at(-1)! - changedAt).toBeLessThan(3000);
    await agent.stop('test');
    expect(order).toEqual(['election stopped (data plane stopped: false)']);
    expect(dp.stopped).toBe(true);
  });
});
