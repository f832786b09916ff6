// The `local` certificate manager: certificates (with key and intermediates), CA bundles and CRLs
// that the operator stores with `argonaut cert store`, kept in the `certificate` table sealed under
// certificates.localKey (sealing.ts). A reference is `local://<id>`; it resolves only for the
// project it was stored for (any other project gets not_found, as a Barbican secret without an ACL).
import { randomUUID } from 'node:crypto';
import type { Database, Row } from '../db/database.ts';
import { SealingError, Sealer } from './sealing.ts';
import { CertificateError, type CertContext, type CertificateManager, type TlsCertificate } from './types.ts';
import { buildTlsCertificate, checkCertificateDates, pemBlocks, pemCertificates, readCaCertificate, readCrl, toPem } from './x509.ts';

export const LOCAL_REF_PREFIX = 'local://';
const REF = /^local:\/\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

export type LocalKind = 'certificate' | 'ca' | 'crl';

/** What `cert list` shows: never the material. */
export interface StoredEntry {
  ref: string;
  id: string;
  projectId: string;
  name: string;
  kind: LocalKind;
  notAfter: Date | null;
  createdAt: Date;
}

export type StoreInput =
  | { projectId: string; name: string; kind: 'certificate'; certificate: string; privateKey: string; intermediates?: string | Buffer | null; passphrase?: string | null; allowExpired?: boolean }
  | { projectId: string; name: string; kind: 'ca' | 'crl'; payload: string };

/** Refused input for `store` (bad material, duplicate name); the message is safe to print. */
export class StoreError extends Error {
  override name = 'StoreError';
}

interface Sealed {
  certificate?: string;
  privateKey?: string;
  intermediates?: string[];
  payload?: string;
}

export function localRef(id: string): string {
  return `${LOCAL_REF_PREFIX}${id}`;
}

export function parseLocalRef(ref: string): string | null {
  return REF.exec(ref.trim().toLowerCase())?.[1] ?? null;
}

export class LocalCertificateManager implements CertificateManager {
  readonly driver = 'local';
  private readonly sealer: Sealer;

  constructor(
    private readonly db: Database,
    localKey: string,
  ) {
    this.sealer = new Sealer(localKey);
  }

  /** Validates and stores; returns the new entry (its `ref` is what listeners and pools name). */
  async store(input: StoreInput): Promise<StoredEntry> {
    if (!input.projectId || input.projectId.length > 36) throw new StoreError('a project id (at most 36 characters) is required');
    if (!input.name || input.name.length > 255) throw new StoreError('a name (at most 255 characters) is required');
    const id = randomUUID();
    const ref = localRef(id);
    let content: Sealed;
    let notAfter: Date | null = null;
    try {
      if (input.kind === 'certificate') {
        const cert = buildTlsCertificate(ref, input);
        if (!input.allowExpired) checkCertificateDates(cert, ref);
        content = { certificate: cert.certificate, privateKey: cert.privateKey, intermediates: cert.intermediates };
        notAfter = cert.notAfter;
      } else if (input.kind === 'ca') {
        const certs = pemCertificates(input.payload);
        if (certs.length === 0) throw new StoreError('the CA file holds no PEM certificate');
        for (const pem of certs) readCaCertificate(pem);
        content = { payload: certs.join('') };
      } else {
        readCrl(input.payload);
        content = { payload: pemBlocks(input.payload).filter((b) => b.label === 'X509 CRL').map((b) => toPem(b.der, 'X509 CRL')).join('') };
      }
    } catch (err) {
      if (err instanceof StoreError) throw err;
      if (err instanceof CertificateError) throw new StoreError(err.message.replace(ref, input.name));
      throw new StoreError(`${input.name}: ${input.kind === 'crl' ? 'not a readable PEM CRL' : 'not a readable PEM CA certificate'} (${(err as Error).message})`);
    }
    const model = this.db.models.certificate;
    return this.db.tx(async (t) => {
      const existing = await model.findOne({ where: { project_id: input.projectId, name: input.name }, transaction: t });
      if (existing) throw new StoreError(`project ${input.projectId} already has a certificate named '${input.name}'`);
      const row = {
        id,
        project_id: input.projectId,
        name: input.name,
        kind: input.kind,
        not_after: notAfter,
        key_id: this.sealer.keyId,
        sealed: this.sealer.seal(JSON.stringify(content), aad(id, input.projectId, input.kind)),
        created_at: new Date(),
      };
      await model.create(row, { transaction: t });
      return entry(row);
    });
  }

  async list(projectId?: string): Promise<StoredEntry[]> {
    const rows = (await this.db.read(() =>
      this.db.models.certificate.findAll({
        where: projectId ? { project_id: projectId } : {},
        attributes: ['id', 'project_id', 'name', 'kind', 'not_after', 'created_at'],
        order: [['project_id', 'ASC'], ['name', 'ASC']],
        raw: true,
      }),
    )) as Row[];
    return rows.map(entry);
  }

  /** The entry a reference or a bare id names (any project): for `cert delete`. */
  async find(refOrId: string): Promise<StoredEntry | null> {
    const id = parseLocalRef(refOrId) ?? parseLocalRef(localRef(refOrId));
    if (!id) return null;
    const row = (await this.db.read(() => this.db.models.certificate.findByPk(id, { raw: true }))) as Row | null;
    return row ? entry(row) : null;
  }

  async delete(refOrId: string): Promise<boolean> {
    const found = await this.find(refOrId);
    if (!found) return false;
    return (await this.db.tx((t) => this.db.models.certificate.destroy({ where: { id: found.id }, transaction: t }))) > 0;
  }

  async getCert(ctx: CertContext, ref: string): Promise<TlsCertificate> {
    const { row, content } = await this.open(ctx, ref);
    if (row.kind !== 'certificate' || !content.certificate || !content.privateKey) {
      throw new CertificateError('unreadable', ref, `it holds a ${row.kind === 'ca' ? 'CA bundle' : 'CRL'}, not a certificate with its key`);
    }
    return buildTlsCertificate(ref, { certificate: content.certificate, privateKey: content.privateKey, intermediates: content.intermediates ?? [] });
  }

  /** A CA bundle or CRL; for a certificate entry its certificate (as Octavia's local manager). */
  async getSecret(ctx: CertContext, ref: string): Promise<string> {
    const { content } = await this.open(ctx, ref);
    const text = content.payload ?? content.certificate;
    if (!text) throw new CertificateError('unreadable', ref, 'empty record');
    return text;
  }

  private async open(ctx: CertContext, ref: string): Promise<{ row: Row; content: Sealed }> {
    const id = parseLocalRef(ref);
    if (!id) throw new CertificateError('not_found', ref, 'not a local:// reference');
    const row = (await this.db.read(() => this.db.models.certificate.findByPk(id, { raw: true }))) as Row | null;
    if (!row || !ctx.projectId || row.project_id !== ctx.projectId) throw new CertificateError('not_found', ref);
    if (row.key_id !== this.sealer.keyId) {
      throw new CertificateError('unavailable', ref, `sealed with another certificates.localKey (key id ${row.key_id}; this one is ${this.sealer.keyId})`);
    }
    try {
      return { row, content: JSON.parse(this.sealer.open(row.sealed, aad(row.id, row.project_id, row.kind))) as Sealed };
    } catch (err) {
      throw new CertificateError('unavailable', ref, err instanceof SealingError ? err.message : 'unreadable record', { cause: err });
    }
  }
}

function aad(id: string, projectId: string, kind: string): string {
  return `argonaut-certificate|${id}|${projectId}|${kind}`;
}

function entry(row: Row): StoredEntry {
  return {
    ref: localRef(row.id),
    id: row.id,
    projectId: row.project_id,
    name: row.name,
    kind: row.kind,
    notAfter: row.not_after ? new Date(row.not_after) : null,
    createdAt: new Date(row.created_at),
  };
}
