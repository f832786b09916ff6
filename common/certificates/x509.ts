// Certificates, keys, bundles and CRLs: reading and checking them with node:crypto (and der.ts
// where node:crypto has nothing: validity dates, CRL signatures, PKCS#7 bundles). Error details
// name what is wrong, never the material itself.
import { createHash, createPrivateKey, createPublicKey, verify, X509Certificate, constants, type KeyObject } from 'node:crypto';
import * as der from './der.ts';
import { CertificateError, type TlsCertificate } from './types.ts';

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/** The PEM blocks of a text, each as its label and DER bytes. */
export function pemBlocks(text: string): Array<{ label: string; der: Buffer }> {
  const out: Array<{ label: string; der: Buffer }> = [];
  for (const m of text.matchAll(BLOCK)) {
    const body = m[2]!.split(/\r?\n/).filter((l) => l && !l.includes(':')).join('');
    out.push({ label: m[1]!, der: Buffer.from(body, 'base64') });
  }
  return out;
}

export function toPem(derBytes: Buffer, label: string): string {
  const b64 = derBytes.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** Every certificate of a PEM text, one normalised PEM block each. */
export function pemCertificates(text: string): string[] {
  return pemBlocks(text)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => toPem(b.der, 'CERTIFICATE'));
}

function x509(pem: string | Buffer, ref: string, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new CertificateError('unreadable', ref, `${what} is not a readable X509 certificate`, { cause: err });
  }
}

/**
 * Intermediates as Octavia reads them (get_intermediates_pems): PEM certificates, or a PKCS#7
 * bundle in PEM or DER. Each certificate must be readable.
 */
export function readIntermediates(data: string | Buffer, ref: string): string[] {
  const text = Buffer.isBuffer(data) ? data.toString('latin1') : data;
  if (text.includes('-----BEGIN CERTIFICATE-----')) {
    return pemCertificates(text).map((pem) => {
      x509(pem, ref, 'an intermediate');
      return pem;
    });
  }
  let bundles: Buffer[];
  if (text.includes('-----BEGIN PKCS7-----')) bundles = pemBlocks(text).filter((b) => b.label === 'PKCS7').map((b) => b.der);
  else bundles = [Buffer.isBuffer(data) ? data : Buffer.from(data, 'latin1')];
  const out: string[] = [];
  for (const bundle of bundles) {
    for (const certDer of pkcs7Certificates(bundle, ref)) {
      x509(certDer, ref, 'an intermediate');
      out.push(toPem(certDer, 'CERTIFICATE'));
    }
  }
  return out;
}

const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';

/** The certificates of a PKCS#7 SignedData bundle (DER). */
export function pkcs7Certificates(bundle: Buffer, ref: string): Buffer[] {
  try {
    const [type, content] = der.sequence(der.parse(bundle));
    if (der.oid(type) !== OID_SIGNED_DATA) throw new der.DerError('not a PKCS7 SignedData bundle');
    const signed = der.sequence(der.explicit(content, 0));
    const certs = signed.find((n) => n.cls === 2 && n.tag === 0);
    return certs ? der.children(certs).map((c) => Buffer.from(c.raw)) : [];
  } catch (err) {
    throw new CertificateError('unreadable', ref, 'the intermediates are neither PEM certificates nor a PKCS7 bundle', { cause: err });
  }
}

/** notBefore and notAfter of a certificate (DER). */
export function validity(certDer: Buffer): { notBefore: Date; notAfter: Date } {
  const [tbs] = der.sequence(der.parse(certDer));
  const fields = der.sequence(tbs);
  // tbsCertificate: [0] version (optional), serialNumber, signature, issuer, validity, ...
  const offset = fields[0]!.cls === 2 && fields[0]!.tag === 0 ? 1 : 0;
  const [notBefore, notAfter] = der.sequence(fields[offset + 3]);
  return { notBefore: der.time(notBefore), notAfter: der.time(notAfter) };
}

/** Reads a PEM private key, decrypting it with the passphrase when it is encrypted. */
export function readPrivateKey(pem: string, ref: string, passphrase?: string | null): KeyObject {
  const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem);
  if (!/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(pem)) throw new CertificateError('unreadable', ref, 'the private key is not a PEM private key');
  if (encrypted && !passphrase) throw new CertificateError('needs_passphrase', ref);
  try {
    return createPrivateKey(encrypted ? { key: pem, format: 'pem', passphrase: passphrase! } : { key: pem, format: 'pem' });
  } catch (err) {
    if (encrypted) throw new CertificateError('needs_passphrase', ref, 'the passphrase does not decrypt the private key', { cause: err });
    throw new CertificateError('unreadable', ref, 'the private key is not readable', { cause: err });
  }
}

export function exportPrivateKey(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/**
 * A certificate with its key checked: the certificate (the first CERTIFICATE block of `certificate`)
 * must be readable, the key readable (decrypted with the passphrase) and the certificate's own, the
 * intermediates readable, and the certificate must name a host (a CN or a DNS subjectAltName).
 */
export function buildTlsCertificate(
  ref: string,
  input: { certificate: string; privateKey: string | KeyObject; intermediates?: string | Buffer | string[] | null; passphrase?: string | null },
): TlsCertificate {
  const [leaf] = pemCertificates(input.certificate);
  if (!leaf) throw new CertificateError('unreadable', ref, 'no PEM certificate');
  const cert = x509(leaf, ref, 'the certificate');
  const key = typeof input.privateKey === 'string' ? readPrivateKey(input.privateKey, ref, input.passphrase) : input.privateKey;
  if (key.type !== 'private') throw new CertificateError('unreadable', ref, 'the private key is not a private key');
  if (!cert.checkPrivateKey(key)) throw new CertificateError('key_mismatch', ref);
  let intermediates: string[] = [];
  if (Array.isArray(input.intermediates)) intermediates = input.intermediates.flatMap((i) => readIntermediates(i, ref));
  else if (input.intermediates && input.intermediates.length) intermediates = readIntermediates(input.intermediates, ref);
  const names = hostNames(cert);
  if (!names.cn && names.dnsNames.length === 0) {
    throw new CertificateError('unreadable', ref, 'the certificate has neither a subject CN nor a DNS subjectAltName');
  }
  const leafDer = cert.raw;
  let dates: { notBefore: Date; notAfter: Date };
  try {
    dates = validity(leafDer);
  } catch (err) {
    throw new CertificateError('unreadable', ref, 'the certificate validity is unreadable', { cause: err });
  }
  return {
    certificate: toPem(leafDer, 'CERTIFICATE'),
    privateKey: exportPrivateKey(key),
    intermediates,
    id: createHash('sha1').update(leafDer).digest('hex'),
    primaryCn: names.cn,
    dnsNames: names.dnsNames,
    ...dates,
  };
}

/** The subject's first CN (lowercased, as Octavia's get_host_names) and the DNS subjectAltNames. */
export function hostNames(cert: X509Certificate): { cn: string | null; dnsNames: string[] } {
  const cnLine = cert.subject.split('\n').find((l) => l.startsWith('CN='));
  const dnsNames: string[] = [];
  for (const part of (cert.subjectAltName ?? '').split(/,\s*/)) {
    const m = /^DNS:"?(.*?)"?$/.exec(part.trim());
    if (m && m[1]) dnsNames.push(m[1]);
  }
  return { cn: cnLine ? cnLine.slice(3).toLowerCase() : null, dnsNames };
}

/** Refuses a certificate whose notAfter has passed. */
export function checkCertificateDates(cert: TlsCertificate, ref: string, now = new Date()): void {
  if (cert.notAfter.getTime() < now.getTime()) throw new CertificateError('expired', ref, `not valid after ${cert.notAfter.toISOString()}`);
}

/**
 * The first certificate of a CA bundle, as Octavia loads it (load_pem_x509_certificate); the error
 * text follows the cryptography library's, for Octavia's "...CA certificate is invalid" message.
 */
export function readCaCertificate(pem: string): X509Certificate {
  const blocks = pemBlocks(pem).filter((b) => b.label === 'CERTIFICATE');
  if (blocks.length === 0) throw new Error('Unable to load PEM file. MalformedFraming');
  try {
    return new X509Certificate(blocks[0]!.der);
  } catch {
    throw new Error('error parsing asn1 value');
  }
}

const SIGNATURE_HASHES: Record<string, string | null> = {
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.1': 'sha1',
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.3.101.112': null, // Ed25519
  '1.3.101.113': null, // Ed448
};
const RSA_PSS = '1.2.840.113549.1.1.10';
const HASH_OIDS: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1', '2.16.840.1.101.3.4.2.4': 'sha224', '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384', '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** A PEM CRL's parts; throws (with cryptography-like text) when it is not one. */
export function readCrl(pem: string): { tbs: Buffer; algorithm: { oid: string; params: der.Node | undefined }; signature: Buffer } {
  const block = pemBlocks(pem).find((b) => b.label === 'X509 CRL');
  if (!block) throw new Error('Unable to load PEM file. MalformedFraming');
  try {
    const [tbs, alg, sig] = der.sequence(der.parse(block.der));
    der.sequence(tbs);
    return { tbs: Buffer.from(tbs!.raw), algorithm: der.algorithm(alg), signature: der.bitString(sig) };
  } catch {
    throw new Error('error parsing asn1 value');
  }
}

/** Whether the CRL is signed by the key of `ca` (cryptography's CertificateRevocationList.is_signature_valid). */
export function crlSignedBy(crl: ReturnType<typeof readCrl>, ca: X509Certificate | KeyObject): boolean {
  const key = ca instanceof X509Certificate ? ca.publicKey : ca.type === 'private' ? createPublicKey(ca) : ca;
  try {
    if (crl.algorithm.oid === RSA_PSS) {
      let hash = 'sha1';
      let saltLength = 20;
      if (crl.algorithm.params) {
        for (const field of der.sequence(crl.algorithm.params)) {
          if (field.cls === 2 && field.tag === 0) hash = HASH_OIDS[der.algorithm(der.explicit(field, 0)).oid] ?? hash;
          if (field.cls === 2 && field.tag === 2) saltLength = der.integer(der.explicit(field, 2));
        }
      }
      return verify(hash, crl.tbs, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }, crl.signature);
    }
    if (!(crl.algorithm.oid in SIGNATURE_HASHES)) return false;
    return verify(SIGNATURE_HASHES[crl.algorithm.oid] ?? null, crl.tbs, key, crl.signature);
  } catch {
    return false;
  }
}
