// PKCS#12 bundles as Barbican holds them for Octavia, and the X509 helpers the API judges CA and
// CRL references with. Bundles and CRLs are made by the openssl binary (test/helpers/certs.ts).
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pkcs12Error, pkcs12Kdf, readPkcs12 } from '../../../common/certificates/pkcs12.ts';
import { buildTlsCertificate, crlSignedBy, readCaCertificate, readCrl, readIntermediates } from '../../../common/certificates/x509.ts';
import { makePki, type TestPki } from '../../helpers/certs.ts';

describe('readPkcs12', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makePki();
  });
  afterAll(() => pki?.cleanup());

  it.each(['openssl3', 'legacy', 'plain'] as const)('reads a %s bundle without a password: the key, its certificate and the chain', (kind) => {
    const p12 = readPkcs12(pki.p12[kind]);
    const leaf = new X509Certificate(p12.certificate);
    expect(leaf.subject).toBe('CN=chain.example');
    expect(leaf.checkPrivateKey(p12.key)).toBe(true);
    expect(p12.additional.map((d) => new X509Certificate(d).subject)).toEqual(['CN=Argonaut Test Intermediate']);
    const cert = buildTlsCertificate('ref', {
      certificate: leaf.toString(),
      privateKey: p12.key,
      intermediates: p12.additional.map((d) => new X509Certificate(d).toString()),
    });
    expect(cert.primaryCn).toBe('chain.example');
  });

  it('refuses a bundle that needs a password, and data that is no bundle', () => {
    expect(() => readPkcs12(pki.p12.withPassword)).toThrow(new Pkcs12Error('Invalid password or PKCS12 data (mac verify failure)'));
    expect(() => readPkcs12(Buffer.from(pki.leaf.cert))).toThrow(Pkcs12Error);
    expect(() => readPkcs12(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x03]))).toThrow(Pkcs12Error);
  });

  it('derives keys as RFC 7292 appendix B.2 (a vector checked against OpenSSL)', () => {
    // PKCS12_key_gen_uni, password "smeg" (BMP), salt 0a58cf64530d823f, id 1, 1 iteration, 24 bytes.
    const password = Buffer.from('0073006d00650067' + '0000', 'hex');
    const key = pkcs12Kdf('sha1', 64, password, Buffer.from('0a58cf64530d823f', 'hex'), 1, 1, 24);
    expect(key.toString('hex')).toBe('8aaae6297b6cb04642ab5b077851284eb7128f1a2a7fbca3');
  });
});

describe('X509 helpers', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makePki();
  });
  afterAll(() => pki?.cleanup());

  it('checks a CRL signature against its CA and not another', () => {
    const crl = readCrl(pki.crl);
    expect(crlSignedBy(crl, readCaCertificate(pki.ca.cert))).toBe(true);
    expect(crlSignedBy(crl, readCaCertificate(pki.otherCa.cert))).toBe(false);
    expect(crlSignedBy(crl, createPublicKey(createPrivateKey(pki.ca.key)))).toBe(true);
    expect(crlSignedBy(readCrl(pki.otherCrl), readCaCertificate(pki.otherCa.cert))).toBe(true);
  });

  it('says why a CA or a CRL is unreadable, without quoting it', () => {
    expect(() => readCaCertificate('bad cert')).toThrow('Unable to load PEM file. MalformedFraming');
    expect(() => readCaCertificate('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')).toThrow('error parsing asn1 value');
    expect(() => readCrl(pki.ca.cert)).toThrow('Unable to load PEM file. MalformedFraming');
  });

  it('reads intermediates from PEM; refuses garbage', () => {
    expect(readIntermediates(`${pki.intermediate.cert}\n${pki.ca.cert}`, 'r')).toHaveLength(2);
    expect(() => readIntermediates('garbage', 'r')).toThrow(/neither PEM certificates nor a PKCS7 bundle/);
  });

  it('a certificate without a matching key, or with an unreadable one, is refused with the reason', () => {
    expect(() => buildTlsCertificate('r', { certificate: pki.leaf.cert, privateKey: pki.sni.key })).toThrow(expect.objectContaining({ reason: 'key_mismatch' }));
    expect(() => buildTlsCertificate('r', { certificate: pki.leaf.cert, privateKey: 'junk' })).toThrow(expect.objectContaining({ reason: 'unreadable' }));
    expect(() => buildTlsCertificate('r', { certificate: pki.leaf.cert, privateKey: pki.encryptedKey })).toThrow(expect.objectContaining({ reason: 'needs_passphrase' }));
  });
});
