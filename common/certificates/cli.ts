// `argonaut cert`: the operator's side of the local certificate manager. Stores certificates (with
// key and intermediates), CA bundles and CRLs for a project, sealed in the database under
// certificates.localKey; lists them (never their material); deletes them (not while a listener or
// pool uses them, unless --force). Prints nothing secret.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Op } from 'sequelize';
import type { ArgonautConfig } from '../config.ts';
import type { Database, Row } from '../db/database.ts';
import { LocalCertificateManager, StoreError, type StoredEntry, type StoreInput } from './local.ts';

export const CERT_HELP = `Usage: argonaut cert <store|list|delete> [options] [--config FILE]

Certificates for the local certificate manager (certificates.manager: local). Everything is
stored in the database encrypted with certificates.localKey; listeners and pools name an entry
by the reference store prints (local://<id>), and only load balancers of its project can use it.

  cert store --project ID --name NAME --cert FILE --key FILE [--intermediates FILE]
             [--passphrase-file FILE] [--allow-expired]
      A certificate and its private key (PEM; an encrypted key needs --passphrase-file and is
      stored decrypted, inside the encrypted record), with optional intermediates (PEM or PKCS7).
      For default_tls_container_ref, sni_container_refs and a pool's tls_container_ref.
  cert store --project ID --name NAME --ca FILE
      A CA bundle (PEM): client_ca_tls_container_ref, a pool's ca_tls_container_ref.
  cert store --project ID --name NAME --crl FILE
      A certificate revocation list (PEM): client_crl_container_ref, a pool's crl_container_ref.
  cert list [--project ID] [--json]
      Reference, project, name, kind and expiry of each entry (never the material).
  cert delete REF [--force]
      Deletes an entry (REF: local://<id> or the id); refused while a listener or pool names it,
      unless --force.

Options:
  -c, --config FILE   YAML configuration (default: $ARGONAUT_CONFIG); needs certificates.localKey.
  -h, --help          Show this help.
`;

export interface CertIo {
  out(text: string): void;
  err(text: string): void;
}

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
  project: { type: 'string' },
  name: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  intermediates: { type: 'string' },
  'passphrase-file': { type: 'string' },
  'allow-expired': { type: 'boolean' },
  ca: { type: 'string' },
  crl: { type: 'string' },
  json: { type: 'boolean' },
  force: { type: 'boolean' },
} as const;

export type CertArgs = ReturnType<typeof parseCertArgs>;

/** Parses the arguments after `cert`; throws TypeError (node's) on unknown options. */
export function parseCertArgs(args: string[]) {
  return parseArgs({ args, allowPositionals: true, options: OPTIONS });
}

/** Runs `argonaut cert ...` against an open, migrated database; returns the exit code. */
export async function runCert(parsed: CertArgs, config: ArgonautConfig, db: Database, io: CertIo): Promise<number> {
  const { values, positionals } = parsed;
  const [action, ...rest] = positionals;
  if (!config.certificates.localKey) {
    io.err('argonaut cert: certificates.localKey is not set in the configuration (at least 32 characters; it encrypts the store)\n');
    return 2;
  }
  const manager = new LocalCertificateManager(db, config.certificates.localKey);
  const read = (file: string, what: string): string => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new StoreError(`cannot read the ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  try {
    if (action === 'store') {
      if (!values.project || !values.name) return usage(io, 'cert store needs --project and --name');
      const kinds = [values.cert || values.key ? 'certificate' : null, values.ca ? 'ca' : null, values.crl ? 'crl' : null].filter(Boolean);
      if (kinds.length !== 1) return usage(io, 'cert store needs exactly one of --cert/--key, --ca or --crl');
      let input: StoreInput;
      if (values.ca || values.crl) {
        input = { projectId: values.project, name: values.name, kind: values.ca ? 'ca' : 'crl', payload: read((values.ca ?? values.crl)!, values.ca ? 'CA' : 'CRL') };
      } else {
        if (!values.cert || !values.key) return usage(io, 'cert store needs both --cert and --key');
        const passphrase = values['passphrase-file'] ? read(values['passphrase-file'], 'passphrase').replace(/\r?\n$/, '') : null;
        input = {
          projectId: values.project,
          name: values.name,
          kind: 'certificate',
          certificate: read(values.cert, 'certificate'),
          privateKey: read(values.key, 'key'),
          intermediates: values.intermediates ? readFileSync(values.intermediates) : null,
          passphrase,
          allowExpired: values['allow-expired'] ?? false,
        };
      }
      const stored = await manager.store(input);
      io.out(`${stored.ref}\n`);
      return 0;
    }
    if (action === 'list') {
      const entries = await manager.list(values.project);
      if (values.json) io.out(`${JSON.stringify(entries.map(view), null, 2)}\n`);
      else io.out(table(entries));
      return 0;
    }
    if (action === 'delete') {
      const target = rest[0];
      if (!target) return usage(io, 'cert delete needs a reference');
      const entry = await manager.find(target);
      if (!entry) {
        io.err(`argonaut cert: no certificate ${target}\n`);
        return 1;
      }
      const users = await usersOf(db, entry.ref);
      if (users.length && !values.force) {
        io.err(`argonaut cert: ${entry.ref} is in use by ${users.join(', ')} (--force deletes it anyway)\n`);
        return 1;
      }
      await manager.delete(entry.ref);
      io.out(`deleted ${entry.ref}\n`);
      return 0;
    }
    return usage(io, action ? `unknown cert action '${action}'` : 'cert needs an action');
  } catch (err) {
    if (err instanceof StoreError) {
      io.err(`argonaut cert: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

function usage(io: CertIo, message: string): number {
  io.err(`argonaut cert: ${message}\n\n${CERT_HELP}`);
  return 2;
}

function view(e: StoredEntry) {
  return { ref: e.ref, project_id: e.projectId, name: e.name, kind: e.kind, not_after: e.notAfter?.toISOString() ?? null, created_at: e.createdAt.toISOString() };
}

function table(entries: StoredEntry[]): string {
  const rows = [['REF', 'PROJECT', 'NAME', 'KIND', 'NOT AFTER'], ...entries.map((e) => [e.ref, e.projectId, e.name, e.kind, e.notAfter?.toISOString() ?? '-'])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

/** Listeners and pools (not deleted) naming a reference. */
async function usersOf(db: Database, ref: string): Promise<string[]> {
  const live = { provisioning_status: { [Op.ne]: 'DELETED' } };
  const listeners = (await db.read(() =>
    db.models.listener.findAll({
      where: {
        ...live,
        [Op.or]: [
          { default_tls_container_ref: ref },
          { client_ca_tls_container_ref: ref },
          { client_crl_container_ref: ref },
          { sni_container_refs: { [Op.like]: `%"${ref}"%` } },
        ],
      },
      attributes: ['id'],
      raw: true,
    }),
  )) as Row[];
  const pools = (await db.read(() =>
    db.models.pool.findAll({
      where: { ...live, [Op.or]: [{ tls_container_ref: ref }, { ca_tls_container_ref: ref }, { crl_container_ref: ref }] },
      attributes: ['id'],
      raw: true,
    }),
  )) as Row[];
  return [...listeners.map((l) => `listener ${l.id}`), ...pools.map((p) => `pool ${p.id}`)];
}
