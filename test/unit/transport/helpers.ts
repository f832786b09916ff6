// Shared by the transport unit tests and test/integration/amqp.test.ts.
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import type { Logger } from '../../../common/logging.ts';
import type { Heartbeat } from '../../../common/messages.ts';

export const MASTER_KEY = 'unit-test-master-key-0123456789';

/** A logger that keeps every event (level warn and above by default) for assertions. */
export function captureLogger(level = 'warn'): { logger: Logger; events: Array<Record<string, unknown>> } {
  const events: Array<Record<string, unknown>> = [];
  const logger = pino({ level }, { write: (line: string) => void events.push(JSON.parse(line)) });
  return { logger, events };
}

export function heartbeat(amphoraId: string, seq: number, configVersion: number | null = 1): Heartbeat {
  const listener = randomUUID();
  const pool = randomUUID();
  return {
    id: amphoraId,
    seq,
    ver: 3,
    listeners: { [listener]: { status: 'OPEN', stats: { tx: 10 * seq, rx: 20, conns: 1, totconns: 2, ereq: 0 } } },
    pools: { [`${pool}:${listener}`]: { status: 'UP', members: { [randomUUID()]: 'UP' } } },
    configVersion,
  };
}

/** Polls `check` until it returns true or the deadline passes (then throws with `what`). */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000, everyMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A promise with its resolve function (a gate that a test opens). */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}
