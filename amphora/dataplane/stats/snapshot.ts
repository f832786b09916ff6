import { addTraffic, type TrafficSnapshot } from './counters.ts';

/** What one worker (or, merged, the whole data plane) reports: per listener, pool and member. */
export interface DataPlaneSnapshot {
  configVersion: number | null;
  listeners: Record<string, ListenerSnapshot>;
  pools: Record<string, PoolSnapshot>;
}

export interface ListenerSnapshot {
  protocol: string;
  status: 'OPEN' | 'FULL';
  /** The whole listener's connection limit (all workers). */
  connectionLimit: number;
  traffic: TrafficSnapshot;
  poolIds: string[];
}

export interface PoolSnapshot {
  status: 'UP' | 'DOWN';
  members: Record<string, MemberSnapshot>;
}

export interface MemberSnapshot {
  /** Heartbeat vocabulary: UP, DOWN, DRAIN, MAINT, no check, "UP 1/3", "DOWN 1/2". */
  status: string;
  traffic: TrafficSnapshot;
}

/**
 * Adds up the workers' snapshots. Health and admin state are the same in every worker (health is
 * checked once and broadcast), so statuses come from the first; traffic is summed.
 */
export function mergeSnapshots(snapshots: readonly DataPlaneSnapshot[]): DataPlaneSnapshot {
  const merged: DataPlaneSnapshot = { configVersion: snapshots[0]?.configVersion ?? null, listeners: {}, pools: {} };
  for (const snap of snapshots) {
    for (const [id, l] of Object.entries(snap.listeners)) {
      const into = merged.listeners[id];
      if (into === undefined) merged.listeners[id] = { ...l, traffic: { ...l.traffic }, poolIds: [...l.poolIds] };
      else addTraffic(into.traffic, l.traffic);
    }
    for (const [id, p] of Object.entries(snap.pools)) {
      let into = merged.pools[id];
      if (into === undefined) {
        into = { status: p.status, members: {} };
        merged.pools[id] = into;
      }
      for (const [mid, m] of Object.entries(p.members)) {
        const intoMember = into.members[mid];
        if (intoMember === undefined) into.members[mid] = { status: m.status, traffic: { ...m.traffic } };
        else addTraffic(intoMember.traffic, m.traffic);
      }
    }
  }
  for (const l of Object.values(merged.listeners)) {
    l.status = l.traffic.activeConnections >= l.connectionLimit ? 'FULL' : 'OPEN';
  }
  return merged;
}
