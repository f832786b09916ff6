// The in-process transport: the same interface and the same message semantics as the AMQP one
// (signing, validation, RPC, dedup, requeue-on-throw, drain: all in core.ts), with an in-memory
// "broker" that has the same queues. For the single-process embedded default and for unit tests;
// every integration test uses RabbitMQ.
//
//   const broker = new InProcessBroker();
//   const controller = broker.connect({ identity: { role: 'controller', masterKey } });
//   const amphora = broker.connect({ identity: { role: 'amphora', amphoraId, key: deriveAmphoraKey(masterKey, amphoraId) } });
import { randomUUID } from 'node:crypto';
import { TransportCore, type Delivery, type Destination, type Outbound, type Source } from './core.ts';
import { TransportClosedError, UnroutableError, type TransportOptions } from './transport.ts';

interface MemMessage {
  content: Buffer;
  replyTo?: string;
  redelivered: boolean;
  /** Dropped instead of delivered after this time (ms since epoch, real clock). */
  expiresAt?: number;
}

interface MemConsumer {
  prefetch: number;
  unacked: Set<MemDelivery>;
  onDelivery(d: Delivery): void;
  active: boolean;
}

interface MemDelivery extends Delivery {
  settled: boolean;
  message: MemMessage;
}

class MemQueue {
  readonly ready: MemMessage[] = [];
  readonly consumers: MemConsumer[] = [];
  private next = 0;
  private scheduled = false;

  constructor(readonly name: string) {}

  push(m: MemMessage, front = false): void {
    if (front) this.ready.unshift(m);
    else this.ready.push(m);
    this.schedule();
  }

  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.ready.length > 0) {
      const head = this.ready[0];
      if (head.expiresAt !== undefined && Date.now() >= head.expiresAt) {
        this.ready.shift();
        continue;
      }
      const consumer = this.pickConsumer();
      if (!consumer) return;
      this.ready.shift();
      this.deliver(consumer, head);
    }
  }

  private pickConsumer(): MemConsumer | undefined {
    const n = this.consumers.length;
    for (let i = 0; i < n; i++) {
      const c = this.consumers[(this.next + i) % n];
      if (c.active && c.unacked.size < c.prefetch) {
        this.next = (this.next + i + 1) % n;
        return c;
      }
    }
    return undefined;
  }

  private deliver(consumer: MemConsumer, message: MemMessage): void {
    const finish = (d: MemDelivery, requeue: boolean): void => {
      if (d.settled) return;
      d.settled = true;
      consumer.unacked.delete(d);
      if (requeue) this.push({ ...message, redelivered: true }, true);
      this.schedule();
    };
    const d: MemDelivery = {
      content: message.content,
      redelivered: message.redelivered,
      replyTo: message.replyTo,
      settled: false,
      message,
      ack: () => finish(d, false),
      requeue: () => finish(d, true),
    };
    consumer.unacked.add(d);
    consumer.onDelivery(d);
  }

  /** Like basic.cancel: no new deliveries; the unacked ones can still be settled. */
  cancel(consumer: MemConsumer): void {
    consumer.active = false;
    const i = this.consumers.indexOf(consumer);
    if (i >= 0) this.consumers.splice(i, 1);
  }

  /** Like a channel closing: the consumer goes, its unacked deliveries return to the queue. */
  detach(consumer: MemConsumer): void {
    this.cancel(consumer);
    for (const d of [...consumer.unacked]) d.requeue();
  }
}

/** A consumer started with `InProcessBroker.consume` (one per basic.consume of a channel). */
export interface BrokerConsumer {
  /** Like basic.cancel: no new deliveries; the unacked ones stay with the consumer until settled. */
  cancel(): void;
  /** Like its channel closing: cancelled, and every unacked delivery goes back to the queue. Returns how many. */
  detach(): number;
}

/** What is published into a queue. */
export interface BrokerMessage {
  content: Buffer;
  /** The sender's reply address (`reply.<address>` queue). */
  replyTo?: string;
  /** Dropped instead of delivered after this time (ms since epoch, real clock). */
  expiresAt?: number;
}

/** The in-memory broker: create one per process and connect every transport to it. */
export class InProcessBroker {
  private readonly queues = new Map<string, MemQueue>();

  connect(opts: TransportOptions): InProcessTransport {
    return new InProcessTransport(this, opts);
  }

  /** Queue of a destination (created on first use, like a declared durable queue). */
  queue(name: string): MemQueue {
    let q = this.queues.get(name);
    if (!q) {
      q = new MemQueue(name);
      this.queues.set(name, q);
    }
    return q;
  }

  hasQueue(name: string): boolean {
    return this.queues.has(name);
  }

  deleteQueue(name: string): void {
    const q = this.queues.get(name);
    if (!q) return;
    for (const c of [...q.consumers]) q.detach(c);
    this.queues.delete(name);
  }

  /** Messages waiting in a queue (not delivered). */
  depth(name: string): number {
    return this.queues.get(name)?.ready.length ?? 0;
  }

  /** Puts raw bytes in a queue, as anybody with access to the broker could (tests: forged messages). */
  inject(dest: Destination, content: Buffer, replyTo?: string): void {
    this.route(dest).push({ content, replyTo, redelivered: false });
  }

  /** Queues a message for `dest`; throws UnroutableError when it is a reply queue that does not exist. */
  publish(dest: Destination, message: BrokerMessage): void {
    this.route(dest).push({ ...message, redelivered: false });
  }

  /** Starts a consumer on the queue `name` (created if needed) with at most `prefetch` unacked deliveries. */
  consume(name: string, prefetch: number, onDelivery: (d: Delivery) => void): BrokerConsumer {
    const queue = this.queue(name);
    const consumer: MemConsumer = { prefetch, unacked: new Set(), onDelivery, active: true };
    queue.consumers.push(consumer);
    queue.schedule();
    return {
      cancel: () => queue.cancel(consumer),
      detach: () => {
        const unacked = consumer.unacked.size;
        queue.detach(consumer);
        return unacked;
      },
    };
  }

  route(dest: Destination): MemQueue {
    const name = queueName(dest);
    if (dest.kind === 'reply' && !this.queues.has(name)) throw new UnroutableError(`no reply queue ${dest.address}`);
    return this.queue(name);
  }
}

export function queueName(dest: Destination | Source): string {
  switch (dest.kind) {
    case 'amphora':
      return `amphora.${dest.amphoraId}`;
    case 'health':
      return 'health';
    case 'controller':
      return 'controller';
    case 'reply':
      return `reply.${dest.address}`;
  }
}

export class InProcessTransport extends TransportCore {
  private readonly replyAddress = randomUUID();
  private readonly consumers: Array<{ queue: string; consumer: BrokerConsumer }> = [];
  private wireClosed = false;

  constructor(
    private readonly broker: InProcessBroker,
    opts: TransportOptions,
  ) {
    super(opts);
    broker.consume(queueName({ kind: 'reply', address: this.replyAddress }), 1000, (d) => this.onReplyDelivery(d));
  }

  protected send(msg: Outbound): Promise<void> {
    if (this.wireClosed) return Promise.reject(new TransportClosedError('transport closed'));
    try {
      this.broker.publish(msg.dest, { content: msg.seal(), replyTo: msg.wantsReply ? this.replyAddress : undefined, expiresAt: msg.deadline });
      this.counts.published++;
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  protected consume(source: Source, prefetch: number, onDelivery: (d: Delivery) => void): Promise<void> {
    const queue = queueName(source);
    this.consumers.push({ queue, consumer: this.broker.consume(queue, prefetch, onDelivery) });
    return Promise.resolve();
  }

  protected stopConsuming(): Promise<void> {
    for (const { consumer } of this.consumers) consumer.cancel();
    return Promise.resolve();
  }

  protected drainWire(): Promise<void> {
    return Promise.resolve(); // every send is queued synchronously: nothing waits for a confirm
  }

  protected shutdownWire(): Promise<void> {
    this.wireClosed = true;
    // Deliveries whose handlers outlived the drain go back to their queues, as on a channel close.
    for (const { queue, consumer } of this.consumers) {
      const requeued = consumer.detach();
      if (requeued > 0) this.log.warn({ queue, count: requeued }, 'unfinished deliveries requeued on close');
    }
    this.broker.deleteQueue(queueName({ kind: 'reply', address: this.replyAddress }));
    return Promise.resolve();
  }

  protected deleteAmphoraQueue(amphoraId: string): Promise<void> {
    this.broker.deleteQueue(queueName({ kind: 'amphora', amphoraId }));
    return Promise.resolve();
  }
}
