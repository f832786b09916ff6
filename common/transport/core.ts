// The behaviour both transports share: signing and checking every message, validating bodies at
// both ends, RPC with correlation ids / timeouts / retries, at-most-once handling per message id,
// requeue-on-throw with a bound, and draining on close. Subclasses only move bytes (the "wire").
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger, type Logger } from '../logging.ts';
import {
  AmphoraIdSchema,
  MessageValidationError,
  parseMessage,
  type Command,
  type CommandAck,
  type ConfigAck,
  type ConfigPush,
  type Heartbeat,
  type MessageBodies,
  type MessageType,
} from '../messages.ts';
import {
  amphoraIdOf,
  amphoraKeyRing,
  amphoraPrincipal,
  controllerKeyRing,
  ReplayGuard,
  SignatureError,
  signEnvelope,
  verifyEnvelope,
  type Envelope,
  type EnvelopeHeader,
  type KeyRing,
  type Principal,
} from './signing.ts';
import {
  emptyCounters,
  RemoteError,
  RpcTimeoutError,
  TransportClosedError,
  transportOptionsSchema,
  type AmphoraOrderHandlers,
  type AmphoraReportHandlers,
  type CallOptions,
  type CloseOptions,
  type MessageMeta,
  type RejectReason,
  type Transport,
  type TransportCounters,
  type TransportOptions,
  type TransportSettings,
} from './transport.ts';

/** Where a message goes. */
export type Destination =
  | { kind: 'amphora'; amphoraId: string } // one amphora's order queue
  | { kind: 'health' } // the controller's heartbeat queue
  | { kind: 'controller' } // the controller's request queue (config fetch)
  | { kind: 'reply'; address: string }; // a caller's reply queue

/** A queue a transport consumes (besides its own reply queue, which each wire handles itself). */
export type Source = { kind: 'amphora'; amphoraId: string } | { kind: 'health' } | { kind: 'controller' };

/** One message to publish. `seal()` signs it with a fresh timestamp at every (re)publish. */
export interface Outbound {
  dest: Destination;
  messageId: string;
  correlationId?: string;
  type: MessageType;
  seal(): Buffer;
  /** Publish with this transport's current reply address. */
  wantsReply: boolean;
  persistent: boolean;
  /** Keep it across reconnections until the broker confirms it; false: fail at once when disconnected. */
  keep: boolean;
  /** Give up if not published by then (ms since epoch, real clock); also bounds its time in the queue. */
  deadline?: number;
}

/** One delivery from the wire; ack/requeue are idempotent (the first call wins). */
export interface Delivery {
  content: Buffer;
  redelivered: boolean;
  replyTo?: string;
  ack(): void;
  requeue(): void;
}

interface PendingCall {
  target: Principal;
  replyType: 'config.ack' | 'command.ack' | 'config.fetch.reply';
  outbound: Outbound;
  settle(result: CallResult): void;
  /** Resolves once the call attempt is settled (answer, timeout, error or close). */
  finished: Promise<void>;
}

type CallResult = { kind: 'reply'; body: unknown } | { kind: 'timeout' } | { kind: 'closed' } | { kind: 'error'; error: Error };

type Reply = { type: MessageType; body: unknown };

const ORDER_TYPES: ReadonlySet<string> = new Set(['config.push', 'command']);

export abstract class TransportCore implements Transport {
  readonly self: Principal;
  protected readonly settings: TransportSettings;
  protected readonly log: Logger;
  protected readonly now: () => number;
  protected readonly counts: TransportCounters = emptyCounters();
  protected closing = false;
  private closed?: Promise<void>;
  private readonly keys: KeyRing;
  private readonly amphoraId?: string;
  private readonly guard: ReplayGuard<Reply>;
  private readonly pending = new Map<string, PendingCall>();
  private readonly inflight = new Set<Promise<void>>();
  private reportHandlers?: AmphoraReportHandlers;
  private orderHandlers?: AmphoraOrderHandlers;

  constructor(opts: TransportOptions) {
    const { identity, logger, now, ...rest } = opts;
    this.settings = transportOptionsSchema.parse(rest);
    if (identity.role === 'controller') {
      this.keys = controllerKeyRing(identity.masterKey);
    } else {
      checkAmphoraId(identity.amphoraId);
      this.keys = amphoraKeyRing(identity.amphoraId, identity.key);
      this.amphoraId = identity.amphoraId;
    }
    this.self = this.keys.self;
    this.now = now ?? Date.now;
    this.log = (logger ?? createLogger('transport')).child({ component: 'transport', self: this.self });
    this.guard = new ReplayGuard<Reply>(this.settings.replayWindowMs + this.settings.maxClockSkewMs);
  }

  // ---- the wire (implemented by each transport) ---------------------------------------------

  /** Publishes; resolves once the broker has it (confirmed). */
  protected abstract send(msg: Outbound): Promise<void>;
  /** Starts consuming `source` (and keeps doing so across reconnections). */
  protected abstract consume(source: Source, prefetch: number, onDelivery: (d: Delivery) => void): Promise<void>;
  /** Stops every consumer except the reply consumer. */
  protected abstract stopConsuming(): Promise<void>;
  /** Waits (until `deadline`) for every kept message to be confirmed. */
  protected abstract drainWire(deadline: number): Promise<void>;
  /** Gives up what is left (TransportClosedError) and disconnects. */
  protected abstract shutdownWire(): Promise<void>;
  protected abstract deleteAmphoraQueue(amphoraId: string): Promise<void>;

  // ---- public API ------------------------------------------------------------------------------

  counters(): TransportCounters {
    return structuredClone(this.counts);
  }

  async pushConfig(push: ConfigPush, opts: CallOptions = {}): Promise<ConfigAck> {
    this.requireRole('controller', 'pushConfig');
    const body = parseMessage('config.push', push);
    return this.call({ kind: 'amphora', amphoraId: body.amphoraId }, amphoraPrincipal(body.amphoraId), 'config.push', body, 'config.ack', opts);
  }

  async sendCommand(amphoraId: string, command: Command, opts: CallOptions = {}): Promise<CommandAck> {
    this.requireRole('controller', 'sendCommand');
    const body = parseMessage('command', { amphoraId, command });
    return this.call({ kind: 'amphora', amphoraId }, amphoraPrincipal(amphoraId), 'command', body, 'command.ack', opts);
  }

  async onAmphoraReport(handlers: AmphoraReportHandlers): Promise<void> {
    this.requireRole('controller', 'onAmphoraReport');
    this.assertOpen();
    if (this.reportHandlers) throw new Error('onAmphoraReport was already called on this transport');
    this.reportHandlers = handlers;
    await this.consume({ kind: 'health' }, this.settings.prefetch.health, (d) => this.onDelivery({ kind: 'health' }, d));
    await this.consume({ kind: 'controller' }, this.settings.prefetch.controller, (d) => this.onDelivery({ kind: 'controller' }, d));
  }

  async forgetAmphora(amphoraId: string): Promise<void> {
    this.requireRole('controller', 'forgetAmphora');
    this.assertOpen();
    checkAmphoraId(amphoraId);
    await this.deleteAmphoraQueue(amphoraId);
  }

  async serveAmphora(handlers: AmphoraOrderHandlers): Promise<void> {
    const amphoraId = this.requireRole('amphora', 'serveAmphora');
    this.assertOpen();
    if (this.orderHandlers) throw new Error('serveAmphora was already called on this transport');
    this.orderHandlers = handlers;
    const source: Source = { kind: 'amphora', amphoraId };
    await this.consume(source, this.settings.prefetch.amphora, (d) => this.onDelivery(source, d));
  }

  async publishHeartbeat(h: Heartbeat): Promise<void> {
    const amphoraId = this.requireRole('amphora', 'publishHeartbeat');
    this.assertOpen();
    const body = parseMessage('heartbeat', h);
    if (body.id !== amphoraId) throw new Error(`amphora ${amphoraId} cannot publish a heartbeat for ${body.id}`);
    const messageId = randomUUID();
    const seal = this.sealer('controller', messageId, 'heartbeat', body);
    this.checkSize(seal, 'heartbeat');
    await this.send({
      dest: { kind: 'health' },
      messageId,
      type: 'heartbeat',
      seal,
      wantsReply: false,
      persistent: true,
      keep: true,
    });
  }

  async fetchConfig(opts: CallOptions = {}): Promise<ConfigPush | null> {
    const amphoraId = this.requireRole('amphora', 'fetchConfig');
    const reply = await this.call({ kind: 'controller' }, 'controller', 'config.fetch', { amphoraId }, 'config.fetch.reply', opts);
    return 'none' in reply ? null : reply;
  }

  close(opts: CloseOptions = {}): Promise<void> {
    this.closed ??= this.drainAndClose(opts.drainTimeoutMs ?? this.settings.drainTimeoutMs);
    return this.closed;
  }

  // ---- close -------------------------------------------------------------------------------------

  private async drainAndClose(drainTimeoutMs: number): Promise<void> {
    this.closing = true;
    const deadline = Date.now() + drainTimeoutMs;
    this.log.info({ inflight: this.inflight.size, pendingCalls: this.pending.size, drainTimeoutMs }, 'transport closing: draining');
    try {
      await this.stopConsuming();
    } catch (err) {
      this.log.warn({ err }, 'stopping consumers failed; unacked deliveries go back to their queues on disconnect');
    }
    const handlersDone = await settleBy([...this.inflight], deadline);
    if (!handlersDone) this.log.warn({ inflight: this.inflight.size }, 'handlers still running at the drain deadline; their messages are requeued');
    const callsDone = await settleBy([...this.pending.values()].map((p) => p.finished), deadline);
    if (!callsDone) this.log.warn({ pendingCalls: this.pending.size }, 'calls still waiting at the drain deadline; they fail with TransportClosedError');
    for (const p of [...this.pending.values()]) p.settle({ kind: 'closed' });
    try {
      await this.drainWire(deadline);
    } finally {
      await this.shutdownWire();
      this.log.info({ counters: this.counts }, 'transport closed');
    }
  }

  // ---- RPC ---------------------------------------------------------------------------------------

  private async call<R extends PendingCall['replyType']>(
    dest: Destination,
    target: Principal,
    type: 'config.push' | 'command' | 'config.fetch',
    body: unknown,
    replyType: R,
    opts: CallOptions,
  ): Promise<MessageBodies[R]> {
    this.assertOpen();
    const timeoutMs = opts.timeoutMs ?? this.settings.callTimeoutMs;
    const attempts = (opts.retries ?? this.settings.callRetries) + 1;
    const messageId = randomUUID();
    const seal = this.sealer(target, messageId, type, body);
    this.checkSize(seal, type);
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (this.closing) throw new TransportClosedError(`transport closed before ${type} to ${target} was answered`);
      if (attempt > 1) {
        this.counts.rpcRetries++;
        this.log.info({ messageId, type, target, attempt }, 'retrying call');
      }
      const result = await this.attempt(dest, target, messageId, type, seal, replyType, timeoutMs);
      switch (result.kind) {
        case 'reply':
          return result.body as MessageBodies[R];
        case 'error':
          throw result.error;
        case 'closed':
          throw new TransportClosedError(`transport closed before ${type} to ${target} was answered`);
        case 'timeout':
          this.counts.rpcTimeouts++;
          this.log.warn({ messageId, type, target, attempt, timeoutMs }, 'call attempt timed out');
      }
    }
    throw new RpcTimeoutError(target, type, attempts, timeoutMs);
  }

  private attempt(
    dest: Destination,
    target: Principal,
    messageId: string,
    type: MessageType,
    seal: () => Buffer,
    replyType: PendingCall['replyType'],
    timeoutMs: number,
  ): Promise<CallResult> {
    return new Promise<CallResult>((resolve) => {
      const outbound: Outbound = {
        dest,
        messageId,
        correlationId: messageId,
        type,
        seal,
        wantsReply: true,
        persistent: true,
        keep: true,
        deadline: Date.now() + timeoutMs,
      };
      let done = false;
      let markFinished!: () => void;
      const finished = new Promise<void>((r) => (markFinished = r));
      const settle = (r: CallResult): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (this.pending.get(messageId) === call) this.pending.delete(messageId);
        resolve(r);
        markFinished();
      };
      const call: PendingCall = { target, replyType, outbound, settle, finished };
      const timer = setTimeout(() => settle({ kind: 'timeout' }), timeoutMs);
      this.pending.set(messageId, call);
      this.send(outbound).catch((err: unknown) => {
        if (err instanceof TransportClosedError) settle({ kind: 'closed' });
        else if (!done) this.log.warn({ err, messageId, type, target }, 'call request not published; waiting for the timeout');
      });
    });
  }

  /** The wire is gone for good (no reconnection): every call still waiting fails now with TransportClosedError. */
  protected abandonPendingCalls(): void {
    for (const p of [...this.pending.values()]) p.settle({ kind: 'closed' });
  }

  /** The outbound requests of calls still waiting for their answer (resent after a reconnection). */
  protected pendingRequests(): Outbound[] {
    return [...this.pending.values()].map((p) => p.outbound);
  }

  // ---- receiving ---------------------------------------------------------------------------------

  private onDelivery(source: Source, d: Delivery): void {
    if (this.closing) {
      d.requeue();
      return;
    }
    const work = this.process(source, d).catch((err: unknown) => {
      this.log.error({ err, source: source.kind }, 'unexpected failure while processing a delivery; requeued');
      d.requeue();
    });
    this.inflight.add(work);
    void work.finally(() => this.inflight.delete(work));
  }

  /** Replies are handled here; they are never requeued. */
  protected onReplyDelivery(d: Delivery): void {
    try {
      this.processReply(d);
    } catch (err) {
      this.log.error({ err }, 'unexpected failure while processing an answer');
    } finally {
      d.ack();
    }
  }

  private open(d: Delivery): Envelope | undefined {
    this.counts.received++;
    try {
      return verifyEnvelope(d.content, {
        self: this.self,
        keyFor: this.keys.verifyingKey,
        now: this.now(),
        maxAgeMs: this.settings.replayWindowMs,
        maxSkewMs: this.settings.maxClockSkewMs,
        maxBytes: this.settings.maxMessageBytes,
      });
    } catch (err) {
      if (!(err instanceof SignatureError)) throw err;
      this.reject(d, err.reason, err.message, err.header);
      return undefined;
    }
  }

  private reject(d: Delivery, reason: RejectReason, detail: string, header?: Partial<EnvelopeHeader>): void {
    this.counts.rejected[reason]++;
    this.log.warn({ reason, messageId: header?.id, type: header?.type, claimedFrom: header?.from, detail }, 'message refused and dropped');
    d.ack();
  }

  private async process(source: Source, d: Delivery): Promise<void> {
    const env = this.open(d);
    if (!env) return;
    const allowed = source.kind === 'amphora' ? ORDER_TYPES.has(env.type) : env.type === (source.kind === 'health' ? 'heartbeat' : 'config.fetch');
    if (!allowed) return this.reject(d, 'unexpected-type', `${env.type} does not belong in the ${source.kind} queue`, env);
    const type = env.type as 'config.push' | 'command' | 'heartbeat' | 'config.fetch';
    let body: MessageBodies[typeof type];
    try {
      body = parseMessage(type, env.body);
    } catch (err) {
      if (err instanceof MessageValidationError) return this.reject(d, 'invalid', err.message, env);
      throw err;
    }
    const sender = amphoraIdOf(env.from);
    if (type === 'config.push' || type === 'command') {
      const target = (body as ConfigPush).amphoraId;
      if (target !== this.amphoraId) return this.reject(d, 'misaddressed', `order for amphora ${target} received by ${this.self}`, env);
    } else {
      const claimed = type === 'heartbeat' ? (body as Heartbeat).id : (body as { amphoraId: string }).amphoraId;
      if (claimed !== sender) return this.reject(d, 'impersonation', `${env.from} sent a ${type} for amphora ${claimed}`, env);
    }
    const isRpc = type !== 'heartbeat';
    if (isRpc && !d.replyTo) return this.reject(d, 'invalid', `${type} request without a reply address`, env);

    // A config fetch only reads: a copy that comes again after it was answered (the caller retried
    // or reconnected) is simply answered again, so the configuration is not kept in memory.
    const rereadable = type === 'config.fetch';
    let state = this.guard.state(env.id, this.now());
    if (state === 'done' && rereadable) state = 'new';
    if (state !== 'new') {
      this.counts.duplicates++;
      this.log.debug({ messageId: env.id, type, state }, 'duplicate message dropped');
      if (isRpc && state === 'done') {
        const cached = this.guard.reply(env.id);
        if (cached) await this.sendReply(d.replyTo!, env, cached);
      } else if (isRpc) {
        this.guard.addWaiter(env.id, d.replyTo!);
      }
      d.ack();
      return;
    }

    const attempt = this.guard.begin(env.id, this.now());
    const meta: MessageMeta = { messageId: env.id, from: env.from, signedAt: env.ts, createdAt: env.born, attempt, redelivered: d.redelivered };
    let reply: Reply | undefined;
    try {
      reply = await this.invoke(type, body, meta);
      this.counts.handled++;
    } catch (err) {
      if (attempt < this.settings.maxHandlerAttempts) {
        const pause = Math.min(5000, this.settings.requeueDelayMs * 2 ** (attempt - 1));
        this.log.warn({ err, messageId: env.id, type, attempt, pauseMs: pause }, 'handler failed; message requeued');
        this.guard.retry(env.id);
        if (pause > 0) await sleep(pause);
        this.counts.requeued++;
        d.requeue();
        return;
      }
      this.counts.handlerFailures++;
      this.log.error({ err, messageId: env.id, type, attempt }, 'handler failed on every attempt; message dropped');
      reply = isRpc ? { type: 'error', body: { error: `${type} failed ${attempt} times: ${errorText(err)}` } } : undefined;
    }
    const waiting = this.guard.complete(env.id, this.now(), rereadable ? undefined : reply);
    if (reply) {
      for (const replyTo of new Set([d.replyTo!, ...waiting])) await this.sendReply(replyTo, env, reply);
    }
    d.ack();
  }

  private async invoke(type: 'config.push' | 'command' | 'heartbeat' | 'config.fetch', body: unknown, meta: MessageMeta): Promise<Reply | undefined> {
    switch (type) {
      case 'config.push': {
        const ack = parseMessage('config.ack', await this.orderHandlers!.configPush(body as ConfigPush, meta));
        if (ack.amphoraId !== this.amphoraId) throw new Error(`configPush handler answered for amphora ${ack.amphoraId}`);
        return { type: 'config.ack', body: ack };
      }
      case 'command': {
        const ack = parseMessage('command.ack', await this.orderHandlers!.command((body as MessageBodies['command']).command, meta));
        if (ack.amphoraId !== this.amphoraId) throw new Error(`command handler answered for amphora ${ack.amphoraId}`);
        return { type: 'command.ack', body: ack };
      }
      case 'config.fetch': {
        const req = body as MessageBodies['config.fetch'];
        const found = await this.reportHandlers!.configFetch(req, meta);
        const reply = parseMessage('config.fetch.reply', found ?? { amphoraId: req.amphoraId, none: true });
        if (reply.amphoraId !== req.amphoraId) throw new Error(`configFetch handler answered amphora ${req.amphoraId} with the configuration of ${reply.amphoraId}`);
        return { type: 'config.fetch.reply', body: reply };
      }
      case 'heartbeat':
        await this.reportHandlers!.heartbeat(body as Heartbeat, meta);
        return undefined;
    }
  }

  private async sendReply(replyTo: string, request: Envelope, reply: Reply): Promise<void> {
    const messageId = randomUUID();
    try {
      await this.send({
        dest: { kind: 'reply', address: replyTo },
        messageId,
        correlationId: request.id,
        type: reply.type,
        seal: this.sealer(request.from, messageId, reply.type, reply.body, request.id),
        wantsReply: false,
        persistent: false,
        keep: false,
      });
    } catch (err) {
      // The caller resends its request (same id) after a reconnection or a timeout, and gets the kept answer.
      this.log.warn({ err, messageId: request.id, type: reply.type, to: request.from }, 'answer not delivered; the caller will ask again');
    }
  }

  private processReply(d: Delivery): void {
    const env = this.open(d);
    if (!env) return;
    const call = env.re ? this.pending.get(env.re) : undefined;
    if (!call) {
      this.counts.lateReplies++;
      this.log.debug({ re: env.re, type: env.type, from: env.from }, 'answer for no pending call (late or duplicate) dropped');
      return;
    }
    if (env.from !== call.target) return this.reject(d, 'impersonation', `answer to a call to ${call.target} came from ${env.from}`, env);
    if (env.type !== call.replyType && env.type !== 'error') {
      return this.reject(d, 'unexpected-type', `${env.type} is not an answer to a call expecting ${call.replyType}`, env);
    }
    let body: unknown;
    try {
      body = parseMessage(env.type as PendingCall['replyType'] | 'error', env.body);
    } catch (err) {
      if (err instanceof MessageValidationError) return this.reject(d, 'invalid', err.message, env);
      throw err;
    }
    if (env.type === 'error') {
      call.settle({ kind: 'error', error: new RemoteError(call.target, (body as { error: string }).error) });
      return;
    }
    const named = (body as { amphoraId: string }).amphoraId;
    const expected = amphoraIdOf(call.target) ?? this.amphoraId;
    if (named !== expected) return this.reject(d, 'impersonation', `answer names amphora ${named}, expected ${expected}`, env);
    call.settle({ kind: 'reply', body });
  }

  // ---- helpers -----------------------------------------------------------------------------------

  private sealer(to: Principal, messageId: string, type: MessageType, body: unknown, re?: string): () => Buffer {
    const key = this.keys.signingKey(to);
    const born = this.now();
    return () => signEnvelope(key, { v: 1, id: messageId, ts: this.now(), born, from: this.self, to, type, ...(re ? { re } : {}), body });
  }

  /** Refuses at the sender what the receiver would refuse as too large (or cannot serialise). */
  private checkSize(seal: () => Buffer, type: MessageType): void {
    const size = seal().length;
    if (size > this.settings.maxMessageBytes) {
      throw new RangeError(`${type} message of ${size} bytes exceeds maxMessageBytes (${this.settings.maxMessageBytes})`);
    }
  }

  private requireRole(role: 'controller' | 'amphora', method: string): string {
    if (role === 'controller' && this.self !== 'controller') throw new Error(`${method} is for the controller; this transport is ${this.self}`);
    if (role === 'amphora' && !this.amphoraId) throw new Error(`${method} is for an amphora; this transport is the controller`);
    return this.amphoraId ?? '';
  }

  protected assertOpen(): void {
    if (this.closing) throw new TransportClosedError('transport is closing');
  }
}

function checkAmphoraId(amphoraId: string): void {
  if (!AmphoraIdSchema.safeParse(amphoraId).success) throw new TypeError(`amphora id must be a UUID, got ${JSON.stringify(amphoraId)}`);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Waits for every promise to settle, or for the deadline; true if all settled. */
async function settleBy(promises: Promise<unknown>[], deadline: number): Promise<boolean> {
  if (promises.length === 0) return true;
  const remaining = deadline - Date.now();
  if (remaining <= 0) return false;
  const ac = new AbortController();
  const all = Promise.allSettled(promises).then(() => true);
  const timeout = sleep(remaining, false, { signal: ac.signal }).catch(() => false);
  const result = await Promise.race([all, timeout]);
  ac.abort();
  return result;
}
