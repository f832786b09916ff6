// The database handle: one Sequelize instance, the models, migrations, and transactions.
// SQLite (the embedded default) has a single connection, so its transactions and reads are
// serialised here; MariaDB/MySQL run them concurrently and rely on row locks.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { readdirSync } from 'node:fs';
import { Sequelize, Transaction, type ModelStatic, type Model } from 'sequelize';
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

  /** Row lock on MariaDB; SQLite transactions are already exclusive. */
  get lock(): (typeof Transaction.LOCK)[keyof typeof Transaction.LOCK] | undefined {
    return this.dialect === 'mysql' ? Transaction.LOCK.UPDATE : undefined;
  }

  async close(): Promise<void> {
    await this.sequelize.close();
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
