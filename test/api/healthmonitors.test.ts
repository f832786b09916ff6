// Health monitors (contract §2.5): CRUD, defaults per type, field rules, pool protocol <-> type,
// one monitor per pool, PUT null semantics, operating status after completion.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';
import { BASE, expectFault, fixtures, ISO_NO_TZ, MISSING_ID, tableCounts, UUID4, type Fixtures, type Obj } from '../helpers/fixtures.ts';

const HMS = `${BASE}/healthmonitors`;
const HM_KEYS = [
  'id', 'name', 'type', 'delay', 'timeout', 'max_retries', 'max_retries_down', 'http_method', 'url_path', 'expected_codes',
  'admin_state_up', 'project_id', 'tenant_id', 'pools', 'provisioning_status', 'operating_status', 'created_at', 'updated_at', 'tags',
  'http_version', 'domain_name',
].sort();

describe('health monitors', () => {
  let api: TestApi;
  let c: Client;
  let f: Fixtures;
  let lb: Obj;
  let pool: Obj; // HTTP pool without monitor: only failing creates target it
  let udpPool: Obj;

  beforeAll(async () => {
    api = await startApi({}, { keystone: true });
    c = api.client('p1:member');
    f = fixtures(api, c);
    lb = await f.lb();
    pool = await f.pool({ loadbalancer_id: lb.id });
    udpPool = await f.pool({ loadbalancer_id: lb.id }, { protocol: 'UDP' });
  });
  afterAll(async () => api?.close());

  const post = (body: Obj, poolId = pool.id) => c.post(HMS, { healthmonitor: { pool_id: poolId, type: 'HTTP', delay: 5, timeout: 3, max_retries: 2, ...body } });
  const freshPool = (extra: Obj = {}) => f.pool({ loadbalancer_id: lb.id }, extra);

  describe('create', () => {
    it('returns 201 with the HTTP defaults, then ACTIVE/ONLINE', async () => {
      const p = await freshPool();
      const res = await post({}, p.id);
      expect(res.status).toBe(201);
      expect(Object.keys(res.body)).toEqual(['healthmonitor']);
      expect(Object.keys(res.body.healthmonitor).sort()).toEqual(HM_KEYS);
      expect(res.body.healthmonitor).toEqual({
        id: expect.stringMatching(UUID4), name: '', type: 'HTTP', delay: 5, timeout: 3, max_retries: 2, max_retries_down: 3,
        http_method: 'GET', url_path: '/', expected_codes: '200', admin_state_up: true, project_id: 'p1', tenant_id: 'p1',
        pools: [{ id: p.id }], provisioning_status: 'PENDING_CREATE', operating_status: 'OFFLINE', created_at: expect.stringMatching(ISO_NO_TZ),
        updated_at: null, tags: [], http_version: null, domain_name: null,
      });
      await api.settle();
      expect(await f.get(`${HMS}/${res.body.healthmonitor.id}`, 'healthmonitor')).toMatchObject({ provisioning_status: 'ACTIVE', operating_status: 'ONLINE' });
      expect((await f.get(`${BASE}/pools/${p.id}`, 'pool')).healthmonitor_id).toBe(res.body.healthmonitor.id);
    });

    it('a disabled monitor is OFFLINE once ACTIVE', async () => {
      const p = await freshPool();
      const hm = await f.healthmonitor(p.id, { admin_state_up: false });
      expect(hm).toMatchObject({ provisioning_status: 'ACTIVE', operating_status: 'OFFLINE' });
    });

    it.each(['PING', 'TCP', 'TLS-HELLO'])('%s monitors have no HTTP attributes', async (type) => {
      const hm = await f.healthmonitor((await freshPool()).id, { type });
      expect(hm).toMatchObject({ type, http_method: null, url_path: null, expected_codes: null });
    });

    it('stores supplied HTTPS values (numeric strings accepted)', async () => {
      const hm = await f.healthmonitor((await freshPool({ protocol: 'HTTPS' })).id, {
        type: 'HTTPS', delay: '10', timeout: '4', max_retries: '10', max_retries_down: 1, http_method: 'HEAD', url_path: '/health?x=1',
        expected_codes: '200-204', name: 'hm', http_version: 1.1, domain_name: 'example.com', tags: ['t'],
      });
      expect(hm).toMatchObject({
        type: 'HTTPS', delay: 10, timeout: 4, max_retries: 10, max_retries_down: 1, http_method: 'HEAD', url_path: '/health?x=1',
        expected_codes: '200-204', name: 'hm', http_version: 1.1, domain_name: 'example.com', tags: ['t'],
      });
    });

    it.each(['200', '200,201', '200, 202', '200-299'])('accepts expected_codes %j', async (codes) => {
      const hm = await f.healthmonitor((await freshPool()).id, { expected_codes: codes });
      expect(hm.expected_codes).toBe(codes);
    });

    it('UDP pools take UDP-CONNECT, SCTP, TCP and HTTP monitors', async () => {
      for (const type of ['UDP-CONNECT', 'SCTP', 'TCP', 'HTTP']) {
        const p = await freshPool({ protocol: 'UDP' });
        expect((await f.healthmonitor(p.id, { type })).type).toBe(type);
      }
    });

    it('409 for a second monitor on a pool', async () => {
      const p = await freshPool();
      await f.healthmonitor(p.id);
      expectFault(await post({ type: 'TCP' }, p.id), 409, 'This pool already has a health monitor');
    });

    it('404 for an unknown pool', async () => {
      expectFault(await post({}, MISSING_ID), 404, `Pool ${MISSING_ID} not found.`);
    });

    it.each([
      ['pool_id', "Invalid input for field/attribute pool_id. Value: 'None'. Mandatory field missing."],
      ['type', "Invalid input for field/attribute type. Value: 'None'. Mandatory field missing."],
      ['delay', "Invalid input for field/attribute delay. Value: 'None'. Mandatory field missing."],
      ['timeout', "Invalid input for field/attribute timeout. Value: 'None'. Mandatory field missing."],
      ['max_retries', "Invalid input for field/attribute max_retries. Value: 'None'. Mandatory field missing."],
    ])('400 without the mandatory %s', async (field, message) => {
      expectFault(await post({ [field]: undefined }), 400, message);
    });

    it.each([
      ['delay', -1, "Invalid input for field/attribute delay. Value: '-1'. Value should be greater or equal to 0"],
      ['timeout', -1, "Invalid input for field/attribute timeout. Value: '-1'. Value should be greater or equal to 0"],
      ['max_retries', 0, "Invalid input for field/attribute max_retries. Value: '0'. Value should be greater or equal to 1"],
      ['max_retries', 11, "Invalid input for field/attribute max_retries. Value: '11'. Value should be lower or equal to 10"],
      ['max_retries_down', 0, "Invalid input for field/attribute max_retries_down. Value: '0'. Value should be greater or equal to 1"],
      ['max_retries_down', 11, "Invalid input for field/attribute max_retries_down. Value: '11'. Value should be lower or equal to 10"],
      ['url_path', 'health', "Invalid input for field/attribute url_path. Value: 'health'. Value must be a valid URL Path string"],
      ['url_path', 'http://example.com/health', "Invalid input for field/attribute url_path. Value: 'http://example.com/health'. Value must be a valid URL Path string"],
      ['url_path', '/a b', "Invalid input for field/attribute url_path. Value: '/a b'. Value must be a valid URL Path string"],
      ['domain_name', '-bad-', /^Invalid input for field\/attribute domain_name\. Value: '-bad-'\. Value should match the pattern /],
      ['domain_name', '', "Invalid input for field/attribute domain_name. Value: ''. Value should have a minimum character requirement of 1"],
      ['pool_id', 'pool', "Invalid input for field/attribute pool_id. Value: 'pool'. Value should be UUID format"],
    ])('400 for %s = %j', async (field, value, message) => {
      expectFault(await post({ [field]: value }), 400, message);
    });

    it.each(['20', '2000', '200-', '200;201', 'abc', '200-204,300'])('400 for expected_codes %j', async (codes) => {
      expectFault(await post({ expected_codes: codes }), 400, new RegExp(`^Invalid input for field/attribute expected_codes\\. Value: '${codes}'\\. Value should match the pattern `));
    });

    it('400 for unknown type, http_method and http_version values', async () => {
      const t = await post({ type: 'ICMP' });
      expectFault(t, 400, /^Invalid input for field\/attribute type\. Value: 'ICMP'\. Value should be one of: /);
      for (const v of ['HTTP', 'HTTPS', 'PING', 'TCP', 'TLS-HELLO', 'UDP-CONNECT', 'SCTP']) expect(t.body.faultstring).toContain(v);
      expectFault(await post({ http_method: 'FETCH' }), 400, /^Invalid input for field\/attribute http_method\. Value: 'FETCH'\. Value should be one of: /);
      expectFault(await post({ http_version: 2 }), 400, /^Invalid input for field\/attribute http_version\. Value: '2'\. Value should be one of: /);
    });

    it.each([
      ['http_method', 'GET'], ['url_path', '/'], ['expected_codes', '200'],
    ])('400 for %s on a TCP monitor', async (field, value) => {
      expectFault(await post({ type: 'TCP', [field]: value }), 400, `${field} is not a valid option for health monitors of type TCP`);
    });

    it('domain_name needs http_version, and http_version 1.1', async () => {
      expectFault(await post({ domain_name: 'example.com' }), 400, "Validation failure: 'http_version' must be specified when 'domain_name' is provided.");
      expectFault(await post({ domain_name: 'example.com', http_version: 1.0 }), 400,
        'http_version 1.0 is not a valid option for health monitors HTTP 1.1 domain name health check');
    });

    it('pool protocol and monitor type must fit', async () => {
      expectFault(await post({ type: 'UDP-CONNECT' }), 400, 'Validation failure: The UDP-CONNECT type is only supported for pools of type UDP/SCTP.');
      expectFault(await post({ type: 'SCTP' }), 400, 'Validation failure: The SCTP type is only supported for pools of type UDP/SCTP.');
      for (const type of ['HTTPS', 'PING', 'TLS-HELLO']) {
        expectFault(await post({ type }, udpPool.id), 400,
          'Validation failure: The associated pool protocol is UDP, so only a UDP-CONNECT/SCTP/TCP/HTTP health monitor is supported.');
      }
    });

    it('UDP-CONNECT delay must reach the configured minimum (3)', async () => {
      expectFault(await post({ type: 'UDP-CONNECT', delay: 2 }, udpPool.id), 400,
        'Validation failure: The request delay value 2 should be larger than 3 for UDP-CONNECT health monitor type.');
    });
  });

  describe('show, list, update, delete', () => {
    it('404 on show/update/delete for an unknown monitor', async () => {
      const msg = `Health Monitor ${MISSING_ID} not found.`;
      expectFault(await c.get(`${HMS}/${MISSING_ID}`), 404, msg);
      expectFault(await c.put(`${HMS}/${MISSING_ID}`, { healthmonitor: { name: 'x' } }), 404, msg);
      expectFault(await c.delete(`${HMS}/${MISSING_ID}`), 404, msg);
    });

    it('lists under "healthmonitors" with "healthmonitors_links"', async () => {
      const hm = await f.healthmonitor((await freshPool()).id);
      const res = await c.get(`${HMS}?pool_id=${hm.pools[0].id}`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ healthmonitors: [hm], healthmonitors_links: [] });
    });

    it('PUT applies values (PENDING_UPDATE in the answer)', async () => {
      const hm = await f.healthmonitor((await freshPool()).id);
      const res = await c.put(`${HMS}/${hm.id}`, {
        healthmonitor: { delay: 9, timeout: 8, max_retries: 7, max_retries_down: 6, http_method: 'POST', url_path: '/x', expected_codes: '201', name: 'n', admin_state_up: false },
      });
      expect(res.status).toBe(200);
      expect(Object.keys(res.body)).toEqual(['healthmonitor']);
      expect(res.body.healthmonitor).toMatchObject({
        delay: 9, timeout: 8, max_retries: 7, max_retries_down: 6, http_method: 'POST', url_path: '/x', expected_codes: '201', name: 'n',
        admin_state_up: false, provisioning_status: 'PENDING_UPDATE',
      });
      await api.settle();
      expect(await f.get(`${HMS}/${hm.id}`, 'healthmonitor')).toMatchObject({ delay: 9, provisioning_status: 'ACTIVE', operating_status: 'OFFLINE' });
    });

    it('PUT null resets http_method GET, url_path /, expected_codes 200, max_retries_down 3, name ""', async () => {
      const hm = await f.healthmonitor((await freshPool()).id, { http_method: 'HEAD', url_path: '/h', expected_codes: '204', max_retries_down: 5, name: 'n' });
      const res = await c.put(`${HMS}/${hm.id}`, { healthmonitor: { http_method: null, url_path: null, expected_codes: null, max_retries_down: null, name: null } });
      expect(res.status).toBe(200);
      expect(res.body.healthmonitor).toMatchObject({ http_method: 'GET', url_path: '/', expected_codes: '200', max_retries_down: 3, name: '' });
      await api.settle();
    });

    it.each(['delay', 'timeout', 'max_retries'])('PUT %s null is refused', async (field) => {
      const hm = await f.healthmonitor((await freshPool()).id);
      expectFault(await c.put(`${HMS}/${hm.id}`, { healthmonitor: { [field]: null } }), 400, `None is not a valid option for ${field}`);
      expect((await f.get(`${HMS}/${hm.id}`, 'healthmonitor')).provisioning_status).toBe('ACTIVE');
    });

    it('PUT HTTP attributes on a TCP monitor are refused (even null)', async () => {
      const hm = await f.healthmonitor((await freshPool()).id, { type: 'TCP' });
      expectFault(await c.put(`${HMS}/${hm.id}`, { healthmonitor: { url_path: '/' } }), 400, 'url_path is not a valid option for health monitors of type TCP');
      expectFault(await c.put(`${HMS}/${hm.id}`, { healthmonitor: { http_method: null } }), 400, 'http_method is not a valid option for health monitors of type TCP');
    });

    it.each(['type', 'pool_id'])('PUT 400 for the create-only attribute %s', async (field) => {
      const hm = await f.healthmonitor((await freshPool()).id);
      expectFault(await c.put(`${HMS}/${hm.id}`, { healthmonitor: { [field]: field === 'type' ? 'TCP' : MISSING_ID } }), 400,
        new RegExp(`^Unknown attribute for argument \\S+: ${field}$`));
    });

    it('PUT domain_name rules use the stored http_version', async () => {
      const hm = await f.healthmonitor((await freshPool()).id, { http_version: 1.1, domain_name: 'example.com' });
      expectFault(await c.put(`${HMS}/${hm.id}`, { healthmonitor: { http_version: 1.0 } }), 400,
        'http_version 1.0 is not a valid option for health monitors HTTP 1.1 domain name health check');
      const plain = await f.healthmonitor((await freshPool()).id);
      expectFault(await c.put(`${HMS}/${plain.id}`, { healthmonitor: { domain_name: 'example.com' } }), 400,
        "Validation failure: 'http_version' must be specified when 'domain_name' is provided.");
      const ok = await c.put(`${HMS}/${hm.id}`, { healthmonitor: { domain_name: 'other.example.org' } });
      expect(ok.body.healthmonitor).toMatchObject({ domain_name: 'other.example.org', http_version: 1.1 });
      await api.settle();
    });

    it('PUT of a UDP-CONNECT delay below the minimum is refused', async () => {
      const hm = await f.healthmonitor((await freshPool({ protocol: 'UDP' })).id, { type: 'UDP-CONNECT', delay: 3 });
      expectFault(await c.put(`${HMS}/${hm.id}`, { healthmonitor: { delay: 1 } }), 400,
        'Validation failure: The request delay value 1 should be larger than 3 for UDP-CONNECT health monitor type.');
      expect((await f.get(`${HMS}/${hm.id}`, 'healthmonitor')).delay).toBe(3);
    });

    it('DELETE 204, then 404; the pool has no monitor any more', async () => {
      const p = await freshPool();
      const hm = await f.healthmonitor(p.id);
      expect((await c.delete(`${HMS}/${hm.id}`)).status).toBe(204);
      await api.settle();
      expectFault(await c.get(`${HMS}/${hm.id}`), 404, `Health Monitor ${hm.id} not found.`);
      expect((await f.get(`${BASE}/pools/${p.id}`, 'pool')).healthmonitor_id).toBeNull();
      expect((await f.healthmonitor(p.id, { type: 'TCP' })).type).toBe('TCP');
    });
  });

  it('refused creates leave the database unchanged', async () => {
    await api.settle();
    const before = await tableCounts(api);
    await post({ type: 'TCP', url_path: '/', tags: ['x'] });
    await post({ type: 'UDP-CONNECT', tags: ['x'] });
    expect(await tableCounts(api)).toEqual(before);
  });
});

describe('health monitors: deployment options', () => {
  let api: TestApi;

  beforeAll(async () => {
    api = await startApi({ api: { allowPingHealthMonitors: false } }, { keystone: true });
  });
  afterAll(async () => api?.close());

  it('PING monitors are refused when allow_ping_health_monitors is off', async () => {
    const c = api.client('p1:member');
    const f = fixtures(api, c);
    const pool = await f.pool({ loadbalancer_id: (await f.lb()).id });
    expectFault(await c.post(HMS, { healthmonitor: { pool_id: pool.id, type: 'PING', delay: 1, timeout: 1, max_retries: 1 } }), 400,
      'The selected type is not allowed in this deployment: PING');
    expect((await f.healthmonitor(pool.id, { type: 'TCP' })).type).toBe('TCP');
  });
});
