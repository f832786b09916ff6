// The amphora agent's settings: one document (YAML or JSON) written by the compute driver when it
// boots an amphora, validated whole by zod. Every option has a default and a line of documentation,
// except the amphora's identity (amphoraId) and its key.
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { AmphoraIdSchema } from '../../common/messages.ts';
import { transportOptionsSchema, type TransportSettings } from '../../common/transport/transport.ts';

const HEX_KEY = /^(?:[0-9a-fA-F]{2}){16,}$/;
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/**
 * `messaging.kind: amqp` (the default): the transport options (common/transport/transport.ts) with one
 * different default: an amphora keeps trying to reach RabbitMQ for as long as it takes (a VM may boot
 * before the network is up), instead of giving up after 30 s. Unknown keys are refused (a misspelt
 * option would otherwise be ignored).
 */
const amqpMessagingSchema = transportOptionsSchema
  .unwrap()
  .extend({
    kind: z.literal('amqp').default('amqp').describe('amqp: RabbitMQ (every deployment); ipc: the parent process (the process compute driver).'),
    initialConnectTimeoutMs: z
      .number()
      .int()
      .positive()
      .nullable()
      .default(null)
      .describe('How long the first connection may take before the agent gives up and exits 1 (null: retry forever).'),
  })
  .strict();

/**
 * `messaging.kind: ipc`: the agent runs as a child process of the controller (the `process` compute
 * driver) and reaches the controller's in-process broker over its IPC channel. The AMQP-only options
 * (url, prefix, amqpHeartbeatSeconds, initialConnectTimeoutMs, reconnect, outboxLimit) do not apply and
 * are refused; connectTimeoutMs bounds the handshake with the parent.
 */
const ipcMessagingSchema = transportOptionsSchema
  .unwrap()
  .omit({ url: true, prefix: true, amqpHeartbeatSeconds: true, initialConnectTimeoutMs: true, reconnect: true, outboxLimit: true })
  .extend({
    kind: z.literal('ipc'),
    connectTimeoutMs: z.number().int().positive().default(5000).describe('How long the handshake with the parent process may take.'),
  })
  .strict();

const messagingSchema = z.discriminatedUnion('kind', [amqpMessagingSchema, ipcMessagingSchema]).prefault({});

export type AmqpMessagingSettings = z.output<typeof amqpMessagingSchema>;
export type IpcMessagingSettings = z.output<typeof ipcMessagingSchema>;
export type IpcMessagingInput = z.input<typeof ipcMessagingSchema>;
export type AmqpMessagingInput = z.input<typeof amqpMessagingSchema>;

export const agentSettingsSchema = z
  .strictObject({
    amphoraId: AmphoraIdSchema.describe('This amphora (UUID). Configs, orders and heartbeats are for this id only.'),
    key: z
      .string()
      .regex(HEX_KEY, 'must be hex, at least 16 bytes (32 hex digits)')
      .optional()
      .describe("This amphora's signing key in hex: deriveAmphoraKey(masterKey, amphoraId). Exactly one of key and keyFile."),
    keyFile: z
      .string()
      .min(1)
      .optional()
      .describe('A file holding the key in hex (whitespace around it ignored); relative to the settings file.'),
    messaging: messagingSchema.describe(
      'How the agent reaches the controller: kind amqp (RabbitMQ URL, name prefix, reconnection, timeouts; see common/transport) or kind ipc (the parent process).',
    ),
    heartbeatIntervalMs: z
      .number()
      .int()
      .min(10)
      .default(10_000)
      .describe("Time between heartbeats (Octavia's heartbeat_interval, 10 s)."),
    configFetch: z
      .strictObject({
        timeoutMs: z.number().int().positive().default(5_000).describe('How long one config fetch waits for the controller.'),
        initialDelayMs: z.number().int().positive().default(500).describe('Pause after the first failed fetch.'),
        maxDelayMs: z.number().int().positive().default(30_000).describe('Longest pause between fetch attempts.'),
        factor: z.number().min(1).default(2).describe('Pause multiplier per failed attempt.'),
        jitter: z.number().min(0).max(1).default(0.2).describe('Fraction of the pause taken off at random.'),
      })
      .prefault({})
      .describe('Fetching the config from the controller at start-up and after each reconnection, retried with back-off.'),
    reconnectCheckMs: z
      .number()
      .int()
      .positive()
      .default(250)
      .describe('How often the agent looks whether the transport reconnected (then it fetches its config again).'),
    dataplane: z
      .strictObject({
        workers: z
          .number()
          .int()
          .min(0)
          .max(256)
          .default(() => availableParallelism())
          .describe('Data plane worker processes (default: one per core); 0 serves traffic in the agent process.'),
        drainTimeoutMs: z
          .number()
          .int()
          .min(0)
          .default(30_000)
          .describe('On shutdown, how long established connections may finish before they are closed.'),
      })
      .prefault({}),
    logLevel: z.enum(LOG_LEVELS).default('info').describe('Log level; logs are JSON lines on stdout.'),
  })
  .superRefine((s, ctx) => {
    if ((s.key === undefined) === (s.keyFile === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['key'], message: 'give exactly one of key and keyFile' });
    }
  });

export type AgentSettingsInput = z.input<typeof agentSettingsSchema>;
export type AgentSettingsDocument = z.output<typeof agentSettingsSchema>;

/** The settings as the agent uses them: the key read and decoded, the transport options complete. */
export interface AgentSettings extends Omit<AgentSettingsDocument, 'key' | 'keyFile' | 'messaging'> {
  key: Buffer;
  messaging: ({ kind: 'amqp' } & TransportSettings) | IpcMessagingSettings;
}

/** Invalid settings; `issues` lists every offending path (never the key itself). */
export class AgentSettingsError extends Error {
  override name = 'AgentSettingsError';
  constructor(
    readonly source: string,
    readonly issues: string[],
  ) {
    super(`invalid agent settings (${source}): ${issues.join('; ')}`);
  }
}

/** Validates a settings document; `baseDir` resolves a relative keyFile. */
export async function resolveAgentSettings(document: unknown, source: string, baseDir: string): Promise<AgentSettings> {
  const parsed = agentSettingsSchema.safeParse(document);
  if (!parsed.success) {
    throw new AgentSettingsError(
      source,
      parsed.error.issues.map((i) => `${i.path.length > 0 ? i.path.map(String).join('.') : '(root)'}: ${i.message}`),
    );
  }
  const { key, keyFile, ...rest } = parsed.data;
  let hex: string;
  if (key !== undefined) {
    hex = key;
  } else {
    const file = path.resolve(baseDir, keyFile as string);
    try {
      hex = (await readFile(file, 'utf8')).trim();
    } catch (err) {
      throw new AgentSettingsError(source, [`keyFile: cannot read ${file}: ${(err as Error).message}`]);
    }
    if (!HEX_KEY.test(hex)) throw new AgentSettingsError(source, [`keyFile: ${file} must hold the key in hex, at least 16 bytes`]);
  }
  return { ...rest, key: Buffer.from(hex, 'hex') };
}

/** Reads and validates a settings file (YAML, of which JSON is a subset). */
export async function loadAgentSettings(file: string): Promise<AgentSettings> {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (err) {
    throw new AgentSettingsError(absolute, [`cannot read the file: ${(err as Error).message}`]);
  }
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (err) {
    throw new AgentSettingsError(absolute, [`not YAML/JSON: ${(err as Error).message}`]);
  }
  return resolveAgentSettings(document, absolute, path.dirname(absolute));
}
