import type { AmphoraConfig, Listener, Pool } from '../../../common/amphora-config/index.ts';
import { expandPorts, ipv4Mask } from '../../../common/amphora-config/index.ts';
import { fnv1a, mix } from '../balancer/algorithms.ts';

/**
 * Hash slots per listener. Each slot forwards to one member; members get slots in proportion to their
 * weight by weighted rendezvous hashing, so a member leaving moves only its own slots' clients.
 */
export const SLOT_COUNT = 256;

export interface DrMemberTarget {
  id: string;
  address: string;
  mac: string;
}

/** One direct-routing listener as nftables will run it. */
export interface DrListenerPlan {
  id: string;
  poolId: string | null;
  transport: 'tcp' | 'udp';
  /** Contiguous port runs, ascending. */
  ports: [number, number][];
  allowedCidrs: string[];
  /** `source`: the client address (masked), for SOURCE_IP persistence or algorithm; `flow`: the 5-tuple. */
  hash: { kind: 'source'; mask: string | null } | { kind: 'flow' };
  /** The members that get slots; empty = nobody can serve, packets are dropped. */
  targets: DrMemberTarget[];
  /** Slot i → index in `targets` (SLOT_COUNT entries, or none when `targets` is empty). */
  slots: number[];
}

export interface DrPlan {
  table: string;
  device: string;
  deviceMac: string;
  vips: string[];
  listeners: DrListenerPlan[];
}

/** What the data plane knows about members beyond the config. */
export interface MemberFacts {
  /** A monitored member's health; absent = healthy (servers start UP, as HAProxy's init-state up). */
  healthy(poolId: string, memberId: string): boolean;
  /** The member's MAC address on the VIP's segment, if resolved. */
  mac(address: string): string | undefined;
}

/** The nftables table of one amphora's direct-routing listeners (netdev family). */
export function tableName(amphoraId: string): string {
  return `argonaut_dr_${amphoraId.replace(/-/g, '').toLowerCase()}`;
}

export function directRoutingListeners(config: AmphoraConfig): Listener[] {
  return config.listeners.filter((l) => l.enabled && l.forwarding === 'DIRECT_ROUTING');
}

export function buildPlan(config: AmphoraConfig, device: string, deviceMac: string, facts: MemberFacts): DrPlan {
  const pools = new Map(config.pools.map((p) => [p.id, p]));
  const listeners = directRoutingListeners(config).map((listener): DrListenerPlan => {
    const pool = listener.defaultPoolId === null ? undefined : pools.get(listener.defaultPoolId);
    const targets = pool === undefined ? [] : eligibleTargets(pool, facts);
    return {
      id: listener.id,
      poolId: listener.defaultPoolId,
      transport: listener.protocol === 'UDP' ? 'udp' : 'tcp',
      ports: portRuns(expandPorts(listener.ports)),
      allowedCidrs: listener.allowedCidrs,
      hash: pool === undefined ? { kind: 'flow' } : hashOf(pool),
      targets: targets.map((t) => ({ id: t.id, address: t.address, mac: t.mac })),
      slots: assignSlots(targets),
    };
  });
  return { table: tableName(config.amphoraId), device, deviceMac, vips: config.vips.map((v) => v.address), listeners };
}

function hashOf(pool: Pool): DrListenerPlan['hash'] {
  const persistence = pool.sessionPersistence;
  if (persistence?.type === 'SOURCE_IP') {
    return { kind: 'source', mask: persistence.granularity === null ? null : ipv4Mask(persistence.granularity) };
  }
  if (pool.algorithm === 'SOURCE_IP') return { kind: 'source', mask: null };
  return { kind: 'flow' };
}

/**
 * Who may get new packets: enabled, weight above 0, healthy (when monitored) and with a known MAC;
 * the backups only when no primary qualifies. Stateless hashing cannot tell new flows from old ones,
 * so a draining member (weight 0) leaves the table at once, like a removed one.
 */
export function eligibleTargets(pool: Pool, facts: MemberFacts): (DrMemberTarget & { weight: number })[] {
  if (!pool.enabled) return [];
  const monitored = pool.healthMonitor !== null && pool.healthMonitor.enabled;
  const usable = pool.members.flatMap((m) => {
    if (!m.enabled || m.weight === 0) return [];
    if (monitored && !facts.healthy(pool.id, m.id)) return [];
    const mac = facts.mac(m.address);
    return mac === undefined ? [] : [{ id: m.id, address: m.address, mac, weight: m.weight, backup: m.backup }];
  });
  const primaries = usable.filter((m) => !m.backup);
  const chosen = primaries.length > 0 ? primaries : usable;
  return chosen.map(({ backup: _backup, ...t }) => t);
}

/** Weighted rendezvous hashing of every slot over the members: slot i → index of its member. */
export function assignSlots(members: readonly { id: string; weight: number }[]): number[] {
  if (members.length === 0) return [];
  const slots: number[] = [];
  for (let slot = 0; slot < SLOT_COUNT; slot++) {
    const slotHash = fnv1a(`slot ${slot}`, 0x811c9dc5);
    let best = 0;
    let bestScore = Infinity;
    members.forEach((m, i) => {
      const h = (mix(fnv1a(m.id, slotHash)) + 0.5) / 4294967296;
      const score = -Math.log(h) / m.weight;
      if (score < bestScore) {
        bestScore = score;
        best = i;
      }
    });
    slots.push(best);
  }
  return slots;
}

/** [1, 2, 3, 7] → [[1, 3], [7, 7]]. */
export function portRuns(ports: readonly number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (const port of ports) {
    const last = runs[runs.length - 1];
    if (last !== undefined && port === last[1] + 1) last[1] = port;
    else runs.push([port, port]);
  }
  return runs;
}
