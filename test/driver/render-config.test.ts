// The renderer's output must be accepted whole by the data plane's parser, with Octavia's units
// and names translated (seconds -> ms, REDIRECT_PREFIX -> REDIRECT_TO_PREFIX, "true" -> true).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAmphoraConfig } from '../../common/amphora-config/index.ts';
import { loadTree } from '../../driver/controller/completion.ts';
import { renderAmphoraConfig } from '../../driver/amphora/render-config.ts';
import { startApi, type TestApi } from '../helpers/api.ts';

let api: TestApi;
let lbId: string;
const AMP = '11111111-2222-4333-8444-555555555555';

beforeAll(async () => {
  api = await startApi();
  const res = await api.client().raw('POST', '/v2/lbaas/loadbalancers', JSON.stringify({
    loadbalancer: {
      vip_subnet_id: '6c1f4a49-0e64-4e5f-a4a3-5a4d4cf6e8d1',
      vip_address: '127.0.100.5',
      listeners: [
        {
          name: 'web', protocol: 'HTTP', protocol_port: 80, insert_headers: { 'X-Forwarded-For': 'true', 'X-Forwarded-Port': 'false' },
          allowed_cidrs: ['10.0.0.5/8'], default_pool: { name: 'p1' },
          l7policies: [
            { action: 'REDIRECT_PREFIX', redirect_prefix: 'https://example.com', redirect_http_code: 308, rules: [{ type: 'PATH', compare_type: 'STARTS_WITH', value: '/old' }] },
            { action: 'REDIRECT_TO_POOL', redirect_pool: { name: 'p2' }, rules: [{ type: 'HEADER', key: 'X-Env', compare_type: 'EQUAL_TO', value: 'canary', invert: true }] },
          ],
        },
        { name: 'tcp', protocol: 'TCP', protocol_port: 5000, connection_limit: 100, default_pool: { name: 'p2' } },
      ],
      pools: [
        {
          name: 'p1', protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN', session_persistence: { type: 'APP_COOKIE', cookie_name: 'JSESSIONID' },
          healthmonitor: { type: 'HTTP', delay: 5, timeout: 3, max_retries: 2, max_retries_down: 4, url_path: '/health', expected_codes: '200, 202', http_version: 1.1, domain_name: 'example.com' },
          members: [{ address: '127.0.0.11', protocol_port: 8080, weight: 3 }, { address: '127.0.0.12', protocol_port: 8080, backup: true, admin_state_up: false }],
        },
        { name: 'p2', protocol: 'HTTP', lb_algorithm: 'SOURCE_IP', session_persistence: { type: 'SOURCE_IP' }, members: [{ address: '127.0.0.13', protocol_port: 9000, monitor_port: 9001 }] },
      ],
    },
  }), { 'Content-Type': 'application/json', 'X-Project-Id': 'p' });
  expect(res.body).toMatchObject({ loadbalancer: { provisioning_status: "PENDING_CREATE" } });
  lbId = res.body.loadbalancer.id;
  await api.settle();
});

afterAll(() => api.close());

describe('renderAmphoraConfig', () => {
  it('renders a document the data plane accepts, with Octavia units and names translated', async () => {
    const tree = (await loadTree(api.service.services.db, lbId))!;
    const config = parseAmphoraConfig(renderAmphoraConfig(tree, AMP, 7));
    expect(config).toMatchObject({ version: 1, configVersion: 7, amphoraId: AMP, loadBalancerId: lbId, vips: [{ address: '127.0.100.5' }] });
    const web = config.listeners.find((l) => l.name === 'web')!;
    expect(web.ports).toEqual([80]);
    expect(web.insertHeaders['X-Forwarded-For']).toBe(true);
    expect(web.insertHeaders['X-Forwarded-Port']).toBe(false);
    expect(web.allowedCidrs).toEqual(['10.0.0.0/8']);
    expect(web.l7policies.map((p) => [p.position, p.action, p.redirectHttpCode])).toEqual([[1, 'REDIRECT_TO_PREFIX', 308], [2, 'REDIRECT_TO_POOL', null]]);
    expect(web.l7policies[1]!.rules[0]).toMatchObject({ type: 'HEADER', key: 'X-Env', compareType: 'EQUAL_TO', value: 'canary', invert: true });
    expect(config.listeners.find((l) => l.name === 'tcp')!.connectionLimit).toBe(100);

    const p1 = config.pools.find((p) => p.name === 'p1')!;
    expect(p1.sessionPersistence).toEqual({ type: 'APP_COOKIE', cookieName: 'JSESSIONID' });
    expect(p1.healthMonitor).toMatchObject({ delay: 5000, timeout: 3000, maxRetries: 2, maxRetriesDown: 4, urlPath: '/health', expectedCodes: '200,202', httpVersion: '1.1', domainName: 'example.com' });
    expect(p1.members.map((m) => [m.address, m.weight, m.backup, m.enabled]).sort()).toEqual([['127.0.0.11', 3, false, true], ['127.0.0.12', 1, true, false]]);
    const p2 = config.pools.find((p) => p.name === 'p2')!;
    expect(p2.sessionPersistence).toMatchObject({ type: 'SOURCE_IP' });
    expect(p2.members[0]!.monitorPort).toBe(9001);
    expect(web.defaultPoolId).toBe(p1.id);
  });

  it('is deterministic and leaves out objects being deleted', async () => {
    const tree = (await loadTree(api.service.services.db, lbId))!;
    expect(renderAmphoraConfig(tree, AMP, 1)).toEqual(renderAmphoraConfig(tree, AMP, 1));
    const deleting = { ...tree, members: tree.members.map((m, i) => (i === 0 ? { ...m, provisioning_status: 'PENDING_DELETE' } : m)) };
    const rendered = parseAmphoraConfig(renderAmphoraConfig(deleting, AMP, 2));
    const memberIds = rendered.pools.flatMap((p) => p.members.map((m) => m.id));
    expect(memberIds).not.toContain(tree.members[0]!.id);
    expect(memberIds).toHaveLength(tree.members.length - 1);
  });
});

describe('renderAmphoraConfig: the appliance extensions (issue 7)', () => {
  let extLb: string;
  beforeAll(async () => {
    const res = await api.client().raw('POST', '/v2/lbaas/loadbalancers', JSON.stringify({
      loadbalancer: {
        vip_subnet_id: '6c1f4a49-0e64-4e5f-a4a3-5a4d4cf6e8d1',
        vip_address: '127.0.100.6',
        listeners: [
          { name: 'traffic', protocol: 'TCP', protocol_port: 1935, additional_ports: '554, 50000-65535', also_udp: true, default_pool: { name: 'traffic' } },
          { name: 'db', protocol: 'TCP', protocol_port: 3306, default_pool: { name: 'db' } },
          { name: 'dr', protocol: 'TCP', protocol_port: 8088, forwarding_method: 'DIRECT_ROUTING', default_pool: { name: 'dr' } },
        ],
        pools: [
          {
            name: 'traffic', protocol: 'TCP', lb_algorithm: 'ROUND_ROBIN', session_persistence: { type: 'SOURCE_IP' },
            healthmonitor: { type: 'HTTPS', delay: 5, timeout: 3, max_retries: 2, url_path: '/admin/status', expected_body: 'Healthy' },
            members: [{ address: '127.0.0.21', protocol_port: 1935, monitor_port: 8443 }, { address: '127.0.0.22', protocol_port: 1935 }],
          },
          { name: 'db', protocol: 'TCP', lb_algorithm: 'ROUND_ROBIN', session_persistence: { type: 'LAST_SUCCESSFUL' }, members: [{ address: '127.0.0.23', protocol_port: 3306 }] },
          { name: 'dr', protocol: 'TCP', lb_algorithm: 'SOURCE_IP', members: [{ address: '127.0.0.24', protocol_port: 8088 }] },
        ],
      },
    }), { 'Content-Type': 'application/json', 'X-Project-Id': 'p' });
    expect(res.status).toBe(201);
    extLb = res.body.loadbalancer.id;
    await api.settle();
  });

  it('renders port lists, a TCP+UDP listener as a TCP listener and its UDP twin, LAST_SUCCESSFUL, expectedBody and the forwarding method', async () => {
    const tree = (await loadTree(api.service.services.db, extLb))!;
    const rendered = renderAmphoraConfig(tree, AMP, 3);
    const config = parseAmphoraConfig(rendered);
    const traffic = tree.listeners.find((l) => l.name === 'traffic')!;
    const trafficPool = tree.pools.find((p) => p.name === 'traffic')!;
    const tcp = config.listeners.find((l) => l.id === traffic.id)!;
    const udp = config.listeners.find((l) => l.protocol === 'UDP')!;
    expect(tcp).toMatchObject({ protocol: 'TCP', ports: [1935, 554, { from: 50000, to: 65535 }], forwarding: 'PROXY', defaultPoolId: trafficPool.id });
    expect(udp.ports).toEqual(tcp.ports);
    expect(udp.id).not.toBe(tcp.id);
    expect(udp.defaultPoolId).not.toBe(trafficPool.id);
    const udpPool = config.pools.find((p) => p.id === udp.defaultPoolId)!;
    expect(udpPool.protocol).toBe('UDP');
    expect(udpPool.sessionPersistence).toMatchObject({ type: 'SOURCE_IP' });
    const tcpPool = config.pools.find((p) => p.id === trafficPool.id)!;
    expect(udpPool.members.map((m) => [m.address, m.port, m.monitorPort])).toEqual(tcpPool.members.map((m) => [m.address, m.port, m.monitorPort]));
    expect(udpPool.members.map((m) => m.id).filter((id) => tcpPool.members.some((t) => t.id === id))).toEqual([]);
    expect(tcpPool.healthMonitor).toMatchObject({ type: 'HTTPS', urlPath: '/admin/status', expectedBody: 'Healthy' });
    expect(udpPool.healthMonitor).toMatchObject({ type: 'HTTPS', urlPath: '/admin/status', expectedBody: 'Healthy' });
    expect(udpPool.healthMonitor!.id).not.toBe(tcpPool.healthMonitor!.id);
    expect(config.pools.find((p) => p.name === 'db')!.sessionPersistence).toEqual({ type: 'LAST_SUCCESSFUL' });
    expect(config.listeners.find((l) => l.name === 'dr')!.forwarding).toBe('DIRECT_ROUTING');
    // Every id unique across the document, and the same on every render.
    const ids = [...config.listeners.map((l) => l.id), ...config.pools.flatMap((p) => [p.id, ...p.members.map((m) => m.id), ...(p.healthMonitor ? [p.healthMonitor.id] : [])])];
    expect(new Set(ids).size).toBe(ids.length);
    expect(renderAmphoraConfig(tree, AMP, 3)).toEqual(rendered);

  });
});
