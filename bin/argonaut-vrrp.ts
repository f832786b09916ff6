#!/usr/bin/env -S npx tsx
// The amphora's VIP election on its own (what keepalived does in an Octavia amphora), for tests and
// benchmarks; the amphora agent runs the same module in its own process.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { createLogger } from '../common/logging.ts';
import { startVrrp, tcpHealth, type HealthResult, type Vrrp } from '../amphora/vrrp/index.ts';

const HELP = `argonaut-vrrp: VRRP-style election of the amphora that holds the VIPs (run it inside the amphora's network namespace, as root)

Usage: argonaut-vrrp --config FILE [options]

Options:
  --config FILE          Election settings, JSON or YAML (.yaml/.yml): interface, vips, localAddress, peers,
                         priority, authKey, and optionally port (5112), routerId (1), advertIntervalMs (1000),
                         deadIntervals (3), preempt (false). See amphora/README.md, "Active-standby (VRRP)".
  --check-tcp HOST:PORT  Own health: the data plane accepts a TCP connection there (checked every advert
                         interval; a failure makes this node FAULT: VIPs released, peers told at once).
  --check-timeout MS     Timeout of that check (default: the advert interval, at least 20).
  --no-guardian          Do not run the guardian (then a SIGKILL of this process leaves the VIPs configured).
  --log-level LEVEL      trace, debug, info, warn, error (default: info). Logs are JSON lines on stdout;
                         every state change is one line with "from", "to" and "reason".
  -h, --help             Show this help.

Signals: SIGTERM and SIGINT resign (a peer takes over at once), release the VIPs and exit 0. SIGHUP reads
the config file again: new peers, priority, preempt, advertIntervalMs or deadIntervals are adopted in
place (a MASTER keeps the VIPs); other changes restart the election (the VIPs move).
Exit status: 0 after a clean stop, 1 on a runtime failure, 2 for bad arguments or an invalid config.
`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        config: { type: 'string' },
        'check-tcp': { type: 'string' },
        'check-timeout': { type: 'string' },
        'no-guardian': { type: 'boolean', default: false },
        'log-level': { type: 'string', default: 'info' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`argonaut-vrrp: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const log = createLogger('argonaut-vrrp', values['log-level']);
  let document: unknown;
  const readDocument = async (file: string) => {
    const text = await readFile(file, 'utf8');
    return /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  };
  try {
    if (!values.config) throw new Error('--config FILE is required');
    document = await readDocument(values.config);
  } catch (err) {
    process.stderr.write(`argonaut-vrrp: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  let healthCheck: (() => Promise<HealthResult>) | undefined;
  if (values['check-tcp']) {
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(values['check-tcp']);
    if (!m) {
      process.stderr.write(`argonaut-vrrp: --check-tcp must be HOST:PORT\n`);
      return 2;
    }
    const [, host, port] = m;
    const timeout = values['check-timeout'] === undefined ? undefined : Number(values['check-timeout']);
    if (timeout !== undefined && !(timeout > 0)) {
      process.stderr.write(`argonaut-vrrp: --check-timeout must be a positive number of milliseconds\n`);
      return 2;
    }
    healthCheck = () => tcpHealth(host, Number(port), timeout ?? Math.max(20, Number((document as { advertIntervalMs?: number }).advertIntervalMs ?? 1000)));
  }
  const options = { log, healthCheck, guardian: !values['no-guardian'] };
  let vrrp: Vrrp;
  try {
    vrrp = await startVrrp(document as never, options);
  } catch (err) {
    const e = err as Error & { issues?: unknown };
    log.error({ err: e.message, issues: e.issues }, 'cannot start the election');
    return e.issues ? 2 : 1;
  }
  const code = await new Promise<number>((resolve) => {
    process.once('SIGTERM', () => resolve(0));
    process.once('SIGINT', () => resolve(0));
    // SIGHUP: the config file again; new peers, priority, preempt or interval are adopted in place
    // (the VIPs stay), other changes restart the election. One reload at a time.
    let reloads = Promise.resolve();
    process.on('SIGHUP', () => {
      reloads = reloads.then(async () => {
        let next: unknown;
        try {
          next = await readDocument(values.config!);
          if (await vrrp.reconfigure(next as never)) return;
        } catch (err) {
          const e = err as Error & { issues?: unknown };
          log.error({ err: e.message, issues: e.issues }, 'cannot apply the config file again; the election goes on with the previous settings');
          return;
        }
        log.info('the new settings need a restart of the election');
        await vrrp.stop();
        try {
          vrrp = await startVrrp(next as never, options);
        } catch (err) {
          log.error({ err: (err as Error).message }, 'cannot restart the election');
          resolve(1);
        }
      });
    });
  });
  await vrrp.stop();
  return code;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`argonaut-vrrp: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
