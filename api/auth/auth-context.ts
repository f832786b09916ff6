// Who is calling: the identity the auth middleware attaches to every authenticated request
// (ctx.state.auth). Built either from a Keystone token (keystone strategy) or from request
// headers (noauth strategy, where every caller is an admin, as in Octavia).
import { createHash } from 'node:crypto';

export type AuthStrategy = 'keystone' | 'noauth';

export interface AuthContext {
  /** Project the token is scoped to; null for unscoped, domain- or system-scoped tokens (or noauth without X-Project-Id). */
  projectId: string | null;
  userId: string | null;
  /** Role names, lowercased, including the implied roles Keystone expands into the token (admin ⊃ member ⊃ reader). */
  roles: string[];
  /** Octavia's context.is_admin flag forced by the deployment: true under noauth. Under keystone it is true
   *  when the token carries the admin role; the policy engine re-derives `is_admin:True` from `context_is_admin`
   *  in any case, so this flag only ever adds rights for noauth. */
  isAdmin: boolean;
  tokenExpiresAt?: Date;
  authStrategy: AuthStrategy;
  /** Informational, when Keystone returns them. */
  userName?: string;
  projectName?: string;
}

/** A short, stable, non-reversible tag of a token for log lines; never log the token itself. */
export function tokenFingerprint(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 16);
}

/** Full SHA-256 hex of a token: the key the token cache uses. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Normalises a role list as oslo.policy compares roles: case-insensitively, blanks dropped, no duplicates. */
export function normaliseRoles(roles: readonly string[]): string[] {
  const out: string[] = [];
  for (const role of roles) {
    const r = role.trim().toLowerCase();
    if (r !== '' && !out.includes(r)) out.push(r);
  }
  return out;
}

/** An immutable copy of a context, so a cached identity cannot be altered by one request for the next. */
export function freezeAuthContext(ctx: AuthContext): Readonly<AuthContext> {
  const copy: AuthContext = { ...ctx, roles: [...ctx.roles] };
  if (ctx.tokenExpiresAt) copy.tokenExpiresAt = new Date(ctx.tokenExpiresAt.getTime());
  Object.freeze(copy.roles);
  return Object.freeze(copy);
}
