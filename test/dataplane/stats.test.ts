import { afterEach, describe, expect, it } from 'vitest';
import { HeartbeatBuilder } from '../../amphora/dataplane/stats/heartbeat.ts';
import { mergeSnapshots } from '../../amphora/dataplane/stats/snapshot.ts';
import { AMPHORA_ID, rawExchange, config, freePort, httpListener, pool, request, Resources, startDataPlane, startHttpMember, uid } from './helpers.ts';

const r = new Resources();
afterEach(() => r.cleanup());

describe('stats and heartbeat', () => {
  it('counts traffic per listener and member and builds v3 heartbeats with deltas', async () => {
    const a = await startHttpMember(r, 'a');
    const port = await freePort();
    const disabledPort = await freePort();
    const dp = await startDataPlane(
      r,
      config(
        [httpListener(1, port, 2), httpListener(5, disabledPort, 2, { enabled: false })],
        [pool(2, 'HTTP', [{ id: 10, port: a.port }, { id: 11, port: a.port, enabled: false }])],
      ),
    );
    const builder = new HeartbeatBuilder(AMPHORA_ID);
    const hb0 = builder.build(await dp.snapshot());
    for (let i = 0; i < 5; i++) await request(port, { path: `/x${i}` });
    expect((await rawExchange(port, 'GET /bad path HTTP/1.1\r\nHost: a\r\n\r\n')).text).toMatch(/^HTTP\/1\.1 400/);
    const snap = await dp.snapshot();
    const l = snap.listeners[uid(1)].traffic;
    expect(l.totalConnections).toBeGreaterThanOrEqual(6);
    expect(l.bytesIn).toBeGreaterThan(5 * 30);
    expect(l.bytesOut).toBeGreaterThan(5 * 30);
    expect(snap.pools[uid(2)].members[uid(10)].traffic.totalConnections).toBe(5);
    const hb1 = builder.build(snap);
    expect(hb1).toMatchObject({ id: AMPHORA_ID, seq: hb0.seq + 1, ver: 3 });
    expect(Object.keys(hb1.listeners)).toEqual([uid(1)]);
    expect(hb1.listeners[uid(1)].status).toBe('OPEN');
    expect(hb1.listeners[uid(1)].stats.rx).toBe(l.bytesIn - hb0.listeners[uid(1)].stats.rx);
    expect(hb1.listeners[uid(1)].stats.ereq).toBe(1);
    expect(hb1.listeners[uid(1)].stats.totconns).toBe(6);
    expect(hb1.pools[`${uid(2)}:${uid(1)}`]).toEqual({ status: 'UP', members: { [uid(10)]: 'no check', [uid(11)]: 'MAINT' } });
    const hb2 = builder.build(await dp.snapshot());
    expect(hb2.listeners[uid(1)].stats.totconns).toBe(0);
    expect(hb2.listeners[uid(1)].stats.rx).toBe(0);
  });

  it('merges worker snapshots by adding traffic', () => {
    const one = {
      configVersion: 3,
      listeners: { l: { protocol: 'HTTP', status: 'OPEN' as const, connectionLimit: 4, traffic: { bytesIn: 1, bytesOut: 2, activeConnections: 2, totalConnections: 3, requestErrors: 1 }, poolIds: ['p'] } },
      pools: { p: { status: 'UP' as const, members: { m: { status: 'UP', traffic: { bytesIn: 1, bytesOut: 1, activeConnections: 1, totalConnections: 1, requestErrors: 0 } } } } },
    };
    const merged = mergeSnapshots([one, one]);
    expect(merged.listeners.l.traffic).toEqual({ bytesIn: 2, bytesOut: 4, activeConnections: 4, totalConnections: 6, requestErrors: 2 });
    expect(merged.listeners.l.status).toBe('FULL');
    expect(merged.pools.p.members.m.traffic.totalConnections).toBe(2);
  });

  it('serves Prometheus metrics on a PROMETHEUS listener', async () => {
    const a = await startHttpMember(r, 'a');
    const [port, metricsPort] = [await freePort(), await freePort()];
    await startDataPlane(r, config([httpListener(1, port, 2), { id: uid(7), protocol: 'PROMETHEUS', ports: [metricsPort] }], [pool(2, 'HTTP', [{ id: 10, port: a.port }])]));
    await request(port);
    const res = await request(metricsPort, { path: '/metrics' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.body).toContain(`octavia_listener_sessions_total{listener="${uid(1)}"} 1`);
    expect(res.body).toContain(`octavia_member_status{pool="${uid(2)}",member="${uid(10)}",state="no check"} 1`);
    expect((await request(metricsPort, { path: '/other' })).status).toBe(404);
  });
});
