import type { LbAlgorithm } from '../../../common/amphora-config/index.ts';
import type { Server } from './server.ts';

/** What an algorithm may look at about the connection being balanced. */
export interface BalanceContext {
  sourceAddress: string;
  sourcePort: number;
}

/** Picks one of `candidates` (all eligible, non-empty) or null when every candidate is full. */
export interface Algorithm {
  pick(candidates: readonly Server[], ctx: BalanceContext): Server | null;
}

/** Smooth weighted round robin (the nginx variant): even interleaving proportional to weight. */
export class RoundRobin implements Algorithm {
  pick(candidates: readonly Server[]): Server | null {
    let total = 0;
    let best: Server | null = null;
    for (let i = 0; i < candidates.length; i++) {
      const s = candidates[i];
      if (s.full) continue;
      s.currentWeight += s.weight;
      total += s.weight;
      if (best === null || s.currentWeight > best.currentWeight) best = s;
    }
    if (best !== null) best.currentWeight -= total;
    return best;
  }
}

/** Fewest active connections relative to weight; ties rotate so equal servers share new connections. */
export class LeastConnections implements Algorithm {
  private rotation = 0;

  pick(candidates: readonly Server[]): Server | null {
    const n = candidates.length;
    const start = this.rotation++ % n;
    let best: Server | null = null;
    for (let k = 0; k < n; k++) {
      const s = candidates[(start + k) % n];
      if (s.full) continue;
      if (best === null || s.counters.activeConnections * best.weight < best.counters.activeConnections * s.weight) best = s;
    }
    return best;
  }
}

/**
 * Weighted rendezvous hashing on a key derived from the client: the same client reaches the same server
 * while the set of servers is unchanged, and only the clients of a removed server move when it leaves.
 */
export class HashAlgorithm implements Algorithm {
  constructor(private readonly keyOf: (ctx: BalanceContext) => string) {}

  pick(candidates: readonly Server[], ctx: BalanceContext): Server | null {
    const keyHash = fnv1a(this.keyOf(ctx), 0x811c9dc5);
    let best: Server | null = null;
    let bestScore = Infinity;
    for (const s of candidates) {
      if (s.full) continue;
      const h = (mix(fnv1a(s.id, keyHash)) + 0.5) / 4294967296;
      const score = -Math.log(h) / s.weight;
      if (score < bestScore) {
        bestScore = score;
        best = s;
      }
    }
    return best;
  }
}

/** Power of two choices: two weighted-random servers, the less loaded one wins. */
export class PowerOfTwoChoices implements Algorithm {
  constructor(private readonly random: () => number = Math.random) {}

  pick(candidates: readonly Server[]): Server | null {
    const open = candidates.filter((s) => !s.full);
    if (open.length === 0) return null;
    if (open.length === 1) return open[0];
    const a = this.weightedRandom(open, null);
    const b = this.weightedRandom(open, a);
    return b.counters.activeConnections * a.weight < a.counters.activeConnections * b.weight ? b : a;
  }

  private weightedRandom(servers: readonly Server[], exclude: Server | null): Server {
    let total = 0;
    for (const s of servers) if (s !== exclude) total += s.weight;
    let r = this.random() * total;
    for (const s of servers) {
      if (s === exclude) continue;
      r -= s.weight;
      if (r < 0) return s;
    }
    return servers.find((s) => s !== exclude) as Server;
  }
}

export function createAlgorithm(algorithm: LbAlgorithm): Algorithm {
  switch (algorithm) {
    case 'ROUND_ROBIN':
      return new RoundRobin();
    case 'LEAST_CONNECTIONS':
      return new LeastConnections();
    case 'SOURCE_IP':
      return new HashAlgorithm((ctx) => ctx.sourceAddress);
    case 'SOURCE_IP_PORT':
      return new HashAlgorithm((ctx) => `${ctx.sourceAddress}:${ctx.sourcePort}`);
    case 'POWER_OF_TWO_CHOICES':
      return new PowerOfTwoChoices();
  }
}

export function fnv1a(text: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Final avalanche (murmur3 fmix32) so that similar keys spread evenly. */
export function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}
