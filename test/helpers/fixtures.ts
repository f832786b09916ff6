// Small builders for the API tests: each creates one object over HTTP, waits until the controller
// worker has finished (settle) and returns the object as a GET shows it (ACTIVE).
import { expect } from 'vitest';
import type { Client, Response, TestApi } from './api.ts';

export const BASE = '/v2/lbaas';
export const SUBNET_ID = '8c3dc0a1-6c53-4f4e-9a55-5d1b5a4e6b01';
export const NETWORK_ID = '0f6a1f3a-3c2e-4d0e-8d55-2b1c7a9e4b02';
/** A well-formed UUID that names no object. */
export const MISSING_ID = 'a0a0a0a0-b1b1-4c2c-8d3d-e4e4e4e4e4e4';

export type Obj = Record<string, any>;

export function fixtures(api: TestApi, c: Client) {
  const ok = async (res: Response, status: number, key: string, path: (o: Obj) => string): Promise<Obj> => {
    if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
    await api.settle();
    const got = await c.get(path(res.body[key]));
    expect(got.status).toBe(200);
    return got.body[key];
  };
  return {
    async lb(extra: Obj = {}): Promise<Obj> {
      return ok(await c.post(`${BASE}/loadbalancers`, { loadbalancer: { vip_subnet_id: SUBNET_ID, ...extra } }), 201, 'loadbalancer', (o) => `${BASE}/loadbalancers/${o.id}`);
    },
    async listener(lbId: string, extra: Obj = {}): Promise<Obj> {
      const body = { loadbalancer_id: lbId, protocol: 'HTTP', protocol_port: 80, ...extra };
      return ok(await c.post(`${BASE}/listeners`, { listener: body }), 201, 'listener', (o) => `${BASE}/listeners/${o.id}`);
    },
    /** A pool on a load balancer (`{loadbalancer_id}`) or as a listener's default pool (`{listener_id}`). */
    async pool(parent: { loadbalancer_id?: string; listener_id?: string }, extra: Obj = {}): Promise<Obj> {
      const body = { protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN', ...parent, ...extra };
      return ok(await c.post(`${BASE}/pools`, { pool: body }), 201, 'pool', (o) => `${BASE}/pools/${o.id}`);
    },
    async member(poolId: string, extra: Obj = {}): Promise<Obj> {
      const body = { address: '192.0.2.10', protocol_port: 80, ...extra };
      return ok(await c.post(`${BASE}/pools/${poolId}/members`, { member: body }), 201, 'member', (o) => `${BASE}/pools/${poolId}/members/${o.id}`);
    },
    async healthmonitor(poolId: string, extra: Obj = {}): Promise<Obj> {
      const body = { pool_id: poolId, type: 'HTTP', delay: 5, timeout: 3, max_retries: 2, ...extra };
      return ok(await c.post(`${BASE}/healthmonitors`, { healthmonitor: body }), 201, 'healthmonitor', (o) => `${BASE}/healthmonitors/${o.id}`);
    },
    async l7policy(listenerId: string, extra: Obj = {}): Promise<Obj> {
      const action = extra.redirect_pool_id ? 'REDIRECT_TO_POOL' : extra.redirect_url ? 'REDIRECT_TO_URL' : extra.redirect_prefix ? 'REDIRECT_PREFIX' : 'REJECT';
      const body = { listener_id: listenerId, action, ...extra };
      return ok(await c.post(`${BASE}/l7policies`, { l7policy: body }), 201, 'l7policy', (o) => `${BASE}/l7policies/${o.id}`);
    },
    async l7rule(policyId: string, extra: Obj = {}): Promise<Obj> {
      const body = { type: 'PATH', compare_type: 'STARTS_WITH', value: '/api', ...extra };
      return ok(await c.post(`${BASE}/l7policies/${policyId}/rules`, { rule: body }), 201, 'rule', (o) => `${BASE}/l7policies/${policyId}/rules/${o.id}`);
    },
    /** An ACTIVE load balancer with an HTTP listener on `port` (and nothing else). */
    async lbWithListener(extra: Obj = {}, port = 80): Promise<{ lb: Obj; listener: Obj }> {
      const lb = await this.lb();
      const listener = await this.listener(lb.id, { protocol_port: port, ...extra });
      return { lb, listener };
    },
    async get(path: string, key: string): Promise<Obj> {
      const res = await c.get(path);
      if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body[key];
    },
  };
}

export type Fixtures = ReturnType<typeof fixtures>;

/** Asserts an Octavia fault body: status, faultcode by class, and the exact faultstring if given. */
export function expectFault(res: Response, status: number, faultstring?: string | RegExp): void {
  expect({ status: res.status, body: res.body }).toMatchObject({ status, body: { faultcode: status >= 500 ? 'Server' : 'Client', debuginfo: null } });
  if (typeof faultstring === 'string') expect(res.body.faultstring).toBe(faultstring);
  else if (faultstring) expect(res.body.faultstring).toMatch(faultstring);
}

/** Row counts of every table of the load-balancer tree (to prove a refused request changed nothing). */
export async function tableCounts(api: TestApi): Promise<Record<string, number>> {
  const { db } = api.service.services;
  const tables = ['load_balancer', 'listener', 'pool', 'member', 'health_monitor', 'l7policy', 'l7rule', 'tag', 'quota'] as const;
  const out: Record<string, number> = {};
  for (const t of tables) out[t] = await db.read(() => db.models[t].count());
  return out;
}

/** The statuses of the rows of a table, by id (direct database read, for state-machine checks). */
export async function statusOf(api: TestApi, table: 'load_balancer' | 'listener' | 'pool' | 'member' | 'health_monitor' | 'l7policy' | 'l7rule', id: string): Promise<string | undefined> {
  const { db } = api.service.services;
  const row = (await db.read(() => db.models[table].findByPk(id, { raw: true }))) as Obj | null;
  return row?.provisioning_status;
}

export const ISO_NO_TZ = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/;
export const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
