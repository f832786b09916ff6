// /v2/lbaas/quotas against a real server with Keystone-style tokens (`<project>:<roles>`).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';

const SUBNET = '5d7b5a6c-0e5f-4c55-9a4b-3f7e7f0f8a10';
// Distinct configured defaults, so every attribute's mapping is visible.
const DEFAULTS = { loadBalancer: 10, listener: 20, pool: 30, healthMonitor: 40, member: 50, l7policy: 60, l7rule: 70 };
const DEFAULT_VIEW = {
  loadbalancer: 10,
  load_balancer: 10,
  listener: 20,
  pool: 30,
  healthmonitor: 40,
  health_monitor: 40,
  member: 50,
  l7policy: 60,
  l7rule: 70,
};
const QUOTA_KEYS = [
  'health_monitor', 'healthmonitor', 'l7policy', 'l7rule', 'listener', 'load_balancer', 'loadbalancer', 'member', 'pool', 'project_id', 'tenant_id',
];

let api: TestApi;
let admin: Client;
let member: Client;
let reader: Client;
let otherMember: Client;
let noRoles: Client;

beforeAll(async () => {
  api = await startApi({ quotas: DEFAULTS }, { keystone: true });
  admin = api.client('admin-project:admin');
  member = api.client('p1:member');
  reader = api.client('p1:reader');
  otherMember = api.client('p2:member');
  noRoles = api.client('p1:');
});
afterAll(async () => {
  await api?.close();
});

const Q = '/v2/lbaas/quotas';

describe('GET /quotas/{project_id}', () => {
  it('returns the configured defaults for a project without a record (never 404), in both spellings', async () => {
    const r = await admin.get(`${Q}/never-seen`);
    expect(r.status).toBe(200);
    expect(Object.keys(r.body)).toEqual(['quota']);
    expect(Object.keys(r.body.quota).sort()).toEqual(QUOTA_KEYS);
    expect(r.body.quota).toEqual({ project_id: 'never-seen', tenant_id: 'never-seen', ...DEFAULT_VIEW });
  });

  it('lets owners (member, reader) read their quota, and nobody else', async () => {
    expect((await member.get(`${Q}/p1`)).status).toBe(200);
    expect((await reader.get(`${Q}/p1`)).status).toBe(200);
    const other = await otherMember.get(`${Q}/p1`);
    expect(other.status).toBe(403);
    expect(other.body).toEqual({ faultcode: 'Client', faultstring: 'Policy does not allow this request to be performed.', debuginfo: null });
    expect((await noRoles.get(`${Q}/p1`)).status).toBe(403);
  });

  it('is served under every version alias', async () => {
    for (const prefix of ['/v2.0/lbaas', '/v2', '/v2.0']) {
      const r = await member.get(`${prefix}/quotas/p1`);
      expect(r.status).toBe(200);
      expect(r.body.quota.project_id).toBe('p1');
    }
  });

  it('refuses a project id longer than the 36 characters a project id can have', async () => {
    const r = await admin.get(`${Q}/${'x'.repeat(37)}`);
    expect(r.status).toBe(400);
    expect(r.body.faultstring).toBe(`Invalid input for field/attribute project_id. Value: '${'x'.repeat(37)}'. Value should have a maximum character requirement of 36`);
  });
});

describe('PUT /quotas/{project_id}', () => {
  it('creates the record and answers 202 with the quota, defaults filled in', async () => {
    const r = await admin.put(`${Q}/put-a`, { quota: { load_balancer: 3, healthmonitor: 7, l7rule: 0 } });
    expect(r.status).toBe(202);
    expect(r.body).toEqual({
      quota: { ...DEFAULT_VIEW, project_id: 'put-a', tenant_id: 'put-a', loadbalancer: 3, load_balancer: 3, healthmonitor: 7, health_monitor: 7, l7rule: 0 },
    });
    const again = await admin.get(`${Q}/put-a`);
    expect(again.body.quota.load_balancer).toBe(3);
    expect(again.body.quota.health_monitor).toBe(7);
    expect(again.body.quota.l7rule).toBe(0);
    expect(again.body.quota.listener).toBe(20);
  });

  it('changes only the attributes sent', async () => {
    await admin.put(`${Q}/put-b`, { quota: { listener: 5, pool: 6 } });
    const r = await admin.put(`${Q}/put-b`, { quota: { pool: 9 } });
    expect(r.status).toBe(202);
    expect(r.body.quota.listener).toBe(5);
    expect(r.body.quota.pool).toBe(9);
  });

  it('prefers the current spelling when both spellings are sent', async () => {
    const r = await admin.put(`${Q}/put-c`, { quota: { load_balancer: 2, loadbalancer: 1, health_monitor: 4, healthmonitor: 3 } });
    expect(r.status).toBe(202);
    expect(r.body.quota.loadbalancer).toBe(1);
    expect(r.body.quota.load_balancer).toBe(1);
    expect(r.body.quota.healthmonitor).toBe(3);
    expect(r.body.quota.health_monitor).toBe(3);
  });

  it('reverts an attribute sent as null to the configured default', async () => {
    await admin.put(`${Q}/put-d`, { quota: { member: 8, loadbalancer: 8 } });
    const r = await admin.put(`${Q}/put-d`, { quota: { member: null, loadbalancer: null } });
    expect(r.status).toBe(202);
    expect(r.body.quota.member).toBe(50);
    expect(r.body.quota.loadbalancer).toBe(10);
    const listed = await admin.get(`${Q}?project_id=put-d`);
    expect(listed.body.quotas[0].member).toBeNull();
    expect(listed.body.quotas[0].load_balancer).toBeNull();
  });

  it('accepts numeric strings, -1 (unlimited) and the maximum 2000000000', async () => {
    const r = await admin.put(`${Q}/put-e`, { quota: { listener: '12', pool: -1, member: 2000000000 } });
    expect(r.status).toBe(202);
    expect(r.body.quota.listener).toBe(12);
    expect(r.body.quota.pool).toBe(-1);
    expect(r.body.quota.member).toBe(2000000000);
  });

  it('creates an empty record for an empty quota object', async () => {
    const r = await admin.put(`${Q}/put-empty`, { quota: {} });
    expect(r.status).toBe(202);
    expect(r.body.quota).toEqual({ project_id: 'put-empty', tenant_id: 'put-empty', ...DEFAULT_VIEW });
    const listed = await admin.get(`${Q}?project_id=put-empty`);
    expect(listed.body.quotas).toHaveLength(1);
  });

  it.each([
    [{ listener: -2 }, "Invalid input for field/attribute listener. Value: '-2'. Value should be greater or equal to -1"],
    [{ pool: 2000000001 }, "Invalid input for field/attribute pool. Value: '2000000001'. Value should be lower or equal to 2000000000"],
    [{ l7policy: 'many' }, "Invalid input for field/attribute l7policy. Value: 'many'."],
  ])('refuses out-of-range or non-integer limits: %j', async (quota, message) => {
    const r = await admin.put(`${Q}/put-bad`, { quota });
    expect(r.status).toBe(400);
    expect(r.body.faultcode).toBe('Client');
    expect(r.body.faultstring.startsWith(message)).toBe(true);
    expect((await admin.get(`${Q}?project_id=put-bad`)).body.quotas).toEqual([]);
  });

  it('refuses unknown attributes and a missing wrapper', async () => {
    const unknown = await admin.put(`${Q}/put-bad`, { quota: { loadbalancers: 1 } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.faultstring).toMatch(/^Unknown attribute for argument .*: loadbalancers$/);
    const unwrapped = await admin.put(`${Q}/put-bad`, { load_balancer: 1 });
    expect(unwrapped.status).toBe(400);
    const empty = await admin.raw('PUT', `${Q}/put-bad`, 'not json', { 'Content-Type': 'application/json' });
    expect(empty.status).toBe(400);
    expect(empty.body.faultstring).toBe('Request is not in valid JSON format');
  });

  it('is for quota admins only: owners and readers get 403 and nothing changes', async () => {
    for (const c of [member, reader, otherMember, noRoles]) {
      const r = await c.put(`${Q}/p1`, { quota: { load_balancer: 100 } });
      expect(r.status).toBe(403);
    }
    expect((await admin.get(`${Q}/p1`)).body.quota.load_balancer).toBe(10);
  });

  it('answers 400 missing project id when none is in the path', async () => {
    const r = await admin.put(Q, { quota: { load_balancer: 1 } });
    expect(r.status).toBe(400);
    expect(r.body.faultstring).toBe('Missing project ID in request where one is required.');
  });
});

describe('DELETE /quotas/{project_id}', () => {
  it('resets every limit to the default with 202 and an empty body, keeping the project listed', async () => {
    await admin.put(`${Q}/del-a`, { quota: { load_balancer: 1, listener: 2, pool: 3, member: 4, health_monitor: 5, l7policy: 6, l7rule: 7 } });
    const r = await admin.delete(`${Q}/del-a`);
    expect(r.status).toBe(202);
    expect(r.body).toBeNull();
    expect((await admin.get(`${Q}/del-a`)).body.quota).toEqual({ project_id: 'del-a', tenant_id: 'del-a', ...DEFAULT_VIEW });
    const listed = await admin.get(`${Q}?project_id=del-a`);
    expect(listed.body.quotas).toEqual([
      {
        project_id: 'del-a', tenant_id: 'del-a', loadbalancer: null, load_balancer: null, listener: null, pool: null, member: null,
        healthmonitor: null, health_monitor: null, l7policy: null, l7rule: null,
      },
    ]);
    // The record still exists, so a second reset succeeds too.
    expect((await admin.delete(`${Q}/del-a`)).status).toBe(202);
  });

  it('answers 404 when the project has no quota record', async () => {
    const r = await admin.delete(`${Q}/no-record`);
    expect(r.status).toBe(404);
    expect(r.body.faultstring).toBe('Quotas no-record not found.');
  });

  it('is for quota admins only', async () => {
    await admin.put(`${Q}/del-b`, { quota: { pool: 1 } });
    for (const c of [api.client('del-b:member'), api.client('del-b:reader'), otherMember]) {
      expect((await c.delete(`${Q}/del-b`)).status).toBe(403);
    }
    expect((await admin.get(`${Q}/del-b`)).body.quota.pool).toBe(1);
  });
});

describe('defaults', () => {
  it('GET /quotas/defaults returns the configured defaults to any project reader', async () => {
    for (const c of [admin, member, reader, otherMember]) {
      const r = await c.get(`${Q}/defaults`);
      expect(r.status).toBe(200);
      expect(r.body.quota).toMatchObject(DEFAULT_VIEW);
    }
    expect((await noRoles.get(`${Q}/defaults`)).status).toBe(403);
  });

  it('GET /quotas/defaults is not confused with a project named "defaults" that has a quota', async () => {
    await admin.put(`${Q}/defaults`, { quota: { load_balancer: 1 } });
    const r = await member.get(`${Q}/defaults`);
    expect(r.body.quota.load_balancer).toBe(10);
  });

  it('GET /quotas/{project_id}/default ignores what the project has set', async () => {
    await admin.put(`${Q}/def-a`, { quota: { pool: 1 } });
    const r = await api.client('def-a:reader').get(`${Q}/def-a/default`);
    expect(r.status).toBe(200);
    expect(r.body.quota).toEqual({ project_id: 'def-a', tenant_id: 'def-a', ...DEFAULT_VIEW });
    expect((await otherMember.get(`${Q}/def-a/default`)).status).toBe(403);
  });
});

describe('GET /quotas (list)', () => {
  beforeAll(async () => {
    await admin.put(`${Q}/list-1`, { quota: { load_balancer: 11 } });
    await admin.put(`${Q}/list-2`, { quota: { load_balancer: 11, pool: 5 } });
    await admin.put(`${Q}/list-3`, { quota: { listener: 4 } });
  });

  it('shows admins every project with a record, with the stored values (null = default)', async () => {
    const r = await admin.get(Q);
    expect(r.status).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual(['quotas', 'quotas_links']);
    const ids = r.body.quotas.map((q: { project_id: string }) => q.project_id);
    expect(ids).toEqual(expect.arrayContaining(['list-1', 'list-2', 'list-3']));
    expect(ids).not.toContain('never-seen');
    const l3 = r.body.quotas.find((q: { project_id: string }) => q.project_id === 'list-3');
    expect(l3).toEqual({
      project_id: 'list-3', tenant_id: 'list-3', loadbalancer: null, load_balancer: null, listener: 4, pool: null, member: null,
      healthmonitor: null, health_monitor: null, l7policy: null, l7rule: null,
    });
    expect(r.body.quotas_links).toEqual([]);
  });

  it('scopes other callers to their own project', async () => {
    const own = api.client('list-1:reader');
    const r = await own.get(Q);
    expect(r.status).toBe(200);
    expect(r.body.quotas.map((q: { project_id: string }) => q.project_id)).toEqual(['list-1']);
    expect((await own.get(`${Q}?project_id=list-1`)).body.quotas).toHaveLength(1);
    expect((await own.get(`${Q}?project_id=list-2`)).status).toBe(403);
    expect((await api.client('list-9:member').get(Q)).body.quotas).toEqual([]);
    expect((await noRoles.get(Q)).status).toBe(403);
  });

  it('lets admins filter by project and by any quota attribute (either spelling)', async () => {
    expect((await admin.get(`${Q}?project_id=list-2`)).body.quotas.map((q: { project_id: string }) => q.project_id)).toEqual(['list-2']);
    for (const key of ['loadbalancer', 'load_balancer']) {
      const r = await admin.get(`${Q}?${key}=11`);
      expect(r.body.quotas.map((q: { project_id: string }) => q.project_id).sort()).toEqual(['list-1', 'list-2']);
    }
    expect((await admin.get(`${Q}?pool=5`)).body.quotas.map((q: { project_id: string }) => q.project_id)).toEqual(['list-2']);
    const bad = await admin.get(`${Q}?tenant_id=list-1`);
    expect(bad.status).toBe(400);
    expect(bad.body.faultstring).toBe('One or more arguments are either duplicate or invalid');
  });

  it('projects fields and pages with project ids as markers', async () => {
    const fields = await admin.get(`${Q}?load_balancer=11&fields=project_id&fields=pool`);
    expect(fields.body.quotas).toEqual([
      { project_id: 'list-1', pool: null },
      { project_id: 'list-2', pool: 5 },
    ]);
    const page1 = await admin.get(`${Q}?load_balancer=11&limit=1`);
    expect(page1.body.quotas.map((q: { project_id: string }) => q.project_id)).toEqual(['list-1']);
    const next = page1.body.quotas_links.find((l: { rel: string }) => l.rel === 'next');
    expect(next.href).toContain('marker=list-1');
    const page2 = await admin.get(new URL(next.href).pathname + new URL(next.href).search);
    expect(page2.body.quotas.map((q: { project_id: string }) => q.project_id)).toEqual(['list-2']);
    expect(page2.body.quotas_links.map((l: { rel: string }) => l.rel)).toEqual(['previous', 'next']);
    const desc = await admin.get(`${Q}?load_balancer=11&sort=project_id:desc`);
    expect(desc.body.quotas.map((q: { project_id: string }) => q.project_id)).toEqual(['list-2', 'list-1']);
    expect((await admin.get(`${Q}?marker=nope`)).status).toBe(400);
  });
});

describe('enforcement', () => {
  const createLb = (c: Client) => c.post('/v2/lbaas/loadbalancers', { loadbalancer: { vip_subnet_id: SUBNET } });

  it('a lowered load balancer quota refuses the next create with 403', async () => {
    const owner = api.client('enf-1:member');
    await admin.put(`${Q}/enf-1`, { quota: { loadbalancer: 1 } });
    expect((await createLb(owner)).status).toBe(201);
    const refused = await createLb(owner);
    expect(refused.status).toBe(403);
    expect(refused.body.faultstring).toBe('Quota has been met for resources: Load Balancer');
    await admin.put(`${Q}/enf-1`, { quota: { loadbalancer: -1 } });
    expect((await createLb(owner)).status).toBe(201);
    await api.settle();
  });

  it('a project that created an object has a record (all defaults) in the list', async () => {
    const owner = api.client('enf-2:member');
    expect((await createLb(owner)).status).toBe(201);
    await api.settle();
    const r = await owner.get(Q);
    expect(r.body.quotas).toHaveLength(1);
    expect(r.body.quotas[0].project_id).toBe('enf-2');
    expect(r.body.quotas[0].load_balancer).toBeNull();
  });
});
