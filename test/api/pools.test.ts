// Pools (contract §2.3): CRUD, defaults, binding to a listener, protocol compatibility, session
// persistence rules, TLS defaults, provider 501 for SOURCE_IP_PORT, delete rules.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';
import { BASE, expectFault, fixtures, ISO_NO_TZ, MISSING_ID, tableCounts, UUID4, type Fixtures, type Obj } from '../helpers/fixtures.ts';

const POOLS = `${BASE}/pools`;
const OWASP = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305';

const POOL_KEYS = [
  'id', 'name', 'description', 'provisioning_status', 'operating_status', 'admin_state_up', 'protocol', 'lb_algorithm',
  'session_persistence', 'project_id', 'tenant_id', 'loadbalancers', 'listeners', 'created_at', 'updated_at', 'healthmonitor_id',
  'members', 'tags', 'tls_container_ref', 'ca_tls_container_ref', 'crl_container_ref', 'tls_enabled', 'tls_ciphers', 'tls_versions',
  'alpn_protocols',
].sort();

describe('pools', () => {
  let api: TestApi;
  let c: Client;
  let f: Fixtures;
  let lb: Obj;

  beforeAll(async () => {
    api = await startApi({}, { keystone: true });
    c = api.client('p1:member');
    f = fixtures(api, c);
    lb = await f.lb();
  });
  afterAll(async () => api?.close());

  const post = (body: Obj) => c.post(POOLS, { pool: { loadbalancer_id: lb.id, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN', ...body } });
  const created = async (res: { status: number; body: any }) => {
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    await api.settle();
    return res.body.pool as Obj;
  };
  const remove = async (id: string) => {
    expect((await c.delete(`${POOLS}/${id}`)).status).toBe(204);
    await api.settle();
  };

  describe('create', () => {
    it('returns 201 with every default, then becomes ACTIVE', async () => {
      const own = await f.lb();
      const res = await c.post(POOLS, { pool: { loadbalancer_id: own.id, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN' } });
      expect(res.status).toBe(201);
      expect(Object.keys(res.body)).toEqual(['pool']);
      expect(Object.keys(res.body.pool).sort()).toEqual(POOL_KEYS);
      expect(res.body.pool).toEqual({
        id: expect.stringMatching(UUID4), name: '', description: '', provisioning_status: 'PENDING_CREATE', operating_status: 'OFFLINE',
        admin_state_up: true, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN', session_persistence: null, project_id: 'p1', tenant_id: 'p1',
        loadbalancers: [{ id: own.id }], listeners: [], created_at: expect.stringMatching(ISO_NO_TZ), updated_at: null, healthmonitor_id: null,
        members: [], tags: [], tls_container_ref: null, ca_tls_container_ref: null, crl_container_ref: null, tls_enabled: false,
        tls_ciphers: null, tls_versions: null, alpn_protocols: null,
      });
      await api.settle();
      expect((await f.get(`${POOLS}/${res.body.pool.id}`, 'pool')).provisioning_status).toBe('ACTIVE');
      expect((await f.get(`${BASE}/loadbalancers/${own.id}`, 'loadbalancer')).pools).toEqual([{ id: res.body.pool.id }]);
    });

    it('tls_enabled gets the default ciphers, versions and ALPN protocols', async () => {
      const p = await created(await post({ tls_enabled: true }));
      expect(p).toMatchObject({ tls_enabled: true, tls_ciphers: OWASP, tls_versions: ['TLSv1.2', 'TLSv1.3'], alpn_protocols: ['h2', 'http/1.1', 'http/1.0'] });
      await remove(p.id);
    });

    it('with listener_id: becomes the default pool of the listener', async () => {
      const { lb: own, listener } = await f.lbWithListener();
      const res = await c.post(POOLS, { pool: { listener_id: listener.id, protocol: 'HTTP', lb_algorithm: 'LEAST_CONNECTIONS' } });
      expect(res.status).toBe(201);
      expect(res.body.pool).toMatchObject({ loadbalancers: [{ id: own.id }], listeners: [{ id: listener.id }], lb_algorithm: 'LEAST_CONNECTIONS' });
      await api.settle();
      expect(await f.get(`${BASE}/listeners/${listener.id}`, 'listener')).toMatchObject({ default_pool_id: res.body.pool.id, provisioning_status: 'ACTIVE' });
      expectFault(await c.post(POOLS, { pool: { listener_id: listener.id, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN' } }), 409, 'This listener already has a default pool');
    });

    it('400 without loadbalancer_id and listener_id', async () => {
      expectFault(await c.post(POOLS, { pool: { protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN' } }), 400,
        'Validation failure: Must provide at least one of: loadbalancer_id, listener_id');
    });

    it('404 for an unknown load balancer or listener', async () => {
      expectFault(await post({ loadbalancer_id: MISSING_ID }), 404, `Load Balancer ${MISSING_ID} not found.`);
      expectFault(await c.post(POOLS, { pool: { listener_id: MISSING_ID, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN' } }), 404, `Listener ${MISSING_ID} not found.`);
    });

    it('400 when the listener protocol does not accept the pool protocol', async () => {
      const { listener } = await f.lbWithListener({ protocol: 'UDP' });
      expectFault(await c.post(POOLS, { pool: { listener_id: listener.id, protocol: 'TCP', lb_algorithm: 'ROUND_ROBIN' } }), 400,
        "Validation failure: The pool protocol 'TCP' is invalid while the listener protocol is 'UDP'.");
    });

    it('400 for a PROMETHEUS listener', async () => {
      const { listener } = await f.lbWithListener({ protocol: 'PROMETHEUS', protocol_port: 9100 });
      expectFault(await c.post(POOLS, { pool: { listener_id: listener.id, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN' } }), 400,
        'Protocol PROMETHEUS listeners cannot have child objects.');
    });

    it('501 from the amphora provider for SOURCE_IP_PORT; the no-op provider accepts it', async () => {
      const res = await post({ lb_algorithm: 'SOURCE_IP_PORT' });
      expectFault(res, 501, "Provider 'amphora' does not support a requested option: Amphora provider does not support SOURCE_IP_PORT algorithm.");
      const noop = await f.lb({ provider: 'noop' });
      const ok = await created(await c.post(POOLS, { pool: { loadbalancer_id: noop.id, protocol: 'TCP', lb_algorithm: 'SOURCE_IP_PORT' } }));
      expect(ok.lb_algorithm).toBe('SOURCE_IP_PORT');
    });

    it.each(['TCP', 'HTTP', 'HTTPS', 'PROXY', 'PROXYV2', 'UDP', 'SCTP'])('accepts protocol %s', async (protocol) => {
      const p = await created(await post({ protocol, lb_algorithm: 'SOURCE_IP' }));
      expect(p.protocol).toBe(protocol);
      await remove(p.id);
    });

    it.each([
      ['protocol', "Invalid input for field/attribute protocol. Value: 'None'. Mandatory field missing."],
      ['lb_algorithm', "Invalid input for field/attribute lb_algorithm. Value: 'None'. Mandatory field missing."],
    ])('400 without the mandatory %s', async (field, message) => {
      expectFault(await post({ [field]: undefined }), 400, message);
    });

    it('400 for unknown protocol and algorithm values', async () => {
      const p = await post({ protocol: 'QUIC' });
      expectFault(p, 400, /^Invalid input for field\/attribute protocol\. Value: 'QUIC'\. Value should be one of: /);
      for (const v of ['TCP', 'HTTP', 'HTTPS', 'PROXY', 'PROXYV2', 'UDP', 'SCTP']) expect(p.body.faultstring).toContain(v);
      const a = await post({ lb_algorithm: 'RANDOM' });
      expectFault(a, 400, /^Invalid input for field\/attribute lb_algorithm\. Value: 'RANDOM'\. Value should be one of: /);
      for (const v of ['ROUND_ROBIN', 'LEAST_CONNECTIONS', 'SOURCE_IP', 'SOURCE_IP_PORT']) expect(a.body.faultstring).toContain(v);
    });

    it.each([
      ['name', 'n'.repeat(256), `Invalid input for field/attribute name. Value: '${'n'.repeat(256)}'. Value should have a maximum character requirement of 255`],
      ['tls_enabled', 'perhaps', "Invalid input for field/attribute tls_enabled. Value: 'perhaps'. Value not an unambiguous boolean: perhaps"],
      ['listener_id', 'abc', "Invalid input for field/attribute listener_id. Value: 'abc'. Value should be UUID format"],
      ['crl_container_ref', 'c'.repeat(256), `Invalid input for field/attribute crl_container_ref. Value: '${'c'.repeat(256)}'. Value should have a maximum character requirement of 255`],
    ])('400 for %s = %j', async (field, value, message) => {
      expectFault(await post({ [field]: value }), 400, message);
    });

    it('400 for a revocation list without CA', async () => {
      expectFault(await post({ crl_container_ref: 'crl' }), 400, 'Validation failure: A CA certificate reference is required to specify a revocation list.');
    });

    it('400 for an invalid ALPN protocol id and an empty TLS version list on a TLS pool', async () => {
      expectFault(await post({ alpn_protocols: ['h3'] }), 400, /^Invalid input for field\/attribute alpn_protocols\. Value: .*Value should be a valid ALPN protocol ID$/);
      expectFault(await post({ tls_enabled: true, tls_versions: [] }), 400,
        'Validation failure: Empty TLS version list. Either specify at least one TLS version or remove this parameter to use the default.');
      expectFault(await post({ tls_enabled: true, alpn_protocols: [] }), 400,
        'Validation failure: Empty ALPN protocol list. Either specify at least one ALPN protocol or remove this parameter to use the default.');
    });
  });

  describe('session persistence', () => {
    it('the response always carries the four keys', async () => {
      const p = await created(await post({ session_persistence: { type: 'SOURCE_IP' } }));
      expect(p.session_persistence).toEqual({ type: 'SOURCE_IP', cookie_name: null, persistence_timeout: null, persistence_granularity: null });
      const a = await created(await post({ session_persistence: { type: 'APP_COOKIE', cookie_name: 'JSESSIONID' } }));
      expect(a.session_persistence).toEqual({ type: 'APP_COOKIE', cookie_name: 'JSESSIONID', persistence_timeout: null, persistence_granularity: null });
      await remove(p.id);
      await remove(a.id);
    });

    it('UDP pools accept SOURCE_IP with timeout and granularity', async () => {
      const p = await created(await post({ protocol: 'UDP', session_persistence: { type: 'SOURCE_IP', persistence_timeout: 60, persistence_granularity: '255.255.255.0' } }));
      expect(p.session_persistence).toEqual({ type: 'SOURCE_IP', cookie_name: null, persistence_timeout: 60, persistence_granularity: '255.255.255.0' });
      await remove(p.id);
    });

    it.each([
      [{ type: 'HTTP_COOKIE', cookie_name: 'c' }, 'HTTP', 'Validation failure: Field "cookie_name" can only be specified with session persistence of type "APP_COOKIE".'],
      [{ type: 'APP_COOKIE' }, 'HTTP', 'Validation failure: Field "cookie_name" must be specified when using the "APP_COOKIE" session persistence type.'],
      [{ type: 'APP_COOKIE', cookie_name: 'a(b)' }, 'HTTP', 'Validation failure: Supplied "cookie_name" is invalid.'],
      [{ type: 'APP_COOKIE', cookie_name: 'a=b' }, 'HTTP', 'Validation failure: Supplied "cookie_name" is invalid.'],
      [{ type: 'SOURCE_IP', persistence_timeout: 10 }, 'HTTP', 'Validation failure: persistence_timeout and persistence_granularity is only for UDP and SCTP protocol pools.'],
      [{ type: 'HTTP_COOKIE' }, 'UDP', 'Validation failure: Session persistence of type HTTP_COOKIE is not supported for UDP/SCTP protocol pools.'],
      [{ type: 'APP_COOKIE', cookie_name: 'c' }, 'SCTP', 'Validation failure: Cookie names are not supported for UDP/SCTP pools.'],
      [{ type: 'SOURCE_IP', cookie_name: 'c' }, 'UDP',
        'Validation failure: session_persistence SOURCE_IP type for UDP and SCTP protocols only accepts: type, persistence_timeout, persistence_granularity.'],
      [{ type: 'STICKY' }, 'HTTP', /^Invalid input for field\/attribute type\. Value: 'STICKY'\. Value should be one of: /],
      [{ type: 'APP_COOKIE', cookie_name: 'a b' }, 'HTTP', "Invalid input for field/attribute cookie_name. Value: 'a b'. Value should match the pattern ^[^\\s,;\\\\]+$"],
    ])('400 for %j on a %s pool', async (sp, protocol, message) => {
      expectFault(await post({ protocol, session_persistence: sp }), 400, message);
    });

    it('PUT persistence_timeout on a TCP pool: the PUT wording', async () => {
      const p = await created(await post({ protocol: 'TCP', session_persistence: { type: 'SOURCE_IP' } }));
      expectFault(await c.put(`${POOLS}/${p.id}`, { pool: { session_persistence: { persistence_timeout: 5 } } }), 400,
        'Validation failure: persistence_timeout and persistence_granularity is only for UDP protocol pools.');
      await remove(p.id);
    });

    it('PUT without type keeps the type; null and {} remove it', async () => {
      const p = await created(await post({ session_persistence: { type: 'APP_COOKIE', cookie_name: 'a' } }));
      const put = await c.put(`${POOLS}/${p.id}`, { pool: { session_persistence: { cookie_name: 'b' } } });
      expect(put.status).toBe(200);
      expect(put.body.pool.session_persistence).toEqual({ type: 'APP_COOKIE', cookie_name: 'b', persistence_timeout: null, persistence_granularity: null });
      await api.settle();
      expect((await c.put(`${POOLS}/${p.id}`, { pool: { session_persistence: null } })).body.pool.session_persistence).toBeNull();
      await api.settle();
      await c.put(`${POOLS}/${p.id}`, { pool: { session_persistence: { type: 'SOURCE_IP' } } });
      await api.settle();
      expect((await c.put(`${POOLS}/${p.id}`, { pool: { session_persistence: {} } })).body.pool.session_persistence).toBeNull();
      await api.settle();
      await remove(p.id);
    });
  });

  describe('show, list, update', () => {
    it('404 on show/update/delete for an unknown pool', async () => {
      const msg = `Pool ${MISSING_ID} not found.`;
      expectFault(await c.get(`${POOLS}/${MISSING_ID}`), 404, msg);
      expectFault(await c.put(`${POOLS}/${MISSING_ID}`, { pool: { name: 'x' } }), 404, msg);
      expectFault(await c.delete(`${POOLS}/${MISSING_ID}`), 404, msg);
    });

    it('lists under "pools" with "pools_links"', async () => {
      const own = await f.lb();
      const p = await f.pool({ loadbalancer_id: own.id });
      const res = await c.get(`${POOLS}?loadbalancer_id=${own.id}`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ pools: [await f.get(`${POOLS}/${p.id}`, 'pool')], pools_links: [] });
    });

    it('PUT applies values (PENDING_UPDATE in the answer) and everything is ACTIVE afterwards', async () => {
      const { lb: own, listener } = await f.lbWithListener();
      const p = await f.pool({ listener_id: listener.id });
      const res = await c.put(`${POOLS}/${p.id}`, { pool: { name: 'n', description: 'd', lb_algorithm: 'SOURCE_IP', admin_state_up: false, tags: ['t'] } });
      expect(res.status).toBe(200);
      expect(Object.keys(res.body)).toEqual(['pool']);
      expect(res.body.pool).toMatchObject({ name: 'n', description: 'd', lb_algorithm: 'SOURCE_IP', admin_state_up: false, tags: ['t'], provisioning_status: 'PENDING_UPDATE' });
      await api.settle();
      expect((await f.get(`${BASE}/loadbalancers/${own.id}`, 'loadbalancer')).provisioning_status).toBe('ACTIVE');
      expect((await f.get(`${POOLS}/${p.id}`, 'pool')).provisioning_status).toBe('ACTIVE');
      expect((await f.get(`${BASE}/listeners/${listener.id}`, 'listener')).provisioning_status).toBe('ACTIVE');
    });

    it('PUT null: name/description "", admin_state_up false; lb_algorithm null is refused', async () => {
      const p = await created(await post({ name: 'n', description: 'd' }));
      const res = await c.put(`${POOLS}/${p.id}`, { pool: { name: null, description: null, admin_state_up: null } });
      expect(res.body.pool).toMatchObject({ name: '', description: '', admin_state_up: false });
      await api.settle();
      expectFault(await c.put(`${POOLS}/${p.id}`, { pool: { lb_algorithm: null } }), 400, 'None is not a valid option for lb_algorithm');
      await remove(p.id);
    });

    it('PUT tls_enabled true then tls_ciphers/tls_versions null restore the defaults', async () => {
      const p = await created(await post({}));
      await c.put(`${POOLS}/${p.id}`, { pool: { tls_enabled: true, tls_ciphers: 'ECDHE-RSA-AES128-GCM-SHA256', tls_versions: ['TLSv1.3'] } });
      await api.settle();
      expect(await f.get(`${POOLS}/${p.id}`, 'pool')).toMatchObject({ tls_ciphers: 'ECDHE-RSA-AES128-GCM-SHA256', tls_versions: ['TLSv1.3'] });
      const res = await c.put(`${POOLS}/${p.id}`, { pool: { tls_ciphers: null, tls_versions: null } });
      expect(res.body.pool).toMatchObject({ tls_ciphers: OWASP, tls_versions: ['TLSv1.2', 'TLSv1.3'] });
      await api.settle();
      await remove(p.id);
      const plain = await created(await post({}));
      const reset = await c.put(`${POOLS}/${plain.id}`, { pool: { tls_ciphers: null, tls_versions: null } });
      expect(reset.body.pool).toMatchObject({ tls_enabled: false, tls_ciphers: OWASP, tls_versions: ['TLSv1.2', 'TLSv1.3'] });
      await api.settle();
      await remove(plain.id);
    });

    it('PUT 501 for SOURCE_IP_PORT on the amphora provider, nothing changes', async () => {
      const p = await created(await post({}));
      expectFault(await c.put(`${POOLS}/${p.id}`, { pool: { lb_algorithm: 'SOURCE_IP_PORT' } }), 501,
        "Provider 'amphora' does not support a requested option: Amphora provider does not support SOURCE_IP_PORT algorithm.");
      expect(await f.get(`${POOLS}/${p.id}`, 'pool')).toMatchObject({ lb_algorithm: 'ROUND_ROBIN', provisioning_status: 'ACTIVE' });
      expect((await f.get(`${BASE}/loadbalancers/${lb.id}`, 'loadbalancer')).provisioning_status).toBe('ACTIVE');
      await remove(p.id);
    });

    it.each(['protocol', 'loadbalancer_id', 'listener_id'])('PUT 400 for the create-only attribute %s', async (field) => {
      const p = await created(await post({}));
      expectFault(await c.put(`${POOLS}/${p.id}`, { pool: { [field]: field === 'protocol' ? 'TCP' : MISSING_ID } }), 400,
        new RegExp(`^Unknown attribute for argument \\S+: ${field}$`));
      await remove(p.id);
    });

    it('"listeners" lists default-pool listeners and listeners of enabled policies with rules', async () => {
      const { lb: own, listener } = await f.lbWithListener();
      const other = await f.listener(own.id, { protocol_port: 81 });
      const p = await f.pool({ loadbalancer_id: own.id });
      const policy = await f.l7policy(other.id, { redirect_pool_id: p.id });
      expect((await f.get(`${POOLS}/${p.id}`, 'pool')).listeners).toEqual([]);
      await f.l7rule(policy.id);
      expect((await f.get(`${POOLS}/${p.id}`, 'pool')).listeners).toEqual([{ id: other.id }]);
      await c.put(`${BASE}/listeners/${listener.id}`, { listener: { default_pool_id: p.id } });
      await api.settle();
      expect((await f.get(`${POOLS}/${p.id}`, 'pool')).listeners.map((x: Obj) => x.id).sort()).toEqual([listener.id, other.id].sort());
    });
  });

  describe('delete', () => {
    it('204; deleting a default pool clears the listener default_pool_id; members and monitor go too', async () => {
      const { listener } = await f.lbWithListener();
      const p = await f.pool({ listener_id: listener.id });
      const m = await f.member(p.id);
      const hm = await f.healthmonitor(p.id);
      const res = await c.delete(`${POOLS}/${p.id}`);
      expect(res.status).toBe(204);
      await api.settle();
      expectFault(await c.get(`${POOLS}/${p.id}`), 404, `Pool ${p.id} not found.`);
      expect((await f.get(`${BASE}/listeners/${listener.id}`, 'listener')).default_pool_id).toBeNull();
      expect((await c.get(`${BASE}/healthmonitors/${hm.id}`)).status).toBe(404);
      const { db } = api.service.services;
      expect(await db.read(() => db.models.member.count({ where: { id: m.id } }))).toBe(0);
    });

    it('409 while an L7 policy redirects to the pool', async () => {
      const { listener } = await f.lbWithListener();
      const p = await f.pool({ loadbalancer_id: listener.loadbalancers[0].id });
      const policy = await f.l7policy(listener.id, { action: 'REDIRECT_TO_POOL', redirect_pool_id: p.id });
      expectFault(await c.delete(`${POOLS}/${p.id}`), 409, `Pool ${p.id} is in use by L7 policy ${policy.id}`);
      expect((await f.get(`${POOLS}/${p.id}`, 'pool')).provisioning_status).toBe('ACTIVE');
    });
  });

  it('refused creates leave the database unchanged', async () => {
    await api.settle();
    const before = await tableCounts(api);
    await post({ lb_algorithm: 'SOURCE_IP_PORT', tags: ['a'] });
    await post({ session_persistence: { type: 'APP_COOKIE' }, tags: ['a'] });
    expect(await tableCounts(api)).toEqual(before);
  });
});
