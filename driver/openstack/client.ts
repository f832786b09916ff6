// A small HTTP client for one OpenStack service (Neutron, Nova, Glance) on behalf of the service
// user: the Keystone service token in X-Auth-Token (renewed by the token source before it expires,
// and once more when the service answers 401), the endpoint from the token's catalog (or a
// configured override), JSON in and out, a timeout per request. Every answer >= 400 becomes an
// OpenStackError carrying the service's own message; tokens never appear in errors.
import { z } from 'zod';
import type { EndpointInterface, FetchLike } from '../../api/auth/keystone-client.ts';

/** Where tokens and endpoints come from; KeystoneClient (api/auth/keystone-client.ts) is one. */
export interface ServiceCredentials {
  serviceToken(): Promise<string>;
  invalidateServiceToken(): void;
  /** The project the service token is scoped to: resources the driver creates belong to it. */
  serviceProjectId(): Promise<string | null>;
  endpointFor(serviceType: string, options?: { interface?: EndpointInterface; region?: string | null }): Promise<string>;
}

export interface ServiceClientOptions {
  credentials: ServiceCredentials;
  /** Catalog type: network, compute, image. */
  serviceType: string;
  /** Name used in error messages: Neutron, Nova, Glance. */
  serviceName: string;
  /** The service's base URL, version included; null/undefined: from the catalog. */
  endpoint?: string | null;
  interface?: EndpointInterface;
  /** Catalog region; undefined: the credentials' default region. */
  region?: string | null;
  /** Appended to a catalog URL that does not end with it already ('/v2.0' for Neutron, '/v2' for Glance). */
  versionPath?: string;
  timeoutMs: number;
  /** Sent with every request (e.g. Nova's microversion headers). */
  headers?: Record<string, string>;
  fetch?: FetchLike;
}

export type Query = Record<string, string | number | boolean | string[] | undefined>;

/** The service answered an HTTP error (status set) or could not be reached (status null). */
export class OpenStackError extends Error {
  override name = 'OpenStackError';
  constructor(
    readonly service: string,
    readonly method: string,
    readonly path: string,
    readonly status: number | null,
    /** The service's error type when it names one (Neutron: IpAddressAlreadyAllocated; Nova: itemNotFound). */
    readonly type: string | null,
    /** The service's own message (or what went wrong when there is no answer). */
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${service} ${method} ${path}: ${status === null ? 'no answer' : `HTTP ${status}`}${type ? ` ${type}` : ''}: ${detail}`, options);
  }
}

export class ServiceClient {
  private readonly fetchImpl: FetchLike;

  constructor(private readonly opts: ServiceClientOptions) {
    if (!(opts.timeoutMs > 0)) throw new Error(`${opts.serviceName} client: timeoutMs must be > 0`);
    this.fetchImpl = opts.fetch ?? ((input, init) => fetch(input, init));
  }

  get serviceName(): string {
    return this.opts.serviceName;
  }

  /** The base URL requests go to (the override, or the catalog's endpoint plus versionPath). */
  async baseUrl(): Promise<string> {
    if (this.opts.endpoint) return this.opts.endpoint.replace(/\/+$/, '');
    const options: { interface?: EndpointInterface; region?: string | null } = {};
    if (this.opts.interface) options.interface = this.opts.interface;
    if (this.opts.region !== undefined) options.region = this.opts.region;
    const url = (await this.opts.credentials.endpointFor(this.opts.serviceType, options)).replace(/\/+$/, '');
    const version = this.opts.versionPath;
    return version && !url.endsWith(version) ? `${url}${version}` : url;
  }

  /** GET, validated with `schema`. */
  async get<T>(path: string, schema: z.ZodType<T>, query?: Query): Promise<T> {
    return this.parse('GET', path, schema, await this.request('GET', path, { query }));
  }

  /** GET of one resource: undefined when the service answers 404. */
  async find<T>(path: string, schema: z.ZodType<T>): Promise<T | undefined> {
    try {
      return await this.get(path, schema);
    } catch (err) {
      if (err instanceof OpenStackError && err.status === 404) return undefined;
      throw err;
    }
  }

  async post<T>(path: string, body: unknown, schema: z.ZodType<T>): Promise<T> {
    return this.parse('POST', path, schema, await this.request('POST', path, { body }));
  }

  async put<T>(path: string, body: unknown, schema: z.ZodType<T>): Promise<T> {
    return this.parse('PUT', path, schema, await this.request('PUT', path, { body }));
  }

  /** DELETE; true if deleted, false if it was already gone (404). */
  async delete(path: string): Promise<boolean> {
    try {
      await this.request('DELETE', path);
      return true;
    } catch (err) {
      if (err instanceof OpenStackError && err.status === 404) return false;
      throw err;
    }
  }

  /** One request; the parsed JSON body (null when empty). A 401 is retried once with a fresh token. */
  async request(method: string, path: string, opts: { query?: Query; body?: unknown } = {}): Promise<unknown> {
    const url = `${await this.baseUrl()}${path}${queryString(opts.query)}`;
    let res = await this.send(method, path, url, await this.opts.credentials.serviceToken(), opts.body);
    if (res.status === 401) {
      await res.body?.cancel();
      this.opts.credentials.invalidateServiceToken();
      res = await this.send(method, path, url, await this.opts.credentials.serviceToken(), opts.body);
    }
    const text = await res.text();
    if (res.status >= 400) {
      const { type, message } = errorOf(text, res.status);
      throw new OpenStackError(this.opts.serviceName, method, path, res.status, type, message);
    }
    if (!text) return null;
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new OpenStackError(this.opts.serviceName, method, path, res.status, null, `answer is not JSON: ${text.slice(0, 200)}`, { cause: err });
    }
  }

  private async send(method: string, path: string, url: string, token: string, body: unknown): Promise<Response> {
    const headers: Record<string, string> = { Accept: 'application/json', ...this.opts.headers, 'X-Auth-Token': token };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    try {
      return await this.fetchImpl(url, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
    } catch (err) {
      const e = err as Error & { cause?: Error & { code?: string } };
      const detail = e.name === 'TimeoutError' ? `no answer within ${this.opts.timeoutMs} ms` : `${e.message}${e.cause?.code ? ` (${e.cause.code})` : ''}`;
      throw new OpenStackError(this.opts.serviceName, method, path, null, null, detail, { cause: err });
    }
  }

  private parse<T>(method: string, path: string, schema: z.ZodType<T>, body: unknown): T {
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      const issues = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
      throw new OpenStackError(this.opts.serviceName, method, path, 200, null, `unexpected answer: ${issues.join('; ')}`);
    }
    return parsed.data;
  }
}

function queryString(query: Query | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) params.append(key, String(v));
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

/**
 * The error type and message of an error answer. Neutron: {"NeutronError": {"type", "message"}};
 * Nova: {"itemNotFound": {"code", "message"}}; Keystone: {"error": {"message", "title"}}; others
 * (Glance, proxies): {"message"} or plain text.
 */
function errorOf(text: string, status: number): { type: string | null; message: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    const plain = text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
    return { type: null, message: plain.slice(0, 500) || `HTTP ${status} without a body` };
  }
  if (json && typeof json === 'object' && !Array.isArray(json)) {
    const obj = json as Record<string, unknown>;
    if (typeof obj.message === 'string') return { type: null, message: obj.message };
    const keys = Object.keys(obj);
    const inner = keys.length === 1 ? obj[keys[0]!] : undefined;
    if (inner && typeof inner === 'object' && typeof (inner as { message?: unknown }).message === 'string') {
      const i = inner as { message: string; type?: unknown };
      return { type: typeof i.type === 'string' ? i.type : keys[0]!, message: i.message };
    }
  }
  return { type: null, message: text.slice(0, 500) };
}
