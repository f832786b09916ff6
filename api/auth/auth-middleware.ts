// Koa middleware that establishes who is calling (ctx.state.auth), like Octavia's paste pipeline:
// - keystone: keystonemiddleware's auth_token (X-Auth-Token validated with Keystone, 401 otherwise),
//   except on the unauthenticated paths (version document, healthcheck);
// - noauth: every caller is an admin; project/user/roles come from the X-Project-Id/X-User-Id/X-Roles
//   headers as oslo.context reads them, so tests can impersonate projects.
import type { Context, Middleware, Next } from 'koa';
import { type AuthContext, normaliseRoles, tokenFingerprint } from './auth-context.ts';
import { type AuthLogger, InvalidTokenError, KeystoneUnavailableError, type TokenValidator } from './keystone-client.ts';
import type { TokenCache } from './token-cache.ts';

/** Paths Octavia serves without authentication (octavia/common/keystone.py), compared exactly. */
export const DEFAULT_PUBLIC_PATHS: readonly string[] = Object.freeze([
  '/',
  '/load-balancer/',
  '/healthcheck',
  '/load-balancer/healthcheck',
]);

/** keystonemiddleware's 401 body, byte for byte (Python json.dumps spacing). */
export const KEYSTONE_401_BODY =
  '{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}';

/** Identity headers a client must not be able to inject in keystone mode (keystonemiddleware strips them). */
const IDENTITY_HEADERS = [
  'x-identity-status',
  'x-service-identity-status',
  'x-domain-id',
  'x-domain-name',
  'x-project-id',
  'x-project-name',
  'x-project-domain-id',
  'x-project-domain-name',
  'x-user-id',
  'x-user-name',
  'x-user-domain-id',
  'x-user-domain-name',
  'x-roles',
  'x-service-roles',
  'x-service-catalog',
  'x-is-admin-project',
  'x-user',
  'x-tenant-id',
  'x-tenant-name',
  'x-tenant',
  'x-role',
];

export interface AuthMiddlewareOptions {
  strategy: 'keystone' | 'noauth';
  /** Required for 'keystone': validates tokens (a KeystoneClient). */
  keystone?: TokenValidator;
  /** Optional cache in front of the validator (strongly recommended). */
  cache?: TokenCache;
  /** Paths that skip authentication; default DEFAULT_PUBLIC_PATHS. */
  publicPaths?: readonly string[];
  /** Overrides the URI advertised in `WWW-Authenticate: Keystone uri="..."` (default: keystone.wwwAuthenticateUri). */
  wwwAuthenticateUri?: string;
  logger?: AuthLogger;
}

/** The caller's identity set by authMiddleware; throws if the middleware did not run for this request. */
export function getAuthContext(ctx: Context): AuthContext {
  const auth = (ctx.state as { auth?: AuthContext }).auth;
  if (!auth) throw new Error('No auth context on this request: authMiddleware is not mounted before this handler');
  return auth;
}

/** Octavia noauth: the identity oslo.context derives from request headers (first header present wins). */
export function noauthContextFromHeaders(headers: Record<string, string | string[] | undefined>): AuthContext {
  const first = (...names: string[]): string | null => {
    for (const name of names) {
      const raw = headers[name];
      const v = Array.isArray(raw) ? raw[0] : raw;
      if (v !== undefined && v !== '') return v;
    }
    return null;
  };
  const rolesHeader = first('x-roles', 'x-role');
  return {
    projectId: first('x-project-id', 'x-tenant-id', 'x-tenant'),
    userId: first('x-user-id', 'x-user'),
    roles: rolesHeader ? normaliseRoles(rolesHeader.split(',')) : [],
    isAdmin: true,
    authStrategy: 'noauth',
  };
}

export function authMiddleware(opts: AuthMiddlewareOptions): Middleware {
  const publicPaths = new Set(opts.publicPaths ?? DEFAULT_PUBLIC_PATHS);

  if (opts.strategy === 'noauth') {
    return async (ctx: Context, next: Next) => {
      ctx.state.auth = noauthContextFromHeaders(ctx.request.headers);
      await next();
    };
  }

  if (opts.strategy !== 'keystone') throw new Error(`authMiddleware: unknown strategy ${String(opts.strategy)}`);
  const validator = opts.keystone;
  if (!validator) throw new Error('authMiddleware: the keystone strategy needs a token validator (keystone option)');
  const cache = opts.cache;
  const log = opts.logger;
  const wwwAuthenticate = `Keystone uri="${opts.wwwAuthenticateUri ?? validator.wwwAuthenticateUri}"`;
  const validate = (token: string): Promise<AuthContext> => validator.validateToken(token);

  const reject = (ctx: Context, reason: string, token?: string): void => {
    log?.info(
      { event: 'auth.rejected', reason, method: ctx.method, path: ctx.path, ...(token ? { token: tokenFingerprint(token) } : {}) },
      'Rejecting request',
    );
    ctx.status = 401;
    ctx.set('WWW-Authenticate', wwwAuthenticate);
    ctx.set('Content-Type', 'application/json'); // exactly keystonemiddleware's (no charset parameter)
    ctx.body = KEYSTONE_401_BODY;
  };

  return async (ctx: Context, next: Next) => {
    if (publicPaths.has(ctx.path)) {
      await next();
      return;
    }
    for (const h of IDENTITY_HEADERS) delete ctx.req.headers[h];

    const header = ctx.get('X-Auth-Token') || ctx.get('X-Storage-Token');
    const token = header.trim();
    if (token === '') {
      reject(ctx, 'missing token');
      return;
    }

    let auth: AuthContext;
    try {
      auth = cache ? await cache.getOrValidate(token, validate) : await validate(token);
    } catch (err) {
      if (err instanceof InvalidTokenError) {
        reject(ctx, err.reason, token);
        return;
      }
      if (err instanceof KeystoneUnavailableError) {
        // keystonemiddleware answers 503 here; never a 500 with a stack.
        log?.error({ event: 'auth.keystone_unavailable', err: err.message, path: ctx.path }, 'Unable to validate token');
        ctx.status = 503;
        ctx.type = 'application/json';
        ctx.body = { faultcode: 'Server', faultstring: err.faultstring, debuginfo: null };
        return;
      }
      throw err;
    }

    ctx.state.auth = auth;
    await next();
    // keystonemiddleware adds the header to every 401 the application returns.
    if (ctx.status === 401 && !ctx.response.get('WWW-Authenticate')) ctx.set('WWW-Authenticate', wwwAuthenticate);
  };
}
