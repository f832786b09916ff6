// The `barbican` certificate manager: Barbican v1 as Octavia's barbican cert manager uses it.
//  - A reference is a Barbican secret or container URL (or a bare id); only its last path segment
//    (the id) is used, against the configured or catalogued key-manager endpoint, as
//    python-barbicanclient does: a reference never makes Argonaut call another host.
//  - Access (Octavia's barbican_acl auth): with the caller's token, the service user is added to
//    the read ACL of the secret (or container and its secrets) before the service user reads it.
//  - get_cert: the secret's payload is a PKCS#12 bundle without a password (Octavia's default);
//    if there is no such secret, the legacy certificate container (certificate, private_key,
//    intermediates, private_key_passphrase secrets). An unreadable PKCS#12 is not retried as a
//    container: the API answers Octavia's UnreadablePKCS12 400.
//  - get_secret: a secret's payload (a CA bundle or a CRL).
// Tokens and payloads never appear in logs or errors.
import type { EndpointInterface, FetchLike } from '../../api/auth/keystone-client.ts';
import type { Logger } from '../logging.ts';
import { readPkcs12, Pkcs12Error } from './pkcs12.ts';
import { CertificateError, type CertContext, type CertificateManager, type TlsCertificate } from './types.ts';
import { buildTlsCertificate, toPem } from './x509.ts';

export interface BarbicanCredentials {
  serviceToken(): Promise<string>;
  invalidateServiceToken(): void;
  endpointFor(serviceType: string, options?: { interface?: EndpointInterface; region?: string | null }): Promise<string>;
  /** The service user's id: the one added to the secrets' read ACLs. */
  serviceUserId(): Promise<string>;
}

export interface BarbicanOptions {
  credentials: BarbicanCredentials;
  /** Barbican's URL (with or without /v1); null: the key-manager endpoint of the catalog. */
  endpoint?: string | null;
  interface?: EndpointInterface;
  region?: string | null;
  timeoutMs: number;
  fetch?: FetchLike;
  logger?: Logger;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The id and kind (secrets, containers, or unknown for a bare id) a Barbican reference names. */
export function parseBarbicanRef(ref: string): { id: string; entity: 'secrets' | 'containers' | null } | null {
  const trimmed = ref.trim();
  if (UUID.test(trimmed)) return { id: trimmed.toLowerCase(), entity: null };
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    return null;
  }
  const parts = url.pathname.split('/').filter(Boolean);
  const id = parts.at(-1);
  if (!id || !UUID.test(id)) return null;
  const entity = parts.at(-2);
  return { id: id.toLowerCase(), entity: entity === 'secrets' || entity === 'containers' ? entity : null };
}

class BarbicanHttpError extends Error {
  constructor(
    readonly status: number | null,
    message: string,
  ) {
    super(message);
  }
}

interface SecretMeta {
  content_types?: Record<string, string>;
  status?: string;
}

interface ContainerBody {
  type?: string;
  secret_refs?: Array<{ name?: string; secret_ref: string }>;
}

export class BarbicanCertificateManager implements CertificateManager {
  readonly driver = 'barbican';
  private readonly fetchImpl: FetchLike;

  constructor(private readonly opts: BarbicanOptions) {
    this.fetchImpl = opts.fetch ?? ((input, init) => fetch(input, init));
  }

  async getCert(ctx: CertContext, ref: string): Promise<TlsCertificate> {
    const parsed = this.parse(ref);
    await this.ensureAccess(ctx, ref, parsed);
    let payload: Buffer | undefined;
    try {
      payload = await this.secretPayload(parsed.id);
    } catch (err) {
      this.opts.logger?.info({ event: 'barbican.pkcs12.unavailable', ref, status: (err as BarbicanHttpError).status ?? null }, 'no PKCS12 secret; trying a certificate container');
    }
    if (payload) {
      let contents;
      try {
        contents = readPkcs12(payload);
      } catch (err) {
        throw new CertificateError('unreadable_pkcs12', ref, err instanceof Pkcs12Error ? err.message : 'unreadable', { cause: err });
      }
      return buildTlsCertificate(ref, {
        certificate: toPem(contents.certificate, 'CERTIFICATE'),
        privateKey: contents.key,
        intermediates: contents.additional.map((c) => toPem(c, 'CERTIFICATE')),
      });
    }
    return this.legacyCert(ref, parsed.id);
  }

  async getSecret(ctx: CertContext, ref: string): Promise<string> {
    const parsed = this.parse(ref);
    await this.ensureAccess(ctx, ref, parsed);
    try {
      return (await this.secretPayload(parsed.id)).toString('utf8');
    } catch (err) {
      throw this.toCertError(ref, err);
    }
  }

  private parse(ref: string): { id: string; entity: 'secrets' | 'containers' | null } {
    const parsed = parseBarbicanRef(ref);
    if (!parsed) throw new CertificateError('not_found', ref, 'not a Barbican secret or container reference');
    return parsed;
  }

  /** A legacy certificate container: its certificate, key, intermediates and passphrase secrets. */
  private async legacyCert(ref: string, id: string): Promise<TlsCertificate> {
    let container: ContainerBody;
    try {
      container = (await this.json('GET', `/containers/${id}`)) as ContainerBody;
    } catch (err) {
      throw this.toCertError(ref, err);
    }
    if (container.type !== 'certificate') throw new CertificateError('unreadable', ref, 'the Barbican container is not of type certificate');
    const secrets = new Map((container.secret_refs ?? []).map((s) => [s.name ?? '', s.secret_ref]));
    const read = async (name: string): Promise<string | null> => {
      const secretRef = secrets.get(name);
      if (!secretRef) return null;
      const secret = parseBarbicanRef(secretRef);
      if (!secret) throw new CertificateError('unreadable', ref, `the container's ${name} reference is not a secret reference`);
      try {
        return (await this.secretPayload(secret.id)).toString('utf8');
      } catch (err) {
        throw this.toCertError(ref, err, `its ${name} secret`);
      }
    };
    const certificate = await read('certificate');
    const privateKey = await read('private_key');
    if (!certificate || !privateKey) throw new CertificateError('unreadable', ref, 'the container lacks a certificate or a private_key secret');
    const intermediates = await read('intermediates');
    const passphrase = await read('private_key_passphrase');
    return buildTlsCertificate(ref, { certificate, privateKey, intermediates, passphrase });
  }

  /**
   * Octavia's set_acls: with the caller's token, give the service user read access to the
   * reference and, for a certificate container, to its secrets. Without a token (service-side
   * reads, noauth) nothing is granted.
   */
  private async ensureAccess(ctx: CertContext, ref: string, parsed: { id: string; entity: 'secrets' | 'containers' | null }): Promise<void> {
    if (!ctx.authToken) return;
    const userToken = ctx.authToken;
    try {
      const serviceUser = await this.opts.credentials.serviceUserId();
      await this.grantRead(`/${parsed.entity ?? 'secrets'}/${parsed.id}`, serviceUser, userToken);
      if (parsed.entity === 'secrets') return;
      let container: ContainerBody | undefined;
      try {
        container = (await this.json('GET', `/containers/${parsed.id}`)) as ContainerBody;
      } catch {
        return; // not a legacy container
      }
      for (const s of container.secret_refs ?? []) {
        const secret = parseBarbicanRef(s.secret_ref);
        if (secret) await this.grantRead(`/secrets/${secret.id}`, serviceUser, userToken);
      }
    } catch (err) {
      throw this.toCertError(ref, err, 'granting the service user read access');
    }
  }

  private async grantRead(path: string, userId: string, userToken: string): Promise<void> {
    const acl = ((await this.json('GET', `${path}/acl`, { userToken })) ?? {}) as { read?: { users?: string[]; 'project-access'?: boolean } };
    const users = acl.read?.users ?? [];
    if (users.includes(userId)) return;
    const body = { read: { users: [...users, userId], 'project-access': acl.read?.['project-access'] ?? true } };
    await this.json('PUT', `${path}/acl`, { userToken, body });
  }

  /** A secret's payload, asked for in its default content type (python-barbicanclient's way). */
  private async secretPayload(id: string): Promise<Buffer> {
    const meta = (await this.json('GET', `/secrets/${id}`)) as SecretMeta;
    const contentType = meta.content_types?.default;
    if (!contentType) throw new BarbicanHttpError(404, 'the secret has no payload');
    const res = await this.send('GET', `/secrets/${id}/payload`, { accept: contentType });
    return Buffer.from(await res.arrayBuffer());
  }

  private async json(method: string, path: string, opts: { userToken?: string; body?: unknown } = {}): Promise<unknown> {
    const res = await this.send(method, path, { ...opts, accept: 'application/json' });
    const text = await res.text();
    if (!text) return null;
    try {
      return JSON.parse(text);
    } catch {
      throw new BarbicanHttpError(res.status, `Barbican ${method} ${path}: answer is not JSON`);
    }
  }

  /** One request; the service token is renewed once on a 401. Statuses >= 400 throw. */
  private async send(method: string, path: string, opts: { userToken?: string; body?: unknown; accept: string }): Promise<Response> {
    const url = `${await this.baseUrl()}${path}`;
    const attempt = async (token: string) => {
      const headers: Record<string, string> = { Accept: opts.accept, 'X-Auth-Token': token };
      if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
      try {
        return await this.fetchImpl(url, {
          method,
          headers,
          ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
          signal: AbortSignal.timeout(this.opts.timeoutMs),
        });
      } catch (err) {
        const e = err as Error;
        throw new BarbicanHttpError(null, `Barbican ${method} ${path}: ${e.name === 'TimeoutError' ? `no answer within ${this.opts.timeoutMs} ms` : e.message}`);
      }
    };
    let res = await attempt(opts.userToken ?? (await this.opts.credentials.serviceToken()));
    if (res.status === 401 && !opts.userToken) {
      await res.body?.cancel();
      this.opts.credentials.invalidateServiceToken();
      res = await attempt(await this.opts.credentials.serviceToken());
    }
    if (res.status >= 400) {
      await res.body?.cancel();
      throw new BarbicanHttpError(res.status, `Barbican ${method} ${path}: HTTP ${res.status}`);
    }
    return res;
  }

  private async baseUrl(): Promise<string> {
    let url = this.opts.endpoint;
    if (!url) {
      const options: { interface?: EndpointInterface; region?: string | null } = {};
      if (this.opts.interface) options.interface = this.opts.interface;
      if (this.opts.region !== undefined) options.region = this.opts.region;
      url = await this.opts.credentials.endpointFor('key-manager', options);
    }
    url = url.replace(/\/+$/, '');
    return url.endsWith('/v1') ? url : `${url}/v1`;
  }

  private toCertError(ref: string, err: unknown, what?: string): CertificateError {
    if (err instanceof CertificateError) return err;
    const status = err instanceof BarbicanHttpError ? err.status : null;
    const detail = `${what ? `${what}: ` : ''}${err instanceof BarbicanHttpError ? err.message : (err as Error).message}`;
    const reason = status === 404 || status === 403 || status === 401 ? 'not_found' : 'unavailable';
    return new CertificateError(reason, ref, detail, { cause: err });
  }
}
