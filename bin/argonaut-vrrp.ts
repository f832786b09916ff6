#!/usr/bin/env -S npx tsx
// The amphora's VIP election on its own (what keepalived does in an Octavia amphora), for tests and
// benchmarks; the amphora agent runs the same module in its own process.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { createLogger } from '../common/logging.ts';
import { startVrrp, tcpHealth, type HealthResult } from '../amphora/vrrp/index.ts';

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

Signals: SIGTERM and SIGINT release the VIPs (resigning, so that a peer takes over at once) and exit 0.
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
  try {
    if (!values.config) throw new Error('--config FILE is required');
    const text = await readFile(values.config, 'utf8');
    document = /\.ya?ml$/i.test(values.config) ? parseYaml(text) : JSON.parse(text);
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
  let vrrp;
  try {
    vrrp = await startVrrp(document as never, { log, healthCheck, guardian: !values['no-guardian'] });
  } catch (err) {
    const e = err as Error & { issues?: unknown };
    log.error({ err: e.message, issues: e.issues }, 'cannot start the election');
    return e.issues ? 2 : 1;
  }
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await vrrp.stop();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`argonaut-vrrp: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
