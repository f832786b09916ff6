// The TLS material of a load balancer's listeners and pools: their certificate references resolved
// through the certificate manager into what the AmphoraConfig carries (common/amphora-config/schema.ts:
// ListenerTlsSchema, PoolTlsSchema, TlsCertificateSchema). Asynchronous (Barbican, the database), so it
// runs before the pure renderAmphoraConfig, which takes its result.
//
// References are resolved for the object's own project, without a user token (the API granted the
// service user access when it accepted them), as Octavia's load_certificates_data does. Expiry is not
// judged here: an amphora keeps serving the certificate it was given. Any other failure throws
// TlsMaterialError naming the object and the reference (never material), and the operation fails as
// Octavia's CertificateRetrievalException fails the flow.
import type { ListenerTlsInput, PoolTlsInput, TlsCertificateInput, TlsVersionName } from '../../common/amphora-config/index.ts';
import type { CertificateManager, TlsCertificate } from '../../common/certificates/index.ts';
import { CertificateError } from '../../common/certificates/index.ts';
import type { Row } from '../../common/db/database.ts';
import type { LoadBalancerTree } from '../controller/completion.ts';

export interface TreeTlsMaterial {
  /** By listener id: TERMINATED_HTTPS listeners (and PROMETHEUS listeners with a certificate). */
  listeners: Map<string, ListenerTlsInput>;
  /** By pool id: pools with tls_enabled. */
  pools: Map<string, PoolTlsInput>;
}

export class TlsMaterialError extends Error {
  override name = 'TlsMaterialError';
  constructor(
    readonly objectKind: 'listener' | 'pool',
    readonly objectId: string,
    readonly error: CertificateError,
  ) {
    super(`${objectKind} ${objectId}: ${error.message}`, { cause: error });
  }
}

const live = (rows: Row[]) => rows.filter((r) => r.provisioning_status !== 'PENDING_DELETE' && r.provisioning_status !== 'DELETED');
const json = <T>(text: unknown, fallback: T): T => (typeof text === 'string' && text !== '' ? ((JSON.parse(text) as T) ?? fallback) : fallback);

/** The AmphoraConfig form of a certificate: the reference (informational) and PEM material. */
export function toConfigCertificate(ref: string, cert: TlsCertificate): TlsCertificateInput {
  return { ref: ref.length <= 255 ? ref : null, certificate: cert.certificate, privateKey: cert.privateKey, intermediates: cert.intermediates };
}

/** Resolves every TLS reference of the tree; empty maps when no manager is configured or nothing uses TLS. */
export async function resolveTreeTls(manager: CertificateManager | null, tree: LoadBalancerTree): Promise<TreeTlsMaterial> {
  const out: TreeTlsMaterial = { listeners: new Map(), pools: new Map() };
  if (!manager) return out;
  const jobs: Promise<void>[] = [];
  for (const l of live(tree.listeners)) {
    const sni = json<string[]>(l.sni_container_refs, []);
    const terminates = l.protocol === 'TERMINATED_HTTPS' || (l.protocol === 'PROMETHEUS' && (l.default_tls_container_ref || sni.length));
    if (!terminates) continue;
    jobs.push(resolveListener(manager, l, sni).then((tls) => void out.listeners.set(l.id, tls)));
  }
  for (const p of live(tree.pools)) {
    if (!p.tls_enabled) continue;
    jobs.push(resolvePool(manager, p).then((tls) => void out.pools.set(p.id, tls)));
  }
  await Promise.all(jobs);
  return out;
}

async function resolveListener(manager: CertificateManager, l: Row, sni: string[]): Promise<ListenerTlsInput> {
  const ctx = { projectId: l.project_id as string };
  const wrap = <T>(p: Promise<T>) => p.catch((err) => Promise.reject(asMaterialError('listener', l.id, err)));
  const cert = async (ref: string) => toConfigCertificate(ref, await wrap(manager.getCert(ctx, ref)));
  const [defaultCertificate, sniCertificates, clientCa, clientCrl] = await Promise.all([
    l.default_tls_container_ref ? cert(l.default_tls_container_ref) : Promise.resolve(null),
    Promise.all(sni.map(cert)),
    l.client_ca_tls_container_ref ? wrap(manager.getSecret(ctx, l.client_ca_tls_container_ref)) : Promise.resolve(null),
    l.client_crl_container_ref ? wrap(manager.getSecret(ctx, l.client_crl_container_ref)) : Promise.resolve(null),
  ]);
  const tls: ListenerTlsInput = {
    defaultCertificate,
    sniCertificates,
    clientAuthentication: (l.client_authentication ?? 'NONE') as 'NONE' | 'OPTIONAL' | 'MANDATORY',
    clientCa,
    clientCrl,
    ciphers: l.tls_ciphers ?? null,
  };
  const versions = json<TlsVersionName[] | null>(l.tls_versions, null);
  if (versions) tls.versions = versions;
  const alpn = json<NonNullable<ListenerTlsInput['alpnProtocols']> | null>(l.alpn_protocols, null);
  if (alpn) tls.alpnProtocols = alpn;
  return tls;
}

async function resolvePool(manager: CertificateManager, p: Row): Promise<PoolTlsInput> {
  const ctx = { projectId: p.project_id as string };
  const wrap = <T>(promise: Promise<T>) => promise.catch((err) => Promise.reject(asMaterialError('pool', p.id, err)));
  const [clientCertificate, ca, crl] = await Promise.all([
    p.tls_container_ref ? wrap(manager.getCert(ctx, p.tls_container_ref)).then((c) => toConfigCertificate(p.tls_container_ref, c)) : Promise.resolve(null),
    p.ca_tls_container_ref ? wrap(manager.getSecret(ctx, p.ca_tls_container_ref)) : Promise.resolve(null),
    p.crl_container_ref ? wrap(manager.getSecret(ctx, p.crl_container_ref)) : Promise.resolve(null),
  ]);
  const tls: PoolTlsInput = { clientCertificate, ca, crl, ciphers: p.tls_ciphers ?? null };
  const versions = json<TlsVersionName[] | null>(p.tls_versions, null);
  if (versions) tls.versions = versions;
  const alpn = json<NonNullable<PoolTlsInput['alpnProtocols']> | null>(p.alpn_protocols, null);
  if (alpn) tls.alpnProtocols = alpn;
  return tls;
}

function asMaterialError(kind: 'listener' | 'pool', id: string, err: unknown): TlsMaterialError {
  if (err instanceof TlsMaterialError) return err;
  const certErr = err instanceof CertificateError ? err : new CertificateError('unavailable', '?', (err as Error).message, { cause: err });
  return new TlsMaterialError(kind, id, certErr);
}
