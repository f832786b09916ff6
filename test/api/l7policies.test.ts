// L7 policies (contract §2.6): CRUD, defaults, action/argument normalisation, positions (insert,
// append, move, re-pack), redirect pool checks, provider 501 on non-HTTP listeners.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';
import { BASE, expectFault, fixtures, ISO_NO_TZ, MISSING_ID, tableCounts, UUID4, type Fixtures, type Obj } from '../helpers/fixtures.ts';

const POLICIES = `${BASE}/l7policies`;
const POLICY_KEYS = [
  'id', 'name', 'description', 'provisioning_status', 'operating_status', 'admin_state_up', 'project_id', 'tenant_id', 'action',
  'listener_id', 'redirect_pool_id', 'redirect_url', 'redirect_prefix', 'position', 'rules', 'created_at', 'updated_at', 'tags',
  'redirect_http_code',
].sort();

describe('L7 policies', () => {
  let api: TestApi;
  let c: Client;
  let f: Fixtures;
  let lb: Obj;
  let listener: Obj; // HTTP listener; only failing creates and self-cleaning tests use it
  let pool: Obj;

  beforeAll(async () => {
    api = await startApi({}, { keystone: true });
    c = api.client('p1:member');
    f = fixtures(api, c);
    lb = await f.lb();
    listener = await f.listener(lb.id);
    pool = await f.pool({ loadbalancer_id: lb.id });
  });
  afterAll(async () => api?.close());

  const post = (body: Obj, listenerId = listener.id) => c.post(POLICIES, { l7policy: { listener_id: listenerId, ...body } });
  const createAndRemove = async (body: Obj): Promise<Obj> => {
    const res = await post(body);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    await api.settle();
    expect((await c.delete(`${POLICIES}/${res.body.l7policy.id}`)).status).toBe(204);
    await api.settle();
    return res.body.l7policy;
  };
  const positions = async (listenerId: string) =>
    ((await c.get(`${POLICIES}?listener_id=${listenerId}&sort=position`)).body.l7policies as Obj[]).map((p) => [p.name, p.position]);

  describe('create', () => {
    it('returns 201 with every default; ONLINE once ACTIVE', async () => {
      const own = await f.listener(lb.id, { protocol_port: 81 });
      const res = await post({ action: 'REJECT' }, own.id);
      expect(res.status).toBe(201);
      expect(Object.keys(res.body)).toEqual(['l7policy']);
      expect(Object.keys(res.body.l7policy).sort()).toEqual(POLICY_KEYS);
      expect(res.body.l7policy).toEqual({
        id: expect.stringMatching(UUID4), name: '', description: '', provisioning_status: 'PENDING_CREATE', operating_status: 'OFFLINE',
        admin_state_up: true, project_id: 'p1', tenant_id: 'p1', action: 'REJECT', listener_id: own.id, redirect_pool_id: null,
        redirect_url: null, redirect_prefix: null, position: 1, rules: [], created_at: expect.stringMatching(ISO_NO_TZ), updated_at: null,
        tags: [], redirect_http_code: null,
      });
      await api.settle();
      expect(await f.get(`${POLICIES}/${res.body.l7policy.id}`, 'l7policy')).toMatchObject({ provisioning_status: 'ACTIVE', operating_status: 'ONLINE' });
      expect((await f.get(`${BASE}/listeners/${own.id}`, 'listener')).l7policies).toEqual([{ id: res.body.l7policy.id }]);
    });

    it('REDIRECT_TO_URL and REDIRECT_PREFIX default redirect_http_code to 302; an explicit code is kept', async () => {
      expect(await createAndRemove({ action: 'REDIRECT_TO_URL', redirect_url: 'https://example.com/a' }))
        .toMatchObject({ action: 'REDIRECT_TO_URL', redirect_url: 'https://example.com/a', redirect_http_code: 302, redirect_pool_id: null, redirect_prefix: null });
      expect(await createAndRemove({ action: 'REDIRECT_PREFIX', redirect_prefix: 'http://example.com' }))
        .toMatchObject({ action: 'REDIRECT_PREFIX', redirect_prefix: 'http://example.com', redirect_http_code: 302, redirect_url: null });
      expect(await createAndRemove({ action: 'REDIRECT_TO_URL', redirect_url: 'https://example.com', redirect_http_code: '308' }))
        .toMatchObject({ redirect_http_code: 308 });
    });

    it('REDIRECT_TO_POOL stores the pool and no http code', async () => {
      expect(await createAndRemove({ action: 'REDIRECT_TO_POOL', redirect_pool_id: pool.id, redirect_http_code: 301 }))
        .toMatchObject({ action: 'REDIRECT_TO_POOL', redirect_pool_id: pool.id, redirect_http_code: null, redirect_url: null, redirect_prefix: null });
    });

    it('REDIRECT_TO_POOL with a redirect_url drops the url', async () => {
      expect(await createAndRemove({ action: 'REDIRECT_TO_POOL', redirect_pool_id: pool.id, redirect_url: 'http://a.example' }))
        .toMatchObject({ action: 'REDIRECT_TO_POOL', redirect_pool_id: pool.id, redirect_url: null });
    });

    it('REJECT clears redirect_url and redirect_pool_id', async () => {
      expect(await createAndRemove({ action: 'REJECT', redirect_url: 'http://example.com', redirect_pool_id: pool.id }))
        .toMatchObject({ action: 'REJECT', redirect_url: null, redirect_pool_id: null });
    });

    it.each([
      [{ action: 'REDIRECT_TO_URL' }, 'Invalid L7 Policy arguments: redirect_url must not be None'],
      [{ action: 'REDIRECT_TO_URL', redirect_pool_id: MISSING_ID }, 'Invalid L7 Policy arguments: redirect_url must not be None'],
      [{ action: 'REDIRECT_TO_POOL' }, 'Invalid L7 Policy arguments: redirect_pool_id or redirect_pool must not be None'],
      [{ action: 'REDIRECT_PREFIX' }, 'Invalid L7 Policy arguments: redirect_prefix must not be None'],
      [{ action: 'REDIRECT_PREFIX', redirect_prefix: 'http://a.example', redirect_pool_id: MISSING_ID },
        'Invalid L7 Policy arguments: Cannot specify redirect_pool_id and redirect_url or redirect_prefix at the same time'],
    ])('400 for %j', async (body, message) => {
      expectFault(await post(body), 400, message);
    });

    it.each([
      ['action', undefined, "Invalid input for field/attribute action. Value: 'None'. Mandatory field missing."],
      ['listener_id', undefined, "Invalid input for field/attribute listener_id. Value: 'None'. Mandatory field missing."],
      ['redirect_url', 'not a url', "Invalid input for field/attribute redirect_url. Value: 'not a url'. Value must be a valid URL string"],
      ['redirect_url', 'ftp://example.com', "Invalid input for field/attribute redirect_url. Value: 'ftp://example.com'. Value must be a valid URL string"],
      ['redirect_prefix', 'example.com', "Invalid input for field/attribute redirect_prefix. Value: 'example.com'. Value must be a valid URL string"],
      ['position', 0, "Invalid input for field/attribute position. Value: '0'. Value should be greater or equal to 1"],
      ['position', 2147483648, "Invalid input for field/attribute position. Value: '2147483648'. Value should be lower or equal to 2147483647"],
      ['redirect_pool_id', 'pool', "Invalid input for field/attribute redirect_pool_id. Value: 'pool'. Value should be UUID format"],
      ['name', 'n'.repeat(256), `Invalid input for field/attribute name. Value: '${'n'.repeat(256)}'. Value should have a maximum character requirement of 255`],
      ['description', 'd'.repeat(256), `Invalid input for field/attribute description. Value: '${'d'.repeat(256)}'. Value should have a maximum character requirement of 255`],
    ])('400 for %s = %j', async (field, value, message) => {
      const body: Obj = { listener_id: listener.id, action: 'REDIRECT_TO_URL', redirect_url: 'http://example.com', [field]: value };
      if (value === undefined) delete body[field];
      expectFault(await c.post(POLICIES, { l7policy: body }), 400, message);
    });

    it('400 for unknown action and redirect_http_code values', async () => {
      const a = await post({ action: 'DROP' });
      expectFault(a, 400, /^Invalid input for field\/attribute action\. Value: 'DROP'\. Value should be one of: /);
      for (const v of ['REJECT', 'REDIRECT_TO_URL', 'REDIRECT_TO_POOL', 'REDIRECT_PREFIX']) expect(a.body.faultstring).toContain(v);
      const h = await post({ action: 'REDIRECT_TO_URL', redirect_url: 'http://example.com', redirect_http_code: 304 });
      expectFault(h, 400, /^Invalid input for field\/attribute redirect_http_code\. Value: '304'\. Value should be one of: /);
      for (const v of ['301', '302', '303', '307', '308']) expect(h.body.faultstring).toContain(v);
    });

    it('404 for an unknown listener and an unknown redirect pool', async () => {
      expectFault(await post({ action: 'REJECT' }, MISSING_ID), 404, `Listener ${MISSING_ID} not found.`);
      expectFault(await post({ action: 'REDIRECT_TO_POOL', redirect_pool_id: MISSING_ID }), 404, `Pool ${MISSING_ID} not found.`);
    });

    it('400 for a redirect pool whose protocol the listener cannot use', async () => {
      const tcpPool = await f.pool({ loadbalancer_id: lb.id }, { protocol: 'TCP' });
      expectFault(await post({ action: 'REDIRECT_TO_POOL', redirect_pool_id: tcpPool.id }), 400,
        "Validation failure: The pool protocol 'TCP' is invalid while the listener protocol is 'HTTP'.");
    });

    it('501 from the amphora provider on TCP, HTTPS and UDP listeners; 400 on PROMETHEUS', async () => {
      for (const [protocol, port] of [['TCP', 2000], ['HTTPS', 2001], ['UDP', 2002]] as const) {
        const l = await f.listener(lb.id, { protocol, protocol_port: port });
        expectFault(await post({ action: 'REJECT' }, l.id), 501,
          `Provider 'amphora' does not support a requested option: ${protocol} protocol listeners do not support L7 policies`);
      }
      const prom = await f.listener(lb.id, { protocol: 'PROMETHEUS', protocol_port: 2003 });
      expectFault(await post({ action: 'REJECT' }, prom.id), 400, 'Protocol PROMETHEUS listeners cannot have child objects.');
    });
  });

  describe('positions', () => {
    it('appends by default, inserts at a given position, appends past the end, packs 1..N', async () => {
      const l = await f.listener(lb.id, { protocol_port: 3000 });
      const a = await f.l7policy(l.id, { name: 'a' });
      const b = await f.l7policy(l.id, { name: 'b' });
      expect([a.position, b.position]).toEqual([1, 2]);
      const c0 = await f.l7policy(l.id, { name: 'c', position: 1 });
      expect(c0.position).toBe(1);
      const d = await f.l7policy(l.id, { name: 'd', position: 99 });
      expect(d.position).toBe(4);
      expect(await positions(l.id)).toEqual([['c', 1], ['a', 2], ['b', 3], ['d', 4]]);
      expect((await f.get(`${BASE}/listeners/${l.id}`, 'listener')).l7policies).toEqual([{ id: c0.id }, { id: a.id }, { id: b.id }, { id: d.id }]);
    });

    it('PUT position moves a policy; DELETE re-packs', async () => {
      const l = await f.listener(lb.id, { protocol_port: 3001 });
      const a = await f.l7policy(l.id, { name: 'a' });
      await f.l7policy(l.id, { name: 'b' });
      const cc = await f.l7policy(l.id, { name: 'c' });
      const moved = await c.put(`${POLICIES}/${cc.id}`, { l7policy: { position: 1 } });
      expect(moved.status).toBe(200);
      expect(moved.body.l7policy.position).toBe(1);
      await api.settle();
      expect(await positions(l.id)).toEqual([['c', 1], ['a', 2], ['b', 3]]);
      await c.put(`${POLICIES}/${cc.id}`, { l7policy: { position: 50 } });
      await api.settle();
      expect(await positions(l.id)).toEqual([['a', 1], ['b', 2], ['c', 3]]);
      expect((await c.delete(`${POLICIES}/${a.id}`)).status).toBe(204);
      await api.settle();
      expect(await positions(l.id)).toEqual([['b', 1], ['c', 2]]);
    });

    it('lists sort by creation unless sort=position', async () => {
      const l = await f.listener(lb.id, { protocol_port: 3002 });
      await f.l7policy(l.id, { name: 'first' });
      await f.l7policy(l.id, { name: 'second', position: 1 });
      const res = await c.get(`${POLICIES}?listener_id=${l.id}`);
      const byCreation = [...res.body.l7policies].sort((x: Obj, y: Obj) => x.created_at.localeCompare(y.created_at) || x.id.localeCompare(y.id));
      expect(res.body.l7policies.map((p: Obj) => p.id)).toEqual(byCreation.map((p: Obj) => p.id));
      expect(await positions(l.id)).toEqual([['second', 1], ['first', 2]]);
    });
  });

  describe('show, list, update, delete', () => {
    it('404 on show/update/delete for an unknown policy', async () => {
      const msg = `L7 Policy ${MISSING_ID} not found.`;
      expectFault(await c.get(`${POLICIES}/${MISSING_ID}`), 404, msg);
      expectFault(await c.put(`${POLICIES}/${MISSING_ID}`, { l7policy: { name: 'x' } }), 404, msg);
      expectFault(await c.delete(`${POLICIES}/${MISSING_ID}`), 404, msg);
    });

    it('lists under "l7policies" with "l7policies_links"; rules appear as ids', async () => {
      const l = await f.listener(lb.id, { protocol_port: 3003 });
      const p = await f.l7policy(l.id);
      const r = await f.l7rule(p.id);
      const res = await c.get(`${POLICIES}?listener_id=${l.id}`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ l7policies: [{ ...p, rules: [{ id: r.id }], provisioning_status: 'ACTIVE', updated_at: expect.stringMatching(ISO_NO_TZ) }], l7policies_links: [] });
    });

    it('PUT changes the action and normalises the redirect fields', async () => {
      const l = await f.listener(lb.id, { protocol_port: 3004 });
      const p = await f.l7policy(l.id, { action: 'REDIRECT_TO_URL', redirect_url: 'http://example.com', redirect_http_code: 301 });
      const path = `${POLICIES}/${p.id}`;
      const toPool = await c.put(path, { l7policy: { redirect_pool_id: pool.id } });
      expect(toPool.status).toBe(200);
      expect(toPool.body.l7policy).toMatchObject({ action: 'REDIRECT_TO_POOL', redirect_pool_id: pool.id, redirect_url: null, redirect_http_code: null, provisioning_status: 'PENDING_UPDATE' });
      await api.settle();
      const toPrefix = await c.put(path, { l7policy: { action: 'REDIRECT_PREFIX', redirect_prefix: 'https://example.org' } });
      expect(toPrefix.body.l7policy).toMatchObject({ action: 'REDIRECT_PREFIX', redirect_prefix: 'https://example.org', redirect_pool_id: null, redirect_http_code: 302 });
      await api.settle();
      const code = await c.put(path, { l7policy: { redirect_http_code: 307 } });
      expect(code.body.l7policy).toMatchObject({ action: 'REDIRECT_PREFIX', redirect_http_code: 307 });
      await api.settle();
      const reject = await c.put(path, { l7policy: { action: 'REJECT' } });
      expect(reject.body.l7policy).toMatchObject({ action: 'REJECT', redirect_pool_id: null, redirect_url: null, redirect_http_code: null });
      await api.settle();
      expect(await f.get(path, 'l7policy')).toMatchObject({ action: 'REJECT', provisioning_status: 'ACTIVE' });
    });

    it('PUT null: name/description "", admin_state_up false (then OFFLINE)', async () => {
      const l = await f.listener(lb.id, { protocol_port: 3005 });
      const p = await f.l7policy(l.id, { name: 'n', description: 'd' });
      const res = await c.put(`${POLICIES}/${p.id}`, { l7policy: { name: null, description: null, admin_state_up: null } });
      expect(res.body.l7policy).toMatchObject({ name: '', description: '', admin_state_up: false });
      await api.settle();
      expect((await f.get(`${POLICIES}/${p.id}`, 'l7policy')).operating_status).toBe('OFFLINE');
    });

    it('PUT validates like POST', async () => {
      const l = await f.listener(lb.id, { protocol_port: 3006 });
      const p = await f.l7policy(l.id);
      const path = `${POLICIES}/${p.id}`;
      expectFault(await c.put(path, { l7policy: { action: 'REDIRECT_TO_URL' } }), 400, 'Invalid L7 Policy arguments: redirect_url must not be None');
      expectFault(await c.put(path, { l7policy: { redirect_pool_id: MISSING_ID } }), 404, `Pool ${MISSING_ID} not found.`);
      expectFault(await c.put(path, { l7policy: { redirect_url: 'nope' } }), 400, "Invalid input for field/attribute redirect_url. Value: 'nope'. Value must be a valid URL string");
      expectFault(await c.put(path, { l7policy: { listener_id: listener.id } }), 400, /^Unknown attribute for argument \S+: listener_id$/);
      expect(await f.get(path, 'l7policy')).toMatchObject({ action: 'REJECT', provisioning_status: 'ACTIVE' });
    });

    it('DELETE 204 removes the policy and its rules', async () => {
      const l = await f.listener(lb.id, { protocol_port: 3007 });
      const p = await f.l7policy(l.id);
      const r = await f.l7rule(p.id);
      expect((await c.delete(`${POLICIES}/${p.id}`)).status).toBe(204);
      await api.settle();
      expectFault(await c.get(`${POLICIES}/${p.id}`), 404, `L7 Policy ${p.id} not found.`);
      const { db } = api.service.services;
      expect(await db.read(() => db.models.l7rule.count({ where: { id: r.id } }))).toBe(0);
      expect((await f.get(`${BASE}/listeners/${l.id}`, 'listener')).l7policies).toEqual([]);
    });
  });

  it('refused creates leave the database unchanged', async () => {
    await api.settle();
    const before = await tableCounts(api);
    await post({ action: 'REDIRECT_TO_POOL', tags: ['x'] });
    await post({ action: 'REDIRECT_TO_URL', redirect_url: 'bad', tags: ['x'] });
    expect(await tableCounts(api)).toEqual(before);
  });
});
