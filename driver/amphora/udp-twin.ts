// A TCP listener with also_udp (issue 7) serves UDP on the same ports. The AmphoraConfig knows one
// transport per listener, so it is rendered as two listeners: the TCP one with the database ids, and a
// UDP "twin" whose listener, pool, member and monitor ids are derived from the originals (a name-based
// UUID, stable across renders). Heartbeats report the twin under those ids; foldUdpTwins() adds the
// twin's statistics to the listener's and drops the twin's pool report (the same monitor checks the
// same members through the TCP half).
import { createHash } from 'node:crypto';
import type { Heartbeat } from '../../common/messages.ts';

/** The id of the UDP twin of listener/pool/member/monitor `id`: an RFC 4122 version-5-shaped UUID. */
export function udpTwinId(id: string): string {
  const h = createHash('sha1').update(`argonaut-udp-twin:${id.toLowerCase()}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/**
 * The heartbeat as if the amphora ran one listener per also_udp listener: `twins` maps the twin
 * listener ids to their listener ids, `twinPools` holds the twin pool ids.
 */
export function foldUdpTwins(h: Heartbeat, twins: Map<string, string>, twinPools: Set<string>): Heartbeat {
  if (twins.size === 0) return h;
  const listeners: Heartbeat['listeners'] = {};
  for (const [id, report] of Object.entries(h.listeners)) if (!twins.has(id)) listeners[id] = report;
  for (const [twin, original] of twins) {
    const extra = h.listeners[twin];
    const base = listeners[original];
    if (!extra || !base) continue;
    const s = base.stats;
    const e = extra.stats;
    listeners[original] = {
      status: base.status === 'OPEN' ? extra.status : base.status,
      stats: { tx: s.tx + e.tx, rx: s.rx + e.rx, conns: s.conns + e.conns, totconns: s.totconns + e.totconns, ereq: s.ereq + e.ereq },
    };
  }
  const pools: Heartbeat['pools'] = {};
  for (const [key, report] of Object.entries(h.pools)) {
    const poolId = key.includes(':') ? key.slice(0, key.lastIndexOf(':')) : key;
    if (!twinPools.has(poolId)) pools[key] = report;
  }
  return { ...h, listeners, pools };
}
