// The appliance extensions of the Octavia API (issue 7): a listener's additional_ports, also_udp and
// forwarding_method, LAST_SUCCESSFUL session persistence, a health monitor's expected_body. Validated
// with 400s naming the field, stored, shown (extensions only on objects that use them), accepted by
// the graph create, and conflicts over every port of a listener answered as Octavia's duplicate 409.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';
import { BASE, expectFault, fixtures, SUBNET_ID, tableCounts, type Fixtures, type Obj } from '../helpers/fixtures.ts';

const LISTENERS = `${BASE}/listeners`;

describe('appliance extensions', () => {
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

  const post = (body: Obj, lbId = lb.id) => c.post(LISTENERS, { listener: { loadbalancer_id: lbId, protocol: 'TCP', protocol_port: 1935, ...body } });

  describe('listener', () => {
    it('stores and shows additional_ports (normalised), also_udp and forwarding_method; an Octavia listener shows none of them', async () => {
      const own = await f.lb();
      const res = await post({ additional_ports: ' 554, 50000-65535 ', also_udp: true, forwarding_method: 'DIRECT_ROUTING' }, own.id);
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body.listener).toMatchObject({ protocol: 'TCP', protocol_port: 1935, additional_ports: '554,50000-65535', also_udp: true, forwarding_method: 'DIRECT_ROUTING' });
      await api.settle();
      expect(await f.get(`${LISTENERS}/${res.body.listener.id}`, 'listener')).toMatchObject({ additional_ports: '554,50000-65535', also_udp: true, forwarding_method: 'DIRECT_ROUTING', provisioning_status: 'ACTIVE' });
      const filtered = await c.get(`${LISTENERS}?forwarding_method=DIRECT_ROUTING&loadbalancer_id=${own.id}`);
      expect(filtered.body.listeners.map((l: Obj) => l.id)).toEqual([res.body.listener.id]);
      const plain = await f.listener(own.id, { protocol: 'HTTP', protocol_port: 80 });
      for (const key of ['additional_ports', 'also_udp', 'forwarding_method']) expect(plain).not.toHaveProperty(key);
    });

    it('refuses bad values with 400 naming the field', async () => {
      const cases: Array<[Obj, RegExp]> = [
        [{ additional_ports: '554,abc' }, /^Invalid input for field\/attribute additional_ports\. Value: '554,abc'\. Value should be ports and ranges such as 554,50000-65535/],
        [{ additional_ports: '0' }, /^Invalid input for field\/attribute additional_ports\. Value: '0'\. Value should hold ports between 1 and 65535/],
        [{ additional_ports: '65535-1' }, /^Invalid input for field\/attribute additional_ports\. .*first port is not above the last/],
        [{ additional_ports: '554,500-600' }, /^Invalid input for field\/attribute additional_ports\. Value: '554,500-600'\. Value should not name a port twice/],
        [{ additional_ports: '1900-2000' }, /^Invalid input for field\/attribute additional_ports\. Value: '1900-2000'\. Value should not name protocol_port 1935 again/],
        [{ additional_ports: '' }, /^Invalid input for field\/attribute additional_ports\. Value: ''\. Value should list at least one port/],
        [{ additional_ports: 554 }, /^Invalid input for field\/attribute additional_ports\. Value: '554'\. Value should be string/],
        [{ protocol: 'PROMETHEUS', additional_ports: '9101' }, /^Validation failure: additional_ports are not supported by PROMETHEUS protocol listeners\./],
        [{ also_udp: 'maybe' }, /^Invalid input for field\/attribute also_udp\. Value: 'maybe'\. Value not an unambiguous boolean/],
        [{ protocol: 'HTTP', also_udp: true }, /^Validation failure: also_udp is only supported by TCP protocol listeners, not HTTP\./],
        [{ forwarding_method: 'NAT' }, /^Invalid input for field\/attribute forwarding_method\. Value: 'NAT'\. Value should be one of: PROXY, DIRECT_ROUTING/],
        [{ protocol: 'HTTP', forwarding_method: 'DIRECT_ROUTING' }, /^Validation failure: forwarding_method DIRECT_ROUTING is only supported by TCP and UDP protocol listeners, not HTTP\./],
        [{ protocol: 'TERMINATED_HTTPS', forwarding_method: 'DIRECT_ROUTING' }, /^Validation failure: forwarding_method DIRECT_ROUTING is only supported by TCP and UDP protocol listeners, not TERMINATED_HTTPS\./],
      ];
      const before = await tableCounts(api);
      for (const [body, message] of cases) expectFault(await post(body), 400, message);
      expect(await tableCounts(api)).toEqual(before);
    });

    it('direct routing keeps no connection state: the amphora provider answers 501 to a connection limit, the no-op provider accepts it', async () => {
      const res = await post({ protocol_port: 9100, forwarding_method: 'DIRECT_ROUTING', connection_limit: 100 });
      expectFault(res, 501, /connection_limit on DIRECT_ROUTING listeners/);
      const noop = await f.lb({ provider: 'noop' });
      const ok = await post({ protocol_port: 9100, forwarding_method: 'DIRECT_ROUTING', connection_limit: 100 }, noop.id);
      expect(ok.status).toBe(201);
      expect(ok.body.listener).toMatchObject({ forwarding_method: 'DIRECT_ROUTING', connection_limit: 100 });
    });

    it('cannot be changed by PUT (create-only)', async () => {
      const l = await f.listener(lb.id, { protocol: 'TCP', protocol_port: 7000, additional_ports: '7001' });
      expectFault(await c.put(`${LISTENERS}/${l.id}`, { listener: { additional_ports: '7002' } }), 400, /^Unknown attribute for argument listener_\.listener: additional_ports/);
      expectFault(await c.put(`${LISTENERS}/${l.id}`, { listener: { forwarding_method: 'DIRECT_ROUTING' } }), 400, /forwarding_method/);
    });

    it('answers 409 when any port of a listener is already taken on the same L4 protocol', async () => {
      const own = await f.lb();
      await f.listener(own.id, { protocol: 'TCP', protocol_port: 1935, additional_ports: '554,50000-50100' });
      expectFault(await post({ protocol: 'HTTP', protocol_port: 50050 }, own.id), 409, 'Another Listener on this Load Balancer is already using protocol TCP and protocol_port 50050');
      expectFault(await post({ protocol: 'TCP', protocol_port: 80, additional_ports: '500-600' }, own.id), 409, 'Another Listener on this Load Balancer is already using protocol TCP and protocol_port 554');
      // UDP on the same ports is fine, until a TCP listener also serves UDP there.
      await f.listener(own.id, { protocol: 'UDP', protocol_port: 554, additional_ports: '1935,7000' });
      expectFault(await post({ protocol: 'TCP', protocol_port: 60000, additional_ports: '7000', also_udp: true }, own.id), 409, 'Another Listener on this Load Balancer is already using protocol UDP and protocol_port 7000');
      const both = await f.listener(own.id, { protocol: 'TCP', protocol_port: 60000, additional_ports: '60001-60010', also_udp: true });
      expect(both.also_udp).toBe(true);
      expectFault(await post({ protocol: 'UDP', protocol_port: 60005 }, own.id), 409, 'Another Listener on this Load Balancer is already using protocol UDP and protocol_port 60005');
    });

    it('refuses a default pool a TCP+UDP or direct-routing listener cannot use', async () => {
      const own = await f.lb();
      const http = await f.pool({ loadbalancer_id: own.id }, { protocol: 'HTTP' });
      const sticky = await f.pool({ loadbalancer_id: own.id }, { protocol: 'TCP', session_persistence: { type: 'LAST_SUCCESSFUL' } });
      const proxy = await f.pool({ loadbalancer_id: own.id }, { protocol: 'PROXY' });
      expectFault(await post({ also_udp: true, default_pool_id: http.id }, own.id), 400, 'Validation failure: A listener with also_udp needs a TCP pool, not HTTP.');
      expectFault(await post({ also_udp: true, default_pool_id: sticky.id }, own.id), 400, 'Validation failure: A listener with also_udp needs a pool with no session persistence or SOURCE_IP, not LAST_SUCCESSFUL.');
      expectFault(await post({ forwarding_method: 'DIRECT_ROUTING', default_pool_id: proxy.id }, own.id), 400, 'Validation failure: A listener with forwarding_method DIRECT_ROUTING needs a TCP or UDP pool, not PROXY.');
      expectFault(await post({ forwarding_method: 'DIRECT_ROUTING', default_pool_id: sticky.id }, own.id), 400, 'Validation failure: A listener with forwarding_method DIRECT_ROUTING needs a pool with no session persistence or SOURCE_IP, not LAST_SUCCESSFUL.');
      // And a pool update that would break its TCP+UDP listener.
      const tcp = await f.pool({ loadbalancer_id: own.id }, { protocol: 'TCP', session_persistence: { type: 'SOURCE_IP' } });
      await f.listener(own.id, { protocol: 'TCP', protocol_port: 5000, also_udp: true, default_pool_id: tcp.id });
      expectFault(await c.put(`${BASE}/pools/${tcp.id}`, { pool: { session_persistence: { type: 'LAST_SUCCESSFUL' } } }), 400, /needs a pool with no session persistence or SOURCE_IP, not LAST_SUCCESSFUL/);
    });
  });

  describe('pool session persistence LAST_SUCCESSFUL', () => {
    it('is stored and shown on TCP and HTTP pools, refused on UDP pools', async () => {
      const p = await f.pool({ loadbalancer_id: lb.id }, { protocol: 'TCP', session_persistence: { type: 'LAST_SUCCESSFUL' } });
      expect(p.session_persistence).toEqual({ type: 'LAST_SUCCESSFUL', cookie_name: null, persistence_timeout: null, persistence_granularity: null });
      const h = await f.pool({ loadbalancer_id: lb.id }, { protocol: 'HTTP' });
      const put = await c.put(`${BASE}/pools/${h.id}`, { pool: { session_persistence: { type: 'LAST_SUCCESSFUL' } } });
      expect(put.status).toBe(200);
      expect(put.body.pool.session_persistence.type).toBe('LAST_SUCCESSFUL');
      await api.settle();
      const udp = await c.post(`${BASE}/pools`, { pool: { loadbalancer_id: lb.id, protocol: 'UDP', lb_algorithm: 'ROUND_ROBIN', session_persistence: { type: 'LAST_SUCCESSFUL' } } });
      expectFault(udp, 400, 'Validation failure: Session persistence of type LAST_SUCCESSFUL is not supported for UDP/SCTP protocol pools.');
      expectFault(
        await c.post(`${BASE}/pools`, { pool: { loadbalancer_id: lb.id, protocol: 'TCP', lb_algorithm: 'ROUND_ROBIN', session_persistence: { type: 'LAST' } } }),
        400,
        /^Invalid input for field\/attribute type\. Value: 'LAST'\. Value should be one of: SOURCE_IP, HTTP_COOKIE, APP_COOKIE, LAST_SUCCESSFUL/,
      );
    });
  });

  describe('health monitor expected_body', () => {
    it('is stored, shown only when set, updatable, and refused on non-HTTP monitors naming the field', async () => {
      const pool = await f.pool({ loadbalancer_id: lb.id }, { protocol: 'TCP' });
      const hm = await f.healthmonitor(pool.id, { type: 'HTTPS', url_path: '/admin/status', expected_body: 'Healthy' });
      expect(hm).toMatchObject({ type: 'HTTPS', url_path: '/admin/status', expected_body: 'Healthy' });
      const put = await c.put(`${BASE}/healthmonitors/${hm.id}`, { healthmonitor: { expected_body: null } });
      expect(put.status).toBe(200);
      expect(put.body.healthmonitor).not.toHaveProperty('expected_body');
      await api.settle();
      const other = await f.pool({ loadbalancer_id: lb.id }, { protocol: 'TCP' });
      expectFault(await c.post(`${BASE}/healthmonitors`, { healthmonitor: { pool_id: other.id, type: 'TCP', delay: 5, timeout: 3, max_retries: 2, expected_body: 'x' } }), 400, 'expected_body is not a valid option for health monitors of type TCP');
      expectFault(await c.post(`${BASE}/healthmonitors`, { healthmonitor: { pool_id: other.id, type: 'HTTP', delay: 5, timeout: 3, max_retries: 2, expected_body: '' } }), 400, /^Invalid input for field\/attribute expected_body\. Value: ''\. Value should have a minimum character requirement of 1/);
      const plain = await f.healthmonitor(other.id, { type: 'HTTP' });
      expect(plain).not.toHaveProperty('expected_body');
    });
  });

  describe('graph create', () => {
    it('accepts every extension in one call and shows them', async () => {
      const res = await c.post(`${BASE}/loadbalancers`, {
        loadbalancer: {
          vip_subnet_id: SUBNET_ID,
          listeners: [
            { name: 'traffic', protocol: 'TCP', protocol_port: 1935, additional_ports: '554,50000-65535', also_udp: true, forwarding_method: 'DIRECT_ROUTING', default_pool: { name: 't' } },
            { name: 'db', protocol: 'TCP', protocol_port: 3306, default_pool: { name: 'db' } },
          ],
          pools: [
            { name: 't', protocol: 'TCP', lb_algorithm: 'SOURCE_IP', session_persistence: { type: 'SOURCE_IP' }, healthmonitor: { type: 'HTTPS', delay: 10, timeout: 5, max_retries: 2, url_path: '/admin/status', expected_body: 'Healthy' } },
            { name: 'db', protocol: 'TCP', lb_algorithm: 'ROUND_ROBIN', session_persistence: { type: 'LAST_SUCCESSFUL' } },
          ],
        },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      await api.settle();
      const listeners = (await c.get(`${LISTENERS}?loadbalancer_id=${res.body.loadbalancer.id}`)).body.listeners as Obj[];
      expect(listeners.find((l) => l.name === 'traffic')).toMatchObject({ additional_ports: '554,50000-65535', also_udp: true, forwarding_method: 'DIRECT_ROUTING', provisioning_status: 'ACTIVE' });
      const pools = (await c.get(`${BASE}/pools?loadbalancer_id=${res.body.loadbalancer.id}`)).body.pools as Obj[];
      expect(pools.find((p) => p.name === 'db')!.session_persistence.type).toBe('LAST_SUCCESSFUL');
      const hm = await f.get(`${BASE}/healthmonitors/${pools.find((p) => p.name === 't')!.healthmonitor_id}`, 'healthmonitor');
      expect(hm.expected_body).toBe('Healthy');
    });

    it('refuses overlapping ports between its listeners and bad extension values, creating nothing', async () => {
      const before = await tableCounts(api);
      const overlap = await c.post(`${BASE}/loadbalancers`, {
        loadbalancer: { vip_subnet_id: SUBNET_ID, listeners: [{ protocol: 'TCP', protocol_port: 80, additional_ports: '8000-9000' }, { protocol: 'HTTP', protocol_port: 8080 }] },
      });
      expectFault(overlap, 409, 'Another Listener on this Load Balancer is already using protocol TCP and protocol_port 8080');
      const bad = await c.post(`${BASE}/loadbalancers`, { loadbalancer: { vip_subnet_id: SUBNET_ID, listeners: [{ protocol: 'UDP', protocol_port: 53, also_udp: true }] } });
      expectFault(bad, 400, 'Validation failure: also_udp is only supported by TCP protocol listeners, not UDP.');
      expect(await tableCounts(api)).toEqual(before);
    });
  });
});
