// The renderer's vrrp section: filled from the load balancer's amphorae (roles, priorities, own and
// peer addresses) for MASTER and BACKUP amphorae only, accepted whole by the data plane's parser.
import { describe, expect, it } from 'vitest';
import { parseAmphoraConfig } from '../../common/amphora-config/index.ts';
import type { Row } from '../../common/db/database.ts';
import type { LoadBalancerTree } from '../../driver/controller/completion.ts';
import { renderAmphoraConfig, type VrrpRenderInput } from '../../driver/amphora/render-config.ts';

const LB = '0b000000-0000-4000-8000-000000000001';
const M = '0a000000-0000-4000-8000-00000000000a';
const B = '0a000000-0000-4000-8000-00000000000b';
const tree: LoadBalancerTree = {
  lb: { id: LB, vip_address: '10.222.7.10', vip_subnet_id: null, vip_port_id: null, additional_vips: null, topology: 'ACTIVE_STANDBY' },
  listeners: [], pools: [], members: [], monitors: [], policies: [], rules: [],
};
const amphora = (id: string, role: string, extra: Row = {}): Row => ({
  id, role, vrrp_priority: role === 'MASTER' ? 100 : 90, vrrp_id: 1, lb_network_ip: null, vrrp_ip: null, vrrp_interface: null,
  created_at: id === M ? '2026-01-01T00:00:00' : '2026-01-01T00:00:01', ...extra,
});
const input = (amphorae: Row[], over: Partial<VrrpRenderInput> = {}): VrrpRenderInput => ({
  amphorae, authKey: 'cd'.repeat(32), advertIntervalMs: 100, preempt: false, syncPort: 1114, ...over,
});

describe('renderAmphoraConfig: vrrp', () => {
  const pair = [amphora(M, 'MASTER', { lb_network_ip: '10.222.7.200' }), amphora(B, 'BACKUP', { lb_network_ip: '10.222.7.201' })];

  it('gives each amphora of the pair its role, priority, own address and the other as peer', () => {
    const master = parseAmphoraConfig(renderAmphoraConfig(tree, M, 1, undefined, input(pair))).vrrp;
    const backup = parseAmphoraConfig(renderAmphoraConfig(tree, B, 1, undefined, input(pair))).vrrp;
    expect(master).toEqual({ role: 'MASTER', priority: 100, routerId: 1, address: '10.222.7.200', peers: ['10.222.7.201'], interface: null, advertIntervalMs: 100, preempt: false, authKey: 'cd'.repeat(32), syncPort: 1114 });
    expect(backup).toMatchObject({ role: 'BACKUP', priority: 90, address: '10.222.7.201', peers: ['10.222.7.200'] });
    // The same listeners on both (the BACKUP needs no push to take over): only the vrrp section and the id differ.
    const { vrrp: _m, amphoraId: _a, ...restM } = renderAmphoraConfig(tree, M, 1, undefined, input(pair));
    const { vrrp: _b, amphoraId: _c, ...restB } = renderAmphoraConfig(tree, B, 1, undefined, input(pair));
    expect(restB).toEqual(restM);
  });

  it('prefers the VRRP port address (neutron) and carries the interface and preempt settings', () => {
    const ports = [amphora(M, 'MASTER', { lb_network_ip: '10.222.9.5', vrrp_ip: '10.222.7.50', vrrp_interface: 'eth1' }), amphora(B, 'BACKUP', { lb_network_ip: '10.222.9.6', vrrp_ip: '10.222.7.51' })];
    expect(parseAmphoraConfig(renderAmphoraConfig(tree, M, 1, undefined, input(ports, { preempt: true }))).vrrp).toMatchObject({
      address: '10.222.7.50', peers: ['10.222.7.51'], interface: 'eth1', preempt: true,
    });
  });

  it('renders none for STANDALONE amphorae, an amphora not of the load balancer, or a peer without an address yet', () => {
    expect(renderAmphoraConfig(tree, M, 1, undefined, input([amphora(M, 'STANDALONE', { lb_network_ip: '10.222.7.200' })])).vrrp).toBeNull();
    expect(renderAmphoraConfig(tree, '0a000000-0000-4000-8000-0000000000ff', 1, undefined, input(pair)).vrrp).toBeNull();
    expect(renderAmphoraConfig(tree, M, 1, undefined, input([pair[0]!, amphora(B, 'BACKUP')])).vrrp).toBeNull();
    expect(renderAmphoraConfig(tree, M, 1).vrrp).toBeNull();
  });
});
