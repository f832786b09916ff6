// Migration 0003: the local certificate manager's store (common/certificates/local.ts): one row per
// certificate (with its key and intermediates), CA bundle or CRL that an operator stored with
// `argonaut cert store`, sealed with AES-256-GCM under certificates.localKey. Only the name, the
// project, the kind, the expiry and the key's id are in clear. Frozen: never edit.
import type { QueryInterface } from 'sequelize';
import { date, id, str } from '../common/db/columns.ts';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  // TEXT stops at 64 KiB on MariaDB; a CA bundle can be larger (SQLite has one TEXT).
  const sealedType = qi.sequelize.getDialect() === 'mysql' ? 'MEDIUMTEXT' : 'TEXT';
  await qi.createTable('certificate', {
    id: id(),
    project_id: str(36, false),
    name: str(255, false),
    kind: str(16, false),
    not_after: date(),
    key_id: str(16, false),
    sealed: { type: sealedType, allowNull: false },
    created_at: date(false),
  } as never);
  await qi.addIndex('certificate', ['project_id', 'name'], { unique: true });
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.dropTable('certificate');
}
