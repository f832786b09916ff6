import { constants as cryptoConstants, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import tls from 'node:tls';
import type { ListenerTls, PoolTls, TlsCertificate, TlsVersionName } from './types.ts';

/**
 * TLS helpers shared by validation and the data plane: PEM handling, the mapping of Octavia's version
 * names and cipher strings to Node's options, and material checks. Nothing here ever puts PEM text (or
 * anything derived from a key) in a message.
 */

/** The TLS versions Node (OpenSSL 3) can speak, oldest first. SSLv3 is not among them. */
const SPEAKABLE: readonly TlsVersionName[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];
const NO_VERSION_FLAG: Record<string, number> = {
  TLSv1: cryptoConstants.SSL_OP_NO_TLSv1,
  'TLSv1.1': cryptoConstants.SSL_OP_NO_TLSv1_1,
  'TLSv1.2': cryptoConstants.SSL_OP_NO_TLSv1_2,
  'TLSv1.3': cryptoConstants.SSL_OP_NO_TLSv1_3,
};
/** OpenSSL's default TLS 1.3 suites: what HAProxy keeps when `ciphers` names none (it only sets the <= 1.2 list). */
const DEFAULT_TLS13_SUITES = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256';

/** The protocol part of a secure context: versions and ciphers as Node takes them. */
export interface TlsProtocolOptions {
  minVersion: tls.SecureVersion;
  maxVersion: tls.SecureVersion;
  /** SSL_OP_NO_* for versions inside [min, max] that are not allowed (Octavia's list may have gaps). */
  secureOptions: number;
  ciphers: string | undefined;
}

/**
 * Octavia `tls_versions` + `tls_ciphers` → Node options, as HAProxy's `no-tlsvXX` + `ciphers` behave:
 * min/max span the allowed versions and the gaps are switched off; the cipher string restricts TLS <= 1.2
 * and, when it names TLS 1.3 suites (`TLS_...`), TLS 1.3 as well (otherwise TLS 1.3 keeps its default
 * suites). Versions below TLS 1.2 need OpenSSL security level 0, which is then set. Null when no listed
 * version can be spoken (only SSLv3).
 */
export function tlsProtocolOptions(versions: readonly TlsVersionName[], ciphers: string | null): TlsProtocolOptions | null {
  const allowed = SPEAKABLE.filter((v) => versions.includes(v));
  if (allowed.length === 0) return null;
  const min = allowed[0];
  const max = allowed[allowed.length - 1];
  let secureOptions = 0;
  for (let i = SPEAKABLE.indexOf(min); i <= SPEAKABLE.indexOf(max); i++) {
    if (!allowed.includes(SPEAKABLE[i])) secureOptions |= NO_VERSION_FLAG[SPEAKABLE[i]];
  }
  let cipherText: string | undefined;
  if (ciphers !== null) {
    const names = ciphers.split(':');
    cipherText = names.some((n) => n.startsWith('TLS_')) ? ciphers : `${DEFAULT_TLS13_SUITES}:${ciphers}`;
  }
  if (SPEAKABLE.indexOf(min) < SPEAKABLE.indexOf('TLSv1.2')) {
    cipherText = `${cipherText ?? tls.DEFAULT_CIPHERS}:@SECLEVEL=0`;
  }
  return { minVersion: min as tls.SecureVersion, maxVersion: max as tls.SecureVersion, secureOptions, ciphers: cipherText };
}

/** The PEM blocks of a text, each with its label ("CERTIFICATE", "X509 CRL", ...). */
export function pemBlocks(text: string): { label: string; pem: string }[] {
  const blocks: { label: string; pem: string }[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) blocks.push({ label: m[1], pem: `${m[0]}\n` });
  return blocks;
}

/** The CERTIFICATE blocks of a PEM text. */
export function pemCertificates(text: string): string[] {
  return pemBlocks(text)
    .filter((b) => b.label === 'CERTIFICATE' || b.label === 'TRUSTED CERTIFICATE')
    .map((b) => b.pem);
}

/** Leaf first, then the chain (what follows the leaf in `certificate`, then `intermediates`), as one PEM text. */
export function certificateChainPem(cert: TlsCertificate): string {
  return [...pemCertificates(cert.certificate), ...cert.intermediates.flatMap(pemCertificates)].join('');
}

/** A problem found in TLS material: a path relative to the object checked, and a message without material. */
export interface TlsIssue {
  path: (string | number)[];
  message: string;
}

function parseCertificates(text: string, path: (string | number)[], what: string, issues: TlsIssue[]): X509Certificate[] {
  const blocks = pemCertificates(text);
  if (blocks.length === 0) {
    issues.push({ path, message: `must hold at least one PEM ${what}` });
    return [];
  }
  const parsed: X509Certificate[] = [];
  for (const block of blocks) {
    try {
      parsed.push(new X509Certificate(block));
    } catch {
      issues.push({ path, message: `holds a ${what} that cannot be parsed` });
    }
  }
  return parsed;
}

/** A certificate with its key: parsable, unencrypted key, key matching the certificate, parsable chain. */
export function checkCertificate(cert: TlsCertificate): TlsIssue[] {
  const issues: TlsIssue[] = [];
  const [leaf] = parseCertificates(cert.certificate, ['certificate'], 'certificate', issues);
  let key: KeyObject | null = null;
  try {
    key = createPrivateKey({ key: cert.privateKey, format: 'pem' });
  } catch {
    issues.push({ path: ['privateKey'], message: 'must be an unencrypted PEM private key' });
  }
  if (leaf !== undefined && key !== null && !leaf.checkPrivateKey(key)) {
    issues.push({ path: ['privateKey'], message: 'does not match the certificate' });
  }
  cert.intermediates.forEach((text, i) => parseCertificates(text, ['intermediates', i], 'certificate', issues));
  return issues;
}

/** A CA bundle, and its CRL when given (checked by loading both as OpenSSL would). */
export function checkCaAndCrl(ca: string | null, crl: string | null, caPath: string, crlPath: string): TlsIssue[] {
  const issues: TlsIssue[] = [];
  if (ca !== null) parseCertificates(ca, [caPath], 'CA certificate', issues);
  if (crl !== null) {
    if (!pemBlocks(crl).some((b) => b.label === 'X509 CRL')) {
      issues.push({ path: [crlPath], message: 'must hold at least one PEM X509 CRL' });
    } else if (issues.length === 0) {
      try {
        tls.createSecureContext({ ca: ca ?? undefined, crl });
      } catch {
        issues.push({ path: [crlPath], message: 'holds a CRL that cannot be loaded' });
      }
    }
  }
  return issues;
}

/** Versions and ciphers: at least one speakable version, and a cipher string OpenSSL accepts. */
export function checkProtocols(versions: readonly TlsVersionName[], ciphers: string | null): TlsIssue[] {
  const options = tlsProtocolOptions(versions, ciphers);
  if (options === null) return [{ path: ['versions'], message: 'must name a TLS version (SSLv3 cannot be served)' }];
  try {
    tls.createSecureContext({ minVersion: options.minVersion, maxVersion: options.maxVersion, ciphers: options.ciphers });
  } catch {
    return [{ path: ['ciphers'], message: 'OpenSSL accepts none of these ciphers for the allowed versions' }];
  }
  return [];
}

/**
 * Loads each certificate with the block's other settings as the data plane will (one secure context per
 * certificate), so that nothing the checks above let through can fail when a config is committed.
 */
function checkLoads(base: tls.SecureContextOptions, certs: { cert: TlsCertificate; path: (string | number)[] }[]): TlsIssue[] {
  const issues: TlsIssue[] = [];
  const targets = certs.length > 0 ? certs : [null];
  for (const target of targets) {
    try {
      tls.createSecureContext({
        ...base,
        ...(target === null ? {} : { cert: certificateChainPem(target.cert), key: target.cert.privateKey }),
      });
    } catch {
      issues.push({ path: target?.path ?? [], message: 'cannot be loaded together with the other TLS settings' });
    }
  }
  return issues;
}

/** Every check of a listener's TLS block (paths relative to it). */
export function checkListenerTls(t: ListenerTls): TlsIssue[] {
  const issues: TlsIssue[] = [];
  if (t.defaultCertificate === null && t.sniCertificates.length === 0) {
    issues.push({ path: ['defaultCertificate'], message: 'a default certificate or SNI certificates are required' });
  }
  if (t.defaultCertificate !== null) {
    for (const i of checkCertificate(t.defaultCertificate)) issues.push({ path: ['defaultCertificate', ...i.path], message: i.message });
  }
  t.sniCertificates.forEach((cert, n) => {
    for (const i of checkCertificate(cert)) issues.push({ path: ['sniCertificates', n, ...i.path], message: i.message });
  });
  if (t.clientAuthentication !== 'NONE' && t.clientCa === null) {
    issues.push({ path: ['clientCa'], message: `required by clientAuthentication ${t.clientAuthentication}` });
  }
  if (t.clientCrl !== null && t.clientCa === null) issues.push({ path: ['clientCrl'], message: 'needs clientCa' });
  issues.push(...checkCaAndCrl(t.clientCa, t.clientCrl, 'clientCa', 'clientCrl'));
  issues.push(...checkProtocols(t.versions, t.ciphers));
  const protocol = tlsProtocolOptions(t.versions, t.ciphers);
  if (issues.length === 0 && protocol !== null) {
    const certs = [
      ...(t.defaultCertificate === null ? [] : [{ cert: t.defaultCertificate, path: ['defaultCertificate'] }]),
      ...t.sniCertificates.map((cert, n) => ({ cert, path: ['sniCertificates', n] })),
    ];
    issues.push(...checkLoads({ ...protocol, ca: t.clientCa ?? undefined, crl: t.clientCrl ?? undefined }, certs));
  }
  return issues;
}

/** Every check of a pool's TLS block (paths relative to it). */
export function checkPoolTls(t: PoolTls): TlsIssue[] {
  const issues: TlsIssue[] = [];
  if (t.clientCertificate !== null) {
    for (const i of checkCertificate(t.clientCertificate)) issues.push({ path: ['clientCertificate', ...i.path], message: i.message });
  }
  if (t.crl !== null && t.ca === null) issues.push({ path: ['crl'], message: 'needs ca' });
  issues.push(...checkCaAndCrl(t.ca, t.crl, 'ca', 'crl'));
  issues.push(...checkProtocols(t.versions, t.ciphers));
  const protocol = tlsProtocolOptions(t.versions, t.ciphers);
  if (issues.length === 0 && protocol !== null) {
    const certs = t.clientCertificate === null ? [] : [{ cert: t.clientCertificate, path: ['clientCertificate'] }];
    issues.push(...checkLoads({ ...protocol, ca: t.ca ?? undefined, crl: t.crl ?? undefined }, certs));
  }
  return issues;
}
