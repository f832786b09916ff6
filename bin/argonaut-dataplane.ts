#!/usr/bin/env -S npx tsx
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { AmphoraConfigError } from '../common/amphora-config/index.ts';
import { LocalDataPlane, type DataPlane } from '../amphora/dataplane/dataplane.ts';
import { createLogger } from '../amphora/dataplane/log.ts';
import { ClusterDataPlane } from '../amphora/dataplane/workers/cluster.ts';

const HELP = `argonaut-dataplane: the amphora data plane (what HAProxy and LVS do in an Octavia amphora)

Usage: argonaut-dataplane --config FILE [options]

Options:
  --config FILE         AmphoraConfig document, JSON or YAML (see amphora/README.md).
                        Re-read on SIGHUP and whenever the file changes; a new config is applied
                        atomically, and an invalid one is rejected whole while the running one stays.
  --workers N           Worker processes sharing the listeners (default: one per core, ${availableParallelism()}
                        here). 0 serves everything in this process.
  --log-level LEVEL     trace, debug, info, warn, error (default: info). Logs are JSON lines on stdout.
  --drain-timeout MS    On SIGTERM/SIGINT, how long established connections may finish before they
                        are closed (default: 30000).
  --no-watch            Reload on SIGHUP only, not when the file changes.
  -h, --help            Show this help.

Signals: SIGHUP reloads the config; SIGTERM and SIGINT stop accepting, drain and exit 0.
Exit status: 0 after a clean shutdown, 2 for bad arguments or an invalid first config.
`;

interface Options {
  config: string;
  workers: number;
  logLevel: string;
  drainTimeout: number;
  watch: boolean;
}

function readOptions(argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      workers: { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'drain-timeout': { type: 'string', default: '30000' },
      'no-watch': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return null;
  if (values.config === undefined) throw new Error('--config FILE is required');
  const workers = values.workers === undefined ? availableParallelism() : Number(values.workers);
  if (!Number.isInteger(workers) || workers < 0 || workers > 256) throw new Error('--workers must be an integer from 0 to 256');
  const drainTimeout = Number(values['drain-timeout']);
  if (!Number.isInteger(drainTimeout) || drainTimeout < 0) throw new Error('--drain-timeout must be a number of milliseconds');
  return { config: path.resolve(values.config), workers, logLevel: values['log-level'] as string, drainTimeout, watch: !values['no-watch'] };
}

async function readConfigFile(file: string): Promise<{ document: unknown; digest: string }> {
  const text = await readFile(file, 'utf8');
  const digest = createHash('sha256').update(text).digest('hex');
  const document: unknown = /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  return { document, digest };
}

async function main(): Promise<number> {
  let options: Options | null;
  try {
    options = readOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`argonaut-dataplane: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (options === null) {
    process.stdout.write(HELP);
    return 0;
  }
  const opts = options;
  const log = createLogger(opts.logLevel, { role: 'primary' });

  let dataPlane: DataPlane;
  if (opts.workers === 0) {
    dataPlane = new LocalDataPlane({ log });
  } else {
    const clusterPlane = new ClusterDataPlane({ workers: opts.workers, log, logLevel: opts.logLevel });
    await clusterPlane.start();
    dataPlane = clusterPlane;
  }

  let appliedDigest = '';
  let reloading: Promise<void> = Promise.resolve();
  const load = async (reason: string, first: boolean): Promise<boolean> => {
    let file: { document: unknown; digest: string };
    try {
      file = await readConfigFile(opts.config);
    } catch (err) {
      log.error({ file: opts.config, reason, err: (err as Error).message }, 'cannot read config; running config stays');
      return false;
    }
    if (!first && file.digest === appliedDigest) return true;
    try {
      const diff = await dataPlane.apply(file.document);
      appliedDigest = file.digest;
      log.info({ file: opts.config, reason, configVersion: diff.toVersion, previousVersion: diff.fromVersion }, 'config loaded');
      return true;
    } catch (err) {
      const issues = err instanceof AmphoraConfigError ? err.issues : undefined;
      log.error({ file: opts.config, reason, err: (err as Error).message, issues }, 'config rejected; running config stays');
      return false;
    }
  };
  const reload = (reason: string) => {
    reloading = reloading.then(() => load(reason, false).then(() => undefined));
  };

  if (!(await load('startup', true))) {
    await dataPlane.stop(0);
    return 2;
  }

  let watcher: FSWatcher | null = null;
  if (opts.watch) {
    // Watch the directory: editors and config pushers replace the file rather than write it in place.
    let debounce: NodeJS.Timeout | null = null;
    watcher = watch(path.dirname(opts.config), (_event, name) => {
      if (name !== null && name !== path.basename(opts.config)) return;
      if (debounce !== null) clearTimeout(debounce);
      debounce = setTimeout(() => reload('file changed'), 100);
    });
    watcher.on('error', (err) => log.error({ err: err.message }, 'config watch failed; SIGHUP still reloads'));
  }
  process.on('SIGHUP', () => reload('SIGHUP'));

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal, drainTimeoutMs: opts.drainTimeout }, 'draining connections');
      watcher?.close();
      dataPlane.stop(opts.drainTimeout).then(
        () => {
          log.info('stopped');
          resolve(0);
        },
        (err: Error) => {
          log.error({ err: err.message }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`argonaut-dataplane: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
