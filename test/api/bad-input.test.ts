// Hostile and malformed input: every refusal is a 4xx (never a 500) with a faultstring naming the
// problem, and leaves the database as it was. Also SQL-looking strings and unicode round-trips.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MYSQL, startApi, type Client, type TestApi } from '../helpers/api.ts';
import { BASE, fixtures, SUBNET_ID, tableCounts, type Fixtures, type Obj } from '../helpers/fixtures.ts';

const LBS = `${BASE}/loadbalancers`;
const JSON_HEADERS = { 'Content-Type': 'application/json' };

describe('bad input', () => {
  let api: TestApi;
  let c: Client;
  let f: Fixtures;
  let lb: Obj;
  let listener: Obj;
  let pool: Obj;
  let member: Obj;
  let policy: Obj;
  let rule: Obj;
  let hm: Obj;

  beforeAll(async () => {
    api = await startApi({}, { keystone: true });
    c = api.client('p1:member');
    f = fixtures(api, c);
    lb = await f.lb({ name: 'base' });
    listener = await f.listener(lb.id);
    pool = await f.pool({ listener_id: listener.id });
    member = await f.member(pool.id);
    hm = await f.healthmonitor(pool.id);
    policy = await f.l7policy(listener.id);
    rule = await f.l7rule(policy.id);
  });
  afterAll(async () => api?.close());

  /** Sends every case, then checks each answer and that nothing was written. */
  async function refusedAll(cases: Array<[string, () => Promise<{ status: number; body: any }>, number, RegExp | string]>) {
    await api.settle();
    const before = await tableCounts(api);
    const got: Record<string, string> = {};
    const want: Record<string, string> = {};
    for (const [label, call, status, message] of cases) {
      const res = await call();
      const text = typeof res.body === 'object' && res.body !== null ? String(res.body.faultstring) : String(res.body);
      const matches = typeof message === 'string' ? text === message : message.test(text);
      got[label] = `${res.status} ${matches ? 'ok' : text}`;
      want[label] = `${status} ok`;
      if (res.status < 500 && typeof res.body === 'object' && res.body !== null) expect(res.body.faultcode, label).toBe('Client');
    }
    expect(got).toEqual(want);
    await api.settle();
    expect(await tableCounts(api)).toEqual(before);
    expect((await f.get(`${LBS}/${lb.id}`, 'loadbalancer')).provisioning_status).toBe('ACTIVE');
  }

  const raw = (method: string, path: string, body: string) => () => c.raw(method, path, body, JSON_HEADERS);

  it('malformed JSON bodies: 400 "Request is not in valid JSON format" on every POST and PUT', async () => {
    const msg = 'Request is not in valid JSON format';
    const paths: Array<[string, string]> = [
      ['POST', LBS], ['PUT', `${LBS}/${lb.id}`], ['POST', `${BASE}/listeners`], ['PUT', `${BASE}/listeners/${listener.id}`],
      ['POST', `${BASE}/pools`], ['PUT', `${BASE}/pools/${pool.id}`], ['POST', `${BASE}/pools/${pool.id}/members`],
      ['PUT', `${BASE}/pools/${pool.id}/members`], ['PUT', `${BASE}/pools/${pool.id}/members/${member.id}`],
      ['POST', `${BASE}/healthmonitors`], ['PUT', `${BASE}/healthmonitors/${hm.id}`], ['POST', `${BASE}/l7policies`],
      ['PUT', `${BASE}/l7policies/${policy.id}`], ['POST', `${BASE}/l7policies/${policy.id}/rules`],
      ['PUT', `${BASE}/l7policies/${policy.id}/rules/${rule.id}`],
    ];
    const bodies = ['{"loadbalancer": {', "{'name': 'x'}", '{"a": 1,}', 'NaN-ish', '\u0000\u0001'];
    await refusedAll(paths.flatMap(([m, p]) => bodies.map((b, i) => [`${m} ${p} #${i}`, raw(m, p, b), 400, msg] as [string, () => Promise<any>, number, string])));
  });

  it('bodies that are not the expected wrapper object', async () => {
    await refusedAll([
      ['empty body', raw('POST', LBS, ''), 400, /loadbalancer/],
      ['null', raw('POST', LBS, 'null'), 400, /loadbalancer/],
      ['array', raw('POST', LBS, '[]'), 400, /loadbalancer/],
      ['string', raw('POST', LBS, '"loadbalancer"'), 400, /loadbalancer/],
      ['number', raw('PUT', `${LBS}/${lb.id}`, '42'), 400, /loadbalancer/],
      ['wrapper null', () => c.post(LBS, { loadbalancer: null }), 400, /loadbalancer/],
      ['wrapper string', () => c.post(LBS, { loadbalancer: 'x' }), 400, /loadbalancer/],
      ['wrapper array', () => c.put(`${LBS}/${lb.id}`, { loadbalancer: [] }), 400, /loadbalancer/],
      ['wrong wrapper', () => c.post(LBS, { listener: { vip_subnet_id: SUBNET_ID } }), 400, /^Unknown attribute for argument \S+: listener$/],
      ['extra top-level key', () => c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID }, extra: 1 }), 400, /^Unknown attribute for argument \S+: extra$/],
      ['member wrapper on rules', () => c.post(`${BASE}/l7policies/${policy.id}/rules`, { l7rule: { type: 'PATH', compare_type: 'EQUAL_TO', value: '/' } }), 400, /l7rule|rule/],
      ['batch members not a list', () => c.put(`${BASE}/pools/${pool.id}/members`, { members: { address: '192.0.2.1' } }), 400, /members/],
      ['batch member not an object', () => c.put(`${BASE}/pools/${pool.id}/members`, { members: ['192.0.2.1'] }), 400, /members/],
    ]);
  });

  it('wrong types name the field', async () => {
    const lbPost = (extra: Obj) => () => c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, ...extra } });
    const listenerPost = (extra: Obj) => () => c.post(`${BASE}/listeners`, { listener: { loadbalancer_id: lb.id, protocol: 'HTTP', protocol_port: 81, ...extra } });
    const poolPost = (extra: Obj) => () => c.post(`${BASE}/pools`, { pool: { loadbalancer_id: lb.id, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN', ...extra } });
    const field = (name: string) => new RegExp(`^Invalid input for field/attribute ${name}\\. `);
    await refusedAll([
      ['name number', lbPost({ name: 123 }), 400, field('name')],
      ['name object', lbPost({ name: { a: 1 } }), 400, field('name')],
      ['name list', lbPost({ name: ['a'] }), 400, field('name')],
      ['description bool', lbPost({ description: true }), 400, field('description')],
      ['admin_state_up list', lbPost({ admin_state_up: [] }), 400, field('admin_state_up')],
      ['admin_state_up object', lbPost({ admin_state_up: {} }), 400, field('admin_state_up')],
      ['vip_subnet_id number', lbPost({ vip_subnet_id: 5 }), 400, field('vip_subnet_id')],
      ['tags string', lbPost({ tags: 'a,b' }), 400, field('tags')],
      ['tags of numbers', lbPost({ tags: [1, 2] }), 400, field('tags')],
      ['tags with null', lbPost({ tags: ['a', null] }), 400, field('tags')],
      ['tag too long', lbPost({ tags: ['t'.repeat(256)] }), 400, field('tags')],
      ['vip_sg_ids not uuids', lbPost({ vip_sg_ids: ['x'] }), 400, field('vip_sg_ids')],
      ['additional_vips string', lbPost({ additional_vips: 'x' }), 400, field('additional_vips')],
      ['protocol_port text', listenerPost({ protocol_port: '80abc' }), 400, field('protocol_port')],
      ['protocol_port huge', listenerPost({ protocol_port: 1e30 }), 400, field('protocol_port')],
      ['protocol_port object', listenerPost({ protocol_port: { n: 80 } }), 400, field('protocol_port')],
      ['protocol_port bool', listenerPost({ protocol_port: true }), 400, field('protocol_port')],
      ['connection_limit text', listenerPost({ connection_limit: 'unlimited' }), 400, field('connection_limit')],
      ['protocol number', listenerPost({ protocol: 80 }), 400, field('protocol')],
      ['protocol lower case', listenerPost({ protocol: 'http' }), 400, field('protocol')],
      ['protocol null', listenerPost({ protocol: null }), 400, "Invalid input for field/attribute protocol. Value: 'None'. Mandatory field missing."],
      ['insert_headers list', listenerPost({ insert_headers: ['X-Forwarded-For'] }), 400, field('insert_headers')],
      ['insert_headers value number', listenerPost({ insert_headers: { 'X-Forwarded-For': 1 } }), 400, field('insert_headers')],
      ['allowed_cidrs string', listenerPost({ allowed_cidrs: '10.0.0.0/8' }), 400, field('allowed_cidrs')],
      ['sni refs string', listenerPost({ sni_container_refs: 'ref' }), 400, field('sni_container_refs')],
      ['session_persistence string', poolPost({ session_persistence: 'SOURCE_IP' }), 400, field('session_persistence')],
      ['session_persistence list', poolPost({ session_persistence: [] }), 400, field('session_persistence')],
      ['session_persistence unknown key', poolPost({ session_persistence: { type: 'SOURCE_IP', color: 1 } }), 400, /^Unknown attribute for argument \S+: color$/],
      ['persistence_timeout text', poolPost({ protocol: 'UDP', session_persistence: { type: 'SOURCE_IP', persistence_timeout: 'ten' } }), 400, field('persistence_timeout')],
      ['weight float text', () => c.post(`${BASE}/pools/${pool.id}/members`, { member: { address: '192.0.2.5', protocol_port: 80, weight: 'heavy' } }), 400, field('weight')],
      ['member address number', () => c.post(`${BASE}/pools/${pool.id}/members`, { member: { address: 3232235777, protocol_port: 80 } }), 400, field('address')],
      ['hm delay text', () => c.post(`${BASE}/healthmonitors`, { healthmonitor: { pool_id: pool.id, type: 'TCP', delay: 'often', timeout: 1, max_retries: 1 } }), 400, field('delay')],
      ['l7policy position text', () => c.post(`${BASE}/l7policies`, { l7policy: { listener_id: listener.id, action: 'REJECT', position: 'first' } }), 400, field('position')],
      ['rule invert list', () => c.post(`${BASE}/l7policies/${policy.id}/rules`, { rule: { type: 'PATH', compare_type: 'EQUAL_TO', value: '/', invert: [] } }), 400, field('invert')],
      ['put name number', () => c.put(`${BASE}/pools/${pool.id}`, { pool: { name: 7 } }), 400, field('name')],
      ['put weight huge', () => c.put(`${BASE}/pools/${pool.id}/members/${member.id}`, { member: { weight: 1e300 } }), 400, field('weight')],
    ]);
  });

  it('oversized bodies are 413 and change nothing', async () => {
    const huge = JSON.stringify({ loadbalancer: { vip_subnet_id: SUBNET_ID, description: 'x'.repeat(200_000) } });
    const hugeTags = JSON.stringify({ loadbalancer: { vip_subnet_id: SUBNET_ID, tags: Array.from({ length: 600 }, (_, i) => `${i}-${'t'.repeat(200)}`) } });
    const res = await c.raw('POST', LBS, huge, JSON_HEADERS);
    expect(res.status).toBe(413);
    await refusedAll([
      ['200 kB description', raw('POST', LBS, huge), 413, /./],
      ['600 long tags', raw('POST', LBS, hugeTags), 413, /./],
      ['just over the limit', raw('PUT', `${LBS}/${lb.id}`, JSON.stringify({ loadbalancer: { name: 'n' }, pad: 'p'.repeat(114_688) })), 413, /./],
    ]);
  });

  it('a large body under the limit is fine (300 tags of 255 characters)', async () => {
    const tags = Array.from({ length: 300 }, (_, i) => `${String(i).padStart(3, '0')}${'t'.repeat(252)}`);
    const res = await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, tags } });
    expect(res.status).toBe(201);
    expect(res.body.loadbalancer.tags).toHaveLength(300);
    await api.settle();
    expect((await f.get(`${LBS}/${res.body.loadbalancer.id}`, 'loadbalancer')).tags).toEqual([...tags].sort());
    expect((await c.delete(`${LBS}/${res.body.loadbalancer.id}`)).status).toBe(204);
    await api.settle();
  });

  it('odd ids in paths are 404, never 500', async () => {
    const ids = ['not-a-uuid', "1' OR '1'='1", '%27%3B%20DROP%20TABLE%20load_balancer%3B--', 'x'.repeat(2000), '%00', '..%2F..%2Fetc', '\u00e9t\u00e9'];
    await refusedAll(ids.flatMap((id) => [
      [`GET lb ${id.slice(0, 20)}`, () => c.get(`${LBS}/${encodeURI(id)}`), 404, /not found\.$/],
      [`PUT listener ${id.slice(0, 20)}`, () => c.put(`${BASE}/listeners/${encodeURI(id)}`, { listener: { name: 'x' } }), 404, /not found\.$/],
      [`DELETE pool ${id.slice(0, 20)}`, () => c.delete(`${BASE}/pools/${encodeURI(id)}`), 404, /not found\.$/],
      [`GET members ${id.slice(0, 20)}`, () => c.get(`${BASE}/pools/${encodeURI(id)}/members`), 404, /not found\.$/],
      [`GET member ${id.slice(0, 20)}`, () => c.get(`${BASE}/pools/${pool.id}/members/${encodeURI(id)}`), 404, /not found\.$/],
      [`GET rule ${id.slice(0, 20)}`, () => c.get(`${BASE}/l7policies/${policy.id}/rules/${encodeURI(id)}`), 404, /not found\.$/],
    ] as Array<[string, () => Promise<any>, number, RegExp]>));
  });

  it('odd query strings: huge limits, junk markers, injected sort keys and filters', async () => {
    await refusedAll([
      ['junk marker', () => c.get(`${LBS}?marker=${encodeURIComponent("' OR 1=1 --")}`), 400, /^Supplied pagination marker '.*' is not valid\.$/],
      ['sort injection', () => c.get(`${LBS}?sort=${encodeURIComponent('name; DROP TABLE load_balancer')}`), 400, /^Supplied sort key '.*' is not valid\.$/],
      ['sort dir injection', () => c.get(`${LBS}?sort=${encodeURIComponent('name:asc; DROP TABLE x')}`), 400, /^Supplied sort direction '.*' is not valid\.$/],
      ['filter on a column that is not an attribute', () => c.get(`${LBS}?${encodeURIComponent('name) OR (1')}=1`), 400, 'One or more arguments are either duplicate or invalid'],
      ['limit text', () => c.get(`${LBS}?limit=${encodeURIComponent('1; DROP TABLE x')}`), 400, /^Supplied pagination limit '.*' is not valid\.$/],
      ['bool filter junk', () => c.get(`${LBS}?admin_state_up=maybe`), 400, 'One or more arguments are either duplicate or invalid'],
    ]);
    for (const limit of ['99999999999999999999', '-99999999999999999999', '1000000']) {
      const res = await c.get(`${LBS}?limit=${limit}`);
      expect(res.status, limit).toBe(200);
      expect(res.body.loadbalancers.map((x: Obj) => x.id)).toContain(lb.id);
    }
    for (const q of [`name=${encodeURIComponent("base' OR '1'='1")}`, `name=${encodeURIComponent('%')}`, `protocol_port=${encodeURIComponent('80 OR 1=1')}`]) {
      const path = q.startsWith('protocol_port') ? `${BASE}/listeners?${q}` : `${LBS}?${q}`;
      const res = await c.get(path);
      expect(res.status, q).toBe(200);
      expect(res.body[q.startsWith('protocol_port') ? 'listeners' : 'loadbalancers'], q).toEqual([]);
    }
  });

  it('SQL-looking and unicode strings are stored and returned verbatim, and filter exactly', async () => {
    const names = ["'; DROP TABLE load_balancer; --", 'Robert"); DELETE FROM tag; --', '名前 🚀 ünïcödé', 'back\\slash % _ wild*', '🚀'.repeat(255)];
    for (const name of names) {
      const created = await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, name, description: name.slice(0, 200), tags: [name.slice(0, 100)] } });
      expect(created.status, name).toBe(201);
      expect(created.body.loadbalancer.name).toBe(name);
      await api.settle();
      const shown = await f.get(`${LBS}/${created.body.loadbalancer.id}`, 'loadbalancer');
      expect(shown.name).toBe(name);
      expect(shown.tags).toEqual([name.slice(0, 100)]);
      const byName = await c.get(`${LBS}?name=${encodeURIComponent(name)}`);
      expect(byName.body.loadbalancers.map((x: Obj) => x.id), name).toEqual([created.body.loadbalancer.id]);
      const byTag = await c.get(`${LBS}?tags=${encodeURIComponent(name.slice(0, 100))}`);
      expect(byTag.body.loadbalancers.map((x: Obj) => x.id), `tag ${name}`).toEqual([created.body.loadbalancer.id]);
      expect((await c.delete(`${LBS}/${created.body.loadbalancer.id}`)).status).toBe(204);
      await api.settle();
    }
    const tooLong = await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, name: '🚀'.repeat(256) } });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.faultstring).toMatch(/^Invalid input for field\/attribute name\. .*maximum character requirement of 255$/);
    expect((await f.get(`${LBS}/${lb.id}`, 'loadbalancer')).name).toBe('base');
  });

  it('tag filters with quotes and backslashes match exactly', async () => {
    const tags = ["it's", 'back\\slash', 'per%cent'];
    const created = await f.lb({ tags });
    for (const tag of tags) {
      for (const param of ['tags', 'tags-any']) {
        const res = await c.get(`${LBS}?${param}=${encodeURIComponent(tag)}`);
        expect(res.status).toBe(200);
        expect(res.body.loadbalancers.map((x: Obj) => x.id), `${param}=${tag}`).toEqual([created.id]);
      }
      const not = await c.get(`${LBS}?not-tags=${encodeURIComponent(tag)}`);
      expect(not.body.loadbalancers.map((x: Obj) => x.id)).not.toContain(created.id);
    }
    expect((await c.get(`${LBS}?tags=${encodeURIComponent('per_cent')}`)).body.loadbalancers).toEqual([]);
  });

  it.skipIf(!MYSQL)('MariaDB keeps 4-byte characters (utf8mb4)', async () => {
    const res = await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, name: '𝄞🚀' } });
    expect(res.status).toBe(201);
    await api.settle();
    expect((await f.get(`${LBS}/${res.body.loadbalancer.id}`, 'loadbalancer')).name).toBe('𝄞🚀');
  });
});
