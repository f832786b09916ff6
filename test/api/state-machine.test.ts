// The provisioning state machine (contract §1.9): statuses the API sets synchronously, 409s while
// anything is PENDING_*, immutable parents (pool for members/monitors, L7 policy for rules), ERROR
// handling, cascade delete, and deleted load balancers staying hidden.
// PENDING_* states are observed deterministically: holdSubmissions keeps the provider from receiving
// the submitted operations until release(); the exhaustive 409 matrices put the statuses in place
// directly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';
import { BASE, expectFault, SUBNET_ID, statusOf, type Obj } from '../helpers/fixtures.ts';
import { holdSubmissions } from '../helpers/hold.ts';

const LBS = `${BASE}/loadbalancers`;

describe('state machine', () => {
  let api: TestApi;
  let c: Client;
  let admin: Client;

  beforeAll(async () => {
    api = await startApi({}, { keystone: true });
    c = api.client('p1:member');
    admin = api.client('adminproj:admin');
  });
  afterAll(async () => api?.close());

  /** One ACTIVE tree: listener (HTTP:80) -> default pool with member and monitor; an L7 policy with a rule. */
  async function tree(): Promise<{ lb: Obj; listener: Obj; pool: Obj; member: Obj; hm: Obj; policy: Obj; rule: Obj }> {
    const res = await c.post(LBS, {
      loadbalancer: {
        vip_subnet_id: SUBNET_ID,
        listeners: [{
          protocol: 'HTTP', protocol_port: 80,
          default_pool: {
            name: 'p', protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN', tags: ['pool-tag'],
            members: [{ address: '192.0.2.10', protocol_port: 80, tags: ['member-tag'] }],
            healthmonitor: { type: 'TCP', delay: 1, timeout: 1, max_retries: 1 },
          },
          l7policies: [{ action: 'REJECT', rules: [{ type: 'PATH', compare_type: 'EQUAL_TO', value: '/x' }] }],
        }],
      },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    await api.settle();
    const lb = res.body.loadbalancer;
    const listener = lb.listeners[0];
    const pool = lb.pools[0];
    return { lb, listener, pool, member: pool.members[0], hm: pool.healthmonitor, policy: listener.l7policies[0], rule: listener.l7policies[0].rules[0] };
  }

  const setStatus = async (table: 'load_balancer' | 'listener' | 'pool' | 'l7policy', id: string, status: string) => {
    const { db } = api.service.services;
    await db.tx((t) => db.models[table].update({ provisioning_status: status }, { where: { id }, transaction: t }));
  };

  it('create answers PENDING_CREATE and the load balancer cannot be changed until ACTIVE', async () => {
    let h = holdSubmissions(api);
    const res = await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID } });
    const id = res.body.loadbalancer.id;
    expectFault(await c.put(`${LBS}/${id}`, { loadbalancer: { name: 'x' } }), 409, `Invalid state PENDING_CREATE of loadbalancer resource ${id}`);
    expectFault(await c.post(`${BASE}/listeners`, { listener: { loadbalancer_id: id, protocol: 'TCP', protocol_port: 1 } }), 409,
      `Load Balancer ${id} is immutable and cannot be updated.`);
    expect(await statusOf(api, 'load_balancer', id)).toBe('PENDING_CREATE');
    await h.release();
    expect(await statusOf(api, 'load_balancer', id)).toBe('ACTIVE');
    h = holdSubmissions(api);
    expect((await c.put(`${LBS}/${id}`, { loadbalancer: { name: 'x' } })).status).toBe(200);
    expectFault(await c.put(`${LBS}/${id}`, { loadbalancer: { name: 'y' } }), 409, `Invalid state PENDING_UPDATE of loadbalancer resource ${id}`);
    await h.release();
    h = holdSubmissions(api);
    expect((await c.delete(`${LBS}/${id}`)).status).toBe(204);
    expectFault(await c.delete(`${LBS}/${id}`), 409, `Invalid state PENDING_DELETE of loadbalancer resource ${id}`);
    expect(await statusOf(api, 'load_balancer', id)).toBe('PENDING_DELETE');
    await h.release();
    expect(await statusOf(api, 'load_balancer', id)).toBe('DELETED');
  });

  it.each(['PENDING_CREATE', 'PENDING_UPDATE', 'PENDING_DELETE'])('load balancer operations answer 409 in %s', async (status) => {
    const res = await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID } });
    const id = res.body.loadbalancer.id;
    await api.settle();
    await setStatus('load_balancer', id, status);
    const msg = `Invalid state ${status} of loadbalancer resource ${id}`;
    expectFault(await c.put(`${LBS}/${id}`, { loadbalancer: { name: 'x' } }), 409, msg);
    expectFault(await c.delete(`${LBS}/${id}`), 409, msg);
    expectFault(await c.delete(`${LBS}/${id}?cascade=true`), 409, msg);
    expectFault(await admin.put(`${LBS}/${id}/failover`), 409, msg);
    expectFault(await c.post(`${BASE}/listeners`, { listener: { loadbalancer_id: id, protocol: 'TCP', protocol_port: 1 } }), 409,
      `Load Balancer ${id} is immutable and cannot be updated.`);
    expectFault(await c.post(`${BASE}/pools`, { pool: { loadbalancer_id: id, protocol: 'TCP', lb_algorithm: 'ROUND_ROBIN' } }), 409,
      `Load Balancer ${id} is immutable and cannot be updated.`);
    expect(await statusOf(api, 'load_balancer', id)).toBe(status);
    await setStatus('load_balancer', id, 'ACTIVE');
  });

  it('validation (400) and ownership (403) come before the status lock (409)', async () => {
    const h = holdSubmissions(api);
    const res = await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID } });
    const id = res.body.loadbalancer.id;
    expectFault(await c.put(`${LBS}/${id}`, { loadbalancer: { name: 5 } }), 400);
    expectFault(await api.client('p2:member').put(`${LBS}/${id}`, { loadbalancer: { name: 'x' } }), 403);
    expectFault(await c.put(`${LBS}/${MISSING}`, { loadbalancer: { name: 'x' } }), 404);
    expectFault(await c.put(`${LBS}/${id}`, { loadbalancer: { name: 'x' } }), 409);
    await h.release();
  });

  it('each child operation marks its parents PENDING_UPDATE, and ACTIVE again when done', async () => {
    const t = await tree();
    const expectStatuses = async (want: Record<string, string>) => {
      const got: Record<string, string | undefined> = {
        lb: await statusOf(api, 'load_balancer', t.lb.id), listener: await statusOf(api, 'listener', t.listener.id),
        pool: await statusOf(api, 'pool', t.pool.id), member: await statusOf(api, 'member', t.member.id),
        hm: await statusOf(api, 'health_monitor', t.hm.id), policy: await statusOf(api, 'l7policy', t.policy.id),
        rule: await statusOf(api, 'l7rule', t.rule.id),
      };
      expect(got).toEqual({ lb: 'ACTIVE', listener: 'ACTIVE', pool: 'ACTIVE', member: 'ACTIVE', hm: 'ACTIVE', policy: 'ACTIVE', rule: 'ACTIVE', ...want });
    };
    const step = async (call: () => Promise<{ status: number }>, status: number, want: Record<string, string>) => {
      const h = holdSubmissions(api);
      expect((await call()).status).toBe(status);
      await expectStatuses(want);
      await h.release();
      await expectStatuses({});
    };
    await step(() => c.put(`${BASE}/listeners/${t.listener.id}`, { listener: { name: 'l' } }), 200, { lb: 'PENDING_UPDATE', listener: 'PENDING_UPDATE' });
    await step(() => c.put(`${BASE}/pools/${t.pool.id}`, { pool: { name: 'p2' } }), 200, { lb: 'PENDING_UPDATE', listener: 'PENDING_UPDATE', pool: 'PENDING_UPDATE' });
    await step(() => c.put(`${BASE}/pools/${t.pool.id}/members/${t.member.id}`, { member: { weight: 3 } }), 200,
      { lb: 'PENDING_UPDATE', listener: 'PENDING_UPDATE', pool: 'PENDING_UPDATE', member: 'PENDING_UPDATE' });
    await step(() => c.put(`${BASE}/healthmonitors/${t.hm.id}`, { healthmonitor: { delay: 2 } }), 200,
      { lb: 'PENDING_UPDATE', listener: 'PENDING_UPDATE', pool: 'PENDING_UPDATE', hm: 'PENDING_UPDATE' });
    await step(() => c.put(`${BASE}/l7policies/${t.policy.id}`, { l7policy: { name: 'x' } }), 200, { lb: 'PENDING_UPDATE', listener: 'PENDING_UPDATE', policy: 'PENDING_UPDATE' });
    await step(() => c.put(`${BASE}/l7policies/${t.policy.id}/rules/${t.rule.id}`, { rule: { value: '/y' } }), 200,
      { lb: 'PENDING_UPDATE', listener: 'PENDING_UPDATE', policy: 'PENDING_UPDATE', rule: 'PENDING_UPDATE' });
    await step(() => c.put(`${LBS}/${t.lb.id}`, { loadbalancer: { name: 'n' } }), 200, { lb: 'PENDING_UPDATE' });
    let h = holdSubmissions(api);
    const created = await c.post(`${BASE}/pools/${t.pool.id}/members`, { member: { address: '192.0.2.11', protocol_port: 80 } });
    expect(created.status).toBe(201);
    expect(await statusOf(api, 'member', created.body.member.id)).toBe('PENDING_CREATE');
    await expectStatuses({ lb: 'PENDING_UPDATE', listener: 'PENDING_UPDATE', pool: 'PENDING_UPDATE' });
    await h.release();
    await expectStatuses({});
    h = holdSubmissions(api);
    expect((await c.delete(`${BASE}/pools/${t.pool.id}/members/${created.body.member.id}`)).status).toBe(204);
    expect(await statusOf(api, 'member', created.body.member.id)).toBe('PENDING_DELETE');
    await expectStatuses({ lb: 'PENDING_UPDATE', listener: 'PENDING_UPDATE', pool: 'PENDING_UPDATE' });
    await h.release();
    expect(await statusOf(api, 'member', created.body.member.id)).toBeUndefined();
    await expectStatuses({});
  });

  it('member batch update: matched members go PENDING_UPDATE even when unchanged; an empty request on an empty pool is a no-op', async () => {
    const t = await tree();
    let h = holdSubmissions(api);
    expect((await c.put(`${BASE}/pools/${t.pool.id}/members`, { members: [{ address: '192.0.2.10', protocol_port: 80 }] })).status).toBe(202);
    expect(await statusOf(api, 'member', t.member.id)).toBe('PENDING_UPDATE');
    expect(await statusOf(api, 'pool', t.pool.id)).toBe('PENDING_UPDATE');
    expect(await statusOf(api, 'load_balancer', t.lb.id)).toBe('PENDING_UPDATE');
    await h.release();
    expect(await statusOf(api, 'member', t.member.id)).toBe('ACTIVE');
    const empty = await c.post(`${BASE}/pools`, { pool: { loadbalancer_id: t.lb.id, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN' } });
    await api.settle();
    h = holdSubmissions(api);
    expect((await c.put(`${BASE}/pools/${empty.body.pool.id}/members`, { members: [] })).status).toBe(202);
    expect(await statusOf(api, 'pool', empty.body.pool.id)).toBe('ACTIVE');
    expect(await statusOf(api, 'load_balancer', t.lb.id)).toBe('ACTIVE');
    await h.release();
  });

  it('409 for every child operation while the load balancer is PENDING_UPDATE', async () => {
    const t = await tree();
    await setStatus('load_balancer', t.lb.id, 'PENDING_UPDATE');
    const msg = `Load Balancer ${t.lb.id} is immutable and cannot be updated.`;
    expectFault(await c.post(`${BASE}/listeners`, { listener: { loadbalancer_id: t.lb.id, protocol: 'TCP', protocol_port: 81 } }), 409, msg);
    expectFault(await c.put(`${BASE}/listeners/${t.listener.id}`, { listener: { name: 'x' } }), 409, msg);
    expectFault(await c.delete(`${BASE}/listeners/${t.listener.id}`), 409, msg);
    expectFault(await c.post(`${BASE}/pools`, { pool: { loadbalancer_id: t.lb.id, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN' } }), 409, msg);
    expectFault(await c.put(`${BASE}/pools/${t.pool.id}`, { pool: { name: 'x' } }), 409, msg);
    expectFault(await c.delete(`${BASE}/pools/${t.pool.id}`), 409, msg);
    expectFault(await c.post(`${BASE}/pools/${t.pool.id}/members`, { member: { address: '192.0.2.99', protocol_port: 80 } }), 409, msg);
    expectFault(await c.put(`${BASE}/pools/${t.pool.id}/members/${t.member.id}`, { member: { weight: 2 } }), 409, msg);
    expectFault(await c.delete(`${BASE}/pools/${t.pool.id}/members/${t.member.id}`), 409, msg);
    expectFault(await c.put(`${BASE}/pools/${t.pool.id}/members`, { members: [] }), 409, msg);
    expectFault(await c.put(`${BASE}/healthmonitors/${t.hm.id}`, { healthmonitor: { delay: 3 } }), 409, msg);
    expectFault(await c.delete(`${BASE}/healthmonitors/${t.hm.id}`), 409, msg);
    expectFault(await c.post(`${BASE}/l7policies`, { l7policy: { listener_id: t.listener.id, action: 'REJECT' } }), 409, msg);
    expectFault(await c.put(`${BASE}/l7policies/${t.policy.id}`, { l7policy: { name: 'x' } }), 409, msg);
    expectFault(await c.delete(`${BASE}/l7policies/${t.policy.id}`), 409, msg);
    expectFault(await c.post(`${BASE}/l7policies/${t.policy.id}/rules`, { rule: { type: 'PATH', compare_type: 'EQUAL_TO', value: '/z' } }), 409, msg);
    expectFault(await c.put(`${BASE}/l7policies/${t.policy.id}/rules/${t.rule.id}`, { rule: { value: '/z' } }), 409, msg);
    expectFault(await c.delete(`${BASE}/l7policies/${t.policy.id}/rules/${t.rule.id}`), 409, msg);
    expectFault(await c.delete(`${LBS}/${t.lb.id}?cascade=true`), 409, `Invalid state PENDING_UPDATE of loadbalancer resource ${t.lb.id}`);
    for (const [table, id] of [['listener', t.listener.id], ['pool', t.pool.id], ['member', t.member.id], ['health_monitor', t.hm.id], ['l7policy', t.policy.id], ['l7rule', t.rule.id]] as const) {
      expect(await statusOf(api, table, id), table).toBe('ACTIVE');
    }
    expect(await statusOf(api, 'load_balancer', t.lb.id)).toBe('PENDING_UPDATE');
    await setStatus('load_balancer', t.lb.id, 'ACTIVE');
  });

  it('members and monitors report the pool as immutable first; rules report the L7 policy', async () => {
    const t = await tree();
    // What a pool PUT leaves behind: the pool and its load balancer (and listeners) PENDING_UPDATE.
    await setStatus('load_balancer', t.lb.id, 'PENDING_UPDATE');
    await setStatus('pool', t.pool.id, 'PENDING_UPDATE');
    const pool = `Pool ${t.pool.id} is immutable and cannot be updated.`;
    expectFault(await c.post(`${BASE}/pools/${t.pool.id}/members`, { member: { address: '192.0.2.99', protocol_port: 80 } }), 409, pool);
    expectFault(await c.put(`${BASE}/pools/${t.pool.id}/members/${t.member.id}`, { member: { weight: 2 } }), 409, pool);
    expectFault(await c.delete(`${BASE}/pools/${t.pool.id}/members/${t.member.id}`), 409, pool);
    expectFault(await c.put(`${BASE}/pools/${t.pool.id}/members`, { members: [] }), 409, pool);
    expectFault(await c.put(`${BASE}/healthmonitors/${t.hm.id}`, { healthmonitor: { delay: 3 } }), 409, pool);
    await setStatus('pool', t.pool.id, 'ACTIVE');
    await setStatus('l7policy', t.policy.id, 'PENDING_UPDATE');
    const policy = `L7Policy ${t.policy.id} is immutable and cannot be updated.`;
    expectFault(await c.post(`${BASE}/l7policies/${t.policy.id}/rules`, { rule: { type: 'PATH', compare_type: 'EQUAL_TO', value: '/z' } }), 409, policy);
    expectFault(await c.put(`${BASE}/l7policies/${t.policy.id}/rules/${t.rule.id}`, { rule: { value: '/z' } }), 409, policy);
    expectFault(await c.delete(`${BASE}/l7policies/${t.policy.id}/rules/${t.rule.id}`), 409, policy);
    await setStatus('l7policy', t.policy.id, 'ACTIVE');
    await setStatus('load_balancer', t.lb.id, 'ACTIVE');
  });

  it('a pool or L7 policy in ERROR blocks its children but can itself be updated', async () => {
    const t = await tree();
    await setStatus('pool', t.pool.id, 'ERROR');
    expectFault(await c.post(`${BASE}/pools/${t.pool.id}/members`, { member: { address: '192.0.2.99', protocol_port: 80 } }), 409,
      `Pool ${t.pool.id} is immutable and cannot be updated.`);
    expectFault(await c.delete(`${BASE}/healthmonitors/${t.hm.id}`), 409, `Pool ${t.pool.id} is immutable and cannot be updated.`);
    expect((await c.put(`${BASE}/pools/${t.pool.id}`, { pool: { name: 'recovered' } })).status).toBe(200);
    await api.settle();
    expect(await statusOf(api, 'pool', t.pool.id)).toBe('ACTIVE');
    await setStatus('l7policy', t.policy.id, 'ERROR');
    expectFault(await c.post(`${BASE}/l7policies/${t.policy.id}/rules`, { rule: { type: 'PATH', compare_type: 'EQUAL_TO', value: '/z' } }), 409,
      `L7Policy ${t.policy.id} is immutable and cannot be updated.`);
    expect((await c.put(`${BASE}/l7policies/${t.policy.id}`, { l7policy: { name: 'recovered' } })).status).toBe(200);
    await api.settle();
    expect(await statusOf(api, 'l7policy', t.policy.id)).toBe('ACTIVE');
  });

  it('a listener in ERROR can be updated, given a default pool and deleted while the load balancer is ACTIVE', async () => {
    const res = await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, listeners: [{ protocol: 'HTTP', protocol_port: 80 }, { protocol: 'HTTP', protocol_port: 81 }] } });
    await api.settle();
    const [a, b] = res.body.loadbalancer.listeners;
    await setStatus('listener', a.id, 'ERROR');
    await setStatus('listener', b.id, 'ERROR');
    expect((await c.put(`${BASE}/listeners/${a.id}`, { listener: { name: 'fixed' } })).status).toBe(200);
    await api.settle();
    expect(await statusOf(api, 'listener', a.id)).toBe('ACTIVE');
    const pool = await c.post(`${BASE}/pools`, { pool: { listener_id: b.id, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN' } });
    expect(pool.status, JSON.stringify(pool.body)).toBe(201);
    await api.settle();
    expect((await c.delete(`${BASE}/listeners/${b.id}`)).status).toBe(204);
    await api.settle();
    expect((await c.get(`${BASE}/listeners/${b.id}`)).status).toBe(404);
  });

  it('a load balancer in ERROR blocks updates and children, but allows delete and failover', async () => {
    const t = await tree();
    await setStatus('load_balancer', t.lb.id, 'ERROR');
    expectFault(await c.put(`${LBS}/${t.lb.id}`, { loadbalancer: { name: 'x' } }), 409, `Invalid state ERROR of loadbalancer resource ${t.lb.id}`);
    expectFault(await c.put(`${BASE}/listeners/${t.listener.id}`, { listener: { name: 'x' } }), 409, `Load Balancer ${t.lb.id} is immutable and cannot be updated.`);
    expectFault(await c.delete(`${BASE}/pools/${t.pool.id}/members/${t.member.id}`), 409, `Load Balancer ${t.lb.id} is immutable and cannot be updated.`);
    const h = holdSubmissions(api);
    expect((await admin.put(`${LBS}/${t.lb.id}/failover`)).status).toBe(202);
    expect(await statusOf(api, 'load_balancer', t.lb.id)).toBe('PENDING_UPDATE');
    await h.release();
    expect(await statusOf(api, 'load_balancer', t.lb.id)).toBe('ACTIVE');
    await setStatus('load_balancer', t.lb.id, 'ERROR');
    expect((await c.delete(`${LBS}/${t.lb.id}?cascade=true`)).status).toBe(204);
    await api.settle();
    expect((await c.get(`${LBS}/${t.lb.id}`)).status).toBe(404);
  });

  it('cascade delete removes every child and keeps the load balancer row as DELETED, hidden from the API', async () => {
    const t = await tree();
    const { db } = api.service.services;
    const h = holdSubmissions(api);
    expect((await c.delete(`${LBS}/${t.lb.id}?cascade=true`)).status).toBe(204);
    expect(await statusOf(api, 'load_balancer', t.lb.id)).toBe('PENDING_DELETE');
    expect((await c.get(`${LBS}/${t.lb.id}`)).body.loadbalancer.provisioning_status).toBe('PENDING_DELETE');
    expect((await c.get(`${BASE}/listeners/${t.listener.id}`)).body.listener.provisioning_status).toBe('ACTIVE');
    await h.release();
    expect(await statusOf(api, 'load_balancer', t.lb.id)).toBe('DELETED');
    for (const [table, id] of [['listener', t.listener.id], ['pool', t.pool.id], ['member', t.member.id], ['health_monitor', t.hm.id], ['l7policy', t.policy.id], ['l7rule', t.rule.id]] as const) {
      expect(await statusOf(api, table, id), table).toBeUndefined();
    }
    const tags = await db.read(() => db.models.tag.count({ where: { resource_id: [t.lb.id, t.pool.id, t.member.id] } }));
    expect(tags).toBe(0);
    expectFault(await c.get(`${LBS}/${t.lb.id}`), 404, `Load Balancer ${t.lb.id} not found.`);
    expectFault(await c.put(`${LBS}/${t.lb.id}`, { loadbalancer: { name: 'x' } }), 404, `Load Balancer ${t.lb.id} not found.`);
    expectFault(await c.delete(`${LBS}/${t.lb.id}`), 404, `Load Balancer ${t.lb.id} not found.`);
    expectFault(await c.get(`${LBS}/${t.lb.id}/status`), 404);
    expectFault(await c.get(`${LBS}/${t.lb.id}/stats`), 404);
    expectFault(await admin.put(`${LBS}/${t.lb.id}/failover`), 404);
    expectFault(await c.post(`${BASE}/listeners`, { listener: { loadbalancer_id: t.lb.id, protocol: 'TCP', protocol_port: 1 } }), 404, `Load Balancer ${t.lb.id} not found.`);
    expect((await c.get(LBS)).body.loadbalancers.map((x: Obj) => x.id)).not.toContain(t.lb.id);
    expect((await c.get(`${LBS}?provisioning_status=DELETED`)).body.loadbalancers).toEqual([]);
    expect((await admin.get(`${LBS}?id=${t.lb.id}`)).body.loadbalancers).toEqual([]);
    expect((await c.get(`${BASE}/listeners/${t.listener.id}`)).status).toBe(404);
    expect((await c.get(`${BASE}/l7policies/${t.policy.id}/rules/${t.rule.id}`)).status).toBe(404);
    const amphorae = (await db.read(() => db.models.amphora.findAll({ where: { load_balancer_id: t.lb.id }, raw: true }))) as unknown as Obj[];
    expect(amphorae.every((a) => a.status === 'DELETED')).toBe(true);
  });

  it('deleting a listener removes its L7 policies and rules but keeps its default pool', async () => {
    const t = await tree();
    const h = holdSubmissions(api);
    expect((await c.delete(`${BASE}/listeners/${t.listener.id}`)).status).toBe(204);
    expect(await statusOf(api, 'listener', t.listener.id)).toBe('PENDING_DELETE');
    expect(await statusOf(api, 'load_balancer', t.lb.id)).toBe('PENDING_UPDATE');
    await h.release();
    expect(await statusOf(api, 'listener', t.listener.id)).toBeUndefined();
    expect(await statusOf(api, 'l7policy', t.policy.id)).toBeUndefined();
    expect(await statusOf(api, 'l7rule', t.rule.id)).toBeUndefined();
    expect(await statusOf(api, 'pool', t.pool.id)).toBe('ACTIVE');
  });
});

const MISSING = 'a0a0a0a0-b1b1-4c2c-8d3d-e4e4e4e4e4e4';
