import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

/** Structured logs, one event per line, with the object ids they concern. */
export function createLogger(level: string = process.env.ARGONAUT_LOG_LEVEL ?? 'info', bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { component: 'dataplane', pid: process.pid, ...bindings } });
}
