// RBAC (contract §3): per role — admin, owning member, member of another project (403, not 404,
// on existing objects), reader, no role, service, and the load-balancer_* roles of the deprecated
// and the 'advanced' rule sets; list scoping by project.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type Client, type Response, type TestApi } from '../helpers/api.ts';
import { BASE, expectFault, MISSING_ID, statusOf, SUBNET_ID, type Obj } from '../helpers/fixtures.ts';

const LBS = `${BASE}/loadbalancers`;
const FORBIDDEN = 'Policy does not allow this request to be performed.';

interface Tree { lb: Obj; listener: Obj; pool: Obj; member: Obj; hm: Obj; policy: Obj; rule: Obj }

async function buildTree(api: TestApi, c: Client, port = 80): Promise<Tree> {
  const res = await c.post(LBS, {
    loadbalancer: {
      vip_subnet_id: SUBNET_ID,
      listeners: [{
        protocol: 'HTTP', protocol_port: port,
        default_pool: {
          name: 'p', protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN',
          members: [{ address: '192.0.2.10', protocol_port: 80 }], healthmonitor: { type: 'TCP', delay: 1, timeout: 1, max_retries: 1 },
        },
        l7policies: [{ action: 'REJECT', rules: [{ type: 'PATH', compare_type: 'EQUAL_TO', value: '/x' }] }],
      }],
    },
  });
  if (res.status !== 201) throw new Error(`tree: ${res.status} ${JSON.stringify(res.body)}`);
  await api.settle();
  const lb = res.body.loadbalancer;
  const listener = lb.listeners[0];
  const pool = lb.pools[0];
  return { lb, listener, pool, member: pool.members[0], hm: pool.healthmonitor, policy: listener.l7policies[0], rule: listener.l7policies[0].rules[0] };
}

/** Every read of the tree: [label, path]. */
const reads = (t: Tree): Array<[string, string]> => [
  ['lb', `${LBS}/${t.lb.id}`], ['lb status', `${LBS}/${t.lb.id}/status`], ['lb stats', `${LBS}/${t.lb.id}/stats`],
  ['listener', `${BASE}/listeners/${t.listener.id}`], ['listener stats', `${BASE}/listeners/${t.listener.id}/stats`],
  ['pool', `${BASE}/pools/${t.pool.id}`], ['members', `${BASE}/pools/${t.pool.id}/members`], ['member', `${BASE}/pools/${t.pool.id}/members/${t.member.id}`],
  ['hm', `${BASE}/healthmonitors/${t.hm.id}`], ['policy', `${BASE}/l7policies/${t.policy.id}`], ['rules', `${BASE}/l7policies/${t.policy.id}/rules`],
  ['rule', `${BASE}/l7policies/${t.policy.id}/rules/${t.rule.id}`],
];

/** Every write of the tree (none of them would fail validation for the owner). */
const writes = (c: Client, t: Tree): Array<[string, () => Promise<Response>]> => [
  ['lb put', () => c.put(`${LBS}/${t.lb.id}`, { loadbalancer: { name: 'x' } })],
  ['lb delete', () => c.delete(`${LBS}/${t.lb.id}?cascade=true`)],
  ['listener post', () => c.post(`${BASE}/listeners`, { listener: { loadbalancer_id: t.lb.id, protocol: 'TCP', protocol_port: 9999 } })],
  ['listener put', () => c.put(`${BASE}/listeners/${t.listener.id}`, { listener: { name: 'x' } })],
  ['listener delete', () => c.delete(`${BASE}/listeners/${t.listener.id}`)],
  ['pool post', () => c.post(`${BASE}/pools`, { pool: { loadbalancer_id: t.lb.id, protocol: 'TCP', lb_algorithm: 'ROUND_ROBIN' } })],
  ['pool post (listener_id)', () => c.post(`${BASE}/pools`, { pool: { listener_id: t.listener.id, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN' } })],
  ['pool put', () => c.put(`${BASE}/pools/${t.pool.id}`, { pool: { name: 'x' } })],
  ['pool delete', () => c.delete(`${BASE}/pools/${t.pool.id}`)],
  ['member post', () => c.post(`${BASE}/pools/${t.pool.id}/members`, { member: { address: '192.0.2.77', protocol_port: 80 } })],
  ['member put', () => c.put(`${BASE}/pools/${t.pool.id}/members/${t.member.id}`, { member: { weight: 2 } })],
  ['member delete', () => c.delete(`${BASE}/pools/${t.pool.id}/members/${t.member.id}`)],
  ['member batch', () => c.put(`${BASE}/pools/${t.pool.id}/members`, { members: [] })],
  ['member batch additive', () => c.put(`${BASE}/pools/${t.pool.id}/members?additive_only=true`, { members: [] })],
  ['hm post', () => c.post(`${BASE}/healthmonitors`, { healthmonitor: { pool_id: t.pool.id, type: 'TCP', delay: 1, timeout: 1, max_retries: 1 } })],
  ['hm put', () => c.put(`${BASE}/healthmonitors/${t.hm.id}`, { healthmonitor: { delay: 2 } })],
  ['hm delete', () => c.delete(`${BASE}/healthmonitors/${t.hm.id}`)],
  ['policy post', () => c.post(`${BASE}/l7policies`, { l7policy: { listener_id: t.listener.id, action: 'REJECT' } })],
  ['policy put', () => c.put(`${BASE}/l7policies/${t.policy.id}`, { l7policy: { name: 'x' } })],
  ['policy delete', () => c.delete(`${BASE}/l7policies/${t.policy.id}`)],
  ['rule post', () => c.post(`${BASE}/l7policies/${t.policy.id}/rules`, { rule: { type: 'PATH', compare_type: 'EQUAL_TO', value: '/y' } })],
  ['rule put', () => c.put(`${BASE}/l7policies/${t.policy.id}/rules/${t.rule.id}`, { rule: { value: '/z' } })],
  ['rule delete', () => c.delete(`${BASE}/l7policies/${t.policy.id}/rules/${t.rule.id}`)],
  ['lb failover', () => c.put(`${LBS}/${t.lb.id}/failover`)],
];

async function expectAllForbidden(api: TestApi, c: Client, t: Tree, which: 'reads' | 'writes' | 'both'): Promise<void> {
  const got: Record<string, string> = {};
  const want: Record<string, string> = {};
  if (which !== 'writes') {
    for (const [label, path] of reads(t)) {
      const res = await c.get(path);
      got[label] = `${res.status} ${res.body?.faultstring}`;
      want[label] = `403 ${FORBIDDEN}`;
    }
  }
  if (which !== 'reads') {
    for (const [label, call] of writes(c, t)) {
      const res = await call();
      got[label] = `${res.status} ${res.body?.faultstring}`;
      want[label] = `403 ${FORBIDDEN}`;
    }
  }
  expect(got).toEqual(want);
  await api.settle();
  for (const [table, id] of [['load_balancer', t.lb.id], ['listener', t.listener.id], ['pool', t.pool.id], ['member', t.member.id],
    ['health_monitor', t.hm.id], ['l7policy', t.policy.id], ['l7rule', t.rule.id]] as const) {
    expect(await statusOf(api, table, id), table).toBe('ACTIVE');
  }
}

async function expectAllReadable(c: Client, t: Tree): Promise<void> {
  const got: Record<string, number> = {};
  for (const [label, path] of reads(t)) got[label] = (await c.get(path)).status;
  expect(got).toEqual(Object.fromEntries(reads(t).map(([label]) => [label, 200])));
}

const listIds = async (c: Client, path: string, key: string) => {
  const res = await c.get(path);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return (res.body[key] as Obj[]).map((x) => x.id);
};

describe('RBAC, default policy (Keystone default roles; deprecated load-balancer_* roles honoured)', () => {
  let api: TestApi;
  let p1: Tree;
  let p2: Tree;

  beforeAll(async () => {
    api = await startApi({}, { keystone: true });
    p1 = await buildTree(api, api.client('p1:member'));
    p2 = await buildTree(api, api.client('p2:member'));
  });
  afterAll(async () => api?.close());

  it('the owning member can read everything', async () => {
    await expectAllReadable(api.client('p1:member'), p1);
  });

  it('a member of another project gets 403 (not 404) on every read and write', async () => {
    await expectAllForbidden(api, api.client('p2:member'), p1, 'both');
  });

  it('unknown ids are still 404 for everyone', async () => {
    const c = api.client('p2:member');
    expectFault(await c.get(`${LBS}/${MISSING_ID}`), 404);
    expectFault(await c.get(`${BASE}/pools/${MISSING_ID}/members`), 404);
  });

  it('a reader can read but every write is 403', async () => {
    const reader = api.client('p1:reader');
    await expectAllReadable(reader, p1);
    await expectAllForbidden(api, reader, p1, 'writes');
    expectFault(await reader.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID } }), 403, FORBIDDEN);
  });

  it('a token without roles gets 403 everywhere, lists included', async () => {
    const none = api.client('p1:');
    await expectAllForbidden(api, none, p1, 'both');
    for (const path of [LBS, `${BASE}/listeners`, `${BASE}/pools`, `${BASE}/healthmonitors`, `${BASE}/l7policies`]) {
      expectFault(await none.get(path), 403, FORBIDDEN);
    }
    expectFault(await none.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID } }), 403, FORBIDDEN);
  });

  it('the owner can write (member and deprecated load-balancer_member)', async () => {
    for (const token of ['p1:member', 'p1:load-balancer_member']) {
      const c = api.client(token);
      const res = await c.put(`${LBS}/${p1.lb.id}`, { loadbalancer: { name: token } });
      expect(res.status, token).toBe(200);
      await api.settle();
      const rule = await c.put(`${BASE}/l7policies/${p1.policy.id}/rules/${p1.rule.id}`, { rule: { value: '/w' } });
      expect(rule.status, token).toBe(200);
      await api.settle();
    }
    expectFault(await api.client('p1:member').put(`${LBS}/${p1.lb.id}/failover`), 403, FORBIDDEN);
  });

  it('lists are scoped to the caller\'s project; another ?project_id is 403', async () => {
    const c = api.client('p1:member');
    expect(await listIds(c, LBS, 'loadbalancers')).toEqual([p1.lb.id]);
    expect(await listIds(c, `${BASE}/listeners`, 'listeners')).toEqual([p1.listener.id]);
    expect(await listIds(c, `${BASE}/pools`, 'pools')).toEqual([p1.pool.id]);
    expect(await listIds(c, `${BASE}/healthmonitors`, 'healthmonitors')).toEqual([p1.hm.id]);
    expect(await listIds(c, `${BASE}/l7policies`, 'l7policies')).toEqual([p1.policy.id]);
    expect(await listIds(c, `${LBS}?project_id=p1`, 'loadbalancers')).toEqual([p1.lb.id]);
    expectFault(await c.get(`${LBS}?project_id=p2`), 403, FORBIDDEN);
    expectFault(await c.get(`${BASE}/pools?project_id=p2`), 403, FORBIDDEN);
    expect(await listIds(api.client('p1:reader'), LBS, 'loadbalancers')).toEqual([p1.lb.id]);
    expect(await listIds(api.client('p3:member'), LBS, 'loadbalancers')).toEqual([]);
  });

  it('a token without a project cannot list', async () => {
    expectFault(await api.client(':member').get(LBS), 403, FORBIDDEN);
  });

  it('an admin of any project sees and changes everything; ?project_id filters', async () => {
    const admin = api.client('adminproj:admin');
    await expectAllReadable(admin, p1);
    expect((await listIds(admin, LBS, 'loadbalancers')).sort()).toEqual([p1.lb.id, p2.lb.id].sort());
    expect(await listIds(admin, `${LBS}?project_id=p2`, 'loadbalancers')).toEqual([p2.lb.id]);
    expect((await listIds(admin, `${BASE}/l7policies`, 'l7policies')).sort()).toEqual([p1.policy.id, p2.policy.id].sort());
    expect((await admin.put(`${BASE}/pools/${p2.pool.id}/members/${p2.member.id}`, { member: { weight: 9 } })).status).toBe(200);
    await api.settle();
    expect((await admin.put(`${LBS}/${p2.lb.id}/failover`)).status).toBe(202);
    await api.settle();
    const created = await admin.post(`${BASE}/listeners`, { listener: { loadbalancer_id: p2.lb.id, protocol: 'TCP', protocol_port: 7000 } });
    expect(created.status).toBe(201);
    expect(created.body.listener.project_id).toBe('p2');
    await api.settle();
  });

  it('the deprecated load-balancer_admin and load-balancer_global_observer roles', async () => {
    const lbAdmin = api.client('x:load-balancer_admin');
    expect((await listIds(lbAdmin, LBS, 'loadbalancers')).sort()).toEqual([p1.lb.id, p2.lb.id].sort());
    expect((await lbAdmin.put(`${LBS}/${p1.lb.id}/failover`)).status).toBe(202);
    await api.settle();
    const observer = api.client('x:load-balancer_global_observer');
    expect((await listIds(observer, LBS, 'loadbalancers')).sort()).toEqual([p1.lb.id, p2.lb.id].sort());
    await expectAllReadable(observer, p1);
    await expectAllForbidden(api, observer, p1, 'writes');
  });

  it('the service role may list the members of any pool, nothing else', async () => {
    const svc = api.client('services:service');
    expect((await listIds(svc, `${BASE}/pools/${p1.pool.id}/members`, 'members'))).toEqual([p1.member.id]);
    expectFault(await svc.get(`${BASE}/pools/${p1.pool.id}/members/${p1.member.id}`), 403, FORBIDDEN);
    expectFault(await svc.get(`${BASE}/pools/${p1.pool.id}`), 403, FORBIDDEN);
  });
});

describe('RBAC, advanced rule set (load-balancer_* roles required)', () => {
  let api: TestApi;
  let p1: Tree;

  beforeAll(async () => {
    api = await startApi({ policy: { ruleSet: 'advanced' } }, { keystone: true });
    p1 = await buildTree(api, api.client('p1:load-balancer_member'));
  });
  afterAll(async () => api?.close());

  it('load-balancer_member owns its objects', async () => {
    const c = api.client('p1:load-balancer_member');
    await expectAllReadable(c, p1);
    expect((await c.put(`${BASE}/listeners/${p1.listener.id}`, { listener: { name: 'mine' } })).status).toBe(200);
    await api.settle();
    expect(await listIds(c, LBS, 'loadbalancers')).toEqual([p1.lb.id]);
  });

  it('a plain Keystone member (or reader) of the project is refused', async () => {
    await expectAllForbidden(api, api.client('p1:member'), p1, 'both');
    await expectAllForbidden(api, api.client('p1:reader'), p1, 'reads');
    expectFault(await api.client('p1:member').post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID } }), 403, FORBIDDEN);
  });

  it('load-balancer_observer reads its project only', async () => {
    const observer = api.client('p1:load-balancer_observer');
    await expectAllReadable(observer, p1);
    await expectAllForbidden(api, observer, p1, 'writes');
    await expectAllForbidden(api, api.client('p2:load-balancer_observer'), p1, 'reads');
  });

  it('load-balancer_member of another project gets 403', async () => {
    await expectAllForbidden(api, api.client('p2:load-balancer_member'), p1, 'both');
  });

  it('load-balancer_global_observer reads everything, writes nothing', async () => {
    const g = api.client('x:load-balancer_global_observer');
    await expectAllReadable(g, p1);
    expect(await listIds(g, LBS, 'loadbalancers')).toEqual([p1.lb.id]);
    await expectAllForbidden(api, g, p1, 'writes');
  });

  it('load-balancer_admin and admin may do everything, including failover', async () => {
    for (const token of ['x:load-balancer_admin', 'adminproj:admin']) {
      const c = api.client(token);
      await expectAllReadable(c, p1);
      expect((await c.put(`${LBS}/${p1.lb.id}/failover`)).status, token).toBe(202);
      await api.settle();
    }
  });
});
