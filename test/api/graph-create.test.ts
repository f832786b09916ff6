// Single-call ("graph") load balancer create (contract §2.1): the full response form, pool
// definitions and references by name, every graph-specific error, atomicity, quotas.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';
import { BASE, expectFault, fixtures, SUBNET_ID, tableCounts, UUID4, type Fixtures, type Obj } from '../helpers/fixtures.ts';

const LBS = `${BASE}/loadbalancers`;

describe('graph create', () => {
  let api: TestApi;
  let c: Client;
  let f: Fixtures;

  beforeAll(async () => {
    api = await startApi({}, { keystone: true });
    c = api.client('p1:member');
    f = fixtures(api, c);
  });
  afterAll(async () => api?.close());

  const create = (graph: Obj) => c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, ...graph } });
  const httpPool = (name: string, extra: Obj = {}) => ({ name, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN', ...extra });

  it('creates a full tree in one call and answers with the full form', async () => {
    const res = await create({
      name: 'graph',
      listeners: [
        {
          name: 'web', protocol: 'HTTP', protocol_port: 80, tags: ['l'],
          default_pool: httpPool('web-pool', {
            healthmonitor: { type: 'HTTP', delay: 5, timeout: 3, max_retries: 2, url_path: '/hc', name: 'hm' },
            members: [{ address: '192.0.2.10', protocol_port: 8080, name: 'm1' }, { address: '192.0.2.11', protocol_port: 8080, weight: 5 }],
          }),
          l7policies: [
            { name: 'to-api', action: 'REDIRECT_TO_POOL', redirect_pool: { name: 'api' }, rules: [{ type: 'PATH', compare_type: 'STARTS_WITH', value: '/api' }] },
            { name: 'deny', action: 'REJECT', position: 1, rules: [{ type: 'HEADER', compare_type: 'EQUAL_TO', key: 'X-Bad', value: '1' }] },
          ],
        },
        { name: 'tcp', protocol: 'TCP', protocol_port: 443 },
      ],
      pools: [httpPool('api', { lb_algorithm: 'LEAST_CONNECTIONS' })],
    });
    expect(res.status).toBe(201);
    const lb = res.body.loadbalancer;
    expect(lb).toMatchObject({ name: 'graph', provisioning_status: 'PENDING_CREATE', operating_status: 'OFFLINE' });
    expect(lb.listeners).toHaveLength(2);
    expect(lb.pools).toHaveLength(2);

    const web = lb.listeners.find((l: Obj) => l.name === 'web');
    expect(web).not.toHaveProperty('loadbalancers');
    expect(web).toMatchObject({ protocol: 'HTTP', protocol_port: 80, provisioning_status: 'PENDING_CREATE', tags: ['l'] });
    expect(web.l7policies.map((p: Obj) => [p.name, p.position])).toEqual([['deny', 1], ['to-api', 2]]);
    const toApi = web.l7policies.find((p: Obj) => p.name === 'to-api');
    expect(toApi.rules).toEqual([expect.objectContaining({ id: expect.stringMatching(UUID4), type: 'PATH', compare_type: 'STARTS_WITH', value: '/api' })]);

    const webPool = lb.pools.find((p: Obj) => p.name === 'web-pool');
    const apiPool = lb.pools.find((p: Obj) => p.name === 'api');
    expect(web.default_pool_id).toBe(webPool.id);
    expect(toApi.redirect_pool_id).toBe(apiPool.id);
    expect(toApi.action).toBe('REDIRECT_TO_POOL');
    expect(webPool).not.toHaveProperty('loadbalancers');
    expect(webPool).not.toHaveProperty('healthmonitor_id');
    expect(webPool.healthmonitor).toMatchObject({ type: 'HTTP', url_path: '/hc', name: 'hm', http_method: 'GET', expected_codes: '200' });
    expect(webPool.healthmonitor).not.toHaveProperty('pools');
    expect(webPool.members.map((m: Obj) => [m.name, m.address, m.weight, m.operating_status]).sort((x: string[], y: string[]) => x[1]!.localeCompare(y[1]!))).toEqual([
      ['m1', '192.0.2.10', 1, 'OFFLINE'], ['', '192.0.2.11', 5, 'OFFLINE'],
    ]);
    expect(apiPool).toMatchObject({ lb_algorithm: 'LEAST_CONNECTIONS', members: [], healthmonitor: null });

    await api.settle();
    const shown = await f.get(`${LBS}/${lb.id}`, 'loadbalancer');
    expect(shown.provisioning_status).toBe('ACTIVE');
    expect(shown.listeners.map((x: Obj) => x.id).sort()).toEqual(lb.listeners.map((x: Obj) => x.id).sort());
    expect(shown.pools.map((x: Obj) => x.id).sort()).toEqual([webPool.id, apiPool.id].sort());
    for (const l of lb.listeners) expect((await f.get(`${BASE}/listeners/${l.id}`, 'listener')).provisioning_status).toBe('ACTIVE');
    expect(await f.get(`${BASE}/healthmonitors/${webPool.healthmonitor.id}`, 'healthmonitor')).toMatchObject({ provisioning_status: 'ACTIVE', operating_status: 'ONLINE' });
    expect((await f.get(`${BASE}/l7policies/${toApi.id}/rules/${toApi.rules[0].id}`, 'rule')).provisioning_status).toBe('ACTIVE');
    const tree = (await c.get(`${LBS}/${lb.id}/status`)).body.statuses.loadbalancer;
    const webTree = tree.listeners.find((l: Obj) => l.id === web.id);
    expect(webTree.pools.map((p: Obj) => p.id)).toEqual([webPool.id, apiPool.id]);
  });

  it('a pool defined once can be the default pool of two listeners', async () => {
    const res = await create({
      listeners: [
        { protocol: 'HTTP', protocol_port: 80, default_pool: httpPool('shared') },
        { protocol: 'HTTP', protocol_port: 8080, default_pool: { name: 'shared' } },
      ],
    });
    expect(res.status).toBe(201);
    const [a, b] = res.body.loadbalancer.listeners;
    expect(res.body.loadbalancer.pools).toHaveLength(1);
    expect(a.default_pool_id).toBe(res.body.loadbalancer.pools[0].id);
    expect(b.default_pool_id).toBe(a.default_pool_id);
    await api.settle();
  });

  it('an empty graph is a plain create', async () => {
    const res = await create({ listeners: [], pools: [] });
    expect(res.status).toBe(201);
    expect(res.body.loadbalancer).toMatchObject({ listeners: [], pools: [] });
    await api.settle();
  });

  describe('errors (nothing is created)', () => {
    const refused = async (graph: Obj, status: number, message: string | RegExp) => {
      await api.settle();
      const before = await tableCounts(api);
      expectFault(await create(graph), status, message);
      expect(await tableCounts(api)).toEqual(before);
    };

    it('a default pool without a name', async () => {
      await refused({ listeners: [{ protocol: 'HTTP', protocol_port: 80, default_pool: { protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN' } }] }, 400,
        'Validation failure: Pools must be named when creating a fully populated loadbalancer.');
    });

    it('a redirect pool reference without a name', async () => {
      await refused({ listeners: [{ protocol: 'HTTP', protocol_port: 80, l7policies: [{ action: 'REDIRECT_TO_POOL', redirect_pool: {} }] }] }, 400,
        'Validation failure: Pools must be named when creating a fully populated loadbalancer.');
    });

    it('two pools with the same name', async () => {
      await refused({ pools: [httpPool('dup'), httpPool('dup', { protocol: 'TCP' })] }, 400,
        'Validation failure: Pool names must be unique when creating a fully populated loadbalancer.');
      await refused({ listeners: [{ protocol: 'HTTP', protocol_port: 80, default_pool: httpPool('dup') }], pools: [httpPool('dup')] }, 400,
        'Validation failure: Pool names must be unique when creating a fully populated loadbalancer.');
    });

    it('a reference without a definition', async () => {
      await refused({ listeners: [{ protocol: 'HTTP', protocol_port: 80, default_pool: { name: 'ghost' } }] }, 400,
        "Validation failure: Pool 'ghost' was referenced but no full definition was found.");
    });

    it('a pool definition without protocol or lb_algorithm', async () => {
      await refused({ pools: [{ name: 'p', lb_algorithm: 'ROUND_ROBIN' }] }, 400, "Validation failure: Pool definition for 'p' missing required attribute: protocol");
      await refused({ listeners: [{ protocol: 'HTTP', protocol_port: 80, default_pool: { name: 'p', protocol: 'HTTP' } }] }, 400,
        "Validation failure: Pool definition for 'p' missing required attribute: lb_algorithm");
    });

    it('two listeners on the same port', async () => {
      await refused({ listeners: [{ protocol: 'HTTP', protocol_port: 80 }, { protocol: 'TCP', protocol_port: 80 }] }, 409,
        'Another Listener on this Load Balancer is already using protocol HTTP and protocol_port 80');
    });

    it('an incompatible default pool protocol', async () => {
      await refused({ listeners: [{ protocol: 'HTTP', protocol_port: 80, default_pool: httpPool('t', { protocol: 'UDP' }) }] }, 400,
        "Validation failure: The pool protocol 'UDP' is invalid while the listener protocol is 'HTTP'.");
    });

    it('children on a PROMETHEUS listener', async () => {
      await refused({ listeners: [{ protocol: 'PROMETHEUS', protocol_port: 9100, default_pool: httpPool('x') }] }, 400, 'Protocol PROMETHEUS listeners cannot have child objects.');
      await refused({ listeners: [{ protocol: 'PROMETHEUS', protocol_port: 9100, l7policies: [{ action: 'REJECT' }] }] }, 400,
        'Protocol PROMETHEUS listeners cannot have child objects.');
    });

    it('an L7 policy on a TCP listener (amphora provider 501)', async () => {
      await refused({ listeners: [{ protocol: 'TCP', protocol_port: 80, l7policies: [{ action: 'REJECT' }] }] }, 501,
        "Provider 'amphora' does not support a requested option: TCP protocol listeners do not support L7 policies");
    });

    it('SOURCE_IP_PORT on the amphora provider (501)', async () => {
      await refused({ pools: [httpPool('p', { lb_algorithm: 'SOURCE_IP_PORT' })] }, 501,
        "Provider 'amphora' does not support a requested option: Amphora provider does not support SOURCE_IP_PORT algorithm.");
    });

    it('invalid children are refused with the field named', async () => {
      await refused({ listeners: [{ protocol: 'HTTP', protocol_port: 70000 }] }, 400,
        "Invalid input for field/attribute protocol_port. Value: '70000'. Value should be lower or equal to 65535");
      await refused({ pools: [httpPool('p', { members: [{ address: 'nope', protocol_port: 80 }] })] }, 400,
        "Invalid input for field/attribute address. Value: 'nope'. Value should be IPv4 or IPv6 format");
      await refused({ pools: [httpPool('p', { healthmonitor: { type: 'TCP', delay: 1, timeout: 1 } })] }, 400,
        "Invalid input for field/attribute max_retries. Value: 'None'. Mandatory field missing.");
      await refused({ listeners: [{ protocol: 'HTTP', protocol_port: 80, l7policies: [{ action: 'REJECT', rules: [{ type: 'HEADER', compare_type: 'EQUAL_TO', value: 'v' }] }] }] },
        400, 'Error parsing L7Rule: Invalid L7 Rule: L7 rule type requires a key');
      await refused({ listeners: [{ protocol: 'HTTP', protocol_port: 80, loadbalancer_id: SUBNET_ID }] }, 400, /^Unknown attribute for argument \S+: loadbalancer_id$/);
      await refused({ pools: [httpPool('p', { healthmonitor: { type: 'TCP', delay: 1, timeout: 1, max_retries: 1, pool_id: SUBNET_ID } })] }, 400,
        /^Unknown attribute for argument \S+: pool_id$/);
    });

    it('the same member twice in a pool', async () => {
      await refused({ pools: [httpPool('p', { members: [{ address: '192.0.2.1', protocol_port: 80 }, { address: '192.0.2.1', protocol_port: 80 }] })] }, 409,
        'Another member on this pool is already using ip 192.0.2.1 on protocol_port 80');
    });

    it('more than 50 rules on a policy (409)', async () => {
      const rules = Array.from({ length: 51 }, (_, i) => ({ type: 'PATH', compare_type: 'EQUAL_TO', value: `/r${i}` }));
      await refused({ listeners: [{ protocol: 'HTTP', protocol_port: 80, l7policies: [{ action: 'REJECT', rules }] }] }, 409, /^Too many rules on L7 policy [0-9a-f-]{36}$/);
    });

    it('50 rules are fine', async () => {
      const rules = Array.from({ length: 50 }, (_, i) => ({ type: 'PATH', compare_type: 'EQUAL_TO', value: `/r${i}` }));
      const res = await create({ listeners: [{ protocol: 'HTTP', protocol_port: 80, l7policies: [{ action: 'REJECT', rules }] }] });
      expect(res.status).toBe(201);
      expect(res.body.loadbalancer.listeners[0].l7policies[0].rules).toHaveLength(50);
      await api.settle();
    });
  });

  it('counts graph children against the quotas (403)', async () => {
    const { db } = api.service.services;
    await db.tx((t) => db.models.quota.create({ project_id: 'pq', pool: 1, member: 2 }, { transaction: t }));
    const q = api.client('pq:member');
    await api.settle();
    const before = await tableCounts(api);
    expectFault(await q.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, pools: [httpPool('a'), httpPool('b')] } }), 403, 'Quota has been met for resources: Pool');
    expectFault(await q.post(LBS, { loadbalancer: {
      vip_subnet_id: SUBNET_ID,
      pools: [httpPool('a', { members: [1, 2, 3].map((i) => ({ address: `192.0.2.${i}`, protocol_port: 80 })) })],
    } }), 403, 'Quota has been met for resources: Member');
    expect(await tableCounts(api)).toEqual(before);
    const ok = await q.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, pools: [httpPool('a', { members: [{ address: '192.0.2.1', protocol_port: 80 }] })] } });
    expect(ok.status).toBe(201);
    await api.settle();
  });
});
