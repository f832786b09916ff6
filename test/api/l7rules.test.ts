// L7 rules (contract §2.7): CRUD under /l7policies/{id}/rules ("rule"/"rules" wrapper keys),
// defaults, the per-type validation table, PUT merge + re-validation, the 50-rule limit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';
import { BASE, expectFault, fixtures, ISO_NO_TZ, MISSING_ID, tableCounts, UUID4, type Fixtures, type Obj } from '../helpers/fixtures.ts';

const RULE_KEYS = [
  'id', 'type', 'compare_type', 'key', 'value', 'invert', 'provisioning_status', 'operating_status', 'created_at', 'updated_at',
  'project_id', 'tenant_id', 'admin_state_up', 'tags',
].sort();

describe('L7 rules', () => {
  let api: TestApi;
  let c: Client;
  let f: Fixtures;
  let listener: Obj;
  let policy: Obj; // only failing creates target it
  let rules: string;

  beforeAll(async () => {
    api = await startApi({}, { keystone: true });
    c = api.client('p1:member');
    f = fixtures(api, c);
    ({ listener } = await f.lbWithListener());
    policy = await f.l7policy(listener.id);
    rules = `${BASE}/l7policies/${policy.id}/rules`;
  });
  afterAll(async () => api?.close());

  const post = (body: Obj, path = rules) => c.post(path, { rule: body });
  const freshPolicy = () => f.l7policy(listener.id);

  describe('create', () => {
    it('returns 201 under "rule" with every default; ONLINE once ACTIVE', async () => {
      const p = await freshPolicy();
      const res = await post({ type: 'PATH', compare_type: 'STARTS_WITH', value: '/api' }, `${BASE}/l7policies/${p.id}/rules`);
      expect(res.status).toBe(201);
      expect(Object.keys(res.body)).toEqual(['rule']);
      expect(Object.keys(res.body.rule).sort()).toEqual(RULE_KEYS);
      expect(res.body.rule).toEqual({
        id: expect.stringMatching(UUID4), type: 'PATH', compare_type: 'STARTS_WITH', key: null, value: '/api', invert: false,
        provisioning_status: 'PENDING_CREATE', operating_status: 'OFFLINE', created_at: expect.stringMatching(ISO_NO_TZ), updated_at: null,
        project_id: 'p1', tenant_id: 'p1', admin_state_up: true, tags: [],
      });
      await api.settle();
      expect(await f.get(`${BASE}/l7policies/${p.id}/rules/${res.body.rule.id}`, 'rule')).toMatchObject({ provisioning_status: 'ACTIVE', operating_status: 'ONLINE' });
      expect(await f.get(`${BASE}/l7policies/${p.id}`, 'l7policy')).toMatchObject({ rules: [{ id: res.body.rule.id }], provisioning_status: 'ACTIVE' });
    });

    it.each([
      { type: 'HOST_NAME', compare_type: 'EQUAL_TO', value: 'www.example.com' },
      { type: 'HOST_NAME', compare_type: 'ENDS_WITH', value: '.example.com', invert: true },
      { type: 'PATH', compare_type: 'REGEX', value: '^/api/v[0-9]+/' },
      { type: 'PATH', compare_type: 'CONTAINS', value: '"/a b"' },
      { type: 'FILE_TYPE', compare_type: 'EQUAL_TO', value: 'jpg' },
      { type: 'FILE_TYPE', compare_type: 'REGEX', value: '(jpg|png)' },
      { type: 'HEADER', compare_type: 'EQUAL_TO', key: 'X-Trace_Id', value: 'abc' },
      { type: 'HEADER', compare_type: 'CONTAINS', key: 'User-Agent', value: '"Mozilla 5.0"' },
      { type: 'COOKIE', compare_type: 'STARTS_WITH', key: 'session', value: 'a1b2' },
      { type: 'SSL_CONN_HAS_CERT', compare_type: 'EQUAL_TO', value: 'True' },
      { type: 'SSL_CONN_HAS_CERT', compare_type: 'EQUAL_TO', value: 'true' },
      { type: 'SSL_VERIFY_RESULT', compare_type: 'EQUAL_TO', value: '0' },
      { type: 'SSL_DN_FIELD', compare_type: 'REGEX', key: 'CN', value: '^web.*' },
      { type: 'SSL_DN_FIELD', compare_type: 'EQUAL_TO', key: 'OU-Unit2', value: 'ops' },
    ])('accepts %j', async (body) => {
      const res = await post(body);
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body.rule).toMatchObject({ ...body, key: body.key ?? null, invert: body.invert ?? false });
      await api.settle();
      expect((await c.delete(`${rules}/${res.body.rule.id}`)).status).toBe(204);
      await api.settle();
    });

    it.each([
      [{ type: 'PATH', compare_type: 'STARTS_WITH', value: '' }, 'Error parsing L7Rule: Invalid L7 Rule: L7 rule type requires a value'],
      [{ type: 'PATH', compare_type: 'STARTS_WITH', value: '/a b' }, 'Error parsing L7Rule: Invalid characters in comparison value'],
      [{ type: 'HOST_NAME', compare_type: 'EQUAL_TO', value: 'ex ample' }, 'Error parsing L7Rule: Invalid characters in comparison value'],
      [{ type: 'FILE_TYPE', compare_type: 'STARTS_WITH', value: 'jpg' }, 'Error parsing L7Rule: Invalid L7 Rule: invalid comparison type for rule type'],
      [{ type: 'HEADER', compare_type: 'EQUAL_TO', value: 'v' }, 'Error parsing L7Rule: Invalid L7 Rule: L7 rule type requires a key'],
      [{ type: 'HEADER', compare_type: 'EQUAL_TO', key: 'X Bad', value: 'v' }, 'Error parsing L7Rule: Invalid characters in key'],
      [{ type: 'HEADER', compare_type: 'EQUAL_TO', key: 'X-A', value: 'a b' }, 'Error parsing L7Rule: Invalid characters in header value'],
      [{ type: 'COOKIE', compare_type: 'EQUAL_TO', value: 'v' }, 'Error parsing L7Rule: Invalid L7 Rule: L7 rule type requires a key'],
      [{ type: 'COOKIE', compare_type: 'EQUAL_TO', key: 'c', value: 'a;b' }, 'Error parsing L7Rule: Invalid characters in cookie value'],
      [{ type: 'COOKIE', compare_type: 'EQUAL_TO', key: 'c', value: '"quoted"' }, 'Error parsing L7Rule: Invalid characters in cookie value'],
      [{ type: 'SSL_CONN_HAS_CERT', compare_type: 'EQUAL_TO', value: 'yes' }, 'Error parsing L7Rule: Invalid L7 Rule: L7rule value yes is not a boolean True string.'],
      [{ type: 'SSL_CONN_HAS_CERT', compare_type: 'EQUAL_TO', key: 'k', value: 'True' },
        'Error parsing L7Rule: Invalid L7 Rule: L7rule type SSL_CONN_HAS_CERT does not use the "key" field.'],
      [{ type: 'SSL_CONN_HAS_CERT', compare_type: 'STARTS_WITH', value: 'True' },
        'Error parsing L7Rule: Invalid L7 Rule: L7rule type SSL_CONN_HAS_CERT only supports the EQUAL_TO compare type.'],
      [{ type: 'SSL_VERIFY_RESULT', compare_type: 'EQUAL_TO', value: 'ok' }, 'Error parsing L7Rule: Invalid L7 Rule: L7rule type SSL_VERIFY_RESULT needs a int value, which is >= 0'],
      [{ type: 'SSL_VERIFY_RESULT', compare_type: 'EQUAL_TO', value: '-1' }, 'Error parsing L7Rule: Invalid L7 Rule: L7rule type SSL_VERIFY_RESULT needs a int value, which is >= 0'],
      [{ type: 'SSL_VERIFY_RESULT', compare_type: 'CONTAINS', value: '1' },
        'Error parsing L7Rule: Invalid L7 Rule: L7rule type SSL_VERIFY_RESULT only supports the EQUAL_TO compare type.'],
      [{ type: 'SSL_VERIFY_RESULT', compare_type: 'EQUAL_TO', key: 'k', value: '1' },
        'Error parsing L7Rule: Invalid L7 Rule: L7rule type SSL_VERIFY_RESULT does not use the "key" field.'],
      [{ type: 'SSL_DN_FIELD', compare_type: 'EQUAL_TO', value: 'v' }, 'Error parsing L7Rule: Invalid L7 Rule: L7rule type SSL_DN_FIELD needs to specify a key and a value.'],
      [{ type: 'SSL_DN_FIELD', compare_type: 'EQUAL_TO', key: '1CN', value: 'v' }, 'Error parsing L7Rule: Invalid L7 Rule: Invalid L7rule distinguished name field.'],
      [{ type: 'PATH', compare_type: 'REGEX', value: '([a-z' }, /^Error parsing L7Rule: Unable to parse regular expression: /],
      [{ type: 'HEADER', compare_type: 'REGEX', key: 'X-A', value: '*' }, /^Error parsing L7Rule: Unable to parse regular expression: /],
    ])('400 for %j', async (body, message) => {
      expectFault(await post(body), 400, message);
    });

    it.each([
      ['type', "Invalid input for field/attribute type. Value: 'None'. Mandatory field missing."],
      ['compare_type', "Invalid input for field/attribute compare_type. Value: 'None'. Mandatory field missing."],
      ['value', "Invalid input for field/attribute value. Value: 'None'. Mandatory field missing."],
    ])('400 without the mandatory %s', async (field, message) => {
      const body: Obj = { type: 'PATH', compare_type: 'EQUAL_TO', value: '/x' };
      delete body[field];
      expectFault(await post(body), 400, message);
    });

    it.each([
      ['value', 'v'.repeat(256), `Invalid input for field/attribute value. Value: '${'v'.repeat(256)}'. Value should have a maximum character requirement of 255`],
      ['key', 'k'.repeat(256), `Invalid input for field/attribute key. Value: '${'k'.repeat(256)}'. Value should have a maximum character requirement of 255`],
      ['value', 'a\nb', "Invalid input for field/attribute value. Value: 'a\nb'. Value should match the pattern ^[^\\r\\n]*$"],
      ['key', 'a\rb', "Invalid input for field/attribute key. Value: 'a\rb'. Value should match the pattern ^[^\\r\\n]*$"],
      ['invert', 'sometimes', "Invalid input for field/attribute invert. Value: 'sometimes'. Value not an unambiguous boolean: sometimes"],
    ])('400 for %s = %j', async (field, value, message) => {
      expectFault(await post({ type: 'HEADER', compare_type: 'EQUAL_TO', key: 'X-A', value: 'v', [field]: value }), 400, message);
    });

    it('400 for unknown type and compare_type values; no name or description attributes', async () => {
      const t = await post({ type: 'QUERY', compare_type: 'EQUAL_TO', value: 'v' });
      expectFault(t, 400, /^Invalid input for field\/attribute type\. Value: 'QUERY'\. Value should be one of: /);
      for (const v of ['HOST_NAME', 'PATH', 'FILE_TYPE', 'HEADER', 'COOKIE', 'SSL_CONN_HAS_CERT', 'SSL_VERIFY_RESULT', 'SSL_DN_FIELD']) expect(t.body.faultstring).toContain(v);
      const ct = await post({ type: 'PATH', compare_type: 'LIKE', value: 'v' });
      expectFault(ct, 400, /^Invalid input for field\/attribute compare_type\. Value: 'LIKE'\. Value should be one of: /);
      for (const v of ['REGEX', 'STARTS_WITH', 'ENDS_WITH', 'CONTAINS', 'EQUAL_TO']) expect(ct.body.faultstring).toContain(v);
      expectFault(await post({ type: 'PATH', compare_type: 'EQUAL_TO', value: '/', name: 'r' }), 400, /^Unknown attribute for argument \S+: name$/);
      expectFault(await c.post(rules, { l7rule: { type: 'PATH', compare_type: 'EQUAL_TO', value: '/' } }), 400);
    });

    it('404 for an unknown policy, naming it "L7Policy"', async () => {
      const path = `${BASE}/l7policies/${MISSING_ID}/rules`;
      expectFault(await post({ type: 'PATH', compare_type: 'EQUAL_TO', value: '/' }, path), 404, `L7Policy ${MISSING_ID} not found.`);
      expectFault(await c.get(path), 404, `L7Policy ${MISSING_ID} not found.`);
      expectFault(await c.get(`${path}/${MISSING_ID}`), 404, `L7Policy ${MISSING_ID} not found.`);
    });

    it('at most 50 rules per policy (409 for the 51st)', async () => {
      const p = await freshPolicy();
      const { db } = api.service.services;
      const now = new Date();
      now.setMilliseconds(0);
      await db.tx((t) => db.models.l7rule.bulkCreate(Array.from({ length: 49 }, (_, i) => ({
        id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, project_id: 'p1', l7policy_id: p.id, provisioning_status: 'ACTIVE',
        operating_status: 'ONLINE', admin_state_up: true, type: 'PATH', compare_type: 'EQUAL_TO', key: null, value: `/r${i}`, invert: false,
        created_at: now, updated_at: now,
      })), { transaction: t }));
      const path = `${BASE}/l7policies/${p.id}/rules`;
      const fiftieth = await post({ type: 'PATH', compare_type: 'EQUAL_TO', value: '/r49' }, path);
      expect(fiftieth.status).toBe(201);
      await api.settle();
      expectFault(await post({ type: 'PATH', compare_type: 'EQUAL_TO', value: '/r50' }, path), 409, `Too many rules on L7 policy ${p.id}`);
      expect((await c.get(`${path}?limit=100`)).body.rules).toHaveLength(50);
      expect((await f.get(`${BASE}/l7policies/${p.id}`, 'l7policy')).provisioning_status).toBe('ACTIVE');
    });
  });

  describe('show, list, update, delete', () => {
    it('404 for an unknown rule and for a rule of another policy', async () => {
      const other = await freshPolicy();
      const r = await f.l7rule(other.id);
      for (const id of [MISSING_ID, r.id]) {
        expectFault(await c.get(`${rules}/${id}`), 404, `L7 Rule ${id} not found.`);
        expectFault(await c.put(`${rules}/${id}`, { rule: { value: '/x' } }), 404, `L7 Rule ${id} not found.`);
        expectFault(await c.delete(`${rules}/${id}`), 404, `L7 Rule ${id} not found.`);
      }
    });

    it('lists under "rules" with "rules_links"', async () => {
      const p = await freshPolicy();
      const a = await f.l7rule(p.id, { value: '/a' });
      const res = await c.get(`${BASE}/l7policies/${p.id}/rules`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ rules: [a], rules_links: [] });
    });

    it('PUT merges with the stored rule and re-validates', async () => {
      const p = await freshPolicy();
      const r = await f.l7rule(p.id, { type: 'HEADER', compare_type: 'EQUAL_TO', key: 'X-A', value: 'one' });
      const path = `${BASE}/l7policies/${p.id}/rules/${r.id}`;
      const res = await c.put(path, { rule: { value: 'two', invert: true } });
      expect(res.status).toBe(200);
      expect(Object.keys(res.body)).toEqual(['rule']);
      expect(res.body.rule).toMatchObject({ type: 'HEADER', key: 'X-A', value: 'two', invert: true, provisioning_status: 'PENDING_UPDATE' });
      await api.settle();
      expectFault(await c.put(path, { rule: { type: 'SSL_CONN_HAS_CERT' } }), 400,
        'Error parsing L7Rule: Invalid L7 Rule: L7rule type SSL_CONN_HAS_CERT does not use the "key" field.');
      expectFault(await c.put(path, { rule: { value: 'a b' } }), 400, 'Error parsing L7Rule: Invalid characters in header value');
      expect(await f.get(path, 'rule')).toMatchObject({ value: 'two', provisioning_status: 'ACTIVE' });
      expect((await f.get(`${BASE}/l7policies/${p.id}`, 'l7policy')).provisioning_status).toBe('ACTIVE');
    });

    it('PUT invert null resets to false; admin_state_up false gives OFFLINE', async () => {
      const p = await freshPolicy();
      const r = await f.l7rule(p.id, { invert: true });
      const path = `${BASE}/l7policies/${p.id}/rules/${r.id}`;
      expect((await c.put(path, { rule: { invert: null, admin_state_up: false } })).body.rule).toMatchObject({ invert: false, admin_state_up: false });
      await api.settle();
      expect((await f.get(path, 'rule')).operating_status).toBe('OFFLINE');
    });

    it('PUT to a type that uses no key clears the key', async () => {
      const p = await freshPolicy();
      const r = await f.l7rule(p.id, { type: 'COOKIE', compare_type: 'EQUAL_TO', key: 'session', value: 'v' });
      const path = `${BASE}/l7policies/${p.id}/rules/${r.id}`;
      const res = await c.put(path, { rule: { type: 'PATH', value: '/v' } });
      expect(res.status).toBe(200);
      expect(res.body.rule).toMatchObject({ type: 'PATH', key: null, value: '/v' });
      await api.settle();
      expect((await c.put(path, { rule: { key: 'ignored' } })).body.rule.key).toBeNull();
      await api.settle();
    });

    it('DELETE 204, then 404; the policy no longer lists it', async () => {
      const p = await freshPolicy();
      const r = await f.l7rule(p.id);
      expect((await c.delete(`${BASE}/l7policies/${p.id}/rules/${r.id}`)).status).toBe(204);
      await api.settle();
      expectFault(await c.get(`${BASE}/l7policies/${p.id}/rules/${r.id}`), 404, `L7 Rule ${r.id} not found.`);
      expect((await f.get(`${BASE}/l7policies/${p.id}`, 'l7policy')).rules).toEqual([]);
    });
  });

  it('refused creates leave the database unchanged', async () => {
    await api.settle();
    const before = await tableCounts(api);
    await post({ type: 'HEADER', compare_type: 'EQUAL_TO', value: 'v', tags: ['x'] });
    await post({ type: 'PATH', compare_type: 'REGEX', value: '(', tags: ['x'] });
    expect(await tableCounts(api)).toEqual(before);
  });
});
