#!/usr/bin/env -S npx tsx
// The argonaut command: `argonaut api` runs the API service (with its controller worker),
// `argonaut migrate` applies database migrations, `argonaut cert` manages the local certificate
// manager's store, `argonaut preset` lists, shows and applies presets through the API, `argonaut
// realserver` prints a direct-routing member's set-up. Every option is in the config file.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile, type ArgonautConfig } from '../common/config.ts';
import { Database, ensureMysqlDatabase } from '../common/db/database.ts';
import { createLogger } from '../common/logging.ts';

const HELP = `Usage: argonaut <command> [--config FILE]

Commands:
  api       Run the Octavia v2 API service (and its controller worker) in this process.
  migrate   Apply pending database migrations and exit.
  cert      Store, list and delete certificates of the local certificate manager
            (argonaut cert --help).
  preset    List, show and apply ready-made load balancer designs through the API
            (argonaut preset --help).
  realserver  Print what a member of a DIRECT_ROUTING listener must run ("solving the ARP
            problem"; argonaut realserver --help).

Options:
  -c, --config FILE   YAML configuration (default: $ARGONAUT_CONFIG, else built-in defaults:
                      SQLite in var/argonaut.sqlite, noauth, 127.0.0.1:9876).
                      See etc/argonaut.example.yaml for every option.
  -h, --help          Show this help.
`;

/** The index of the command word in argv (the first argument that is neither an option nor its value). */
function commandIndex(args: string[]): number {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-c' || args[i] === '--config') i++;
    else if (!args[i]!.startsWith('-')) return i;
  }
  return -1;
}

async function certCommand(args: string[]): Promise<number> {
  const { CERT_HELP, parseCertArgs, runCert } = await import('../common/certificates/cli.ts');
  let parsed;
  try {
    parsed = parseCertArgs(args);
  } catch (err) {
    process.stderr.write(`argonaut cert: ${(err as Error).message}\n\n${CERT_HELP}`);
    return 2;
  }
  if (parsed.values.help || parsed.positionals.length === 0) {
    process.stdout.write(CERT_HELP);
    return parsed.values.help ? 0 : 2;
  }
  let config: ArgonautConfig;
  try {
    config = loadConfigFile(parsed.values.config ?? process.env.ARGONAUT_CONFIG);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`argonaut: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const db = await prepareDatabase(config);
  try {
    await db.connect();
    if (config.database.migrateOnStart) await db.migrate();
    return await runCert(parsed, config, db, { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) });
  } finally {
    await db.close();
  }
}

async function presetCommand(args: string[]): Promise<number> {
  const { PRESET_HELP, parsePresetArgs, runPreset } = await import('../presets/cli.ts');
  let parsed;
  try {
    parsed = parsePresetArgs(args);
  } catch (err) {
    process.stderr.write(`argonaut preset: ${(err as Error).message}\n\n${PRESET_HELP}`);
    return 2;
  }
  if (parsed.values.help || parsed.positionals.length === 0) {
    process.stdout.write(PRESET_HELP);
    return parsed.values.help ? 0 : 2;
  }
  return runPreset(parsed, { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) });
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const at = commandIndex(argv);
  if (at >= 0 && argv[at] === 'cert') return certCommand([...argv.slice(0, at), ...argv.slice(at + 1)]);
  if (at >= 0 && argv[at] === 'preset') return presetCommand([...argv.slice(0, at), ...argv.slice(at + 1)]);
  if (at >= 0 && argv[at] === 'realserver') {
    const { runRealServerCli } = await import('../amphora/dataplane/directrouting/realserver-cli.ts');
    return runRealServerCli(argv.slice(at + 1), { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) });
  }
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
