// /v2/lbaas/availabilityzones (keyed by name) and /v2/lbaas/availabilityzoneprofiles.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';

const SUBNET = '5d7b5a6c-0e5f-4c55-9a4b-3f7e7f0f8a10';
const NIL = '00000000-0000-0000-0000-000000000000';
const MISSING = '3f0cbd52-1d36-4d31-9a3e-2d5e0c3c1a77';

let api: TestApi;
let admin: Client;
let member: Client;
let reader: Client;
let otherMember: Client;
let noRoles: Client;

beforeAll(async () => {
  api = await startApi({}, { keystone: true });
  admin = api.client('admin-project:admin');
  member = api.client('p1:member');
  reader = api.client('p1:reader');
  otherMember = api.client('p2:member');
  noRoles = api.client('p1:');
});
afterAll(async () => {
  await api?.close();
});

const AZP = '/v2/lbaas/availabilityzoneprofiles';
const AZ = '/v2/lbaas/availabilityzones';
const DATA = JSON.stringify({ compute_zone: 'nova', valid_vip_networks: ['net-1'] });

async function createProfile(body: Record<string, unknown> = {}): Promise<any> {
  const r = await admin.post(AZP, { availability_zone_profile: { name: 'azp', provider_name: 'amphora', availability_zone_data: DATA, ...body } });
  expect(r.status).toBe(201);
  return r.body.availability_zone_profile;
}

let seq = 0;
async function createZone(profileId: string, body: Record<string, unknown> = {}): Promise<any> {
  const r = await admin.post(AZ, { availability_zone: { name: `az-${++seq}`, availability_zone_profile_id: profileId, ...body } });
  expect(r.status).toBe(201);
  return r.body.availability_zone;
}

describe('availability zone profiles', () => {
  it('creates a profile with 201 and the exact object keys', async () => {
    const r = await admin.post(AZP, { availability_zone_profile: { name: 'zone-profile', provider_name: 'amphora', availability_zone_data: DATA } });
    expect(r.status).toBe(201);
    expect(Object.keys(r.body)).toEqual(['availability_zone_profile']);
    const p = r.body.availability_zone_profile;
    expect(Object.keys(p).sort()).toEqual(['availability_zone_data', 'id', 'name', 'provider_name']);
    expect(p).toMatchObject({ name: 'zone-profile', provider_name: 'amphora', availability_zone_data: DATA });
    expect((await admin.get(`${AZP}/${p.id}`)).body).toEqual({ availability_zone_profile: p });
  });

  it('refuses data that is not JSON (400) or that the driver does not support (501)', async () => {
    const notJson = await admin.post(AZP, { availability_zone_profile: { name: 'x', provider_name: 'amphora', availability_zone_data: 'zone=a' } });
    expect(notJson.status).toBe(400);
    expect(notJson.body.faultstring).toBe('zone=a is not a valid option for availability_zone_data');
    const wrongType = await admin.post(AZP, {
      availability_zone_profile: { name: 'x', provider_name: 'amphora', availability_zone_data: JSON.stringify({ valid_vip_networks: 'net-1' }) },
    });
    expect(wrongType.status).toBe(501);
    expect(wrongType.body.faultstring).toBe(
      `Provider 'amphora' does not support a requested option: valid_vip_networks "net-1" is not of type 'array'`,
    );
    const extra = await admin.post(AZP, { availability_zone_profile: { name: 'x', provider_name: 'amphora', availability_zone_data: '{"region": "r1"}' } });
    expect(extra.status).toBe(501);
    expect(extra.body.faultstring).toBe("Provider 'amphora' does not support a requested option: Additional properties are not allowed ('region' was unexpected)");
    const off = await admin.post(AZP, { availability_zone_profile: { name: 'x', provider_name: 'f5', availability_zone_data: '{}' } });
    expect(off.status).toBe(400);
    expect(off.body.faultstring).toBe("Provider 'f5' is not enabled.");
    const missing = await admin.post(AZP, { availability_zone_profile: { name: 'x', provider_name: 'amphora' } });
    expect(missing.body.faultstring).toBe("Invalid input for field/attribute availability_zone_data. Value: 'None'. Mandatory field missing.");
  });

  it('is admin only', async () => {
    const p = await createProfile();
    for (const c of [member, reader, otherMember, noRoles]) {
      expect((await c.get(AZP)).status).toBe(403);
      expect((await c.get(`${AZP}/${p.id}`)).status).toBe(403);
      expect((await c.post(AZP, { availability_zone_profile: { name: 'x', provider_name: 'amphora', availability_zone_data: '{}' } })).status).toBe(403);
      expect((await c.put(`${AZP}/${p.id}`, { availability_zone_profile: { name: 'y' } })).status).toBe(403);
      expect((await c.delete(`${AZP}/${p.id}`)).status).toBe(403);
    }
  });

  it('lists with the singular availability_zone_profile_links key', async () => {
    const p = await createProfile({ name: 'listed-azp' });
    const r = await admin.get(AZP);
    expect(Object.keys(r.body).sort()).toEqual(['availability_zone_profile_links', 'availability_zone_profiles']);
    expect((await admin.get(`${AZP}?name=listed-azp`)).body.availability_zone_profiles).toEqual([p]);
    expect((await admin.get(`${AZP}?availability_zone_data=${encodeURIComponent(DATA)}&name=listed-azp&fields=id`)).body.availability_zone_profiles).toEqual([
      { id: p.id },
    ]);
  });

  it('answers 404 for unknown ids and the nil UUID', async () => {
    for (const id of [MISSING, NIL]) {
      const r = await admin.get(`${AZP}/${id}`);
      expect(r.status).toBe(404);
      expect(r.body.faultstring).toBe(`Availability Zone Profile ${id} not found.`);
      expect((await admin.delete(`${AZP}/${id}`)).status).toBe(404);
      expect((await admin.put(`${AZP}/${id}`, { availability_zone_profile: { name: 'x' } })).status).toBe(404);
    }
  });

  it('updates, refusing nulls and driver-input changes while a zone uses the profile', async () => {
    const p = await createProfile();
    const renamed = await admin.put(`${AZP}/${p.id}`, { availability_zone_profile: { name: 'renamed', availability_zone_data: '{"volume_zone": "v"}' } });
    expect(renamed.status).toBe(200);
    expect(renamed.body.availability_zone_profile).toEqual({ ...p, name: 'renamed', availability_zone_data: '{"volume_zone": "v"}' });
    const nulled = await admin.put(`${AZP}/${p.id}`, { availability_zone_profile: { availability_zone_data: null } });
    expect(nulled.status).toBe(400);
    expect(nulled.body.faultstring).toBe('None is not a valid option for availability_zone_data');
    const bad = await admin.put(`${AZP}/${p.id}`, { availability_zone_profile: { availability_zone_data: '{"volume_zone": 1}' } });
    expect(bad.status).toBe(501);
    await createZone(p.id);
    for (const change of [{ availability_zone_data: '{}' }, { provider_name: 'octavia' }]) {
      const r = await admin.put(`${AZP}/${p.id}`, { availability_zone_profile: change });
      expect(r.status).toBe(409);
      expect(r.body.faultstring).toBe(`Availability Zone Profile ${p.id} is in use and cannot be modified.`);
    }
    expect((await admin.put(`${AZP}/${p.id}`, { availability_zone_profile: { name: 'still-fine' } })).status).toBe(200);
  });

  it('deletes only unused profiles', async () => {
    const p = await createProfile();
    const zone = await createZone(p.id);
    const inUse = await admin.delete(`${AZP}/${p.id}`);
    expect(inUse.status).toBe(409);
    expect(inUse.body.faultstring).toBe(`Availability Zone Profile ${p.id} is in use and cannot be modified.`);
    expect((await admin.delete(`${AZ}/${zone.name}`)).status).toBe(204);
    expect((await admin.delete(`${AZP}/${p.id}`)).status).toBe(204);
    expect((await admin.get(`${AZP}/${p.id}`)).status).toBe(404);
  });
});

describe('availability zones', () => {
  let profileId: string;
  beforeAll(async () => {
    profileId = (await createProfile({ name: 'zones-profile' })).id;
  });

  it('creates a zone with 201, keyed by name, enabled by default', async () => {
    const r = await admin.post(AZ, { availability_zone: { name: 'zone-a', availability_zone_profile_id: profileId } });
    expect(r.status).toBe(201);
    expect(r.body).toEqual({ availability_zone: { name: 'zone-a', description: '', enabled: true, availability_zone_profile_id: profileId } });
    expect((await member.get(`${AZ}/zone-a`)).body).toEqual(r.body);
  });

  it('refuses a duplicate name, the reserved nil name and unknown profiles', async () => {
    await createZone(profileId, { name: 'zone-dup' });
    const dup = await admin.post(AZ, { availability_zone: { name: 'zone-dup', availability_zone_profile_id: profileId } });
    expect(dup.status).toBe(409);
    expect(dup.body.faultstring).toBe('A availability zone of zone-dup already exists.');
    const nil = await admin.post(AZ, { availability_zone: { name: NIL, availability_zone_profile_id: profileId } });
    expect(nil.status).toBe(409);
    const unknown = await admin.post(AZ, { availability_zone: { name: 'zone-x', availability_zone_profile_id: MISSING } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.faultstring).toBe(`Availability Zone Profile ${MISSING} not found.`);
    const noProfile = await admin.post(AZ, { availability_zone: { name: 'zone-x' } });
    expect(noProfile.status).toBe(400);
    expect(noProfile.body.faultstring).toBe("Invalid input for field/attribute availability_zone_profile_id. Value: 'None'. Mandatory field missing.");
    const longName = await admin.post(AZ, { availability_zone: { name: 'z'.repeat(256), availability_zone_profile_id: profileId } });
    expect(longName.status).toBe(400);
    expect((await admin.get(`${AZ}/zone-x`)).status).toBe(404);
  });

  it('is readable by every project role but managed by admins only', async () => {
    const zone = await createZone(profileId);
    for (const c of [member, reader, otherMember]) {
      expect((await c.get(AZ)).status).toBe(200);
      expect((await c.get(`${AZ}/${zone.name}`)).status).toBe(200);
      expect((await c.post(AZ, { availability_zone: { name: 'mine', availability_zone_profile_id: profileId } })).status).toBe(403);
      expect((await c.put(`${AZ}/${zone.name}`, { availability_zone: { description: 'mine' } })).status).toBe(403);
      expect((await c.delete(`${AZ}/${zone.name}`)).status).toBe(403);
    }
    expect((await noRoles.get(AZ)).status).toBe(403);
    expect((await admin.get(`${AZ}/${zone.name}`)).body.availability_zone.description).toBe('');
  });

  it('answers 404 for unknown names and the nil UUID', async () => {
    for (const name of ['no-such-zone', NIL]) {
      const r = await member.get(`${AZ}/${name}`);
      expect(r.status).toBe(404);
      expect(r.body.faultstring).toBe(`Availability Zone ${name} not found.`);
      expect((await admin.put(`${AZ}/${name}`, { availability_zone: { description: 'x' } })).status).toBe(404);
      expect((await admin.delete(`${AZ}/${name}`)).body.faultstring).toBe(`Availability Zone ${name} not found.`);
    }
  });

  it('updates description and enabled only', async () => {
    const zone = await createZone(profileId);
    const r = await admin.put(`${AZ}/${zone.name}`, { availability_zone: { description: 'east', enabled: false } });
    expect(r.status).toBe(200);
    expect(r.body.availability_zone).toEqual({ ...zone, description: 'east', enabled: false });
    expect((await member.get(`${AZ}/${zone.name}`)).body.availability_zone.enabled).toBe(false);
    for (const field of ['name', 'availability_zone_profile_id']) {
      const bad = await admin.put(`${AZ}/${zone.name}`, { availability_zone: { [field]: 'x' } });
      expect(bad.status).toBe(400);
      expect(bad.body.faultstring).toMatch(new RegExp(`^Unknown attribute for argument .*: ${field}$`));
    }
    const nullEnabled = await admin.put(`${AZ}/${zone.name}`, { availability_zone: { enabled: null } });
    expect(nullEnabled.status).toBe(400);
    expect(nullEnabled.body.faultstring).toBe('None is not a valid option for enabled');
  });

  it('lists with filters, fields and name-keyed pagination', async () => {
    for (const name of ['page-a', 'page-b', 'page-c']) await createZone(profileId, { name, description: 'paged' });
    const r = await reader.get(`${AZ}?description=paged`);
    expect(Object.keys(r.body).sort()).toEqual(['availability_zones', 'availability_zones_links']);
    expect(r.body.availability_zones.map((z: { name: string }) => z.name)).toEqual(['page-a', 'page-b', 'page-c']);
    expect((await reader.get(`${AZ}?description=paged&fields=name`)).body.availability_zones).toEqual([
      { name: 'page-a' }, { name: 'page-b' }, { name: 'page-c' },
    ]);
    const page1 = await reader.get(`${AZ}?description=paged&limit=2`);
    expect(page1.body.availability_zones.map((z: { name: string }) => z.name)).toEqual(['page-a', 'page-b']);
    const next = page1.body.availability_zones_links.find((l: { rel: string }) => l.rel === 'next');
    expect(next.href).toContain('marker=page-b');
    const page2 = await reader.get(`${new URL(next.href).pathname}${new URL(next.href).search}`);
    expect(page2.body.availability_zones.map((z: { name: string }) => z.name)).toEqual(['page-c']);
    const desc = await reader.get(`${AZ}?description=paged&sort=name:desc`);
    expect(desc.body.availability_zones.map((z: { name: string }) => z.name)).toEqual(['page-c', 'page-b', 'page-a']);
    expect((await reader.get(`${AZ}?enabled=true&name=page-b`)).body.availability_zones).toHaveLength(1);
    expect((await reader.get(`${AZ}?project_id=p1`)).status).toBe(400);
    expect((await reader.get(`${AZ}?marker=no-such-zone`)).status).toBe(400);
  });

  it('is used by load balancers: disabled zones are refused and zones in use cannot be deleted', async () => {
    const zone = await createZone(profileId);
    const lb = await member.post('/v2/lbaas/loadbalancers', { loadbalancer: { vip_subnet_id: SUBNET, availability_zone: zone.name } });
    expect(lb.status).toBe(201);
    expect(lb.body.loadbalancer.availability_zone).toBe(zone.name);
    await api.settle();
    const inUse = await admin.delete(`${AZ}/${zone.name}`);
    expect(inUse.status).toBe(409);
    expect(inUse.body.faultstring).toBe(`Availability Zone ${zone.name} is in use and cannot be modified.`);

    await admin.put(`${AZ}/${zone.name}`, { availability_zone: { enabled: false } });
    const disabled = await member.post('/v2/lbaas/loadbalancers', { loadbalancer: { vip_subnet_id: SUBNET, availability_zone: zone.name } });
    expect(disabled.status).toBe(400);
    expect(disabled.body.faultstring).toBe(`The selected availability_zone is not allowed in this deployment: ${zone.name}`);

    expect((await member.delete(`/v2/lbaas/loadbalancers/${lb.body.loadbalancer.id}`)).status).toBe(204);
    await api.settle();
    expect((await admin.delete(`${AZ}/${zone.name}`)).status).toBe(204);
    expect((await member.get(`${AZ}/${zone.name}`)).status).toBe(404);
  });
});
