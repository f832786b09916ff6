// The `barbican` certificate manager against a real Barbican (Debian's barbican-api, Zed, started by
// test/peers/barbican-up.sh) and the real Keystone of ../shared/peers:
//   test/peers/barbican-up.sh && npx vitest run test/integration/barbican.test.ts
// The secrets are stored as demo through Barbican's REST API the way `openstack secret store` and
// `openstack secret container create` send them (PKCS#12 as base64 application/octet-stream, PEM
// as text/plain), one of them with the real `openstack secret store`. Then: the manager resolves them with demo's token and, after the read-ACL grant
// Octavia's barbican_acl makes, with the service token alone; the API (real Keystone auth, MariaDB)
// accepts TERMINATED_HTTPS listeners with those refs and refuses unreadable, expired, foreign and
// mismatched ones with Octavia's 400s; the controller's path (resolveTreeTls, renderAmphoraConfig:
// what AgentConfigDelivery records and pushes; the no-op amphora driver delivers nothing) turns the
// accepted refs into the amphora's TLS material.
// Runs when Barbican answers at ARGONAUT_BARBICAN_URL (default http://127.0.0.1:9311); when the
// variable is set, a Barbican that does not answer is a failure, otherwise the suite is skipped.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAmphoraConfig } from '../../common/amphora-config/index.ts';
import { createCertificateManager, type CertificateManager, type CertContext } from '../../common/certificates/index.ts';
import { createLogger } from '../../common/logging.ts';
import { loadTree } from '../../driver/controller/completion.ts';
import { renderAmphoraConfig } from '../../driver/amphora/render-config.ts';
import { resolveTreeTls } from '../../driver/amphora/tls-material.ts';
import { certificateManager } from '../../api/tls-refs.ts';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';
import { makePki, pemBody, type TestPki } from '../helpers/certs.ts';
import { BASE, expectFault, SUBNET_ID } from '../helpers/fixtures.ts';
import { issueToken, peerServiceOptions, type IssuedToken } from '../helpers/keystone.ts';
import { waitFor } from '../helpers/wait.ts';

const execFileP = promisify(execFile);
const BARBICAN_URL = (process.env.ARGONAUT_BARBICAN_URL ?? 'http://127.0.0.1:9311').replace(/\/+$/, '');
const KEYSTONE_URL = (process.env.ARGONAUT_KEYSTONE_URL ?? 'http://127.0.0.1:5000/v3').replace(/\/+$/, '');
const DEMO_PASSWORD = process.env.ARGONAUT_KEYSTONE_DEMO_PASSWORD ?? 'secret';
const ADMIN_PASSWORD = process.env.ARGONAUT_KEYSTONE_ADMIN_PASSWORD ?? 'secret';

/** Barbican's version document (GET / answers 300 Multiple Choices). */
async function barbicanAnswers(): Promise<boolean> {
  try {
    const res = await fetch(`${BARBICAN_URL}/`, { signal: AbortSignal.timeout(5000) });
    await res.body?.cancel();
    return res.status === 300;
  } catch {
    return false;
  }
}
const UP = process.env.ARGONAUT_BARBICAN_URL !== undefined || (await barbicanAnswers());
if (!UP) console.warn(`Barbican does not answer at ${BARBICAN_URL}: skipping the Barbican integration tests (start it with test/peers/barbican-up.sh)`);

// Keystone and Barbican answer in 0.5-15 s per call on the loaded 2-core box.
const SLOW = { timeout: 300_000 };

/** Barbican's REST API as a user of it. */
class BarbicanUser {
  constructor(private readonly token: string) {}

  private async call(method: string, path: string, body?: unknown): Promise<any> {
    const res = await fetch(`${BARBICAN_URL}/v1${path}`, {
      method,
      headers: { 'X-Auth-Token': this.token, Accept: 'application/json', ...(body ? { 'Content-Type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(120_000),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`Barbican ${method} ${path}: HTTP ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  /** `openstack secret store --name N -t application/octet-stream -e base64 --payload <base64>`. */
  async storeBinary(name: string, payload: Buffer): Promise<string> {
    return (await this.call('POST', '/secrets', {
      name, payload: payload.toString('base64'), payload_content_type: 'application/octet-stream', payload_content_encoding: 'base64',
      secret_type: 'opaque', algorithm: 'aes', bit_length: 256, mode: 'cbc',
    })).secret_ref;
  }

  /** `openstack secret store --name N -t text/plain --payload "$(cat file.pem)"`. */
  async storeText(name: string, payload: string): Promise<string> {
    return (await this.call('POST', '/secrets', {
      name, payload, payload_content_type: 'text/plain', secret_type: 'opaque', algorithm: 'aes', bit_length: 256, mode: 'cbc',
    })).secret_ref;
  }

  /** `openstack secret container create --type certificate --secret certificate=REF ...`. */
  async storeContainer(name: string, secrets: Record<string, string>): Promise<string> {
    return (await this.call('POST', '/containers', {
      name, type: 'certificate', secret_refs: Object.entries(secrets).map(([n, ref]) => ({ name: n, secret_ref: ref })),
    })).container_ref;
  }

  /** The read ACL users of a secret or container (`openstack acl get REF`). */
  async readAclUsers(ref: string): Promise<string[]> {
    const path = new URL(ref).pathname.replace(/^\/v1/, '');
    return (await this.call('GET', `${path}/acl`)).read?.users ?? [];
  }

  async delete(ref: string): Promise<void> {
    await this.call('DELETE', new URL(ref).pathname.replace(/^\/v1/, ''));
  }
}

/**
 * `openstack secret store` (python3-barbicanclient) as demo, through the catalog's key-manager
 * endpoint: the secret href it prints.
 */
async function cliStoreBinary(name: string, payload: Buffer): Promise<string> {
  const { stdout } = await execFileP(
    'openstack',
    ['secret', 'store', '--name', name, '-t', 'application/octet-stream', '-e', 'base64', '--payload', payload.toString('base64'), '-f', 'value', '-c', 'Secret href'],
    {
      env: {
        PATH: '/usr/bin:/bin', OS_AUTH_URL: KEYSTONE_URL, OS_AUTH_TYPE: 'password', OS_IDENTITY_API_VERSION: '3', OS_USERNAME: 'demo', OS_PASSWORD: DEMO_PASSWORD,
        OS_PROJECT_NAME: 'demo', OS_USER_DOMAIN_NAME: 'Default', OS_PROJECT_DOMAIN_NAME: 'Default', OS_REGION_NAME: 'RegionOne', OS_INTERFACE: 'public',
      },
      timeout: 180_000,
    },
  );
  return stdout.trim();
}

const retrieval = (...refs: string[]) => `Could not retrieve certificate: [${refs.map((r) => `'${r}'`).join(', ')}]`;
const pkcs12Fault = (detail: string) =>
  `The PKCS12 bundle is unreadable. Please check the PKCS12 bundle validity. In addition, make sure it does not require a pass phrase. Error: ${detail}`;

describe.skipIf(!UP)(`Barbican integration (${BARBICAN_URL}, Keystone ${KEYSTONE_URL})`, SLOW, () => {
  let pki: TestPki;
  let demo: IssuedToken;
  let serviceUserId: string;
  let demoBarbican: BarbicanUser;
  let adminBarbican: BarbicanUser;
  let api: TestApi;
  let c: Client;
  /** The controller's certificate manager (service token only), made as driver/amphora/backends.ts makes it. */
  let controllerManager: CertificateManager;
  const ref: Record<string, string> = {};
  const created: string[] = [];

  beforeAll(async () => {
    expect(await barbicanAnswers(), `Barbican at ${BARBICAN_URL}`).toBe(true);
    pki = makePki();
    const service = peerServiceOptions(KEYSTONE_URL);
    [demo, { userId: serviceUserId }] = await Promise.all([
      issueToken(KEYSTONE_URL, 'demo', DEMO_PASSWORD, 'demo'),
      issueToken(KEYSTONE_URL, service.username, service.password, service.projectName),
    ]);
    const admin = await issueToken(KEYSTONE_URL, 'admin', ADMIN_PASSWORD, 'admin');
    demoBarbican = new BarbicanUser(demo.token);
    adminBarbican = new BarbicanUser(admin.token);
    const tag = randomUUID().slice(0, 8);
    const text = (name: string, pem: string) => demoBarbican.storeText(`argonaut-${tag}-${name}`, pem);
    const container = async (name: string, parts: Record<string, string>) => {
      const refs: Record<string, string> = {};
      for (const [n, pem] of Object.entries(parts)) refs[n] = await text(`${name}-${n}`, pem);
      created.push(...Object.values(refs));
      return demoBarbican.storeContainer(`argonaut-${tag}-${name}`, refs);
    };
    ref.p12 = await demoBarbican.storeBinary(`argonaut-${tag}-p12`, pki.p12.openssl3);
    ref.p12Legacy = await demoBarbican.storeBinary(`argonaut-${tag}-p12-legacy`, pki.p12.legacy);
    ref.p12Password = await demoBarbican.storeBinary(`argonaut-${tag}-p12-password`, pki.p12.withPassword);
    ref.pem = await text('pem-as-tls', pki.leaf.cert);
    ref.ca = await text('ca', pki.ca.cert);
    ref.crl = await text('crl', pki.crl);
    ref.container = await container('chain', { certificate: pki.chainLeaf.cert, private_key: pki.chainLeaf.key, intermediates: pki.intermediate.cert });
    ref.passphrase = await container('passphrase', { certificate: pki.leaf.cert, private_key: pki.encryptedKey, private_key_passphrase: pki.passphrase });
    ref.expired = await container('expired', { certificate: pki.expired.cert, private_key: pki.expired.key });
    ref.mismatch = await container('mismatch', { certificate: pki.leaf.cert, private_key: pki.sni.key });
    // For the API's own grants: secrets nothing else reads before the listener create.
    ref.apiP12 = await cliStoreBinary(`argonaut-${tag}-api-p12`, pki.p12.openssl3);
    ref.apiContainer = await container('api-container', { certificate: pki.sni.cert, private_key: pki.sni.key });
    ref.apiCa = await text('api-ca', pki.ca.cert);
    ref.foreign = await adminBarbican.storeBinary(`argonaut-${tag}-admin-p12`, pki.p12.openssl3);
    ref.unknown = `${BARBICAN_URL}/v1/secrets/${randomUUID()}`;
    created.push(...Object.entries(ref).filter(([k]) => k !== 'foreign' && k !== 'unknown').map(([, r]) => r));

    api = await startApi(
      {
        keystone: {
          authUrl: KEYSTONE_URL, username: service.username, password: service.password, projectName: service.projectName, region: service.region,
          timeoutMs: 120_000,
        },
        // The key-manager endpoint comes from the catalog (test/peers/barbican-up.sh registers it).
        certificates: { manager: 'barbican', barbican: { timeoutMs: 120_000 } },
      },
      { keystone: 'real', mysql: true },
    );
    c = api.client(demo.token);
    const log = createLogger('test', 'silent');
    controllerManager = (await createCertificateManager(api.service.services.config, api.service.services.db, log))!;
  }, SLOW.timeout);

  afterAll(async () => {
    await api?.close();
    // Containers before their secrets; a failed delete leaves a secret behind, which is only untidy.
    const warn = (r: string) => (err: unknown) => console.warn(`could not delete ${r}: ${String(err)}`);
    for (const r of [...created].reverse()) await demoBarbican?.delete(r).catch(warn(r));
    if (ref.foreign) await adminBarbican.delete(ref.foreign).catch(warn(ref.foreign));
    pki?.cleanup();
  }, SLOW.timeout);

  const asDemo = (): CertContext => ({ projectId: demo.projectId, authToken: demo.token });
  const asService = (): CertContext => ({ projectId: demo.projectId });
  const idOf = (r: string) => r.split('/').at(-1)!;

  describe('the barbican certificate manager', () => {
    it("cannot read demo's secrets with the service token before Octavia's ACL grant", async () => {
      await expect(controllerManager.getCert(asService(), ref.container!)).rejects.toMatchObject({ name: 'CertificateError', reason: 'not_found' });
      await expect(controllerManager.getSecret(asService(), ref.ca!)).rejects.toMatchObject({ reason: 'not_found', detail: expect.stringMatching(/HTTP 403/) });
    });

    it("reads a PKCS#12 secret with demo's token (granting the service user read access), then with the service token alone", async () => {
      const manager = (await certificateManager(api.service.services))!;
      const cert = await manager.getCert(asDemo(), ref.p12!);
      expect(pemBody(cert.certificate)).toEqual(pemBody(pki.chainLeaf.cert));
      expect(cert.intermediates.map(pemBody)).toEqual([pemBody(pki.intermediate.cert)]);
      expect(cert.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----/);
      expect(cert.primaryCn).toBe('chain.example');
      // A second grant finds the service user in the ACL and leaves it as it is.
      await manager.getCert(asDemo(), ref.p12!);
      expect((await demoBarbican.readAclUsers(ref.p12!)).filter((u) => u === serviceUserId)).toHaveLength(1);
      const again = await controllerManager.getCert(asService(), ref.p12!);
      expect(again.id).toBe(cert.id);
      expect(again.privateKey).toBe(cert.privateKey);
      // OpenSSL 1.x's RC2/3DES bundles too.
      expect(pemBody((await manager.getCert(asDemo(), ref.p12Legacy!)).certificate)).toEqual(pemBody(pki.chainLeaf.cert));
    });

    it('reads a certificate container (certificate, private_key, intermediates) and grants the container and each of its secrets', async () => {
      const manager = (await certificateManager(api.service.services))!;
      const cert = await manager.getCert(asDemo(), ref.container!);
      expect(pemBody(cert.certificate)).toEqual(pemBody(pki.chainLeaf.cert));
      expect(cert.intermediates.map(pemBody)).toEqual([pemBody(pki.intermediate.cert)]);
      expect(cert.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----/);
      expect(await demoBarbican.readAclUsers(ref.container!)).toContain(serviceUserId);
      const container = await fetch(`${BARBICAN_URL}/v1/containers/${idOf(ref.container!)}`, { headers: { 'X-Auth-Token': demo.token } }).then((r) => r.json());
      for (const s of container.secret_refs as Array<{ secret_ref: string }>) expect(await demoBarbican.readAclUsers(s.secret_ref)).toContain(serviceUserId);
      expect((await controllerManager.getCert(asService(), ref.container!)).id).toBe(cert.id);
    });

    it('decrypts the key of a container with a private_key_passphrase secret', async () => {
      const cert = await controllerManager.getCert(asDemo(), ref.passphrase!);
      expect(pemBody(cert.certificate)).toEqual(pemBody(pki.leaf.cert));
      expect(cert.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----/);
      expect(cert.privateKey).not.toContain('ENCRYPTED');
      expect(cert.dnsNames).toEqual(['leaf.example', 'www.leaf.example']);
    });

    it('reads CA and CRL secrets as text (get_secret)', async () => {
      expect(pemBody(await controllerManager.getSecret(asDemo(), ref.ca!))).toEqual(pemBody(pki.ca.cert));
      expect(pemBody(await controllerManager.getSecret(asService(), ref.ca!))).toEqual(pemBody(pki.ca.cert));
      await expect(controllerManager.getSecret(asService(), ref.crl!)).rejects.toMatchObject({ reason: 'not_found' });
      expect(pemBody(await controllerManager.getSecret(asDemo(), ref.crl!))).toEqual(pemBody(pki.crl));
    });

    it("refuses another project's secret, an unknown one, a password-protected PKCS#12 and a mismatched key", async () => {
      await expect(controllerManager.getCert(asDemo(), ref.foreign!)).rejects.toMatchObject({ reason: 'not_found' });
      await expect(controllerManager.getCert(asDemo(), ref.unknown!)).rejects.toMatchObject({ reason: 'not_found' });
      await expect(controllerManager.getCert(asDemo(), ref.p12Password!)).rejects.toMatchObject({ reason: 'unreadable_pkcs12' });
      await expect(controllerManager.getCert(asDemo(), ref.mismatch!)).rejects.toMatchObject({ reason: 'key_mismatch' });
    });
  });

  describe('the API (Keystone auth, MariaDB, barbican manager) and the controller', () => {
    let lbId: string;
    let port = 8443;
    const postListener = (body: Record<string, unknown>) =>
      c.post(`${BASE}/listeners`, { listener: { loadbalancer_id: lbId, protocol: 'TERMINATED_HTTPS', protocol_port: port++, ...body } });
    const settled = async () => {
      await api.settle();
      await waitFor('the load balancer ACTIVE', async () => ((await c.get(`${BASE}/loadbalancers/${lbId}`)).body.loadbalancer.provisioning_status === 'ACTIVE' ? true : undefined), 60_000, 500);
    };

    beforeAll(async () => {
      const res = await c.post(`${BASE}/loadbalancers`, { loadbalancer: { name: 'barbican-lb', vip_subnet_id: SUBNET_ID } });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body.loadbalancer.project_id).toBe(demo.projectId);
      lbId = res.body.loadbalancer.id;
      await settled();
    }, SLOW.timeout);

    it('refuses unreadable, expired, foreign, unknown and mismatched references with Octavia\'s 400s', async () => {
      expectFault(await postListener({ default_tls_container_ref: ref.unknown }), 400, retrieval(ref.unknown!));
      expectFault(await postListener({ default_tls_container_ref: ref.foreign }), 400, retrieval(ref.foreign!));
      expectFault(await postListener({ default_tls_container_ref: ref.expired }), 400, retrieval(ref.expired!));
      expectFault(await postListener({ default_tls_container_ref: ref.mismatch }), 400, retrieval(ref.mismatch!));
      expectFault(await postListener({ sni_container_refs: [ref.container, ref.mismatch], default_tls_container_ref: ref.unknown }), 400, retrieval(ref.mismatch!, ref.unknown!));
      expectFault(await postListener({ default_tls_container_ref: ref.pem }), 400, pkcs12Fault('Could not deserialize PKCS12 data'));
      expectFault(await postListener({ default_tls_container_ref: ref.p12Password }), 400, pkcs12Fault('Invalid password or PKCS12 data (mac verify failure)'));
      expectFault(
        await postListener({ default_tls_container_ref: ref.p12, client_ca_tls_container_ref: ref.ca, client_crl_container_ref: ref.unknown }),
        400,
        retrieval(ref.unknown!),
      );
      const listeners = await c.get(`${BASE}/listeners?loadbalancer_id=${lbId}`);
      expect(listeners.body.listeners).toEqual([]);
    });

    it('accepts a TERMINATED_HTTPS listener with a PKCS#12 secret, certificate containers, a CA and a CRL; the controller renders them', async () => {
      // Before the API grants anything, the service user cannot read the secrets stored for it.
      await expect(controllerManager.getCert(asService(), ref.apiP12!)).rejects.toMatchObject({ reason: 'not_found' });
      await expect(controllerManager.getSecret(asService(), ref.apiCa!)).rejects.toMatchObject({ reason: 'not_found' });
      const res = await postListener({
        default_tls_container_ref: ref.apiP12, sni_container_refs: [ref.apiContainer, ref.passphrase],
        client_ca_tls_container_ref: ref.apiCa, client_crl_container_ref: ref.crl, client_authentication: 'MANDATORY',
      });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body.listener).toMatchObject({ default_tls_container_ref: ref.apiP12, sni_container_refs: [ref.apiContainer, ref.passphrase], client_ca_tls_container_ref: ref.apiCa });
      expect(JSON.stringify(res.body)).not.toContain('BEGIN');
      await settled();
      expect((await c.get(`${BASE}/listeners/${res.body.listener.id}`)).body.listener.provisioning_status).toBe('ACTIVE');

      // The controller reads with the service token only, as Octavia's load_certificates_data does.
      const tree = (await loadTree(api.service.services.db, lbId))!;
      const tls = await resolveTreeTls(controllerManager, tree);
      const config = parseAmphoraConfig(renderAmphoraConfig(tree, randomUUID(), 1, tls));
      const lt = config.listeners.find((l) => l.id === res.body.listener.id)!.tls!;
      expect(lt.defaultCertificate!.ref).toBe(ref.apiP12);
      expect(pemBody(lt.defaultCertificate!.certificate)).toEqual(pemBody(pki.chainLeaf.cert));
      expect(lt.defaultCertificate!.intermediates.map(pemBody)).toEqual([pemBody(pki.intermediate.cert)]);
      expect(lt.sniCertificates.map((s) => s.ref)).toEqual([ref.apiContainer, ref.passphrase]);
      expect(pemBody(lt.sniCertificates[0]!.certificate)).toEqual(pemBody(pki.sni.cert));
      expect(pemBody(lt.sniCertificates[1]!.certificate)).toEqual(pemBody(pki.leaf.cert));
      expect(lt.sniCertificates[1]!.privateKey).not.toContain('ENCRYPTED');
      expect(lt.clientAuthentication).toBe('MANDATORY');
      expect(pemBody(lt.clientCa!)).toEqual(pemBody(pki.ca.cert));
      expect(pemBody(lt.clientCrl!)).toEqual(pemBody(pki.crl));
    });
  });
});
