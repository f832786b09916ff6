import type { DataPlaneSnapshot } from './snapshot.ts';

const MEMBER_STATES = ['UP', 'DOWN', 'DRAIN', 'MAINT', 'no check'];

/** Renders a snapshot in the Prometheus text exposition format (version 0.0.4). */
export function renderPrometheus(snapshot: DataPlaneSnapshot): string {
  const lines: string[] = [];
  const family = (name: string, type: 'counter' | 'gauge', help: string, samples: [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`${name}{${labels}} ${value}`);
  };
  const listeners = Object.entries(snapshot.listeners);
  const l = (id: string) => `listener="${id}"`;
  family('octavia_listener_bytes_in_total', 'counter', 'Bytes received from clients.', listeners.map(([id, s]) => [l(id), s.traffic.bytesIn]));
  family('octavia_listener_bytes_out_total', 'counter', 'Bytes sent to clients.', listeners.map(([id, s]) => [l(id), s.traffic.bytesOut]));
  family('octavia_listener_current_sessions', 'gauge', 'Active client connections.', listeners.map(([id, s]) => [l(id), s.traffic.activeConnections]));
  family('octavia_listener_sessions_total', 'counter', 'Client connections accepted.', listeners.map(([id, s]) => [l(id), s.traffic.totalConnections]));
  family('octavia_listener_request_errors_total', 'counter', 'Invalid or refused requests.', listeners.map(([id, s]) => [l(id), s.traffic.requestErrors]));
  family('octavia_listener_limit_sessions', 'gauge', 'Connection limit.', listeners.map(([id, s]) => [l(id), s.connectionLimit]));
  family('octavia_listener_status', 'gauge', 'Listener status (1 = OPEN, 0 = FULL).', listeners.map(([id, s]) => [l(id), s.status === 'OPEN' ? 1 : 0]));

  const pools = Object.entries(snapshot.pools);
  family('octavia_pool_status', 'gauge', 'Pool status (1 = UP).', pools.map(([id, p]) => [`pool="${id}"`, p.status === 'UP' ? 1 : 0]));
  const members = pools.flatMap(([poolId, p]) => Object.entries(p.members).map(([id, m]) => ({ labels: `pool="${poolId}",member="${id}"`, m })));
  family('octavia_member_bytes_in_total', 'counter', 'Bytes sent to the member.', members.map(({ labels, m }) => [labels, m.traffic.bytesIn]));
  family('octavia_member_bytes_out_total', 'counter', 'Bytes received from the member.', members.map(({ labels, m }) => [labels, m.traffic.bytesOut]));
  family('octavia_member_current_sessions', 'gauge', 'Connections or requests in progress.', members.map(({ labels, m }) => [labels, m.traffic.activeConnections]));
  family('octavia_member_sessions_total', 'counter', 'Connections or requests handled.', members.map(({ labels, m }) => [labels, m.traffic.totalConnections]));
  family('octavia_member_connection_errors_total', 'counter', 'Failed connection attempts.', members.map(({ labels, m }) => [labels, m.traffic.requestErrors]));
  family(
    'octavia_member_status',
    'gauge',
    'Member status, one series per state (1 = current).',
    members.flatMap(({ labels, m }) => MEMBER_STATES.map((state): [string, number] => [`${labels},state="${state}"`, m.status.split(' ')[0] === state || m.status === state ? 1 : 0])),
  );
  return `${lines.join('\n')}\n`;
}
