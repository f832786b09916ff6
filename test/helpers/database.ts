// A migrated database for driver tests: SQLite in memory, or a fresh MariaDB database when
// ARGONAUT_TEST_DB=mysql (dropped by close()).
import { randomBytes } from 'node:crypto';
import { Database, dropMysqlDatabase, ensureMysqlDatabase } from '../../common/db/database.ts';
import { MYSQL } from './api.ts';

export async function openTestDatabase(): Promise<{ db: Database; close(): Promise<void> }> {
  let url = 'sqlite::memory:';
  if (MYSQL) {
    url = `${process.env.ARGONAUT_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306'}/argonaut_test_${randomBytes(4).toString('hex')}`;
    await ensureMysqlDatabase(url);
  }
  const db = new Database({ url });
  await db.connect();
  await db.migrate();
  return {
    db,
    async close() {
      await db.close();
      if (MYSQL) await dropMysqlDatabase(url);
    },
  };
}
