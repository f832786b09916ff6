import type { AmphoraConfig } from '../../../common/amphora-config/index.ts';
import { Engine, type PreparedConfig } from '../engine.ts';
import { createLogger } from '../log.ts';
import { ticketSecret } from '../tls/ticket-keys.ts';
import type { FromWorker, ToWorker } from './messages.ts';

/**
 * A cluster worker: runs one Engine on the listening sockets it shares with the other workers and
 * follows the primary's two-phase applies. Health comes from the primary; persistence entries it learns
 * go to the primary to reach the other workers.
 */
const index = Number(process.env.ARGONAUT_WORKER_INDEX ?? '0');
const workers = Number(process.env.ARGONAUT_WORKERS ?? '1');
const log = createLogger(process.env.ARGONAUT_LOG_LEVEL ?? 'info', { worker: index });
// Take the primary's TLS session-ticket secret now (and out of the environment).
ticketSecret();

const send = (message: FromWorker) => {
  if (!process.connected) return;
  process.send?.(message, undefined, undefined, (err: Error | null) => {
    // The primary is gone (the channel broke under the write): 'disconnect' shuts this worker down.
    if (err) log.debug({ err: err.message, message: message.type }, 'message to the primary not delivered');
  });
};

let metricsSeq = 0;
const metricsWaiters = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>();

const engine = new Engine({
  log,
  workers,
  serveUdp: index === 0,
  exclusiveUdp: true,
  onStick: (poolId, key, serverId) => send({ type: 'stick', poolId, key, serverId }),
  metrics: () =>
    new Promise<string>((resolve, reject) => {
      const seq = ++metricsSeq;
      metricsWaiters.set(seq, { resolve, reject });
      send({ type: 'metrics', seq });
    }),
});

const prepared = new Map<number, PreparedConfig>();

process.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'prepare':
      // The primary validated the document; workers trust its parsed form.
      engine.prepare(message.config as AmphoraConfig).then(
        (p) => {
          prepared.set(message.seq, p);
          send({ type: 'prepared', seq: message.seq, error: null });
        },
        (err: Error) => send({ type: 'prepared', seq: message.seq, error: err.message }),
      );
      return;
    case 'commit': {
      const p = prepared.get(message.seq);
      prepared.delete(message.seq);
      if (p !== undefined) engine.commit(p);
      send({ type: 'committed', seq: message.seq });
      return;
    }
    case 'abort': {
      const p = prepared.get(message.seq);
      prepared.delete(message.seq);
      if (p !== undefined) {
        engine.abort(p).catch((err: Error) => log.error({ err: err.message }, 'abort failed'));
      }
      return;
    }
    case 'health':
      for (const r of message.reports) engine.setHealth(r.poolId, r.memberId, r.healthy, r.label);
      return;
    case 'stick':
      engine.importStick(message.poolId, message.key, message.serverId);
      return;
    case 'snapshot':
      send({ type: 'snapshot', seq: message.seq, snapshot: engine.snapshot() });
      return;
    case 'metrics': {
      const waiter = metricsWaiters.get(message.seq);
      metricsWaiters.delete(message.seq);
      if (message.text !== null) waiter?.resolve(message.text);
      else waiter?.reject(new Error(message.error ?? 'metrics unavailable'));
      return;
    }
    case 'shutdown':
      engine.shutdown(message.graceMs).then(
        () => process.exit(0),
        (err: Error) => {
          log.error({ err: err.message }, 'shutdown failed');
          process.exit(1);
        },
      );
      return;
  }
});

// The primary decides when this worker stops; a terminal's Ctrl-C reaches the whole process group.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('disconnect', () => {
  engine.shutdown(0).finally(() => process.exit(0));
});

send({ type: 'ready' });
