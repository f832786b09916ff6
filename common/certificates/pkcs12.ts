// Reading a PKCS#12 bundle without a password, as Octavia's barbican cert manager does
// (cryptography's load_pkcs12(data, None)): the MAC is checked with the absent and with the empty
// password, like OpenSSL's PKCS12_parse; bags are plain or encrypted with PBES2 (PBKDF2 + AES or
// 3DES: OpenSSL 3's default) or the PKCS#12 PBEs (SHA-1 with 3DES or RC2: OpenSSL 1.x's default,
// `openssl pkcs12 -legacy`). The key is matched to its certificate by localKeyId, else by key.
import { createDecipheriv, createHash, createHmac, createPrivateKey, pbkdf2Sync, timingSafeEqual, X509Certificate, type KeyObject } from 'node:crypto';
import * as der from './der.ts';

/** A PKCS#12 bundle that cannot be read; the message is cryptography-like, for Octavia's UnreadablePKCS12 text. */
export class Pkcs12Error extends Error {
  override name = 'Pkcs12Error';
}

export interface Pkcs12Contents {
  /** The certificate the key belongs to (DER). */
  certificate: Buffer;
  key: KeyObject;
  /** The other certificates, in bundle order (DER). */
  additional: Buffer[];
}

const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  safeContentsBag: '1.2.840.113549.1.12.10.1.6',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  localKeyId: '1.2.840.113549.1.9.21',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
};

const DIGESTS: Record<string, { name: string; block: number }> = {
  '1.3.14.3.2.26': { name: 'sha1', block: 64 },
  '2.16.840.1.101.3.4.2.4': { name: 'sha224', block: 64 },
  '2.16.840.1.101.3.4.2.1': { name: 'sha256', block: 64 },
  '2.16.840.1.101.3.4.2.2': { name: 'sha384', block: 128 },
  '2.16.840.1.101.3.4.2.3': { name: 'sha512', block: 128 },
};
const HMAC_PRFS: Record<string, string> = {
  '1.2.840.113549.2.7': 'sha1', '1.2.840.113549.2.8': 'sha224', '1.2.840.113549.2.9': 'sha256',
  '1.2.840.113549.2.10': 'sha384', '1.2.840.113549.2.11': 'sha512',
};
const PBES2_CIPHERS: Record<string, { name: string; keyLength: number }> = {
  '2.16.840.1.101.3.4.1.2': { name: 'aes-128-cbc', keyLength: 16 },
  '2.16.840.1.101.3.4.1.22': { name: 'aes-192-cbc', keyLength: 24 },
  '2.16.840.1.101.3.4.1.42': { name: 'aes-256-cbc', keyLength: 32 },
  '1.2.840.113549.3.7': { name: 'des-ede3-cbc', keyLength: 24 },
};
/** The PKCS#12 PBEs (RFC 7292 appendix C), SHA-1 based. */
const PKCS12_PBES: Record<string, { cipher: 'des-ede3-cbc' | 'rc2'; keyLength: number; ivLength: number }> = {
  '1.2.840.113549.1.12.1.3': { cipher: 'des-ede3-cbc', keyLength: 24, ivLength: 8 },
  '1.2.840.113549.1.12.1.4': { cipher: 'des-ede3-cbc', keyLength: 16, ivLength: 8 },
  '1.2.840.113549.1.12.1.5': { cipher: 'rc2', keyLength: 16, ivLength: 8 },
  '1.2.840.113549.1.12.1.6': { cipher: 'rc2', keyLength: 5, ivLength: 8 },
};

/** The two password encodings PKCS12_parse tries for "no password": absent, then empty (BMP "\0\0"). */
const NO_PASSWORD = { bmp: Buffer.alloc(0), utf8: Buffer.alloc(0) };
const EMPTY_PASSWORD = { bmp: Buffer.alloc(2), utf8: Buffer.alloc(0) };
type Password = typeof NO_PASSWORD;

export function readPkcs12(data: Buffer): Pkcs12Contents {
  let pfx: der.Node[];
  try {
    pfx = der.sequence(der.parse(data));
    if (der.integer(pfx[0]) !== 3) throw new Pkcs12Error('unsupported PKCS12 version');
  } catch (err) {
    if (err instanceof Pkcs12Error) throw err;
    throw new Pkcs12Error('Could not deserialize PKCS12 data');
  }
  try {
    const [authType, authContent] = der.sequence(pfx[1]);
    if (der.oid(authType) !== OID.data) throw new Pkcs12Error('public-key integrity mode is not supported');
    const authSafe = der.octets(der.explicit(authContent, 0));
    const password = pfx[2] ? macPassword(pfx[2], authSafe) : null;
    const bags: Bag[] = [];
    for (const info of der.sequence(der.parse(authSafe))) {
      const [type, content] = der.sequence(info);
      const contentType = der.oid(type);
      if (contentType === OID.data) collectBags(der.octets(der.explicit(content, 0)), bags, password);
      else if (contentType === OID.encryptedData) {
        const [, encryptedContentInfo] = der.sequence(der.explicit(content, 0));
        const [, algorithm, encrypted] = der.sequence(encryptedContentInfo);
        if (!encrypted || encrypted.cls !== 2 || encrypted.tag !== 0) throw new Pkcs12Error('encrypted content missing');
        collectBags(decryptWith(der.algorithm(algorithm), der.implicitOctets(encrypted), password), bags, password);
      } else throw new Pkcs12Error(`unsupported PKCS12 content type ${contentType}`);
    }
    return pickContents(bags);
  } catch (err) {
    if (err instanceof Pkcs12Error) throw err;
    throw new Pkcs12Error(`Could not deserialize PKCS12 data: ${(err as Error).message}`);
  }
}

interface Bag {
  kind: 'key' | 'cert';
  value: Buffer | KeyObject;
  localKeyId: string | null;
}

/** Which "no password" the MAC was computed with; a MAC that neither verifies is a refusal. */
function macPassword(macData: der.Node, authSafe: Buffer): Password {
  const [mac, salt, iterations] = der.sequence(macData);
  const [digestAlg, digest] = der.sequence(mac);
  const alg = DIGESTS[der.algorithm(digestAlg).oid];
  if (!alg) throw new Pkcs12Error('unsupported PKCS12 MAC algorithm');
  const expected = der.octets(digest);
  const saltBytes = der.octets(salt);
  const iter = iterations ? der.integer(iterations) : 1;
  const outLen = createHash(alg.name).digest().length;
  for (const password of [NO_PASSWORD, EMPTY_PASSWORD]) {
    const key = pkcs12Kdf(alg.name, alg.block, password.bmp, saltBytes, 3, iter, outLen);
    const actual = createHmac(alg.name, key).update(authSafe).digest();
    if (actual.length === expected.length && timingSafeEqual(actual, expected)) return password;
  }
  throw new Pkcs12Error('Invalid password or PKCS12 data (mac verify failure)');
}

function collectBags(safeContents: Buffer, out: Bag[], password: Password | null): void {
  for (const bag of der.sequence(der.parse(safeContents))) {
    const [id, value, attributes] = der.sequence(bag);
    const bagId = der.oid(id);
    const inner = der.explicit(value, 0);
    const localKeyId = attributes ? findLocalKeyId(attributes) : null;
    if (bagId === OID.keyBag) out.push({ kind: 'key', value: pkcs8Key(Buffer.from(inner.raw)), localKeyId });
    else if (bagId === OID.shroudedKeyBag) {
      const [algorithm, encrypted] = der.sequence(inner);
      out.push({ kind: 'key', value: pkcs8Key(decryptWith(der.algorithm(algorithm), der.octets(encrypted), password)), localKeyId });
    } else if (bagId === OID.certBag) {
      const [certType, certValue] = der.sequence(inner);
      if (der.oid(certType) === OID.x509Certificate) out.push({ kind: 'cert', value: Buffer.from(der.octets(der.explicit(certValue, 0))), localKeyId });
    } else if (bagId === OID.safeContentsBag) collectBags(Buffer.from(inner.raw), out, password);
    // CRL and secret bags are ignored, as OpenSSL's PKCS12_parse ignores them.
  }
}

function findLocalKeyId(attributes: der.Node): string | null {
  for (const attr of der.children(attributes)) {
    const [type, values] = der.sequence(attr);
    if (der.oid(type) === OID.localKeyId) {
      const [first] = der.children(values!);
      return first ? der.octets(first).toString('hex') : null;
    }
  }
  return null;
}

function pkcs8Key(pkcs8: Buffer): KeyObject {
  try {
    return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  } catch {
    throw new Pkcs12Error('the PKCS12 private key is unreadable');
  }
}

function pickContents(bags: Bag[]): Pkcs12Contents {
  const keyBag = bags.find((b) => b.kind === 'key');
  const certs = bags.filter((b) => b.kind === 'cert');
  if (!keyBag) throw new Pkcs12Error('the PKCS12 bundle holds no private key');
  if (certs.length === 0) throw new Pkcs12Error('the PKCS12 bundle holds no certificate');
  const key = keyBag.value as KeyObject;
  let leaf = keyBag.localKeyId ? certs.find((c) => c.localKeyId === keyBag.localKeyId) : undefined;
  leaf ??= certs.find((c) => {
    try {
      return new X509Certificate(c.value as Buffer).checkPrivateKey(key);
    } catch {
      return false;
    }
  });
  leaf ??= certs[0]!;
  return { certificate: leaf.value as Buffer, key, additional: certs.filter((c) => c !== leaf).map((c) => c.value as Buffer) };
}

function decryptWith(alg: { oid: string; params: der.Node | undefined }, data: Buffer, password: Password | null): Buffer {
  // Without a MAC either "no password" may have been used: try both, the padding tells.
  const candidates = password ? [password] : [NO_PASSWORD, EMPTY_PASSWORD];
  let lastError: unknown;
  for (const p of candidates) {
    try {
      return decryptOnce(alg, data, p);
    } catch (err) {
      lastError = err;
    }
  }
  if (lastError instanceof Pkcs12Error) throw lastError;
  throw new Pkcs12Error('the PKCS12 bundle is encrypted with a password');
}

function decryptOnce(alg: { oid: string; params: der.Node | undefined }, data: Buffer, password: Password): Buffer {
  if (alg.oid === OID.pbes2) {
    const [kdf, scheme] = der.sequence(alg.params);
    const kdfAlg = der.algorithm(kdf);
    if (kdfAlg.oid !== OID.pbkdf2) throw new Pkcs12Error(`unsupported key derivation ${kdfAlg.oid}`);
    const fields = der.sequence(kdfAlg.params);
    const salt = der.octets(fields[0]);
    const iterations = der.integer(fields[1]);
    let prf = 'sha1';
    for (const f of fields.slice(2)) if (f.tag === der.TAG.SEQUENCE) prf = HMAC_PRFS[der.algorithm(f).oid] ?? '';
    if (!prf) throw new Pkcs12Error('unsupported PBKDF2 pseudo-random function');
    const schemeAlg = der.algorithm(scheme);
    const cipher = PBES2_CIPHERS[schemeAlg.oid];
    if (!cipher) throw new Pkcs12Error(`unsupported encryption ${schemeAlg.oid}`);
    const key = pbkdf2Sync(password.utf8, salt, iterations, cipher.keyLength, prf);
    const decipher = createDecipheriv(cipher.name, key, der.octets(schemeAlg.params));
    return Buffer.concat([decipher.update(data), decipher.final()]);
  }
  const pbe = PKCS12_PBES[alg.oid];
  if (!pbe) throw new Pkcs12Error(`unsupported PKCS12 encryption ${alg.oid}`);
  const [salt, iterations] = der.sequence(alg.params);
  const saltBytes = der.octets(salt);
  const iter = der.integer(iterations);
  const key = pkcs12Kdf('sha1', 64, password.bmp, saltBytes, 1, iter, pbe.keyLength);
  const iv = pkcs12Kdf('sha1', 64, password.bmp, saltBytes, 2, iter, pbe.ivLength);
  if (pbe.cipher === 'rc2') return rc2CbcDecrypt(key, pbe.keyLength * 8, iv, data);
  const fullKey = pbe.keyLength === 16 ? Buffer.concat([key, key.subarray(0, 8)]) : key;
  const decipher = createDecipheriv('des-ede3-cbc', fullKey, iv);
  return Buffer.concat([decipher.update(data), decipher.final()]);
}

/** RFC 7292 appendix B.2: the PKCS#12 key derivation (id 1 key, 2 IV, 3 MAC key). */
export function pkcs12Kdf(hash: string, v: number, password: Buffer, salt: Buffer, id: number, iterations: number, length: number): Buffer {
  const fill = (src: Buffer) => {
    if (src.length === 0) return Buffer.alloc(0);
    const out = Buffer.alloc(v * Math.ceil(src.length / v));
    for (let i = 0; i < out.length; i++) out[i] = src[i % src.length]!;
    return out;
  };
  const D = Buffer.alloc(v, id);
  const I = Buffer.concat([fill(salt), fill(password)]);
  const chunks: Buffer[] = [];
  let produced = 0;
  while (produced < length) {
    let A = createHash(hash).update(D).update(I).digest();
    for (let r = 1; r < iterations; r++) A = createHash(hash).update(A).digest();
    chunks.push(A);
    produced += A.length;
    if (produced >= length) break;
    const B = Buffer.alloc(v);
    for (let i = 0; i < v; i++) B[i] = A[i % A.length]!;
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = I[j + k]! + B[k]! + carry;
        I[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return Buffer.concat(chunks).subarray(0, length);
}

// RC2 (RFC 2268), decryption only: OpenSSL 3 keeps it in its legacy provider, which node does not load.
const PITABLE = Buffer.from(
  [
    'd978f9c419ddb5ed28e9fd794aa0d89d',
    'c67e37832b76538e624c6488448bfba2',
    '179a59f587b34f1361456d8d09817d32',
    'bd8f40eb86b77b0bf09521225c6b4e82',
    '54d66593ce60b21c7356c014a78cf1dc',
    '1275ca1f3bbee4d1423dd430a33cb626',
    '6fbf0eda4669075727f21d9bbc944303',
    'f811c7f690ef3ee706c3d52fc8661ed7',
    '08e8eade8052eef784aa72ac354d6a2a',
    '961ad2715a1549744b9fd05e0418a4ec',
    'c2e0416e0f51cbcc2491af50a1f47039',
    '997c3a8523b8b47afc02365b25559731',
    '2d5dfa98e38a92ae05df2910676cbac9',
    'd300e6cfe19ea82c6316013f58e289a9',
    '0d38341bab33ffb0bb480c5fb9b1cd2e',
    'c5f3db47e5a59c770aa62068fe7fc1ad',
  ].join(''),
  'hex',
);

function rc2Expand(key: Buffer, effectiveBits: number): Uint16Array {
  const L = Buffer.alloc(128);
  key.copy(L);
  const T = key.length;
  for (let i = T; i < 128; i++) L[i] = PITABLE[(L[i - 1]! + L[i - T]!) & 0xff]!;
  const T8 = Math.ceil(effectiveBits / 8);
  const TM = 0xff >> (8 * T8 - effectiveBits);
  L[128 - T8] = PITABLE[L[128 - T8]! & TM]!;
  for (let i = 127 - T8; i >= 0; i--) L[i] = PITABLE[L[i + 1]! ^ L[i + T8]!]!;
  const K = new Uint16Array(64);
  for (let i = 0; i < 64; i++) K[i] = L[2 * i]! | (L[2 * i + 1]! << 8);
  return K;
}

function rc2DecryptBlock(K: Uint16Array, block: Buffer): Buffer {
  const R = [block.readUInt16LE(0), block.readUInt16LE(2), block.readUInt16LE(4), block.readUInt16LE(6)];
  const S = [1, 2, 3, 5];
  let j = 63;
  const rmix = () => {
    for (let i = 3; i >= 0; i--) {
      const s = S[i]!;
      R[i] = ((R[i]! >>> s) | (R[i]! << (16 - s))) & 0xffff;
      const a = R[(i + 3) % 4]!;
      const b = R[(i + 2) % 4]!;
      const c = R[(i + 1) % 4]!;
      R[i] = (R[i]! - K[j]! - (a & b) - (~a & c)) & 0xffff;
      j--;
    }
  };
  const rmash = () => {
    for (let i = 3; i >= 0; i--) R[i] = (R[i]! - K[R[(i + 3) % 4]! & 63]!) & 0xffff;
  };
  for (let n = 0; n < 5; n++) rmix();
  rmash();
  for (let n = 0; n < 6; n++) rmix();
  rmash();
  for (let n = 0; n < 5; n++) rmix();
  const out = Buffer.alloc(8);
  R.forEach((w, i) => out.writeUInt16LE(w, i * 2));
  return out;
}

export function rc2CbcDecrypt(key: Buffer, effectiveBits: number, iv: Buffer, data: Buffer): Buffer {
  if (data.length === 0 || data.length % 8 !== 0) throw new Pkcs12Error('bad RC2 ciphertext length');
  const K = rc2Expand(key, effectiveBits);
  const out = Buffer.alloc(data.length);
  let prev = iv;
  for (let off = 0; off < data.length; off += 8) {
    const block = data.subarray(off, off + 8);
    const plain = rc2DecryptBlock(K, block);
    for (let i = 0; i < 8; i++) out[off + i] = plain[i]! ^ prev[i]!;
    prev = block;
  }
  const pad = out[out.length - 1]!;
  if (pad < 1 || pad > 8 || !out.subarray(out.length - pad).every((b) => b === pad)) throw new Pkcs12Error('bad decrypt');
  return out.subarray(0, out.length - pad);
}
