// Against a real Keystone (shared/peers/keystone-up.sh: users admin/secret and demo/secret, service
// user octavia/secret in project "service"). Runs whenever ARGONAUT_KEYSTONE_URL is set, e.g.
//   ARGONAUT_KEYSTONE_URL=http://127.0.0.1:5000/v3 npx vitest run test/integration/keystone.test.ts
// and then fails loudly if Keystone is down. Without the variable the suite is skipped.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authMiddleware } from '../../api/auth/auth-middleware.ts';
import { InvalidTokenError, KeystoneClient, KeystoneUnavailableError } from '../../api/auth/keystone-client.ts';
import { PolicyEnforcer, policyAction } from '../../api/auth/policy.ts';
import { TokenCache } from '../../api/auth/token-cache.ts';
import { issueToken as issueTokenAt, peerServiceOptions, type IssuedToken } from '../helpers/keystone.ts';

const KEYSTONE_URL = process.env.ARGONAUT_KEYSTONE_URL;
const env = (name: string, fallback: string) => process.env[name] ?? fallback;

// Keystone answers in 0.3-2 s per call on the shared 2-core box; leave ample room.
const SLOW = { timeout: 120_000 };

describe.skipIf(!KEYSTONE_URL)(`Keystone integration (ARGONAUT_KEYSTONE_URL=${KEYSTONE_URL ?? 'unset'})`, SLOW, () => {
  const authUrl = (KEYSTONE_URL ?? '').replace(/\/+$/, '');
  const serviceOptions = () => peerServiceOptions(authUrl);
  const issueToken = (user: string, password: string, project: string) => issueTokenAt(authUrl, user, password, project);

  let client: KeystoneClient;
  let demo: IssuedToken;
  let admin: IssuedToken;

  beforeAll(async () => {
    client = new KeystoneClient(serviceOptions());
    demo = await issueToken('demo', env('ARGONAUT_KEYSTONE_DEMO_PASSWORD', 'secret'), 'demo');
    admin = await issueToken('admin', env('ARGONAUT_KEYSTONE_ADMIN_PASSWORD', 'secret'), 'admin');
  }, SLOW.timeout);

  it('obtains a service token with a catalog', async () => {
    const catalog = await client.serviceCatalog();
    expect(catalog.some((s) => s.type === 'identity')).toBe(true);
    const identity = await client.endpointFor('identity', { interface: 'public' });
    expect(identity).toMatch(/^https?:\/\/.+\/v3$/);
    expect(client.wwwAuthenticateUri).toBe(authUrl.replace(/\/v3$/, ''));
  });

  it('validates the demo user token: project, user and roles (incl. implied reader)', async () => {
    const ctx = await client.validateToken(demo.token);
    expect(ctx.authStrategy).toBe('keystone');
    expect(ctx.projectId).toBe(demo.projectId);
    expect(ctx.projectName).toBe('demo');
    expect(ctx.userId).toBe(demo.userId);
    expect(ctx.roles).toEqual(expect.arrayContaining(['member', 'load-balancer_member', 'reader']));
    expect(ctx.roles).not.toContain('admin');
    expect(ctx.isAdmin).toBe(false);
    expect(ctx.tokenExpiresAt?.getTime()).toBe(Date.parse(demo.expiresAt.replace(/(\.\d{3})\d*Z$/, '$1Z')));
    expect(ctx.tokenExpiresAt!.getTime()).toBeGreaterThan(Date.now());
  });

  it('validates the admin token: admin project and admin ⊃ member ⊃ reader', async () => {
    const ctx = await client.validateToken(admin.token);
    expect(ctx.projectId).toBe(admin.projectId);
    expect(ctx.projectId).not.toBe(demo.projectId);
    expect(ctx.userId).toBe(admin.userId);
    expect(ctx.roles).toEqual(expect.arrayContaining(['admin', 'member', 'reader']));
    expect(ctx.isAdmin).toBe(true);
  });

  it('rejects invalid tokens with InvalidTokenError', async () => {
    await expect(client.validateToken('not-a-real-token')).rejects.toBeInstanceOf(InvalidTokenError);
    // Same shape as a fernet token, but forged.
    const forged = `gAAAAAB${'x'.repeat(180)}`;
    await expect(client.validateToken(forged)).rejects.toBeInstanceOf(InvalidTokenError);
  });

  it('rejects a token once it has been revoked', async () => {
    const t = await issueToken('demo', env('ARGONAUT_KEYSTONE_DEMO_PASSWORD', 'secret'), 'demo');
    expect((await client.validateToken(t.token)).projectId).toBe(t.projectId);
    const revoke = await fetch(`${authUrl}/auth/tokens`, {
      method: 'DELETE',
      headers: { 'X-Auth-Token': t.token, 'X-Subject-Token': t.token },
    });
    expect(revoke.status).toBe(204);
    await expect(client.validateToken(t.token)).rejects.toBeInstanceOf(InvalidTokenError);
  });

  it('reports wrong service credentials as KeystoneUnavailableError without the password', async () => {
    const wrongPassword = 'definitely-wrong-password-123';
    const bad = new KeystoneClient({ ...serviceOptions(), password: wrongPassword });
    const err = await bad.validateToken(demo.token).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(KeystoneUnavailableError);
    expect(err!.message).not.toContain(wrongPassword);
    expect(err!.message).not.toContain(demo.token);
  });

  it('applies the default policy to real identities', async () => {
    const enforcer = new PolicyEnforcer({ enforceNewDefaults: false });
    const demoCtx = await client.validateToken(demo.token);
    const adminCtx = await client.validateToken(admin.token);
    const post = policyAction('loadbalancer', 'post');
    expect(enforcer.check(post, demoCtx, { projectId: demo.projectId })).toBe(true);
    expect(enforcer.check(post, demoCtx, { projectId: admin.projectId })).toBe(false);
    expect(enforcer.check(policyAction('amphora', 'get_all'), demoCtx, { projectId: demo.projectId })).toBe(false);
    expect(enforcer.check(policyAction('amphora', 'get_all'), adminCtx, { projectId: admin.projectId })).toBe(true);
    expect(enforcer.scopeForList('loadbalancer', adminCtx, undefined)).toBeNull();
    expect(enforcer.scopeForList('loadbalancer', demoCtx, undefined)).toBe(demo.projectId);
  });

  describe('through the middleware', () => {
    let server: Server;
    let base: string;

    beforeAll(async () => {
      const app = new Koa();
      app.use(authMiddleware({ strategy: 'keystone', keystone: new KeystoneClient(serviceOptions()), cache: new TokenCache() }));
      app.use(async (ctx) => {
        ctx.body = { auth: ctx.state.auth };
      });
      server = app.listen(0, '127.0.0.1');
      await new Promise<void>((r) => server.once('listening', () => r()));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    }, SLOW.timeout);

    afterAll(async () => {
      await new Promise<void>((r) => server.close(() => r()));
    });

    it('accepts a valid token and exposes the identity', async () => {
      const res = await fetch(`${base}/v2.0/lbaas/loadbalancers`, { headers: { 'X-Auth-Token': demo.token } });
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body.auth.projectId).toBe(demo.projectId);
      expect(body.auth.roles).toEqual(expect.arrayContaining(['member', 'load-balancer_member']));
    });

    it('answers 401 like keystonemiddleware without or with a bad token', async () => {
      const variants: Array<Record<string, string>> = [{}, { 'X-Auth-Token': 'garbage' }];
      for (const headers of variants) {
        const res = await fetch(`${base}/v2.0/lbaas/loadbalancers`, { headers });
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe(`Keystone uri="${authUrl.replace(/\/v3$/, '')}"`);
        expect(await res.json()).toEqual({
          error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' },
        });
      }
    });
  });
});
