// Encryption at rest for the local certificate store: AES-256-GCM with a key derived (HKDF-SHA256)
// from certificates.localKey, a fresh 96-bit nonce per record, and the record's identity (id,
// project, kind) as additional data, so a sealed blob cannot be moved to another row. A short key
// id (an HMAC of the derived key, not the key) is kept beside each record so that a wrong key is
// reported as such. Neither the key nor plaintext is ever logged or put in an error.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';

const VERSION = 'v1';

export class SealingError extends Error {
  override name = 'SealingError';
}

export class Sealer {
  private readonly key: Buffer;
  /** 16 hex characters identifying the key (safe to store and show). */
  readonly keyId: string;

  /** `purpose` separates the keys derived from one secret for different stores. */
  constructor(secret: string | Buffer, purpose = 'local certificate store v1') {
    if (typeof secret === 'string' ? secret.length < 32 : !Buffer.isBuffer(secret) || secret.length < 32) {
      throw new SealingError('the sealing secret must be at least 32 characters (certificates.localKey) or bytes');
    }
    const ikm = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
    this.key = Buffer.from(hkdfSync('sha256', ikm, 'argonaut/certificates', purpose, 32));
    this.keyId = createHmac('sha256', this.key).update('key id').digest('hex').slice(0, 16);
  }

  seal(plaintext: string, aad: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${VERSION}.${iv.toString('base64url')}.${body.toString('base64url')}`;
  }

  open(sealed: string, aad: string): string {
    const [version, ivText, bodyText] = sealed.split('.');
    if (version !== VERSION || !ivText || !bodyText) throw new SealingError('unknown sealed record format');
    const body = Buffer.from(bodyText, 'base64url');
    if (body.length < 16) throw new SealingError('sealed record too short');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(ivText, 'base64url'));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(body.subarray(body.length - 16));
    try {
      return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString('utf8');
    } catch {
      throw new SealingError('the record does not decrypt with this key (wrong certificates.localKey or altered data)');
    }
  }
}
