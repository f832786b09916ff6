// TLS certificate references through the local certificate manager (issue 4): listeners, pools and
// the graph create accept references to good certificates of the load balancer's project and refuse
// the others with Octavia's 400s (unknown, another project's, expired, key of another certificate,
// a CA that is no certificate, a CRL of another CA); key material never appears in a response; the
// accepted references resolve into the AmphoraConfig TLS material. SQLite, and MariaDB with
// ARGONAUT_TEST_DB=mysql.
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAmphoraConfig } from '../../common/amphora-config/index.ts';
import { BarbicanCertificateManager, LocalCertificateManager } from '../../common/certificates/index.ts';
import { Sealer } from '../../common/certificates/sealing.ts';
import { loadTree } from '../../driver/controller/completion.ts';
import { renderAmphoraConfig } from '../../driver/amphora/render-config.ts';
import { resolveTreeTls } from '../../driver/amphora/tls-material.ts';
import { setCertificateManager } from '../../api/tls-refs.ts';
import { startApi, type Client, type TestApi } from '../helpers/api.ts';
import { FakeBarbican, SERVICE_USER } from '../helpers/fake-barbican.ts';
import { makePki, pemBody, type TestPki } from '../helpers/certs.ts';
import { BASE, expectFault, fixtures, SUBNET_ID, tableCounts, type Fixtures, type Obj } from '../helpers/fixtures.ts';

const KEY = 'api-test-local-key-0123456789abcdef-0123';
const LISTENERS = `${BASE}/listeners`;
const POOLS = `${BASE}/pools`;
const retrieval = (...refs: string[]) => `Could not retrieve certificate: [${refs.map((r) => `'${r}'`).join(', ')}]`;

describe('TLS references with the local certificate manager', () => {
  let api: TestApi;
  let c: Client;
  let f: Fixtures;
  let pki: TestPki;
  let manager: LocalCertificateManager;
  let lb: Obj;
  const ref: Record<string, string> = {};

  beforeAll(async () => {
    pki = makePki();
    api = await startApi({ certificates: { manager: 'local', localKey: KEY } }, { keystone: true });
    c = api.client('p1:member');
    f = fixtures(api, c);
    const { db } = api.service.services;
    manager = new LocalCertificateManager(db, KEY);
    const cert = async (name: string, pair: { cert: string; key: string }, project = 'p1', extra = {}) =>
      (await manager.store({ projectId: project, name, kind: 'certificate', certificate: pair.cert, privateKey: pair.key, ...extra })).ref;
    ref.leaf = await cert('leaf', pki.leaf, 'p1', { intermediates: pki.ca.cert });
    ref.sni = await cert('sni', pki.sni);
    ref.expired = await cert('expired', pki.expired, 'p1', { allowExpired: true });
    ref.p2 = await cert('leaf', pki.leaf, 'p2');
    ref.ca = (await manager.store({ projectId: 'p1', name: 'ca', kind: 'ca', payload: pki.ca.cert })).ref;
    ref.crl = (await manager.store({ projectId: 'p1', name: 'crl', kind: 'crl', payload: pki.crl })).ref;
    ref.otherCrl = (await manager.store({ projectId: 'p1', name: 'other-crl', kind: 'crl', payload: pki.otherCrl })).ref;
    // A record whose key is another certificate's: `cert store` refuses it, so it is written directly.
    const sealer = new Sealer(KEY);
    const id = randomUUID();
    await db.models.certificate.create({
      id, project_id: 'p1', name: 'mismatch', kind: 'certificate', not_after: null, key_id: sealer.keyId, created_at: new Date(),
      sealed: sealer.seal(JSON.stringify({ certificate: pki.leaf.cert, privateKey: pki.sni.key, intermediates: [] }), `argonaut-certificate|${id}|p1|certificate`),
    });
    ref.mismatch = `local://${id}`;
    ref.unknown = `local://${randomUUID()}`;
    lb = await f.lb();
  });
  afterAll(async () => {
    await api?.close();
    pki?.cleanup();
  });

  let port = 1000;
  const postListener = (body: Obj, client = c) =>
    client.post(LISTENERS, { listener: { loadbalancer_id: lb.id, protocol: 'TERMINATED_HTTPS', protocol_port: port++, ...body } });

  const noMaterial = (body: unknown) => {
    const text = JSON.stringify(body);
    expect(text).not.toContain('BEGIN');
    for (const line of [...pemBody(pki.leaf.key), ...pemBody(pki.leaf.cert)]) expect(text).not.toContain(line);
  };

  describe('listeners', () => {
    it('accepts good references (default, SNI, client CA and CRL) and never shows material', async () => {
      const res = await postListener({
        default_tls_container_ref: ref.leaf, sni_container_refs: [ref.sni], client_ca_tls_container_ref: ref.ca,
        client_crl_container_ref: ref.crl, client_authentication: 'MANDATORY',
      });
      expect(res.status).toBe(201);
      expect(res.body.listener).toMatchObject({
        default_tls_container_ref: ref.leaf, sni_container_refs: [ref.sni], client_ca_tls_container_ref: ref.ca,
        client_crl_container_ref: ref.crl, client_authentication: 'MANDATORY', tls_versions: ['TLSv1.2', 'TLSv1.3'],
      });
      noMaterial(res.body);
      await api.settle();
      const got = await f.get(`${LISTENERS}/${res.body.listener.id}`, 'listener');
      expect(got.provisioning_status).toBe('ACTIVE');
      noMaterial(got);
    });

    it.each([
      ['an unknown reference', 'unknown'],
      ["another project's reference", 'p2'],
      ['an expired certificate', 'expired'],
      ['a key of another certificate', 'mismatch'],
      ['a CA bundle (no key)', 'ca'],
    ])('refuses %s with 400 "Could not retrieve certificate"', async (_what, name) => {
      const before = await tableCounts(api);
      expectFault(await postListener({ default_tls_container_ref: ref[name] }), 400, retrieval(ref[name]!));
      expectFault(await postListener({ sni_container_refs: [ref[name]] }), 400, retrieval(ref[name]!));
      expect(await tableCounts(api)).toEqual(before);
    });

    it('names every bad reference, SNI ones first, as Octavia does', async () => {
      expectFault(
        await postListener({ default_tls_container_ref: 'not-a-ref', sni_container_refs: [ref.sni, ref.unknown, ref.expired] }),
        400,
        retrieval(ref.unknown!, ref.expired!, 'not-a-ref'),
      );
    });

    it("an administrator of another project may use the load balancer's project references", async () => {
      const res = await postListener({ default_tls_container_ref: ref.leaf }, api.client('admin-project:admin'));
      expect(res.status).toBe(201);
      await api.settle();
    });

    it('checks the client CA and CRL: retrievable, an X509 CA, a CRL it signed', async () => {
      const base = { default_tls_container_ref: ref.leaf };
      expectFault(await postListener({ ...base, client_ca_tls_container_ref: ref.unknown, client_crl_container_ref: 'nope' }), 400, retrieval(ref.unknown!, 'nope'));
      expectFault(
        await postListener({ ...base, client_ca_tls_container_ref: ref.crl }),
        400,
        'Validation failure: The client authentication CA certificate is invalid. It must be a valid x509 PEM format certificate. Error: Unable to load PEM file. MalformedFraming',
      );
      expectFault(
        await postListener({ ...base, client_ca_tls_container_ref: ref.ca, client_crl_container_ref: ref.ca }),
        400,
        'Validation failure: The client authentication certificate revocation list is invalid. It must be a valid x509 PEM format certificate revocation list. Error: Unable to load PEM file. MalformedFraming',
      );
      expectFault(
        await postListener({ ...base, client_ca_tls_container_ref: ref.ca, client_crl_container_ref: ref.otherCrl }),
        400,
        'Validation failure: The CRL specified is not valid for client certificate authority reference supplied.',
      );
      // A certificate entry is accepted as a CA (its certificate), as Octavia's local manager serves it.
      const res = await postListener({ ...base, client_ca_tls_container_ref: ref.sni });
      expect(res.status).toBe(201);
      await api.settle();
    });

    it('PUT validates new references and revalidates the stored CA', async () => {
      const created = await postListener({ default_tls_container_ref: ref.leaf, client_ca_tls_container_ref: ref.ca });
      expect(created.status).toBe(201);
      await api.settle();
      const path = `${LISTENERS}/${created.body.listener.id}`;
      expectFault(await c.put(path, { listener: { default_tls_container_ref: ref.mismatch } }), 400, retrieval(ref.mismatch!));
      expectFault(await c.put(path, { listener: { sni_container_refs: [ref.p2] } }), 400, retrieval(ref.p2!));
      expectFault(await c.put(path, { listener: { client_crl_container_ref: ref.otherCrl } }), 400,
        'Validation failure: The CRL specified is not valid for client certificate authority reference supplied.');
      const ok = await c.put(path, { listener: { sni_container_refs: [ref.sni], client_crl_container_ref: ref.crl } });
      expect(ok.status).toBe(200);
      expect(ok.body.listener).toMatchObject({ sni_container_refs: [ref.sni], client_crl_container_ref: ref.crl });
      noMaterial(ok.body);
      await api.settle();
      expect((await c.put(path, { listener: { name: 'renamed' } })).status).toBe(200);
      await api.settle();
    });

    it('logs why a reference was refused, never the material', async () => {
      const { services } = api.service;
      const original = services.log;
      let logged = '';
      services.log = pino({ level: 'debug' }, { write: (line: string) => void (logged += line) });
      try {
        expectFault(await postListener({ default_tls_container_ref: ref.mismatch }), 400, retrieval(ref.mismatch!));
        expectFault(await postListener({ default_tls_container_ref: ref.expired }), 400, retrieval(ref.expired!));
        expect((await postListener({ default_tls_container_ref: ref.leaf, client_ca_tls_container_ref: ref.ca, client_crl_container_ref: ref.crl })).status).toBe(201);
        await api.settle();
      } finally {
        services.log = original;
      }
      const events = logged.trim().split('\n').map((l) => JSON.parse(l));
      expect(events).toEqual(expect.arrayContaining([
        expect.objectContaining({ event: 'tls.ref.rejected', ref: ref.mismatch, reason: 'key_mismatch' }),
        expect.objectContaining({ event: 'tls.ref.rejected', ref: ref.expired, reason: 'expired' }),
      ]));
      expect(logged).not.toContain('BEGIN');
      for (const line of [...pemBody(pki.leaf.key), ...pemBody(pki.sni.key), ...pemBody(pki.leaf.cert)]) expect(logged).not.toContain(line);
    });

    it('HTTP listeners still refuse references before any lookup', async () => {
      expectFault(await postListener({ protocol: 'HTTP', default_tls_container_ref: ref.leaf }), 400,
        'Validation failure: Certificate container references are not allowed on HTTP protocol listeners.');
    });
  });

  describe('pools', () => {
    it('accepts a client certificate, a CA and a CRL; refuses bad ones', async () => {
      const post = (body: Obj) => c.post(POOLS, { pool: { loadbalancer_id: lb.id, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN', tls_enabled: true, ...body } });
      const res = await post({ tls_container_ref: ref.leaf, ca_tls_container_ref: ref.ca, crl_container_ref: ref.crl });
      expect(res.status).toBe(201);
      expect(res.body.pool).toMatchObject({ tls_container_ref: ref.leaf, ca_tls_container_ref: ref.ca, crl_container_ref: ref.crl });
      noMaterial(res.body);
      await api.settle();
      expectFault(await post({ tls_container_ref: ref.expired }), 400, retrieval(ref.expired!));
      expectFault(await post({ tls_container_ref: ref.p2 }), 400, retrieval(ref.p2!));
      expectFault(await post({ ca_tls_container_ref: ref.unknown }), 400, retrieval(ref.unknown!));
      expectFault(await post({ ca_tls_container_ref: ref.ca, crl_container_ref: ref.otherCrl }), 400,
        'Validation failure: The CRL specified is not valid for client certificate authority reference supplied.');

      const path = `${POOLS}/${res.body.pool.id}`;
      expectFault(await c.put(path, { pool: { tls_container_ref: ref.mismatch } }), 400, retrieval(ref.mismatch!));
      expectFault(await c.put(path, { pool: { crl_container_ref: ref.otherCrl } }), 400,
        'Validation failure: The CRL specified is not valid for client certificate authority reference supplied.');
      const ok = await c.put(path, { pool: { tls_container_ref: ref.sni } });
      expect(ok.status).toBe(200);
      await api.settle();
    });
  });

  describe('graph create and rendering', () => {
    const graph = (listenerRefs: Obj, poolRefs: Obj) => ({
      loadbalancer: {
        vip_subnet_id: SUBNET_ID,
        listeners: [{
          name: 'https', protocol: 'TERMINATED_HTTPS', protocol_port: 443, ...listenerRefs,
          default_pool: { name: 'web', protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN', tls_enabled: true, ...poolRefs, members: [{ address: '192.0.2.10', protocol_port: 443 }] },
        }],
      },
    });

    it('refuses a bad reference anywhere in the graph and creates nothing', async () => {
      const before = await tableCounts(api);
      expectFault(await c.post(`${BASE}/loadbalancers`, graph({ default_tls_container_ref: ref.unknown }, {})), 400, retrieval(ref.unknown!));
      expectFault(await c.post(`${BASE}/loadbalancers`, graph({ default_tls_container_ref: ref.leaf }, { tls_container_ref: ref.p2 })), 400, retrieval(ref.p2!));
      expect(await tableCounts(api)).toEqual(before);
    });

    it('creates the graph and resolves its references into the AmphoraConfig TLS material', async () => {
      const res = await c.post(`${BASE}/loadbalancers`, graph(
        { default_tls_container_ref: ref.leaf, sni_container_refs: [ref.sni], client_ca_tls_container_ref: ref.ca, client_crl_container_ref: ref.crl, client_authentication: 'OPTIONAL' },
        { tls_container_ref: ref.sni, ca_tls_container_ref: ref.ca },
      ));
      expect(res.status).toBe(201);
      noMaterial(res.body);
      await api.settle();
      const { db } = api.service.services;
      const tree = (await loadTree(db, res.body.loadbalancer.id))!;
      const tls = await resolveTreeTls(manager, tree);
      const listener = tree.listeners[0]!;
      const pool = tree.pools[0]!;
      const lt = tls.listeners.get(listener.id)!;
      expect(lt.defaultCertificate).toMatchObject({ ref: ref.leaf, privateKey: expect.stringMatching(/^-----BEGIN PRIVATE KEY-----/) });
      expect(pemBody(lt.defaultCertificate!.certificate)).toEqual(pemBody(pki.leaf.cert));
      expect((lt.defaultCertificate!.intermediates ?? []).map(pemBody)).toEqual([pemBody(pki.ca.cert)]);
      expect(lt.sniCertificates!.map((s) => s.ref)).toEqual([ref.sni]);
      expect(lt).toMatchObject({ clientAuthentication: 'OPTIONAL', versions: ['TLSv1.2', 'TLSv1.3'], alpnProtocols: ['h2', 'http/1.1', 'http/1.0'] });
      expect(pemBody(lt.clientCa!)).toEqual(pemBody(pki.ca.cert));
      expect(pemBody(lt.clientCrl!)).toEqual(pemBody(pki.crl));
      const pt = tls.pools.get(pool.id)!;
      expect(pt.clientCertificate).toMatchObject({ ref: ref.sni });
      expect(pt.crl).toBeNull();
      const config = parseAmphoraConfig(renderAmphoraConfig(tree, randomUUID(), 1, tls));
      expect(config.listeners[0]!.tls!.defaultCertificate!.ref).toBe(ref.leaf);
      expect(config.pools[0]!.tls!.ca).toBe(pt.ca);
    });
  });
});

describe('TLS references without a certificate manager', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi({}, { keystone: true });
  });
  afterAll(async () => api?.close());

  it('refuses them as before the certificate managers', async () => {
    const c = api.client('p1:member');
    const lb = await fixtures(api, c).lb();
    expectFault(
      await c.post(LISTENERS, { listener: { loadbalancer_id: lb.id, protocol: 'TERMINATED_HTTPS', protocol_port: 443, default_tls_container_ref: 'local://x' } }),
      400,
      'Validation failure: TLS certificate references cannot be resolved: no certificate manager is configured in this deployment.',
    );
    expectFault(
      await c.post(POOLS, { pool: { loadbalancer_id: lb.id, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN', tls_container_ref: 'x' } }),
      400,
      'Validation failure: TLS certificate references cannot be resolved: no certificate manager is configured in this deployment.',
    );
  });
});

describe('TLS references through Barbican (a fake Barbican server; no real Barbican here)', () => {
  let api: TestApi;
  let pki: TestPki;
  const barbican = new FakeBarbican();
  beforeAll(async () => {
    pki = makePki();
    await barbican.start();
    barbican.userProject = (token) => /^(p\d+):/.exec(token)?.[1];
    api = await startApi({ certificates: { manager: 'barbican' } }, { keystone: true });
    setCertificateManager(api.service.services, new BarbicanCertificateManager({
      credentials: {
        serviceToken: async () => 'svc-1',
        invalidateServiceToken: () => undefined,
        endpointFor: async () => barbican.url,
        serviceUserId: async () => SERVICE_USER,
      },
      timeoutMs: 5000,
    }));
  });
  afterAll(async () => {
    await api?.close();
    await barbican.stop();
    pki?.cleanup();
  });

  it("grants access with the caller's token, accepts good secrets and refuses the others with Octavia's 400s", async () => {
    const c = api.client('p1:member');
    const lb = await fixtures(api, c).lb();
    const post = (body: Obj) => c.post(LISTENERS, { listener: { loadbalancer_id: lb.id, protocol: 'TERMINATED_HTTPS', protocol_port: 443, ...body } });
    const good = barbican.addSecret('p1', pki.p12.openssl3);
    const ca = barbican.addSecret('p1', pki.ca.cert, 'text/plain');
    const foreign = barbican.addSecret('p2', pki.p12.openssl3);
    const pem = barbican.addSecret('p1', pki.leaf.cert);
    expectFault(await post({ default_tls_container_ref: foreign }), 400, retrieval(foreign));
    expectFault(
      await post({ default_tls_container_ref: pem }),
      400,
      'The PKCS12 bundle is unreadable. Please check the PKCS12 bundle validity. In addition, make sure it does not require a pass phrase. Error: Could not deserialize PKCS12 data',
    );
    const res = await post({ default_tls_container_ref: good, client_ca_tls_container_ref: ca });
    expect(res.status).toBe(201);
    expect(JSON.stringify(res.body)).not.toContain('BEGIN');
    const grants = barbican.seen.filter((s) => s.method === 'PUT');
    // Every grant was made with the caller's token, for the service user; the foreign secret got none (403).
    const id = (ref: string) => ref.split('/').at(-1);
    expect(new Set(grants.map((g) => g.path.split('/')[3]))).toEqual(new Set([id(pem), id(good), id(ca)]));
    for (const g of grants) expect(g).toMatchObject({ token: 'p1:member', body: { read: { users: [SERVICE_USER], 'project-access': true } } });
    await api.settle();
  });
});
