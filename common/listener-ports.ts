// The ports a listener row serves (issue 7's appliance extension): protocol_port, then the
// additional ports and ranges stored in appliance notation ("554,50000-65535"). Shared by the API,
// which validates them, and the amphora driver, which renders them.
import type { Row } from './db/database.ts';

export interface PortInterval {
  from: number;
  to: number;
}

/** Parses the appliance notation "554,50000-65535" into intervals; throws a message on bad input. */
export function parsePortIntervals(text: string): PortInterval[] {
  if (text.trim() === '') throw new Error('Value should list at least one port or range such as 554,50000-65535');
  return text.split(',').map((part) => {
    const item = part.trim();
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(item);
    if (!m) throw new Error(`Value should be ports and ranges such as 554,50000-65535 ("${item}" is neither)`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (from < 1 || to > 65535) throw new Error(`Value should hold ports between 1 and 65535 ("${item}" is not)`);
    if (from > to) throw new Error(`Value should hold ranges whose first port is not above the last ("${item}" is)`);
    return { from, to };
  });
}

export const formatPortIntervals = (intervals: PortInterval[]) =>
  intervals.map((i) => (i.from === i.to ? `${i.from}` : `${i.from}-${i.to}`)).join(',');

/** Every port interval a listener row serves: protocol_port first, then its additional ports. */
export function listenerIntervals(row: Row): PortInterval[] {
  const extra = typeof row.additional_ports === 'string' && row.additional_ports !== '' ? parsePortIntervals(row.additional_ports) : [];
  return [{ from: row.protocol_port, to: row.protocol_port }, ...extra];
}

/** The AmphoraConfig port list of a listener row: single ports as numbers, ranges as {from, to}. */
export function listenerPortSpecs(row: Row): Array<number | PortInterval> {
  return listenerIntervals(row).map((i) => (i.from === i.to ? i.from : { from: i.from, to: i.to }));
}
