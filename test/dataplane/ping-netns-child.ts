import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { LocalDataPlane } from '../../amphora/dataplane/dataplane.ts';
import { createLogger } from '../../amphora/dataplane/log.ts';
import { config, eventually, freePort, httpListener, pool, Resources, startHttpMember, uid } from './helpers.ts';

/** Inside a private network namespace: PING monitor against 127.0.0.1 while echo replies go off and on. */
async function main(): Promise<void> {
  execFileSync('ip', ['link', 'set', 'lo', 'up']);
  const setEcho = (ignore: boolean) => writeFileSync('/proc/sys/net/ipv4/icmp_echo_ignore_all', ignore ? '1' : '0');
  setEcho(false);
  const r = new Resources();
  const m = await startHttpMember(r, 'm');
  const port = await freePort();
  const dp = new LocalDataPlane({ log: createLogger('silent') });
  r.add(() => dp.stop(0));
  await dp.apply(
    config(
      [httpListener(1, port, 2)],
      [pool(2, 'HTTP', [{ id: 10, port: m.port }], { healthMonitor: { id: uid(99), type: 'PING', delay: 1000, timeout: 1000, maxRetries: 1, maxRetriesDown: 1 } })],
    ),
  );
  const status = async () => (await dp.snapshot()).pools[uid(2)].members[uid(10)].status;
  const seen: string[] = [];
  await eventually(async () => (await status()) === 'UP', 5_000);
  await new Promise((resolve) => setTimeout(resolve, 500));
  seen.push(await status());
  setEcho(true);
  await eventually(async () => (await status()) === 'DOWN', 8_000);
  seen.push(await status());
  setEcho(false);
  await eventually(async () => (await status()) === 'UP', 8_000);
  seen.push(await status());
  await r.cleanup();
  process.stdout.write(`${JSON.stringify(seen)}\n`);
  process.exit(0);
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
