// A child process for ipc.test.ts: an amphora on an IpcTransport whose behaviour the test steers with
// the pushed configs. It reports what happens as JSON lines on stdout; transport logs go to stderr.
//   env AMPHORA_ID, AMPHORA_KEY (hex), CONNECT_TIMEOUT_MS; argv[2]: 'normal' | 'malformed' (sends bad frames first)
//   config.behaviour of a push: 'ok' (ack), 'throw-first' (the first attempt throws), 'hang' (never answers)
import pino from 'pino';
import { IpcTransport } from '../../../common/transport/ipc-transport.ts';
import { heartbeat } from './helpers.ts';

const amphoraId = process.env.AMPHORA_ID as string;
const mode = process.argv[2] ?? 'normal';
const report = (event: string, extra: Record<string, unknown> = {}) => process.stdout.write(`${JSON.stringify({ event, ...extra })}\n`);

if (mode === 'malformed') {
  const other = '00000000-0000-4000-8000-0000000000ff';
  for (const frame of [
    'just a string',
    42,
    null,
    { t: 'nope' },
    { t: 'publish', id: -1, dest: { kind: 'health' }, content: 'AA==', wantsReply: false },
    { t: 'publish', id: 1, dest: { kind: 'health' }, content: '!!not base64!!', wantsReply: false },
    { t: 'settle', delivery: 123456, requeue: false }, // a delivery that does not exist
    { t: 'consume', id: 999_999, tag: 77, source: { kind: 'amphora', amphoraId: other }, prefetch: 1 }, // another amphora's queue
    { t: 'publish', id: 999_998, dest: { kind: 'amphora', amphoraId: other }, content: 'AA==', wantsReply: false }, // an order
  ]) {
    process.send!(frame);
  }
  report('malformed-sent');
}

const transport = await IpcTransport.connect({
  identity: { role: 'amphora', amphoraId, key: Buffer.from(process.env.AMPHORA_KEY as string, 'hex') },
  logger: pino({ level: 'warn' }, pino.destination(2)),
  requeueDelayMs: 1,
  connectTimeoutMs: Number(process.env.CONNECT_TIMEOUT_MS ?? 5000),
});
report('connected');

process.once('disconnect', () => {
  report('parent-gone', { counters: transport.counters() }); // the transport's own 'disconnect' listener ran first
  void transport.close({ drainTimeoutMs: 100 }).then(() => process.exit(0));
});

const fetched = await transport.fetchConfig({ timeoutMs: 5000, retries: 0 });
report('fetched', { push: fetched });

await transport.serveAmphora({
  configPush: async (push, meta) => {
    const behaviour = (push.config as { behaviour?: string }).behaviour ?? 'ok';
    report('push', { configVersion: push.configVersion, behaviour, attempt: meta.attempt, redelivered: meta.redelivered });
    if (behaviour === 'throw-first' && meta.attempt === 1) throw new Error('first attempt fails');
    if (behaviour === 'hang') await new Promise(() => {});
    return { amphoraId, configVersion: push.configVersion, ok: true };
  },
  command: async (command) => ({ amphoraId, kind: command.kind, ok: true }),
});
report('serving');

try {
  await transport.publishHeartbeat(heartbeat(amphoraId, 1));
  report('heartbeat-sent', { counters: transport.counters() });
} catch (err) {
  report('heartbeat-failed', { error: String(err) }); // the parent went away meanwhile
}
