// Test certificates made with the openssl binary (EC P-256: fast): a CA with a leaf and its
// intermediate-free chain, a second leaf for SNI, an expired leaf, a key of another certificate,
// a passphrase-protected key, CRLs signed by the CA and by another CA, and PKCS#12 bundles as
// Barbican holds them (OpenSSL 3's default, OpenSSL 1.x's RC2/3DES `-legacy`, unencrypted, and one
// with a password). Made once per test file in a temporary directory.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pair {
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  ca: Pair;
  otherCa: Pair;
  /** Signed by `ca`, CN leaf.example, SAN DNS:leaf.example, DNS:www.leaf.example. */
  leaf: Pair;
  /** Signed by `ca`, CN sni.example. */
  sni: Pair;
  /** Signed by `ca`, notAfter a day ago. */
  expired: Pair;
  /** The leaf's key encrypted (AES-256) with `passphrase`. */
  encryptedKey: string;
  passphrase: string;
  /** An intermediate CA certificate (for chains) and a leaf it signed. */
  intermediate: Pair;
  chainLeaf: Pair;
  crl: string;
  otherCrl: string;
  /** PKCS#12 bundles of `chainLeaf` + `intermediate` (DER). */
  p12: { openssl3: Buffer; legacy: Buffer; plain: Buffer; withPassword: Buffer };
  file(name: string): string;
  cleanup(): void;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'argonaut-pki-'));
  const f = (name: string) => join(dir, name);
  const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const read = (name: string) => readFileSync(f(name), 'utf8');

  const selfSigned = (name: string, cn: string) => {
    ossl('req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '30', '-subj', `/CN=${cn}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  };
  const signed = (name: string, cn: string, ca: string, days: string, ext: string) => {
    ossl('req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    writeFileSync(f(`${name}.ext`), ext);
    ossl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-days', days, '-out', `${name}.pem`, '-extfile', `${name}.ext`);
  };
  selfSigned('ca', 'Argonaut Test CA');
  selfSigned('other-ca', 'Other Test CA');
  signed('leaf', 'leaf.example', 'ca', '30', 'subjectAltName=DNS:leaf.example,DNS:www.leaf.example\n');
  signed('sni', 'sni.example', 'ca', '30', 'subjectAltName=DNS:sni.example\n');
  signed('expired', 'expired.example', 'ca', '-1', 'subjectAltName=DNS:expired.example\n');
  signed('intermediate', 'Argonaut Test Intermediate', 'ca', '30', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
  signed('chain-leaf', 'chain.example', 'intermediate', '30', 'subjectAltName=DNS:chain.example\n');
  const passphrase = 'correct horse battery staple';
  writeFileSync(f('pass.txt'), `${passphrase}\n`);
  ossl('pkey', '-in', 'leaf.key', '-aes256', '-passout', `pass:${passphrase}`, '-out', 'leaf-encrypted.key');

  const crl = (ca: string) => {
    writeFileSync(f(`${ca}-index.txt`), '');
    writeFileSync(f(`${ca}-crlnumber`), '01\n');
    writeFileSync(f(`${ca}-crl.cnf`), `[ca]\ndefault_ca=d\n[d]\ndatabase=${ca}-index.txt\ncrlnumber=${ca}-crlnumber\ndefault_md=sha256\ndefault_crl_days=30\n`);
    ossl('ca', '-config', `${ca}-crl.cnf`, '-gencrl', '-keyfile', `${ca}.key`, '-cert', `${ca}.pem`, '-out', `${ca}-crl.pem`);
    return read(`${ca}-crl.pem`);
  };

  const p12 = (out: string, ...extra: string[]) => {
    ossl('pkcs12', '-export', '-inkey', 'chain-leaf.key', '-in', 'chain-leaf.pem', '-certfile', 'intermediate.pem', ...extra, '-out', out);
    return readFileSync(f(out));
  };

  const pair = (name: string): Pair => ({ cert: read(`${name}.pem`), key: read(`${name}.key`) });
  return {
    dir,
    ca: pair('ca'),
    otherCa: pair('other-ca'),
    leaf: pair('leaf'),
    sni: pair('sni'),
    expired: pair('expired'),
    encryptedKey: read('leaf-encrypted.key'),
    passphrase,
    intermediate: pair('intermediate'),
    chainLeaf: pair('chain-leaf'),
    crl: crl('ca'),
    otherCrl: crl('other-ca'),
    p12: {
      openssl3: p12('openssl3.p12', '-passout', 'pass:'),
      legacy: p12('legacy.p12', '-legacy', '-passout', 'pass:'),
      plain: p12('plain.p12', '-keypbe', 'NONE', '-certpbe', 'NONE', '-nomac', '-passout', 'pass:'),
      withPassword: p12('password.p12', '-passout', 'pass:secret'),
    },
    file: f,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The base64 body lines of a PEM text (what must never appear in a sealed record or a response). */
export function pemBody(pem: string): string[] {
  return pem.split('\n').filter((l) => l && !l.startsWith('-----') && l.length >= 40);
}
