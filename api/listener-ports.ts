// The appliance extensions of a listener (issue 7): additional ports and ranges beyond protocol_port,
// TCP and UDP on the same ports (also_udp), and the forwarding method. Octavia clients never send them;
// a listener without them behaves exactly as Octavia's.
import { errors } from './errors.ts';
import { L4_PROTOCOL } from './protocols.ts';
import { json } from './views.ts';
import type { FieldType } from './schema/types.ts';
import type { Row } from '../common/db/database.ts';
import { formatPortIntervals, listenerIntervals, parsePortIntervals, type PortInterval } from '../common/listener-ports.ts';

export const FORWARDING_METHODS = ['PROXY', 'DIRECT_ROUTING'] as const;
/** Listener protocols that may carry additional ports (PROMETHEUS and SCTP serve one port). */
const MULTI_PORT_PROTOCOLS = ['TCP', 'UDP', 'HTTP', 'HTTPS', 'TERMINATED_HTTPS'];
/** Direct routing forwards packets, it never reads them: L4 protocols only (listeners and pools). */
const DIRECT_ROUTING_PROTOCOLS = ['TCP', 'UDP'];

/** The field type of `additional_ports`: a string in appliance notation, stored normalised (no spaces). */
export const portList: FieldType<string> = {
  parse(value, field) {
    if (typeof value !== 'string') throw errors.invalidInput(field, value, 'Value should be string');
    let intervals: PortInterval[];
    try {
      intervals = parsePortIntervals(value);
    } catch (e) {
      throw errors.invalidInput(field, value, (e as Error).message);
    }
    const sorted = [...intervals].sort((a, b) => a.from - b.from);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]!.from <= sorted[i - 1]!.to) throw errors.invalidInput(field, value, 'Value should not name a port twice');
    }
    return formatPortIntervals(intervals);
  },
};

/** The L4 protocols a listener row occupies its ports with. */
export function listenerTransports(row: Row): string[] {
  const l4 = L4_PROTOCOL[row.protocol] ?? row.protocol;
  return row.also_udp ? [l4, 'UDP'] : [l4];
}

/** 409 when `row` would share a port of the same L4 protocol with one of `existing` (Octavia's duplicate listener, over every port). */
export function checkPortConflicts(existing: Row[], row: Row): void {
  const mine = listenerIntervals(row);
  const transports = listenerTransports(row);
  for (const other of existing) {
    if (other.id === row.id) continue;
    const shared = listenerTransports(other).find((t) => transports.includes(t));
    if (!shared) continue;
    for (const a of listenerIntervals(other)) {
      for (const b of mine) {
        if (a.from <= b.to && b.from <= a.to) throw errors.duplicateListener(shared === 'UDP' && other.protocol !== 'UDP' ? 'UDP' : other.protocol, Math.max(a.from, b.from));
      }
    }
  }
}

/** The extension rules of a new listener row (400s naming the field). */
export function checkListenerExtensions(row: Row): void {
  const protocol = row.protocol as string;
  if (row.additional_ports) {
    if (!MULTI_PORT_PROTOCOLS.includes(protocol)) throw errors.validation(`additional_ports are not supported by ${protocol} protocol listeners.`);
    if (listenerIntervals(row).slice(1).some((i) => i.from <= row.protocol_port && row.protocol_port <= i.to)) {
      throw errors.invalidInput('additional_ports', row.additional_ports, `Value should not name protocol_port ${row.protocol_port} again`);
    }
  }
  if (row.also_udp && protocol !== 'TCP') throw errors.validation(`also_udp is only supported by TCP protocol listeners, not ${protocol}.`);
  if (row.forwarding_method === 'DIRECT_ROUTING' && !DIRECT_ROUTING_PROTOCOLS.includes(protocol)) {
    throw errors.validation(`forwarding_method DIRECT_ROUTING is only supported by TCP and UDP protocol listeners, not ${protocol}.`);
  }
}

/**
 * The rules between an extended listener and its default pool: the UDP half of a TCP+UDP listener
 * uses the same members over UDP, so the pool must be plain TCP with no persistence or SOURCE_IP;
 * direct routing hands packets to members unchanged, so the pool must be TCP or UDP.
 */
export function checkListenerPool(listener: Row, pool: Row): void {
  const sp = json<Row | null>(pool.session_persistence, null);
  if (listener.also_udp) {
    if (pool.protocol !== 'TCP') throw errors.validation(`A listener with also_udp needs a TCP pool, not ${pool.protocol}.`);
    if (sp && sp.type !== 'SOURCE_IP') {
      throw errors.validation(`A listener with also_udp needs a pool with no session persistence or SOURCE_IP, not ${sp.type}.`);
    }
  }
  if (listener.forwarding_method === 'DIRECT_ROUTING') {
    if (!DIRECT_ROUTING_PROTOCOLS.includes(pool.protocol)) {
      throw errors.validation(`A listener with forwarding_method DIRECT_ROUTING needs a TCP or UDP pool, not ${pool.protocol}.`);
    }
    // Packets are forwarded without connection state: only the source address can keep a client on a member.
    if (sp && sp.type !== 'SOURCE_IP') {
      throw errors.validation(`A listener with forwarding_method DIRECT_ROUTING needs a pool with no session persistence or SOURCE_IP, not ${sp.type}.`);
    }
  }
}
