// Migration 0002: the configuration each amphora was last given, kept so that an amphora that
// (re)starts fetches exactly what the controller last pushed to it; amphora.compute_id widened to
// 64 characters (the process compute driver's ids are `process:<pid>:<amphoraId>`). Frozen: never edit.
import type { QueryInterface } from 'sequelize';
import { date, int, ref, str } from '../common/db/columns.ts';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  // TEXT stops at 64 KiB on MariaDB; a large load balancer's document needs more (SQLite has one TEXT).
  const documentType = qi.sequelize.getDialect() === 'mysql' ? 'MEDIUMTEXT' : 'TEXT';
  await qi.createTable('amphora_config', {
    amphora_id: { ...ref(false), primaryKey: true },
    config_version: int(false),
    document: { type: documentType, allowNull: false },
    updated_at: date(false),
  } as never);
  await qi.changeColumn('amphora', 'compute_id', str(64));
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.changeColumn('amphora', 'compute_id', str(36));
  await qi.dropTable('amphora_config');
}
