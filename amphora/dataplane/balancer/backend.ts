import type { Pool } from '../../../common/amphora-config/index.ts';
import { createAlgorithm, type Algorithm, type BalanceContext } from './algorithms.ts';
import { createPersistence, type Persistence, type PersistenceRequest } from './persistence.ts';
import { Server } from './server.ts';
import { MemberTls, tlsFingerprintOf } from '../tls/member-tls.ts';

export type SelectRequest = BalanceContext & PersistenceRequest;

/** Learned persistence entries leave the worker through this, to be replayed in the other workers. */
export type StickListener = (poolId: string, key: string, serverId: string) => void;

/**
 * A pool as the data plane runs it (HAProxy "backend"): its servers, how it picks one, and persistence.
 * Updated in place across config applies so that health, counters and persistence survive.
 */
export class Backend {
  readonly id: string;
  pool: Pool;
  private algorithm: Algorithm;
  persistence: Persistence | null;
  private servers = new Map<string, Server>();
  private primaries: Server[] = [];
  private backups: Server[] = [];
  /** Re-encryption towards members; null = plain TCP. */
  tls: MemberTls | null;

  constructor(
    pool: Pool,
    private readonly onStick: StickListener = () => {},
  ) {
    this.id = pool.id;
    this.pool = pool;
    this.algorithm = createAlgorithm(pool.algorithm);
    this.persistence = this.makePersistence(pool);
    this.tls = pool.tls === null ? null : new MemberTls(pool.tls);
    this.applyMembers(pool);
  }

  /**
   * Applies a changed pool in place. Returns true when the way members are connected to changed (TLS on or
   * off, other TLS settings): idle member connections made the old way must then not be reused.
   */
  update(pool: Pool): boolean {
    const tlsBefore = this.tls?.fingerprint ?? null;
    const tlsAfter = pool.tls === null ? null : tlsFingerprintOf(pool.tls);
    if (tlsAfter !== tlsBefore) this.tls = pool.tls === null ? null : new MemberTls(pool.tls);
    if (pool.algorithm !== this.pool.algorithm) this.algorithm = createAlgorithm(pool.algorithm);
    const before = this.pool.sessionPersistence;
    const after = pool.sessionPersistence;
    if (after === null) this.persistence = null;
    else if (before === null || before.type !== after.type || this.persistence === null) this.persistence = this.makePersistence(pool);
    else this.persistence.reconfigure(after);
    this.pool = pool;
    this.applyMembers(pool);
    return tlsAfter !== tlsBefore;
  }

  private makePersistence(pool: Pool): Persistence | null {
    if (pool.sessionPersistence === null) return null;
    return createPersistence(pool.sessionPersistence, (key, serverId) => this.onStick(this.id, key, serverId));
  }

  private applyMembers(pool: Pool): void {
    const next = new Map<string, Server>();
    const checked = pool.healthMonitor !== null && pool.healthMonitor.enabled;
    for (const member of pool.members) {
      const existing = this.servers.get(member.id);
      const server = existing && existing.update(member) ? existing : new Server(member);
      if (!checked) {
        server.checked = false;
        server.healthy = true;
        server.checkLabel = 'UP';
      } else if (!server.checked) {
        // HAProxy's default init-state "up": serve until the first failed check proves otherwise.
        server.checked = true;
        server.healthy = true;
        server.checkLabel = 'UP';
      }
      next.set(member.id, server);
    }
    this.servers = next;
    this.refreshCandidates();
  }

  /** Recomputes the eligible server lists after a health or admin change. */
  refreshCandidates(): void {
    const primaries: Server[] = [];
    const backups: Server[] = [];
    for (const s of this.servers.values()) {
      if (!s.eligible) continue;
      (s.backup ? backups : primaries).push(s);
    }
    this.primaries = primaries;
    this.backups = backups;
  }

  get enabled(): boolean {
    return this.pool.enabled;
  }

  server(id: string): Server | undefined {
    return this.servers.get(id);
  }

  allServers(): IterableIterator<Server> {
    return this.servers.values();
  }

  /** HAProxy backend status: UP while any server (primary or backup) can take traffic. */
  get status(): 'UP' | 'DOWN' {
    return this.pool.enabled && (this.primaries.length > 0 || this.backups.length > 0) ? 'UP' : 'DOWN';
  }

  /**
   * Picks the server for a new connection or request: the persistence pin if it can serve, otherwise
   * the algorithm over the primaries, or over the backups when no primary is up. `exclude` skips
   * servers that already failed this request.
   */
  select(req: SelectRequest, exclude?: ReadonlySet<Server>): Server | null {
    if (!this.pool.enabled) return null;
    const persistence = this.persistence;
    if (persistence !== null) {
      const pinnedId = persistence.lookup(req);
      if (pinnedId !== undefined) {
        const pinned = this.servers.get(pinnedId);
        if (pinned !== undefined && pinned.servesSticky && !exclude?.has(pinned) && this.pinAllowed(pinned)) return pinned;
      }
    }
    let chosen = this.pickFrom(this.primaries, req, exclude);
    if (chosen === null) chosen = this.pickFrom(this.backups, req, exclude);
    if (chosen !== null && persistence !== null) persistence.chosen(req, chosen);
    return chosen;
  }

  /** A backup that a client was pinned to gives way as soon as a primary is back. */
  private pinAllowed(server: Server): boolean {
    return !server.backup || this.primaries.length === 0;
  }

  private pickFrom(list: Server[], req: BalanceContext, exclude?: ReadonlySet<Server>): Server | null {
    if (list.length === 0) return null;
    if (exclude === undefined || exclude.size === 0) return this.algorithm.pick(list, req);
    const rest = list.filter((s) => !exclude.has(s));
    return rest.length === 0 ? null : this.algorithm.pick(rest, req);
  }

  /** Health state from the monitors. */
  setHealth(serverId: string, healthy: boolean, label: string): void {
    const server = this.servers.get(serverId);
    if (server === undefined || !server.checked) return;
    const changed = server.healthy !== healthy;
    server.healthy = healthy;
    server.checkLabel = label;
    if (changed) {
      if (!healthy) this.persistence?.failed(server);
      this.refreshCandidates();
    }
  }

  succeeded(server: Server): void {
    this.persistence?.succeeded(server);
  }

  failed(server: Server): void {
    this.persistence?.failed(server);
  }

  importStick(key: string, serverId: string): void {
    this.persistence?.importEntry(key, serverId);
  }
}
