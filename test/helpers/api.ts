// Starts a real API service on an ephemeral port for a test file: SQLite in memory by default,
// a fresh MariaDB database when ARGONAUT_TEST_DB=mysql. Requests go over real HTTP.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { buildConfig, type ConfigInput } from '../../common/config.ts';
import { Database, dropMysqlDatabase, ensureMysqlDatabase } from '../../common/db/database.ts';
import { createLogger } from '../../common/logging.ts';
import { createApiService, type ApiService } from '../../api/app.ts';
import type { AuthContext } from '../../api/auth/auth-context.ts';
import type { TokenValidator } from '../../api/auth/keystone-client.ts';

export interface Response {
  status: number;
  body: any;
  headers: Headers;
}

export interface Client {
  get(path: string): Promise<Response>;
  post(path: string, body?: unknown): Promise<Response>;
  put(path: string, body?: unknown): Promise<Response>;
  delete(path: string): Promise<Response>;
  raw(method: string, path: string, body?: string | Buffer, headers?: Record<string, string>): Promise<Response>;
}

export interface TestApi {
  url: string;
  service: ApiService;
  /** A client with the given token (keystone mode) or no token (noauth). */
  client(token?: string): Client;
  /** Waits until the workers have finished every submitted operation. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

export const MYSQL = process.env.ARGONAUT_TEST_DB === 'mysql';
const MYSQL_BASE = process.env.ARGONAUT_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306';

/**
 * Tokens of the fake validator are `<project>:<role>,<role>` (e.g. `p1:member,load-balancer_member`);
 * anything else is rejected as an invalid token.
 */
export const fakeValidator: TokenValidator = {
  wwwAuthenticateUri: 'http://keystone.invalid',
  async validateToken(token: string): Promise<AuthContext> {
    const m = /^([^:]*):(.*)$/.exec(token);
    if (!m) {
      const { InvalidTokenError } = await import('../../api/auth/keystone-client.ts');
      throw new InvalidTokenError('invalid token');
    }
    return { projectId: m[1] || null, userId: 'user', roles: m[2]!.split(',').filter(Boolean), isAdmin: false, authStrategy: 'keystone' };
  },
};

/**
 * `keystone`: true validates tokens with `fakeValidator`; 'real' with the Keystone of
 * `config.keystone` (integration tests). `mysql`: a fresh MariaDB database even without
 * ARGONAUT_TEST_DB=mysql.
 */
export async function startApi(config: ConfigInput = {}, opts: { keystone?: boolean | 'real'; mysql?: boolean } = {}): Promise<TestApi> {
  const mysql = MYSQL || opts.mysql === true;
  let dbUrl = 'sqlite::memory:';
  if (mysql) {
    dbUrl = `${MYSQL_BASE}/argonaut_test_${randomBytes(4).toString('hex')}`;
    await ensureMysqlDatabase(dbUrl);
  }
  const cfg = buildConfig({
    ...config,
    // API tests run on Octavia's no-op gate backends (their addresses are documentation ones that
    // must never carry traffic); end-to-end tests name the real drivers.
    controllerWorker: { computeDriver: 'noop', networkDriver: 'noop', amphoraDriver: 'noop', ...(config.controllerWorker ?? {}) },
    api: { port: 0, ...(config.api ?? {}), authStrategy: opts.keystone ? 'keystone' : 'noauth' },
    database: { url: dbUrl, ...(config.database ?? {}) },
    logging: { level: 'silent' },
  });
  const log = createLogger('test', 'silent');
  const db = new Database({ url: dbUrl });
  const service = await createApiService(cfg, log, db, opts.keystone === true ? { tokenValidator: fakeValidator } : {});
  const server = service.app.listen(0, '127.0.0.1');
  await new Promise<void>((r) => server.once('listening', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const raw = async (method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Response> => {
    const res = await fetch(url + path, { method, body: body === undefined ? undefined : new Uint8Array(Buffer.from(body)), headers });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* non-JSON bodies are returned as text */
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
  const client = (token?: string): Client => {
    const headers = (extra: Record<string, string> = {}) => ({ ...(token ? { 'X-Auth-Token': token } : {}), ...extra });
    const json = (method: string) => (path: string, body?: unknown) =>
      raw(method, path, body === undefined ? undefined : JSON.stringify(body), headers({ 'Content-Type': 'application/json' }));
    return {
      get: (path) => raw('GET', path, undefined, headers()),
      post: json('POST'),
      put: json('PUT'),
      delete: (path) => raw('DELETE', path, undefined, headers()),
      raw: (method, path, body, extra) => raw(method, path, body, headers(extra)),
    };
  };
  return {
    url,
    service,
    client,
    settle: () => service.services.providers.idle(),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await service.close();
      if (mysql) await dropMysqlDatabase(dbUrl);
    },
  };
}
