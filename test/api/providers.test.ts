// /v2/lbaas/providers and the per-provider capability lists.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';

const PROVIDERS = {
  amphora: 'The Octavia Amphora driver.',
  octavia: 'Deprecated alias of the Octavia Amphora driver.',
  noop: 'The no-op provider.',
  ghost: 'Enabled in the configuration, but no driver exists.',
};
const FLAVOR_CAPABILITIES = ['loadbalancer_topology', 'compute_flavor', 'amp_image_tag', 'sriov_vip', 'allow_member_sriov'];
const AZ_CAPABILITIES = ['compute_zone', 'volume_zone', 'management_network', 'valid_vip_networks'];

let api: TestApi;
let admin: Client;
let member: Client;
let reader: Client;
let noRoles: Client;

beforeAll(async () => {
  api = await startApi({ api: { enabledProviderDrivers: PROVIDERS } }, { keystone: true });
  admin = api.client('admin-project:admin');
  member = api.client('p1:member');
  reader = api.client('p1:reader');
  noRoles = api.client('p1:');
});
afterAll(async () => {
  await api?.close();
});

const names = (list: Array<{ name: string }>) => list.map((c) => c.name);

describe('GET /providers', () => {
  it('lists every enabled provider with its description, for any project reader', async () => {
    for (const c of [admin, member, reader]) {
      const r = await c.get('/v2/lbaas/providers');
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ providers: Object.entries(PROVIDERS).map(([name, description]) => ({ name, description })) });
    }
  });

  it('refuses callers without a role', async () => {
    const r = await noRoles.get('/v2/lbaas/providers');
    expect(r.status).toBe(403);
    expect(r.body.faultstring).toBe('Policy does not allow this request to be performed.');
  });

  it('projects fields and is served under /v2.0 and without lbaas', async () => {
    const r = await member.get('/v2.0/lbaas/providers?fields=name');
    expect(r.body.providers).toEqual(Object.keys(PROVIDERS).map((name) => ({ name })));
    expect((await member.get('/v2/providers')).body.providers).toHaveLength(4);
  });
});

describe.each([
  ['flavor_capabilities', FLAVOR_CAPABILITIES],
  ['availability_zone_capabilities', AZ_CAPABILITIES],
])('GET /providers/{provider}/%s', (path, expected) => {
  it('lists the amphora driver capabilities (and the same for its octavia alias)', async () => {
    for (const provider of ['amphora', 'octavia']) {
      const r = await admin.get(`/v2/lbaas/providers/${provider}/${path}`);
      expect(r.status).toBe(200);
      expect(Object.keys(r.body)).toEqual([path]);
      expect(names(r.body[path])).toEqual(expected);
      for (const c of r.body[path]) {
        expect(Object.keys(c).sort()).toEqual(['description', 'name']);
        expect(typeof c.description).toBe('string');
        expect(c.description.length).toBeGreaterThan(0);
      }
    }
  });

  it('filters by exact name and description, and projects fields', async () => {
    const all = (await admin.get(`/v2/lbaas/providers/amphora/${path}`)).body[path];
    const target = all[1];
    const byName = await admin.get(`/v2/lbaas/providers/amphora/${path}?name=${encodeURIComponent(target.name)}`);
    expect(byName.body[path]).toEqual([target]);
    const byDescription = await admin.get(`/v2/lbaas/providers/amphora/${path}?description=${encodeURIComponent(target.description)}`);
    expect(byDescription.body[path]).toEqual([target]);
    const partial = await admin.get(`/v2/lbaas/providers/amphora/${path}?name=${target.name.slice(0, 4)}`);
    expect(partial.body[path]).toEqual([]);
    const both = await admin.get(`/v2/lbaas/providers/amphora/${path}?name=${encodeURIComponent(target.name)}&description=nope`);
    expect(both.body[path]).toEqual([]);
    const fields = await admin.get(`/v2/lbaas/providers/amphora/${path}?fields=name`);
    expect(fields.body[path]).toEqual(expected.map((name) => ({ name })));
  });

  it('is admin only', async () => {
    for (const c of [member, reader, noRoles]) {
      expect((await c.get(`/v2/lbaas/providers/amphora/${path}`)).status).toBe(403);
    }
  });

  it('answers 400 for a provider that is not enabled', async () => {
    const r = await admin.get(`/v2/lbaas/providers/bogus/${path}`);
    expect(r.status).toBe(400);
    expect(r.body).toEqual({ faultcode: 'Client', faultstring: "Provider 'bogus' is not enabled.", debuginfo: null });
  });

  it('answers 501 for an enabled provider that has no driver', async () => {
    const r = await admin.get(`/v2/lbaas/providers/ghost/${path}`);
    expect(r.status).toBe(501);
    expect(r.body).toEqual({ faultcode: 'Server', faultstring: "Provider 'ghost' was not found.", debuginfo: null });
  });

  it('returns an empty list for the no-op provider', async () => {
    const r = await admin.get(`/v2/lbaas/providers/noop/${path}`);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ [path]: [] });
  });
});

it('flavor capabilities describe the topology values', async () => {
  const r = await admin.get('/v2/lbaas/providers/amphora/flavor_capabilities?name=loadbalancer_topology');
  expect(r.body.flavor_capabilities[0].description).toContain('ACTIVE_STANDBY');
});
