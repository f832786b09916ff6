import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  EndpointNotFoundError,
  type FetchLike,
  InvalidTokenError,
  KeystoneClient,
  KeystoneUnavailableError,
  parseKeystoneTime,
} from '../../../api/auth/keystone-client.ts';

const AUTH_URL = 'http://keystone.test:5000/v3';
const SERVICE_PASSWORD = 'sup3r-s3cret-pw';
const HOUR = 3600_000;

interface Call {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: unknown;
}

/** A scripted Keystone: issues service tokens, validates user tokens from a table. */
class FakeKeystone {
  calls: Call[] = [];
  clock = Date.parse('2030-01-01T00:00:00Z');
  serviceTokenLifetimeMs = HOUR;
  issued = 0;
  /** Service tokens Keystone currently accepts. */
  validServiceTokens = new Set<string>();
  userTokens = new Map<string, object>();
  /** Next responses to force (status) for validation requests, consumed in order. */
  forcedValidationStatus: number[] = [];
  issueStatus = 201;
  catalog: object[] = [
    {
      type: 'identity',
      name: 'keystone',
      id: 'svc-identity',
      endpoints: [{ id: 'e1', interface: 'public', region: 'RegionOne', region_id: 'RegionOne', url: 'http://keystone.test:5000/v3/' }],
    },
    {
      type: 'network',
      name: 'neutron',
      id: 'svc-network',
      endpoints: [
        { id: 'n1', interface: 'public', region: 'RegionOne', region_id: 'RegionOne', url: 'http://neutron.public:9696' },
        { id: 'n2', interface: 'internal', region: 'RegionOne', region_id: 'RegionOne', url: 'http://neutron.internal:9696' },
        { id: 'n3', interface: 'public', region: 'RegionTwo', region_id: 'RegionTwo', url: 'http://neutron.two:9696' },
      ],
    },
  ];

  now = (): number => this.clock;

  addUserToken(token: string, opts: { projectId?: string; roles: string[]; expiresInMs?: number; userId?: string }): void {
    this.userTokens.set(token, {
      token: {
        methods: ['password'],
        user: { id: opts.userId ?? 'user-1', name: 'demo', domain: { id: 'default', name: 'Default' } },
        ...(opts.projectId ? { project: { id: opts.projectId, name: 'demo', domain: { id: 'default', name: 'Default' } } } : {}),
        roles: opts.roles.map((name, i) => ({ id: `role-${i}`, name })),
        expires_at: new Date(this.clock + (opts.expiresInMs ?? HOUR)).toISOString().replace('Z', '000Z'),
        issued_at: new Date(this.clock).toISOString(),
        audit_ids: ['abc'],
      },
    });
  }

  fetch: FetchLike = async (url, init) => {
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => (headers[k] = v));
    const call: Call = {
      method: init.method ?? 'GET',
      url,
      headers,
      body: typeof init.body === 'string' ? JSON.parse(init.body) : undefined,
    };
    this.calls.push(call);
    if (call.method === 'POST' && url === `${AUTH_URL}/auth/tokens`) {
      if (this.issueStatus !== 201) return json(this.issueStatus, { error: { code: this.issueStatus } });
      const token = `svc-token-${++this.issued}`;
      this.validServiceTokens.add(token);
      return json(
        201,
        {
          token: {
            expires_at: new Date(this.clock + this.serviceTokenLifetimeMs).toISOString(),
            user: { id: 'octavia-id', name: 'octavia' },
            project: { id: 'service-project', name: 'service' },
            roles: [{ id: 'r1', name: 'admin' }, { id: 'r2', name: 'service' }],
            catalog: this.catalog,
          },
        },
        { 'X-Subject-Token': token },
      );
    }
    if (call.method === 'GET' && url === `${AUTH_URL}/auth/tokens?nocatalog`) {
      const forced = this.forcedValidationStatus.shift();
      if (forced !== undefined) return json(forced, { error: { code: forced } });
      if (!this.validServiceTokens.has(headers['x-auth-token'] ?? '')) return json(401, { error: { code: 401 } });
      const body = this.userTokens.get(headers['x-subject-token'] ?? '');
      if (!body) return json(404, { error: { code: 404, message: 'Could not find token' } });
      return json(200, body);
    }
    return json(404, { error: 'unexpected call' });
  };

  client(extra: Partial<ConstructorParameters<typeof KeystoneClient>[0]> = {}): KeystoneClient {
    return new KeystoneClient({
      authUrl: AUTH_URL,
      username: 'octavia',
      password: SERVICE_PASSWORD,
      projectName: 'service',
      userDomainName: 'Default',
      projectDomainName: 'Default',
      region: 'RegionOne',
      timeoutMs: 1000,
      fetch: this.fetch,
      now: this.now,
      ...extra,
    });
  }

  get issueCalls(): Call[] {
    return this.calls.filter((c) => c.method === 'POST');
  }

  get validateCalls(): Call[] {
    return this.calls.filter((c) => c.method === 'GET');
  }
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the promise to reject');
}

describe('KeystoneClient.validateToken', () => {
  it('authenticates the service user with a project-scoped password request', async () => {
    const ks = new FakeKeystone();
    ks.addUserToken('user-tok', { projectId: 'p-demo', roles: ['member'] });
    await ks.client().validateToken('user-tok');
    expect(ks.issueCalls).toHaveLength(1);
    expect(ks.issueCalls[0].body).toEqual({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'octavia', domain: { name: 'Default' }, password: SERVICE_PASSWORD } },
        },
        scope: { project: { name: 'service', domain: { name: 'Default' } } },
      },
    });
  });

  it('validates with X-Auth-Token = service token and X-Subject-Token = user token, and maps the token body', async () => {
    const ks = new FakeKeystone();
    ks.addUserToken('user-tok', {
      projectId: 'p-demo',
      userId: 'u-demo',
      roles: ['member', 'Load-Balancer_Member', 'reader'],
      expiresInMs: 30 * 60_000,
    });
    const ctx = await ks.client().validateToken('user-tok');
    const v = ks.validateCalls[0];
    expect(v.headers['x-auth-token']).toBe('svc-token-1');
    expect(v.headers['x-subject-token']).toBe('user-tok');
    expect(ctx).toMatchObject({
      projectId: 'p-demo',
      userId: 'u-demo',
      roles: ['member', 'load-balancer_member', 'reader'],
      isAdmin: false,
      authStrategy: 'keystone',
      userName: 'demo',
      projectName: 'demo',
    });
    expect(ctx.tokenExpiresAt?.getTime()).toBe(ks.clock + 30 * 60_000);
  });

  it('marks tokens carrying the admin role as admin and keeps a null project for unscoped tokens', async () => {
    const ks = new FakeKeystone();
    ks.addUserToken('admin-tok', { projectId: 'p-admin', roles: ['admin', 'member', 'reader'] });
    ks.addUserToken('unscoped', { roles: [] });
    const c = ks.client();
    expect((await c.validateToken('admin-tok')).isAdmin).toBe(true);
    const unscoped = await c.validateToken('unscoped');
    expect(unscoped.projectId).toBeNull();
    expect(unscoped.roles).toEqual([]);
  });

  it('reuses the service token across validations', async () => {
    const ks = new FakeKeystone();
    ks.addUserToken('a', { projectId: 'p', roles: ['reader'] });
    ks.addUserToken('b', { projectId: 'p', roles: ['reader'] });
    const c = ks.client();
    await c.validateToken('a');
    await c.validateToken('b');
    await c.validateToken('a');
    expect(ks.issueCalls).toHaveLength(1);
    expect(ks.validateCalls).toHaveLength(3);
  });

  it('renews the service token shortly before it expires', async () => {
    const ks = new FakeKeystone();
    ks.addUserToken('a', { projectId: 'p', roles: ['reader'], expiresInMs: 10 * HOUR });
    const c = ks.client({ renewBeforeExpiryMs: 120_000 });
    await c.validateToken('a');
    ks.clock += HOUR - 121_000; // 121 s left: still good
    await c.validateToken('a');
    expect(ks.issueCalls).toHaveLength(1);
    ks.clock += 2_000; // 119 s left: renew
    await c.validateToken('a');
    expect(ks.issueCalls).toHaveLength(2);
    expect(ks.validateCalls.at(-1)?.headers['x-auth-token']).toBe('svc-token-2');
  });

  it('renews the service token and retries once when Keystone answers 401', async () => {
    const ks = new FakeKeystone();
    ks.addUserToken('a', { projectId: 'p', roles: ['reader'] });
    const c = ks.client();
    await c.validateToken('a');
    ks.validServiceTokens.clear(); // Keystone forgot/revoked our token
    const ctx = await c.validateToken('a');
    expect(ctx.projectId).toBe('p');
    expect(ks.issueCalls).toHaveLength(2);
    expect(ks.validateCalls.map((v) => v.headers['x-auth-token'])).toEqual(['svc-token-1', 'svc-token-1', 'svc-token-2']);
  });

  it('gives up with KeystoneUnavailableError when a fresh service token is rejected too', async () => {
    const ks = new FakeKeystone();
    ks.addUserToken('a', { projectId: 'p', roles: ['reader'] });
    ks.forcedValidationStatus = [401, 401];
    const err = await rejection(ks.client().validateToken('a'));
    expect(err).toBeInstanceOf(KeystoneUnavailableError);
    expect(ks.issueCalls).toHaveLength(2);
  });

  it('rejects an unknown token with InvalidTokenError (401) without leaking the token', async () => {
    const ks = new FakeKeystone();
    const token = 'gAAAAABunknown-token-value';
    const err = await rejection(ks.client().validateToken(token));
    expect(err).toBeInstanceOf(InvalidTokenError);
    expect((err as InvalidTokenError).httpStatus).toBe(401);
    expect(err.message).not.toContain(token);
  });

  it('rejects a token whose expires_at has passed even if Keystone returned it', async () => {
    const ks = new FakeKeystone();
    ks.addUserToken('old', { projectId: 'p', roles: ['reader'], expiresInMs: -1000 });
    expect(await rejection(ks.client().validateToken('old'))).toBeInstanceOf(InvalidTokenError);
  });

  it.each([
    ['empty', ''],
    ['a newline', 'abc\ndef'],
    ['a space', 'abc def'],
    ['non-ASCII', 'tökén'],
    ['too long', 'x'.repeat(8193)],
  ])('rejects a token with %s without calling Keystone', async (_what, token) => {
    const ks = new FakeKeystone();
    expect(await rejection(ks.client().validateToken(token))).toBeInstanceOf(InvalidTokenError);
    expect(ks.calls).toHaveLength(0);
  });

  it.each([403, 500, 502, 503])('maps HTTP %i from token validation to KeystoneUnavailableError (503)', async (status) => {
    const ks = new FakeKeystone();
    ks.forcedValidationStatus = [status];
    const err = await rejection(ks.client().validateToken('whatever'));
    expect(err).toBeInstanceOf(KeystoneUnavailableError);
    expect((err as KeystoneUnavailableError).httpStatus).toBe(503);
    expect((err as KeystoneUnavailableError).faultstring).toBe('The Keystone service is temporarily unavailable.');
  });

  it('reports rejected service credentials as KeystoneUnavailableError without the password', async () => {
    const ks = new FakeKeystone();
    ks.issueStatus = 401;
    const err = await rejection(ks.client().validateToken('user-tok'));
    expect(err).toBeInstanceOf(KeystoneUnavailableError);
    expect(err.message).toContain("'octavia'");
    expect(err.message).not.toContain(SERVICE_PASSWORD);
    expect(err.message).not.toContain('user-tok');
  });

  it('maps an unreachable Keystone (connection refused) to KeystoneUnavailableError', async () => {
    // Real fetch against a port nothing listens on (bound, then released).
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const c = new KeystoneClient({
      authUrl: `http://127.0.0.1:${port}/v3`,
      username: 'octavia',
      password: SERVICE_PASSWORD,
      projectName: 'service',
      userDomainName: 'Default',
      projectDomainName: 'Default',
      timeoutMs: 2000,
    });
    const err = await rejection(c.validateToken('user-tok'));
    expect(err).toBeInstanceOf(KeystoneUnavailableError);
    expect(err.message).toMatch(/unreachable: fetch failed \(ECONNREFUSED\)/);
    expect(err.message).not.toContain(SERVICE_PASSWORD);
  });

  it('maps a Keystone that does not answer within timeoutMs to KeystoneUnavailableError', async () => {
    const hanging: FetchLike = (_url, init) =>
      new Promise((_resolve, reject) => {
        init.signal?.addEventListener('abort', () => reject(init.signal?.reason));
      });
    const c = new FakeKeystone().client({ fetch: hanging, timeoutMs: 50 });
    const err = await rejection(c.validateToken('user-tok'));
    expect(err).toBeInstanceOf(KeystoneUnavailableError);
    expect(err.message).toMatch(/timed out/);
  });

  it('tries again after a timeout and succeeds when Keystone answers the next attempt', async () => {
    const ks = new FakeKeystone();
    let slowCalls = 0;
    const firstHangs: FetchLike = (url, init) => {
      if (init.method === 'GET' && slowCalls++ === 0) {
        return new Promise((_resolve, reject) => init.signal?.addEventListener('abort', () => reject(init.signal?.reason)));
      }
      return ks.fetch(url, init);
    };
    ks.addUserToken('user-tok', { projectId: 'p-demo', roles: ['member'] });
    const c = ks.client({ fetch: firstHangs, timeoutMs: 50 });
    const auth = await c.validateToken('user-tok');
    expect(auth.projectId).toBe('p-demo');
    expect(slowCalls).toBe(2);
  });

  it('gives up after retries + 1 attempts', async () => {
    let calls = 0;
    const hanging: FetchLike = (_url, init) => {
      calls++;
      return new Promise((_resolve, reject) => init.signal?.addEventListener('abort', () => reject(init.signal?.reason)));
    };
    const c = new FakeKeystone().client({ fetch: hanging, timeoutMs: 20, retries: 1 });
    expect(await rejection(c.validateToken('user-tok'))).toBeInstanceOf(KeystoneUnavailableError);
    expect(calls).toBe(2);
  });

  it('maps a non-JSON 200 body to KeystoneUnavailableError', async () => {
    const ks = new FakeKeystone();
    const inner = ks.fetch;
    const c = ks.client({
      fetch: async (url, init) => (init.method === 'GET' ? new Response('<html>oops</html>', { status: 200 }) : inner(url, init)),
    });
    expect(await rejection(c.validateToken('user-tok'))).toBeInstanceOf(KeystoneUnavailableError);
  });

  it('shares one service-token request among concurrent validations', async () => {
    const ks = new FakeKeystone();
    for (const t of ['a', 'b', 'c']) ks.addUserToken(t, { projectId: 'p', roles: ['reader'] });
    const c = ks.client();
    await Promise.all(['a', 'b', 'c'].map((t) => c.validateToken(t)));
    expect(ks.issueCalls).toHaveLength(1);
    expect(ks.validateCalls).toHaveLength(3);
  });

  it('retries obtaining the service token after a failed attempt', async () => {
    const ks = new FakeKeystone();
    ks.addUserToken('a', { projectId: 'p', roles: ['reader'] });
    ks.issueStatus = 500;
    const c = ks.client();
    expect(await rejection(c.validateToken('a'))).toBeInstanceOf(KeystoneUnavailableError);
    ks.issueStatus = 201;
    expect((await c.validateToken('a')).projectId).toBe('p');
  });
});

describe('KeystoneClient catalog', () => {
  it('returns the service catalog of the service token', async () => {
    const ks = new FakeKeystone();
    const catalog = await ks.client().serviceCatalog();
    expect(catalog.map((s) => s.type)).toEqual(['identity', 'network']);
    expect(catalog[1].endpoints[1]).toEqual({
      id: 'n2',
      interface: 'internal',
      region: 'RegionOne',
      regionId: 'RegionOne',
      url: 'http://neutron.internal:9696',
    });
  });

  it('finds endpoints by type, interface and region', async () => {
    const ks = new FakeKeystone();
    const c = ks.client();
    expect(await c.endpointFor('network')).toBe('http://neutron.public:9696');
    expect(await c.endpointFor('network', { interface: 'internal' })).toBe('http://neutron.internal:9696');
    expect(await c.endpointFor('network', { interface: 'public', region: 'RegionTwo' })).toBe('http://neutron.two:9696');
    expect(await c.endpointFor('identity', { interface: 'public' })).toBe('http://keystone.test:5000/v3');
    expect(ks.issueCalls).toHaveLength(1);
  });

  it('throws EndpointNotFoundError for a missing service, interface or region', async () => {
    const c = new FakeKeystone().client();
    await expect(c.endpointFor('compute')).rejects.toBeInstanceOf(EndpointNotFoundError);
    await expect(c.endpointFor('network', { interface: 'admin' })).rejects.toBeInstanceOf(EndpointNotFoundError);
    await expect(c.endpointFor('network', { interface: 'internal', region: 'RegionTwo' })).rejects.toThrow(
      "No internal endpoint for service type 'network' in region RegionTwo in the Keystone catalog.",
    );
  });

  it('exposes a service token and advertises the Keystone root for WWW-Authenticate', async () => {
    const ks = new FakeKeystone();
    const c = ks.client();
    expect(await c.serviceToken()).toBe('svc-token-1');
    c.invalidateServiceToken();
    expect(await c.serviceToken()).toBe('svc-token-2');
    expect(c.wwwAuthenticateUri).toBe('http://keystone.test:5000');
    expect(ks.client({ authUrl: 'http://k:5000/v3/' }).wwwAuthenticateUri).toBe('http://k:5000');
    expect(ks.client({ authUrl: 'https://k/identity/v3' }).wwwAuthenticateUri).toBe('https://k/identity');
  });
});

describe('parseKeystoneTime', () => {
  it.each([
    ['2030-01-02T03:04:05.123456Z', Date.UTC(2030, 0, 2, 3, 4, 5, 123)],
    ['2030-01-02T03:04:05Z', Date.UTC(2030, 0, 2, 3, 4, 5)],
    ['2030-01-02T03:04:05.5+01:00', Date.UTC(2030, 0, 2, 2, 4, 5, 500)],
    ['2030-01-02T03:04:05', Date.UTC(2030, 0, 2, 3, 4, 5)],
  ])('parses %s', (text, ms) => {
    expect(parseKeystoneTime(text)).toBe(ms);
  });

  it('returns NaN for garbage', () => {
    expect(parseKeystoneTime('yesterday')).toBeNaN();
  });
});
