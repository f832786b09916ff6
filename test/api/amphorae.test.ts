// /v2/octavia/amphorae: records built by the amphora provider's worker for load balancers created
// through the API.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';
import { holdSubmissions } from '../helpers/hold.ts';

const SUBNET = '5d7b5a6c-0e5f-4c55-9a4b-3f7e7f0f8a10';
const MISSING = '3f0cbd52-1d36-4d31-9a3e-2d5e0c3c1a77';
const AMPHORA_KEYS = [
  'cached_zone', 'cert_busy', 'cert_expiration', 'compute_flavor', 'compute_id', 'created_at', 'ha_ip', 'ha_port_id', 'id', 'image_id',
  'lb_network_ip', 'loadbalancer_id', 'role', 'status', 'updated_at', 'vrrp_id', 'vrrp_interface', 'vrrp_ip', 'vrrp_port_id', 'vrrp_priority',
  'vip_holder', // extension: null until the amphora's heartbeat reports its election
].sort();
const A = '/v2/octavia/amphorae';

let api: TestApi;
let admin: Client;
let owner: Client;
let ownerReader: Client;
let other: Client;
let noRoles: Client;

beforeAll(async () => {
  api = await startApi({}, { keystone: true });
  admin = api.client('admin-project:admin');
  owner = api.client('p1:member');
  ownerReader = api.client('p1:reader');
  other = api.client('p2:member');
  noRoles = api.client('p1:');
});
afterAll(async () => {
  await api?.close();
});

const models = () => api.service.services.db.models;

async function createLb(c: Client, extra: Record<string, unknown> = {}): Promise<any> {
  const r = await c.post('/v2/lbaas/loadbalancers', { loadbalancer: { vip_subnet_id: SUBNET, ...extra } });
  expect(r.status).toBe(201);
  await api.settle();
  return r.body.loadbalancer;
}

async function amphoraeOf(lbId: string): Promise<any[]> {
  const r = await admin.get(`${A}?loadbalancer_id=${lbId}`);
  expect(r.status).toBe(200);
  return r.body.amphorae;
}

const lbStatus = async (id: string) => (await admin.get(`/v2/lbaas/loadbalancers/${id}`)).body.loadbalancer.provisioning_status;

describe('list and show', () => {
  let lb: any;
  let lb2: any;
  beforeAll(async () => {
    lb = await createLb(owner);
    lb2 = await createLb(other);
  });

  it('a new load balancer gets one STANDALONE amphora, shown with the Octavia keys', async () => {
    const amps = await amphoraeOf(lb.id);
    expect(amps).toHaveLength(1);
    const amp = amps[0];
    expect(Object.keys(amp).sort()).toEqual(AMPHORA_KEYS);
    expect(amp).toMatchObject({ loadbalancer_id: lb.id, role: 'STANDALONE', status: 'ALLOCATED', cert_busy: false, ha_ip: lb.vip_address, vip_holder: null });
    expect(amp.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/);
    const shown = await admin.get(`${A}/${amp.id}`);
    expect(shown.status).toBe(200);
    expect(shown.body).toEqual({ amphora: amp });
    expect((await admin.get(`/v2.0/octavia/amphorae/${amp.id}`)).body).toEqual({ amphora: amp });
  });

  it('lists every amphora with the amphorae_links key', async () => {
    const r = await admin.get(A);
    expect(Object.keys(r.body).sort()).toEqual(['amphorae', 'amphorae_links']);
    const lbs = r.body.amphorae.map((a: { loadbalancer_id: string }) => a.loadbalancer_id);
    expect(lbs).toEqual(expect.arrayContaining([lb.id, lb2.id]));
  });

  it('filters on amphora attributes and on the owning load balancer project', async () => {
    const [amp] = await amphoraeOf(lb.id);
    const ids = async (query: string) => ((await admin.get(`${A}?${query}`)).body.amphorae as Array<{ id: string }>).map((a) => a.id);
    expect(await ids(`loadbalancer_id=${lb2.id}`)).not.toContain(amp.id);
    expect(await ids(`compute_id=${amp.compute_id}`)).toEqual([amp.id]);
    expect(await ids(`id=${amp.id}&role=STANDALONE&status=ALLOCATED`)).toEqual([amp.id]);
    expect(await ids(`id=${amp.id}&status=ERROR`)).toEqual([]);
    expect(await ids('project_id=p1')).toContain(amp.id);
    expect(await ids('project_id=p2')).not.toContain(amp.id);
    expect(await ids('project_id=p2')).toHaveLength(1);
    expect(await ids('project_id=nobody')).toEqual([]);
    const bad = await admin.get(`${A}?load_balancer=x`);
    expect(bad.status).toBe(400);
    expect(bad.body.faultstring).toBe('One or more arguments are either duplicate or invalid');
  });

  it('projects fields on lists and single objects', async () => {
    const [amp] = await amphoraeOf(lb.id);
    const listed = await admin.get(`${A}?id=${amp.id}&fields=id&fields=role`);
    expect(listed.body.amphorae).toEqual([{ id: amp.id, role: 'STANDALONE' }]);
    const shown = await admin.get(`${A}/${amp.id}?fields=status`);
    expect(shown.body).toEqual({ amphora: { status: 'ALLOCATED' } });
  });

  it('pages with limit and marker', async () => {
    const page1 = await admin.get(`${A}?limit=1`);
    expect(page1.body.amphorae).toHaveLength(1);
    const next = page1.body.amphorae_links.find((l: { rel: string }) => l.rel === 'next');
    expect(next.href).toContain(`marker=${page1.body.amphorae[0].id}`);
    const page2 = await admin.get(new URL(next.href).pathname + new URL(next.href).search);
    expect(page2.body.amphorae).toHaveLength(1);
    expect(page2.body.amphorae[0].id).not.toBe(page1.body.amphorae[0].id);
    expect((await admin.get(`${A}?marker=${MISSING}`)).status).toBe(400);
  });

  it('is admin only', async () => {
    const [amp] = await amphoraeOf(lb.id);
    for (const c of [owner, ownerReader, other, noRoles]) {
      const r = await c.get(A);
      expect(r.status).toBe(403);
      expect(r.body.faultstring).toBe('Policy does not allow this request to be performed.');
      expect((await c.get(`${A}/${amp.id}`)).status).toBe(403);
    }
  });

  it('answers 404 for an unknown amphora', async () => {
    const r = await admin.get(`${A}/${MISSING}`);
    expect(r.status).toBe(404);
    expect(r.body.faultstring).toBe(`Amphora ${MISSING} not found.`);
  });

  it('is not served under lbaas', async () => {
    expect((await admin.get('/v2/lbaas/amphorae')).status).toBe(404);
  });

  it('shows both amphorae of an ACTIVE_STANDBY load balancer', async () => {
    const fp = await admin.post('/v2/lbaas/flavorprofiles', {
      flavorprofile: { name: 'ha', provider_name: 'amphora', flavor_data: '{"loadbalancer_topology": "ACTIVE_STANDBY"}' },
    });
    const flavor = await admin.post('/v2/lbaas/flavors', { flavor: { name: 'ha', flavor_profile_id: fp.body.flavorprofile.id } });
    const ha = await createLb(owner, { flavor_id: flavor.body.flavor.id });
    const r = await admin.get(`${A}?loadbalancer_id=${ha.id}&sort=role:desc`);
    expect(r.body.amphorae.map((a: { role: string; vrrp_priority: number }) => [a.role, a.vrrp_priority])).toEqual([
      ['MASTER', 100],
      ['BACKUP', 90],
    ]);
    expect((await admin.get(`${A}?loadbalancer_id=${ha.id}&vrrp_priority=90`)).body.amphorae).toHaveLength(1);
  });
});

describe('failover', () => {
  it('sets the load balancer PENDING_UPDATE, answers 202 with no body, and replaces the amphora', async () => {
    const lb = await createLb(owner);
    const [old] = await amphoraeOf(lb.id);
    // Held, the failover cannot move the status on before the checks below.
    const held = holdSubmissions(api);
    const r = await admin.put(`${A}/${old.id}/failover`);
    expect(r.status).toBe(202);
    expect(r.body).toBeNull();
    expect(await lbStatus(lb.id)).toBe('PENDING_UPDATE');

    const again = await admin.put(`${A}/${old.id}/failover`);
    expect(again.status).toBe(409);
    expect(again.body.faultstring).toBe(`Load Balancer ${lb.id} is immutable and cannot be updated.`);

    await held.release();
    expect(await lbStatus(lb.id)).toBe('ACTIVE');
    const now = await amphoraeOf(lb.id);
    expect(now).toHaveLength(1);
    expect(now[0].id).not.toBe(old.id);
    expect(now[0].role).toBe('STANDALONE');
    // The replaced amphora is DELETED: hidden from show and list.
    expect((await admin.get(`${A}/${old.id}`)).status).toBe(404);
    expect((await admin.get(`${A}?status=DELETED`)).body.amphorae).toEqual([]);
    expect((await admin.put(`${A}/${old.id}/failover`)).status).toBe(404);
  });

  it('ACTIVE_STANDBY: failing the MASTER over promotes the BACKUP (which took the VIP) and the replacement joins as BACKUP', async () => {
    const fp = await admin.post('/v2/lbaas/flavorprofiles', {
      flavorprofile: { name: 'ha-failover', provider_name: 'amphora', flavor_data: '{"loadbalancer_topology": "ACTIVE_STANDBY"}' },
    });
    const flavor = await admin.post('/v2/lbaas/flavors', { flavor: { name: 'ha-failover', flavor_profile_id: fp.body.flavorprofile.id } });
    const ha = await createLb(owner, { flavor_id: flavor.body.flavor.id });
    const before = await amphoraeOf(ha.id);
    const master = before.find((a) => a.role === 'MASTER');
    const backup = before.find((a) => a.role === 'BACKUP');
    expect((await admin.put(`${A}/${master.id}/failover`)).status).toBe(202);
    await api.settle();
    const after = await amphoraeOf(ha.id);
    const pairs = after.map((a: { id: string; role: string; vrrp_priority: number }) => [a.id === backup.id ? 'old backup' : a.id === master.id ? 'old master' : 'new', a.role, a.vrrp_priority]);
    expect(pairs.sort()).toEqual([['new', 'BACKUP', 90], ['old backup', 'MASTER', 100]]);
    // Failing the BACKUP over replaces it as BACKUP; the MASTER stays.
    const replacement = after.find((a) => a.role === 'BACKUP');
    expect((await admin.put(`${A}/${replacement.id}/failover`)).status).toBe(202);
    await api.settle();
    const last = await amphoraeOf(ha.id);
    expect(last.map((a: { id: string; role: string }) => [a.id === backup.id ? 'old backup' : 'new', a.role]).sort()).toEqual([['new', 'BACKUP'], ['old backup', 'MASTER']]);
  });

  it('is admin only and leaves the load balancer ACTIVE when refused', async () => {
    const lb = await createLb(owner);
    const [amp] = await amphoraeOf(lb.id);
    for (const c of [owner, ownerReader, other]) expect((await c.put(`${A}/${amp.id}/failover`)).status).toBe(403);
    expect(await lbStatus(lb.id)).toBe('ACTIVE');
  });

  it('requires an ACTIVE load balancer (ERROR is refused too)', async () => {
    const lb = await createLb(owner);
    const [amp] = await amphoraeOf(lb.id);
    await models().load_balancer.update({ provisioning_status: 'ERROR' }, { where: { id: lb.id } });
    const r = await admin.put(`${A}/${amp.id}/failover`);
    expect(r.status).toBe(409);
    expect(r.body.faultstring).toBe(`Load Balancer ${lb.id} is immutable and cannot be updated.`);
    expect(await lbStatus(lb.id)).toBe('ERROR');
  });

  it('answers 404 for an unknown amphora and 409 for a spare one', async () => {
    expect((await admin.put(`${A}/${MISSING}/failover`)).body.faultstring).toBe(`Amphora ${MISSING} not found.`);
    const spare = randomUUID();
    await models().amphora.create({ id: spare, status: 'READY', cert_busy: false, created_at: new Date() });
    const r = await admin.put(`${A}/${spare}/failover`);
    expect(r.status).toBe(409);
    expect(r.body.faultstring).toBe(`amphora ${spare} is immutable and cannot be updated.`);
    expect((await admin.put(`${A}/${spare}/config`)).status).toBe(409);
    // A spare belongs to no project.
    expect((await admin.get(`${A}?project_id=p1`)).body.amphorae.map((a: { id: string }) => a.id)).not.toContain(spare);
    expect((await admin.get(`${A}?id=${spare}`)).body.amphorae[0].loadbalancer_id).toBeNull();
  });
});

describe('config', () => {
  it('answers 202 with no body and changes no status', async () => {
    const lb = await createLb(owner);
    const [amp] = await amphoraeOf(lb.id);
    const held = holdSubmissions(api);
    const r = await admin.put(`${A}/${amp.id}/config`);
    expect(r.status).toBe(202);
    expect(r.body).toBeNull();
    expect(await lbStatus(lb.id)).toBe('ACTIVE');
    await held.release();
    expect(await lbStatus(lb.id)).toBe('ACTIVE');
    expect((await amphoraeOf(lb.id))[0].id).toBe(amp.id);
  });

  it('is admin only and 404s for unknown amphorae', async () => {
    const lb = await createLb(owner);
    const [amp] = await amphoraeOf(lb.id);
    for (const c of [owner, ownerReader, other]) expect((await c.put(`${A}/${amp.id}/config`)).status).toBe(403);
    expect((await admin.put(`${A}/${MISSING}/config`)).status).toBe(404);
  });
});

describe('delete', () => {
  it('refuses amphorae that are not in ERROR', async () => {
    const lb = await createLb(owner);
    const [amp] = await amphoraeOf(lb.id);
    const r = await admin.delete(`${A}/${amp.id}`);
    expect(r.status).toBe(409);
    expect(r.body.faultstring).toBe(`amphora ${amp.id} is immutable and cannot be updated.`);
    expect((await admin.get(`${A}/${amp.id}`)).body.amphora.status).toBe('ALLOCATED');
  });

  it('marks an ERROR amphora PENDING_DELETE with 204', async () => {
    const lb = await createLb(owner);
    const [amp] = await amphoraeOf(lb.id);
    await models().amphora.update({ status: 'ERROR' }, { where: { id: amp.id } });
    for (const c of [owner, other, ownerReader]) expect((await c.delete(`${A}/${amp.id}`)).status).toBe(403);
    const held = holdSubmissions(api);
    const r = await admin.delete(`${A}/${amp.id}`);
    expect(r.status).toBe(204);
    expect(r.body).toBeNull();
    const shown = (await admin.get(`${A}/${amp.id}`)).body.amphora;
    expect(shown.status).toBe('PENDING_DELETE');
    expect(shown.updated_at).not.toBeNull();
    expect((await admin.delete(`${A}/${amp.id}`)).status).toBe(409);
    // The provider then deletes it: it is hidden from show and list.
    await held.release();
    expect((await admin.get(`${A}/${amp.id}`)).status).toBe(404);
    expect((await admin.get(`${A}?loadbalancer_id=${lb.id}`)).body.amphorae.map((a: { id: string }) => a.id)).not.toContain(amp.id);
  });

  it('answers 404 for unknown and DELETED amphorae', async () => {
    const r = await admin.delete(`${A}/${MISSING}`);
    expect(r.status).toBe(404);
    expect(r.body.faultstring).toBe(`Amphora ${MISSING} not found.`);
    const gone = randomUUID();
    await models().amphora.create({ id: gone, status: 'DELETED', cert_busy: false, created_at: new Date() });
    expect((await admin.delete(`${A}/${gone}`)).status).toBe(404);
  });
});

describe('stats', () => {
  it('returns one entry per listener with the amphora and load balancer ids', async () => {
    const lb = await createLb(owner);
    const [amp] = await amphoraeOf(lb.id);
    const missing = await admin.get(`${A}/${amp.id}/stats`);
    expect(missing.status).toBe(404);
    expect(missing.body.faultstring).toBe(`Amphora stats for ${amp.id} not found.`);

    const [l1, l2] = [randomUUID(), randomUUID()].sort();
    await models().listener_statistics.bulkCreate([
      { listener_id: l1, amphora_id: amp.id, bytes_in: 100, bytes_out: 200, active_connections: 3, total_connections: 40, request_errors: 5 },
      { listener_id: l2, amphora_id: amp.id, bytes_in: 6_000_000_000, bytes_out: 1, active_connections: 0, total_connections: 2, request_errors: 0 },
      { listener_id: l1, amphora_id: randomUUID(), bytes_in: 999, bytes_out: 999, active_connections: 9, total_connections: 9, request_errors: 9 },
    ]);
    const r = await admin.get(`${A}/${amp.id}/stats`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      amphora_stats: [
        { id: amp.id, loadbalancer_id: lb.id, listener_id: l1, active_connections: 3, bytes_in: 100, bytes_out: 200, request_errors: 5, total_connections: 40 },
        { id: amp.id, loadbalancer_id: lb.id, listener_id: l2, active_connections: 0, bytes_in: 6_000_000_000, bytes_out: 1, request_errors: 0, total_connections: 2 },
      ],
    });
    for (const c of [owner, ownerReader, other]) expect((await c.get(`${A}/${amp.id}/stats`)).status).toBe(403);
  });

  it('answers 404 for an unknown amphora', async () => {
    const r = await admin.get(`${A}/${MISSING}/stats`);
    expect(r.status).toBe(404);
    expect(r.body.faultstring).toBe(`Amphora stats for ${MISSING} not found.`);
  });
});
