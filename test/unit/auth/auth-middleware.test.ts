import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import Koa from 'koa';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AuthContext } from '../../../api/auth/auth-context.ts';
import {
  authMiddleware,
  type AuthMiddlewareOptions,
  getAuthContext,
  KEYSTONE_401_BODY,
  noauthContextFromHeaders,
} from '../../../api/auth/auth-middleware.ts';
import {
  type FetchLike,
  InvalidTokenError,
  KeystoneClient,
  KeystoneUnavailableError,
  type TokenValidator,
} from '../../../api/auth/keystone-client.ts';
import { TokenCache } from '../../../api/auth/token-cache.ts';

const GOOD = 'gAAAAABgood-token';
const EXPECTED_401 = {
  error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' },
};

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});

/** A validator backed by a table; records what it was asked. */
function fakeValidator(behaviour: (token: string) => Promise<AuthContext> | AuthContext = defaultBehaviour) {
  const seen: string[] = [];
  const validator: TokenValidator = {
    wwwAuthenticateUri: 'http://127.0.0.1:5000',
    validateToken: async (token) => {
      seen.push(token);
      return behaviour(token);
    },
  };
  return { validator, seen };
}

function defaultBehaviour(token: string): AuthContext {
  if (token !== GOOD) throw new InvalidTokenError('token not found');
  return { projectId: 'p-demo', userId: 'u-demo', roles: ['member', 'reader'], isAdmin: false, authStrategy: 'keystone' };
}

/** Starts a Koa app with the middleware; the handler echoes the auth context and the identity headers it sees. */
async function start(opts: AuthMiddlewareOptions, handler?: Koa.Middleware): Promise<string> {
  const app = new Koa();
  app.silent = true;
  app.use(authMiddleware(opts));
  app.use(
    handler ??
      (async (ctx) => {
        ctx.body = { auth: ctx.state.auth ?? null, xRoles: ctx.get('X-Roles') || null, xProject: ctx.get('X-Project-Id') || null };
      }),
  );
  const server = app.listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise<void>((r) => server.once('listening', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('authMiddleware (keystone)', () => {
  it('answers 401 with keystonemiddleware\'s exact body and WWW-Authenticate when the token is missing', async () => {
    const { validator, seen } = fakeValidator();
    const base = await start({ strategy: 'keystone', keystone: validator });
    const res = await fetch(`${base}/v2.0/lbaas/loadbalancers`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Keystone uri="http://127.0.0.1:5000"');
    expect(res.headers.get('content-type')).toBe('application/json');
    const text = await res.text();
    expect(text).toBe(KEYSTONE_401_BODY);
    expect(JSON.parse(text)).toEqual(EXPECTED_401);
    expect(seen).toEqual([]);
  });

  it('answers the same 401 for an invalid token', async () => {
    const { validator, seen } = fakeValidator();
    const base = await start({ strategy: 'keystone', keystone: validator });
    const res = await fetch(`${base}/v2/lbaas/pools`, { headers: { 'X-Auth-Token': 'bogus' } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Keystone uri="http://127.0.0.1:5000"');
    expect(await res.json()).toEqual(EXPECTED_401);
    expect(seen).toEqual(['bogus']);
  });

  it('sets ctx.state.auth for a valid token (X-Auth-Token or X-Storage-Token)', async () => {
    const { validator } = fakeValidator();
    const base = await start({ strategy: 'keystone', keystone: validator });
    for (const header of ['X-Auth-Token', 'X-Storage-Token']) {
      const res = await fetch(`${base}/v2.0/lbaas/loadbalancers`, { headers: { [header]: GOOD } });
      expect(res.status).toBe(200);
      expect((await res.json()).auth).toEqual({
        projectId: 'p-demo',
        userId: 'u-demo',
        roles: ['member', 'reader'],
        isAdmin: false,
        authStrategy: 'keystone',
      });
    }
  });

  it.each(['/', '/load-balancer/', '/healthcheck', '/load-balancer/healthcheck'])(
    'lets %s through without a token (GET, HEAD, OPTIONS)',
    async (path) => {
      const { validator, seen } = fakeValidator();
      const base = await start({ strategy: 'keystone', keystone: validator });
      for (const method of ['GET', 'HEAD', 'OPTIONS']) {
        const res = await fetch(`${base}${path}`, { method, headers: { 'X-Auth-Token': 'bogus' } });
        expect(res.status, `${method} ${path}`).toBe(200);
        if (method === 'GET') expect((await res.json()).auth).toBeNull();
      }
      expect(seen).toEqual([]);
    },
  );

  it.each(['/load-balancer', '/v2', '/v2.0', '/healthcheck/', '/index.html'])('requires a token on %s', async (path) => {
    const { validator } = fakeValidator();
    const base = await start({ strategy: 'keystone', keystone: validator });
    expect((await fetch(`${base}${path}`)).status).toBe(401);
  });

  it('honours custom public paths', async () => {
    const { validator } = fakeValidator();
    const base = await start({ strategy: 'keystone', keystone: validator, publicPaths: ['/metrics'] });
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
    expect((await fetch(`${base}/`)).status).toBe(401);
  });

  it('answers 503 (not 500) when Keystone is unavailable, without the token in the body', async () => {
    const { validator } = fakeValidator(() => {
      throw new KeystoneUnavailableError('Keystone at http://127.0.0.1:5000/v3 is unreachable: fetch failed');
    });
    const base = await start({ strategy: 'keystone', keystone: validator });
    const res = await fetch(`${base}/v2/lbaas/loadbalancers`, { headers: { 'X-Auth-Token': GOOD } });
    expect(res.status).toBe(503);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({
      faultcode: 'Server',
      faultstring: 'The Keystone service is temporarily unavailable.',
      debuginfo: null,
    });
    expect(text).not.toContain(GOOD);
  });

  it('lets unexpected validator errors propagate (no disguised 401/503)', async () => {
    const { validator } = fakeValidator(() => {
      throw new TypeError('a bug');
    });
    const errors: unknown[] = [];
    const app = new Koa();
    app.silent = true;
    app.on('error', (e) => errors.push(e));
    app.use(authMiddleware({ strategy: 'keystone', keystone: validator }));
    const server = app.listen(0, '127.0.0.1');
    servers.push(server);
    await new Promise<void>((r) => server.once('listening', () => r()));
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v2`, { headers: { 'X-Auth-Token': GOOD } });
    expect(res.status).toBe(500);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(TypeError);
  });

  it('strips identity headers a client could use to spoof roles or projects', async () => {
    const { validator } = fakeValidator();
    const base = await start({ strategy: 'keystone', keystone: validator });
    const res = await fetch(`${base}/v2`, { headers: { 'X-Auth-Token': GOOD, 'X-Roles': 'admin', 'X-Project-Id': 'victim' } });
    const body = await res.json();
    expect(body.xRoles).toBeNull();
    expect(body.xProject).toBeNull();
    expect(body.auth.roles).toEqual(['member', 'reader']);
  });

  it('uses the cache: one Keystone validation for repeated requests and for a flood of bad tokens', async () => {
    const { validator, seen } = fakeValidator();
    const base = await start({ strategy: 'keystone', keystone: validator, cache: new TokenCache() });
    for (let i = 0; i < 3; i++) {
      expect((await fetch(`${base}/v2`, { headers: { 'X-Auth-Token': GOOD } })).status).toBe(200);
      expect((await fetch(`${base}/v2`, { headers: { 'X-Auth-Token': 'bad' } })).status).toBe(401);
    }
    expect(seen).toEqual([GOOD, 'bad']);
  });

  it('adds WWW-Authenticate to a 401 produced downstream and accepts an explicit URI', async () => {
    const { validator } = fakeValidator();
    const base = await start(
      { strategy: 'keystone', keystone: validator, wwwAuthenticateUri: 'https://keystone.example' },
      async (ctx) => {
        ctx.status = 401;
        ctx.body = { nope: true };
      },
    );
    const res = await fetch(`${base}/v2`, { headers: { 'X-Auth-Token': GOOD } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Keystone uri="https://keystone.example"');
  });

  it('logs rejections with a token fingerprint, never the token', async () => {
    const { validator } = fakeValidator();
    const lines: string[] = [];
    const rec = (obj: object, msg?: string) => lines.push(JSON.stringify({ obj, msg }));
    const base = await start({
      strategy: 'keystone',
      keystone: validator,
      logger: { debug: rec, info: rec, warn: rec, error: rec },
    });
    await fetch(`${base}/v2`, { headers: { 'X-Auth-Token': 'very-secret-bad-token' } });
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toContain('very-secret-bad-token');
    expect(lines.join('\n')).toMatch(/"token":"[0-9a-f]{16}"/);
  });

  it('works end to end with KeystoneClient and TokenCache', async () => {
    const fetchImpl: FetchLike = async (url, init) => {
      if (init.method === 'POST') {
        return new Response(JSON.stringify({ token: { expires_at: '2999-01-01T00:00:00.000000Z', catalog: [] } }), {
          status: 201,
          headers: { 'X-Subject-Token': 'svc' },
        });
      }
      const subject = new Headers(init.headers).get('x-subject-token');
      if (subject !== GOOD) return new Response('{}', { status: 404 });
      return new Response(
        JSON.stringify({
          token: {
            expires_at: '2999-01-01T00:00:00.000000Z',
            user: { id: 'u1', name: 'demo' },
            project: { id: 'p1', name: 'demo' },
            roles: [{ id: 'r', name: 'Member' }, { id: 'r2', name: 'reader' }],
          },
        }),
        { status: 200 },
      );
    };
    const keystone = new KeystoneClient({
      authUrl: 'http://127.0.0.1:5000/v3',
      username: 'octavia',
      password: 'pw',
      projectName: 'service',
      userDomainName: 'Default',
      projectDomainName: 'Default',
      timeoutMs: 1000,
      fetch: vi.fn(fetchImpl),
    });
    const base = await start({ strategy: 'keystone', keystone, cache: new TokenCache() });
    const ok = await fetch(`${base}/v2`, { headers: { 'X-Auth-Token': GOOD } });
    expect((await ok.json()).auth).toMatchObject({ projectId: 'p1', userId: 'u1', roles: ['member', 'reader'] });
    const bad = await fetch(`${base}/v2`, { headers: { 'X-Auth-Token': 'nope' } });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toBe('Keystone uri="http://127.0.0.1:5000"');
  });

  it('refuses to build the keystone strategy without a validator', () => {
    expect(() => authMiddleware({ strategy: 'keystone' })).toThrow(/validator/);
  });
});

describe('authMiddleware (noauth)', () => {
  it('makes every caller an admin and reads the project, user and roles from headers', async () => {
    const base = await start({ strategy: 'noauth' });
    const res = await fetch(`${base}/v2/lbaas/loadbalancers`, {
      headers: { 'X-Project-Id': 'proj-a', 'X-User-Id': 'user-a', 'X-Roles': 'Member, reader ,load-balancer_member' },
    });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.auth).toEqual({
      projectId: 'proj-a',
      userId: 'user-a',
      roles: ['member', 'reader', 'load-balancer_member'],
      isAdmin: true,
      authStrategy: 'noauth',
    });
    // noauth leaves the headers alone
    expect(body.xProject).toBe('proj-a');
  });

  it('needs no token and leaves the project null without headers', async () => {
    const base = await start({ strategy: 'noauth' });
    const res = await fetch(`${base}/v2`);
    expect(res.status).toBe(200);
    expect((await res.json()).auth).toEqual({ projectId: null, userId: null, roles: [], isAdmin: true, authStrategy: 'noauth' });
  });

  it('falls back to the legacy tenant/user/role headers as oslo.context does', () => {
    expect(noauthContextFromHeaders({ 'x-tenant-id': 't1', 'x-user': 'u1', 'x-role': 'admin' })).toMatchObject({
      projectId: 't1',
      userId: 'u1',
      roles: ['admin'],
    });
    expect(noauthContextFromHeaders({ 'x-tenant': 't2' }).projectId).toBe('t2');
    expect(noauthContextFromHeaders({ 'x-project-id': 'p', 'x-tenant-id': 't' }).projectId).toBe('p');
    expect(noauthContextFromHeaders({ 'x-roles': 'a', 'x-role': 'b' }).roles).toEqual(['a']);
  });
});

describe('getAuthContext', () => {
  it('returns ctx.state.auth and fails loudly when the middleware did not run', () => {
    const auth: AuthContext = { projectId: 'p', userId: null, roles: [], isAdmin: true, authStrategy: 'noauth' };
    expect(getAuthContext({ state: { auth } } as unknown as Koa.Context)).toBe(auth);
    expect(() => getAuthContext({ state: {} } as unknown as Koa.Context)).toThrow(/authMiddleware/);
  });
});
