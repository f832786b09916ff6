import dgram from 'node:dgram';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { config, eventually, freePort, pool, Resources, sleep, startDataPlane, startTcpMember, startUdpMember, tcpGreeting, udpAsk, uid } from './helpers.ts';

const r = new Resources();
afterEach(() => r.cleanup());

const tcpListener = (id: number, ports: (number | { from: number; to: number })[], poolId: number, extra: Record<string, unknown> = {}) => ({
  id: uid(id),
  protocol: 'TCP' as const,
  ports,
  defaultPoolId: uid(poolId),
  ...extra,
});

function echo(port: number, text: string, localAddress?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    let got = '';
    s.on('data', (d) => {
      got += d.toString();
      if (got.includes(text)) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(got));
    s.write(text);
  });
}

/** Resolves true when the connection is closed by the proxy within `ms` (no data), false otherwise. */
function closedWithin(port: number, ms: number, localAddress?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    const timer = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, ms);
    s.on('data', () => {
      clearTimeout(timer);
      s.destroy();
      resolve(false);
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function freeRange(n: number): Promise<number> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const free = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        new Promise<boolean>((resolve) => {
          const s = net.createServer();
          s.once('error', () => resolve(false));
          s.listen(base + i, '127.0.0.1', () => s.close(() => resolve(true)));
        }),
      ),
    );
    if (free.every(Boolean)) return base;
  }
}

describe('TCP listener', () => {
  it('serves several ports and port ranges on one listener, and TCP+UDP on the same ports', async () => {
    const tcp = await startTcpMember(r, 't');
    const udp = await startUdpMember(r, 'u');
    const single = await freePort();
    const base = await freeRange(5);
    const ports = [single, { from: base, to: base + 4 }];
    await startDataPlane(
      r,
      config(
        [tcpListener(1, ports, 2), { id: uid(3), protocol: 'UDP', ports, defaultPoolId: uid(4) }],
        [pool(2, 'TCP', [{ id: 10, port: tcp.port }]), pool(4, 'UDP', [{ id: 11, port: udp.port }])],
      ),
    );
    for (const p of [single, base, base + 2, base + 4]) {
      expect(await echo(p, 'ping')).toBe('t\nping');
      expect(await udpAsk(p, 'hi')).toBe('u:hi');
    }
  });

  it('writes PROXY v1 and v2 headers before the client bytes', async () => {
    const m = await startTcpMember(r, 'm', { greet: false });
    const [p1, p2] = [await freePort(), await freePort()];
    await startDataPlane(r, config([tcpListener(1, [p1], 2), tcpListener(3, [p2], 4)], [pool(2, 'PROXY', [{ id: 10, port: m.port }]), pool(4, 'PROXYV2', [{ id: 11, port: m.port }])]));
    await echo(p1, 'payload', '127.0.0.5');
    const v1 = Buffer.concat(m.received[0]).toString('latin1');
    expect(v1).toMatch(new RegExp(`^PROXY TCP4 127\\.0\\.0\\.5 127\\.0\\.0\\.1 \\d+ ${p1}\\r\\npayload$`));
    await echo(p2, 'payload', '127.0.0.5');
    const v2 = Buffer.concat(m.received[1]);
    expect(v2.subarray(0, 16).toString('hex')).toBe('0d0a0d0a000d0a515549540a2111000c');
    expect([...v2.subarray(16, 24)]).toEqual([127, 0, 0, 5, 127, 0, 0, 1]);
    expect(v2.readUInt16BE(26)).toBe(p2);
    expect(v2.subarray(28).toString()).toBe('payload');
  });

  it('admits only allowed CIDRs', async () => {
    const m = await startTcpMember(r, 'm');
    const port = await freePort();
    await startDataPlane(r, config([tcpListener(1, [port], 2, { allowedCidrs: ['127.0.0.8/30', '10.0.0.0/8'] })], [pool(2, 'TCP', [{ id: 10, port: m.port }])]));
    const admitted = await tcpGreeting(port, '127.0.0.9');
    expect(admitted.line).toBe('m');
    admitted.socket.destroy();
    expect(await closedWithin(port, 2_000, '127.0.0.12')).toBe(true);
    expect(await closedWithin(port, 2_000, '127.0.0.1')).toBe(true);
    expect(m.received).toHaveLength(1);
  });

  it('holds connections beyond connection_limit until a slot frees, and reports FULL', async () => {
    const m = await startTcpMember(r, 'm');
    const port = await freePort();
    const dp = await startDataPlane(r, config([tcpListener(1, [port], 2, { connectionLimit: 2 })], [pool(2, 'TCP', [{ id: 10, port: m.port }])]));
    const a = await tcpGreeting(port);
    const b = await tcpGreeting(port);
    expect((await dp.snapshot()).listeners[uid(1)].status).toBe('FULL');
    const third = tcpGreeting(port);
    await sleep(300);
    expect(m.received).toHaveLength(2);
    a.socket.destroy();
    const c = await third;
    expect(c.line).toBe('m');
    b.socket.destroy();
    c.socket.destroy();
    await eventually(async () => (await dp.snapshot()).listeners[uid(1)].status === 'OPEN');
  });

  it('closes idle connections after timeout_client_data and timeout_member_data', async () => {
    const m = await startTcpMember(r, 'm');
    const [p1, p2] = [await freePort(), await freePort()];
    await startDataPlane(
      r,
      config(
        [tcpListener(1, [p1], 2, { timeouts: { clientData: 300 } }), tcpListener(3, [p2], 2, { timeouts: { memberData: 300 } })],
        [pool(2, 'TCP', [{ id: 10, port: m.port }])],
      ),
    );
    for (const p of [p1, p2]) {
      const { socket } = await tcpGreeting(p);
      const started = Date.now();
      await new Promise<void>((resolve) => socket.on('close', () => resolve()));
      expect(Date.now() - started).toBeGreaterThanOrEqual(200);
      expect(Date.now() - started).toBeLessThan(3_000);
    }
  });

  it('timeout_member_connect bounds each connection attempt to a member that never accepts', async () => {
    const { startBlackhole } = await import('./blackhole.ts');
    const hole = await startBlackhole(r);
    const port = await freePort();
    await startDataPlane(r, config([tcpListener(1, [port], 2, { timeouts: { memberConnect: 300 } })], [pool(2, 'TCP', [{ id: 10, port: hole }])]));
    const started = Date.now();
    expect(await closedWithin(port, 5_000)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(800);
  });

  it('timeout_tcp_inspect waits for the client to speak before choosing a member', async () => {
    const m = await startTcpMember(r, 'm');
    const [inspect, plain] = [await freePort(), await freePort()];
    await startDataPlane(
      r,
      config([tcpListener(1, [inspect], 2, { timeouts: { tcpInspect: 2000 } }), tcpListener(3, [plain], 2)], [pool(2, 'TCP', [{ id: 10, port: m.port }])]),
    );
    // A long inspect wait: "sent on at once" (< 1.5 s) and "held for the wait" (>= 1.9 s) stay far
    // apart even when a loaded machine slows a connection down by hundreds of milliseconds.
    let started = Date.now();
    await tcpGreeting(plain).then((g) => g.socket.destroy());
    expect(Date.now() - started).toBeLessThan(1500);
    started = Date.now();
    await tcpGreeting(inspect).then((g) => g.socket.destroy());
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    // A client that speaks first is sent on at once, its first bytes included.
    started = Date.now();
    expect(await echo(inspect, 'early')).toBe('m\nearly');
    expect(Date.now() - started).toBeLessThan(1500);
  });
});

describe('UDP listener', () => {
  it('balances flows, keeps each flow on its member, and drops datagrams from CIDRs not allowed', async () => {
    const a = await startUdpMember(r, 'a');
    const b = await startUdpMember(r, 'b');
    const port = await freePort();
    const dp = await startDataPlane(
      r,
      config([{ id: uid(1), protocol: 'UDP', ports: [port], defaultPoolId: uid(2), allowedCidrs: ['127.0.0.0/24'] }], [pool(2, 'UDP', [{ id: 10, port: a.port }, { id: 11, port: b.port }])]),
    );
    const clients = Array.from({ length: 4 }, () => dgram.createSocket('udp4'));
    r.add(() => {
      clients.forEach((c) => c.close());
    });
    await Promise.all(clients.map((c) => new Promise<void>((resolve) => c.bind(0, '127.0.0.1', () => resolve()))));
    const first = await Promise.all(clients.map((c, i) => udpAsk(port, `c${i}`, { socket: c })));
    expect(first.map((x) => x.split(':')[0]).sort()).toEqual(['a', 'a', 'b', 'b']);
    for (let round = 0; round < 3; round++) {
      const again = await Promise.all(clients.map((c, i) => udpAsk(port, `c${i}`, { socket: c })));
      expect(again).toEqual(first);
    }
    const outsider = dgram.createSocket('udp4');
    r.add(() => {
      outsider.close();
    });
    await new Promise<void>((resolve) => outsider.bind(0, '127.0.1.1', () => resolve()));
    await expect(udpAsk(port, 'x', { socket: outsider, timeoutMs: 500 })).rejects.toThrow('no UDP reply');
    const snap = await dp.snapshot();
    expect(snap.listeners[uid(1)].traffic.activeConnections).toBe(4);
    expect(snap.listeners[uid(1)].traffic.bytesIn).toBe(16 * 2);
  });

  it('moves a flow away from a member that goes admin-down', async () => {
    const a = await startUdpMember(r, 'a');
    const b = await startUdpMember(r, 'b');
    const port = await freePort();
    const pools = (aEnabled: boolean) => [pool(2, 'UDP', [{ id: 10, port: a.port, enabled: aEnabled }, { id: 11, port: b.port }])];
    const listeners = [{ id: uid(1), protocol: 'UDP' as const, ports: [port], defaultPoolId: uid(2) }];
    const dp = await startDataPlane(r, config(listeners, pools(true)));
    const c = dgram.createSocket('udp4');
    r.add(() => {
      c.close();
    });
    await new Promise<void>((resolve) => c.bind(0, '127.0.0.1', () => resolve()));
    const first = await udpAsk(port, 'x', { socket: c });
    await dp.apply(config(listeners, first.startsWith('a') ? pools(false) : [pool(2, 'UDP', [{ id: 10, port: a.port }, { id: 11, port: b.port, enabled: false }])], 2));
    const second = await udpAsk(port, 'x', { socket: c });
    expect(second.split(':')[0]).not.toBe(first.split(':')[0]);
  });
});
