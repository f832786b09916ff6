import { hkdfSync, randomBytes } from 'node:crypto';
import type tls from 'node:tls';

/** Env variable through which the cluster primary gives its workers the session-ticket secret. */
export const TICKET_SECRET_ENV = 'ARGONAUT_TLS_TICKET_SECRET';

let secret: Buffer | null = null;

/**
 * The secret session-ticket keys derive from: random per data plane, shared by its workers (the primary
 * hands it over when it forks them) so that a client resumes its TLS session whichever worker accepts
 * its next connection, as HAProxy's threads share their ticket keys. Only in memory.
 */
export function ticketSecret(): Buffer {
  if (secret === null) {
    const inherited = process.env[TICKET_SECRET_ENV];
    delete process.env[TICKET_SECRET_ENV];
    secret = inherited !== undefined && /^[0-9a-f]{64}$/.test(inherited) ? Buffer.from(inherited, 'hex') : randomBytes(32);
  }
  return secret;
}

/**
 * A listener's ticket keys (48 bytes, as tls.Server takes them). They change with the listener's TLS
 * settings, so that no session resumes past a change of certificates, client CA or CRL.
 */
export function listenerTicketKeys(listenerId: string, tlsFingerprint: string): Buffer {
  return Buffer.from(hkdfSync('sha256', ticketSecret(), Buffer.from(listenerId), Buffer.from(tlsFingerprint), 48));
}

/** The two members of Node's native SecureContext (`secureContext.context`) that renewal needs. */
interface NativeTicketHooks {
  enableTicketKeyCallback?: () => void;
  onticketkeycallback?: (name: Buffer, iv: Buffer, encrypt: boolean) => unknown[];
}

/**
 * Makes a context issue a fresh TLS session ticket whenever a client resumes with one of `keys`
 * (48 bytes: name, HMAC key, AES key, as tls.Server's `ticketKeys`), as HAProxy and OpenSSL's own
 * ticket handling do. Node's built-in ticket callback accepts a ticket without asking OpenSSL to
 * renew it, so a TLS 1.3 client that keeps one ticket per connection (wrk, curl's session cache)
 * gets none after a resumption and makes a full handshake every other time.
 *
 * It uses the native context's `enableTicketKeyCallback`/`onticketkeycallback` pair, which Node keeps
 * for its own tests (test-https-resume-after-renew) but does not document: returns false, leaving
 * Node's behaviour, where this Node does not have them. With SNI, OpenSSL decrypts a ticket with the
 * listener's first context and encrypts the new one with the context SNI chose: every context of a
 * listener must be given the same keys.
 */
export function renewTicketsOnResumption(context: tls.SecureContext, keys: Buffer): boolean {
  const native = (context as unknown as { context?: NativeTicketHooks }).context;
  if (typeof native?.enableTicketKeyCallback !== 'function') return false;
  const name = Buffer.from(keys.subarray(0, 16));
  const hmacKey = Buffer.from(keys.subarray(16, 32));
  const aesKey = Buffer.from(keys.subarray(32, 48));
  native.onticketkeycallback = (ticketName, _iv, encrypt) => {
    if (encrypt) return [1, hmacKey, aesKey, name, randomBytes(16)];
    // 2: accepted, issue a new ticket; 0: not ours (another listener's, older settings): full handshake.
    return [ticketName.equals(name) ? 2 : 0, hmacKey, aesKey];
  };
  native.enableTicketKeyCallback();
  return true;
}
