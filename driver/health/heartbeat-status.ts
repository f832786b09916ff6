// What a heartbeat changes in the operating statuses of the load balancer its amphora serves
// (Octavia's health manager rules, contract §4.3). Pure: the caller loads the snapshot and writes
// the changes, the load balancer's last.

export type OperatingStatus = 'ONLINE' | 'OFFLINE' | 'DEGRADED' | 'ERROR' | 'DRAINING' | 'NO_MONITOR';

export interface LoadBalancerSnapshot {
  enabled: boolean;
  provisioningStatus: string;
  operatingStatus: string;
  listeners: Array<{ id: string; enabled: boolean; operatingStatus: string }>;
  pools: Array<{ id: string; operatingStatus: string; members: Array<{ id: string; operatingStatus: string }> }>;
}

export interface HeartbeatStatus {
  listeners: Record<string, { status: string }>;
  /** Keys are `pool_id` or `pool_id:listener_id`. */
  pools: Record<string, { status: string; members: Record<string, string> }>;
}

export interface StatusChanges {
  /** Whether the amphora's health timestamp may be refreshed (it reports every enabled listener). */
  refreshHealth: boolean;
  loadBalancer?: OperatingStatus;
  listeners: Record<string, OperatingStatus>;
  pools: Record<string, OperatingStatus>;
  members: Record<string, OperatingStatus>;
}

/** Strips everything after the last ':' of a heartbeat pool key. */
const poolIdOf = (key: string) => (key.includes(':') ? key.slice(0, key.lastIndexOf(':')) : key);

export function statusChanges(lb: LoadBalancerSnapshot, heartbeat: HeartbeatStatus): StatusChanges {
  const changes: StatusChanges = { refreshHealth: false, listeners: {}, pools: {}, members: {} };
  const reported = heartbeat.listeners;
  const expected = lb.listeners.filter((l) => l.enabled).length;
  changes.refreshHealth = lb.provisioningStatus.startsWith('PENDING') || !lb.enabled || Object.keys(reported).length === expected;

  let lbStatus: OperatingStatus = lb.enabled ? 'ONLINE' : 'OFFLINE';
  for (const listener of lb.listeners) {
    let status: OperatingStatus | undefined;
    const report = reported[listener.id];
    if (!report) status = listener.enabled && lb.provisioningStatus === 'ACTIVE' ? 'ERROR' : 'OFFLINE';
    else if (report.status === 'OPEN') status = 'ONLINE';
    else if (report.status === 'FULL') {
      status = 'DEGRADED';
      if (lbStatus === 'ONLINE') lbStatus = 'DEGRADED';
    }
    if (status && status !== listener.operatingStatus) changes.listeners[listener.id] = status;
  }

  const pools = new Map(Object.entries(heartbeat.pools).map(([key, value]) => [poolIdOf(key), value]));
  for (const pool of lb.pools) {
    const report = pools.get(pool.id);
    if (!report) {
      if (pool.operatingStatus !== 'OFFLINE') changes.pools[pool.id] = 'OFFLINE';
      continue;
    }
    let poolStatus: OperatingStatus | undefined;
    if (report.status === 'UP') poolStatus = 'ONLINE';
    else if (report.status === 'DOWN') {
      poolStatus = 'ERROR';
      lbStatus = 'ERROR';
    }
    for (const member of pool.members) {
      const state = report.members[member.id];
      let status: OperatingStatus | undefined;
      if (state === undefined) {
        if (member.operatingStatus !== 'NO_MONITOR') status = 'OFFLINE';
      } else if (state.startsWith('UP')) status = 'ONLINE';
      else if (state.startsWith('DOWN')) {
        status = 'ERROR';
        if (poolStatus === 'ONLINE') {
          poolStatus = 'DEGRADED';
          if (lbStatus === 'ONLINE') lbStatus = 'DEGRADED';
        }
      } else if (state === 'DRAIN') status = 'DRAINING';
      else if (state === 'MAINT') status = 'OFFLINE';
      else if (state === 'no check') status = 'NO_MONITOR';
      if (status && status !== member.operatingStatus) changes.members[member.id] = status;
    }
    if (poolStatus && poolStatus !== pool.operatingStatus) changes.pools[pool.id] = poolStatus;
  }
  if (lbStatus !== lb.operatingStatus) changes.loadBalancer = lbStatus;
  return changes;
}
