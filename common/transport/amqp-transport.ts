// The transport over RabbitMQ (amqplib): the topology of topology.md, publisher confirms with a
// local outbox that resends whatever the broker has not confirmed, manual acks, and reconnection
// with exponential back-off. The message semantics (signing, validation, RPC, dedup) are in core.ts.
//
// amqplib's own `recovery` option is not used: after each (re)connection the transport must, in
// order, re-declare the topology, open a new reply queue, restart its consumers, resend the
// outbox and re-ask pending calls; one explicit loop keeps that order visible and testable.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Options } from 'amqplib';
import { TransportCore, type Delivery, type Destination, type Outbound, type Source } from './core.ts';
import { topologyNames, type TopologyNames } from './topology.ts';
import {
  backoffDelay,
  ConnectError,
  OutboxOverflowError,
  TransportClosedError,
  UnroutableError,
  type TransportOptions,
} from './transport.ts';

interface OutboxEntry {
  msg: Outbound;
  /** Publication order (kept when an entry goes back to the outbox). */
  seq: number;
  state: 'queued' | 'sent' | 'settled';
  /** Connection generation it was last published on. */
  gen: number;
  published: boolean;
  resolve(): void;
  reject(err: Error): void;
}

interface ConsumerSpec {
  source: Source;
  prefetch: number;
  onDelivery(d: Delivery): void;
  /** Consumer tag and the connection generation it belongs to. */
  tag?: string;
  gen?: number;
  stopped: boolean;
}

type State = 'down' | 'connecting' | 'open' | 'closed';

export class AmqpTransport extends TransportCore {
  /** Connects (retrying with back-off up to initialConnectTimeoutMs) and returns an open transport. */
  static async connect(opts: TransportOptions): Promise<AmqpTransport> {
    const t = new AmqpTransport(opts);
    await t.start();
    return t;
  }

  private readonly names: TopologyNames;
  private readonly instance = randomUUID().slice(0, 8);
  private readonly url: string;
  private readonly safeUrl: string;
  private state: State = 'down';
  private generation = 0;
  private conn?: ChannelModel;
  private pub?: ConfirmChannel;
  private sub?: Channel;
  private replyQueue?: string;
  private reconnectTimer?: NodeJS.Timeout;
  private reconnectAttempt = 0;
  private readonly consumers: ConsumerSpec[] = [];
  private consumerOps: Promise<unknown> = Promise.resolve();
  private readonly outbox: OutboxEntry[] = [];
  private readonly unconfirmed = new Set<OutboxEntry>();
  /** `${generation}:${messageId}` of messages the broker returned as unroutable (before their confirm). */
  private readonly returned = new Set<string>();
  private declaredAmphoraQueues = new Set<string>();
  private flushing = false;
  private flushAgain = false;
  private nextSeq = 0;

  private constructor(opts: TransportOptions) {
    super(opts);
    this.names = topologyNames(this.settings.prefix);
    const u = new URL(this.settings.url);
    if (!u.searchParams.has('heartbeat')) u.searchParams.set('heartbeat', String(this.settings.amqpHeartbeatSeconds));
    this.url = u.toString();
    if (u.password) u.password = '***';
    this.safeUrl = u.toString();
  }

  /** A method, so that TypeScript does not narrow `state` across awaits. */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Whether the transport is connected right now. */
  get connected(): boolean {
    return this.state === 'open';
  }

  /** Messages waiting to be published or confirmed. */
  get outboxSize(): number {
    return this.outbox.length + this.unconfirmed.size;
  }

  // ---- connection ----------------------------------------------------------------------------

  private async start(): Promise<void> {
    const limit = this.settings.initialConnectTimeoutMs;
    const deadline = limit === null ? Infinity : Date.now() + limit;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.establish();
        return;
      } catch (err) {
        this.counts.connectFailures++;
        const delay = backoffDelay(attempt, this.settings.reconnect);
        if (this.state === 'closed' || Date.now() + delay >= deadline) {
          await this.shutdownWire();
          throw new ConnectError(`cannot connect to RabbitMQ at ${this.safeUrl}: ${(err as Error).message}`, { cause: err });
        }
        this.log.warn({ err, attempt: attempt + 1, delayMs: delay, url: this.safeUrl }, 'cannot connect to RabbitMQ; retrying');
        await sleep(delay);
      }
    }
  }

  private scheduleReconnect(): void {
    if (this.state === 'closed' || this.reconnectTimer || this.state === 'connecting' || this.state === 'open') return;
    const delay = backoffDelay(this.reconnectAttempt++, this.settings.reconnect);
    this.log.warn({ attempt: this.reconnectAttempt, delayMs: delay }, 'reconnecting to RabbitMQ');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.state === 'closed') return;
      this.establish().catch((err: unknown) => {
        this.counts.connectFailures++;
        this.log.warn({ err, url: this.safeUrl }, 'reconnection attempt failed');
        this.scheduleReconnect();
      });
    }, delay);
  }

  private async establish(): Promise<void> {
    this.state = 'connecting';
    let conn: ChannelModel;
    try {
      conn = await connect(this.url, {
        timeout: this.settings.connectTimeoutMs,
        clientProperties: { connection_name: `argonaut ${this.self}` },
      });
    } catch (err) {
      if (this.state === 'connecting') this.state = 'down';
      throw err;
    }
    const gen = ++this.generation;
    let sub: Channel;
    try {
      conn.on('error', (err: Error) => this.log.warn({ err, gen }, 'AMQP connection error'));
      conn.on('close', (err?: Error) => this.onConnectionClosed(gen, err));
      conn.on('blocked', (reason: string) => this.log.warn({ reason }, 'RabbitMQ blocks publishing (resource alarm)'));
      conn.on('unblocked', () => this.log.info('RabbitMQ unblocked publishing'));
      const pub = await conn.createConfirmChannel();
      sub = await conn.createChannel();
      for (const [name, ch] of [['publish', pub], ['consume', sub]] as const) {
        ch.on('error', (err: Error) => this.log.warn({ err, channel: name }, 'AMQP channel error'));
        // A channel closed alone (a channel error) leaves the connection half-usable: close it and
        // reconnect. Checked a tick later, because when the connection itself closes, amqplib
        // closes the channels first and only then reports the connection's close.
        ch.on('close', () =>
          setImmediate(() => {
            if (gen === this.generation && this.conn === conn && this.state === 'open') {
              this.log.warn({ channel: name }, 'AMQP channel closed unexpectedly; reconnecting');
              conn.close().catch((err: unknown) => this.log.warn({ err }, 'closing the AMQP connection failed'));
            }
          }),
        );
      }
      pub.on('return', (m: ConsumeMessage) => {
        this.returned.add(`${gen}:${m.properties.messageId}`);
      });
      if (this.isClosed()) throw new TransportClosedError('transport closed while connecting');
      await this.assertTopology(pub);
      const replyQueue = this.names.replyQueue(this.instance, gen);
      await sub.assertQueue(replyQueue, { exclusive: true, autoDelete: true, durable: false });
      const replyChannel = sub;
      await sub.consume(replyQueue, (m) => this.onMessage(replyChannel, gen, m, (d) => this.onReplyDelivery(d)), { noAck: false });
      this.conn = conn;
      this.pub = pub;
      this.sub = sub;
      this.replyQueue = replyQueue;
      this.declaredAmphoraQueues = new Set();
      this.returned.clear();
    } catch (err) {
      if (this.generation === gen) {
        this.conn = this.pub = this.sub = undefined;
        this.replyQueue = undefined;
      }
      if (this.state === 'connecting') this.state = 'down';
      await conn.close().catch((e: unknown) => this.log.debug({ err: e }, 'closing a half-open connection failed'));
      throw err;
    }
    if (this.isClosed()) {
      await conn.close().catch((e: unknown) => this.log.debug({ err: e }, 'closing the connection failed'));
      throw new TransportClosedError('transport closed while connecting');
    }
    // Open before the consumers start: a handler's answer must be publishable at once.
    this.state = 'open';
    const reconnected = this.counts.connects > 0;
    this.counts.connects++;
    this.reconnectAttempt = 0;
    this.log.info({ gen, url: this.safeUrl, outbox: this.outboxSize, reconnected }, 'connected to RabbitMQ');
    if (reconnected) this.reaskPendingCalls();
    this.flush();
    try {
      for (const spec of this.consumers) if (!spec.stopped) await this.startConsumer(spec, sub, gen);
    } catch (err) {
      // Treated as a lost connection: the close handler schedules the next attempt.
      this.log.warn({ err, gen }, 'restarting consumers failed; reconnecting');
      await conn.close().catch((e: unknown) => this.log.debug({ err: e }, 'closing the connection failed'));
    }
  }

  private onConnectionClosed(gen: number, err?: Error): void {
    if (gen !== this.generation || this.conn === undefined) return;
    this.conn = this.pub = this.sub = undefined;
    this.replyQueue = undefined;
    for (const spec of this.consumers) if (spec.gen === gen) spec.tag = undefined;
    if (this.state !== 'open') return;
    this.state = 'down';
    this.counts.connectionLosses++;
    this.log.warn({ err, gen, outbox: this.outboxSize }, 'lost the connection to RabbitMQ');
    this.scheduleReconnect();
  }

  private async assertTopology(ch: Channel): Promise<void> {
    const n = this.names;
    await ch.assertExchange(n.amphoraExchange, 'direct', { durable: true });
    await ch.assertExchange(n.controllerExchange, 'direct', { durable: true });
    // Both sides declare the controller's queues: a heartbeat is never unroutable, even before
    // the first controller starts.
    await ch.assertQueue(n.healthQueue, { durable: true });
    await ch.bindQueue(n.healthQueue, n.controllerExchange, n.healthRoutingKey);
    await ch.assertQueue(n.controllerQueue, { durable: true });
    await ch.bindQueue(n.controllerQueue, n.controllerExchange, n.configFetchRoutingKey);
  }

  private async declareAmphoraQueue(ch: Channel, amphoraId: string): Promise<string> {
    const queue = this.names.amphoraQueue(amphoraId);
    await ch.assertQueue(queue, { durable: true });
    await ch.bindQueue(queue, this.names.amphoraExchange, amphoraId);
    return queue;
  }

  // ---- publishing ----------------------------------------------------------------------------------

  protected send(msg: Outbound): Promise<void> {
    if (this.state === 'closed') return Promise.reject(new TransportClosedError('transport closed'));
    if (!msg.keep && this.state !== 'open') return Promise.reject(new Error('not connected to RabbitMQ'));
    return new Promise<void>((resolve, reject) => {
      this.enqueue({ msg, seq: this.nextSeq++, state: 'queued', gen: 0, published: false, resolve, reject });
      this.flush();
    });
  }

  private enqueue(entry: OutboxEntry): void {
    if (entry.msg.keep && this.outboxSize >= this.settings.outboxLimit) {
      const oldest = this.outbox.findIndex((e) => e.msg.keep);
      if (oldest >= 0) {
        const [dropped] = this.outbox.splice(oldest, 1);
        dropped.state = 'settled';
        this.counts.outboxDropped++;
        this.log.error({ messageId: dropped.msg.messageId, type: dropped.msg.type, limit: this.settings.outboxLimit }, 'outbox full: oldest message given up');
        dropped.reject(new OutboxOverflowError(`outbox full (${this.settings.outboxLimit}): ${dropped.msg.type} ${dropped.msg.messageId} given up`));
      }
    }
    entry.state = 'queued';
    let i = this.outbox.length;
    while (i > 0 && this.outbox[i - 1].seq > entry.seq) i--;
    this.outbox.splice(i, 0, entry);
  }

  private flush(): void {
    if (this.flushing) {
      this.flushAgain = true;
      return;
    }
    this.flushing = true;
    this.flushOutbox().catch((err: unknown) => {
      this.flushing = false;
      this.log.error({ err }, 'outbox flush failed');
    });
  }

  /** One flush loop at a time (`flushing`); it ends by clearing `flushing` right after its last check. */
  private async flushOutbox(): Promise<void> {
    do {
      this.flushAgain = false;
      while (this.state === 'open' && this.outbox.length > 0) {
        const ch = this.pub!;
        const gen = this.generation;
        const entry = this.outbox.shift()!;
        const { msg } = entry;
        if (msg.deadline !== undefined && Date.now() >= msg.deadline) {
          entry.state = 'settled';
          entry.reject(new Error(`${msg.type} ${msg.messageId} not published before its deadline`));
          continue;
        }
        let content: Buffer;
        try {
          content = msg.seal();
        } catch (err) {
          entry.state = 'settled';
          entry.reject(toError(err)); // cannot be signed: resending would not help
          continue;
        }
        try {
          if (msg.dest.kind === 'amphora' && !this.declaredAmphoraQueues.has(msg.dest.amphoraId)) {
            await this.declareAmphoraQueue(ch, msg.dest.amphoraId);
            this.declaredAmphoraQueues.add(msg.dest.amphoraId);
          }
          if (gen !== this.generation || this.state !== 'open') {
            this.enqueue(entry);
            break;
          }
          if (!this.publish(ch, gen, entry, content)) await waitForDrain(ch);
        } catch (err) {
          this.unconfirmed.delete(entry);
          if (msg.keep && !this.isClosed()) {
            this.log.warn({ err, messageId: msg.messageId, type: msg.type }, 'publish failed; kept for the next connection');
            this.enqueue(entry);
          } else {
            entry.state = 'settled';
            entry.reject(err instanceof Error ? err : new Error(String(err)));
          }
          break;
        }
      }
    } while (this.flushAgain && this.state === 'open');
    // Same synchronous step as the check above: a flush() asked for in between cannot be lost.
    this.flushing = false;
  }

  private publish(ch: ConfirmChannel, gen: number, entry: OutboxEntry, content: Buffer): boolean {
    const { msg } = entry;
    const route = this.route(msg.dest);
    const props: Options.Publish = {
      messageId: msg.messageId,
      correlationId: msg.correlationId,
      replyTo: msg.wantsReply ? this.replyQueue : undefined,
      persistent: msg.persistent,
      mandatory: true,
      type: msg.type,
      appId: 'argonaut',
      contentType: 'application/octet-stream',
      timestamp: Math.floor(Date.now() / 1000),
    };
    if (msg.deadline !== undefined) props.expiration = String(Math.max(1, msg.deadline - Date.now()));
    if (entry.published) this.counts.republished++;
    entry.published = true;
    entry.state = 'sent';
    entry.gen = gen;
    this.unconfirmed.add(entry);
    return ch.publish(route.exchange, route.routingKey, content, props, (err: unknown) => this.onConfirm(entry, gen, err));
  }

  private onConfirm(entry: OutboxEntry, gen: number, err: unknown): void {
    this.unconfirmed.delete(entry);
    const returned = this.returned.delete(`${gen}:${entry.msg.messageId}`);
    if (entry.state !== 'sent' || entry.gen !== gen) return;
    const { msg } = entry;
    if (!err && returned) {
      entry.state = 'settled';
      this.log.warn({ messageId: msg.messageId, type: msg.type, dest: msg.dest }, 'message returned by RabbitMQ: no queue for it');
      entry.reject(new UnroutableError(`${msg.type} ${msg.messageId} to ${describe(msg.dest)} was unroutable`));
      return;
    }
    if (!err) {
      entry.state = 'settled';
      this.counts.published++;
      entry.resolve();
      return;
    }
    // Nacked by the broker, or the channel closed before the confirm: resend if it must be kept.
    if (msg.keep && !this.isClosed()) {
      this.enqueue(entry);
      if (this.state === 'open' && gen === this.generation) setTimeout(() => this.flush(), 100).unref();
      return;
    }
    entry.state = 'settled';
    entry.reject(this.isClosed() ? new TransportClosedError('transport closed before the broker confirmed the message') : toError(err));
  }

  /** After a reconnection: answers to calls published earlier would go to a reply queue that is gone. */
  private reaskPendingCalls(): void {
    const waiting = new Set([...this.outbox, ...this.unconfirmed].map((e) => e.msg));
    for (const msg of this.pendingRequests()) {
      if (waiting.has(msg)) continue;
      this.log.info({ messageId: msg.messageId, type: msg.type, dest: msg.dest }, 're-asking a pending call after reconnection');
      this.enqueue({
        msg,
        seq: this.nextSeq++,
        state: 'queued',
        gen: 0,
        published: true,
        resolve: () => {},
        reject: (err) => this.log.warn({ err, messageId: msg.messageId }, 're-asked call not published'),
      });
    }
  }

  private route(dest: Destination): { exchange: string; routingKey: string } {
    switch (dest.kind) {
      case 'amphora':
        return { exchange: this.names.amphoraExchange, routingKey: dest.amphoraId };
      case 'health':
        return { exchange: this.names.controllerExchange, routingKey: this.names.healthRoutingKey };
      case 'controller':
        return { exchange: this.names.controllerExchange, routingKey: this.names.configFetchRoutingKey };
      case 'reply':
        return { exchange: '', routingKey: dest.address };
    }
  }

  // ---- consuming ------------------------------------------------------------------------------------

  protected consume(source: Source, prefetch: number, onDelivery: (d: Delivery) => void): Promise<void> {
    const spec: ConsumerSpec = { source, prefetch, onDelivery, stopped: false };
    this.consumers.push(spec);
    if (this.state !== 'open') return Promise.resolve(); // started on (re)connection
    return this.startConsumer(spec, this.sub!, this.generation);
  }

  private startConsumer(spec: ConsumerSpec, ch: Channel, gen: number): Promise<void> {
    const op = this.consumerOps.then(async () => {
      if (spec.stopped || spec.gen === gen) return;
      const queue =
        spec.source.kind === 'amphora'
          ? await this.declareAmphoraQueue(ch, spec.source.amphoraId)
          : spec.source.kind === 'health'
            ? this.names.healthQueue
            : this.names.controllerQueue;
      await ch.prefetch(spec.prefetch); // per consumer (global false): applies to the consumer created next
      const { consumerTag } = await ch.consume(queue, (m) => this.onMessage(ch, gen, m, spec.onDelivery), { noAck: false });
      spec.tag = consumerTag;
      spec.gen = gen;
      this.log.info({ queue, prefetch: spec.prefetch, gen }, 'consuming');
    });
    this.consumerOps = op.catch(() => undefined); // the chain goes on; the caller of `op` gets the error
    return op;
  }

  private onMessage(ch: Channel, gen: number, m: ConsumeMessage | null, onDelivery: (d: Delivery) => void): void {
    if (m === null) {
      if (gen === this.generation && this.conn && this.state === 'open') {
        this.log.warn({ gen }, 'consumer cancelled by RabbitMQ (queue deleted?); reconnecting to declare it again');
        this.conn.close().catch((err: unknown) => this.log.warn({ err }, 'closing the AMQP connection failed'));
      }
      return;
    }
    let settled = false;
    const settle = (what: 'ack' | 'requeue'): void => {
      if (settled) return;
      settled = true;
      if (this.sub !== ch) {
        this.log.debug({ what, messageId: m.properties.messageId }, 'delivery settled after its channel closed; RabbitMQ redelivers it');
        return;
      }
      try {
        if (what === 'ack') ch.ack(m);
        else ch.nack(m, false, true);
      } catch (err) {
        this.log.warn({ err, what, messageId: m.properties.messageId }, 'ack/nack failed; RabbitMQ redelivers the message');
      }
    };
    onDelivery({
      content: m.content,
      redelivered: m.fields.redelivered,
      replyTo: typeof m.properties.replyTo === 'string' ? m.properties.replyTo : undefined,
      ack: () => settle('ack'),
      requeue: () => settle('requeue'),
    });
  }

  protected async stopConsuming(): Promise<void> {
    await this.consumerOps;
    const errors: unknown[] = [];
    for (const spec of this.consumers) {
      spec.stopped = true;
      if (spec.tag && spec.gen === this.generation && this.sub) {
        try {
          await this.sub.cancel(spec.tag);
        } catch (err) {
          errors.push(err);
        }
        spec.tag = undefined;
      }
    }
    if (errors.length) throw new AggregateError(errors, 'cancelling consumers failed');
  }

  protected async deleteAmphoraQueue(amphoraId: string): Promise<void> {
    if (this.state !== 'open' || !this.pub) throw new Error('not connected to RabbitMQ');
    await this.pub.deleteQueue(this.names.amphoraQueue(amphoraId));
    this.declaredAmphoraQueues.delete(amphoraId);
    this.log.info({ amphoraId }, 'amphora queue deleted');
  }

  // ---- close --------------------------------------------------------------------------------------

  protected async drainWire(deadline: number): Promise<void> {
    while (this.outboxSize > 0 && Date.now() < deadline) await sleep(Math.min(20, Math.max(1, deadline - Date.now())));
  }

  protected async shutdownWire(): Promise<void> {
    this.state = 'closed';
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const left = [...this.outbox, ...this.unconfirmed];
    this.outbox.length = 0;
    this.unconfirmed.clear();
    const kept = left.filter((e) => e.msg.keep);
    if (kept.length > 0) {
      this.log.error({ count: kept.length, types: [...new Set(kept.map((e) => e.msg.type))] }, 'messages not confirmed by RabbitMQ before close were given up');
    }
    for (const e of left) {
      e.state = 'settled';
      e.reject(new TransportClosedError(`transport closed before RabbitMQ confirmed ${e.msg.type} ${e.msg.messageId}`));
    }
    const { conn, sub, pub } = this;
    this.conn = this.pub = this.sub = undefined;
    // Channels first, each with its close handshake: amqplib multiplexes channels, so an ack sent
    // just before a bare connection close may reach RabbitMQ after it (and the message be requeued).
    // A channel's own close follows its acks in order. Unacked deliveries are requeued here.
    for (const ch of [sub, pub]) {
      if (ch) await ch.close().catch((err: unknown) => this.log.warn({ err }, 'closing an AMQP channel failed'));
    }
    if (conn) await conn.close().catch((err: unknown) => this.log.warn({ err }, 'closing the AMQP connection failed'));
  }
}

function waitForDrain(ch: Channel): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      ch.off('drain', done);
      ch.off('close', done);
      resolve();
    };
    ch.once('drain', done);
    ch.once('close', done);
  });
}

function describe(dest: Destination): string {
  return dest.kind === 'amphora' ? `amphora ${dest.amphoraId}` : dest.kind === 'reply' ? `reply queue ${dest.address}` : `${dest.kind} queue`;
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
