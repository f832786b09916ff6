// The controller <-> amphora transport: what the driver (controller side) and the amphora agent use.
// Three implementations share one behaviour (common/transport/core.ts): AMQP with RabbitMQ
// (amqp-transport.ts, every deployment and every integration test), in-process
// (in-process-transport.ts, the single-process embedded default and unit tests) and IPC
// (ipc-transport.ts: an agent in a child process on its parent's in-process broker).
// The topology and the wire format are described in topology.md.
import { z } from 'zod';
import type { Logger } from '../logging.ts';
import type { Command, CommandAck, ConfigAck, ConfigFetch, ConfigPush, Heartbeat } from '../messages.ts';
import type { Principal, SignatureFailure } from './signing.ts';

/** What a handler is told about the message it handles. */
export interface MessageMeta {
  /** The message id: the same for every copy of one logical message (retries, resends, redeliveries). */
  messageId: string;
  from: Principal;
  /** When this copy was signed (ms since epoch). */
  signedAt: number;
  /** When the sender first created the message (ms since epoch); older than signedAt if it was resent. */
  createdAt: number;
  /** 1 for the first time this receiver handles the message, 2+ after the handler threw and it was requeued. */
  attempt: number;
  /** The broker says this copy was delivered before (to this or another consumer). */
  redelivered: boolean;
}

export interface CallOptions {
  /** How long one attempt waits for the answer (also the message's TTL in the queue). */
  timeoutMs?: number;
  /** Further attempts after a timed-out one (0: one attempt). Every attempt has the same message id. */
  retries?: number;
}

/** The controller's handlers for what amphorae send. */
export interface AmphoraReportHandlers {
  /** A heartbeat (with statistics); throw to have it requeued and handled again. */
  heartbeat(h: Heartbeat, meta: MessageMeta): Promise<void>;
  /** An amphora asks for its configuration: the current one, or null when it has none yet. */
  configFetch(req: ConfigFetch, meta: MessageMeta): Promise<ConfigPush | null>;
}

/** The amphora's handlers for the controller's orders. */
export interface AmphoraOrderHandlers {
  /** Apply a configuration; answer with the version now running (ok: false + error when refused). */
  configPush(push: ConfigPush, meta: MessageMeta): Promise<ConfigAck>;
  command(cmd: Command, meta: MessageMeta): Promise<CommandAck>;
}

export interface CloseOptions {
  /** How long to wait for running handlers, pending calls and unconfirmed publishes. */
  drainTimeoutMs?: number;
}

export interface TransportBase {
  /** `controller` or `amphora:<id>`: who this transport signs as. */
  readonly self: Principal;
  /**
   * Drain and close: stop taking deliveries, let running handlers finish (their messages are acked,
   * or requeued if they fail), wait for pending calls and for the broker to confirm every queued
   * publish, then close. What is still unfinished at the drain deadline is rejected with
   * TransportClosedError (unacked deliveries go back to their queue). Idempotent.
   */
  close(opts?: CloseOptions): Promise<void>;
  counters(): TransportCounters;
}

/** Controller side (role `controller`). */
export interface ControllerTransport extends TransportBase {
  /** RPC to one amphora: resolves with its ack, or rejects with RpcTimeoutError / RemoteError / TransportClosedError. */
  pushConfig(push: ConfigPush, opts?: CallOptions): Promise<ConfigAck>;
  sendCommand(amphoraId: string, command: Command, opts?: CallOptions): Promise<CommandAck>;
  /** Start consuming heartbeats and config fetches (once per transport). */
  onAmphoraReport(handlers: AmphoraReportHandlers): Promise<void>;
  /** The amphora is gone for good: delete its queue (and whatever orders still wait in it). */
  forgetAmphora(amphoraId: string): Promise<void>;
}

/** Amphora side (role `amphora`; the amphora id comes from the identity). */
export interface AmphoraTransport extends TransportBase {
  /** Start consuming this amphora's orders (once per transport). */
  serveAmphora(handlers: AmphoraOrderHandlers): Promise<void>;
  /**
   * Resolves once the broker has confirmed it (durably queued). While the broker is unreachable the
   * heartbeat waits in a local outbox and is resent after reconnection; rejects only when the
   * transport closes before that, or when the outbox overflows (the oldest is given up).
   */
  publishHeartbeat(h: Heartbeat): Promise<void>;
  /** RPC to the controller: this amphora's configuration, or null when it has none yet. */
  fetchConfig(opts?: CallOptions): Promise<ConfigPush | null>;
}

/** Both implementations implement both sides; each method checks the role of the identity. */
export interface Transport extends ControllerTransport, AmphoraTransport {}

/** Who a transport is, and its key (see signing.ts for the key scheme). */
export type TransportIdentity =
  | { role: 'controller'; /** The master key (Octavia's heartbeat_key analogue). */ masterKey: string | Buffer }
  | { role: 'amphora'; amphoraId: string; /** deriveAmphoraKey(masterKey, amphoraId), given to this amphora only. */ key: string | Buffer };

// ---------------------------------------------------------------------------------------------
// Options: a config section (defaults + documentation) plus the run-time parts.

export const transportOptionsSchema = z
  .object({
    url: z.string().default('amqp://guest:guest@127.0.0.1:5672/').describe('AMQP URL of RabbitMQ (user, password, host, port, vhost).'),
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/)
      .default('argonaut')
      .describe('Prefix of every exchange and queue name (one namespace per deployment or test run).'),
    amqpHeartbeatSeconds: z.number().int().min(0).default(10).describe('AMQP connection heartbeat (0: off); detects dead connections.'),
    connectTimeoutMs: z.number().int().positive().default(5000).describe('Timeout of one TCP+AMQP connection attempt.'),
    initialConnectTimeoutMs: z
      .number()
      .int()
      .positive()
      .nullable()
      .default(30_000)
      .describe('How long the first connection may take before start-up fails (null: retry forever).'),
    reconnect: z
      .object({
        initialDelayMs: z.number().int().positive().default(100).describe('First delay before reconnecting.'),
        maxDelayMs: z.number().int().positive().default(10_000).describe('Largest delay between reconnection attempts.'),
        factor: z.number().min(1).default(2).describe('Delay multiplier per failed attempt.'),
        jitter: z.number().min(0).max(1).default(0.2).describe('Fraction of the delay taken off at random (spreads reconnecting clients).'),
      })
      .prefault({}),
    callTimeoutMs: z.number().int().positive().default(10_000).describe('Default time one RPC attempt waits for its answer.'),
    callRetries: z.number().int().min(0).default(2).describe('Default further RPC attempts after a timeout.'),
    replayWindowMs: z
      .number()
      .int()
      .positive()
      .default(300_000)
      .describe('Signed messages older than this are refused (replays); ids are remembered this long to drop duplicates.'),
    maxClockSkewMs: z.number().int().min(0).default(30_000).describe('How far in the future a signature time may be (clock skew).'),
    maxMessageBytes: z.number().int().positive().default(8 * 1024 * 1024).describe('Largest accepted message (signed envelope) in bytes.'),
    outboxLimit: z.number().int().positive().default(10_000).describe('Most unconfirmed messages kept for resending; above it the oldest is given up (and its publisher told).'),
    prefetch: z
      .object({
        amphora: z.number().int().positive().default(1).describe("Orders an amphora handles at once (1: in order)."),
        health: z.number().int().positive().default(32).describe('Heartbeats the controller handles at once.'),
        controller: z.number().int().positive().default(8).describe('Config fetches the controller handles at once.'),
      })
      .prefault({}),
    maxHandlerAttempts: z
      .number()
      .int()
      .positive()
      .default(5)
      .describe('A message whose handler throws is requeued this many times at most, then dropped (logged, counted, an RPC gets an error answer).'),
    requeueDelayMs: z.number().int().min(0).default(100).describe('Pause before requeueing a failed message, doubled per attempt (max 5 s).'),
    drainTimeoutMs: z.number().int().min(0).default(10_000).describe('How long close() waits for running handlers, calls and confirms.'),
  })
  .prefault({});

export type TransportSettings = z.infer<typeof transportOptionsSchema>;

export type TransportOptions = NonNullable<z.input<typeof transportOptionsSchema>> & {
  identity: TransportIdentity;
  logger?: Logger;
  /** Clock used for signature times and the replay window (ms since epoch); tests move it. */
  now?: () => number;
};

// ---------------------------------------------------------------------------------------------
// Errors

/** No answer within the timeout, after every attempt. */
export class RpcTimeoutError extends Error {
  override name = 'RpcTimeoutError';
  constructor(
    readonly target: Principal,
    readonly messageType: string,
    readonly attempts: number,
    readonly timeoutMs: number,
  ) {
    super(`no answer from ${target} to ${messageType} after ${attempts} attempt(s) of ${timeoutMs} ms`);
  }
}

/** The other side's handler failed for good and answered with an error. */
export class RemoteError extends Error {
  override name = 'RemoteError';
  constructor(
    readonly target: Principal,
    readonly remoteMessage: string,
  ) {
    super(`${target} failed: ${remoteMessage}`);
  }
}

/** The transport is closing or closed: nothing new is accepted, unfinished work is given up. */
export class TransportClosedError extends Error {
  override name = 'TransportClosedError';
}

/** The broker could not route a message (its queue does not exist). */
export class UnroutableError extends Error {
  override name = 'UnroutableError';
}

/** The outbox was full: this (oldest) message was given up to make room. */
export class OutboxOverflowError extends Error {
  override name = 'OutboxOverflowError';
}

/** The first connection to the broker could not be made within initialConnectTimeoutMs. */
export class ConnectError extends Error {
  override name = 'ConnectError';
}

// ---------------------------------------------------------------------------------------------
// Counters

export type RejectReason =
  | SignatureFailure
  | 'unexpected-type' // a valid message of a type this queue does not carry
  | 'invalid' // the body does not match its schema
  | 'impersonation'; // the body names another amphora than the one that signed it

export interface TransportCounters {
  /** Messages the broker confirmed (in-process: queued). */
  published: number;
  /** Messages published again after a reconnection (unconfirmed, or an RPC whose answer would be lost). */
  republished: number;
  /** Messages received: requests, reports and answers (refused ones included). */
  received: number;
  /** Requests and reports handled successfully (answers to this side's calls are not counted). */
  handled: number;
  /** Copies of a message already handled or being handled (acked and dropped). */
  duplicates: number;
  /** Messages refused (acked and dropped, with a warning), by reason. */
  rejected: Record<RejectReason, number>;
  /** Deliveries whose handler threw and that went back to the queue. */
  requeued: number;
  /** Messages dropped after maxHandlerAttempts failures. */
  handlerFailures: number;
  /** RPC attempts that got no answer in time. */
  rpcTimeouts: number;
  /** RPC attempts after the first. */
  rpcRetries: number;
  /** Answers that arrived for no pending call (too late, or a duplicate answer). */
  lateReplies: number;
  /** Messages given up because the outbox overflowed. */
  outboxDropped: number;
  /** Successful connections (the first included). */
  connects: number;
  /** Connections lost while not closing. */
  connectionLosses: number;
  /** Connection attempts that failed. */
  connectFailures: number;
}

export function emptyCounters(): TransportCounters {
  return {
    published: 0,
    republished: 0,
    received: 0,
    handled: 0,
    duplicates: 0,
    rejected: {
      malformed: 0,
      'too-large': 0,
      'unknown-sender': 0,
      misaddressed: 0,
      'bad-signature': 0,
      stale: 0,
      future: 0,
      'unexpected-type': 0,
      invalid: 0,
      impersonation: 0,
    },
    requeued: 0,
    handlerFailures: 0,
    rpcTimeouts: 0,
    rpcRetries: 0,
    lateReplies: 0,
    outboxDropped: 0,
    connects: 0,
    connectionLosses: 0,
    connectFailures: 0,
  };
}

/** Exponential back-off with jitter taken off the delay (so it never exceeds maxDelayMs). */
export function backoffDelay(
  attempt: number,
  o: { initialDelayMs: number; maxDelayMs: number; factor: number; jitter: number },
  random: () => number = Math.random,
): number {
  const base = Math.min(o.maxDelayMs, o.initialDelayMs * o.factor ** Math.max(0, attempt));
  return Math.max(1, Math.round(base * (1 - o.jitter * random())));
}
