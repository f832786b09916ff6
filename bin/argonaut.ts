#!/usr/bin/env -S npx tsx
// The argonaut command: `argonaut api` runs the API service (with its controller worker),
// `argonaut migrate` applies database migrations. Every option is in the config file.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile, type ArgonautConfig } from '../common/config.ts';
import { Database, ensureMysqlDatabase } from '../common/db/database.ts';
import { createLogger } from '../common/logging.ts';

const HELP = `Usage: argonaut <command> [--config FILE]

Commands:
  api       Run the Octavia v2 API service (and its controller worker) in this process.
  migrate   Apply pending database migrations and exit.

Options:
  -c, --config FILE   YAML configuration (default: $ARGONAUT_CONFIG, else built-in defaults:
                      SQLite in var/argonaut.sqlite, noauth, 127.0.0.1:9876).
                      See etc/argonaut.example.yaml for every option.
  -h, --help          Show this help.
`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
  });
  const command = positionals[0];
  if (values.help || !command) {
    process.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  let config: ArgonautConfig;
  try {
    config = loadConfigFile(values.config ?? process.env.ARGONAUT_CONFIG);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`argonaut: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger('argonaut', config.logging.level);
  if (command === 'migrate') return migrate(config, log);
  if (command === 'api') return serve(config, log);
  process.stderr.write(`argonaut: unknown command '${command}'\n\n${HELP}`);
  return 2;
}

async function prepareDatabase(config: ArgonautConfig): Promise<Database> {
  if (config.database.url.startsWith('mysql') || config.database.url.startsWith('mariadb')) await ensureMysqlDatabase(config.database.url);
  return new Database({ url: config.database.url, poolMax: config.database.poolMax });
}

async function migrate(config: ArgonautConfig, log: ReturnType<typeof createLogger>): Promise<number> {
  const db = await prepareDatabase(config);
  await db.connect();
  const applied = await db.migrate();
  log.info({ applied }, applied.length ? 'migrations applied' : 'database is up to date');
  await db.close();
  return 0;
}

async function serve(config: ArgonautConfig, log: ReturnType<typeof createLogger>): Promise<number> {
  const { createApiService } = await import('../api/app.ts');
  if (config.api.authStrategy === 'noauth') {
    log.warn('auth_strategy is noauth: every caller is an administrator. Use authStrategy: keystone in production.');
  }
  const service = await createApiService(config, log, await prepareDatabase(config));
  const server = service.app.listen(config.api.port, config.api.host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const address = server.address();
  log.info({ address, database: config.database.url.split(':')[0], auth: config.api.authStrategy }, 'API listening');
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down: draining connections and running operations');
      server.close(() => resolve());
      server.closeIdleConnections();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await service.close();
  log.info('stopped');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`argonaut: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
