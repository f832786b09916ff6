import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import type { HealthMonitorInput } from '../../common/amphora-config/index.ts';
import type { LocalDataPlane } from '../../amphora/dataplane/dataplane.ts';
import { expectedCodeMatcher } from '../../amphora/dataplane/health/probes.ts';
import {
  config,
  distribution,
  eventually,
  freePort,
  httpListener,
  pool,
  request,
  Resources,
  startDataPlane,
  startHttpMember,
  startTcpMember,
  startUdpMember,
  uid,
} from './helpers.ts';

const r = new Resources();
afterEach(() => r.cleanup());

const monitor = (extra: Partial<HealthMonitorInput>): HealthMonitorInput => ({
  id: uid(99),
  type: 'HTTP',
  delay: 100,
  timeout: 100,
  maxRetries: 2,
  maxRetriesDown: 2,
  ...extra,
});

const statusOf = async (dp: LocalDataPlane, member: number) => (await dp.snapshot()).pools[uid(2)].members[uid(member)].status;

describe('health monitors', () => {
  it('HTTP: method, path, version, domain, expected code ranges and body; members go down and come back', async () => {
    const a = await startHttpMember(r, 'a');
    const b = await startHttpMember(r, 'b');
    let bHealth = { code: 200, body: 'Healthy' };
    for (const m of [a, b]) {
      m.handler = (req, res) => {
        if (req.url === '/admin/status') {
          const h = m === b ? bHealth : { code: 203, body: 'all Healthy here' };
          res.writeHead(h.code).end(h.body);
        } else res.end(m.name);
      };
    }
    const port = await freePort();
    const dp = await startDataPlane(
      r,
      config(
        [httpListener(1, port, 2)],
        [
          pool(2, 'HTTP', [{ id: 10, port: a.port }, { id: 11, port: b.port }], {
            healthMonitor: monitor({ httpMethod: 'GET', urlPath: '/admin/status', httpVersion: '1.1', domainName: 'health.example', expectedCodes: '200,201-204', expectedBody: 'Healthy' }),
          }),
        ],
      ),
    );
    await eventually(() => a.requests.some((q) => q.url === '/admin/status') && b.requests.some((q) => q.url === '/admin/status'));
    const check = a.requests.find((q) => q.url === '/admin/status');
    expect(check?.method).toBe('GET');
    expect(check?.headers.host).toBe('health.example');
    expect(await statusOf(dp, 10)).toBe('UP');

    bHealth = { code: 200, body: 'Degraded' };
    await eventually(async () => (await statusOf(dp, 11)) === 'DOWN');
    expect(await distribution(6, async () => (await request(port)).body)).toEqual({ a: 6 });

    bHealth = { code: 500, body: 'Healthy' };
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await statusOf(dp, 11)).toBe('DOWN');

    bHealth = { code: 204, body: '' };
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await statusOf(dp, 11)).toBe('DOWN'); // 204 is expected but the body is not

    bHealth = { code: 202, body: 'Healthy' };
    await eventually(async () => (await statusOf(dp, 11)) === 'UP');
    expect(Object.keys(await distribution(6, async () => (await request(port)).body)).sort()).toEqual(['a', 'b']);
    const snap = await dp.snapshot();
    expect(snap.pools[uid(2)].status).toBe('UP');
  });

  it('rise and fall: a member needs maxRetriesDown failures to go down and maxRetries successes to come back', async () => {
    const a = await startHttpMember(r, 'a');
    let healthy = true;
    const transitions: string[] = [];
    a.handler = (_req, res) => res.writeHead(healthy ? 200 : 503).end();
    const port = await freePort();
    const dp = await startDataPlane(
      r,
      config([httpListener(1, port, 2)], [pool(2, 'HTTP', [{ id: 10, port: a.port }], { healthMonitor: monitor({ delay: 150, maxRetries: 3, maxRetriesDown: 3 }) })]),
    );
    const watch = setInterval(async () => {
      const s = await statusOf(dp, 10);
      if (transitions[transitions.length - 1] !== s) transitions.push(s);
    }, 20);
    r.add(() => clearInterval(watch));
    await eventually(() => a.requests.length >= 2);
    healthy = false;
    // Wait on what the watcher recorded (not on a separate read), so the last state is in the log.
    await eventually(() => transitions[transitions.length - 1] === 'DOWN', 5_000);
    healthy = true;
    await eventually(() => transitions[transitions.length - 1] === 'UP' && transitions.length > 1, 5_000);
    expect(transitions).toEqual(['UP', 'UP 1/3', 'UP 2/3', 'DOWN', 'DOWN 1/3', 'DOWN 2/3', 'UP']);
    expect((await dp.snapshot()).pools[uid(2)].status).toBe('UP');
  });

  it('TCP: a member whose port closes goes down; monitor_port checks another port than the traffic one', async () => {
    const traffic = await startTcpMember(r, 'traffic');
    const checked = await startTcpMember(r, 'checked');
    const port = await freePort();
    const dp = await startDataPlane(
      r,
      config(
        [{ id: uid(1), protocol: 'TCP', ports: [port], defaultPoolId: uid(2) }],
        [pool(2, 'TCP', [{ id: 10, port: traffic.port, monitorAddress: '127.0.0.1', monitorPort: checked.port }], { healthMonitor: monitor({ type: 'TCP', maxRetriesDown: 1 }) })],
      ),
    );
    await eventually(() => checked.received.length >= 2);
    expect(await statusOf(dp, 10)).toBe('UP');
    await checked.close();
    await eventually(async () => (await statusOf(dp, 10)) === 'DOWN');
    expect((await dp.snapshot()).pools[uid(2)].status).toBe('DOWN');
  });

  it('UDP-CONNECT: a member whose UDP port is closed goes down (ICMP port unreachable) and comes back', async () => {
    const udp = await startUdpMember(r, 'u');
    const listenerPort = await freePort();
    const dp = await startDataPlane(
      r,
      config(
        [{ id: uid(1), protocol: 'UDP', ports: [listenerPort], defaultPoolId: uid(2) }],
        [pool(2, 'UDP', [{ id: 10, port: udp.port }], { healthMonitor: monitor({ type: 'UDP-CONNECT', maxRetries: 1, maxRetriesDown: 1 }) })],
      ),
    );
    await eventually(() => udp.received.length >= 1);
    expect(await statusOf(dp, 10)).toBe('UP');
    await udp.close();
    await eventually(async () => (await statusOf(dp, 10)) === 'DOWN');
    await startUdpMember(r, 'u', udp.port);
    await eventually(async () => (await statusOf(dp, 10)) === 'UP', 5_000);
  });

  it('PING: a reachable member is up', async () => {
    const m = await startHttpMember(r, 'm');
    const port = await freePort();
    const dp = await startDataPlane(r, config([httpListener(1, port, 2)], [pool(2, 'HTTP', [{ id: 10, port: m.port }], { healthMonitor: monitor({ type: 'PING', delay: 1000, timeout: 1000 }) })]));
    await eventually(async () => (await statusOf(dp, 10)) === 'UP' && (await dp.snapshot()).pools[uid(2)].members[uid(10)].status === 'UP');
    expect((await request(port)).body).toBe('m');
  });

  it.skipIf(spawnSync('unshare', ['-n', 'true']).status !== 0)('PING: a member that stops answering echo requests goes down and comes back', async () => {
    const { runPingScenario } = await import('./ping-netns.ts');
    const transitions = await runPingScenario();
    expect(transitions).toEqual(['UP', 'DOWN', 'UP']);
  });

  it('members without a monitor report "no check"; disabled monitors too', async () => {
    const m = await startHttpMember(r, 'm');
    const port = await freePort();
    const dp = await startDataPlane(
      r,
      config([httpListener(1, port, 2)], [pool(2, 'HTTP', [{ id: 10, port: m.port }], { healthMonitor: monitor({ enabled: false }) })]),
    );
    expect(await statusOf(dp, 10)).toBe('no check');
  });

  it('parses expected_codes lists and ranges', () => {
    const match = expectedCodeMatcher('200,202-204,301');
    expect([200, 201, 202, 204, 205, 301, 302].map(match)).toEqual([true, false, true, true, false, true, false]);
  });
});
