// The parent's end of an IpcTransport: attached to one child process and one InProcessBroker, it
// does for the child what a broker connection does for an AMQP client. It publishes the child's
// messages into the broker's queues, runs the child's consumers (prefetch, ack, requeue), gives the
// child a reply queue, and when the child goes away (disconnect or exit) or closes its transport,
// detaches its consumers (unacked deliveries requeued, like a channel closing) and deletes its
// reply queue.
//
// The port serves one amphora, with what an amphora's broker permissions would allow: consume its
// own order queue; publish heartbeats, config fetches and answers (never orders). Every frame is
// validated; a malformed or forbidden one is logged and ignored (or refused), never thrown.
import { randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import type { Logger } from '../logging.ts';
import type { Delivery } from './core.ts';
import { queueName, type BrokerConsumer, type InProcessBroker } from './in-process-transport.ts';
import {
  childFrameSchema,
  frameIssues,
  IPC_PROTOCOL_VERSION,
  type ChildFrame,
  type IpcFailure,
  type ParentFrame,
} from './ipc-frames.ts';
import { transportOptionsSchema, UnroutableError } from './transport.ts';

export interface IpcBrokerPortOptions {
  /** A child process started with an IPC channel (fork, or spawn with an 'ipc' stdio entry). */
  child: ChildProcess;
  broker: InProcessBroker;
  /** The amphora the child runs: it may consume this amphora's queue only. */
  amphoraId: string;
  logger: Logger;
  /** Largest message accepted from the child (default: the transport's maxMessageBytes default). */
  maxMessageBytes?: number;
}

export interface IpcBrokerPortCounters {
  /** Frames that did not match the protocol (ignored). */
  malformed: number;
  /** Requests refused: not allowed for an amphora, or after the port was detached. */
  refused: number;
  /** Deliveries requeued because the child went away or closed with them unacked. */
  requeued: number;
}

export class IpcBrokerPort {
  /** The child's reply queue is `reply.<replyAddress>`. */
  readonly replyAddress = randomUUID();
  private readonly child: ChildProcess;
  private readonly broker: InProcessBroker;
  private readonly amphoraId: string;
  private readonly log: Logger;
  private readonly frames: ReturnType<typeof childFrameSchema>;
  private readonly consumers = new Map<number, BrokerConsumer>();
  private readonly deliveries = new Map<number, Delivery>();
  private readonly replyConsumer: BrokerConsumer;
  private nextDelivery = 0;
  private detachedBecause?: string;
  private readonly counts: IpcBrokerPortCounters = { malformed: 0, refused: 0, requeued: 0 };

  constructor(opts: IpcBrokerPortOptions) {
    this.child = opts.child;
    this.broker = opts.broker;
    this.amphoraId = opts.amphoraId;
    this.log = opts.logger.child({ component: 'ipc-port', amphoraId: opts.amphoraId, pid: opts.child.pid });
    this.frames = childFrameSchema(opts.maxMessageBytes ?? transportOptionsSchema.parse({}).maxMessageBytes);
    this.replyConsumer = this.broker.consume(queueName({ kind: 'reply', address: this.replyAddress }), 1000, (d) => this.forwardReply(d));
    this.child.on('message', this.onMessage);
    this.child.once('disconnect', () => this.gone('disconnected'));
    this.child.once('exit', (code, signal) => this.gone(`exited (${code ?? signal})`));
  }

  counters(): IpcBrokerPortCounters {
    return { ...this.counts };
  }

  /** Whether the port stopped serving the child (it closed its transport, went away, or detach() was called). */
  get detached(): boolean {
    return this.detachedBecause !== undefined;
  }

  /**
   * Stops serving the child: its consumers go (unacked deliveries back to their queues) and its
   * reply queue is deleted. Idempotent; called by itself when the child disconnects or exits.
   */
  detach(reason = 'detached'): void {
    if (this.detachedBecause !== undefined) return;
    this.detachedBecause = reason;
    let requeued = 0;
    for (const consumer of this.consumers.values()) requeued += consumer.detach();
    this.consumers.clear();
    this.deliveries.clear();
    this.replyConsumer.detach();
    this.broker.deleteQueue(queueName({ kind: 'reply', address: this.replyAddress }));
    this.counts.requeued += requeued;
    this.log[requeued > 0 ? 'warn' : 'info']({ reason, requeued }, 'amphora process detached from the broker');
  }

  private gone(reason: string): void {
    this.detach(reason);
    this.child.off('message', this.onMessage);
  }

  // ---- frames from the child --------------------------------------------------------------------

  private readonly onMessage = (raw: unknown): void => {
    const parsed = this.frames.safeParse(raw);
    if (!parsed.success) {
      this.counts.malformed++;
      this.log.warn({ issues: frameIssues(parsed.error) }, 'malformed IPC frame from the amphora process ignored');
      return;
    }
    try {
      this.handle(parsed.data);
    } catch (err) {
      this.log.error({ err, frame: parsed.data.t }, 'IPC frame from the amphora process failed');
      if ('id' in parsed.data) this.fail(parsed.data.id, 'error', err instanceof Error ? err.message : String(err));
    }
  };

  private handle(frame: ChildFrame): void {
    if (this.detachedBecause !== undefined) {
      if ('id' in frame) this.refuse(frame.id, 'closed', `the port is detached (${this.detachedBecause})`);
      return; // settles and hellos after the detach: the deliveries were requeued already
    }
    switch (frame.t) {
      case 'hello':
        this.write({ t: 'welcome', v: IPC_PROTOCOL_VERSION });
        return;
      case 'publish':
        return this.publish(frame);
      case 'consume':
        return this.consume(frame);
      case 'cancel':
        for (const consumer of this.consumers.values()) consumer.cancel();
        this.write({ t: 'done', id: frame.id });
        return;
      case 'settle': {
        const d = this.deliveries.get(frame.delivery);
        if (!d) {
          this.counts.malformed++;
          this.log.warn({ delivery: frame.delivery }, 'settle of an unknown delivery ignored');
          return;
        }
        this.deliveries.delete(frame.delivery);
        if (frame.requeue) d.requeue();
        else d.ack();
        return;
      }
      case 'close':
        this.detach('closed by the amphora');
        this.write({ t: 'done', id: frame.id });
        return;
    }
  }

  private publish(frame: Extract<ChildFrame, { t: 'publish' }>): void {
    if (frame.dest.kind === 'amphora') return this.refuse(frame.id, 'refused', 'an amphora cannot publish orders');
    try {
      this.broker.publish(frame.dest, {
        content: Buffer.from(frame.content, 'base64'),
        replyTo: frame.wantsReply ? this.replyAddress : undefined,
        expiresAt: frame.expiresAt,
      });
    } catch (err) {
      if (!(err instanceof UnroutableError)) throw err;
      this.fail(frame.id, 'unroutable', err.message);
      return;
    }
    this.write({ t: 'done', id: frame.id });
  }

  private consume(frame: Extract<ChildFrame, { t: 'consume' }>): void {
    const { source } = frame;
    if (source.kind !== 'amphora' || source.amphoraId !== this.amphoraId) {
      return this.refuse(frame.id, 'refused', `amphora ${this.amphoraId} may only consume its own queue`);
    }
    if (this.consumers.has(frame.tag)) return this.refuse(frame.id, 'refused', `consumer tag ${frame.tag} is in use`);
    const consumer = this.broker.consume(queueName(source), frame.prefetch, (d) => {
      const delivery = ++this.nextDelivery;
      this.deliveries.set(delivery, d);
      this.write({
        t: 'deliver',
        tag: frame.tag,
        delivery,
        content: d.content.toString('base64'),
        redelivered: d.redelivered,
        ...(d.replyTo !== undefined ? { replyTo: d.replyTo } : {}),
      });
    });
    this.consumers.set(frame.tag, consumer);
    this.write({ t: 'done', id: frame.id });
  }

  /** Answers for the child's calls: handed over and acked at once (a reply queue is never redelivered). */
  private forwardReply(d: Delivery): void {
    this.write({ t: 'reply', content: d.content.toString('base64') });
    d.ack();
  }

  // ---- helpers -----------------------------------------------------------------------------------

  private refuse(id: number, reason: IpcFailure, error: string): void {
    this.counts.refused++;
    this.log.warn({ id, error }, 'IPC request from the amphora process refused');
    this.fail(id, reason, error);
  }

  private fail(id: number, reason: IpcFailure, error: string): void {
    this.write({ t: 'failed', id, reason, error: error.slice(0, 4096) });
  }

  /** A frame the child cannot receive any more is dropped: its disconnect detaches the port. */
  private write(frame: ParentFrame): void {
    if (!this.child.connected) return;
    this.child.send(frame, (err: Error | null) => {
      if (err) this.log.debug({ err, frame: frame.t }, 'IPC frame not sent to the amphora process');
    });
  }
}
