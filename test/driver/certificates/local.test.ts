// The local certificate manager: validation when storing, resolution per project, encryption at rest
// (the sealed record holds no PEM; another key or a moved record does not open). SQLite in memory, or a
// fresh MariaDB database with ARGONAUT_TEST_DB=mysql.
import { randomBytes, X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateError, LocalCertificateManager, StoreError } from '../../../common/certificates/index.ts';
import { Database, dropMysqlDatabase, ensureMysqlDatabase, type Row } from '../../../common/db/database.ts';
import { MYSQL } from '../../helpers/api.ts';
import { makePki, pemBody, type TestPki } from '../../helpers/certs.ts';

const KEY = 'test-local-key-0123456789abcdef-0123456789';
const OTHER_KEY = 'another-local-key-0123456789abcdef-987654';

describe('LocalCertificateManager', () => {
  let pki: TestPki;
  let db: Database;
  let url: string;
  let m: LocalCertificateManager;

  beforeAll(async () => {
    pki = makePki();
    url = MYSQL ? `${process.env.ARGONAUT_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306'}/argonaut_test_${randomBytes(4).toString('hex')}` : 'sqlite::memory:';
    if (MYSQL) await ensureMysqlDatabase(url);
    db = new Database({ url });
    await db.connect();
    await db.migrate();
    m = new LocalCertificateManager(db, KEY);
  });
  afterAll(async () => {
    await db?.close();
    if (MYSQL) await dropMysqlDatabase(url);
    pki?.cleanup();
  });

  const storeLeaf = (name: string, extra: Record<string, unknown> = {}) =>
    m.store({ projectId: 'p1', name, kind: 'certificate', certificate: pki.leaf.cert, privateKey: pki.leaf.key, ...extra });

  it('stores a certificate and resolves it for its project: PEM certificate, decrypted PKCS#8 key, names, dates', async () => {
    const e = await storeLeaf('web', { intermediates: pki.ca.cert });
    expect(e).toMatchObject({ ref: `local://${e.id}`, projectId: 'p1', name: 'web', kind: 'certificate' });
    expect(e.notAfter!.getTime()).toBeGreaterThan(Date.now());
    const c = await m.getCert({ projectId: 'p1' }, e.ref);
    expect(new X509Certificate(c.certificate).fingerprint256).toBe(new X509Certificate(pki.leaf.cert).fingerprint256);
    expect(c.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(new X509Certificate(c.certificate).checkPrivateKey((await import('node:crypto')).createPrivateKey(c.privateKey))).toBe(true);
    expect(c.intermediates).toHaveLength(1);
    expect(new X509Certificate(c.intermediates[0]!).subject).toBe('CN=Argonaut Test CA');
    expect(c).toMatchObject({ primaryCn: 'leaf.example', dnsNames: ['leaf.example', 'www.leaf.example'], id: expect.stringMatching(/^[0-9a-f]{40}$/) });
    expect(c.notAfter.getTime()).toBe(e.notAfter!.getTime());
    // Octavia's local manager answers get_secret on a certificate with the certificate.
    expect(await m.getSecret({ projectId: 'p1' }, e.ref)).toBe(c.certificate);
  });

  it('keeps everything sealed: the stored record contains no PEM and no line of the key or certificate', async () => {
    const e = await storeLeaf('sealed-check', { intermediates: pki.ca.cert });
    const row = (await db.models.certificate.findByPk(e.id, { raw: true })) as Row;
    expect(row.sealed).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const everything = JSON.stringify(row);
    expect(everything).not.toContain('BEGIN');
    for (const line of [...pemBody(pki.leaf.key), ...pemBody(pki.leaf.cert), ...pemBody(pki.ca.cert)]) expect(everything).not.toContain(line);
    expect(row.key_id).toMatch(/^[0-9a-f]{16}$/);
    expect(everything).not.toContain(KEY);
  });

  it('another localKey cannot open a record; a record moved to another row does not open either', async () => {
    const e = await storeLeaf('key-check');
    const other = new LocalCertificateManager(db, OTHER_KEY);
    const err = await other.getCert({ projectId: 'p1' }, e.ref).catch((x) => x);
    expect(err).toBeInstanceOf(CertificateError);
    expect(err).toMatchObject({ reason: 'unavailable' });
    expect(err.message).toMatch(/sealed with another certificates\.localKey/);
    // Same key id but altered or moved data: GCM refuses it.
    const target = await storeLeaf('move-target');
    const source = (await db.models.certificate.findByPk(e.id, { raw: true })) as Row;
    await db.models.certificate.update({ sealed: source.sealed }, { where: { id: target.id } });
    const moved = await m.getCert({ projectId: 'p1' }, target.ref).catch((x) => x);
    expect(moved).toMatchObject({ reason: 'unavailable' });
    expect(moved.message).toMatch(/does not decrypt/);
    expect(() => new LocalCertificateManager(db, 'short')).toThrow(/at least 32 characters/);
  });

  it('another project, an unknown id and a malformed ref are not found', async () => {
    const e = await storeLeaf('private');
    for (const [ctx, ref] of [
      [{ projectId: 'p2' }, e.ref],
      [{ projectId: null }, e.ref],
      [{ projectId: 'p1' }, 'local://00000000-0000-4000-8000-000000000000'],
      [{ projectId: 'p1' }, 'https://barbican.example/v1/secrets/00000000-0000-4000-8000-000000000000'],
      [{ projectId: 'p1' }, e.id],
    ] as const) {
      await expect(m.getCert(ctx, ref)).rejects.toMatchObject({ name: 'CertificateError', reason: 'not_found' });
      await expect(m.getSecret(ctx, ref)).rejects.toMatchObject({ reason: 'not_found' });
    }
  });

  it('refuses a key of another certificate, an expired certificate (unless allowed), a duplicate name', async () => {
    await expect(m.store({ projectId: 'p1', name: 'mismatch', kind: 'certificate', certificate: pki.leaf.cert, privateKey: pki.sni.key })).rejects.toThrow(
      new StoreError('certificate mismatch: the private key does not match the certificate'),
    );
    await expect(m.store({ projectId: 'p1', name: 'old', kind: 'certificate', certificate: pki.expired.cert, privateKey: pki.expired.key })).rejects.toThrow(/has expired/);
    const old = await m.store({ projectId: 'p1', name: 'old', kind: 'certificate', certificate: pki.expired.cert, privateKey: pki.expired.key, allowExpired: true });
    expect(old.notAfter!.getTime()).toBeLessThan(Date.now());
    await storeLeaf('dup');
    await expect(storeLeaf('dup')).rejects.toThrow("project p1 already has a certificate named 'dup'");
    await expect(m.store({ projectId: 'p1', name: 'junk', kind: 'certificate', certificate: 'not a cert', privateKey: pki.leaf.key })).rejects.toThrow(/no PEM certificate/);
  });

  it('a passphrase-protected key: refused without or with a wrong passphrase, stored decrypted with the right one', async () => {
    const base = { projectId: 'p1', kind: 'certificate' as const, certificate: pki.leaf.cert, privateKey: pki.encryptedKey };
    await expect(m.store({ ...base, name: 'enc1' })).rejects.toThrow(/needs a \(correct\) passphrase/);
    await expect(m.store({ ...base, name: 'enc2', passphrase: 'wrong' })).rejects.toThrow(/passphrase does not decrypt/);
    const e = await m.store({ ...base, name: 'enc3', passphrase: pki.passphrase });
    const c = await m.getCert({ projectId: 'p1' }, e.ref);
    expect(c.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(c.privateKey).not.toContain('ENCRYPTED');
  });

  it('CA bundles and CRLs are secrets; a certificate is not read from them', async () => {
    const ca = await m.store({ projectId: 'p1', name: 'ca', kind: 'ca', payload: `${pki.ca.cert}${pki.otherCa.cert}` });
    const crl = await m.store({ projectId: 'p1', name: 'crl', kind: 'crl', payload: pki.crl });
    expect(ca.notAfter).toBeNull();
    expect((await m.getSecret({ projectId: 'p1' }, ca.ref)).match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(await m.getSecret({ projectId: 'p1' }, crl.ref)).toMatch(/^-----BEGIN X509 CRL-----/);
    await expect(m.getCert({ projectId: 'p1' }, ca.ref)).rejects.toMatchObject({ reason: 'unreadable' });
    await expect(m.store({ projectId: 'p1', name: 'bad-ca', kind: 'ca', payload: pki.leaf.key })).rejects.toThrow(/no PEM certificate/);
    await expect(m.store({ projectId: 'p1', name: 'bad-crl', kind: 'crl', payload: pki.ca.cert })).rejects.toThrow(/not a readable PEM CRL/);
  });

  it('intermediates as a PKCS#7 bundle are read into PEM certificates', async () => {
    const { execFileSync } = await import('node:child_process');
    const p7 = execFileSync('openssl', ['crl2pkcs7', '-nocrl', '-certfile', pki.file('intermediate.pem'), '-certfile', pki.file('ca.pem'), '-outform', 'DER']);
    const e = await m.store({ projectId: 'p1', name: 'p7', kind: 'certificate', certificate: pki.chainLeaf.cert, privateKey: pki.chainLeaf.key, intermediates: p7 });
    const c = await m.getCert({ projectId: 'p1' }, e.ref);
    expect(c.intermediates.map((i) => new X509Certificate(i).subject)).toEqual(['CN=Argonaut Test Intermediate', 'CN=Argonaut Test CA']);
  });

  it('lists without material and deletes', async () => {
    const e = await m.store({ projectId: 'p-list', name: 'only', kind: 'ca', payload: pki.ca.cert });
    const listed = await m.list('p-list');
    expect(listed).toEqual([{ ref: e.ref, id: e.id, projectId: 'p-list', name: 'only', kind: 'ca', notAfter: null, createdAt: expect.any(Date) }]);
    expect((await m.list()).length).toBeGreaterThan(1);
    expect(await m.delete(e.ref)).toBe(true);
    expect(await m.delete(e.ref)).toBe(false);
    expect(await m.list('p-list')).toEqual([]);
  });
});
