// The `nova` compute driver against a small fake Nova (and Glance) HTTP server in this process:
// Nova is not available on this machine. The fake records every request, so the tests assert the
// exact request bodies and headers the compute API v2.1 documents (microversion 2.15); it answers
// with the documented shapes, trimmed to what the driver reads. What a real Nova does beyond that
// (scheduling, the config drive, cloud-init in the image) is not tested here.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { resolveAgentSettings } from '../../../amphora/agent/settings.ts';
import { createLogger } from '../../../common/logging.ts';
import { deriveAmphoraKey } from '../../../common/transport/signing.ts';
import { NovaComputeDriver, type NovaComputeOptions } from '../../../driver/compute/nova.ts';
import { MAX_USER_DATA_BYTES } from '../../../driver/compute/nova-user-data.ts';
import { OpenStackError, type ServiceCredentials } from '../../../driver/openstack/client.ts';
import type { Database, Row } from '../../../common/db/database.ts';
import { NoopConfigDelivery } from '../../../driver/amphora/config-delivery.ts';
import { AmphoraProvider } from '../../../driver/amphora/provider.ts';
import { SparePool } from '../../../driver/amphora/spare-pool.ts';
import { NoopNetworkDriver } from '../../../driver/network/noop.ts';
import { openTestDatabase } from '../../helpers/database.ts';

const MASTER_KEY = Buffer.from('0123456789abcdef0123456789abcdef', 'utf8');
const MGMT_NET = '5e0f0b5e-0000-4000-8000-00000000a001';
const OTHER_NET = '5e0f0b5e-0000-4000-8000-00000000a002';
const FLAVOR = 'amphora-flavor';
const IMAGE = '1a2b3c4d-0000-4000-8000-0000000000aa';
const AMQP_URL = 'amqp://argonaut:secret@10.0.0.2:5672/argonaut';

interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: any;
}

/** A fake Nova under /compute/v2.1 and Glance under /image (the driver appends /v2). */
class FakeNova {
  readonly requests: Recorded[] = [];
  /** Statuses a new server goes through, one per GET (the last one stays). */
  bootStatuses: string[] = ['BUILD', 'ACTIVE'];
  fault: string | null = null;
  /** Answer 401 to this token (the driver must renew it and try again). */
  rejectToken: string | null = null;
  /** The next POST /servers answers this error. */
  createError: { status: number; body: unknown } | null = null;
  readonly servers = new Map<string, { statuses: string[] }>();
  readonly groups = new Map<string, { id: string; name: string; policies: string[] }>();
  images: Array<{ id: string; name: string; created_at: string }> = [];
  private server!: Server;
  base = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString('utf8')));
      req.on('end', () => {
        const url = new URL(req.url!, 'http://fake');
        const rec: Recorded = { method: req.method!, path: url.pathname, query: url.searchParams, headers: req.headers, body: text ? JSON.parse(text) : undefined };
        this.requests.push(rec);
        const [status, body] = this.route(rec);
        res.writeHead(status, body === undefined ? {} : { 'Content-Type': 'application/json' });
        res.end(body === undefined ? undefined : JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  reset(): void {
    this.requests.length = 0;
    this.bootStatuses = ['BUILD', 'ACTIVE'];
    this.fault = null;
    this.rejectToken = null;
    this.createError = null;
    this.servers.clear();
    this.groups.clear();
  }

  /** Requests to Nova/Glance other than the status polls. */
  calls(): string[] {
    return this.requests.map((r) => `${r.method} ${r.path}`);
  }

  private route(r: Recorded): [number, unknown] {
    if (this.rejectToken && r.headers['x-auth-token'] === this.rejectToken) return [401, { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } }];
    const notFound = (what: string): [number, unknown] => [404, { itemNotFound: { code: 404, message: `${what} could not be found.` } }];
    const p = r.path;
    let m: RegExpExecArray | null;
    if (r.method === 'GET' && p === '/image/v2/images') return [200, { images: this.images, first: '/v2/images', schema: '/v2/schemas/images' }];
    if (r.method === 'POST' && p === '/compute/v2.1/servers') {
      if (this.createError) return [this.createError.status, this.createError.body];
      const id = randomUUID();
      this.servers.set(id, { statuses: [...this.bootStatuses] });
      return [202, { server: { id, links: [], 'OS-DCF:diskConfig': 'MANUAL', security_groups: [{ name: 'default' }], adminPass: 'not-used' } }];
    }
    if ((m = /^\/compute\/v2\.1\/servers\/([^/]+)$/.exec(p))) {
      const server = this.servers.get(m[1]!);
      if (!server) return notFound(`Instance ${m[1]}`);
      if (r.method === 'DELETE') {
        this.servers.delete(m[1]!);
        return [204, undefined];
      }
      const status = server.statuses.length > 1 ? server.statuses.shift()! : server.statuses[0]!;
      return [200, { server: { id: m[1], name: 'x', status, ...(status === 'ERROR' && this.fault ? { fault: { code: 500, message: this.fault, created: '2024-01-01T00:00:00Z' } } : {}) } }];
    }
    if ((m = /^\/compute\/v2\.1\/servers\/([^/]+)\/os-interface(?:\/([^/]+))?$/.exec(p))) {
      if (!this.servers.has(m[1]!)) return notFound(`Instance ${m[1]}`);
      const attachment = (net: string, port: string, ip: string) => ({
        net_id: net,
        port_id: port,
        mac_addr: 'fa:16:3e:00:00:01',
        port_state: 'ACTIVE',
        fixed_ips: [{ ip_address: ip, subnet_id: randomUUID() }],
      });
      if (r.method === 'GET') return [200, { interfaceAttachments: [attachment(OTHER_NET, randomUUID(), '198.51.100.7'), attachment(MGMT_NET, randomUUID(), '192.0.2.10')] }];
      if (r.method === 'POST') return [200, { interfaceAttachment: attachment(OTHER_NET, r.body.interfaceAttachment.port_id, '198.51.100.8') }];
      if (r.method === 'DELETE') return m[2] === 'gone' ? notFound(`Port ${m[2]}`) : [202, undefined];
    }
    if (p === '/compute/v2.1/os-server-groups') {
      if (r.method === 'GET') return [200, { server_groups: [...this.groups.values()].map((g) => ({ ...g, members: [], metadata: {} })) }];
      if (r.method === 'POST') {
        const group = { id: randomUUID(), name: r.body.server_group.name, policies: r.body.server_group.policies };
        this.groups.set(group.id, group);
        return [200, { server_group: { ...group, members: [], metadata: {} } }];
      }
    }
    if ((m = /^\/compute\/v2\.1\/os-server-groups\/([^/]+)$/.exec(p)) && r.method === 'DELETE') {
      return this.groups.delete(m[1]!) ? [204, undefined] : notFound(`Instance group ${m[1]}`);
    }
    return [500, { computeFault: { code: 500, message: `fake Nova does not know ${r.method} ${p}` } }];
  }
}

const nova = new FakeNova();
beforeAll(() => nova.start());
afterAll(() => nova.close());
beforeEach(() => nova.reset());

/** Tokens tok-1, tok-2...: a new one after each invalidation. */
class FakeCredentials implements ServiceCredentials {
  generation = 1;
  async serviceToken() {
    return `tok-${this.generation}`;
  }
  invalidateServiceToken() {
    this.generation++;
  }
  async serviceProjectId() {
    return 'service-project';
  }
  async endpointFor(serviceType: string) {
    if (serviceType === 'compute') return `${nova.base}/compute/v2.1`;
    if (serviceType === 'image') return `${nova.base}/image`;
    throw new Error(`no ${serviceType} endpoint`);
  }
}

function driverWith(over: Partial<NovaComputeOptions> = {}) {
  const credentials = new FakeCredentials();
  const driver = new NovaComputeDriver({
    credentials,
    timeoutMs: 5000,
    flavorId: FLAVOR,
    imageId: IMAGE,
    managementNetworkId: MGMT_NET,
    bootTimeoutMs: 5000,
    pollIntervalMs: 20,
    agent: { messaging: { url: AMQP_URL, prefix: 'argo' }, heartbeatIntervalMs: 10_000, dataplaneWorkers: 2, logLevel: 'info' },
    logger: createLogger('test', 'silent'),
    ...over,
  });
  return { driver, credentials };
}

function bootRequest(role: string | null = 'STANDALONE', loadBalancerId: string | null = randomUUID()) {
  const amphoraId = randomUUID();
  return { amphoraId, loadBalancerId, role, key: deriveAmphoraKey(MASTER_KEY, amphoraId) };
}

const creates = () => nova.requests.filter((r) => r.method === 'POST' && r.path === '/compute/v2.1/servers');

describe('nova compute driver (fake Nova)', () => {
  it('boots with the documented POST /servers body and headers, waits for ACTIVE, reports the management address', async () => {
    const { driver } = driverWith({ keyName: 'ops-key', availabilityZone: 'az1', securityGroups: ['lb-mgmt-sec-grp'] });
    const req = bootRequest();
    const booted = await driver.boot(req);

    const [create] = creates();
    expect(create!.headers).toMatchObject({
      'x-auth-token': 'tok-1',
      'x-openstack-nova-api-version': '2.15',
      'openstack-api-version': 'compute 2.15',
      'content-type': 'application/json',
      accept: 'application/json',
    });
    expect(create!.body).toEqual({
      server: {
        name: `amphora-${req.amphoraId}`,
        imageRef: IMAGE,
        flavorRef: FLAVOR,
        networks: [{ uuid: MGMT_NET }],
        config_drive: true,
        user_data: expect.any(String),
        metadata: { 'argonaut-amphora-id': req.amphoraId, 'argonaut-load-balancer-id': req.loadBalancerId },
        key_name: 'ops-key',
        availability_zone: 'az1',
        security_groups: [{ name: 'lb-mgmt-sec-grp' }],
      },
    });
    const serverId = [...nova.servers.keys()][0]!;
    expect(booted).toEqual({ computeId: serverId, lbNetworkIp: '192.0.2.10' });
    expect(nova.calls()).toEqual([
      'POST /compute/v2.1/servers',
      `GET /compute/v2.1/servers/${serverId}`,
      `GET /compute/v2.1/servers/${serverId}`,
      `GET /compute/v2.1/servers/${serverId}/os-interface`,
    ]);
    for (const r of nova.requests) expect(r.headers['x-openstack-nova-api-version']).toBe('2.15');
  });

  it('carries the agent settings in the user data: a #cloud-config that writes them with mode 0600', async () => {
    const { driver } = driverWith();
    const req = bootRequest();
    await driver.boot(req);
    const userData = Buffer.from(creates()[0]!.body.server.user_data, 'base64').toString('utf8');
    expect(userData.startsWith('#cloud-config\n')).toBe(true);
    const cloudConfig = parseYaml(userData) as { write_files: Array<Record<string, string>> };
    expect(cloudConfig.write_files).toHaveLength(1);
    const file = cloudConfig.write_files[0]!;
    expect(file).toMatchObject({ path: '/etc/argonaut/amphora-agent.yaml', owner: 'root:root', permissions: '0600' });
    const document = parseYaml(file.content!) as Record<string, any>;
    expect(document).toMatchObject({
      amphoraId: req.amphoraId,
      key: req.key.toString('hex'),
      messaging: { kind: 'amqp', url: AMQP_URL, prefix: 'argo', initialConnectTimeoutMs: null },
      heartbeatIntervalMs: 10_000,
      dataplane: { workers: 2 },
      logLevel: 'info',
    });
    // What the agent in the instance reads: valid, with the amphora's own key.
    const settings = await resolveAgentSettings(document, 'user data', '/');
    expect(settings.key.equals(req.key)).toBe(true);
    expect(settings.amphoraId).toBe(req.amphoraId);
  });

  it('plugs given ports at boot, and attaches and detaches ports later (os-interface)', async () => {
    const { driver } = driverWith({ agentSettingsPath: '/srv/agent.yaml' });
    const vrrpPort = randomUUID();
    const booted = await driver.boot({ ...bootRequest(), portIds: [vrrpPort] });
    expect(creates()[0]!.body.server.networks).toEqual([{ uuid: MGMT_NET }, { port: vrrpPort }]);
    const userData = Buffer.from(creates()[0]!.body.server.user_data, 'base64').toString('utf8');
    expect((parseYaml(userData) as { write_files: Array<{ path: string }> }).write_files[0]!.path).toBe('/srv/agent.yaml');

    nova.requests.length = 0;
    const other = randomUUID();
    await driver.attachPort(booted.computeId, other);
    await driver.detachPort(booted.computeId, other);
    await driver.detachPort(booted.computeId, 'gone'); // 404: already detached
    expect(nova.requests.map((r) => [r.method, r.path, r.body])).toEqual([
      ['POST', `/compute/v2.1/servers/${booted.computeId}/os-interface`, { interfaceAttachment: { port_id: other } }],
      ['DELETE', `/compute/v2.1/servers/${booted.computeId}/os-interface/${other}`, undefined],
      ['DELETE', `/compute/v2.1/servers/${booted.computeId}/os-interface/gone`, undefined],
    ]);
  });

  it("plugs the amphora's VRRP port (the provider's vipInterface) at boot, and into a claimed spare with assign()", async () => {
    const { driver } = driverWith({});
    const vipInterface = { portId: randomUUID(), address: '203.0.113.20', mac: 'fa:16:3e:00:00:01', prefixLength: 24 };
    const booted = await driver.boot({ ...bootRequest(), vipInterface });
    expect(creates()[0]!.body.server.networks).toEqual([{ uuid: MGMT_NET }, { port: vipInterface.portId }]);

    const spare = await driver.boot({ ...bootRequest(), loadBalancerId: null, role: null });
    expect(creates()[1]!.body.server.networks).toEqual([{ uuid: MGMT_NET }]);
    nova.requests.length = 0;
    const claimedPort = { ...vipInterface, portId: randomUUID() };
    await driver.assign(spare.computeId, { amphoraId: randomUUID(), loadBalancerId: randomUUID(), role: 'MASTER', vipAddress: '203.0.113.5', vipInterface: claimedPort });
    await driver.assign(booted.computeId, { amphoraId: randomUUID(), loadBalancerId: randomUUID(), role: 'STANDALONE', vipAddress: null });
    expect(nova.requests.map((r) => [r.method, r.path, r.body])).toEqual([
      ['POST', `/compute/v2.1/servers/${spare.computeId}/os-interface`, { interfaceAttachment: { port_id: claimedPort.portId } }],
    ]);
  });

  it('takes the newest active Glance image with the tag (and owner)', async () => {
    nova.images = [
      { id: 'newest-image', name: 'amphora-2', created_at: '2024-02-01T00:00:00Z' },
      { id: 'older-image', name: 'amphora-1', created_at: '2024-01-01T00:00:00Z' },
    ];
    const { driver } = driverWith({ imageId: null, imageTag: 'amphora', imageOwnerId: 'owner-project' });
    await driver.boot(bootRequest());
    const [list] = nova.requests;
    expect(list!.method).toBe('GET');
    expect(list!.path).toBe('/image/v2/images');
    expect(Object.fromEntries(list!.query)).toEqual({ tag: 'amphora', status: 'active', sort: 'created_at:desc', limit: '2', owner: 'owner-project' });
    expect(list!.headers['x-auth-token']).toBe('tok-1');
    expect(list!.headers['x-openstack-nova-api-version']).toBeUndefined();
    expect(creates()[0]!.body.server.imageRef).toBe('newest-image');

    nova.images = [];
    await expect(driver.boot(bootRequest())).rejects.toThrow('no active Glance image has the tag amphora (owner owner-project)');
    expect(() => driverWith({ imageId: IMAGE, imageTag: 'amphora' })).toThrow('exactly one of imageId and imageTag');
  });

  it('puts MASTER and BACKUP of a load balancer in one server group, deleted with deleteServerGroup()', async () => {
    const { driver } = driverWith({ serverGroupPolicy: 'anti-affinity' });
    const lbId = randomUUID();
    await Promise.all([driver.boot(bootRequest('MASTER', lbId)), driver.boot(bootRequest('BACKUP', lbId))]);
    const groupCreates = nova.requests.filter((r) => r.method === 'POST' && r.path === '/compute/v2.1/os-server-groups');
    expect(groupCreates.map((r) => r.body)).toEqual([{ server_group: { name: `octavia-lb-${lbId}`, policies: ['anti-affinity'] } }]);
    const [group] = [...nova.groups.values()];
    for (const c of creates()) expect(c.body['os:scheduler_hints']).toEqual({ group: group!.id });

    // A standalone amphora and a spare get no group.
    await driver.boot(bootRequest('STANDALONE'));
    await driver.boot(bootRequest(null, null));
    expect(creates().slice(2).map((c) => c.body['os:scheduler_hints'])).toEqual([undefined, undefined]);
    expect(creates()[3]!.body.server.metadata).toEqual({ 'argonaut-amphora-id': expect.any(String) });

    await driver.deleteServerGroup(lbId);
    expect(nova.groups.size).toBe(0);
    expect(nova.calls().at(-1)).toBe(`DELETE /compute/v2.1/os-server-groups/${group!.id}`);
    await driver.deleteServerGroup(lbId); // none left: nothing to delete
    expect(nova.calls().at(-1)).toBe('GET /compute/v2.1/os-server-groups');
  });

  it("deletes a server that goes ERROR and reports Nova's fault", async () => {
    nova.bootStatuses = ['BUILD', 'ERROR'];
    nova.fault = 'No valid host was found. There are not enough hosts available.';
    const { driver } = driverWith();
    await expect(driver.boot(bootRequest())).rejects.toThrow(/Nova could not boot amphora .*: No valid host was found/);
    expect(nova.servers.size).toBe(0);
    expect(nova.calls().at(-1)).toMatch(/^DELETE \/compute\/v2\.1\/servers\//);
  });

  it('deletes a server that is not ACTIVE within the boot timeout', async () => {
    nova.bootStatuses = ['BUILD'];
    const { driver } = driverWith({ bootTimeoutMs: 150, pollIntervalMs: 20 });
    await expect(driver.boot(bootRequest())).rejects.toThrow(/was not ACTIVE within 150 ms/);
    expect(nova.servers.size).toBe(0);
  });

  it("passes Nova's refusal of a create on with its message", async () => {
    nova.createError = { status: 400, body: { badRequest: { code: 400, message: `Flavor ${FLAVOR} could not be found.` } } };
    const { driver } = driverWith();
    const err = await driver.boot(bootRequest()).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OpenStackError);
    expect(err).toMatchObject({ status: 400, type: 'badRequest', detail: `Flavor ${FLAVOR} could not be found.` });
    expect((err as Error).message).toBe(`Nova POST /servers: HTTP 400 badRequest: Flavor ${FLAVOR} could not be found.`);
  });

  it('destroy: DELETE /servers/{id}, idempotent; a computeId that is no server id is ignored', async () => {
    const { driver } = driverWith();
    const { computeId } = await driver.boot(bootRequest());
    nova.requests.length = 0;
    await driver.destroy(computeId);
    await driver.destroy(computeId); // 404: already gone
    await driver.destroy('process:123:not-a-server');
    expect(nova.calls()).toEqual([`DELETE /compute/v2.1/servers/${computeId}`, `DELETE /compute/v2.1/servers/${computeId}`]);
  });

  it('isAlive: ACTIVE and BUILD are alive; other statuses, a deleted server and a foreign computeId are not', async () => {
    const { driver } = driverWith();
    const { computeId } = await driver.boot(bootRequest());
    expect(await driver.isAlive(computeId)).toBe(true);
    for (const [status, alive] of [['BUILD', true], ['SHUTOFF', false], ['ERROR', false], ['SOFT_DELETED', false]] as const) {
      nova.servers.get(computeId)!.statuses = [status];
      expect(await driver.isAlive(computeId)).toBe(alive);
    }
    await driver.destroy(computeId);
    expect(await driver.isAlive(computeId)).toBe(false);
    expect(await driver.isAlive('not-a-server')).toBe(false);
    // stop() leaves servers alone.
    const other = await driver.boot(bootRequest());
    await driver.stop();
    expect(await driver.isAlive(other.computeId)).toBe(true);
  });

  it('renews the token once when Nova answers 401', async () => {
    const { driver, credentials } = driverWith();
    nova.rejectToken = 'tok-1';
    await driver.boot(bootRequest());
    expect(credentials.generation).toBe(2);
    expect(nova.requests.map((r) => r.headers['x-auth-token'])).toEqual(['tok-1', 'tok-2', 'tok-2', 'tok-2', 'tok-2']);
    expect(creates().map((r) => r.headers['x-auth-token'])).toEqual(['tok-1', 'tok-2']);
  });

  it('refuses agent settings that would not fit in the user data', async () => {
    const { driver } = driverWith({ agent: { messaging: { url: `amqp://x:${'y'.repeat(MAX_USER_DATA_BYTES)}@h/` }, heartbeatIntervalMs: 10_000 } });
    await expect(driver.boot(bootRequest())).rejects.toThrow(/user data is \d+ bytes in base64; Nova takes at most 65535/);
    expect(creates()).toHaveLength(0);
  });
});

// The amphora provider with this driver, as Octavia with enable_anti_affinity: MASTER and BACKUP are
// booted in the load balancer's group (never taken from the spare pool, whose servers are in no
// group), and the group is deleted with the load balancer, or when its create failed with no amphora left.
describe('the amphora provider with the nova driver and anti-affinity (fake Nova)', () => {
  let db: Database;
  let closeDb: () => Promise<void>;
  let spares: SparePool | undefined;
  beforeEach(async () => {
    ({ db, close: closeDb } = await openTestDatabase());
  });
  afterEach(async () => {
    await spares?.stop();
    await closeDb();
  });

  function providerWith(driver: NovaComputeDriver, spareCount: number): AmphoraProvider {
    const log = createLogger('test', 'silent');
    spares = new SparePool({ db, log, compute: driver, masterKey: MASTER_KEY, size: spareCount, checkIntervalMs: 60_000, waitServing: async () => {} });
    spares.start();
    return new AmphoraProvider({
      db, log, network: new NoopNetworkDriver(), compute: driver, delivery: new NoopConfigDelivery(), spares, masterKey: MASTER_KEY,
      defaultTopology: 'SINGLE', workerDelayMs: 0,
    });
  }

  async function createLb(provider: AmphoraProvider, topology: 'SINGLE' | 'ACTIVE_STANDBY'): Promise<string> {
    const id = randomUUID();
    await db.tx((t) =>
      db.models.load_balancer.create(
        { id, project_id: 'p', provisioning_status: 'PENDING_CREATE', operating_status: 'OFFLINE', admin_state_up: true, topology, provider: 'amphora', vip_address: '203.0.113.5', created_at: new Date() },
        { transaction: t },
      ),
    );
    provider.submit({ kind: 'loadbalancer', action: 'create', loadBalancerId: id });
    await provider.idle();
    return id;
  }

  const lbStatus = async (id: string) => ((await db.models.load_balancer.findByPk(id, { raw: true })) as Row).provisioning_status;
  const amphoraeOf = async (id: string) => (await db.models.amphora.findAll({ where: { load_balancer_id: id }, raw: true })) as Row[];
  const readySpares = async () => (await db.models.amphora.findAll({ where: { status: 'READY', load_balancer_id: null }, raw: true })) as Row[];
  async function untilSpareReady(): Promise<Row> {
    for (let i = 0; i < 200; i++) {
      const [spare] = await readySpares();
      if (spare) return spare;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('no spare amphora became READY');
  }

  /** An ACTIVE_STANDBY load balancer, ACTIVE with a MASTER and a BACKUP amphora. */
  async function createPair(provider: AmphoraProvider): Promise<{ lbId: string; amphorae: Row[] }> {
    const lbId = await createLb(provider, 'ACTIVE_STANDBY');
    expect(await lbStatus(lbId)).toBe('ACTIVE');
    const amphorae = await amphoraeOf(lbId);
    expect(amphorae.map((a) => a.role).sort()).toEqual(['BACKUP', 'MASTER']);
    return { lbId, amphorae };
  }

  it('boots MASTER and BACKUP in the group rather than claiming a spare; a STANDALONE amphora still claims one', async () => {
    const { driver } = driverWith({ serverGroupPolicy: 'anti-affinity' });
    const provider = providerWith(driver, 1);
    const spare = await untilSpareReady();

    const { lbId, amphorae } = await createPair(provider);
    expect(amphorae.map((a) => a.id)).not.toContain(spare.id);
    const [group] = [...nova.groups.values()];
    expect(group!.name).toBe(`octavia-lb-${lbId}`);
    const hinted = creates().filter((c) => c.body['os:scheduler_hints']?.group === group!.id);
    expect(hinted.map((c) => c.body.server.metadata['argonaut-amphora-id']).sort()).toEqual(amphorae.map((a) => a.id).sort());
    expect((await readySpares()).map((a) => a.id)).toEqual([spare.id]);

    const single = await createLb(provider, 'SINGLE');
    expect((await amphoraeOf(single)).map((a) => a.id)).toEqual([spare.id]);
  });

  // MASTER and BACKUP boot at once, so either may be first to claim the spare (as in Octavia's flow).
  it('without a server group policy, one of the pair takes the spare as before', async () => {
    const { driver } = driverWith({ serverGroupPolicy: null });
    const provider = providerWith(driver, 1);
    const spare = await untilSpareReady();
    const { amphorae } = await createPair(provider);
    expect(amphorae.map((a) => a.id)).toContain(spare.id);
    expect(nova.groups.size).toBe(0);
  });

  it('deletes the group with the load balancer', async () => {
    const { driver } = driverWith({ serverGroupPolicy: 'anti-affinity' });
    const provider = providerWith(driver, 0);
    const lbId = await createLb(provider, 'ACTIVE_STANDBY');
    expect(nova.groups.size).toBe(1);
    await db.tx((t) => db.models.load_balancer.update({ provisioning_status: 'PENDING_DELETE' }, { where: { id: lbId }, transaction: t }));
    provider.submit({ kind: 'loadbalancer', action: 'delete', loadBalancerId: lbId });
    await provider.idle();
    expect(await lbStatus(lbId)).toBe('DELETED');
    expect(nova.servers.size).toBe(0);
    expect(nova.groups.size).toBe(0);
  });

  it('deletes the group of a failed create when no amphora is left, keeps it while one is', async () => {
    const { driver } = driverWith({ serverGroupPolicy: 'anti-affinity' });
    const provider = providerWith(driver, 0);
    nova.createError = { status: 403, body: { forbidden: { code: 403, message: 'Quota exceeded for instances' } } };
    const failed = await createLb(provider, 'ACTIVE_STANDBY');
    expect(await lbStatus(failed)).toBe('ERROR');
    expect(nova.calls().filter((c) => c === 'POST /compute/v2.1/os-server-groups')).toHaveLength(1);
    expect(nova.groups.size).toBe(0);

    // Only the BACKUP fails to boot: the MASTER lives in the group, which stays for its replacement.
    nova.createError = null;
    nova.bootStatuses = ['BUILD', 'ACTIVE'];
    const original = driver.boot.bind(driver);
    driver.boot = async (req) => (req.role === 'BACKUP' ? Promise.reject(new Error('No valid host was found')) : original(req));
    const half = await createLb(provider, 'ACTIVE_STANDBY');
    expect(await lbStatus(half)).toBe('ERROR');
    expect((await amphoraeOf(half)).filter((a) => a.status === 'ALLOCATED').map((a) => a.role)).toEqual(['MASTER']);
    expect([...nova.groups.values()].map((g) => g.name)).toEqual([`octavia-lb-${half}`]);
  });
});
