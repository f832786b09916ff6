// The messages that cross the controller <-> amphora boundary: one zod schema and one type each.
// Every message is validated where it is sent and again where it is received (common/transport).
// The AmphoraConfig document itself is validated by the data plane's own schema
// (common/amphora-config); here it is an opaque JSON value.
import { z } from 'zod';

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Amphora ids are UUIDs (as in Octavia); they are also AMQP routing keys and queue name suffixes. */
export const AmphoraIdSchema = z.string().regex(UUID, 'must be a UUID');

/** Monotonic version of an amphora's configuration, set by the controller. */
export const ConfigVersionSchema = z.number().int().min(0);

const counter = z.number().int().min(0);

// ---------------------------------------------------------------------------------------------
// controller -> amphora (RPC requests)

/** The whole configuration of one amphora (the AmphoraConfig document, validated by the data plane). */
export const ConfigPushSchema = z.object({
  amphoraId: AmphoraIdSchema,
  configVersion: ConfigVersionSchema,
  config: z.unknown().refine((v) => v !== undefined, 'config is required'),
});
export interface ConfigPush {
  amphoraId: string;
  configVersion: number;
  config: unknown;
}

/** Orders other than a configuration (kept small on purpose; new kinds are added here). */
export const CommandSchema = z.discriminatedUnion('kind', [
  /** Stop the agent cleanly (drain, then exit). */
  z.object({ kind: z.literal('shutdown') }),
  /** Liveness check: the agent answers at once without touching the data plane. */
  z.object({ kind: z.literal('ping') }),
]);
export type Command = z.infer<typeof CommandSchema>;

export const CommandRequestSchema = z.object({ amphoraId: AmphoraIdSchema, command: CommandSchema });
export type CommandRequest = z.infer<typeof CommandRequestSchema>;

// ---------------------------------------------------------------------------------------------
// amphora -> controller (RPC replies)

/** The amphora's answer to a ConfigPush: the configuration version it now runs. */
export const ConfigAckSchema = z
  .object({
    amphoraId: AmphoraIdSchema,
    configVersion: ConfigVersionSchema,
    ok: z.boolean(),
    error: z.string().min(1).optional(),
  })
  .refine((a) => a.ok || a.error !== undefined, { message: 'a refused configuration must say why (error)', path: ['error'] });
export type ConfigAck = z.infer<typeof ConfigAckSchema>;

export const CommandAckSchema = z
  .object({
    amphoraId: AmphoraIdSchema,
    kind: z.string().min(1),
    ok: z.boolean(),
    error: z.string().min(1).optional(),
  })
  .refine((a) => a.ok || a.error !== undefined, { message: 'a failed command must say why (error)', path: ['error'] });
export type CommandAck = z.infer<typeof CommandAckSchema>;

// ---------------------------------------------------------------------------------------------
// amphora -> controller (RPC request: an amphora that starts or reconnects asks for its configuration)

export const ConfigFetchSchema = z.object({ amphoraId: AmphoraIdSchema });
export type ConfigFetch = z.infer<typeof ConfigFetchSchema>;

export const ConfigNoneSchema = z.object({ amphoraId: AmphoraIdSchema, none: z.literal(true) });
export type ConfigNone = z.infer<typeof ConfigNoneSchema>;

/** The controller's answer to a ConfigFetch: the configuration, or "none" (the amphora is not in use yet). */
export const ConfigFetchReplySchema = z.union([ConfigNoneSchema, ConfigPushSchema]);
export type ConfigFetchReply = ConfigPush | ConfigNone;

// ---------------------------------------------------------------------------------------------
// amphora -> controller (fire-and-forget, never lost): heartbeat with statistics, contract §4.2 v3

export const ListenerReportSchema = z.object({
  /** OPEN, FULL, or another HAProxy value (the health manager leaves those unchanged). */
  status: z.string().min(1),
  /** v3: tx, rx, totconns, ereq are deltas since the previous heartbeat; conns is absolute. */
  stats: z.object({ tx: counter, rx: counter, conns: counter, totconns: counter, ereq: counter }),
});

export const PoolReportSchema = z.object({
  status: z.enum(['UP', 'DOWN']),
  /** member id -> UP, DOWN, DRAIN, MAINT, no check, RESTARTING, "UP 1/3", ... */
  members: z.record(z.string(), z.string().min(1)),
});

/**
 * Extension (ACTIVE_STANDBY): the amphora's election state and whether it holds the VIP now. Absent
 * from amphorae without an election (and from Octavia's own heartbeats).
 */
export const VrrpReportSchema = z
  .object({
    state: z.enum(['INIT', 'BACKUP', 'MASTER', 'FAULT', 'STOPPED']),
    holdsVip: z.boolean(),
  })
  .strict();
export type VrrpReport = z.infer<typeof VrrpReportSchema>;

export const HeartbeatSchema = z.object({
  id: AmphoraIdSchema,
  seq: z.number().int().min(0),
  ver: z.literal(3),
  listeners: z.record(z.string().min(1), ListenerReportSchema),
  /** Keys are `pool_id:listener_id` (or `pool_id`). */
  pools: z.record(z.string().min(1), PoolReportSchema),
  /** The configuration version the amphora runs; null before it has applied any. */
  configVersion: ConfigVersionSchema.nullable(),
  vrrp: VrrpReportSchema.optional(),
});
export type Heartbeat = z.infer<typeof HeartbeatSchema>;

// ---------------------------------------------------------------------------------------------
// either direction: the answer to a request whose handler failed for good

export const ErrorReplySchema = z.object({ error: z.string().min(1) });
export type ErrorReply = z.infer<typeof ErrorReplySchema>;

// ---------------------------------------------------------------------------------------------
// The registry: every message type on the wire, its schema and its direction.

export const MESSAGE_TYPES = {
  'config.push': { schema: ConfigPushSchema, to: 'amphora' },
  command: { schema: CommandRequestSchema, to: 'amphora' },
  'config.fetch.reply': { schema: ConfigFetchReplySchema, to: 'amphora' },
  'config.ack': { schema: ConfigAckSchema, to: 'controller' },
  'command.ack': { schema: CommandAckSchema, to: 'controller' },
  'config.fetch': { schema: ConfigFetchSchema, to: 'controller' },
  heartbeat: { schema: HeartbeatSchema, to: 'controller' },
  error: { schema: ErrorReplySchema, to: 'either' },
} as const satisfies Record<string, { schema: z.ZodType; to: 'amphora' | 'controller' | 'either' }>;

export type MessageType = keyof typeof MESSAGE_TYPES;

export interface MessageBodies {
  'config.push': ConfigPush;
  command: CommandRequest;
  'config.fetch.reply': ConfigFetchReply;
  'config.ack': ConfigAck;
  'command.ack': CommandAck;
  'config.fetch': ConfigFetch;
  heartbeat: Heartbeat;
  error: ErrorReply;
}

export function isMessageType(type: string): type is MessageType {
  return Object.hasOwn(MESSAGE_TYPES, type);
}

export class MessageValidationError extends Error {
  override name = 'MessageValidationError';
  constructor(
    readonly type: string,
    readonly issues: string[],
  ) {
    super(`invalid ${type} message: ${issues.join('; ')}`);
  }
}

/** Validates one message body against the schema of its type; throws MessageValidationError. */
export function parseMessage<T extends MessageType>(type: T, body: unknown): MessageBodies[T] {
  const result = MESSAGE_TYPES[type].schema.safeParse(body);
  if (!result.success) {
    throw new MessageValidationError(
      type,
      result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`),
    );
  }
  return result.data as MessageBodies[T];
}
