// `argonaut cert store|list|delete`, run as the real command (a child process) against a SQLite file,
// or a fresh MariaDB database with ARGONAUT_TEST_DB=mysql.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCertArgs, runCert } from '../../../common/certificates/cli.ts';
import { LocalCertificateManager } from '../../../common/certificates/index.ts';
import { buildConfig } from '../../../common/config.ts';
import { Database, dropMysqlDatabase, ensureMysqlDatabase } from '../../../common/db/database.ts';
import { MYSQL } from '../../helpers/api.ts';
import { makePki, pemBody, type TestPki } from '../../helpers/certs.ts';

const KEY = 'cli-test-local-key-0123456789abcdef-01234';
const root = new URL('../../..', import.meta.url).pathname;

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'bin/argonaut.ts'), ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

describe('argonaut cert', () => {
  let pki: TestPki;
  let config: string;
  let dbUrl: string;

  beforeAll(async () => {
    pki = makePki();
    dbUrl = MYSQL ? `${process.env.ARGONAUT_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306'}/argonaut_test_${randomBytes(4).toString('hex')}` : `sqlite:${pki.file('cli.sqlite')}`;
    if (MYSQL) await ensureMysqlDatabase(dbUrl);
    config = pki.file('argonaut.yaml');
    writeFileSync(config, stringify({ database: { url: dbUrl }, certificates: { localKey: KEY }, logging: { level: 'warn' } }));
    writeFileSync(pki.file('no-key.yaml'), stringify({ database: { url: dbUrl } }));
  });
  afterAll(async () => {
    if (MYSQL) await dropMysqlDatabase(dbUrl);
    pki?.cleanup();
  });

  it('stores a certificate (encrypted key with a passphrase file), a CA and a CRL; lists them; prints no material', async () => {
    const cert = await run(['cert', 'store', '--config', config, '--project', 'p1', '--name', 'web', '--cert', pki.file('leaf.pem'), '--key', pki.file('leaf-encrypted.key'),
      '--passphrase-file', pki.file('pass.txt'), '--intermediates', pki.file('ca.pem')]);
    expect(cert).toMatchObject({ code: 0, out: expect.stringMatching(/^local:\/\/[0-9a-f-]{36}\n$/) });
    const ref = cert.out.trim();
    const ca = await run(['cert', 'store', '-c', config, '--project', 'p1', '--name', 'clients', '--ca', pki.file('ca.pem')]);
    expect(ca.code).toBe(0);
    const crl = await run(['--config', config, 'cert', 'store', '--project', 'p1', '--name', 'revoked', '--crl', pki.file('ca-crl.pem')]);
    expect(crl.code).toBe(0);

    const list = await run(['cert', 'list', '--config', config, '--json']);
    expect(list.code).toBe(0);
    const entries = JSON.parse(list.out);
    expect(entries.map((e: { name: string; kind: string }) => [e.name, e.kind])).toEqual([['clients', 'ca'], ['revoked', 'crl'], ['web', 'certificate']]);
    expect(entries.find((e: { name: string }) => e.name === 'web')).toMatchObject({ ref, project_id: 'p1', not_after: expect.stringMatching(/^20\d\d-/) });
    const table = await run(['cert', 'list', '--config', config, '--project', 'p1']);
    expect(table.out.split('\n')[0]).toMatch(/^REF\s+PROJECT\s+NAME\s+KIND\s+NOT AFTER$/);
    for (const output of [cert, ca, crl, list, table]) {
      expect(output.out + output.err).not.toContain('BEGIN');
      for (const line of pemBody(pki.leaf.key)) expect(output.out + output.err).not.toContain(line);
    }

    // What the command stored resolves for its project, with the key decrypted.
    const db = new Database({ url: dbUrl });
    try {
      const got = await new LocalCertificateManager(db, KEY).getCert({ projectId: 'p1' }, ref);
      expect(got.primaryCn).toBe('leaf.example');
      expect(got.intermediates).toHaveLength(1);
    } finally {
      await db.close();
    }

    expect(await run(['cert', 'delete', ref, '--config', config])).toMatchObject({ code: 0, out: `deleted ${ref}\n` });
    expect(await run(['cert', 'delete', ref, '--config', config])).toMatchObject({ code: 1, err: `argonaut cert: no certificate ${ref}\n` });
  }, 120_000);

  it('refuses bad input with a reason and a non-zero exit', async () => {
    const mismatch = await run(['cert', 'store', '--config', config, '--project', 'p1', '--name', 'bad', '--cert', pki.file('leaf.pem'), '--key', pki.file('sni.key')]);
    expect(mismatch).toMatchObject({ code: 1, err: 'argonaut cert: certificate bad: the private key does not match the certificate\n' });
    const expired = await run(['cert', 'store', '--config', config, '--project', 'p1', '--name', 'old', '--cert', pki.file('expired.pem'), '--key', pki.file('expired.key')]);
    expect(expired.code).toBe(1);
    expect(expired.err).toMatch(/the certificate has expired/);
    const both = await run(['cert', 'store', '--config', config, '--project', 'p1', '--name', 'x', '--ca', pki.file('ca.pem'), '--crl', pki.file('ca-crl.pem')]);
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/exactly one of --cert\/--key, --ca or --crl/);
    const noKey = await run(['cert', 'list', '--config', pki.file('no-key.yaml')]);
    expect(noKey).toMatchObject({ code: 2, err: expect.stringMatching(/certificates\.localKey is not set/) });
    const unknown = await run(['cert', 'store', '--bogus']);
    expect(unknown.code).toBe(2);
    const help = await run(['cert', '--help']);
    expect(help).toMatchObject({ code: 0, out: expect.stringMatching(/^Usage: argonaut cert <store\|list\|delete>/) });
  }, 120_000);

  it('delete refuses an entry a listener or pool uses, unless --force', async () => {
    const db = new Database({ url: dbUrl });
    try {
      await db.connect();
      await db.migrate();
      const cfg = buildConfig({ database: { url: dbUrl }, certificates: { localKey: KEY } });
      const io = { out: '', err: '' };
      const sink = { out: (t: string) => void (io.out += t), err: (t: string) => void (io.err += t) };
      const ref = (await new LocalCertificateManager(db, KEY).store({ projectId: 'p9', name: 'in-use', kind: 'ca', payload: pki.ca.cert })).ref;
      const listenerId = randomUUID();
      await db.models.listener.create({
        id: listenerId, project_id: 'p9', load_balancer_id: randomUUID(), provisioning_status: 'ACTIVE', operating_status: 'ONLINE',
        admin_state_up: true, protocol: 'TERMINATED_HTTPS', protocol_port: 443, client_ca_tls_container_ref: ref, sni_container_refs: '[]', hsts_include_subdomains: false, hsts_preload: false, created_at: new Date(),
      });
      expect(await runCert(parseCertArgs(['delete', ref]), cfg, db, sink)).toBe(1);
      expect(io.err).toBe(`argonaut cert: ${ref} is in use by listener ${listenerId} (--force deletes it anyway)\n`);
      expect(await runCert(parseCertArgs(['delete', ref, '--force']), cfg, db, sink)).toBe(0);
      expect(io.out).toBe(`deleted ${ref}\n`);
    } finally {
      await db.close();
    }
  });
});
