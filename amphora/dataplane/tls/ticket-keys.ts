import { hkdfSync, randomBytes } from 'node:crypto';

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
