// The certificate manager interface: TLS certificate references (listener and pool
// *_container_ref fields) resolved to the PEM material the amphorae need. Two drivers: `local`
// (common/certificates/local.ts: operator-stored, encrypted in the database) and `barbican`
// (common/certificates/barbican.ts: Barbican v1 secrets and containers, as Octavia reads them).
//
// Errors are CertificateError with a reason; their messages name the reference and the reason,
// never key material or the payload of a secret.

/** Who asks: the project the reference must belong to, and the caller's token when there is one. */
export interface CertContext {
  /** The project of the object using the reference (the load balancer's project). */
  projectId: string | null;
  /** The caller's Keystone token (Barbican ACLs are granted with it); absent for service-side reads. */
  authToken?: string | null;
}

/** A certificate with its key, ready for a TLS server or client: everything PEM, the key decrypted. */
export interface TlsCertificate {
  /** The leaf certificate (one PEM block). */
  certificate: string;
  /** The private key, unencrypted PKCS#8 PEM. */
  privateKey: string;
  /** Intermediate certificates in order, one PEM block each. */
  intermediates: string[];
  /** SHA-1 hex of the certificate's DER (Octavia's TLSContainer id: stable file names on the amphora). */
  id: string;
  /** Lowercased CN of the subject (null when the certificate has only subject alternative names). */
  primaryCn: string | null;
  /** DNS names of the subjectAltName extension. */
  dnsNames: string[];
  notBefore: Date;
  notAfter: Date;
}

export type CertificateErrorReason =
  /** No such reference, or not visible to the project. */
  | 'not_found'
  /** The data is not a readable certificate, key, bundle or CRL. */
  | 'unreadable'
  /** A PKCS#12 secret that cannot be read (Octavia answers with its own UnreadablePKCS12 400). */
  | 'unreadable_pkcs12'
  /** The private key is encrypted and the passphrase is missing or wrong. */
  | 'needs_passphrase'
  /** The private key is not the certificate's. */
  | 'key_mismatch'
  /** The certificate's notAfter is in the past. */
  | 'expired'
  /** The key manager could not be reached or answered an error. */
  | 'unavailable';

const REASON_TEXT: Record<CertificateErrorReason, string> = {
  not_found: 'not found',
  unreadable: 'unreadable',
  unreadable_pkcs12: 'unreadable PKCS12 bundle',
  needs_passphrase: 'the private key needs a (correct) passphrase',
  key_mismatch: 'the private key does not match the certificate',
  expired: 'the certificate has expired',
  unavailable: 'the key manager is unavailable',
};

export class CertificateError extends Error {
  override name = 'CertificateError';
  constructor(
    readonly reason: CertificateErrorReason,
    readonly ref: string,
    /** Details safe to log and show (never key material). */
    readonly detail?: string,
    options?: { cause?: unknown },
  ) {
    super(`certificate ${ref}: ${REASON_TEXT[reason]}${detail ? ` (${detail})` : ''}`, options);
  }
}

export interface CertificateManager {
  /** `local` or `barbican`. */
  readonly driver: string;
  /**
   * A certificate, its key and intermediates (Octavia's get_cert). Rejects with CertificateError:
   * not_found, unreadable, unreadable_pkcs12, needs_passphrase, key_mismatch, unavailable. It does not
   * judge expiry: checkCertificateDates does (the API refuses expired certificates, rendering does not).
   */
  getCert(ctx: CertContext, ref: string): Promise<TlsCertificate>;
  /**
   * The payload of a secret as text (Octavia's get_secret): a CA bundle or a CRL, PEM. Rejects with
   * CertificateError not_found, unreadable or unavailable.
   */
  getSecret(ctx: CertContext, ref: string): Promise<string>;
}
