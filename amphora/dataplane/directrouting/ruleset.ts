import type { DrListenerPlan, DrPlan } from './plan.ts';

/**
 * Renders a direct-routing plan as one nftables script that replaces the amphora's table atomically
 * (`nft -f` runs a file as one transaction: create the table if missing, delete it, create it anew).
 *
 * Packets for a VIP, transport and port of a DR listener are taken at the netdev ingress hook of the
 * VIP's interface, before the amphora's IP stack sees them; a hash picks a slot, the slot's member chain
 * counts the packet and rewrites the Ethernet header (destination: the member's MAC; source: the
 * amphora's own, as LVS does, so that switches keep learning the client's or router's MAC on its own
 * port) and sends it out of the same interface. The IP packet is untouched: the member sees the client's
 * address and the VIP, and answers the client directly.
 */
export function renderRuleset(plan: DrPlan): string {
  const lines: string[] = [...removalLines(plan.table), `table netdev ${plan.table} {`];
  for (const l of plan.listeners) {
    lines.push(`  counter ${listenerCounter(l.id)} {}`);
    for (const t of l.targets) {
      lines.push(`  counter ${memberCounter(l.id, t.id)} {}`);
      if (l.transport === 'tcp') lines.push(`  counter ${synCounter(l.id, t.id)} {}`);
    }
  }
  lines.push(
    '  chain ingress {',
    `    type filter hook ingress device ${quote(plan.device)} priority -500; policy accept;`,
  );
  const vips = plan.vips.length === 1 ? plan.vips[0] : `{ ${plan.vips.join(', ')} }`;
  for (const l of plan.listeners) {
    lines.push(`    ip daddr ${vips} ${l.transport} dport ${portSet(l.ports)} jump ${listenerChain(l.id)}`);
  }
  lines.push('  }');
  for (const l of plan.listeners) lines.push(...listenerLines(plan, l));
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** The script that removes the table, whether it exists or not. */
export function renderRemoval(table: string): string {
  return `${removalLines(table).join('\n')}\n`;
}

function removalLines(table: string): string[] {
  return [`table netdev ${table} {}`, `delete table netdev ${table}`];
}

function listenerLines(plan: DrPlan, l: DrListenerPlan): string[] {
  const lines = [`  chain ${listenerChain(l.id)} {`];
  if (l.allowedCidrs.length > 0) lines.push(`    ip saddr != { ${l.allowedCidrs.join(', ')} } drop`);
  lines.push(`    counter name ${quote(listenerCounter(l.id))}`);
  if (l.targets.length > 0) {
    const key = l.hash.kind === 'flow' ? 'symhash' : `jhash ip saddr${l.hash.mask === null ? '' : ` & ${l.hash.mask}`}`;
    const elements = l.slots.map((target, slot) => `${slot} : jump ${memberChain(l.id, l.targets[target].id)}`);
    lines.push(`    ${key} mod ${l.slots.length}${l.hash.kind === 'source' ? ' seed 0x0' : ''} vmap { ${elements.join(', ')} }`);
  }
  // Nobody can serve (or a slot was missed): drop rather than let the amphora's own stack answer.
  lines.push('    drop', '  }');
  for (const t of l.targets) {
    lines.push(`  chain ${memberChain(l.id, t.id)} {`);
    if (l.transport === 'tcp') lines.push(`    tcp flags & (syn | ack) == syn counter name ${quote(synCounter(l.id, t.id))}`);
    lines.push(
      `    counter name ${quote(memberCounter(l.id, t.id))} ether saddr set ${plan.deviceMac} ether daddr set ${t.mac} fwd to ${quote(plan.device)}`,
      '  }',
    );
  }
  return lines;
}

function portSet(runs: readonly [number, number][]): string {
  const items = runs.map(([from, to]) => (from === to ? String(from) : `${from}-${to}`));
  return items.length === 1 ? items[0] : `{ ${items.join(', ')} }`;
}

const bare = (id: string) => id.replace(/-/g, '').toLowerCase();
const quote = (name: string) => `"${name}"`;

export const listenerChain = (listenerId: string) => `l_${bare(listenerId)}`;
export const memberChain = (listenerId: string, memberId: string) => `m_${bare(listenerId)}_${bare(memberId)}`;
/** Bytes and packets a listener admitted (client → members only: replies never pass the amphora). */
export const listenerCounter = (listenerId: string) => `cl_${bare(listenerId)}`;
/** Bytes and packets forwarded to one member by one listener. */
export const memberCounter = (listenerId: string, memberId: string) => `cm_${bare(listenerId)}_${bare(memberId)}`;
/** TCP connection openings (SYN without ACK) forwarded to one member by one listener. */
export const synCounter = (listenerId: string, memberId: string) => `cs_${bare(listenerId)}_${bare(memberId)}`;
