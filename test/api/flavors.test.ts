// /v2/lbaas/flavors and /v2/lbaas/flavorprofiles.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';

const SUBNET = '5d7b5a6c-0e5f-4c55-9a4b-3f7e7f0f8a10';
const NIL = '00000000-0000-0000-0000-000000000000';
const MISSING = '3f0cbd52-1d36-4d31-9a3e-2d5e0c3c1a77';
const PROVIDERS = {
  amphora: 'The Octavia Amphora driver.',
  octavia: 'Deprecated alias of the Octavia Amphora driver.',
  noop: 'The no-op provider.',
  ghost: 'Enabled, but no driver.',
};

let api: TestApi;
let admin: Client;
let member: Client;
let reader: Client;
let otherMember: Client;
let noRoles: Client;

beforeAll(async () => {
  api = await startApi({ api: { enabledProviderDrivers: PROVIDERS } }, { keystone: true });
  admin = api.client('admin-project:admin');
  member = api.client('p1:member');
  reader = api.client('p1:reader');
  otherMember = api.client('p2:member');
  noRoles = api.client('p1:');
});
afterAll(async () => {
  await api?.close();
});

const FP = '/v2/lbaas/flavorprofiles';
const F = '/v2/lbaas/flavors';
const TOPOLOGY = JSON.stringify({ loadbalancer_topology: 'ACTIVE_STANDBY' });

async function createProfile(body: Record<string, unknown> = {}): Promise<any> {
  const r = await admin.post(FP, { flavorprofile: { name: 'fp', provider_name: 'amphora', flavor_data: TOPOLOGY, ...body } });
  expect(r.status).toBe(201);
  return r.body.flavorprofile;
}

async function createFlavor(profileId: string, body: Record<string, unknown> = {}): Promise<any> {
  const r = await admin.post(F, { flavor: { name: `f-${Math.random().toString(36).slice(2)}`, flavor_profile_id: profileId, ...body } });
  expect(r.status).toBe(201);
  return r.body.flavor;
}

describe('flavor profiles', () => {
  it('creates a profile with 201 and the exact object keys', async () => {
    const r = await admin.post(FP, { flavorprofile: { name: 'gold-profile', provider_name: 'amphora', flavor_data: TOPOLOGY } });
    expect(r.status).toBe(201);
    expect(Object.keys(r.body)).toEqual(['flavorprofile']);
    const fp = r.body.flavorprofile;
    expect(Object.keys(fp).sort()).toEqual(['flavor_data', 'id', 'name', 'provider_name']);
    expect(fp).toMatchObject({ name: 'gold-profile', provider_name: 'amphora', flavor_data: TOPOLOGY });
    expect(fp.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect((await admin.get(`${FP}/${fp.id}`)).body).toEqual({ flavorprofile: fp });
  });

  it('accepts the octavia alias and every amphora capability', async () => {
    const data = JSON.stringify({ loadbalancer_topology: 'SINGLE', compute_flavor: 'c1', amp_image_tag: 'amp', sriov_vip: false, allow_member_sriov: true });
    const fp = await createProfile({ provider_name: 'octavia', flavor_data: data });
    expect(fp.provider_name).toBe('octavia');
    expect(fp.flavor_data).toBe(data);
  });

  it('refuses flavor_data that is not JSON with 400', async () => {
    const r = await admin.post(FP, { flavorprofile: { name: 'x', provider_name: 'amphora', flavor_data: '{bad' } });
    expect(r.status).toBe(400);
    expect(r.body.faultstring).toBe('{bad is not a valid option for flavor_data');
  });

  it.each([
    [JSON.stringify({ bogus: 1 }), "Provider 'amphora' does not support a requested option: Additional properties are not allowed ('bogus' was unexpected)"],
    [JSON.stringify({ loadbalancer_topology: 'TRIPLE' }), "Provider 'amphora' does not support a requested option: loadbalancer_topology 'TRIPLE' is not one of"],
    [JSON.stringify({ sriov_vip: 'yes' }), "Provider 'amphora' does not support a requested option: sriov_vip"],
    ['[1, 2]', "Provider 'amphora' does not support a requested option: [1, 2] is not of type 'object'"],
  ])('answers 501 for flavor_data the driver does not support: %s', async (data, message) => {
    const r = await admin.post(FP, { flavorprofile: { name: 'x', provider_name: 'amphora', flavor_data: data } });
    expect(r.status).toBe(501);
    expect(r.body.faultcode).toBe('Server');
    expect(r.body.faultstring.startsWith(message)).toBe(true);
  });

  it('lets a provider without metadata checks take any JSON', async () => {
    const fp = await createProfile({ provider_name: 'noop', flavor_data: JSON.stringify({ anything: ['goes'] }) });
    expect(fp.provider_name).toBe('noop');
  });

  it('refuses providers that are not enabled (400) or have no driver (501)', async () => {
    const off = await admin.post(FP, { flavorprofile: { name: 'x', provider_name: 'bogus', flavor_data: '{}' } });
    expect(off.status).toBe(400);
    expect(off.body.faultstring).toBe("Provider 'bogus' is not enabled.");
    const ghost = await admin.post(FP, { flavorprofile: { name: 'x', provider_name: 'ghost', flavor_data: '{}' } });
    expect(ghost.status).toBe(501);
    expect(ghost.body.faultstring).toBe("Provider 'ghost' was not found.");
  });

  it.each(['name', 'provider_name', 'flavor_data'])('requires %s', async (field) => {
    const body: Record<string, unknown> = { name: 'x', provider_name: 'amphora', flavor_data: '{}' };
    delete body[field];
    const r = await admin.post(FP, { flavorprofile: body });
    expect(r.status).toBe(400);
    expect(r.body.faultstring).toBe(`Invalid input for field/attribute ${field}. Value: 'None'. Mandatory field missing.`);
  });

  it('limits lengths: name 255, flavor_data 4096', async () => {
    const longName = await admin.post(FP, { flavorprofile: { name: 'n'.repeat(256), provider_name: 'amphora', flavor_data: '{}' } });
    expect(longName.status).toBe(400);
    expect(longName.body.faultstring).toContain('Value should have a maximum character requirement of 255');
    const longData = JSON.stringify({ compute_flavor: 'c'.repeat(4100) });
    const r = await admin.post(FP, { flavorprofile: { name: 'x', provider_name: 'amphora', flavor_data: longData } });
    expect(r.status).toBe(400);
    expect(r.body.faultstring).toContain('Value should have a maximum character requirement of 4096');
    const extra = await admin.post(FP, { flavorprofile: { name: 'x', provider_name: 'amphora', flavor_data: '{}', id: MISSING } });
    expect(extra.status).toBe(400);
    expect(extra.body.faultstring).toMatch(/^Unknown attribute for argument .*: id$/);
  });

  it('is admin only, for reads as well as writes', async () => {
    const fp = await createProfile();
    for (const c of [member, reader, otherMember, noRoles]) {
      expect((await c.get(FP)).status).toBe(403);
      expect((await c.get(`${FP}/${fp.id}`)).status).toBe(403);
      expect((await c.post(FP, { flavorprofile: { name: 'x', provider_name: 'amphora', flavor_data: '{}' } })).status).toBe(403);
      expect((await c.put(`${FP}/${fp.id}`, { flavorprofile: { name: 'y' } })).status).toBe(403);
      expect((await c.delete(`${FP}/${fp.id}`)).status).toBe(403);
    }
    expect((await admin.get(`${FP}/${fp.id}`)).body.flavorprofile.name).toBe('fp');
  });

  it('answers 404 for unknown ids and the reserved nil UUID', async () => {
    const unknown = await admin.get(`${FP}/${MISSING}`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.faultstring).toBe(`Flavor Profile ${MISSING} not found.`);
    const nil = await admin.get(`${FP}/${NIL}`);
    expect(nil.status).toBe(404);
    expect(nil.body.faultstring).toBe(`Flavor profile ${NIL} not found.`);
    expect((await admin.put(`${FP}/${NIL}`, { flavorprofile: { name: 'x' } })).status).toBe(404);
    expect((await admin.delete(`${FP}/${NIL}`)).status).toBe(404);
    expect((await admin.put(`${FP}/${MISSING}`, { flavorprofile: { name: 'x' } })).body.faultstring).toBe(`Flavor Profile ${MISSING} not found.`);
    expect((await admin.delete(`${FP}/${MISSING}`)).body.faultstring).toBe(`Flavor profile ${MISSING} not found.`);
  });

  it('lists with the singular flavorprofile_links key, filters and fields', async () => {
    const a = await createProfile({ name: 'list-fp-a' });
    await createProfile({ name: 'list-fp-b', provider_name: 'noop', flavor_data: '{}' });
    const r = await admin.get(FP);
    expect(r.status).toBe(200);
    expect(Object.keys(r.body).sort()).toEqual(['flavorprofile_links', 'flavorprofiles']);
    expect(r.body.flavorprofiles.map((p: { id: string }) => p.id)).toContain(a.id);
    const byName = await admin.get(`${FP}?name=list-fp-a&fields=id&fields=provider_name`);
    expect(byName.body.flavorprofiles).toEqual([{ id: a.id, provider_name: 'amphora' }]);
    const byProvider = await admin.get(`${FP}?provider_name=noop&name=list-fp-b`);
    expect(byProvider.body.flavorprofiles).toHaveLength(1);
    expect((await admin.get(`${FP}?project_id=p1`)).status).toBe(400);
    const page = await admin.get(`${FP}?limit=1`);
    expect(page.body.flavorprofiles).toHaveLength(1);
    expect(page.body.flavorprofile_links[0].rel).toBe('next');
  });

  describe('update', () => {
    it('changes the supplied attributes and validates new flavor_data against the stored provider', async () => {
      const fp = await createProfile({ name: 'upd-a' });
      const r = await admin.put(`${FP}/${fp.id}`, { flavorprofile: { name: 'upd-b', flavor_data: '{"loadbalancer_topology": "SINGLE"}' } });
      expect(r.status).toBe(200);
      expect(r.body.flavorprofile).toEqual({ ...fp, name: 'upd-b', flavor_data: '{"loadbalancer_topology": "SINGLE"}' });
      expect((await admin.get(`${FP}/${fp.id}`)).body.flavorprofile.name).toBe('upd-b');
      const bad = await admin.put(`${FP}/${fp.id}`, { flavorprofile: { flavor_data: '{"nope": 1}' } });
      expect(bad.status).toBe(501);
      const notJson = await admin.put(`${FP}/${fp.id}`, { flavorprofile: { flavor_data: 'nope' } });
      expect(notJson.status).toBe(400);
      expect(notJson.body.faultstring).toBe('nope is not a valid option for flavor_data');
      expect((await admin.put(`${FP}/${fp.id}`, { flavorprofile: {} })).body.flavorprofile.name).toBe('upd-b');
    });

    it('validates the data against a new provider', async () => {
      const fp = await createProfile({ provider_name: 'noop', flavor_data: '{"custom": true}' });
      const toAmphora = await admin.put(`${FP}/${fp.id}`, { flavorprofile: { provider_name: 'amphora' } });
      expect(toAmphora.status).toBe(501);
      const off = await admin.put(`${FP}/${fp.id}`, { flavorprofile: { provider_name: 'bogus' } });
      expect(off.status).toBe(400);
      expect(off.body.faultstring).toBe("Provider 'bogus' is not enabled.");
      const both = await admin.put(`${FP}/${fp.id}`, { flavorprofile: { provider_name: 'amphora', flavor_data: '{}' } });
      expect(both.status).toBe(200);
      expect(both.body.flavorprofile.provider_name).toBe('amphora');
    });

    it.each(['name', 'provider_name', 'flavor_data'])('refuses %s: null', async (field) => {
      const fp = await createProfile();
      const r = await admin.put(`${FP}/${fp.id}`, { flavorprofile: { [field]: null } });
      expect(r.status).toBe(400);
      expect(r.body.faultstring).toBe(`None is not a valid option for ${field}`);
    });

    it('refuses provider or data changes (409) but allows renames while a flavor uses the profile', async () => {
      const fp = await createProfile();
      await createFlavor(fp.id);
      for (const change of [{ flavor_data: '{}' }, { provider_name: 'amphora' }]) {
        const r = await admin.put(`${FP}/${fp.id}`, { flavorprofile: change });
        expect(r.status).toBe(409);
        expect(r.body.faultstring).toBe(`Flavor profile ${fp.id} is in use and cannot be modified.`);
      }
      expect((await admin.put(`${FP}/${fp.id}`, { flavorprofile: { name: 'renamed' } })).status).toBe(200);
    });
  });

  describe('delete', () => {
    it('deletes an unused profile with 204', async () => {
      const fp = await createProfile();
      const r = await admin.delete(`${FP}/${fp.id}`);
      expect(r.status).toBe(204);
      expect(r.body).toBeNull();
      expect((await admin.get(`${FP}/${fp.id}`)).status).toBe(404);
    });

    it('refuses while a flavor uses it, then succeeds once the flavor is gone', async () => {
      const fp = await createProfile();
      const flavor = await createFlavor(fp.id);
      const r = await admin.delete(`${FP}/${fp.id}`);
      expect(r.status).toBe(409);
      expect(r.body.faultstring).toBe(`Flavor profile ${fp.id} is in use and cannot be modified.`);
      expect((await admin.delete(`${F}/${flavor.id}`)).status).toBe(204);
      expect((await admin.delete(`${FP}/${fp.id}`)).status).toBe(204);
    });
  });
});

describe('flavors', () => {
  let profileId: string;
  beforeAll(async () => {
    profileId = (await createProfile({ name: 'flavors-profile' })).id;
  });

  it('creates a flavor with 201, defaults enabled to true and description to ""', async () => {
    const r = await admin.post(F, { flavor: { name: 'gold', flavor_profile_id: profileId } });
    expect(r.status).toBe(201);
    expect(Object.keys(r.body)).toEqual(['flavor']);
    const f = r.body.flavor;
    expect(Object.keys(f).sort()).toEqual(['description', 'enabled', 'flavor_profile_id', 'id', 'name']);
    expect(f).toMatchObject({ name: 'gold', description: '', enabled: true, flavor_profile_id: profileId });
    expect((await member.get(`${F}/${f.id}`)).body).toEqual({ flavor: f });
  });

  it('coerces enabled like WSME does and stores the description', async () => {
    const f = await createFlavor(profileId, { enabled: 'false', description: 'cheap' });
    expect(f.enabled).toBe(false);
    expect(f.description).toBe('cheap');
    const bad = await admin.post(F, { flavor: { name: 'bad-enabled', flavor_profile_id: profileId, enabled: 'maybe' } });
    expect(bad.status).toBe(400);
    expect(bad.body.faultstring).toBe("Invalid input for field/attribute enabled. Value: 'maybe'. Value not an unambiguous boolean: maybe");
  });

  it('refuses a duplicate name with 409', async () => {
    await createFlavor(profileId, { name: 'silver' });
    const r = await admin.post(F, { flavor: { name: 'silver', flavor_profile_id: profileId } });
    expect(r.status).toBe(409);
    expect(r.body.faultstring).toBe('A flavor of silver already exists.');
  });

  it('validates the profile reference', async () => {
    const missing = await admin.post(F, { flavor: { name: 'x' } });
    expect(missing.status).toBe(400);
    expect(missing.body.faultstring).toBe("Invalid input for field/attribute flavor_profile_id. Value: 'None'. Mandatory field missing.");
    const notUuid = await admin.post(F, { flavor: { name: 'x', flavor_profile_id: 'abc' } });
    expect(notUuid.status).toBe(400);
    expect(notUuid.body.faultstring).toBe("Invalid input for field/attribute flavor_profile_id. Value: 'abc'. Value should be UUID format");
    const unknown = await admin.post(F, { flavor: { name: 'x', flavor_profile_id: MISSING } });
    expect(unknown.status).toBe(404);
    expect(unknown.body.faultstring).toBe(`Flavor Profile ${MISSING} not found.`);
    const nameless = await admin.post(F, { flavor: { flavor_profile_id: profileId } });
    expect(nameless.status).toBe(400);
    expect(nameless.body.faultstring).toBe("Invalid input for field/attribute name. Value: 'None'. Mandatory field missing.");
    const nullEnabled = await admin.post(F, { flavor: { name: 'x', flavor_profile_id: profileId, enabled: null } });
    expect(nullEnabled.status).toBe(400);
    expect(nullEnabled.body.faultstring).toBe('None is not a valid option for enabled');
  });

  it('is readable by every project role but managed by admins only', async () => {
    const f = await createFlavor(profileId);
    for (const c of [member, reader, otherMember]) {
      expect((await c.get(F)).status).toBe(200);
      expect((await c.get(`${F}/${f.id}`)).status).toBe(200);
      expect((await c.post(F, { flavor: { name: 'mine', flavor_profile_id: profileId } })).status).toBe(403);
      expect((await c.put(`${F}/${f.id}`, { flavor: { name: 'mine' } })).status).toBe(403);
      expect((await c.delete(`${F}/${f.id}`)).status).toBe(403);
    }
    expect((await noRoles.get(F)).status).toBe(403);
    expect((await noRoles.get(`${F}/${f.id}`)).status).toBe(403);
    expect((await admin.get(`${F}/${f.id}`)).body.flavor.name).toBe(f.name);
  });

  it('answers 404 for unknown ids and the reserved nil UUID', async () => {
    for (const id of [MISSING, NIL]) {
      const r = await member.get(`${F}/${id}`);
      expect(r.status).toBe(404);
      expect(r.body.faultstring).toBe(`Flavor ${id} not found.`);
      expect((await admin.put(`${F}/${id}`, { flavor: { name: 'x' } })).body.faultstring).toBe(`Flavor ${id} not found.`);
      expect((await admin.delete(`${F}/${id}`)).body.faultstring).toBe(`Flavor ${id} not found.`);
    }
  });

  it('lists with filters, fields and pagination', async () => {
    const a = await createFlavor(profileId, { name: 'list-a', enabled: false });
    const b = await createFlavor(profileId, { name: 'list-b' });
    const r = await reader.get(F);
    expect(Object.keys(r.body).sort()).toEqual(['flavors', 'flavors_links']);
    const ids = r.body.flavors.map((f: { id: string }) => f.id);
    expect(ids).toEqual(expect.arrayContaining([a.id, b.id]));
    expect(ids).toEqual([...ids].sort());
    expect((await reader.get(`${F}?name=list-a`)).body.flavors).toEqual([a]);
    const disabled = await reader.get(`${F}?enabled=false`);
    expect(disabled.body.flavors.every((f: { enabled: boolean }) => !f.enabled)).toBe(true);
    expect(disabled.body.flavors.map((f: { id: string }) => f.id)).toContain(a.id);
    expect((await reader.get(`${F}?name=list-b&fields=name`)).body.flavors).toEqual([{ name: 'list-b' }]);
    const page1 = await reader.get(`${F}?limit=1&sort=name:desc`);
    expect(page1.body.flavors).toHaveLength(1);
    const next = page1.body.flavors_links.find((l: { rel: string }) => l.rel === 'next');
    const page2 = await reader.get(new URL(next.href).pathname + new URL(next.href).search);
    expect(page2.body.flavors[0].name < page1.body.flavors[0].name).toBe(true);
    const badFilter = await reader.get(`${F}?project_id=p1`);
    expect(badFilter.status).toBe(400);
    expect(badFilter.body.faultstring).toBe('One or more arguments are either duplicate or invalid');
    expect((await reader.get(`${F}?sort=bogus`)).body.faultstring).toBe("Supplied sort key 'bogus' is not valid.");
  });

  describe('update', () => {
    it('changes name, description and enabled', async () => {
      const f = await createFlavor(profileId, { description: 'old' });
      const r = await admin.put(`${F}/${f.id}`, { flavor: { name: 'platinum', description: 'new', enabled: false } });
      expect(r.status).toBe(200);
      expect(r.body.flavor).toEqual({ ...f, name: 'platinum', description: 'new', enabled: false });
      expect((await admin.get(`${F}/${f.id}`)).body.flavor).toEqual(r.body.flavor);
      const cleared = await admin.put(`${F}/${f.id}`, { flavor: { description: null } });
      expect(cleared.body.flavor.description).toBe('');
      const same = await admin.put(`${F}/${f.id}`, { flavor: { name: 'platinum' } });
      expect(same.status).toBe(200);
    });

    it('refuses a profile change, a taken name and null name/enabled', async () => {
      const f = await createFlavor(profileId);
      const profile = await admin.put(`${F}/${f.id}`, { flavor: { flavor_profile_id: profileId } });
      expect(profile.status).toBe(400);
      expect(profile.body.faultstring).toMatch(/^Unknown attribute for argument .*: flavor_profile_id$/);
      await createFlavor(profileId, { name: 'taken' });
      const taken = await admin.put(`${F}/${f.id}`, { flavor: { name: 'taken' } });
      expect(taken.status).toBe(409);
      expect(taken.body.faultstring).toBe('A flavor of taken already exists.');
      for (const field of ['name', 'enabled']) {
        const r = await admin.put(`${F}/${f.id}`, { flavor: { [field]: null } });
        expect(r.status).toBe(400);
        expect(r.body.faultstring).toBe(`None is not a valid option for ${field}`);
      }
    });
  });

  describe('use by load balancers', () => {
    it('creates an ACTIVE_STANDBY load balancer from the flavor, refuses a disabled one, and blocks deletion while in use', async () => {
      const f = await createFlavor(profileId);
      const lb = await member.post('/v2/lbaas/loadbalancers', { loadbalancer: { vip_subnet_id: SUBNET, flavor_id: f.id } });
      expect(lb.status).toBe(201);
      expect(lb.body.loadbalancer.flavor_id).toBe(f.id);
      await api.settle();
      const amphorae = await admin.get(`/v2/octavia/amphorae?loadbalancer_id=${lb.body.loadbalancer.id}`);
      expect(amphorae.body.amphorae.map((a: { role: string }) => a.role).sort()).toEqual(['BACKUP', 'MASTER']);

      const inUse = await admin.delete(`${F}/${f.id}`);
      expect(inUse.status).toBe(409);
      expect(inUse.body.faultstring).toBe(`Flavor ${f.id} is in use and cannot be modified.`);

      expect((await admin.put(`${F}/${f.id}`, { flavor: { enabled: false } })).status).toBe(200);
      const disabled = await member.post('/v2/lbaas/loadbalancers', { loadbalancer: { vip_subnet_id: SUBNET, flavor_id: f.id } });
      expect(disabled.status).toBe(400);
      expect(disabled.body.faultstring).toBe(`The selected flavor is not allowed in this deployment: ${f.id}`);

      expect((await member.delete(`/v2/lbaas/loadbalancers/${lb.body.loadbalancer.id}`)).status).toBe(204);
      await api.settle();
      // Only a DELETED load balancer refers to it now.
      expect((await admin.delete(`${F}/${f.id}`)).status).toBe(204);
      expect((await admin.get(`${F}/${f.id}`)).status).toBe(404);
    });
  });
});
