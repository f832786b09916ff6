import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { AmphoraConfigError } from '../../common/amphora-config/index.ts';
import { config, distribution, eventually, freePort, httpListener, pool, request, Resources, startDataPlane, startHttpMember, startTcpMember, tcpGreeting, uid } from './helpers.ts';

const r = new Resources();
afterEach(() => r.cleanup());

describe('config apply', () => {
  it('keeps established connections of unchanged and changed listeners; changed pools apply to new connections only', async () => {
    const a = await startTcpMember(r, 'a');
    const b = await startTcpMember(r, 'b');
    const port = await freePort();
    const listener = { id: uid(1), protocol: 'TCP' as const, ports: [port], defaultPoolId: uid(2) };
    const dp = await startDataPlane(r, config([listener], [pool(2, 'TCP', [{ id: 10, port: a.port }])]));
    const held = await tcpGreeting(port);
    expect(held.line).toBe('a');
    const diff = await dp.apply(config([{ ...listener, timeouts: { clientData: 40_000 } }], [pool(2, 'TCP', [{ id: 11, port: b.port }])], 2));
    expect(diff.listeners.changed).toEqual([uid(1)]);
    expect(diff.pools.changed).toEqual([uid(2)]);
    // The old connection still works end to end, still on "a".
    const echoed = await new Promise<string>((resolve) => {
      held.socket.once('data', (d) => resolve(d.toString()));
      held.socket.write('still-here');
    });
    expect(echoed).toBe('still-here');
    expect((await tcpGreeting(port)).line).toBe('b');
    held.socket.destroy();
  });

  it('rejects an invalid config whole, with a clear error, and keeps serving the running one', async () => {
    const m = await startHttpMember(r, 'm');
    const port = await freePort();
    const otherPort = await freePort();
    const dp = await startDataPlane(r, config([httpListener(1, port, 2)], [pool(2, 'HTTP', [{ id: 10, port: m.port }])]));
    const bad = config(
      [httpListener(1, port, 2), httpListener(3, otherPort, 99)],
      [pool(2, 'HTTP', [{ id: 10, port: m.port, weight: 300 }])],
      2,
    );
    await expect(dp.apply(bad)).rejects.toThrow(AmphoraConfigError);
    await expect(dp.apply(bad)).rejects.toThrow(/pools\.0\.members\.0\.weight/);
    const tls = config([httpListener(1, port, 2, { protocol: 'TERMINATED_HTTPS' })], [pool(2, 'HTTP', [{ id: 10, port: m.port }])], 3);
    await expect(dp.apply(tls)).rejects.toThrow(/listeners\.0\.tls: required by TERMINATED_HTTPS/);
    await expect(dp.apply(config([httpListener(1, port, 2)], [pool(2, 'HTTP', [])], 0))).rejects.toThrow(/older than the running configVersion/);
    expect(dp.config?.configVersion).toBe(1);
    expect((await request(port)).body).toBe('m');
    await expect(request(otherPort)).rejects.toThrow();
  });

  it('rejects a config whose port cannot be bound and leaves the running config in place', async () => {
    const m = await startHttpMember(r, 'm');
    const port = await freePort();
    const dp = await startDataPlane(r, config([httpListener(1, port, 2)], [pool(2, 'HTTP', [{ id: 10, port: m.port }])]));
    // m.port is taken by the member itself.
    await expect(dp.apply(config([httpListener(1, port, 2), httpListener(3, m.port, 2)], [pool(2, 'HTTP', [{ id: 10, port: m.port }])], 2))).rejects.toThrow(
      /cannot listen on 127\.0\.0\.1:\d+\/tcp/,
    );
    expect(dp.config?.configVersion).toBe(1);
    expect((await request(port)).body).toBe('m');
  });

  it('moves a port to another listener without closing its socket, and closes ports no longer used', async () => {
    const a = await startHttpMember(r, 'a');
    const b = await startHttpMember(r, 'b');
    const [port, extra] = [await freePort(), await freePort()];
    const pools = [pool(2, 'HTTP', [{ id: 10, port: a.port }]), pool(3, 'HTTP', [{ id: 11, port: b.port }])];
    const dp = await startDataPlane(r, config([httpListener(1, port, 2), httpListener(4, extra, 2)], pools));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    r.add(() => agent.destroy());
    expect((await request(port, { agent })).body).toBe('a');
    await dp.apply(config([httpListener(5, port, 3)], pools, 2));
    expect((await request(port)).body).toBe('b');
    await expect(request(extra)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('serves with zero failed requests while configs are reapplied under load', async () => {
    const members = [await startHttpMember(r, 'a'), await startHttpMember(r, 'b'), await startHttpMember(r, 'c')];
    const port = await freePort();
    const cfg = (v: number) =>
      config(
        [httpListener(1, port, 2, { timeouts: { clientData: 20_000 + v } })],
        [pool(2, 'HTTP', members.filter((_, i) => i !== v % 3).map((m, i) => ({ id: 10 + members.indexOf(m), port: m.port, weight: 1 + ((v + i) % 3) })))],
        v,
      );
    const dp = await startDataPlane(r, cfg(1));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    r.add(() => agent.destroy());
    let failures = 0;
    let done = 0;
    let stop = false;
    const worker = async (keepAlive: boolean) => {
      while (!stop && done < 4_000) {
        try {
          const res = await request(port, { agent: keepAlive ? agent : false });
          if (res.status !== 200) failures++;
        } catch {
          failures++;
        }
        done++;
      }
    };
    const load = [...Array.from({ length: 6 }, () => worker(true)), ...Array.from({ length: 2 }, () => worker(false))];
    // Each reload waits for 20 more requests to complete, so that requests overlap every reload however
    // slow the machine is; requests that stop completing after a reload fail the wait.
    for (let v = 2; v <= 21; v++) {
      await dp.apply(cfg(v));
      const target = done + 20;
      await eventually(() => done >= target, 15_000);
    }
    stop = true;
    await Promise.all(load);
    expect(done).toBeGreaterThanOrEqual(20 * 20);
    expect(failures).toBe(0);
    const counts = await distribution(9, async () => (await request(port)).body);
    expect(Object.keys(counts).length).toBeGreaterThanOrEqual(2);
  });
});
