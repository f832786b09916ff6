import type { DataPlaneSnapshot } from './snapshot.ts';

/** The heartbeat body of contract §4.2, version 3 (traffic as deltas, `conns` absolute). */
export interface HeartbeatMessage {
  id: string;
  seq: number;
  ver: 3;
  listeners: Record<string, { status: string; stats: { tx: number; rx: number; conns: number; totconns: number; ereq: number } }>;
  pools: Record<string, { status: 'UP' | 'DOWN'; members: Record<string, string> }>;
}

interface Totals {
  tx: number;
  rx: number;
  totconns: number;
  ereq: number;
}

/**
 * Builds successive heartbeats from data plane snapshots: keeps the totals last reported per listener
 * so that each message carries what happened since the previous one. Pools are keyed
 * `pool_id:listener_id` for every listener that can route to them.
 */
export class HeartbeatBuilder {
  private seq = 0;
  private readonly reported = new Map<string, Totals>();

  constructor(private readonly amphoraId: string) {}

  build(snapshot: DataPlaneSnapshot): HeartbeatMessage {
    const message: HeartbeatMessage = { id: this.amphoraId, seq: this.seq++, ver: 3, listeners: {}, pools: {} };
    const seen = new Set<string>();
    for (const [listenerId, l] of Object.entries(snapshot.listeners)) {
      seen.add(listenerId);
      const before = this.reported.get(listenerId) ?? { tx: 0, rx: 0, totconns: 0, ereq: 0 };
      const now: Totals = { tx: l.traffic.bytesOut, rx: l.traffic.bytesIn, totconns: l.traffic.totalConnections, ereq: l.traffic.requestErrors };
      this.reported.set(listenerId, now);
      message.listeners[listenerId] = {
        status: l.status,
        stats: {
          tx: Math.max(0, now.tx - before.tx),
          rx: Math.max(0, now.rx - before.rx),
          conns: l.traffic.activeConnections,
          totconns: Math.max(0, now.totconns - before.totconns),
          ereq: Math.max(0, now.ereq - before.ereq),
        },
      };
      for (const poolId of l.poolIds) {
        const pool = snapshot.pools[poolId];
        if (pool === undefined) continue;
        const members: Record<string, string> = {};
        for (const [memberId, m] of Object.entries(pool.members)) members[memberId] = m.status;
        message.pools[`${poolId}:${listenerId}`] = { status: pool.status, members };
      }
    }
    for (const id of [...this.reported.keys()]) if (!seen.has(id)) this.reported.delete(id);
    return message;
  }
}
