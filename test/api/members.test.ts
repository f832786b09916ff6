// Members (contract §2.4): CRUD under /pools/{pool_id}/members, defaults, field rules, uniqueness,
// reserved addresses, provider 501 for mixed IP versions on UDP pools, and the batch update.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';
import { BASE, expectFault, fixtures, ISO_NO_TZ, MISSING_ID, SUBNET_ID, tableCounts, UUID4, type Fixtures, type Obj } from '../helpers/fixtures.ts';

const MEMBER_KEYS = [
  'id', 'name', 'operating_status', 'provisioning_status', 'admin_state_up', 'address', 'protocol_port', 'weight', 'backup',
  'subnet_id', 'project_id', 'tenant_id', 'created_at', 'updated_at', 'monitor_address', 'monitor_port', 'tags', 'vnic_type',
].sort();

describe('members', () => {
  let api: TestApi;
  let c: Client;
  let f: Fixtures;
  let lb: Obj;
  let pool: Obj;
  let members: string;

  beforeAll(async () => {
    api = await startApi({}, { keystone: true });
    c = api.client('p1:member');
    f = fixtures(api, c);
    lb = await f.lb();
    pool = await f.pool({ loadbalancer_id: lb.id });
    members = `${BASE}/pools/${pool.id}/members`;
  });
  afterAll(async () => api?.close());

  const post = (body: Obj, path = members) => c.post(path, { member: { address: '192.0.2.50', protocol_port: 80, ...body } });
  const settleStatus = async () => {
    await api.settle();
  };

  describe('create', () => {
    it('returns 201 with every default (NO_MONITOR without a health monitor), then ACTIVE', async () => {
      const own = await f.pool({ loadbalancer_id: lb.id });
      const res = await c.post(`${BASE}/pools/${own.id}/members`, { member: { address: '192.0.2.1', protocol_port: 443 } });
      expect(res.status).toBe(201);
      expect(Object.keys(res.body)).toEqual(['member']);
      expect(Object.keys(res.body.member).sort()).toEqual(MEMBER_KEYS);
      expect(res.body.member).toEqual({
        id: expect.stringMatching(UUID4), name: '', operating_status: 'NO_MONITOR', provisioning_status: 'PENDING_CREATE', admin_state_up: true,
        address: '192.0.2.1', protocol_port: 443, weight: 1, backup: false, subnet_id: null, project_id: 'p1', tenant_id: 'p1',
        created_at: expect.stringMatching(ISO_NO_TZ), updated_at: null, monitor_address: null, monitor_port: null, tags: [], vnic_type: 'normal',
      });
      expect(res.body.member).not.toHaveProperty('pool_id');
      await settleStatus();
      const shown = await f.get(`${BASE}/pools/${own.id}/members/${res.body.member.id}`, 'member');
      expect(shown).toMatchObject({ provisioning_status: 'ACTIVE', operating_status: 'NO_MONITOR' });
      expect((await f.get(`${BASE}/pools/${own.id}`, 'pool')).members).toEqual([{ id: res.body.member.id }]);
    });

    it('OFFLINE when the pool has a health monitor', async () => {
      const own = await f.pool({ loadbalancer_id: lb.id });
      await f.healthmonitor(own.id);
      const res = await c.post(`${BASE}/pools/${own.id}/members`, { member: { address: '192.0.2.2', protocol_port: 80 } });
      expect(res.status).toBe(201);
      expect(res.body.member.operating_status).toBe('OFFLINE');
      await api.settle();
    });

    it('stores supplied values (IPv6 address, numeric strings, subnet, monitor)', async () => {
      const res = await post({
        address: '2001:db8::10', protocol_port: '8080', weight: '0', backup: 'true', name: 'm', admin_state_up: false, subnet_id: SUBNET_ID,
        monitor_address: '192.0.2.99', monitor_port: 9000, tags: ['a'],
      });
      expect(res.status).toBe(201);
      expect(res.body.member).toMatchObject({
        address: '2001:db8::10', protocol_port: 8080, weight: 0, backup: true, name: 'm', admin_state_up: false, subnet_id: SUBNET_ID,
        monitor_address: '192.0.2.99', monitor_port: 9000, tags: ['a'],
      });
      await api.settle();
      expect((await c.delete(`${members}/${res.body.member.id}`)).status).toBe(204);
      await api.settle();
    });

    it('409 for the same address and port twice in a pool; other ports and pools are fine', async () => {
      const own = await f.pool({ loadbalancer_id: lb.id });
      const path = `${BASE}/pools/${own.id}/members`;
      await f.member(own.id, { address: '192.0.2.3', protocol_port: 80 });
      expectFault(await post({ address: '192.0.2.3', protocol_port: 80 }, path), 409, 'Another member on this pool is already using ip 192.0.2.3 on protocol_port 80');
      await f.member(own.id, { address: '192.0.2.3', protocol_port: 81 });
      const other = await f.pool({ loadbalancer_id: lb.id });
      await f.member(other.id, { address: '192.0.2.3', protocol_port: 80 });
    });

    it('400 for a reserved address', async () => {
      expectFault(await post({ address: '169.254.169.254' }), 400, '169.254.169.254 is not a valid option for member address');
    });

    it('404 for an unknown pool', async () => {
      expectFault(await post({}, `${BASE}/pools/${MISSING_ID}/members`), 404, `Pool ${MISSING_ID} not found.`);
      expectFault(await c.get(`${BASE}/pools/${MISSING_ID}/members`), 404, `Pool ${MISSING_ID} not found.`);
    });

    it.each([
      ['address', "Invalid input for field/attribute address. Value: 'None'. Mandatory field missing."],
      ['protocol_port', "Invalid input for field/attribute protocol_port. Value: 'None'. Mandatory field missing."],
    ])('400 without the mandatory %s', async (field, message) => {
      expectFault(await post({ [field]: undefined }), 400, message);
    });

    it.each([
      ['address', 'example.com', "Invalid input for field/attribute address. Value: 'example.com'. Value should be IPv4 or IPv6 format"],
      ['protocol_port', 0, "Invalid input for field/attribute protocol_port. Value: '0'. Value should be greater or equal to 1"],
      ['protocol_port', 65536, "Invalid input for field/attribute protocol_port. Value: '65536'. Value should be lower or equal to 65535"],
      ['weight', -1, "Invalid input for field/attribute weight. Value: '-1'. Value should be greater or equal to 0"],
      ['weight', 257, "Invalid input for field/attribute weight. Value: '257'. Value should be lower or equal to 256"],
      ['monitor_port', 0, "Invalid input for field/attribute monitor_port. Value: '0'. Value should be greater or equal to 1"],
      ['monitor_port', 65536, "Invalid input for field/attribute monitor_port. Value: '65536'. Value should be lower or equal to 65535"],
      ['monitor_address', '1.2.3', "Invalid input for field/attribute monitor_address. Value: '1.2.3'. Value should be IPv4 or IPv6 format"],
      ['subnet_id', 'subnet', "Invalid input for field/attribute subnet_id. Value: 'subnet'. Value should be UUID format"],
      ['backup', 'perhaps', "Invalid input for field/attribute backup. Value: 'perhaps'. Value not an unambiguous boolean: perhaps"],
      ['name', 'n'.repeat(256), `Invalid input for field/attribute name. Value: '${'n'.repeat(256)}'. Value should have a maximum character requirement of 255`],
    ])('400 for %s = %j', async (field, value, message) => {
      expectFault(await post({ [field]: value }), 400, message);
    });

    it('400 for attributes members do not have (description, pool_id)', async () => {
      expectFault(await post({ description: 'x' }), 400, /^Unknown attribute for argument \S+: description$/);
      expectFault(await post({ pool_id: pool.id }), 400, /^Unknown attribute for argument \S+: pool_id$/);
    });

    it('400 for request_sriov without a flavor allowing it', async () => {
      expectFault(await post({ request_sriov: true }), 400, 'Validation failure: The load balancer flavor does not allow SR-IOV member ports.');
    });

    it('501 on a UDP pool behind a listener for a member whose IP version no VIP has', async () => {
      const udpListener = await f.listener(lb.id, { protocol: 'UDP', protocol_port: 53 });
      const udp = await f.pool({ listener_id: udpListener.id }, { protocol: 'UDP' });
      expectFault(await post({ address: '2001:db8::1' }, `${BASE}/pools/${udp.id}/members`), 501,
        "Provider 'amphora' does not support a requested option: This provider doesn't support mixing IPv4 and IPv6 addresses for its VIP and members in UDP load balancers.");
      expectFault(await c.put(`${BASE}/pools/${udp.id}/members`, { members: [{ address: '2001:db8::2', protocol_port: 53 }] }), 501,
        "Provider 'amphora' does not support a requested option: This provider doesn't support mixing IPv4 and IPv6 addresses for its VIP and members in UDP load balancers.");
      const ok = await f.member(udp.id, { address: '192.0.2.77' });
      expect(ok.address).toBe('192.0.2.77');
    });

    it('a standalone UDP pool (no listener) is not checked, as in Octavia', async () => {
      const udp = await f.pool({ loadbalancer_id: lb.id }, { protocol: 'UDP' });
      expect((await f.member(udp.id, { address: '2001:db8::3' })).address).toBe('2001:db8::3');
    });
  });

  describe('show, list, update, delete', () => {
    it('404 for an unknown member and for a member of another pool', async () => {
      const other = await f.pool({ loadbalancer_id: lb.id });
      const m = await f.member(other.id, { address: '192.0.2.4' });
      for (const id of [MISSING_ID, m.id]) {
        expectFault(await c.get(`${members}/${id}`), 404, `Member ${id} not found.`);
        expectFault(await c.put(`${members}/${id}`, { member: { name: 'x' } }), 404, `Member ${id} not found.`);
        expectFault(await c.delete(`${members}/${id}`), 404, `Member ${id} not found.`);
      }
      expect((await f.get(`${BASE}/pools/${other.id}/members/${m.id}`, 'member')).provisioning_status).toBe('ACTIVE');
    });

    it('lists the pool\'s members under "members" with "members_links"', async () => {
      const own = await f.pool({ loadbalancer_id: lb.id });
      const a = await f.member(own.id, { address: '192.0.2.5' });
      const b = await f.member(own.id, { address: '192.0.2.6' });
      await f.member(pool.id, { address: '192.0.2.7' });
      const res = await c.get(`${BASE}/pools/${own.id}/members?sort=address`);
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['members', 'members_links']);
      expect(res.body.members.map((m: Obj) => m.id)).toEqual([a.id, b.id]);
      expect(res.body.members[0]).toEqual(a);
      const byDefault = (await c.get(`${BASE}/pools/${own.id}/members`)).body.members as Obj[];
      const expected = [a, b].sort((x, y) => x.created_at.localeCompare(y.created_at) || x.id.localeCompare(y.id)).map((m) => m.id);
      expect(byDefault.map((m) => m.id)).toEqual(expected);
    });

    it('PUT applies values; null resets weight to 1, backup and admin_state_up to false, name to ""', async () => {
      const m = await f.member(pool.id, { address: '192.0.2.8', weight: 5, backup: true, name: 'n', monitor_port: 81, monitor_address: '192.0.2.9' });
      const path = `${members}/${m.id}`;
      const res = await c.put(path, { member: { weight: 7, name: 'renamed', monitor_port: '82' } });
      expect(res.status).toBe(200);
      expect(Object.keys(res.body)).toEqual(['member']);
      expect(res.body.member).toMatchObject({ weight: 7, name: 'renamed', monitor_port: 82, backup: true, provisioning_status: 'PENDING_UPDATE' });
      await api.settle();
      const reset = await c.put(path, { member: { weight: null, backup: null, name: null, admin_state_up: null, monitor_port: null, monitor_address: null } });
      expect(reset.body.member).toMatchObject({ weight: 1, backup: false, name: '', admin_state_up: false, monitor_port: null, monitor_address: null });
      await api.settle();
      expect(await f.get(path, 'member')).toMatchObject({ weight: 1, backup: false, provisioning_status: 'ACTIVE' });
      expect((await f.get(`${BASE}/pools/${pool.id}`, 'pool')).provisioning_status).toBe('ACTIVE');
    });

    it.each(['address', 'protocol_port', 'subnet_id', 'request_sriov'])('PUT 400 for the create-only attribute %s', async (field) => {
      const m = await f.member(pool.id, { address: '192.0.2.11', protocol_port: 1000 + field.length });
      const value = field === 'address' ? '192.0.2.12' : field === 'protocol_port' ? 90 : field === 'subnet_id' ? SUBNET_ID : true;
      expectFault(await c.put(`${members}/${m.id}`, { member: { [field]: value } }), 400, new RegExp(`^Unknown attribute for argument \\S+: ${field}$`));
      expect((await c.delete(`${members}/${m.id}`)).status).toBe(204);
      await api.settle();
    });

    it('PUT weight out of range is 400', async () => {
      const m = await f.member(pool.id, { address: '192.0.2.13' });
      expectFault(await c.put(`${members}/${m.id}`, { member: { weight: 300 } }), 400, "Invalid input for field/attribute weight. Value: '300'. Value should be lower or equal to 256");
    });

    it('DELETE 204, then 404; the pool no longer lists it', async () => {
      const m = await f.member(pool.id, { address: '192.0.2.14' });
      expect((await c.delete(`${members}/${m.id}`)).status).toBe(204);
      await api.settle();
      expectFault(await c.get(`${members}/${m.id}`), 404, `Member ${m.id} not found.`);
      expect((await f.get(`${BASE}/pools/${pool.id}`, 'pool')).members).not.toContainEqual({ id: m.id });
    });

    it('deleting the health monitor turns the members NO_MONITOR', async () => {
      const own = await f.pool({ loadbalancer_id: lb.id });
      const hm = await f.healthmonitor(own.id);
      const m = await f.member(own.id, { address: '192.0.2.15' });
      expect(m.operating_status).toBe('OFFLINE');
      expect((await c.delete(`${BASE}/healthmonitors/${hm.id}`)).status).toBe(204);
      await api.settle();
      expect((await f.get(`${BASE}/pools/${own.id}/members/${m.id}`, 'member')).operating_status).toBe('NO_MONITOR');
    });
  });

  describe('batch update (PUT on the collection)', () => {
    const list = async (poolId: string) => ((await c.get(`${BASE}/pools/${poolId}/members`)).body.members as Obj[]);
    const byAddress = (ms: Obj[]) => Object.fromEntries(ms.map((m) => [`${m.address}:${m.protocol_port}`, m]));

    it('creates the new, updates the matched and deletes the missing members; 202 with an empty body', async () => {
      const own = await f.pool({ loadbalancer_id: lb.id });
      const keep = await f.member(own.id, { address: '192.0.2.20', weight: 3 });
      const gone = await f.member(own.id, { address: '192.0.2.21' });
      const res = await c.put(`${BASE}/pools/${own.id}/members`, {
        members: [
          { address: '192.0.2.20', protocol_port: 80, weight: 9, name: 'kept' },
          { address: '192.0.2.22', protocol_port: 80, name: 'new', tags: ['n'] },
        ],
      });
      expect(res.status).toBe(202);
      expect(res.body).toBeNull();
      await api.settle();
      const after = byAddress(await list(own.id));
      expect(Object.keys(after).sort()).toEqual(['192.0.2.20:80', '192.0.2.22:80']);
      expect(after['192.0.2.20:80']).toMatchObject({ id: keep.id, weight: 9, name: 'kept', provisioning_status: 'ACTIVE' });
      expect(after['192.0.2.22:80']).toMatchObject({ name: 'new', weight: 1, tags: ['n'], provisioning_status: 'ACTIVE', operating_status: 'NO_MONITOR' });
      expect(Object.values(after).map((m) => m.id)).not.toContain(gone.id);
      expect((await f.get(`${BASE}/pools/${own.id}`, 'pool')).provisioning_status).toBe('ACTIVE');
    });

    it('additive_only=true keeps members that are not in the request', async () => {
      const own = await f.pool({ loadbalancer_id: lb.id });
      const a = await f.member(own.id, { address: '192.0.2.30' });
      const res = await c.put(`${BASE}/pools/${own.id}/members?additive_only=true`, { members: [{ address: '192.0.2.31', protocol_port: 80 }] });
      expect(res.status).toBe(202);
      await api.settle();
      const after = byAddress(await list(own.id));
      expect(Object.keys(after).sort()).toEqual(['192.0.2.30:80', '192.0.2.31:80']);
      expect(after['192.0.2.30:80']!.id).toBe(a.id);
    });

    it('an empty list deletes every member', async () => {
      const own = await f.pool({ loadbalancer_id: lb.id });
      await f.member(own.id, { address: '192.0.2.40' });
      await f.member(own.id, { address: '192.0.2.41' });
      expect((await c.put(`${BASE}/pools/${own.id}/members`, { members: [] })).status).toBe(202);
      await api.settle();
      expect(await list(own.id)).toEqual([]);
    });

    it('400 when the same member appears twice; nothing changes', async () => {
      const own = await f.pool({ loadbalancer_id: lb.id });
      const a = await f.member(own.id, { address: '192.0.2.50', weight: 2 });
      const res = await c.put(`${BASE}/pools/${own.id}/members`, {
        members: [{ address: '192.0.2.50', protocol_port: 80, weight: 3 }, { address: '192.0.2.50', protocol_port: 80, weight: 4 }],
      });
      expectFault(res, 400, 'Validation failure: Member must be updated only once in the same request.');
      expect(await list(own.id)).toEqual([a]);
      expect((await f.get(`${BASE}/pools/${own.id}`, 'pool')).provisioning_status).toBe('ACTIVE');
    });

    it('a request that changes nothing is a 202 no-op', async () => {
      const own = await f.pool({ loadbalancer_id: lb.id });
      const res = await c.put(`${BASE}/pools/${own.id}/members`, { members: [] });
      expect(res.status).toBe(202);
      expect((await f.get(`${BASE}/pools/${own.id}`, 'pool')).provisioning_status).toBe('ACTIVE');
      expect((await f.get(`${BASE}/loadbalancers/${lb.id}`, 'loadbalancer')).provisioning_status).toBe('ACTIVE');
    });

    it('validates every entry like a POST, and reserved addresses', async () => {
      const own = await f.pool({ loadbalancer_id: lb.id });
      const path = `${BASE}/pools/${own.id}/members`;
      expectFault(await c.put(path, { members: [{ address: '192.0.2.60' }] }), 400, "Invalid input for field/attribute protocol_port. Value: 'None'. Mandatory field missing.");
      expectFault(await c.put(path, { members: [{ address: 'bad', protocol_port: 80 }] }), 400, "Invalid input for field/attribute address. Value: 'bad'. Value should be IPv4 or IPv6 format");
      expectFault(await c.put(path, { members: [{ address: '169.254.169.254', protocol_port: 80 }] }), 400, '169.254.169.254 is not a valid option for member address');
      expectFault(await c.put(path, { members: [{ address: '192.0.2.60', protocol_port: 80, color: 'red' }] }), 400, /^Unknown attribute for argument \S+: color$/);
      expectFault(await c.put(path, { member: [] }), 400);
      expect(await list(own.id)).toEqual([]);
    });

    it('404 for an unknown pool', async () => {
      expectFault(await c.put(`${BASE}/pools/${MISSING_ID}/members`, { members: [] }), 404, `Pool ${MISSING_ID} not found.`);
    });
  });

  it('refused requests leave the database unchanged', async () => {
    await api.settle();
    const before = await tableCounts(api);
    await post({ address: '169.254.169.254', tags: ['x'] });
    await post({ weight: 1000, tags: ['x'] });
    await c.put(members, { members: [{ address: '192.0.2.200', protocol_port: 80, tags: ['x'] }, { address: 'x', protocol_port: 80 }] });
    expect(await tableCounts(api)).toEqual(before);
  });
});
