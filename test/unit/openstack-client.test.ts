// The OpenStack service client (driver/openstack/client.ts) with an injected fetch: endpoint
// resolution, headers, 401 renewal, and errors carrying each service's own message.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { OpenStackError, ServiceClient, type ServiceCredentials } from '../../driver/openstack/client.ts';

interface Sent {
  url: string;
  init: RequestInit;
}

function setup(answers: Array<Response | Error>, over: Partial<ConstructorParameters<typeof ServiceClient>[0]> = {}) {
  const sent: Sent[] = [];
  let generation = 1;
  const endpoints: Array<[string, unknown]> = [];
  const credentials: ServiceCredentials = {
    serviceToken: async () => `tok-${generation}`,
    invalidateServiceToken: () => void generation++,
    serviceProjectId: async () => 'p',
    endpointFor: async (type, options) => {
      endpoints.push([type, options]);
      return 'http://neutron.example:9696/';
    },
  };
  const client = new ServiceClient({
    credentials,
    serviceType: 'network',
    serviceName: 'Neutron',
    versionPath: '/v2.0',
    timeoutMs: 1000,
    fetch: async (url, init) => {
      sent.push({ url, init });
      const next = answers.shift();
      if (!next) throw new Error('no answer scripted');
      if (next instanceof Error) throw next;
      return next;
    },
    ...over,
  });
  return { client, sent, endpoints };
}

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
const schema = z.object({ networks: z.array(z.object({ id: z.string() })) });

describe('OpenStack service client', () => {
  it('resolves the catalog endpoint, appends the version, sends the token and the query', async () => {
    const { client, sent, endpoints } = setup([json(200, { networks: [{ id: 'n1', extra: true }] })], { interface: 'internal', region: 'RegionTwo' });
    expect(await client.get('/networks', schema, { name: 'a b', fields: ['id', 'name'], skip: undefined })).toEqual({ networks: [{ id: 'n1' }] });
    expect(endpoints).toEqual([['network', { interface: 'internal', region: 'RegionTwo' }]]);
    expect(sent[0]!.url).toBe('http://neutron.example:9696/v2.0/networks?name=a+b&fields=id&fields=name');
    expect(sent[0]!.init.method).toBe('GET');
    expect(sent[0]!.init.headers).toEqual({ Accept: 'application/json', 'X-Auth-Token': 'tok-1' });
  });

  it('uses a configured endpoint as it is', async () => {
    const { client, sent, endpoints } = setup([json(201, { networks: [] })], { endpoint: 'http://10.0.0.1:9696/v2.0/' });
    await client.post('/networks', { network: { name: 'x' } }, schema);
    expect(endpoints).toEqual([]);
    expect(sent[0]!.url).toBe('http://10.0.0.1:9696/v2.0/networks');
    expect(sent[0]!.init.body).toBe('{"network":{"name":"x"}}');
    expect(sent[0]!.init.headers).toMatchObject({ 'Content-Type': 'application/json' });
  });

  it('renews the token once after a 401', async () => {
    const { client, sent } = setup([new Response('', { status: 401 }), json(200, { networks: [] })]);
    await client.get('/networks', schema);
    expect(sent.map((s) => (s.init.headers as Record<string, string>)['X-Auth-Token'])).toEqual(['tok-1', 'tok-2']);
  });

  it("turns error answers into OpenStackError with the service's type and message", async () => {
    const cases: Array<[Response, { status: number; type: string | null; detail: string }]> = [
      [json(409, { NeutronError: { type: 'IpAddressAlreadyAllocated', message: 'IP address 10.0.0.5 already allocated', detail: '' } }), { status: 409, type: 'IpAddressAlreadyAllocated', detail: 'IP address 10.0.0.5 already allocated' }],
      [json(400, { badRequest: { code: 400, message: 'Invalid flavorRef provided.' } }), { status: 400, type: 'badRequest', detail: 'Invalid flavorRef provided.' }],
      [json(403, { message: 'You are not authorized' }), { status: 403, type: null, detail: 'You are not authorized' }],
      [new Response('<html><body><h1>503 Service Unavailable</h1>\n  No server is available.</body></html>', { status: 503 }), { status: 503, type: null, detail: '503 Service Unavailable No server is available.' }],
      [new Response('', { status: 502 }), { status: 502, type: null, detail: 'HTTP 502 without a body' }],
    ];
    for (const [answer, expected] of cases) {
      const { client } = setup([answer]);
      const err = await client.get('/networks', schema).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenStackError);
      expect(err).toMatchObject({ service: 'Neutron', method: 'GET', path: '/networks', ...expected });
    }
  });

  it('find() and delete() take 404 as absent; no answer and unexpected bodies are errors', async () => {
    const notFound = () => json(404, { NeutronError: { type: 'NetworkNotFound', message: 'Network x could not be found.', detail: '' } });
    const { client } = setup([notFound(), notFound(), new Response(null, { status: 204 })]);
    expect(await client.find('/networks/x', schema)).toBeUndefined();
    expect(await client.delete('/networks/x')).toBe(false);
    expect(await client.delete('/networks/y')).toBe(true);

    const refused = Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    const down = setup([refused]).client;
    await expect(down.get('/networks', schema)).rejects.toMatchObject({ status: null, detail: 'fetch failed (ECONNREFUSED)' });

    const odd = setup([json(200, { networks: [{ name: 'no id' }] })]).client;
    await expect(odd.get('/networks', schema)).rejects.toThrow(/unexpected answer: networks\.0\.id/);
  });
});
