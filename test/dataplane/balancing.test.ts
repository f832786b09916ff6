import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { PoolInput } from '../../common/amphora-config/index.ts';
import {
  config,
  distribution,
  freePort,
  httpListener,
  pool,
  request,
  Resources,
  sleep,
  startDataPlane,
  startHttpMember,
  startTcpMember,
  tcpGreeting,
  uid,
  type HttpMember,
} from './helpers.ts';

const r = new Resources();
afterEach(() => r.cleanup());

async function httpPool(names: string[], poolExtra: Partial<PoolInput> = {}, memberExtra: Record<string, unknown>[] = []) {
  const members: HttpMember[] = [];
  for (const name of names) members.push(await startHttpMember(r, name));
  const port = await freePort();
  const dp = await startDataPlane(
    r,
    config(
      [httpListener(1, port, 2)],
      [pool(2, 'HTTP', members.map((m, i) => ({ id: 10 + i, port: m.port, ...(memberExtra[i] ?? {}) })), poolExtra)],
    ),
  );
  return { port, members, dp };
}

const ask = (port: number, localAddress?: string) => async () => (await request(port, { localAddress })).body;

describe('load balancing algorithms', () => {
  it('ROUND_ROBIN spreads evenly and follows weights', async () => {
    const { port } = await httpPool(['a', 'b', 'c'], {}, [{ weight: 1 }, { weight: 1 }, { weight: 2 }]);
    const counts = await distribution(80, ask(port));
    expect(counts).toEqual({ a: 20, b: 20, c: 40 });
  });

  it('LEAST_CONNECTIONS sends new connections to the member with fewer active ones', async () => {
    const a = await startTcpMember(r, 'a');
    const b = await startTcpMember(r, 'b');
    const port = await freePort();
    await startDataPlane(
      r,
      config(
        [{ id: uid(1), protocol: 'TCP', ports: [port], defaultPoolId: uid(2) }],
        [pool(2, 'TCP', [{ id: 10, port: a.port }, { id: 11, port: b.port }], { algorithm: 'LEAST_CONNECTIONS' })],
      ),
    );
    const held: string[] = [];
    const sockets = [];
    for (let i = 0; i < 4; i++) {
      const g = await tcpGreeting(port);
      sockets.push(g.socket);
      held.push(g.line);
    }
    expect(held.filter((n) => n === 'a')).toHaveLength(2);
    // Close both connections held on "a": the next two must go to "a" (0 active) rather than "b" (2 active).
    sockets.filter((_, i) => held[i] === 'a').forEach((s) => s.destroy());
    await sleep(100);
    const next = [await tcpGreeting(port), await tcpGreeting(port)];
    expect(next.map((g) => g.line)).toEqual(['a', 'a']);
    [...sockets, ...next.map((g) => g.socket)].forEach((s) => s.destroy());
  });

  it('SOURCE_IP keeps each client address on one member and spreads addresses', async () => {
    const { port } = await httpPool(['a', 'b', 'c'], { algorithm: 'SOURCE_IP' });
    const chosen = new Map<string, Set<string>>();
    for (let ip = 2; ip < 32; ip++) {
      const address = `127.0.0.${ip}`;
      const seen = new Set<string>();
      for (let k = 0; k < 3; k++) seen.add((await request(port, { localAddress: address })).body);
      chosen.set(address, seen);
    }
    for (const seen of chosen.values()) expect(seen.size).toBe(1);
    const perMember = new Map<string, number>();
    for (const seen of chosen.values()) for (const m of seen) perMember.set(m, (perMember.get(m) ?? 0) + 1);
    expect(perMember.size).toBe(3);
    for (const n of perMember.values()) expect(n).toBeGreaterThanOrEqual(3);
  });

  it('SOURCE_IP_PORT spreads the connections of a single address', async () => {
    const { port } = await httpPool(['a', 'b'], { algorithm: 'SOURCE_IP_PORT' });
    const counts = await distribution(60, ask(port));
    expect(counts.a).toBeGreaterThan(10);
    expect(counts.b).toBeGreaterThan(10);
  });

  it('POWER_OF_TWO_CHOICES spreads load and avoids the busier member', async () => {
    const { port, members } = await httpPool(['a', 'b'], { algorithm: 'POWER_OF_TWO_CHOICES' });
    const counts = await distribution(60, ask(port));
    expect(counts.a).toBeGreaterThan(10);
    expect(counts.b).toBeGreaterThan(10);
    // With "a" stuck on slow requests, new requests go to "b".
    members[0].handler = (_req, res) => setTimeout(() => res.end('a'), 1_500);
    const slow = [request(port), request(port), request(port), request(port)];
    await sleep(200);
    const during = await distribution(10, ask(port));
    expect(during.b).toBeGreaterThanOrEqual(9);
    await Promise.all(slow);
  });
});

describe('member states', () => {
  it('weight 0 drains: no new sessions, persisted sessions stay', async () => {
    const { port, dp, members } = await httpPool(['a', 'b'], { sessionPersistence: { type: 'SOURCE_IP' } });
    const stuck = new Map<string, string>();
    for (let ip = 2; ip < 12; ip++) stuck.set(`127.0.0.${ip}`, (await request(port, { localAddress: `127.0.0.${ip}` })).body);
    const cfg = config(
      [httpListener(1, port, 2)],
      [pool(2, 'HTTP', [{ id: 10, port: members[0].port, weight: 0 }, { id: 11, port: members[1].port }], { sessionPersistence: { type: 'SOURCE_IP' } })],
      2,
    );
    await dp.apply(cfg);
    for (const [ip, name] of stuck) expect((await request(port, { localAddress: ip })).body).toBe(name);
    for (let ip = 40; ip < 50; ip++) expect((await request(port, { localAddress: `127.0.0.${ip}` })).body).toBe('b');
    const snap = await dp.snapshot();
    expect(snap.pools[uid(2)].members[uid(10)].status).toBe('DRAIN');
  });

  it('admin-down members halt: no traffic at all, reported MAINT', async () => {
    const { port, dp, members } = await httpPool(['a', 'b']);
    await dp.apply(config([httpListener(1, port, 2)], [pool(2, 'HTTP', [{ id: 10, port: members[0].port, enabled: false }, { id: 11, port: members[1].port }])], 2));
    expect(await distribution(10, ask(port))).toEqual({ b: 10 });
    expect((await dp.snapshot()).pools[uid(2)].members[uid(10)].status).toBe('MAINT');
  });

  it('backup members serve only when no primary member is up', async () => {
    const { port, dp, members } = await httpPool(['primary', 'backup1', 'backup2'], {}, [{}, { backup: true }, { backup: true }]);
    expect(await distribution(6, ask(port))).toEqual({ primary: 6 });
    const pools = (enabled: boolean) => [
      pool(2, 'HTTP', [
        { id: 10, port: members[0].port, enabled },
        { id: 11, port: members[1].port, backup: true },
        { id: 12, port: members[2].port, backup: true },
      ]),
    ];
    await dp.apply(config([httpListener(1, port, 2)], pools(false), 2));
    // HAProxy "option allbackups": all backups share the load.
    expect(await distribution(6, ask(port))).toEqual({ backup1: 3, backup2: 3 });
    await dp.apply(config([httpListener(1, port, 2)], pools(true), 3));
    expect(await distribution(6, ask(port))).toEqual({ primary: 6 });
  });

  it('a member with maxConnections gets no more than that many concurrent requests', async () => {
    const { port, members } = await httpPool(['limited', 'other'], {}, [{ maxConnections: 1 }, {}]);
    let concurrent = 0;
    let peak = 0;
    members[0].handler = (_req, res) => {
      concurrent++;
      peak = Math.max(peak, concurrent);
      setTimeout(() => {
        concurrent--;
        res.end('limited');
      }, 100);
    };
    members[1].handler = (_req, res) => setTimeout(() => res.end('other'), 100);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 6 });
    r.add(() => agent.destroy());
    const results = await Promise.all(Array.from({ length: 12 }, () => request(port, { agent })));
    expect(results.every((x) => x.status === 200)).toBe(true);
    expect(peak).toBe(1);
    expect(results.filter((x) => x.body === 'limited').length).toBeGreaterThanOrEqual(1);
  });
});
