// Load balancers (contract §2.1): create/show/list/update/delete, field defaults and rules, PUT
// null-reset semantics, cascade delete, status tree, statistics and failover.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';
import { BASE, expectFault, fixtures, ISO_NO_TZ, MISSING_ID, NETWORK_ID, SUBNET_ID, tableCounts, UUID4, type Fixtures } from '../helpers/fixtures.ts';

const LBS = `${BASE}/loadbalancers`;

const LB_KEYS = [
  'id', 'name', 'description', 'provisioning_status', 'operating_status', 'admin_state_up', 'project_id', 'tenant_id',
  'created_at', 'updated_at', 'vip_address', 'vip_port_id', 'vip_subnet_id', 'vip_network_id', 'vip_qos_policy_id',
  'vip_sg_ids', 'vip_vnic_type', 'additional_vips', 'listeners', 'pools', 'provider', 'flavor_id', 'availability_zone', 'tags',
].sort();

describe('load balancers', () => {
  let api: TestApi;
  let c: Client;
  let admin: Client;
  let f: Fixtures;

  beforeAll(async () => {
    api = await startApi({}, { keystone: true });
    c = api.client('p1:member');
    admin = api.client('adminproj:admin');
    f = fixtures(api, c);
  });
  afterAll(async () => api?.close());

  describe('create', () => {
    it('returns 201 with the full object in PENDING_CREATE/OFFLINE and every default', async () => {
      const res = await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID } });
      expect(res.status).toBe(201);
      expect(Object.keys(res.body)).toEqual(['loadbalancer']);
      const lb = res.body.loadbalancer;
      expect(Object.keys(lb).sort()).toEqual(LB_KEYS);
      expect(lb).toMatchObject({
        name: '', description: '', admin_state_up: true, project_id: 'p1', tenant_id: 'p1',
        provisioning_status: 'PENDING_CREATE', operating_status: 'OFFLINE', updated_at: null,
        vip_subnet_id: SUBNET_ID, vip_qos_policy_id: null, vip_sg_ids: [], vip_vnic_type: 'normal', additional_vips: [],
        listeners: [], pools: [], provider: 'amphora', flavor_id: null, availability_zone: null, tags: [],
      });
      expect(lb.id).toMatch(UUID4);
      expect(lb.created_at).toMatch(ISO_NO_TZ);
      expect(lb.vip_address).toBe('198.51.100.1');
      expect(lb.vip_port_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(lb.vip_network_id).toMatch(/^[0-9a-f-]{36}$/);
      await api.settle();
      const shown = await f.get(`${LBS}/${lb.id}`, 'loadbalancer');
      expect(shown.provisioning_status).toBe('ACTIVE');
      expect(shown.operating_status).toBe('OFFLINE');
      expect(shown.updated_at).toMatch(ISO_NO_TZ);
    });

    it('stores the supplied attributes', async () => {
      const res = await c.post(LBS, {
        loadbalancer: { vip_subnet_id: SUBNET_ID, vip_address: '203.0.113.7', name: 'web', description: 'front', admin_state_up: false, tags: ['b', 'a'] },
      });
      expect(res.status).toBe(201);
      expect(res.body.loadbalancer).toMatchObject({ name: 'web', description: 'front', admin_state_up: false, vip_address: '203.0.113.7' });
      expect([...res.body.loadbalancer.tags].sort()).toEqual(['a', 'b']);
      await api.settle();
    });

    it('accepts a VIP network alone and derives the subnet', async () => {
      const res = await c.post(LBS, { loadbalancer: { vip_network_id: NETWORK_ID } });
      expect(res.status).toBe(201);
      expect(res.body.loadbalancer.vip_network_id).toBe(NETWORK_ID);
      expect(res.body.loadbalancer.vip_subnet_id).toMatch(/^[0-9a-f-]{36}$/);
      await api.settle();
    });

    it('returns the provider as requested (octavia alias)', async () => {
      const res = await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, provider: 'octavia' } });
      expect(res.status).toBe(201);
      expect(res.body.loadbalancer.provider).toBe('octavia');
      await api.settle();
      expect((await f.get(`${LBS}/${res.body.loadbalancer.id}`, 'loadbalancer')).provider).toBe('octavia');
    });

    it('copies tenant_id into project_id', async () => {
      const res = await admin.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, tenant_id: 'p7' } });
      expect(res.status).toBe(201);
      expect(res.body.loadbalancer).toMatchObject({ project_id: 'p7', tenant_id: 'p7' });
      await api.settle();
    });

    it('lets an admin create in another project, refuses a member (403)', async () => {
      const res = await admin.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, project_id: 'p9' } });
      expect(res.status).toBe(201);
      expect(res.body.loadbalancer.project_id).toBe('p9');
      await api.settle();
      expectFault(await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, project_id: 'p9' } }), 403, 'Policy does not allow this request to be performed.');
    });

    it('400 when no project can be determined', async () => {
      const res = await api.client(':admin').post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID } });
      expectFault(res, 400,
        'Validation failure: Missing project ID in request where one is required. An administrator should check the keystone settings in the Octavia configuration.');
    });

    it('400 without any VIP attribute', async () => {
      expectFault(await c.post(LBS, { loadbalancer: { name: 'x' } }), 400,
        'Validation failure: VIP must contain one of: vip_port_id, vip_network_id, vip_subnet_id.');
    });

    it('400 for a provider that is not enabled', async () => {
      expectFault(await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, provider: 'bogus' } }), 400, "Provider 'bogus' is not enabled.");
    });

    it('400 for an unknown flavor_id and an unknown availability zone', async () => {
      expectFault(await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, flavor_id: MISSING_ID } }), 400, 'Validation failure: Invalid flavor_id.');
      expectFault(await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, availability_zone: 'nowhere' } }), 400,
        'Validation failure: Invalid availability zone.');
    });

    it('flavors: topology from the flavor, disabled flavor 400, provider mismatch 400', async () => {
      const { db } = api.service.services;
      const ids = { profile: 'f0f0f0f0-0000-4000-8000-000000000001', active: 'f0f0f0f0-0000-4000-8000-000000000002', disabled: 'f0f0f0f0-0000-4000-8000-000000000003' };
      await db.tx(async (t) => {
        await db.models.flavor_profile.create({ id: ids.profile, name: 'ha', provider_name: 'amphora', flavor_data: '{"loadbalancer_topology": "ACTIVE_STANDBY"}' }, { transaction: t });
        await db.models.flavor.create({ id: ids.active, name: 'ha', description: '', enabled: true, flavor_profile_id: ids.profile }, { transaction: t });
        await db.models.flavor.create({ id: ids.disabled, name: 'off', description: '', enabled: false, flavor_profile_id: ids.profile }, { transaction: t });
      });
      const lb = await f.lb({ flavor_id: ids.active });
      expect(lb).toMatchObject({ flavor_id: ids.active, provider: 'amphora' });
      const roles = ((await db.read(() => db.models.amphora.findAll({ where: { load_balancer_id: lb.id }, raw: true }))) as unknown as Array<{ role: string }>)
        .map((a) => a.role).sort();
      expect(roles).toEqual(['BACKUP', 'MASTER']);
      expectFault(await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, flavor_id: ids.disabled } }), 400,
        `The selected flavor is not allowed in this deployment: ${ids.disabled}`);
      expectFault(await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, flavor_id: ids.active, provider: 'noop' } }), 400,
        `Flavor '${ids.active}' is not compatible with provider 'noop'`);
    });

    it('availability zones: stored when enabled, 400 when disabled', async () => {
      const { db } = api.service.services;
      const profile = 'a0a0a0a0-0000-4000-8000-000000000001';
      await db.tx(async (t) => {
        await db.models.availability_zone_profile.create({ id: profile, name: 'azp', provider_name: 'amphora', availability_zone_data: '{"compute_zone": "nova"}' }, { transaction: t });
        await db.models.availability_zone.create({ name: 'az-on', description: '', enabled: true, availability_zone_profile_id: profile }, { transaction: t });
        await db.models.availability_zone.create({ name: 'az-off', description: '', enabled: false, availability_zone_profile_id: profile }, { transaction: t });
      });
      expect((await f.lb({ availability_zone: 'az-on' })).availability_zone).toBe('az-on');
      expectFault(await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, availability_zone: 'az-off' } }), 400,
        'The selected availability_zone is not allowed in this deployment: az-off');
    });

    it('400 for a VIP subnet used twice in additional_vips', async () => {
      expectFault(await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, additional_vips: [{ subnet_id: SUBNET_ID }] } }), 400,
        'Validation failure: Duplicate VIP subnet(s) specified. Only one IP can be bound per subnet.');
    });

    it('400 for an additional VIP without subnet_id', async () => {
      expectFault(await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, additional_vips: [{ ip_address: '203.0.113.9' }] } }), 400,
        "Invalid input for field/attribute subnet_id. Value: 'None'. Mandatory field missing.");
    });

    it.each([
      ['name', 'x'.repeat(256), `Invalid input for field/attribute name. Value: '${'x'.repeat(256)}'. Value should have a maximum character requirement of 255`],
      ['description', 'y'.repeat(256), `Invalid input for field/attribute description. Value: '${'y'.repeat(256)}'. Value should have a maximum character requirement of 255`],
      ['admin_state_up', 'maybe', "Invalid input for field/attribute admin_state_up. Value: 'maybe'. Value not an unambiguous boolean: maybe"],
      ['vip_address', '300.1.1.1', "Invalid input for field/attribute vip_address. Value: '300.1.1.1'. Value should be IPv4 or IPv6 format"],
      ['vip_network_id', 'not-a-uuid', "Invalid input for field/attribute vip_network_id. Value: 'not-a-uuid'. Value should be UUID format"],
      ['vip_qos_policy_id', '123', "Invalid input for field/attribute vip_qos_policy_id. Value: '123'. Value should be UUID format"],
      ['project_id', 'p'.repeat(37), `Invalid input for field/attribute project_id. Value: '${'p'.repeat(37)}'. Value should have a maximum character requirement of 36`],
      ['provider', 'q'.repeat(65), `Invalid input for field/attribute provider. Value: '${'q'.repeat(65)}'. Value should have a maximum character requirement of 64`],
      ['availability_zone', 'z'.repeat(256), `Invalid input for field/attribute availability_zone. Value: '${'z'.repeat(256)}'. Value should have a maximum character requirement of 255`],
    ])('400 for an invalid %s', async (field, value, message) => {
      const res = await admin.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, [field]: value } });
      expectFault(res, 400, message);
    });

    it('400 for an invalid vip_subnet_id', async () => {
      expectFault(await c.post(LBS, { loadbalancer: { vip_subnet_id: 'subnet-1' } }), 400,
        "Invalid input for field/attribute vip_subnet_id. Value: 'subnet-1'. Value should be UUID format");
    });

    it('400 for an unknown attribute (and for the response-only ones)', async () => {
      const res = await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, color: 'red' } });
      expectFault(res, 400, /^Unknown attribute for argument \S+: color$/);
      expectFault(await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, provisioning_status: 'ACTIVE' } }), 400, /^Unknown attribute for argument \S+: provisioning_status$/);
      expectFault(await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, id: MISSING_ID } }), 400, /^Unknown attribute for argument \S+: id$/);
    });

    it('accepts the WSME boolean strings for admin_state_up', async () => {
      const res = await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, admin_state_up: 'off' } });
      expect(res.status).toBe(201);
      expect(res.body.loadbalancer.admin_state_up).toBe(false);
      await api.settle();
    });
  });

  describe('show and list', () => {
    it('shows one object under "loadbalancer" with listeners/pools as id objects', async () => {
      const lb = await f.lb({ name: 'shown' });
      const listener = await f.listener(lb.id);
      const pool = await f.pool({ loadbalancer_id: lb.id });
      const res = await c.get(`${LBS}/${lb.id}`);
      expect(res.status).toBe(200);
      expect(Object.keys(res.body)).toEqual(['loadbalancer']);
      expect(Object.keys(res.body.loadbalancer).sort()).toEqual(LB_KEYS);
      expect(res.body.loadbalancer.listeners).toEqual([{ id: listener.id }]);
      expect(res.body.loadbalancer.pools).toEqual([{ id: pool.id }]);
    });

    it('404 with the Octavia message for an unknown id', async () => {
      expectFault(await c.get(`${LBS}/${MISSING_ID}`), 404, `Load Balancer ${MISSING_ID} not found.`);
    });

    it('lists under "loadbalancers" with "loadbalancers_links"', async () => {
      const lb = await f.lb({ name: 'listed' });
      const res = await c.get(LBS);
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['loadbalancers', 'loadbalancers_links']);
      expect(res.body.loadbalancers_links).toEqual([]);
      const found = res.body.loadbalancers.find((x: { id: string }) => x.id === lb.id);
      expect(Object.keys(found).sort()).toEqual(LB_KEYS);
      expect(res.body.loadbalancers.every((x: { project_id: string }) => x.project_id === 'p1')).toBe(true);
    });
  });

  describe('update', () => {
    it('returns 200 in PENDING_UPDATE and applies the change', async () => {
      const lb = await f.lb({ name: 'before', description: 'd', tags: ['t1'] });
      const res = await c.put(`${LBS}/${lb.id}`, { loadbalancer: { name: 'after', admin_state_up: false } });
      expect(res.status).toBe(200);
      expect(Object.keys(res.body)).toEqual(['loadbalancer']);
      expect(res.body.loadbalancer).toMatchObject({ name: 'after', description: 'd', admin_state_up: false, provisioning_status: 'PENDING_UPDATE', tags: ['t1'] });
      await api.settle();
      expect(await f.get(`${LBS}/${lb.id}`, 'loadbalancer')).toMatchObject({ name: 'after', admin_state_up: false, provisioning_status: 'ACTIVE' });
    });

    it('null resets name and description to "" and admin_state_up to false', async () => {
      const lb = await f.lb({ name: 'n', description: 'd' });
      const res = await c.put(`${LBS}/${lb.id}`, { loadbalancer: { name: null, description: null, admin_state_up: null } });
      expect(res.status).toBe(200);
      expect(res.body.loadbalancer).toMatchObject({ name: '', description: '', admin_state_up: false });
      await api.settle();
    });

    it('tags: a list replaces, [] clears, null or absent leaves unchanged', async () => {
      const lb = await f.lb({ tags: ['a', 'b'] });
      const path = `${LBS}/${lb.id}`;
      expect((await c.put(path, { loadbalancer: { tags: ['c'] } })).body.loadbalancer.tags).toEqual(['c']);
      await api.settle();
      expect((await c.put(path, { loadbalancer: { tags: null } })).body.loadbalancer.tags).toEqual(['c']);
      await api.settle();
      expect((await c.put(path, { loadbalancer: { name: 'x' } })).body.loadbalancer.tags).toEqual(['c']);
      await api.settle();
      expect((await c.put(path, { loadbalancer: { tags: [] } })).body.loadbalancer.tags).toEqual([]);
      await api.settle();
      expect((await f.get(path, 'loadbalancer')).tags).toEqual([]);
    });

    it('sets and clears vip_qos_policy_id; vip_sg_ids null becomes []', async () => {
      const lb = await f.lb();
      const qos = 'c1c1c1c1-d2d2-4e3e-8f4f-a5a5a5a5a5a5';
      const sg = 'd1d1d1d1-e2e2-4f3f-8a4a-b5b5b5b5b5b5';
      const set = await c.put(`${LBS}/${lb.id}`, { loadbalancer: { vip_qos_policy_id: qos, vip_sg_ids: [sg] } });
      expect(set.body.loadbalancer).toMatchObject({ vip_qos_policy_id: qos, vip_sg_ids: [sg] });
      await api.settle();
      const cleared = await c.put(`${LBS}/${lb.id}`, { loadbalancer: { vip_qos_policy_id: null, vip_sg_ids: null } });
      expect(cleared.body.loadbalancer).toMatchObject({ vip_qos_policy_id: null, vip_sg_ids: [] });
      await api.settle();
    });

    it.each(['vip_subnet_id', 'vip_address', 'provider', 'flavor_id', 'project_id', 'listeners'])('400 for the create-only attribute %s', async (field) => {
      const lb = await f.lb();
      const value = field === 'vip_address' ? '203.0.113.1' : field === 'listeners' ? [] : field === 'provider' || field === 'project_id' ? 'x' : MISSING_ID;
      const res = await c.put(`${LBS}/${lb.id}`, { loadbalancer: { [field]: value } });
      expectFault(res, 400, new RegExp(`^Unknown attribute for argument \\S+: ${field}$`));
      expect((await f.get(`${LBS}/${lb.id}`, 'loadbalancer')).provisioning_status).toBe('ACTIVE');
    });

    it('404 for an unknown load balancer', async () => {
      expectFault(await c.put(`${LBS}/${MISSING_ID}`, { loadbalancer: { name: 'x' } }), 404, `Load Balancer ${MISSING_ID} not found.`);
    });
  });

  describe('delete', () => {
    it('204 with an empty body, then hidden from show and list', async () => {
      const lb = await f.lb();
      const res = await c.delete(`${LBS}/${lb.id}`);
      expect(res.status).toBe(204);
      expect(res.body).toBeNull();
      await api.settle();
      expectFault(await c.get(`${LBS}/${lb.id}`), 404, `Load Balancer ${lb.id} not found.`);
      expect((await c.get(LBS)).body.loadbalancers.map((x: { id: string }) => x.id)).not.toContain(lb.id);
    });

    it('400 while the load balancer has children, unless cascade', async () => {
      const lb = await f.lb();
      await f.pool({ loadbalancer_id: lb.id });
      expectFault(await c.delete(`${LBS}/${lb.id}`), 400, `Validation failure: Cannot delete Load Balancer ${lb.id} - it has children`);
      expect((await f.get(`${LBS}/${lb.id}`, 'loadbalancer')).provisioning_status).toBe('ACTIVE');
    });

    it.each(['true', 'True', '1', 'yes'])('cascade=%s deletes the load balancer and all children', async (value) => {
      const lb = await f.lb();
      const listener = await f.listener(lb.id);
      const pool = await f.pool({ listener_id: listener.id });
      await f.member(pool.id);
      expect((await c.delete(`${LBS}/${lb.id}?cascade=${value}`)).status).toBe(204);
      await api.settle();
      expect((await c.get(`${LBS}/${lb.id}`)).status).toBe(404);
      expect((await c.get(`${BASE}/listeners/${listener.id}`)).status).toBe(404);
      expect((await c.get(`${BASE}/pools/${pool.id}`)).status).toBe(404);
    });

    it('cascade=false is not a cascade', async () => {
      const lb = await f.lb();
      await f.listener(lb.id);
      expect((await c.delete(`${LBS}/${lb.id}?cascade=false`)).status).toBe(400);
    });

    it('404 for an unknown load balancer', async () => {
      expectFault(await c.delete(`${LBS}/${MISSING_ID}`), 404, `Load Balancer ${MISSING_ID} not found.`);
    });
  });

  describe('status tree', () => {
    it('has the documented shape, health_monitor key only when present, "" for null names', async () => {
      const lb = await f.lb({ name: 'tree' });
      const listener = await f.listener(lb.id, { name: 'l1' });
      const pool = await f.pool({ listener_id: listener.id }, { name: 'p1' });
      const member = await f.member(pool.id, { name: 'm1', address: '192.0.2.21', protocol_port: 8080 });
      const hm = await f.healthmonitor(pool.id);
      const redirect = await f.pool({ loadbalancer_id: lb.id });
      const unreachable = await f.pool({ loadbalancer_id: lb.id }, { name: 'orphan' });
      const policy = await f.l7policy(listener.id, { action: 'REDIRECT_TO_POOL', redirect_pool_id: redirect.id });
      await f.l7rule(policy.id);

      for (const suffix of ['status', 'statuses']) {
        const res = await c.get(`${LBS}/${lb.id}/${suffix}`);
        expect(res.status).toBe(200);
        expect(res.body).toEqual({
          statuses: {
            loadbalancer: {
              id: lb.id, name: 'tree', operating_status: 'OFFLINE', provisioning_status: 'ACTIVE',
              listeners: [{
                id: listener.id, name: 'l1', operating_status: 'OFFLINE', provisioning_status: 'ACTIVE',
                pools: [
                  {
                    id: pool.id, name: 'p1', operating_status: 'OFFLINE', provisioning_status: 'ACTIVE',
                    health_monitor: { id: hm.id, name: '', type: 'HTTP', provisioning_status: 'ACTIVE', operating_status: 'ONLINE' },
                    members: [{ id: member.id, name: 'm1', operating_status: 'NO_MONITOR', provisioning_status: 'ACTIVE', address: '192.0.2.21', protocol_port: 8080 }],
                  },
                  { id: redirect.id, name: '', operating_status: 'OFFLINE', provisioning_status: 'ACTIVE', members: [] },
                ],
              }],
            },
          },
        });
        expect(JSON.stringify(res.body)).not.toContain(unreachable.id);
      }
    });

    it('leaves out redirect pools of disabled policies and of policies without rules', async () => {
      const lb = await f.lb();
      const listener = await f.listener(lb.id);
      const norules = await f.pool({ loadbalancer_id: lb.id });
      const disabled = await f.pool({ loadbalancer_id: lb.id });
      await f.l7policy(listener.id, { action: 'REDIRECT_TO_POOL', redirect_pool_id: norules.id });
      const p2 = await f.l7policy(listener.id, { action: 'REDIRECT_TO_POOL', redirect_pool_id: disabled.id, admin_state_up: false });
      expect(p2.redirect_pool_id).toBe(disabled.id);
      await f.l7rule(p2.id);
      const res = await c.get(`${LBS}/${lb.id}/status`);
      expect(res.body.statuses.loadbalancer.listeners[0].pools).toEqual([]);
    });

    it('404 for an unknown load balancer', async () => {
      expectFault(await c.get(`${LBS}/${MISSING_ID}/status`), 404, `Load Balancer ${MISSING_ID} not found.`);
    });
  });

  describe('stats', () => {
    it('all five counters are 0 without data', async () => {
      const lb = await f.lb();
      await f.listener(lb.id);
      const res = await c.get(`${LBS}/${lb.id}/stats`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ stats: { bytes_in: 0, bytes_out: 0, active_connections: 0, total_connections: 0, request_errors: 0 } });
    });

    it('sums the listeners; active_connections only from ALLOCATED amphorae', async () => {
      const lb = await f.lb();
      const l1 = await f.listener(lb.id, { protocol_port: 81 });
      const l2 = await f.listener(lb.id, { protocol_port: 82 });
      const { db } = api.service.services;
      const amps = (await db.read(() => db.models.amphora.findAll({ where: { load_balancer_id: lb.id }, raw: true }))) as unknown as Array<{ id: string }>;
      expect(amps.length).toBe(1);
      const stale = '99999999-9999-4999-8999-999999999999';
      await db.tx(async (t) => {
        const row = (listener_id: string, amphora_id: string, n: number) => ({
          listener_id, amphora_id, bytes_in: n, bytes_out: 2 * n, active_connections: 3 * n, total_connections: 4 * n, request_errors: 5 * n,
        });
        await db.models.listener_statistics.bulkCreate([row(l1.id, amps[0]!.id, 1), row(l2.id, amps[0]!.id, 10), row(l2.id, stale, 100)], { transaction: t });
      });
      const res = await c.get(`${LBS}/${lb.id}/stats`);
      expect(res.body.stats).toEqual({ bytes_in: 111, bytes_out: 222, active_connections: 33, total_connections: 444, request_errors: 555 });
      const ls = await c.get(`${BASE}/listeners/${l1.id}/stats`);
      expect(ls.body).toEqual({ stats: { bytes_in: 1, bytes_out: 2, active_connections: 3, total_connections: 4, request_errors: 5 } });
    });
  });

  describe('failover', () => {
    it('202 with an empty body for an admin; the amphorae are replaced and the load balancer is ACTIVE again', async () => {
      const lb = await f.lb();
      const { db } = api.service.services;
      const before = (await db.read(() => db.models.amphora.findAll({ where: { load_balancer_id: lb.id, status: 'ALLOCATED' }, raw: true }))) as unknown as Array<{ id: string }>;
      const res = await admin.put(`${LBS}/${lb.id}/failover`);
      expect(res.status).toBe(202);
      expect(res.body).toBeNull();
      await api.settle();
      expect((await f.get(`${LBS}/${lb.id}`, 'loadbalancer')).provisioning_status).toBe('ACTIVE');
      const after = (await db.read(() => db.models.amphora.findAll({ where: { load_balancer_id: lb.id, status: 'ALLOCATED' }, raw: true }))) as unknown as Array<{ id: string }>;
      expect(after.length).toBe(before.length);
      expect(after.map((a) => a.id)).not.toEqual(before.map((a) => a.id));
    });

    it('also works from ERROR', async () => {
      const lb = await f.lb();
      const { db } = api.service.services;
      await db.tx((t) => db.models.load_balancer.update({ provisioning_status: 'ERROR' }, { where: { id: lb.id }, transaction: t }));
      expect((await admin.put(`${LBS}/${lb.id}/failover`, {})).status).toBe(202);
      await api.settle();
      expect((await f.get(`${LBS}/${lb.id}`, 'loadbalancer')).provisioning_status).toBe('ACTIVE');
    });

    it('403 for the owning member and the reader; nothing changes', async () => {
      const lb = await f.lb();
      expectFault(await c.put(`${LBS}/${lb.id}/failover`), 403, 'Policy does not allow this request to be performed.');
      expectFault(await api.client('p1:reader').put(`${LBS}/${lb.id}/failover`), 403);
      expect((await f.get(`${LBS}/${lb.id}`, 'loadbalancer')).provisioning_status).toBe('ACTIVE');
    });

    it('404 for an unknown load balancer', async () => {
      expectFault(await admin.put(`${LBS}/${MISSING_ID}/failover`), 404, `Load Balancer ${MISSING_ID} not found.`);
    });
  });

  it('a refused create leaves the database unchanged', async () => {
    await api.settle();
    const before = await tableCounts(api);
    await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, provider: 'bogus', tags: ['x'] } });
    await c.post(LBS, { loadbalancer: { vip_subnet_id: SUBNET_ID, listeners: [{ protocol: 'HTTP', protocol_port: 0 }] } });
    expect(await tableCounts(api)).toEqual(before);
  });
});
