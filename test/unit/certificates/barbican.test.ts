// The barbican certificate manager against a small fake Barbican v1 (test/helpers/fake-barbican.ts): PKCS#12
// secrets, legacy certificate containers, ACL grants with the caller's token, per-project access,
// service token renewal. There is no real Barbican here: the request shapes follow
// python-barbicanclient as Octavia's barbican cert manager drives it.
import { randomUUID, X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BarbicanCertificateManager, parseBarbicanRef, type BarbicanCredentials } from '../../../common/certificates/barbican.ts';
import { CertificateError } from '../../../common/certificates/types.ts';
import { makePki, pemBody, type TestPki } from '../../helpers/certs.ts';
import { FakeBarbican, SERVICE_USER } from '../../helpers/fake-barbican.ts';

describe('BarbicanCertificateManager', () => {
  let pki: TestPki;
  const barbican = new FakeBarbican();
  let manager: BarbicanCertificateManager;
  let tokensIssued = 0;
  let serviceToken = 'svc-1';

  beforeAll(async () => {
    pki = makePki();
    await barbican.start();
    const credentials: BarbicanCredentials = {
      serviceToken: async () => {
        tokensIssued++;
        return serviceToken;
      },
      invalidateServiceToken: () => {
        serviceToken = 'svc-2';
        barbican.validServiceTokens.add('svc-2');
      },
      endpointFor: async (type) => {
        expect(type).toBe('key-manager');
        return barbican.url;
      },
      serviceUserId: async () => SERVICE_USER,
    };
    manager = new BarbicanCertificateManager({ credentials, timeoutMs: 5000 });
  });
  afterAll(async () => {
    await barbican.stop();
    pki?.cleanup();
  });
  beforeEach(() => {
    barbican.seen = [];
  });

  const user = (project: string) => ({ projectId: project, authToken: `user:${project}` });

  it('a PKCS#12 secret: grants the service user read access with the caller token, then reads it as the service user', async () => {
    const ref = barbican.addSecret('p1', pki.p12.openssl3);
    const id = parseBarbicanRef(ref)!.id;
    const cert = await manager.getCert(user('p1'), ref);
    expect(new X509Certificate(cert.certificate).subject).toBe('CN=chain.example');
    expect(cert.intermediates.map((i) => new X509Certificate(i).subject)).toEqual(['CN=Argonaut Test Intermediate']);
    expect(cert.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    // The reference named another host: every request went to the catalog's endpoint.
    expect(barbican.seen.map((s) => [s.method, s.path, s.token.startsWith('user:') ? 'user' : 'service', s.accept])).toEqual([
      ['GET', `/v1/secrets/${id}/acl`, 'user', 'application/json'],
      ['PUT', `/v1/secrets/${id}/acl`, 'user', 'application/json'],
      ['GET', `/v1/secrets/${id}`, 'service', 'application/json'],
      ['GET', `/v1/secrets/${id}/payload`, 'service', 'application/octet-stream'],
    ]);
    expect(barbican.seen[1]!.body).toEqual({ read: { users: [SERVICE_USER], 'project-access': true } });
    // Granted once: a second read does not PUT the ACL again, and the legacy (RC2) bundle reads too.
    barbican.seen = [];
    await manager.getCert(user('p1'), ref);
    expect(barbican.seen.filter((s) => s.method === 'PUT')).toEqual([]);
    const legacy = barbican.addSecret('p1', pki.p12.legacy);
    expect((await manager.getCert(user('p1'), legacy)).primaryCn).toBe('chain.example');
  });

  it('a legacy certificate container: ACLs on it and its secrets, passphrase-protected key decrypted, intermediates split', async () => {
    const secrets = {
      certificate: barbican.addSecret('p1', pki.leaf.cert, 'text/plain'),
      private_key: barbican.addSecret('p1', pki.encryptedKey, 'text/plain'),
      private_key_passphrase: barbican.addSecret('p1', pki.passphrase, 'text/plain'),
      intermediates: barbican.addSecret('p1', `${pki.intermediate.cert}${pki.ca.cert}`, 'text/plain'),
    };
    const ref = barbican.addContainer('p1', secrets);
    const cert = await manager.getCert(user('p1'), ref);
    expect(cert.primaryCn).toBe('leaf.example');
    expect(cert.privateKey).not.toContain('ENCRYPTED');
    expect(cert.intermediates).toHaveLength(2);
    const puts = barbican.seen.filter((s) => s.method === 'PUT').map((s) => s.path);
    expect(puts).toEqual([`/v1/containers/${parseBarbicanRef(ref)!.id}/acl`, ...Object.values(secrets).map((s) => `/v1/secrets/${parseBarbicanRef(s)!.id}/acl`)]);
    // Service reads: the container (to grant its secrets), the PKCS12 attempt (no such secret), then the container again.
    const id = parseBarbicanRef(ref)!.id;
    const reads = barbican.seen.filter((s) => !s.token.startsWith('user:')).map((s) => s.path);
    expect(reads.slice(0, 3)).toEqual([`/v1/containers/${id}`, `/v1/secrets/${id}`, `/v1/containers/${id}`]);
  });

  it("another project's secret, an unknown id and a non-Barbican ref are not found; errors carry no token or payload", async () => {
    const ref = barbican.addSecret('p1', pki.p12.openssl3);
    const err = (await manager.getCert(user('p2'), ref).catch((e) => e)) as CertificateError;
    expect(err).toMatchObject({ name: 'CertificateError', reason: 'not_found' });
    expect(err.message).not.toMatch(/user:|svc-/);
    await expect(manager.getCert(user('p1'), `${barbican.url}/v1/secrets/${randomUUID()}`)).rejects.toMatchObject({ reason: 'not_found' });
    await expect(manager.getSecret(user('p1'), 'local://whatever')).rejects.toMatchObject({ reason: 'not_found' });
    // Without a caller token (rendering) nothing is granted: an ungranted secret is not readable.
    const ungranted = barbican.addSecret('p1', pki.ca.cert, 'text/plain');
    await expect(manager.getSecret({ projectId: 'p1' }, ungranted)).rejects.toMatchObject({ reason: 'not_found' });
    expect(barbican.seen.some((s) => s.path.endsWith('/acl') && s.path.includes(parseBarbicanRef(ungranted)!.id))).toBe(false);
  });

  it('a secret that is not a PKCS#12 bundle is unreadable_pkcs12, without trying a container', async () => {
    const ref = barbican.addSecret('p1', pki.leaf.cert);
    barbican.seen = [];
    const err = (await manager.getCert(user('p1'), ref).catch((e) => e)) as CertificateError;
    expect(err.reason).toBe('unreadable_pkcs12');
    expect(barbican.seen.some((s) => s.path.startsWith('/v1/containers/'))).toBe(false);
    for (const line of pemBody(pki.leaf.cert)) expect(err.message).not.toContain(line);
    const withPassword = barbican.addSecret('p1', pki.p12.withPassword);
    await expect(manager.getCert(user('p1'), withPassword)).rejects.toMatchObject({ reason: 'unreadable_pkcs12', detail: expect.stringMatching(/mac verify failure/) });
  });

  it('get_secret returns a CA bundle or CRL as text', async () => {
    const ca = barbican.addSecret('p1', pki.ca.cert, 'text/plain');
    expect(await manager.getSecret(user('p1'), ca)).toBe(pki.ca.cert);
    const crl = barbican.addSecret('p1', pki.crl, 'text/plain');
    expect(await manager.getSecret(user('p1'), crl)).toBe(pki.crl);
  });

  it('renews the service token once when Barbican answers 401', async () => {
    const ref = barbican.addSecret('p1', pki.ca.cert, 'text/plain');
    barbican.validServiceTokens.delete('svc-1');
    const before = tokensIssued;
    expect(await manager.getSecret(user('p1'), ref)).toBe(pki.ca.cert);
    expect(serviceToken).toBe('svc-2');
    expect(tokensIssued).toBeGreaterThan(before);
    expect(barbican.seen.filter((s) => s.token === 'svc-1').length).toBe(1);
  });

  it('parses references as python-barbicanclient does: the id, and the entity when the path names it', () => {
    const id = randomUUID();
    expect(parseBarbicanRef(`https://kms.example:9311/v1/secrets/${id}`)).toEqual({ id, entity: 'secrets' });
    expect(parseBarbicanRef(`https://kms.example/key-manager/v1/containers/${id}/`)).toEqual({ id, entity: 'containers' });
    expect(parseBarbicanRef(id.toUpperCase())).toEqual({ id, entity: null });
    expect(parseBarbicanRef('https://kms.example/v1/secrets/not-a-uuid')).toBeNull();
    expect(parseBarbicanRef('not a ref')).toBeNull();
  });
});
