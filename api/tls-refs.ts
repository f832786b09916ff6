// TLS certificate references of listeners and pools, validated through the certificate manager as
// Octavia's API validates them (controllers/base.py _validate_tls_refs and
// _validate_client_ca_and_crl_refs):
//  - certificate refs (default_tls_container_ref, sni_container_refs, pool tls_container_ref): every
//    one is fetched; those that fail are named together in 400 "Could not retrieve certificate:
//    ['<ref>', ...]", except an unreadable PKCS#12 bundle, which is its own 400 at once;
//  - a CA ref (client_ca_tls_container_ref, ca_tls_container_ref) and its optional CRL ref: fetched
//    (a failure is the same 400 naming them), then the CA must be an X509 PEM certificate and the CRL
//    a PEM CRL signed by it, with Octavia's three messages.
// Argonaut is stricter than Octavia in one respect: a certificate whose key does not match, or that
// has expired (certificates.rejectExpired), fails like an unreadable one; the API log says why.
//
// The references are resolved *before* the request's database transaction (prefetch: Barbican is a
// remote service, and the local store reads the database, which SQLite cannot do inside a
// transaction of the same connection) and judged inside it, where Octavia judges them, so that the
// order of the checks and therefore the error a client sees stay Octavia's.
import { createCertificateManager, type CertContext, type CertificateManager, type TlsCertificate } from '../common/certificates/index.ts';
import { CertificateError } from '../common/certificates/types.ts';
import { checkCertificateDates, crlSignedBy, readCaCertificate, readCrl } from '../common/certificates/x509.ts';
import type { Row } from '../common/db/database.ts';
import { ApiError, errors, pyStr } from './errors.ts';
import type { Body } from './schema/object.ts';
import type { Ctx, Services } from './services.ts';

const managers = new WeakMap<Services, Promise<CertificateManager | null>>();
const overrides = new WeakMap<Services, CertificateManager | null>();

/**
 * The certificate manager of this API process (certificates.manager), null when none is configured.
 * Made on first use: a request without references never needs it.
 */
export function certificateManager(services: Services): Promise<CertificateManager | null> {
  if (overrides.has(services)) return Promise.resolve(overrides.get(services)!);
  let m = managers.get(services);
  if (!m) {
    m = createCertificateManager(services.config, services.db, services.log);
    m.catch(() => managers.delete(services));
    managers.set(services, m);
  }
  return m;
}

/** Whether references are resolved at all (certificates.manager is not none). */
export function certificatesConfigured(services: Services): boolean {
  if (overrides.has(services)) return overrides.get(services) !== null;
  return services.config.certificates.manager !== 'none';
}

/** Replaces the certificate manager (tests: a Barbican manager against a fake server). */
export function setCertificateManager(services: Services, manager: CertificateManager | null): void {
  overrides.set(services, manager);
}

/** The message of the refusal when no certificate manager is configured (before issue 4's managers). */
export const NO_MANAGER = 'TLS certificate references cannot be resolved: no certificate manager is configured in this deployment.';

export interface RefPlan {
  /** Refs fetched as certificates with keys (get_cert). */
  certs: Array<string | null | undefined>;
  /** Refs fetched as secrets: CA bundles and CRLs (get_secret). */
  secrets: Array<string | null | undefined>;
}

type Outcome<T> = { ok: T } | { error: CertificateError };

export class TlsRefs {
  private constructor(
    /** Whether a certificate manager is configured (otherwise references are refused with NO_MANAGER). */
    readonly configured: boolean,
    private readonly services: Services,
    private readonly certs: Map<string, Outcome<TlsCertificate>>,
    private readonly secrets: Map<string, Outcome<string>>,
  ) {}

  /** Resolves every ref of `plan` for the project `projectId` with the caller's token. */
  static async prefetch(ctx: Ctx, projectId: string | null, plan: RefPlan): Promise<TlsRefs> {
    const { services } = ctx.state;
    const certs = new Map<string, Outcome<TlsCertificate>>();
    const secrets = new Map<string, Outcome<string>>();
    const refs = new TlsRefs(certificatesConfigured(services), services, certs, secrets);
    if (!refs.configured || !planHasRefs(plan)) return refs;
    const manager = await certificateManager(services);
    if (!manager) return refs;
    const token = ctx.get('X-Auth-Token');
    const cctx: CertContext = { projectId, authToken: services.config.api.authStrategy === 'keystone' && token ? token : null };
    const settle = async <T>(fetchIt: () => Promise<T>, ref: string): Promise<Outcome<T>> => {
      try {
        return { ok: await fetchIt() };
      } catch (err) {
        if (err instanceof CertificateError) return { error: err };
        services.log.error({ event: 'tls.ref.error', ref, err: { name: (err as Error).name, message: (err as Error).message } }, 'certificate manager failed');
        return { error: new CertificateError('unavailable', ref, (err as Error).message) };
      }
    };
    const unique = (list: Array<string | null | undefined>) => [...new Set(list.filter((r): r is string => typeof r === 'string' && r !== ''))];
    await Promise.all([
      ...unique(plan.certs).map(async (ref) => certs.set(ref, await settle(() => manager.getCert(cctx, ref), ref))),
      ...unique(plan.secrets).map(async (ref) => secrets.set(ref, await settle(() => manager.getSecret(cctx, ref), ref))),
    ]);
    return refs;
  }

  /** No manager configured, nothing fetched (callers keep the NO_MANAGER refusal). */
  static none(services: Services): TlsRefs {
    return new TlsRefs(false, services, new Map(), new Map());
  }

  /** The fetched certificate of a ref (after checkCertRefs passed). */
  certificate(ref: string): TlsCertificate | undefined {
    const o = this.certs.get(ref);
    return o && 'ok' in o ? o.ok : undefined;
  }

  /** Octavia's _validate_tls_refs. */
  checkCertRefs(refs: Array<string | null | undefined>): void {
    const bad: string[] = [];
    for (const ref of refs) {
      if (!ref) continue;
      const outcome = this.certs.get(ref) ?? { error: new CertificateError('unavailable', ref, 'not resolved before the transaction') };
      let error = 'error' in outcome ? outcome.error : null;
      if (!error && this.services.config.certificates.rejectExpired) {
        try {
          checkCertificateDates((outcome as { ok: TlsCertificate }).ok, ref);
        } catch (err) {
          error = err as CertificateError;
        }
      }
      if (!error) continue;
      this.logRejected(error);
      if (error.reason === 'unreadable_pkcs12') {
        throw new ApiError(
          400,
          `The PKCS12 bundle is unreadable. Please check the PKCS12 bundle validity. In addition, make sure it does not require a pass phrase. Error: ${error.detail ?? 'unreadable'}`,
        );
      }
      bad.push(ref);
    }
    if (bad.length) throw retrievalError(bad);
  }

  /** Octavia's _validate_client_ca_and_crl_refs (listeners' client CA and CRL, pools' CA and CRL). */
  checkCaAndCrl(caRef: string, crlRef: string | null | undefined): void {
    const bad: string[] = [];
    const get = (ref: string) => {
      const o = this.secrets.get(ref) ?? { error: new CertificateError('unavailable', ref, 'not resolved before the transaction') };
      if ('error' in o) {
        this.logRejected(o.error);
        bad.push(ref);
        return null;
      }
      return o.ok;
    };
    const caPem = get(caRef);
    const crlPem = crlRef ? get(crlRef) : null;
    if (bad.length) throw retrievalError(bad);
    let ca;
    try {
      ca = readCaCertificate(caPem!);
    } catch (err) {
      throw errors.validation(`The client authentication CA certificate is invalid. It must be a valid x509 PEM format certificate. Error: ${(err as Error).message}`);
    }
    if (crlPem) {
      let crl;
      try {
        crl = readCrl(crlPem);
      } catch (err) {
        throw errors.validation(
          `The client authentication certificate revocation list is invalid. It must be a valid x509 PEM format certificate revocation list. Error: ${(err as Error).message}`,
        );
      }
      if (!crlSignedBy(crl, ca)) throw errors.validation('The CRL specified is not valid for client certificate authority reference supplied.');
    }
  }

  private logRejected(error: CertificateError): void {
    this.services.log.info({ event: 'tls.ref.rejected', ref: error.ref, reason: error.reason, detail: error.detail ?? null }, 'certificate reference refused');
  }
}

/** Octavia's CertificateRetrievalException: the refs as a Python list. */
function retrievalError(refs: string[]): ApiError {
  return new ApiError(400, `Could not retrieve certificate: ${pyStr(refs)}`);
}

const truthy = (v: unknown): v is string => typeof v === 'string' && v !== '';

/** Refs a listener create validates (only TLS-offload protocols can carry them). */
export function listenerCreatePlan(body: Body): RefPlan {
  if (body.protocol !== 'TERMINATED_HTTPS' && body.protocol !== 'PROMETHEUS') return { certs: [], secrets: [] };
  return {
    certs: [...((body.sni_container_refs as string[] | null) ?? []), body.default_tls_container_ref as string | null],
    secrets: [body.client_ca_tls_container_ref as string | null, body.client_crl_container_ref as string | null],
  };
}

/** The CA and CRL a listener PUT validates (Octavia: the body's if set, else the stored ones). */
export function listenerUpdateCaCrl(body: Body, current: Row): { ca: string | null; crl: string | null } {
  return {
    ca: truthy(body.client_ca_tls_container_ref) ? body.client_ca_tls_container_ref : (current.client_ca_tls_container_ref ?? null),
    crl: truthy(body.client_crl_container_ref) ? body.client_crl_container_ref : (current.client_crl_container_ref ?? null),
  };
}

export function listenerUpdatePlan(body: Body, current: Row): RefPlan {
  const { ca, crl } = listenerUpdateCaCrl(body, current);
  return { certs: [...((body.sni_container_refs as string[] | null) ?? []), body.default_tls_container_ref as string | null], secrets: [ca, crl] };
}

export function poolCreatePlan(body: Body): RefPlan {
  return {
    certs: [body.tls_container_ref as string | null],
    secrets: [body.ca_tls_container_ref as string | null, body.crl_container_ref as string | null],
  };
}

/** The CA and CRL a pool PUT validates (Octavia's pool PUT: body first, stored values when unset). */
export function poolUpdateCaCrl(body: Body, current: Row): { ca: string | null; crl: string | null } {
  const crl = 'crl_container_ref' in body ? (truthy(body.crl_container_ref) ? body.crl_container_ref : null) : (current.crl_container_ref ?? null);
  const ca = 'ca_tls_container_ref' in body ? (truthy(body.ca_tls_container_ref) ? body.ca_tls_container_ref : null) : (current.ca_tls_container_ref ?? null);
  return { ca, crl };
}

export function poolUpdatePlan(body: Body, current: Row): RefPlan {
  const { ca, crl } = poolUpdateCaCrl(body, current);
  return { certs: [body.tls_container_ref as string | null], secrets: [ca, crl] };
}

/** Refs of a load balancer graph create: its listeners and every full pool definition. */
export function graphPlan(body: Body): RefPlan {
  const plan: RefPlan = { certs: [], secrets: [] };
  const add = (p: RefPlan) => {
    plan.certs.push(...p.certs);
    plan.secrets.push(...p.secrets);
  };
  const pools: Body[] = [...((body.pools as Body[] | null) ?? [])];
  for (const l of (body.listeners as Body[] | null) ?? []) {
    add(listenerCreatePlan(l));
    if (l.default_pool) pools.push(l.default_pool as Body);
    for (const p of (l.l7policies as Body[] | null) ?? []) if (p.redirect_pool) pools.push(p.redirect_pool as Body);
  }
  for (const p of pools) add(poolCreatePlan(p));
  return plan;
}

/** Whether a plan names any ref (nothing to fetch otherwise). */
export function planHasRefs(plan: RefPlan): boolean {
  return [...plan.certs, ...plan.secrets].some(truthy);
}

/** Prefetches a plan (nothing is fetched when it names no ref). */
export async function resolveRefs(ctx: Ctx, projectId: string | null, plan: RefPlan): Promise<TlsRefs> {
  return TlsRefs.prefetch(ctx, projectId, plan);
}
