import type { SessionPersistence } from '../../../common/amphora-config/index.ts';
import { maskAddress } from '../net/address.ts';
import type { Server } from './server.ts';
import { StickTable } from './stick-table.ts';

/** What persistence may read from a request or connection. */
export interface PersistenceRequest {
  sourceAddress: string;
  /** Value of a request cookie, for HTTP requests; undefined on L4. */
  cookie?: (name: string) => string | undefined;
}

/** A learned (key → server) entry, shared with the other workers so that persistence holds across them. */
export type LearnListener = (key: string, serverId: string) => void;

export const APP_COOKIE_TTL_MS = 3_600_000;

export interface Persistence {
  readonly type: SessionPersistence['type'];
  /** The server id this request is pinned to, if any. */
  lookup(req: PersistenceRequest): string | undefined;
  /** A server was chosen for a request that had no usable pin. */
  chosen(req: PersistenceRequest, server: Server): void;
  /** The server answered successfully (HTTP response head, or an L4 connection established). */
  succeeded(server: Server): void;
  /** The server failed (connection refused, reset or health check down). */
  failed(server: Server): void;
  /** Header line to add to the response (HTTP_COOKIE insertion), or null. */
  responseCookie(req: PersistenceRequest, server: Server): string | null;
  /** Learns from the member's Set-Cookie values (APP_COOKIE). */
  learnFromResponse(setCookies: readonly string[], server: Server): void;
  /** Applies an entry learned by another worker. */
  importEntry(key: string, serverId: string): void;
  /** Adopts new settings of the same persistence type without losing learned entries. */
  reconfigure(settings: SessionPersistence): void;
  sweep(): void;
}

abstract class TablePersistence {
  protected readonly table: StickTable;
  constructor(
    ttlMs: number,
    protected readonly onLearn: LearnListener,
  ) {
    this.table = new StickTable(ttlMs);
  }

  protected learn(key: string, serverId: string): void {
    this.table.set(key, serverId);
    this.onLearn(key, serverId);
  }

  importEntry(key: string, serverId: string): void {
    this.table.set(key, serverId);
  }

  sweep(): void {
    this.table.sweep();
  }

  succeeded(): void {}
  failed(): void {}
  responseCookie(): string | null {
    return null;
  }
  learnFromResponse(_setCookies: readonly string[], _server: Server): void {}
}

class SourceIpPersistence extends TablePersistence implements Persistence {
  readonly type = 'SOURCE_IP' as const;
  private granularity: string | null;

  constructor(settings: Extract<SessionPersistence, { type: 'SOURCE_IP' }>, onLearn: LearnListener) {
    super(settings.timeout, onLearn);
    this.granularity = settings.granularity;
  }

  lookup(req: PersistenceRequest): string | undefined {
    return this.table.get(maskAddress(req.sourceAddress, this.granularity));
  }

  chosen(req: PersistenceRequest, server: Server): void {
    this.learn(maskAddress(req.sourceAddress, this.granularity), server.id);
  }

  reconfigure(settings: SessionPersistence): void {
    if (settings.type !== 'SOURCE_IP') return;
    this.table.setTtl(settings.timeout);
    this.granularity = settings.granularity;
  }
}

/** HAProxy `cookie <name> insert indirect nocache`: the cookie carries the member id. */
class HttpCookiePersistence implements Persistence {
  readonly type = 'HTTP_COOKIE' as const;
  private cookieName: string;

  constructor(settings: Extract<SessionPersistence, { type: 'HTTP_COOKIE' }>) {
    this.cookieName = settings.cookieName;
  }

  lookup(req: PersistenceRequest): string | undefined {
    return req.cookie?.(this.cookieName);
  }

  chosen(): void {}
  succeeded(): void {}
  failed(): void {}

  responseCookie(req: PersistenceRequest, server: Server): string | null {
    if (req.cookie?.(this.cookieName) === server.id) return null;
    return `Set-Cookie: ${this.cookieName}=${server.id}; path=/\r\nCache-Control: private\r\n`;
  }

  learnFromResponse(): void {}
  importEntry(): void {}

  reconfigure(settings: SessionPersistence): void {
    if (settings.type === 'HTTP_COOKIE') this.cookieName = settings.cookieName;
  }

  sweep(): void {}
}

/** HAProxy `stick store-response res.cook(name)` + `stick match req.cook(name)`. */
class AppCookiePersistence extends TablePersistence implements Persistence {
  readonly type = 'APP_COOKIE' as const;
  private cookieName: string;

  constructor(settings: Extract<SessionPersistence, { type: 'APP_COOKIE' }>, onLearn: LearnListener) {
    super(APP_COOKIE_TTL_MS, onLearn);
    this.cookieName = settings.cookieName;
  }

  lookup(req: PersistenceRequest): string | undefined {
    const value = req.cookie?.(this.cookieName);
    return value === undefined ? undefined : this.table.get(value);
  }

  chosen(): void {}

  override learnFromResponse(setCookies: readonly string[], server: Server): void {
    for (const header of setCookies) {
      const eq = header.indexOf('=');
      if (eq < 0 || header.slice(0, eq).trim() !== this.cookieName) continue;
      const end = header.indexOf(';', eq);
      const value = header.slice(eq + 1, end < 0 ? undefined : end).trim();
      if (value !== '') this.learn(value, server.id);
    }
  }

  reconfigure(settings: SessionPersistence): void {
    if (settings.type === 'APP_COOKIE') this.cookieName = settings.cookieName;
  }
}

/**
 * Extension: every client goes to the member that last answered successfully; when it fails, everyone
 * moves to one other member and stays there, even after the first one recovers.
 */
class LastSuccessfulPersistence implements Persistence {
  readonly type = 'LAST_SUCCESSFUL' as const;
  private current: string | undefined;

  constructor(private readonly onLearn: LearnListener) {}

  lookup(): string | undefined {
    return this.current;
  }

  chosen(): void {}

  succeeded(server: Server): void {
    if (this.current !== undefined) return;
    this.current = server.id;
    this.onLearn('current', server.id);
  }

  failed(server: Server): void {
    if (this.current !== server.id) return;
    this.current = undefined;
    this.onLearn('current', '');
  }

  responseCookie(): string | null {
    return null;
  }

  learnFromResponse(): void {}

  importEntry(_key: string, serverId: string): void {
    this.current = serverId === '' ? undefined : serverId;
  }

  reconfigure(): void {}
  sweep(): void {}
}

export function createPersistence(settings: SessionPersistence, onLearn: LearnListener): Persistence {
  switch (settings.type) {
    case 'SOURCE_IP':
      return new SourceIpPersistence(settings, onLearn);
    case 'HTTP_COOKIE':
      return new HttpCookiePersistence(settings);
    case 'APP_COOKIE':
      return new AppCookiePersistence(settings, onLearn);
    case 'LAST_SUCCESSFUL':
      return new LastSuccessfulPersistence(onLearn);
  }
}
