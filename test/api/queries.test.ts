// Collection queries and routing (contract §1.1, §1.2, §1.5, §1.6): pagination with limit / marker
// / page_reverse and the page links, sorting, filters, tag filters, field selection, the URL
// aliases, the .json suffix, the version document and the request id header.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';
import { BASE, expectFault, fixtures, MISSING_ID, type Fixtures, type Obj } from '../helpers/fixtures.ts';

const LBS = `${BASE}/loadbalancers`;
const MAX = 4; // paginationMaxLimit of this server

describe('queries and routing', () => {
  let api: TestApi;
  let c: Client;
  let f: Fixtures;
  const lbs: Record<string, Obj> = {};
  let pool: Obj;

  beforeAll(async () => {
    api = await startApi({ api: { paginationMaxLimit: MAX } }, { keystone: true });
    c = api.client('pg:member');
    f = fixtures(api, c);
    const specs: Array<[string, string[], boolean]> = [
      ['lb-a', ['t1', 't2'], true], ['lb-b', ['t1'], true], ['lb-c', ['t2', 't3'], false], ['lb-d', [], true], ['lb-e', ['t3'], true],
    ];
    for (const [name, tags, up] of specs) lbs[name] = await f.lb({ name, tags, admin_state_up: up, description: `about ${name}` });
    const listener = await f.listener(lbs['lb-a']!.id, { protocol_port: 80 });
    await f.listener(lbs['lb-a']!.id, { protocol: 'TCP', protocol_port: 22 });
    pool = await f.pool({ listener_id: listener.id });
    for (const last of [1, 2, 3]) await f.member(pool.id, { address: `192.0.2.${last}`, protocol_port: 80 });
  });
  afterAll(async () => api?.close());

  const names = (res: { body: any }) => (res.body.loadbalancers as Obj[]).map((x) => x.name);
  const follow = async (href: string) => c.get(href.slice(api.url.length));
  const link = (res: { body: any }, rel: string, key = 'loadbalancers_links') => (res.body[key] as Array<{ rel: string; href: string }>).find((l) => l.rel === rel);

  describe('pagination', () => {
    it('the default page size is pagination_max_limit, with a next link', async () => {
      const res = await c.get(`${LBS}?sort=name`);
      expect(names(res)).toEqual(['lb-a', 'lb-b', 'lb-c', 'lb-d']);
      const next = link(res, 'next');
      expect(next).toBeDefined();
      expect(link(res, 'previous')).toBeUndefined();
      expect(next!.href.startsWith(`${api.url}${LBS}?`)).toBe(true);
      expect(new URL(next!.href).searchParams.get('limit')).toBe(String(MAX));
      expect(new URL(next!.href).searchParams.get('marker')).toBe(lbs['lb-d']!.id);
      const rest = await follow(next!.href);
      expect(names(rest)).toEqual(['lb-e']);
    });

    it('limit larger than the maximum is clamped; limit < 1 and "infinite" mean no limit (no links)', async () => {
      expect(names(await c.get(`${LBS}?sort=name&limit=100`))).toHaveLength(MAX);
      for (const limit of ['0', '-1', 'infinite']) {
        const res = await c.get(`${LBS}?sort=name&limit=${limit}`);
        expect(names(res)).toEqual(['lb-a', 'lb-b', 'lb-c', 'lb-d', 'lb-e']);
        expect(res.body.loadbalancers_links).toEqual([]);
      }
    });

    it('walks every page with next links and back with previous links', async () => {
      const p1 = await c.get(`${LBS}?sort=name&limit=2`);
      expect(names(p1)).toEqual(['lb-a', 'lb-b']);
      expect(p1.body.loadbalancers_links.map((l: Obj) => l.rel)).toEqual(['next']);
      const p2 = await follow(link(p1, 'next')!.href);
      expect(names(p2)).toEqual(['lb-c', 'lb-d']);
      expect(p2.body.loadbalancers_links.map((l: Obj) => l.rel).sort()).toEqual(['next', 'previous']);
      const prev = new URL(link(p2, 'previous')!.href).searchParams;
      expect(prev.get('marker')).toBe(lbs['lb-c']!.id);
      expect(prev.get('page_reverse')).toBe('True');
      const p3 = await follow(link(p2, 'next')!.href);
      expect(names(p3)).toEqual(['lb-e']);
      expect(p3.body.loadbalancers_links.map((l: Obj) => l.rel)).toEqual(['previous']);
      expect(names(await follow(link(p2, 'previous')!.href))).toEqual(['lb-a', 'lb-b']);
    });

    it('a full last page gets a next link that leads to an empty page without links', async () => {
      const p1 = await c.get(`${LBS}?sort=name&limit=5`);
      expect(names(p1)).toHaveLength(MAX);
      const p = await c.get(`${LBS}?sort=name&limit=1&marker=${lbs['lb-d']!.id}`);
      expect(names(p)).toEqual(['lb-e']);
      const empty = await follow(link(p, 'next')!.href);
      expect(empty.body).toEqual({ loadbalancers: [], loadbalancers_links: [] });
    });

    it('page_reverse=True returns the first items before the marker, in ascending order (reference quirk)', async () => {
      const res = await c.get(`${LBS}?sort=name&limit=2&marker=${lbs['lb-e']!.id}&page_reverse=True`);
      expect(names(res)).toEqual(['lb-a', 'lb-b']);
      const all = await c.get(`${LBS}?sort=name&marker=${lbs['lb-c']!.id}&page_reverse=True`);
      expect(names(all)).toEqual(['lb-a', 'lb-b']);
    });

    it('walking the default order visits every object exactly once', async () => {
      const seen: string[] = [];
      let res = await c.get(`${LBS}?limit=2`);
      for (let i = 0; i < 5; i++) {
        seen.push(...(res.body.loadbalancers as Obj[]).map((x) => x.id));
        const next = link(res, 'next');
        if (!next) break;
        res = await follow(next.href);
      }
      expect(seen.sort()).toEqual(Object.values(lbs).map((x) => x.id).sort());
    });

    it('filters are kept in the page links', async () => {
      const p1 = await c.get(`${LBS}?sort=name&limit=1&tags=t1`);
      expect(names(p1)).toEqual(['lb-a']);
      const p2 = await follow(link(p1, 'next')!.href);
      expect(names(p2)).toEqual(['lb-b']);
    });

    it('400 for an unknown marker and a non-numeric limit', async () => {
      expectFault(await c.get(`${LBS}?marker=${MISSING_ID}`), 400, `Supplied pagination marker '${MISSING_ID}' is not valid.`);
      expectFault(await c.get(`${LBS}?limit=ten`), 400, "Supplied pagination limit 'ten' is not valid.");
      expectFault(await c.get(`${LBS}?limit=1.5`), 400, "Supplied pagination limit '1.5' is not valid.");
    });

    it('sub-collections page too (members_links, rules_links)', async () => {
      const res = await c.get(`${BASE}/pools/${pool.id}/members?limit=2&sort=address`);
      expect(res.body.members.map((m: Obj) => m.address)).toEqual(['192.0.2.1', '192.0.2.2']);
      const next = link(res, 'next', 'members_links')!;
      expect(next.href.startsWith(`${api.url}${BASE}/pools/${pool.id}/members?`)).toBe(true);
      const p2 = await follow(next.href);
      expect(p2.body.members.map((m: Obj) => m.address)).toEqual(['192.0.2.3']);
    });
  });

  describe('sorting', () => {
    it.each([
      ['sort=name:desc', ['lb-e', 'lb-d', 'lb-c', 'lb-b']],
      ['sort=name:DESC', ['lb-e', 'lb-d', 'lb-c', 'lb-b']],
      ['sort=name:asc', ['lb-a', 'lb-b', 'lb-c', 'lb-d']],
      ['sort_key=name&sort_dir=desc', ['lb-e', 'lb-d', 'lb-c', 'lb-b']],
      ['sort_key=name', ['lb-a', 'lb-b', 'lb-c', 'lb-d']],
      ['sort=admin_state_up,name:desc', ['lb-c', 'lb-e', 'lb-d', 'lb-b']],
      ['sort_key=admin_state_up,name&sort_dir=desc,asc', ['lb-a', 'lb-b', 'lb-d', 'lb-e']],
    ])('%s', async (query, expected) => {
      expect(names(await c.get(`${LBS}?${query}`))).toEqual(expected);
    });

    it('400 for an unknown sort key or direction', async () => {
      expectFault(await c.get(`${LBS}?sort=bogus`), 400, "Supplied sort key 'bogus' is not valid.");
      expectFault(await c.get(`${LBS}?sort_key=bogus`), 400, "Supplied sort key 'bogus' is not valid.");
      expectFault(await c.get(`${LBS}?sort=name:up`), 400, "Supplied sort direction 'up' is not valid.");
      expectFault(await c.get(`${LBS}?sort_key=name&sort_dir=sideways`), 400, "Supplied sort direction 'sideways' is not valid.");
    });

    it('listeners sort by protocol_port', async () => {
      const res = await c.get(`${BASE}/listeners?loadbalancer_id=${lbs['lb-a']!.id}&sort=protocol_port:desc`);
      expect(res.body.listeners.map((l: Obj) => l.protocol_port)).toEqual([80, 22]);
    });
  });

  describe('filters', () => {
    it.each([
      ['name=lb-b', ['lb-b']],
      ['description=about%20lb-c', ['lb-c']],
      ['admin_state_up=false', ['lb-c']],
      ['admin_state_up=False', ['lb-c']],
      ['admin_state_up=0', ['lb-c']],
      ['admin_state_up=true&name=lb-c', []],
      ['provisioning_status=ACTIVE', ['lb-a', 'lb-b', 'lb-c', 'lb-d', 'lb-e']],
      ['operating_status=ONLINE', []],
      ['vip_address=198.51.100.1', ['lb-a', 'lb-b', 'lb-c', 'lb-d', 'lb-e']],
      ['provider=amphora&name=lb-e', ['lb-e']],
      ['name=nothing', []],
    ])('%s', async (query, expected) => {
      expect(names(await c.get(`${LBS}?${query}&sort=name&limit=0`))).toEqual(expected);
    });

    it('id= (python-octaviaclient name/id resolution)', async () => {
      expect(names(await c.get(`${LBS}?id=${lbs['lb-d']!.id}`))).toEqual(['lb-d']);
    });

    it('child collections filter on their attributes', async () => {
      const byPort = await c.get(`${BASE}/listeners?protocol_port=22`);
      expect(byPort.body.listeners.map((l: Obj) => l.protocol)).toEqual(['TCP']);
      const byLb = await c.get(`${BASE}/pools?loadbalancer_id=${lbs['lb-a']!.id}`);
      expect(byLb.body.pools.map((p: Obj) => p.id)).toEqual([pool.id]);
      const byAddress = await c.get(`${BASE}/pools/${pool.id}/members?address=192.0.2.2`);
      expect(byAddress.body.members.map((m: Obj) => m.address)).toEqual(['192.0.2.2']);
    });

    it('400 for a key that is not an attribute (listener_id on pools, tenant_id, anything)', async () => {
      const msg = 'One or more arguments are either duplicate or invalid';
      expectFault(await c.get(`${LBS}?color=red`), 400, msg);
      expectFault(await c.get(`${LBS}?tenant_id=pg`), 400, msg);
      expectFault(await c.get(`${BASE}/pools?listener_id=${MISSING_ID}`), 400, msg);
      expectFault(await c.get(`${BASE}/pools/${pool.id}/members?pool_id=${pool.id}`), 400, msg);
    });
  });

  describe('tag filters', () => {
    it.each([
      ['tags=t1', ['lb-a', 'lb-b']],
      ['tags=t1,t2', ['lb-a']],
      ['tags=t1&tags=t2', ['lb-a']],
      ['tags=t9', []],
      ['tags-any=t1,t3', ['lb-a', 'lb-b', 'lb-c', 'lb-e']],
      ['tags-any=t2&tags-any=t9', ['lb-a', 'lb-c']],
      ['not-tags=t1,t2', ['lb-b', 'lb-c', 'lb-d', 'lb-e']],
      ['not-tags=t3', ['lb-a', 'lb-b', 'lb-d']],
      ['not-tags-any=t1,t3', ['lb-d']],
      ['tags=t2&not-tags=t3', ['lb-a']],
    ])('%s', async (query, expected) => {
      expect(names(await c.get(`${LBS}?${query}&sort=name&limit=0`))).toEqual(expected);
    });
  });

  describe('fields', () => {
    it('repeated fields keep only those attributes, on lists and single GETs', async () => {
      const list = await c.get(`${LBS}?fields=id&fields=name&sort=name&limit=2`);
      expect(list.body.loadbalancers).toEqual([{ id: lbs['lb-a']!.id, name: 'lb-a' }, { id: lbs['lb-b']!.id, name: 'lb-b' }]);
      const one = await c.get(`${LBS}/${lbs['lb-c']!.id}?fields=name&fields=admin_state_up`);
      expect(one.body).toEqual({ loadbalancer: { name: 'lb-c', admin_state_up: false } });
      const indexed = await c.get(`${LBS}?fields[0]=id&fields[1]=name&sort=name&limit=1`);
      expect(indexed.body.loadbalancers).toEqual([{ id: lbs['lb-a']!.id, name: 'lb-a' }]);
      const sub = await c.get(`${BASE}/pools/${pool.id}/members?fields=address&sort=address&limit=1`);
      expect(sub.body.members).toEqual([{ address: '192.0.2.1' }]);
    });

    it('unknown names are ignored and commas are not split', async () => {
      expect((await c.get(`${LBS}/${lbs['lb-a']!.id}?fields=name&fields=bogus`)).body).toEqual({ loadbalancer: { name: 'lb-a' } });
      expect((await c.get(`${LBS}/${lbs['lb-a']!.id}?fields=id,name`)).body).toEqual({ loadbalancer: {} });
    });
  });

  describe('routing', () => {
    it.each(['/v2/lbaas', '/v2.0/lbaas', '/v2', '/v2.0'])('%s/loadbalancers is the same collection', async (prefix) => {
      const res = await c.get(`${prefix}/loadbalancers?sort=name&limit=0`);
      expect(res.status).toBe(200);
      expect(names(res)).toEqual(['lb-a', 'lb-b', 'lb-c', 'lb-d', 'lb-e']);
      const one = await c.get(`${prefix}/loadbalancers/${lbs['lb-a']!.id}`);
      expect(one.body.loadbalancer.name).toBe('lb-a');
      const members = await c.get(`${prefix}/pools/${pool.id}/members`);
      expect(members.body.members).toHaveLength(3);
    });

    it('a .json suffix is stripped', async () => {
      expect(names(await c.get(`${LBS}.json?sort=name&limit=0`))).toEqual(['lb-a', 'lb-b', 'lb-c', 'lb-d', 'lb-e']);
      expect((await c.get(`${LBS}/${lbs['lb-b']!.id}.json`)).body.loadbalancer.name).toBe('lb-b');
    });

    it('GET /v2 and /v2.0 answer the JSON string "v2" (authenticated)', async () => {
      for (const p of ['/v2', '/v2.0']) {
        const res = await c.get(p);
        expect(res.status).toBe(200);
        expect(res.body).toBe('v2');
        expect(res.headers.get('content-type')).toMatch(/^application\/json/);
        expect((await api.client().get(p)).status).toBe(401);
      }
    });

    it('404 with a fault body for unknown paths', async () => {
      const res = await c.get(`${BASE}/widgets`);
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ faultcode: 'Client' });
    });

    it('406 in the "errors" format when Accept excludes JSON; an empty Accept is fine', async () => {
      const res = await c.raw('GET', LBS, undefined, { Accept: 'text/html' });
      expect(res.status).toBe(406);
      expect(res.body.errors[0]).toMatchObject({ status: 406, title: 'Not Acceptable', request_id: expect.stringMatching(/^req-/) });
      expect((await c.raw('GET', LBS, undefined, { Accept: '' })).status).toBe(200);
      expect((await c.raw('GET', LBS, undefined, { Accept: 'application/json' })).status).toBe(200);
    });
  });

  describe('version document', () => {
    it('GET / lists v2.0..v2.30 without authentication, the last one CURRENT', async () => {
      const res = await api.client().get('/');
      expect(res.status).toBe(200);
      expect(Object.keys(res.body)).toEqual(['versions']);
      const versions = res.body.versions as Obj[];
      expect(versions.map((v) => v.id)).toEqual(Array.from({ length: 31 }, (_, i) => `v2.${i}`));
      expect(versions.slice(0, -1).every((v) => v.status === 'SUPPORTED')).toBe(true);
      expect(versions.at(-1)).toEqual({ id: 'v2.30', status: 'CURRENT', updated: '2025-02-26T00:00:00Z', links: [{ href: `${api.url}/v2`, rel: 'self' }] });
      expect(versions[0]).toEqual({ id: 'v2.0', status: 'SUPPORTED', updated: '2016-12-11T00:00:00Z', links: [{ href: `${api.url}/v2`, rel: 'self' }] });
      expect(versions.find((v) => v.id === 'v2.7')!.updated).toBe('2018-01-25T12:00:00Z');
      for (const v of versions) expect(Object.keys(v).sort()).toEqual(['id', 'links', 'status', 'updated']);
    });

    it('GET /load-balancer/ points at /load-balancer/v2', async () => {
      const res = await api.client().get('/load-balancer/');
      expect(res.status).toBe(200);
      expect(res.body.versions[0].links).toEqual([{ href: `${api.url}/load-balancer/v2`, rel: 'self' }]);
    });
  });

  describe('request id', () => {
    it('every response carries x-openstack-request-id: req-<uuid>, a new one each time', async () => {
      const responses = [
        await c.get(LBS), await c.get(`${LBS}/${MISSING_ID}`), await api.client().get(LBS), await api.client().get('/'),
        await c.post(LBS, { loadbalancer: {} }), await c.delete(`${LBS}/${MISSING_ID}`),
      ];
      const ids = responses.map((r) => r.headers.get('x-openstack-request-id'));
      for (const id of ids) expect(id).toMatch(/^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(new Set(ids).size).toBe(ids.length);
      expect(responses.map((r) => r.status)).toEqual([200, 404, 401, 200, 400, 404]);
    });

    it('every response, errors included, says how long the server spent on it (Server-Timing app;dur=<ms>)', async () => {
      const responses = [await c.get(LBS), await c.get(`${LBS}/${MISSING_ID}`), await api.client().get(LBS), await c.post(LBS, { loadbalancer: {} })];
      for (const r of responses) {
        const match = /^app;dur=(\d+\.\d{2})$/.exec(r.headers.get('server-timing') ?? '');
        expect(match, `${r.status}: ${r.headers.get('server-timing')}`).not.toBeNull();
        expect(Number(match![1])).toBeGreaterThan(0);
      }
    });
  });
});
