// Structured logs: one JSON event per line, with the ids of the objects concerned. Secrets never go in.
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(name: string, level = process.env.ARGONAUT_LOG_LEVEL ?? 'info'): Logger {
  return pino({
    name,
    level,
    redact: { paths: ['password', '*.password', 'token', '*.token', 'headers["x-auth-token"]'], censor: '[redacted]' },
  });
}
