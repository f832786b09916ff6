import type { ListenerProtocol, PortSpec, Transport } from './types.ts';

/** Every port a listener's port list names, ascending, without duplicates. */
export function expandPorts(specs: readonly PortSpec[]): number[] {
  const ports = new Set<number>();
  for (const spec of specs) {
    if (typeof spec === 'number') {
      ports.add(spec);
    } else {
      for (let p = spec.from; p <= spec.to; p++) ports.add(p);
    }
  }
  return [...ports].sort((a, b) => a - b);
}

/** Parses the appliance notation `1935,554,50000-65535` into port specs. */
export function parsePortList(text: string): PortSpec[] {
  return text.split(',').map((part) => {
    const item = part.trim();
    const range = /^(\d+)-(\d+)$/.exec(item);
    if (range) return { from: Number(range[1]), to: Number(range[2]) };
    if (/^\d+$/.test(item)) return Number(item);
    throw new Error(`invalid port list item "${item}"`);
  });
}

export function transportOf(protocol: ListenerProtocol): Transport {
  if (protocol === 'UDP') return 'udp';
  if (protocol === 'SCTP') return 'sctp';
  return 'tcp';
}
