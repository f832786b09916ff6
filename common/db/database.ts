// The database handle: one Sequelize instance, the models, migrations, and transactions.
// SQLite (the embedded default) has a single connection, so its transactions and reads are
// serialised here; MariaDB/MySQL run them concurrently and rely on row locks.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { readdirSync } from 'node:fs';
import { QueryTypes, Sequelize, Transaction, type ModelStatic, type Model } from 'sequelize';
import { SequelizeStorage, Umzug } from 'umzug';
import { tables, type TableName } from './tables.ts';

export type Row = Record<string, any>;
export type Models = Record<TableName, ModelStatic<Model>>;

const migrationsDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'migrations');

export interface DatabaseOptions {
  url: string;
  poolMax?: number;
  logging?: (sql: string) => void;
}

export class Database {
  readonly sequelize: Sequelize;
  readonly models: Models;
  readonly dialect: 'sqlite' | 'mysql';
  private serial: Promise<unknown> = Promise.resolve();

  constructor(opts: DatabaseOptions) {
    this.sequelize = createSequelize(opts);
    this.dialect = this.sequelize.getDialect() === 'sqlite' ? 'sqlite' : 'mysql';
    const models = {} as Models;
    for (const [name, attributes] of Object.entries(tables)) {
      models[name as TableName] = this.sequelize.define(name, attributes as never, {
        tableName: name,
        timestamps: false,
        freezeTableName: true,
      });
    }
    this.models = models;
  }

  async connect(): Promise<void> {
    await this.sequelize.authenticate();
    if (this.dialect === 'sqlite') {
      await this.sequelize.query('PRAGMA journal_mode=WAL');
      await this.sequelize.query('PRAGMA busy_timeout=5000');
    }
  }

  /** Applies every pending migration; returns the names applied. */
  async migrate(): Promise<string[]> {
    const umzug = this.migrator();
    const applied = await umzug.up();
    return applied.map((m) => m.name);
  }

  async pendingMigrations(): Promise<string[]> {
    return (await this.migrator().pending()).map((m) => m.name);
  }

  /** Runs fn in one transaction: everything it wrote is committed together or not at all. */
  async tx<T>(fn: (t: Transaction) => Promise<T>): Promise<T> {
    return this.exclusive(() => this.sequelize.transaction((t) => fn(t)));
  }

  /** Runs a read; on SQLite it waits for running transactions so it never sees half of one. */
  async read<T>(fn: () => Promise<T>): Promise<T> {
    return this.dialect === 'sqlite' ? this.exclusive(fn) : fn();
  }

  /**
   * One statement with `?` bound parameters, past the model layer: on the hot paths (the API's creates,
   * the worker's completion) Sequelize's per-statement work costs several times the round trip.
   * Rows come back as the models' raw queries return them (MariaDB: the same connection type
   * parsers; SQLite: stored values). In `t` when given; on SQLite, reads go inside read().
   */
  async select<T extends Row = Row>(sql: string, params: readonly unknown[], t?: Transaction): Promise<T[]> {
    if (this.dialect === 'sqlite') return this.sequelize.query<T>(sql, { replacements: [...params], type: QueryTypes.SELECT, transaction: t });
    return (await this.onConnection(t, (conn) => mysqlQuery(conn, sql, params))) as T[];
  }

  /** A statement that returns no rows (INSERT, UPDATE, DELETE), as select() runs it. */
  async run(sql: string, params: readonly unknown[], t?: Transaction): Promise<void> {
    if (this.dialect === 'sqlite') {
      await this.sequelize.query(sql, { replacements: [...params], type: QueryTypes.RAW, transaction: t });
      return;
    }
    await this.onConnection(t, (conn) => mysqlQuery(conn, sql, params));
  }

  /** Inserts one row (its own columns; the others take their defaults), as run() does. */
  async insert(table: TableName, row: Row, t?: Transaction): Promise<void> {
    await this.insertRow(table, row, '', t);
  }

  /**
   * Inserts one row unless one with the same primary or unique key exists (then nothing changes),
   * as insert() does. On MariaDB this takes no gap lock, where a locking read of an absent key
   * followed by an insert does (two such transactions on keys in the same gap deadlock).
   */
  async insertIfAbsent(table: TableName, row: Row, t?: Transaction): Promise<void> {
    const first = `\`${Object.keys(row)[0]}\``;
    await this.insertRow(table, row, this.dialect === 'mysql' ? ` ON DUPLICATE KEY UPDATE ${first} = ${first}` : ' ON CONFLICT DO NOTHING', t);
  }

  /** INSERT of the row's own columns, with `suffix` after the values. */
  private async insertRow(table: TableName, row: Row, suffix: string, t?: Transaction): Promise<void> {
    const columns = Object.keys(row);
    const sql = `INSERT INTO \`${table}\` (${columns.map((c) => `\`${c}\``).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})${suffix}`;
    await this.run(sql, columns.map((c) => row[c]), t);
  }

  /** ` FOR UPDATE` on MariaDB, for select(); SQLite transactions are already exclusive. */
  get forUpdate(): string {
    return this.dialect === 'mysql' ? ' FOR UPDATE' : '';
  }

  /** Row lock on MariaDB; SQLite transactions are already exclusive. */
  get lock(): (typeof Transaction.LOCK)[keyof typeof Transaction.LOCK] | undefined {
    return this.dialect === 'mysql' ? Transaction.LOCK.UPDATE : undefined;
  }

  async close(): Promise<void> {
    await this.sequelize.close();
  }

  /** MariaDB: the transaction's connection, or one from the pool for the statement. */
  private async onConnection<T>(t: Transaction | undefined, fn: (conn: MysqlConnection) => Promise<T>): Promise<T> {
    if (t) return fn((t as unknown as { connection: MysqlConnection }).connection);
    const manager = this.sequelize.connectionManager;
    const conn = (await manager.getConnection({ type: 'write' })) as MysqlConnection;
    try {
      return await fn(conn);
    } finally {
      manager.releaseConnection(conn);
    }
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.dialect !== 'sqlite') return fn();
    const run = this.serial.then(fn, fn);
    this.serial = run.catch(() => undefined);
    return run;
  }

  private migrator(): Umzug<any> {
    return new Umzug({
      migrations: readdirSync(migrationsDir)
        .filter((f) => /^\d{4}-.*\.ts$/.test(f))
        .sort()
        .map((file) => ({
          name: file.replace(/\.ts$/, ''),
          up: async ({ context }: { context: unknown }) => (await import(pathToFileURL(join(migrationsDir, file)).href)).up({ context }),
          down: async ({ context }: { context: unknown }) => (await import(pathToFileURL(join(migrationsDir, file)).href)).down({ context }),
        })),
      context: this.sequelize.getQueryInterface(),
      storage: new SequelizeStorage({ sequelize: this.sequelize, tableName: 'argonaut_migrations' }),
      logger: undefined,
    });
  }
}

/** The part of a mysql2 connection (as Sequelize's pool hands it out) that select() and run() use. */
interface MysqlConnection {
  query(sql: string, values: unknown[], callback: (err: Error | null, result: unknown) => void): unknown;
}

/** mysql2 escapes the values client-side, as Sequelize's own queries do (dates in the connection's UTC). */
function mysqlQuery(conn: MysqlConnection, sql: string, params: readonly unknown[]): Promise<unknown> {
  return new Promise((resolve, reject) => {
    conn.query(sql, [...params], (err, result) => (err ? reject(err) : resolve(result)));
  });
}

function createSequelize(opts: DatabaseOptions): Sequelize {
  const logging = opts.logging ?? false;
  if (opts.url.startsWith('sqlite:')) {
    const storage = opts.url.slice('sqlite:'.length) || ':memory:';
    if (storage !== ':memory:') mkdirSync(dirname(storage), { recursive: true });
    return new Sequelize({ dialect: 'sqlite', storage, logging, pool: { max: 1, min: 1 } });
  }
  if (opts.url.startsWith('mysql://') || opts.url.startsWith('mariadb://')) {
    const url = opts.url.replace(/^mariadb:/, 'mysql:');
    return new Sequelize(url, {
      dialect: 'mysql',
      logging,
      pool: { max: opts.poolMax ?? 10, min: 0, idle: 10_000 },
      dialectOptions: { dateStrings: false, supportBigNumbers: true, bigNumberStrings: false },
      timezone: '+00:00',
    });
  }
  throw new Error(`database.url must start with sqlite: or mysql:// (got ${opts.url.split(':')[0]}:)`);
}

/** Creates the MariaDB database named in a mysql:// URL if it does not exist (tests, first start). */
export async function ensureMysqlDatabase(url: string): Promise<void> {
  await onServer(url, (name) => `CREATE DATABASE IF NOT EXISTS \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
}

export async function dropMysqlDatabase(url: string): Promise<void> {
  await onServer(url, (name) => `DROP DATABASE IF EXISTS \`${name}\``);
}

/** Runs one statement about the URL's database on its server (connected without a database). */
async function onServer(url: string, statement: (name: string) => string): Promise<void> {
  const parsed = new URL(url.replace(/^mariadb:/, 'mysql:'));
  const name = parsed.pathname.replace(/^\//, '');
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`unsafe database name: ${name}`);
  parsed.pathname = '/';
  const admin = new Sequelize(parsed.toString(), { dialect: 'mysql', logging: false });
  try {
    await admin.query(statement(name));
  } finally {
    await admin.close();
  }
}
