// Listeners (contract §2.2): CRUD, defaults, field rules, cross-field rules (port uniqueness per
// L4 protocol, TLS, insert headers, HSTS, allowed CIDRs, default pool), PUT null resets, stats.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';
import { BASE, expectFault, fixtures, ISO_NO_TZ, MISSING_ID, tableCounts, UUID4, type Fixtures, type Obj } from '../helpers/fixtures.ts';

const LISTENERS = `${BASE}/listeners`;

const LISTENER_KEYS = [
  'id', 'name', 'description', 'provisioning_status', 'operating_status', 'admin_state_up', 'protocol', 'protocol_port',
  'connection_limit', 'default_tls_container_ref', 'sni_container_refs', 'project_id', 'tenant_id', 'default_pool_id',
  'l7policies', 'insert_headers', 'created_at', 'updated_at', 'loadbalancers', 'timeout_client_data', 'timeout_member_connect',
  'timeout_member_data', 'timeout_tcp_inspect', 'tags', 'client_ca_tls_container_ref', 'client_authentication',
  'client_crl_container_ref', 'allowed_cidrs', 'tls_ciphers', 'tls_versions', 'alpn_protocols', 'hsts_max_age',
  'hsts_include_subdomains', 'hsts_preload',
].sort();

describe('listeners', () => {
  let api: TestApi;
  let c: Client;
  let f: Fixtures;
  let lb: Obj; // shared ACTIVE load balancer for create-validation tests (nothing is created on it by failing requests)

  beforeAll(async () => {
    api = await startApi({}, { keystone: true });
    c = api.client('p1:member');
    f = fixtures(api, c);
    lb = await f.lb();
  });
  afterAll(async () => api?.close());

  const post = (body: Obj) => c.post(LISTENERS, { listener: { loadbalancer_id: lb.id, protocol: 'HTTP', protocol_port: 8000, ...body } });

  describe('create', () => {
    it('returns 201 with every default, then becomes ACTIVE', async () => {
      const own = await f.lb();
      const res = await c.post(LISTENERS, { listener: { loadbalancer_id: own.id, protocol: 'HTTP', protocol_port: 80 } });
      expect(res.status).toBe(201);
      expect(Object.keys(res.body)).toEqual(['listener']);
      const l = res.body.listener;
      expect(Object.keys(l).sort()).toEqual(LISTENER_KEYS);
      expect(l).toEqual({
        id: expect.stringMatching(UUID4), name: '', description: '', provisioning_status: 'PENDING_CREATE', operating_status: 'OFFLINE',
        admin_state_up: true, protocol: 'HTTP', protocol_port: 80, connection_limit: -1, default_tls_container_ref: null,
        sni_container_refs: [], project_id: 'p1', tenant_id: 'p1', default_pool_id: null, l7policies: [], insert_headers: {},
        created_at: expect.stringMatching(ISO_NO_TZ), updated_at: null, loadbalancers: [{ id: own.id }],
        timeout_client_data: 50000, timeout_member_connect: 5000, timeout_member_data: 50000, timeout_tcp_inspect: 0, tags: [],
        client_ca_tls_container_ref: null, client_authentication: 'NONE', client_crl_container_ref: null, allowed_cidrs: null,
        tls_ciphers: null, tls_versions: null, alpn_protocols: null, hsts_max_age: null, hsts_include_subdomains: false, hsts_preload: false,
      });
      await api.settle();
      expect(await f.get(`${LISTENERS}/${l.id}`, 'listener')).toMatchObject({ provisioning_status: 'ACTIVE', operating_status: 'OFFLINE', updated_at: expect.stringMatching(ISO_NO_TZ) });
      expect((await f.get(`${BASE}/loadbalancers/${own.id}`, 'loadbalancer')).listeners).toEqual([{ id: l.id }]);
    });

    it('stores supplied values; integers accept numeric strings (python-octaviaclient sends connection_limit as a string)', async () => {
      const res = await post({
        protocol_port: '8001', connection_limit: '-1', name: 'n', description: 'd', admin_state_up: false, timeout_client_data: '1000',
        timeout_member_connect: 0, timeout_member_data: 2073600000, timeout_tcp_inspect: 7, tags: ['x'], insert_headers: { 'X-Forwarded-For': 'true' },
      });
      expect(res.status).toBe(201);
      expect(res.body.listener).toMatchObject({
        protocol_port: 8001, connection_limit: -1, name: 'n', description: 'd', admin_state_up: false, timeout_client_data: 1000,
        timeout_member_connect: 0, timeout_member_data: 2073600000, timeout_tcp_inspect: 7, tags: ['x'], insert_headers: { 'X-Forwarded-For': 'true' },
      });
      await api.settle();
      const l = await f.get(`${LISTENERS}/${res.body.listener.id}`, 'listener');
      expect(l.admin_state_up).toBe(false);
      expect((await c.delete(`${LISTENERS}/${l.id}`)).status).toBe(204);
      await api.settle();
    });

    it.each(['TCP', 'UDP', 'SCTP', 'PROMETHEUS', 'HTTPS'])('accepts protocol %s', async (protocol) => {
      const res = await post({ protocol, protocol_port: 9100 });
      expect(res.status).toBe(201);
      expect(res.body.listener.protocol).toBe(protocol);
      await api.settle();
      expect((await c.delete(`${LISTENERS}/${res.body.listener.id}`)).status).toBe(204);
      await api.settle();
    });

    it('normalises allowed_cidrs; [] is shown as null', async () => {
      const res = await post({ protocol_port: 8002, allowed_cidrs: ['192.0.2.5/24', '203.0.113.0/25'] });
      expect(res.status).toBe(201);
      expect(res.body.listener.allowed_cidrs).toEqual(['192.0.2.0/24', '203.0.113.0/25']);
      await api.settle();
      const put = await c.put(`${LISTENERS}/${res.body.listener.id}`, { listener: { allowed_cidrs: [] } });
      expect(put.body.listener.allowed_cidrs).toBeNull();
      await api.settle();
      expect((await c.delete(`${LISTENERS}/${res.body.listener.id}`)).status).toBe(204);
      await api.settle();
    });

    it('404 for an unknown load balancer', async () => {
      expectFault(await post({ loadbalancer_id: MISSING_ID }), 404, `Load Balancer ${MISSING_ID} not found.`);
    });

    it.each([
      ['loadbalancer_id', "Invalid input for field/attribute loadbalancer_id. Value: 'None'. Mandatory field missing."],
      ['protocol', "Invalid input for field/attribute protocol. Value: 'None'. Mandatory field missing."],
      ['protocol_port', "Invalid input for field/attribute protocol_port. Value: 'None'. Mandatory field missing."],
    ])('400 without the mandatory %s', async (field, message) => {
      const body: Obj = { loadbalancer_id: lb.id, protocol: 'HTTP', protocol_port: 8003 };
      delete body[field];
      expectFault(await c.post(LISTENERS, { listener: body }), 400, message);
    });

    it.each([
      ['protocol_port', 0, "Invalid input for field/attribute protocol_port. Value: '0'. Value should be greater or equal to 1"],
      ['protocol_port', 65536, "Invalid input for field/attribute protocol_port. Value: '65536'. Value should be lower or equal to 65535"],
      ['connection_limit', -2, "Invalid input for field/attribute connection_limit. Value: '-2'. Value should be greater or equal to -1"],
      ['timeout_client_data', -1, "Invalid input for field/attribute timeout_client_data. Value: '-1'. Value should be greater or equal to 0"],
      ['timeout_member_connect', 2073600001, "Invalid input for field/attribute timeout_member_connect. Value: '2073600001'. Value should be lower or equal to 2073600000"],
      ['timeout_member_data', 2073600001, "Invalid input for field/attribute timeout_member_data. Value: '2073600001'. Value should be lower or equal to 2073600000"],
      ['timeout_tcp_inspect', -5, "Invalid input for field/attribute timeout_tcp_inspect. Value: '-5'. Value should be greater or equal to 0"],
      ['hsts_max_age', -1, "Invalid input for field/attribute hsts_max_age. Value: '-1'. Value should be greater or equal to 0"],
      ['name', 'n'.repeat(256), `Invalid input for field/attribute name. Value: '${'n'.repeat(256)}'. Value should have a maximum character requirement of 255`],
      ['description', 'd'.repeat(256), `Invalid input for field/attribute description. Value: '${'d'.repeat(256)}'. Value should have a maximum character requirement of 255`],
      ['default_tls_container_ref', 'r'.repeat(256), `Invalid input for field/attribute default_tls_container_ref. Value: '${'r'.repeat(256)}'. Value should have a maximum character requirement of 255`],
      ['tls_ciphers', 'c'.repeat(2049), `Invalid input for field/attribute tls_ciphers. Value: '${'c'.repeat(2049)}'. Value should have a maximum character requirement of 2048`],
      ['default_pool_id', 'pool-1', "Invalid input for field/attribute default_pool_id. Value: 'pool-1'. Value should be UUID format"],
      ['loadbalancer_id', 'lb-1', "Invalid input for field/attribute loadbalancer_id. Value: 'lb-1'. Value should be UUID format"],
      ['hsts_preload', 'sometimes', "Invalid input for field/attribute hsts_preload. Value: 'sometimes'. Value not an unambiguous boolean: sometimes"],
    ])('400 for %s = %j', async (field, value, message) => {
      expectFault(await post({ [field]: value }), 400, message);
    });

    it('400 for an unknown protocol and client_authentication, naming the allowed values', async () => {
      const p = await post({ protocol: 'FTP' });
      expectFault(p, 400, /^Invalid input for field\/attribute protocol\. Value: 'FTP'\. Value should be one of: /);
      for (const v of ['HTTP', 'HTTPS', 'TCP', 'TERMINATED_HTTPS', 'UDP', 'SCTP', 'PROMETHEUS']) expect(p.body.faultstring).toContain(v);
      const a = await post({ client_authentication: 'SOMETIMES' });
      expectFault(a, 400, /^Invalid input for field\/attribute client_authentication\. Value: 'SOMETIMES'\. Value should be one of: /);
      for (const v of ['NONE', 'OPTIONAL', 'MANDATORY']) expect(a.body.faultstring).toContain(v);
    });

    it('400 for an invalid CIDR and an invalid ALPN protocol id', async () => {
      expectFault(await post({ allowed_cidrs: ['192.0.2.0/33'] }), 400, /^Invalid input for field\/attribute allowed_cidrs\. Value: .*Value should be IPv4 or IPv6 CIDR format$/);
      expectFault(await post({ alpn_protocols: ['spdy/3'] }), 400, /^Invalid input for field\/attribute alpn_protocols\. Value: .*Value should be a valid ALPN protocol ID$/);
    });

    it('400 for a CIDR whose IP version matches no VIP', async () => {
      expectFault(await post({ allowed_cidrs: ['2001:db8::/64'] }), 400,
        "Validation failure: CIDR 2001:db8::/64 IP version incompatible with all VIPs ['198.51.100.1'] IP version.");
    });

    it('400 for allowed_cidrs on a load balancer with custom VIP security groups', async () => {
      const sgLb = await f.lb({ vip_sg_ids: ['d1d1d1d1-e2e2-4f3f-8a4a-b5b5b5b5b5b5'] });
      expectFault(await c.post(LISTENERS, { listener: { loadbalancer_id: sgLb.id, protocol: 'TCP', protocol_port: 22, allowed_cidrs: ['192.0.2.0/24'] } }), 400,
        'Validation failure: Allowed CIDRs are not allowed when using custom VIP Security Groups.');
    });

    it('400 for an unknown attribute, and for the response-only ones', async () => {
      expectFault(await post({ color: 'red' }), 400, /^Unknown attribute for argument \S+: color$/);
      expectFault(await post({ operating_status: 'ONLINE' }), 400, /^Unknown attribute for argument \S+: operating_status$/);
    });

    it('accepts and ignores project_id (children inherit the load balancer project)', async () => {
      const res = await post({ protocol_port: 8004, project_id: 'someone-else' });
      expect(res.status).toBe(201);
      expect(res.body.listener.project_id).toBe('p1');
      await api.settle();
      expect((await c.delete(`${LISTENERS}/${res.body.listener.id}`)).status).toBe(204);
      await api.settle();
    });
  });

  describe('port uniqueness per L4 protocol', () => {
    it('409 for HTTP and TCP on the same port; UDP and SCTP may share it', async () => {
      const own = await f.lb();
      await f.listener(own.id, { protocol: 'HTTP', protocol_port: 80 });
      const tcp = await c.post(LISTENERS, { listener: { loadbalancer_id: own.id, protocol: 'TCP', protocol_port: 80 } });
      expectFault(tcp, 409, 'Another Listener on this Load Balancer is already using protocol HTTP and protocol_port 80');
      const https = await c.post(LISTENERS, { listener: { loadbalancer_id: own.id, protocol: 'PROMETHEUS', protocol_port: '80' } });
      expectFault(https, 409, 'Another Listener on this Load Balancer is already using protocol HTTP and protocol_port 80');
      await f.listener(own.id, { protocol: 'UDP', protocol_port: 80 });
      await f.listener(own.id, { protocol: 'SCTP', protocol_port: 80 });
      expectFault(await c.post(LISTENERS, { listener: { loadbalancer_id: own.id, protocol: 'UDP', protocol_port: 80 } }), 409,
        'Another Listener on this Load Balancer is already using protocol UDP and protocol_port 80');
      expect((await f.get(`${BASE}/loadbalancers/${own.id}`, 'loadbalancer')).listeners).toHaveLength(3);
    });

    it('the same port on another load balancer is fine', async () => {
      const a = await f.lb();
      const b = await f.lb();
      await f.listener(a.id, { protocol_port: 443 });
      await f.listener(b.id, { protocol_port: 443 });
    });
  });

  describe('protocol rules', () => {
    it('insert_headers only on HTTP/TERMINATED_HTTPS listeners', async () => {
      expectFault(await post({ protocol: 'TCP', insert_headers: { 'X-Forwarded-For': 'true' } }), 400,
        'insert-headers is not a valid option for a TCP protocol listener.');
      expectFault(await post({ protocol: 'UDP', insert_headers: { 'X-Forwarded-For': 'true' } }), 400,
        'insert-headers is not a valid option for a UDP protocol listener.');
    });

    it('insert_headers: unknown header names and SSL headers on HTTP are refused', async () => {
      expectFault(await post({ insert_headers: { 'X-Bogus': 'true' } }), 400, "dict_keys(['X-Bogus']) is not a valid option for insert_headers");
      expectFault(await post({ insert_headers: { 'X-SSL-Client-CN': 'true', 'X-Real-IP': 'true' } }), 400,
        "['X-SSL-Client-CN'] is not a valid option for HTTP protocol listener.");
    });

    it('UDP/SCTP listeners carry no TLS', async () => {
      expectFault(await post({ protocol: 'UDP', default_tls_container_ref: 'ref' }), 400, 'Validation failure: UDP protocol listener does not support TLS.');
      expectFault(await post({ protocol: 'SCTP', sni_container_refs: ['ref'] }), 400, 'Validation failure: SCTP protocol listener does not support TLS.');
    });

    it('certificate references only on TLS-offload listeners', async () => {
      expectFault(await post({ default_tls_container_ref: 'ref' }), 400, 'Validation failure: Certificate container references are not allowed on HTTP protocol listeners.');
      expectFault(await post({ protocol: 'TCP', client_ca_tls_container_ref: 'ref' }), 400,
        'Validation failure: Certificate container references are not allowed on TCP protocol listeners.');
    });

    it('TERMINATED_HTTPS needs a certificate', async () => {
      expectFault(await post({ protocol: 'TERMINATED_HTTPS', protocol_port: 443 }), 400,
        'Validation failure: An SNI or default certificate container reference must be provided for TERMINATED_HTTPS protocol listeners.');
    });

    it('client authentication needs a CA; a CRL needs a CA', async () => {
      expectFault(await post({ client_authentication: 'MANDATORY' }), 400,
        'Validation failure: Client authentication setting MANDATORY requires a client CA container reference.');
      expectFault(await post({ client_crl_container_ref: 'crl' }), 400,
        'Validation failure: A client authentication CA reference is required to specify a client authentication revocation list.');
    });

    it('HSTS only for TERMINATED_HTTPS; include_subdomains/preload need max_age', async () => {
      expectFault(await post({ hsts_max_age: 3600 }), 400, 'Validation failure: The HSTS feature can only be used for listeners using the TERMINATED_HTTPS protocol.');
      expectFault(await post({ hsts_preload: true }), 400,
        'Validation failure: HSTS configuration options hsts_include_subdomains and hsts_preload only make sense if hsts_max_age is set as well.');
      expectFault(await post({ hsts_include_subdomains: true }), 400,
        'Validation failure: HSTS configuration options hsts_include_subdomains and hsts_preload only make sense if hsts_max_age is set as well.');
    });

    it('PROMETHEUS listeners cannot have a default pool', async () => {
      const pool = await f.pool({ loadbalancer_id: lb.id });
      expectFault(await post({ protocol: 'PROMETHEUS', protocol_port: 9101, default_pool_id: pool.id }), 400, 'Protocol PROMETHEUS listeners cannot have child objects.');
      expect((await c.delete(`${BASE}/pools/${pool.id}`)).status).toBe(204);
      await api.settle();
    });
  });

  describe('default pool', () => {
    it('binds a pool of the same load balancer; the pool lists the listener', async () => {
      const own = await f.lb();
      const pool = await f.pool({ loadbalancer_id: own.id });
      const l = await f.listener(own.id, { default_pool_id: pool.id });
      expect(l.default_pool_id).toBe(pool.id);
      expect((await f.get(`${BASE}/pools/${pool.id}`, 'pool')).listeners).toEqual([{ id: l.id }]);
    });

    it('404 for a pool of another load balancer, 400 for an incompatible pool protocol', async () => {
      const other = await f.lb();
      const foreign = await f.pool({ loadbalancer_id: other.id });
      expectFault(await post({ default_pool_id: foreign.id }), 404, `Pool ${foreign.id} not found.`);
      const tcpPool = await f.pool({ loadbalancer_id: lb.id }, { protocol: 'TCP' });
      expectFault(await post({ default_pool_id: tcpPool.id }), 400, "Validation failure: The pool protocol 'TCP' is invalid while the listener protocol is 'HTTP'.");
      expectFault(await post({ protocol: 'UDP', default_pool_id: tcpPool.id }), 400, "Validation failure: The pool protocol 'TCP' is invalid while the listener protocol is 'UDP'.");
      expect((await c.delete(`${BASE}/pools/${tcpPool.id}`)).status).toBe(204);
      await api.settle();
    });

    it.each([
      ['HTTP', 'PROXYV2'], ['HTTPS', 'TCP'], ['TCP', 'HTTPS'], ['UDP', 'UDP'], ['SCTP', 'SCTP'],
    ])('a %s listener accepts a %s pool', async (listenerProtocol, poolProtocol) => {
      const own = await f.lb();
      const pool = await f.pool({ loadbalancer_id: own.id }, { protocol: poolProtocol });
      const l = await f.listener(own.id, { protocol: listenerProtocol, default_pool_id: pool.id });
      expect(l.default_pool_id).toBe(pool.id);
    });
  });

  describe('show, list, update, delete', () => {
    it('404 on show/update/delete/stats for an unknown listener', async () => {
      const msg = `Listener ${MISSING_ID} not found.`;
      expectFault(await c.get(`${LISTENERS}/${MISSING_ID}`), 404, msg);
      expectFault(await c.put(`${LISTENERS}/${MISSING_ID}`, { listener: { name: 'x' } }), 404, msg);
      expectFault(await c.delete(`${LISTENERS}/${MISSING_ID}`), 404, msg);
      expectFault(await c.get(`${LISTENERS}/${MISSING_ID}/stats`), 404, msg);
    });

    it('lists under "listeners" with "listeners_links"', async () => {
      const own = await f.lb();
      const l = await f.listener(own.id);
      const res = await c.get(`${LISTENERS}?loadbalancer_id=${own.id}`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ listeners: [await f.get(`${LISTENERS}/${l.id}`, 'listener')], listeners_links: [] });
    });

    it('PUT returns PENDING_UPDATE and applies values; everything is ACTIVE afterwards', async () => {
      const { lb: own, listener } = await f.lbWithListener();
      const res = await c.put(`${LISTENERS}/${listener.id}`, {
        listener: { name: 'new', connection_limit: '100', timeout_client_data: 1, insert_headers: { 'X-Forwarded-Proto': 'true' }, admin_state_up: false },
      });
      expect(res.status).toBe(200);
      expect(Object.keys(res.body)).toEqual(['listener']);
      expect(res.body.listener).toMatchObject({
        name: 'new', connection_limit: 100, timeout_client_data: 1, insert_headers: { 'X-Forwarded-Proto': 'true' }, admin_state_up: false,
        provisioning_status: 'PENDING_UPDATE',
      });
      await api.settle();
      expect(await f.get(`${LISTENERS}/${listener.id}`, 'listener')).toMatchObject({ name: 'new', connection_limit: 100, provisioning_status: 'ACTIVE' });
      expect((await f.get(`${BASE}/loadbalancers/${own.id}`, 'loadbalancer')).provisioning_status).toBe('ACTIVE');
    });

    it('PUT null resets: name/description "", connection_limit -1, timeouts to defaults, client_authentication NONE, hsts flags false, admin_state_up false', async () => {
      const pool = await f.pool({ loadbalancer_id: lb.id });
      const l = await f.listener(lb.id, {
        protocol_port: 8010, name: 'n', description: 'd', connection_limit: 5, timeout_client_data: 1, timeout_member_connect: 2,
        timeout_member_data: 3, timeout_tcp_inspect: 4, default_pool_id: pool.id, insert_headers: { 'X-Real-IP': 'true' },
      });
      const res = await c.put(`${LISTENERS}/${l.id}`, {
        listener: {
          name: null, description: null, connection_limit: null, timeout_client_data: null, timeout_member_connect: null, timeout_member_data: null,
          timeout_tcp_inspect: null, default_pool_id: null, client_authentication: null, hsts_include_subdomains: null, hsts_preload: null,
          admin_state_up: null, insert_headers: null, tags: null,
        },
      });
      expect(res.status).toBe(200);
      expect(res.body.listener).toMatchObject({
        name: '', description: '', connection_limit: -1, timeout_client_data: 50000, timeout_member_connect: 5000, timeout_member_data: 50000,
        timeout_tcp_inspect: 0, default_pool_id: null, client_authentication: 'NONE', hsts_include_subdomains: false, hsts_preload: false,
        admin_state_up: false, insert_headers: {},
      });
      await api.settle();
      expect((await f.get(`${BASE}/pools/${pool.id}`, 'pool')).listeners).toEqual([]);
      expect((await c.delete(`${LISTENERS}/${l.id}`)).status).toBe(204);
      await api.settle();
      expect((await c.delete(`${BASE}/pools/${pool.id}`)).status).toBe(204);
      await api.settle();
    });

    it.each(['protocol', 'protocol_port', 'loadbalancer_id', 'project_id'])('PUT 400 for the create-only attribute %s', async (field) => {
      const l = await f.listener(lb.id, { protocol_port: 8011 });
      const value = field === 'protocol' ? 'TCP' : field === 'protocol_port' ? 81 : field === 'loadbalancer_id' ? MISSING_ID : 'p2';
      expectFault(await c.put(`${LISTENERS}/${l.id}`, { listener: { [field]: value } }), 400, new RegExp(`^Unknown attribute for argument \\S+: ${field}$`));
      expect((await f.get(`${LISTENERS}/${l.id}`, 'listener')).provisioning_status).toBe('ACTIVE');
      expect((await c.delete(`${LISTENERS}/${l.id}`)).status).toBe(204);
      await api.settle();
    });

    it('PUT validates like POST: insert headers, TLS lists, HSTS, default pool protocol', async () => {
      const own = await f.lb();
      const tcp = await f.listener(own.id, { protocol: 'TCP', protocol_port: 22 });
      const http = await f.listener(own.id, { protocol: 'HTTP', protocol_port: 80 });
      expectFault(await c.put(`${LISTENERS}/${tcp.id}`, { listener: { insert_headers: { 'X-Forwarded-For': 'true' } } }), 400,
        'insert-headers is not a valid option for a TCP protocol listener.');
      expectFault(await c.put(`${LISTENERS}/${http.id}`, { listener: { tls_versions: [] } }), 400,
        'Validation failure: Empty TLS version list. Either specify at least one TLS version or remove this parameter to use the default.');
      expectFault(await c.put(`${LISTENERS}/${http.id}`, { listener: { tls_versions: ['TLSv9'] } }), 400, 'Validation failure: Invalid TLS versions: TLSv9');
      expectFault(await c.put(`${LISTENERS}/${http.id}`, { listener: { alpn_protocols: [] } }), 400,
        'Validation failure: Empty ALPN protocol list. Either specify at least one ALPN protocol or remove this parameter to use the default.');
      expectFault(await c.put(`${LISTENERS}/${http.id}`, { listener: { hsts_max_age: 10 } }), 400,
        'Validation failure: The HSTS feature can only be used for listeners using the TERMINATED_HTTPS protocol.');
      expectFault(await c.put(`${LISTENERS}/${http.id}`, { listener: { default_tls_container_ref: 'ref' } }), 400,
        'Validation failure: Certificate container references are not allowed on HTTP protocol listeners.');
      const udpPool = await f.pool({ loadbalancer_id: own.id }, { protocol: 'UDP' });
      expectFault(await c.put(`${LISTENERS}/${http.id}`, { listener: { default_pool_id: udpPool.id } }), 400,
        "Validation failure: The pool protocol 'UDP' is invalid while the listener protocol is 'HTTP'.");
      expectFault(await c.put(`${LISTENERS}/${http.id}`, { listener: { default_pool_id: MISSING_ID } }), 404, `Pool ${MISSING_ID} not found.`);
      for (const l of [tcp, http]) expect((await f.get(`${LISTENERS}/${l.id}`, 'listener')).provisioning_status).toBe('ACTIVE');
      expect((await f.get(`${BASE}/loadbalancers/${own.id}`, 'loadbalancer')).provisioning_status).toBe('ACTIVE');
    });

    it('PUT null resets tls_ciphers, tls_versions and alpn_protocols to the configured defaults', async () => {
      const l = await f.listener(lb.id, { protocol_port: 8030 });
      const res = await c.put(`${LISTENERS}/${l.id}`, { listener: { tls_ciphers: null, tls_versions: null, alpn_protocols: null } });
      expect(res.status).toBe(200);
      expect(res.body.listener).toMatchObject({
        tls_ciphers: expect.stringMatching(/^TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:/), tls_versions: ['TLSv1.2', 'TLSv1.3'],
        alpn_protocols: ['h2', 'http/1.1', 'http/1.0'],
      });
      await api.settle();
      expect((await c.delete(`${LISTENERS}/${l.id}`)).status).toBe(204);
      await api.settle();
    });

    it('PUT insert_headers or certificates on a UDP listener: no TLS or header insertion', async () => {
      const l = await f.listener(lb.id, { protocol: 'UDP', protocol_port: 8031 });
      expectFault(await c.put(`${LISTENERS}/${l.id}`, { listener: { insert_headers: { 'X-Forwarded-For': 'true' } } }), 400,
        'Validation failure: UDP protocol listener does not support TLS or header insertion.');
      expectFault(await c.put(`${LISTENERS}/${l.id}`, { listener: { default_tls_container_ref: 'ref' } }), 400,
        'Validation failure: UDP protocol listener does not support TLS or header insertion.');
      expect((await c.delete(`${LISTENERS}/${l.id}`)).status).toBe(204);
      await api.settle();
    });

    it('PUT hsts_preload/include_subdomains without max_age: the PUT wording', async () => {
      const l = await f.listener(lb.id, { protocol_port: 8032 });
      for (const field of ['hsts_preload', 'hsts_include_subdomains']) {
        expectFault(await c.put(`${LISTENERS}/${l.id}`, { listener: { [field]: true } }), 400,
          'Validation failure: Cannot enable hsts_include_subdomains or hsts_preload if hsts_max_age was not set as well.');
      }
      expect((await c.delete(`${LISTENERS}/${l.id}`)).status).toBe(204);
      await api.settle();
    });

    it('PUT default_pool_id binds, and a second listener may share the pool', async () => {
      const own = await f.lb();
      const pool = await f.pool({ loadbalancer_id: own.id });
      const a = await f.listener(own.id, { protocol_port: 80 });
      const b = await f.listener(own.id, { protocol_port: 81, default_pool_id: pool.id });
      expect((await c.put(`${LISTENERS}/${a.id}`, { listener: { default_pool_id: pool.id } })).body.listener.default_pool_id).toBe(pool.id);
      await api.settle();
      const listeners = (await f.get(`${BASE}/pools/${pool.id}`, 'pool')).listeners.map((x: Obj) => x.id).sort();
      expect(listeners).toEqual([a.id, b.id].sort());
    });

    it('DELETE 204, the listener disappears and its default pool stays', async () => {
      const own = await f.lb();
      const l = await f.listener(own.id);
      const pool = await f.pool({ listener_id: l.id });
      const res = await c.delete(`${LISTENERS}/${l.id}`);
      expect(res.status).toBe(204);
      await api.settle();
      expectFault(await c.get(`${LISTENERS}/${l.id}`), 404, `Listener ${l.id} not found.`);
      expect(await f.get(`${BASE}/pools/${pool.id}`, 'pool')).toMatchObject({ provisioning_status: 'ACTIVE', listeners: [] });
      expect(await f.get(`${BASE}/loadbalancers/${own.id}`, 'loadbalancer')).toMatchObject({ provisioning_status: 'ACTIVE', listeners: [] });
    });

    it('stats: five zero counters', async () => {
      const l = await f.listener(lb.id, { protocol_port: 8020 });
      const res = await c.get(`${LISTENERS}/${l.id}/stats`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ stats: { bytes_in: 0, bytes_out: 0, active_connections: 0, total_connections: 0, request_errors: 0 } });
      expect((await c.delete(`${LISTENERS}/${l.id}`)).status).toBe(204);
      await api.settle();
    });
  });

  it('refused creates leave the database unchanged', async () => {
    await api.settle();
    const before = await tableCounts(api);
    await post({ protocol_port: 0, tags: ['a'] });
    await post({ hsts_max_age: 1, tags: ['a'] });
    await post({ insert_headers: { 'X-Bogus': '1' }, tags: ['a'] });
    expect(await tableCounts(api)).toEqual(before);
  });
});

describe('listeners: deployment options', () => {
  let api: TestApi;
  let c: Client;
  let lb: Obj;

  beforeAll(async () => {
    api = await startApi({
      api: { allowTlsTerminatedListeners: false, allowPrometheusListeners: false, minimumTlsVersion: 'TLSv1.2', tlsCipherProhibitList: ['DES-CBC3-SHA', 'RC4-MD5'] },
    }, { keystone: true });
    c = api.client('p1:member');
    lb = await fixtures(api, c).lb();
  });
  afterAll(async () => api?.close());

  const post = (body: Obj) => c.post(LISTENERS, { listener: { loadbalancer_id: lb.id, protocol: 'HTTP', protocol_port: 80, ...body } });

  it('disabled TERMINATED_HTTPS and PROMETHEUS protocols are 400 DisabledOption', async () => {
    expectFault(await post({ protocol: 'TERMINATED_HTTPS' }), 400, 'The selected protocol is not allowed in this deployment: TERMINATED_HTTPS');
    expectFault(await post({ protocol: 'PROMETHEUS' }), 400, 'The selected protocol is not allowed in this deployment: PROMETHEUS');
  });

  it('prohibited ciphers and TLS versions below the minimum are refused', async () => {
    expectFault(await post({ tls_ciphers: 'ECDHE-RSA-AES128-GCM-SHA256:DES-CBC3-SHA:RC4-MD5' }), 400,
      'Validation failure: The following ciphers have been prohibited by an administrator: DES-CBC3-SHA, RC4-MD5');
    const res = await post({});
    expect(res.status).toBe(201);
    await api.settle();
    expectFault(await c.put(`${LISTENERS}/${res.body.listener.id}`, { listener: { tls_versions: ['TLSv1', 'TLSv1.1', 'TLSv1.3'] } }), 400,
      'Validation failure: Requested TLS versions are less than the minimum: TLSv1, TLSv1.1 < TLSv1.2');
    expectFault(await c.put(`${LISTENERS}/${res.body.listener.id}`, { listener: { tls_ciphers: 'RC4-MD5' } }), 400,
      'Validation failure: The following ciphers have been prohibited by an administrator: RC4-MD5');
  });
});
