// The UDP twin of an also_udp listener: stable derived ids, and heartbeats folded back onto the
// database's listener (statistics added, the twin's pool report dropped).
import { describe, expect, it } from 'vitest';
import { foldUdpTwins, udpTwinId } from '../../driver/amphora/udp-twin.ts';
import type { Heartbeat } from '../../common/messages.ts';

const L = '0b5c2a8e-6a4e-4f7e-9c1d-111111111111';
const P = '0b5c2a8e-6a4e-4f7e-9c1d-222222222222';
const M = '0b5c2a8e-6a4e-4f7e-9c1d-333333333333';
const stats = (n: number) => ({ tx: n, rx: 2 * n, conns: n, totconns: 3 * n, ereq: 0 });

describe('udp twins', () => {
  it('derives a stable UUID per id, different from the original and from other ids', () => {
    expect(udpTwinId(L)).toBe(udpTwinId(L));
    expect(udpTwinId(L)).toBe(udpTwinId(L.toUpperCase()));
    expect(udpTwinId(L)).not.toBe(L);
    expect(udpTwinId(L)).not.toBe(udpTwinId(P));
    expect(udpTwinId(L)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('adds the twin listener statistics to the listener and drops the twin pool report', () => {
    const h: Heartbeat = {
      id: '0b5c2a8e-6a4e-4f7e-9c1d-444444444444', seq: 1, ver: 3, configVersion: 2,
      listeners: { [L]: { status: 'OPEN', stats: stats(1) }, [udpTwinId(L)]: { status: 'FULL', stats: stats(10) } },
      pools: { [`${P}:${L}`]: { status: 'UP', members: { [M]: 'UP' } }, [`${udpTwinId(P)}:${udpTwinId(L)}`]: { status: 'UP', members: { [udpTwinId(M)]: 'UP' } } },
    };
    const folded = foldUdpTwins(h, new Map([[udpTwinId(L), L]]), new Set([udpTwinId(P)]));
    expect(Object.keys(folded.listeners)).toEqual([L]);
    expect(folded.listeners[L]).toEqual({ status: 'FULL', stats: { tx: 11, rx: 22, conns: 11, totconns: 33, ereq: 0 } });
    expect(Object.keys(folded.pools)).toEqual([`${P}:${L}`]);
    expect(foldUdpTwins(h, new Map(), new Set())).toBe(h);
  });
});
