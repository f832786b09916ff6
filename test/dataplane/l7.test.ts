import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { L7PolicyInput, L7RuleInput } from '../../common/amphora-config/index.ts';
import type { LocalDataPlane } from '../../amphora/dataplane/dataplane.ts';
import { config, freePort, httpListener, pool, request, Resources, startDataPlane, startHttpMember, uid } from './helpers.ts';

const r = new Resources();
let port: number;
let dp: LocalDataPlane;
let version = 1;
let nextId = 1000;

beforeAll(async () => {
  const def = await startHttpMember(r, 'default');
  const special = await startHttpMember(r, 'special');
  port = await freePort();
  dp = await startDataPlane(
    r,
    config([httpListener(1, port, 2)], [pool(2, 'HTTP', [{ id: 10, port: def.port }]), pool(3, 'HTTP', [{ id: 11, port: special.port }])]),
  );
});
afterAll(() => r.cleanup());

/** Applies the listener with these policies (default pool "default", redirect pool "special"). */
async function withPolicies(policies: L7PolicyInput[]): Promise<void> {
  const current = dp.config;
  if (current === null) throw new Error('no config');
  version++;
  await dp.apply(config([httpListener(1, port, 2, { l7policies: policies })], current.pools, version));
}

const toSpecial = (rules: Omit<L7RuleInput, 'id'>[], position = 1): L7PolicyInput => ({
  id: uid(nextId++),
  position,
  action: 'REDIRECT_TO_POOL',
  redirectPoolId: uid(3),
  rules: rules.map((rule) => ({ id: uid(nextId++), ...rule })),
});

async function routesTo(options: { path?: string; headers?: Record<string, string> }): Promise<string> {
  return (await request(port, options)).body;
}

describe('L7 rules', () => {
  const cases: { name: string; rule: Omit<L7RuleInput, 'id'>; hit: { path?: string; headers?: Record<string, string> }; miss: { path?: string; headers?: Record<string, string> } }[] = [
    { name: 'HOST_NAME EQUAL_TO (case-insensitive, port ignored)', rule: { type: 'HOST_NAME', compareType: 'EQUAL_TO', value: 'www.example.com' }, hit: { headers: { host: 'WWW.example.com:8080' } }, miss: { headers: { host: 'example.com' } } },
    { name: 'HOST_NAME ENDS_WITH', rule: { type: 'HOST_NAME', compareType: 'ENDS_WITH', value: '.example.org' }, hit: { headers: { host: 'api.example.org' } }, miss: { headers: { host: 'example.org.evil' } } },
    { name: 'PATH STARTS_WITH', rule: { type: 'PATH', compareType: 'STARTS_WITH', value: '/api/' }, hit: { path: '/api/v1?x=/api/' }, miss: { path: '/web/api/' } },
    { name: 'PATH EQUAL_TO ignores the query', rule: { type: 'PATH', compareType: 'EQUAL_TO', value: '/exact' }, hit: { path: '/exact?q=1' }, miss: { path: '/exact/' } },
    { name: 'PATH CONTAINS', rule: { type: 'PATH', compareType: 'CONTAINS', value: 'admin' }, hit: { path: '/x/admin/y' }, miss: { path: '/x/adm/y' } },
    { name: 'PATH REGEX', rule: { type: 'PATH', compareType: 'REGEX', value: '^/item/[0-9]+$' }, hit: { path: '/item/42' }, miss: { path: '/item/4x' } },
    { name: 'FILE_TYPE EQUAL_TO', rule: { type: 'FILE_TYPE', compareType: 'EQUAL_TO', value: 'jpg' }, hit: { path: '/img/cat.jpg?v=2' }, miss: { path: '/img/cat.jpg.html' } },
    { name: 'FILE_TYPE REGEX', rule: { type: 'FILE_TYPE', compareType: 'REGEX', value: '^(css|js)$' }, hit: { path: '/s/app.js' }, miss: { path: '/s/app.json' } },
    { name: 'HEADER EQUAL_TO', rule: { type: 'HEADER', key: 'X-Env', compareType: 'EQUAL_TO', value: 'canary' }, hit: { headers: { 'x-env': 'canary' } }, miss: { headers: { 'x-env': 'canary2' } } },
    { name: 'HEADER STARTS_WITH', rule: { type: 'HEADER', key: 'User-Agent', compareType: 'STARTS_WITH', value: 'curl/' }, hit: { headers: { 'user-agent': 'curl/8.0' } }, miss: { headers: { 'user-agent': 'Mozilla curl/' } } },
    { name: 'COOKIE CONTAINS', rule: { type: 'COOKIE', key: 'tier', compareType: 'CONTAINS', value: 'gold' }, hit: { headers: { cookie: 'a=1; tier=big-gold-plan' } }, miss: { headers: { cookie: 'tier=silver; gold=1' } } },
    { name: 'COOKIE ENDS_WITH', rule: { type: 'COOKIE', key: 'user', compareType: 'ENDS_WITH', value: '@corp' }, hit: { headers: { cookie: 'user=ann@corp' } }, miss: { headers: { cookie: 'user=ann@corp.evil' } } },
  ];

  for (const c of cases) {
    it(`${c.name}, and inverted`, async () => {
      await withPolicies([toSpecial([c.rule])]);
      expect(await routesTo(c.hit)).toBe('special');
      expect(await routesTo(c.miss)).toBe('default');
      await withPolicies([toSpecial([{ ...c.rule, invert: true }])]);
      expect(await routesTo(c.hit)).toBe('default');
      expect(await routesTo(c.miss)).toBe('special');
    });
  }

  it('a missing header or cookie never matches, so its inverted rule does', async () => {
    await withPolicies([toSpecial([{ type: 'HEADER', key: 'X-Absent', compareType: 'CONTAINS', value: 'x' }])]);
    expect(await routesTo({})).toBe('default');
    await withPolicies([toSpecial([{ type: 'COOKIE', key: 'absent', compareType: 'CONTAINS', value: 'x', invert: true }])]);
    expect(await routesTo({})).toBe('special');
  });

  it('ANDs the rules of a policy and skips disabled rules', async () => {
    await withPolicies([
      toSpecial([
        { type: 'PATH', compareType: 'STARTS_WITH', value: '/api' },
        { type: 'HEADER', key: 'X-Env', compareType: 'EQUAL_TO', value: 'canary' },
        { type: 'HOST_NAME', compareType: 'EQUAL_TO', value: 'never.example', enabled: false },
      ]),
    ]);
    expect(await routesTo({ path: '/api', headers: { 'x-env': 'canary' } })).toBe('special');
    expect(await routesTo({ path: '/api' })).toBe('default');
    expect(await routesTo({ path: '/web', headers: { 'x-env': 'canary' } })).toBe('default');
  });
});

describe('L7 policies', () => {
  const pathRule = (value: string): L7RuleInput => ({ id: uid(nextId++), type: 'PATH', compareType: 'STARTS_WITH', value });

  it('REJECT answers 403', async () => {
    await withPolicies([{ id: uid(nextId++), position: 1, action: 'REJECT', rules: [pathRule('/private')] }]);
    expect((await request(port, { path: '/private/x' })).status).toBe(403);
    expect((await request(port, { path: '/public' })).status).toBe(200);
  });

  it('REDIRECT_TO_URL and REDIRECT_TO_PREFIX with every redirect code', async () => {
    for (const code of [301, 302, 303, 307, 308]) {
      await withPolicies([
        { id: uid(nextId++), position: 1, action: 'REDIRECT_TO_URL', redirectUrl: 'https://example.com/moved', redirectHttpCode: code, rules: [pathRule('/old')] },
        { id: uid(nextId++), position: 2, action: 'REDIRECT_TO_PREFIX', redirectPrefix: 'https://secure.example.com', redirectHttpCode: code, rules: [pathRule('/')] },
      ]);
      const url = await request(port, { path: '/old/page?x=1' });
      expect(url.status).toBe(code);
      expect(url.headers.location).toBe('https://example.com/moved');
      const prefix = await request(port, { path: '/shop/cart?id=7' });
      expect(prefix.status).toBe(code);
      expect(prefix.headers.location).toBe('https://secure.example.com/shop/cart?id=7');
    }
  });

  it('defaults to 302 and applies policies in position order, skipping disabled ones', async () => {
    await withPolicies([
      { id: uid(nextId++), position: 3, action: 'REJECT', rules: [pathRule('/a')] },
      { id: uid(nextId++), position: 1, action: 'REDIRECT_TO_URL', redirectUrl: 'http://one.example/', rules: [pathRule('/a')], enabled: false },
      { id: uid(nextId++), position: 2, action: 'REDIRECT_TO_URL', redirectUrl: 'http://two.example/', rules: [pathRule('/a/b')] },
    ]);
    const b = await request(port, { path: '/a/b' });
    expect(b.status).toBe(302);
    expect(b.headers.location).toBe('http://two.example/');
    expect((await request(port, { path: '/a/c' })).status).toBe(403);
  });

  it('a policy without enabled rules never applies', async () => {
    await withPolicies([{ id: uid(nextId++), position: 1, action: 'REJECT', rules: [] }]);
    expect((await request(port, { path: '/' })).status).toBe(200);
  });
});
