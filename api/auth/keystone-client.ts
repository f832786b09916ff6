// A small Keystone v3 client: a project-scoped service token (password auth, renewed before it
// expires and whenever Keystone answers 401), validation of user tokens
// (GET /v3/auth/tokens with X-Subject-Token) and endpoint lookup in the service catalog.
// Tokens and passwords never appear in errors or logs.
import { z } from 'zod';
import type { ArgonautConfig } from '../../common/config.ts';
import { type AuthContext, normaliseRoles, tokenFingerprint } from './auth-context.ts';

/** The user token is not valid (unknown, malformed, expired or revoked). The middleware answers 401. */
export class InvalidTokenError extends Error {
  readonly httpStatus = 401;
  readonly faultstring = 'The request you have made requires authentication.';
  constructor(readonly reason: string) {
    super(`Invalid token: ${reason}`);
    this.name = 'InvalidTokenError';
  }
}

/** Keystone cannot be used right now (unreachable, timeout, 5xx, or it rejects the service credentials). 503. */
export class KeystoneUnavailableError extends Error {
  readonly httpStatus = 503;
  readonly faultstring = 'The Keystone service is temporarily unavailable.';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeystoneUnavailableError';
  }
}

/** The service catalog has no endpoint of the requested type/interface/region. A deployment error. */
export class EndpointNotFoundError extends Error {
  readonly httpStatus = 500;
  readonly faultstring: string;
  constructor(serviceType: string, iface: string, region: string | null) {
    const where = region ? ` in region ${region}` : '';
    super(`No ${iface} endpoint for service type '${serviceType}'${where} in the Keystone catalog.`);
    this.name = 'EndpointNotFoundError';
    this.faultstring = this.message;
  }
}

export type EndpointInterface = 'public' | 'internal' | 'admin';

export interface CatalogEndpoint {
  id?: string;
  interface: string;
  region: string | null;
  regionId: string | null;
  url: string;
}

export interface CatalogService {
  id?: string;
  type: string;
  name?: string;
  endpoints: CatalogEndpoint[];
}

/** Minimal logger interface; a pino Logger fits. */
export interface AuthLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface KeystoneClientOptions {
  /** Keystone v3 URL, e.g. http://127.0.0.1:5000/v3 (a trailing slash is tolerated). */
  authUrl: string;
  username: string;
  password: string;
  projectName: string;
  userDomainName: string;
  projectDomainName: string;
  /** Default region for endpointFor(); null/undefined = any region. */
  region?: string | null;
  /** Timeout of one Keystone request. */
  timeoutMs: number;
  /** Further attempts after a timeout or connection failure (keystonemiddleware retries 3 times). Default 2. */
  retries?: number;
  /** Injectable fetch (tests). Defaults to the global fetch. */
  fetch?: FetchLike;
  /** The service token is renewed when it has less than this left (default 120 s, capped at half its lifetime). */
  renewBeforeExpiryMs?: number;
  /** Clock (ms since epoch); defaults to Date.now. */
  now?: () => number;
  logger?: AuthLogger;
}

/** Anything that turns a user token into an AuthContext (the middleware only needs this). */
export interface TokenValidator {
  validateToken(token: string): Promise<AuthContext>;
  /** Value for `WWW-Authenticate: Keystone uri="..."` on 401 answers. */
  readonly wwwAuthenticateUri: string;
}

// --- Keystone response shapes (only what is used; extra keys are ignored) -----------------------

const namedRef = z.object({ id: z.string(), name: z.string().optional() }).passthrough();

const catalogSchema = z.array(
  z
    .object({
      id: z.string().optional(),
      type: z.string(),
      name: z.string().optional(),
      endpoints: z.array(
        z
          .object({
            id: z.string().optional(),
            interface: z.string(),
            region: z.string().nullable().optional(),
            region_id: z.string().nullable().optional(),
            url: z.string(),
          })
          .passthrough(),
      ),
    })
    .passthrough(),
);

const tokenBodySchema = z.object({
  token: z
    .object({
      expires_at: z.string(),
      user: namedRef.optional(),
      project: namedRef.optional(),
      roles: z.array(z.object({ id: z.string().optional(), name: z.string() }).passthrough()).optional(),
      catalog: catalogSchema.optional(),
    })
    .passthrough(),
});

type TokenBody = z.infer<typeof tokenBodySchema>['token'];

interface ServiceToken {
  token: string;
  expiresAt: number;
  issuedAt: number;
  catalog: CatalogService[];
  projectId: string | null;
}

/** Longest token accepted from a client; anything longer is rejected without asking Keystone. */
const MAX_TOKEN_LENGTH = 8192;
/** Visible ASCII only: anything else cannot be sent in a header and is not a Keystone token. */
const TOKEN_CHARS = /^[\x21-\x7e]+$/;

/** Parses Keystone's timestamps (e.g. 2024-01-02T03:04:05.000000Z); returns NaN when unparsable. */
export function parseKeystoneTime(value: string): number {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$/.exec(value.trim());
  if (!m) return Number.NaN;
  const frac = (m[2] ?? '').padEnd(3, '0').slice(0, 3);
  let zone = m[3] ?? 'Z';
  if (/^[+-]\d{4}$/.test(zone)) zone = `${zone.slice(0, 3)}:${zone.slice(3)}`;
  return Date.parse(`${m[1]}.${frac}${zone}`);
}

export class KeystoneClient implements TokenValidator {
  private readonly authUrl: string;
  private readonly fetchImpl: FetchLike;
  private readonly now: () => number;
  private readonly renewBeforeMs: number;
  private serviceTokenState: ServiceToken | null = null;
  private serviceTokenInFlight: Promise<ServiceToken> | null = null;

  constructor(private readonly opts: KeystoneClientOptions) {
    if (!opts.authUrl) throw new Error('KeystoneClient: authUrl is required');
    if (!opts.username) throw new Error('KeystoneClient: username is required');
    if (!(opts.timeoutMs > 0)) throw new Error('KeystoneClient: timeoutMs must be > 0');
    this.authUrl = opts.authUrl.replace(/\/+$/, '');
    this.fetchImpl = opts.fetch ?? ((input, init) => fetch(input, init));
    this.now = opts.now ?? Date.now;
    this.renewBeforeMs = opts.renewBeforeExpiryMs ?? 120_000;
  }

  /** The Keystone root (authUrl without /v3), as keystonemiddleware advertises in WWW-Authenticate. */
  get wwwAuthenticateUri(): string {
    return this.authUrl.replace(/\/v3$/, '');
  }

  /** A valid project-scoped service token (obtained or renewed as needed). */
  async serviceToken(): Promise<string> {
    return (await this.ensureServiceToken()).token;
  }

  /** Forget the cached service token (e.g. after another service answered 401 to it). */
  invalidateServiceToken(): void {
    this.serviceTokenState = null;
  }

  /** The id of the project the service token is scoped to (the service project), when Keystone says. */
  async serviceProjectId(): Promise<string | null> {
    return (await this.ensureServiceToken()).projectId;
  }

  /** The service catalog of the service token. */
  async serviceCatalog(): Promise<CatalogService[]> {
    const st = await this.ensureServiceToken();
    return st.catalog.map((s) => ({ ...s, endpoints: s.endpoints.map((e) => ({ ...e })) }));
  }

  /** URL of the endpoint of a service type, e.g. endpointFor('network', { interface: 'internal' }). */
  async endpointFor(
    serviceType: string,
    options: { interface?: EndpointInterface; region?: string | null } = {},
  ): Promise<string> {
    const iface = options.interface ?? 'public';
    const region = options.region !== undefined ? options.region : (this.opts.region ?? null);
    const catalog = (await this.ensureServiceToken()).catalog;
    for (const service of catalog) {
      if (service.type !== serviceType) continue;
      for (const ep of service.endpoints) {
        if (ep.interface !== iface) continue;
        if (region && ep.region !== region && ep.regionId !== region) continue;
        return ep.url.replace(/\/+$/, '');
      }
    }
    throw new EndpointNotFoundError(serviceType, iface, region);
  }

  /**
   * Validates a user token with Keystone. Resolves with the caller's identity; rejects with
   * InvalidTokenError (401) or KeystoneUnavailableError (503).
   */
  async validateToken(userToken: string): Promise<AuthContext> {
    if (typeof userToken !== 'string' || userToken.length === 0) throw new InvalidTokenError('empty token');
    if (userToken.length > MAX_TOKEN_LENGTH) throw new InvalidTokenError('token too long');
    if (!TOKEN_CHARS.test(userToken)) throw new InvalidTokenError('token contains invalid characters');

    let st = await this.ensureServiceToken();
    let res = await this.validateOnce(st.token, userToken);
    if (res.status === 401) {
      // Our service token was rejected (expired early, revoked, Keystone restarted with new keys): renew once.
      this.opts.logger?.info({ event: 'keystone.service_token.rejected' }, 'Keystone rejected the service token; renewing it');
      this.invalidateServiceTokenIf(st);
      st = await this.ensureServiceToken();
      res = await this.validateOnce(st.token, userToken);
      if (res.status === 401) {
        await discardBody(res);
        throw new KeystoneUnavailableError('Keystone rejected a freshly issued service token while validating a user token');
      }
    }
    const fp = tokenFingerprint(userToken);
    if (res.status === 404) {
      await discardBody(res);
      this.opts.logger?.debug({ event: 'keystone.token.invalid', token: fp }, 'Keystone does not know the token');
      throw new InvalidTokenError('token not found, expired or revoked');
    }
    if (res.status === 403) {
      await discardBody(res);
      throw new KeystoneUnavailableError(
        `Keystone refused token validation for service user '${this.opts.username}' (HTTP 403): it needs the service or admin role`,
      );
    }
    if (res.status !== 200) {
      await discardBody(res);
      throw new KeystoneUnavailableError(`Keystone answered HTTP ${res.status} to token validation`);
    }
    const body = await this.readTokenBody(res, 'token validation');
    const expiresAt = parseKeystoneTime(body.expires_at);
    if (Number.isNaN(expiresAt)) {
      throw new KeystoneUnavailableError('Keystone returned a token without a readable expires_at');
    }
    if (expiresAt <= this.now()) {
      throw new InvalidTokenError('token expired');
    }
    const roles = normaliseRoles((body.roles ?? []).map((r) => r.name));
    const ctx: AuthContext = {
      projectId: body.project?.id ?? null,
      userId: body.user?.id ?? null,
      roles,
      isAdmin: roles.includes('admin'),
      tokenExpiresAt: new Date(expiresAt),
      authStrategy: 'keystone',
    };
    if (body.user?.name !== undefined) ctx.userName = body.user.name;
    if (body.project?.name !== undefined) ctx.projectName = body.project.name;
    this.opts.logger?.debug(
      { event: 'keystone.token.valid', token: fp, project_id: ctx.projectId, user_id: ctx.userId },
      'token validated',
    );
    return ctx;
  }

  // --- internals ------------------------------------------------------------------------------

  private validateOnce(serviceToken: string, userToken: string): Promise<Response> {
    return this.request(`${this.authUrl}/auth/tokens?nocatalog`, {
      method: 'GET',
      headers: { 'X-Auth-Token': serviceToken, 'X-Subject-Token': userToken, Accept: 'application/json' },
    });
  }

  private invalidateServiceTokenIf(st: ServiceToken): void {
    if (this.serviceTokenState === st) this.serviceTokenState = null;
  }

  private ensureServiceToken(): Promise<ServiceToken> {
    const st = this.serviceTokenState;
    if (st) {
      const lifetime = st.expiresAt - st.issuedAt;
      const margin = Math.min(this.renewBeforeMs, Math.max(0, lifetime / 2));
      if (st.expiresAt - this.now() > margin) return Promise.resolve(st);
    }
    if (!this.serviceTokenInFlight) {
      const p = this.issueServiceToken().then(
        (fresh) => {
          this.serviceTokenState = fresh;
          return fresh;
        },
      );
      this.serviceTokenInFlight = p;
      // Clear the in-flight marker whatever happens; errors still reach every awaiting caller through `p`.
      p.then(
        () => {
          if (this.serviceTokenInFlight === p) this.serviceTokenInFlight = null;
        },
        () => {
          if (this.serviceTokenInFlight === p) this.serviceTokenInFlight = null;
        },
      );
    }
    return this.serviceTokenInFlight;
  }

  private async issueServiceToken(): Promise<ServiceToken> {
    const o = this.opts;
    const body = {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: o.username, domain: { name: o.userDomainName }, password: o.password } },
        },
        scope: { project: { name: o.projectName, domain: { name: o.projectDomainName } } },
      },
    };
    const issuedAt = this.now();
    const res = await this.request(`${this.authUrl}/auth/tokens`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
    });
    if (res.status === 401 || res.status === 403 || res.status === 404) {
      await discardBody(res);
      throw new KeystoneUnavailableError(
        `Keystone rejected the service credentials of user '${o.username}' (project '${o.projectName}') with HTTP ${res.status}`,
      );
    }
    if (res.status !== 201 && res.status !== 200) {
      await discardBody(res);
      throw new KeystoneUnavailableError(`Keystone answered HTTP ${res.status} when issuing the service token`);
    }
    const token = res.headers.get('x-subject-token');
    if (!token) {
      await discardBody(res);
      throw new KeystoneUnavailableError('Keystone issued a service token without an X-Subject-Token header');
    }
    const tokenBody = await this.readTokenBody(res, 'service token issue');
    const expiresAt = parseKeystoneTime(tokenBody.expires_at);
    if (Number.isNaN(expiresAt)) {
      throw new KeystoneUnavailableError('Keystone returned a service token without a readable expires_at');
    }
    const catalog: CatalogService[] = (tokenBody.catalog ?? []).map((s) => {
      const svc: CatalogService = {
        type: s.type,
        endpoints: s.endpoints.map((e) => {
          const ep: CatalogEndpoint = {
            interface: e.interface,
            region: e.region ?? null,
            regionId: e.region_id ?? null,
            url: e.url,
          };
          if (e.id !== undefined) ep.id = e.id;
          return ep;
        }),
      };
      if (s.id !== undefined) svc.id = s.id;
      if (s.name !== undefined) svc.name = s.name;
      return svc;
    });
    this.opts.logger?.info(
      { event: 'keystone.service_token.issued', user: o.username, project: o.projectName, expires_at: new Date(expiresAt).toISOString() },
      'obtained a Keystone service token',
    );
    return { token, expiresAt, issuedAt: Math.min(issuedAt, expiresAt), catalog, projectId: tokenBody.project?.id ?? null };
  }

  private async readTokenBody(res: Response, what: string): Promise<TokenBody> {
    let json: unknown;
    try {
      json = await res.json();
    } catch (err) {
      throw new KeystoneUnavailableError(`Keystone returned a body that is not JSON during ${what}`, { cause: err });
    }
    const parsed = tokenBodySchema.safeParse(json);
    if (!parsed.success) {
      throw new KeystoneUnavailableError(`Keystone returned an unexpected token body during ${what}`);
    }
    return parsed.data.token;
  }

  /**
   * One HTTP request to Keystone, tried again after a timeout or connection failure (a loaded
   * Keystone answers slowly); when every attempt fails it becomes KeystoneUnavailableError.
   */
  private async request(url: string, init: RequestInit): Promise<Response> {
    const attempts = 1 + (this.opts.retries ?? 2);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.fetchImpl(url, { ...init, signal: AbortSignal.timeout(this.opts.timeoutMs) });
      } catch (err) {
        const detail = describeFetchError(err);
        const last = attempt >= attempts;
        this.opts.logger?.[last ? 'error' : 'warn']({ event: 'keystone.unreachable', url: this.authUrl, detail, attempt }, 'Keystone request failed');
        if (last) throw new KeystoneUnavailableError(`Keystone at ${this.authUrl} is unreachable: ${detail}`, { cause: err });
      }
    }
  }
}

function describeFetchError(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'request timed out';
    const cause = (err as Error & { cause?: unknown }).cause;
    if (cause instanceof Error) {
      const code = (cause as Error & { code?: string }).code;
      return code ? `${err.message} (${code})` : `${err.message} (${cause.message})`;
    }
    return err.message;
  }
  return String(err);
}

async function discardBody(res: Response): Promise<void> {
  if (res.bodyUsed || !res.body) return;
  await res.body.cancel();
}

/** A client with the service user of the configuration's `keystone` section. */
export function keystoneClientFromConfig(k: ArgonautConfig['keystone'], logger: AuthLogger): KeystoneClient {
  return new KeystoneClient({
    authUrl: k.authUrl,
    username: k.username,
    password: k.password,
    projectName: k.projectName,
    userDomainName: k.userDomainName,
    projectDomainName: k.projectDomainName,
    region: k.region,
    timeoutMs: k.timeoutMs,
    retries: k.retries,
    logger,
  });
}
