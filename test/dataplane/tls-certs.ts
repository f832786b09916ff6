import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * A throw-away PKI for TLS tests, made with the `openssl` binary (Node cannot issue certificates or CRLs):
 * CAs, intermediates, server and client certificates (EC P-256 unless RSA is asked for), revocation and CRLs.
 */

const run = promisify(execFile);

export interface Issued {
  /** PEM certificate. */
  cert: string;
  /** PEM private key (PKCS#8, unencrypted). */
  key: string;
  /** Where the certificate is on disk (for revocation). */
  certFile: string;
  keyFile: string;
  subject: string;
}

export interface CertificateAuthority extends Issued {
  dir: string;
  name: string;
}

export interface IssueOptions {
  /** "/CN=www.example.com/O=Example" style subject. */
  subject: string;
  /** subjectAltName entries such as "DNS:www.example.com", "IP:127.0.0.1". */
  san?: string[];
  usage?: 'server' | 'client' | 'ca';
  keyType?: 'ec' | 'rsa';
  days?: number;
}

export class TestPki {
  private serial = 1;

  private constructor(readonly dir: string) {}

  static async create(): Promise<TestPki> {
    return new TestPki(await mkdtemp(path.join(os.tmpdir(), 'argonaut-pki-')));
  }

  async cleanup(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  private async newKey(file: string, type: 'ec' | 'rsa'): Promise<string> {
    const args = type === 'ec' ? ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file] : ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', file];
    await run('openssl', args);
    return readFile(file, 'utf8');
  }

  /** A self-signed root CA with its own revocation database. */
  async rootCa(name: string, keyType: 'ec' | 'rsa' = 'ec'): Promise<CertificateAuthority> {
    const base = path.join(this.dir, name);
    const keyFile = `${base}.key`;
    const certFile = `${base}.pem`;
    const key = await this.newKey(keyFile, keyType);
    const subject = `/CN=${name}/O=Argonaut Tests`;
    await run('openssl', [
      'req', '-x509', '-new', '-key', keyFile, '-out', certFile, '-days', '30', '-subj', subject, '-sha256',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    return this.authority(name, base, { cert: await readFile(certFile, 'utf8'), key, certFile, keyFile, subject });
  }

  /** An intermediate CA signed by `parent`. */
  async intermediateCa(parent: CertificateAuthority, name: string): Promise<CertificateAuthority> {
    const issued = await this.issue(parent, { subject: `/CN=${name}/O=Argonaut Tests`, usage: 'ca' }, name);
    return this.authority(name, path.join(this.dir, name), issued);
  }

  private async authority(name: string, base: string, issued: Issued): Promise<CertificateAuthority> {
    const dir = `${base}.db`;
    await run('mkdir', ['-p', dir]);
    await writeFile(path.join(dir, 'index.txt'), '');
    await writeFile(path.join(dir, 'crlnumber'), '01\n');
    await writeFile(
      path.join(dir, 'ca.cnf'),
      [
        '[ ca ]',
        'default_ca = test_ca',
        '[ test_ca ]',
        `database = ${path.join(dir, 'index.txt')}`,
        `crlnumber = ${path.join(dir, 'crlnumber')}`,
        `certificate = ${issued.certFile}`,
        `private_key = ${issued.keyFile}`,
        'default_md = sha256',
        'default_crl_days = 30',
        '',
      ].join('\n'),
    );
    return { ...issued, dir, name };
  }

  /** A certificate signed by `ca`. */
  async issue(ca: CertificateAuthority, options: IssueOptions, fileName?: string): Promise<Issued> {
    const serial = this.serial++;
    const base = path.join(this.dir, fileName ?? `cert-${serial}`);
    const keyFile = `${base}.key`;
    const certFile = `${base}.pem`;
    const csrFile = `${base}.csr`;
    const extFile = `${base}.ext`;
    const key = await this.newKey(keyFile, options.keyType ?? 'ec');
    await run('openssl', ['req', '-new', '-key', keyFile, '-out', csrFile, '-subj', options.subject]);
    const usage = options.usage ?? 'server';
    const ext =
      usage === 'ca'
        ? ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign']
        : [
            'basicConstraints=CA:FALSE',
            'keyUsage=critical,digitalSignature,keyEncipherment',
            `extendedKeyUsage=${usage === 'server' ? 'serverAuth' : 'clientAuth'}`,
          ];
    if (options.san !== undefined && options.san.length > 0) ext.push(`subjectAltName=${options.san.join(',')}`);
    await writeFile(extFile, `${ext.join('\n')}\n`);
    await run('openssl', [
      'x509', '-req', '-in', csrFile, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', String(1000 + serial),
      '-days', String(options.days ?? 30), '-sha256', '-extfile', extFile, '-out', certFile,
    ]);
    return { cert: await readFile(certFile, 'utf8'), key, certFile, keyFile, subject: options.subject };
  }

  /** Marks a certificate issued by `ca` revoked; the next crl() lists it. */
  async revoke(ca: CertificateAuthority, cert: Issued): Promise<void> {
    await run('openssl', ['ca', '-config', path.join(ca.dir, 'ca.cnf'), '-revoke', cert.certFile]);
  }

  /** The CA's current CRL (PEM). */
  async crl(ca: CertificateAuthority): Promise<string> {
    const out = path.join(ca.dir, `crl-${Date.now()}.pem`);
    await run('openssl', ['ca', '-config', path.join(ca.dir, 'ca.cnf'), '-gencrl', '-out', out]);
    return readFile(out, 'utf8');
  }
}
