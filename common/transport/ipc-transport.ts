// The transport of an amphora agent running in a child process of the controller (the `process`
// compute driver with the embedded default, which has no RabbitMQ): it reaches the parent's
// InProcessBroker through an IpcBrokerPort over Node's IPC channel (process.send / 'message').
// Signing, validation, RPC, dedup and drain are core.ts; this class only moves frames (ipc-frames.ts).
//
// The parent going away (the channel disconnects) is a lost connection that never comes back: what
// waits for the parent fails with TransportClosedError, and the process should stop (see
// bin/argonaut-amphora.ts, which stops the agent on 'disconnect').
import { TransportCore, type Delivery, type Outbound, type Source } from './core.ts';
import {
  frameIssues,
  IPC_PROTOCOL_VERSION,
  parentFrameSchema,
  type ChildFrame,
  type IpcFailure,
  type ParentFrame,
} from './ipc-frames.ts';
import { ConnectError, TransportClosedError, UnroutableError, type TransportOptions } from './transport.ts';

type State = 'connecting' | 'open' | 'lost' | 'closed';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A child frame that is a request, without its id (the transport numbers its requests). */
type Request = DistributiveOmit<Extract<ChildFrame, { id: number }>, 'id'>;

interface PendingRequest {
  resolve(): void;
  reject(err: Error): void;
}

export class IpcTransport extends TransportCore {
  /**
   * Connects to the parent's IpcBrokerPort over this process's IPC channel: ConnectError when the
   * process has none, or when the parent does not answer the handshake within connectTimeoutMs.
   */
  static async connect(opts: TransportOptions): Promise<IpcTransport> {
    if (!hasIpcChannel()) throw new ConnectError('this process has no IPC channel to a parent (start it with child_process.fork, or spawn with an "ipc" stdio entry)');
    const t = new IpcTransport(opts);
    await t.handshake();
    return t;
  }

  private state: State = 'connecting';
  private readonly frames: ReturnType<typeof parentFrameSchema>;
  private nextId = 0;
  private nextTag = 0;
  private readonly requests = new Map<number, PendingRequest>();
  private readonly publishes = new Set<Promise<void>>();
  private readonly consumers = new Map<number, (d: Delivery) => void>();
  private welcomed?: () => void;

  private constructor(opts: TransportOptions) {
    super(opts);
    this.frames = parentFrameSchema(this.settings.maxMessageBytes);
    process.on('message', this.onMessage);
    process.on('disconnect', this.onDisconnect);
  }

  /** Whether the channel to the parent is up. */
  get connected(): boolean {
    return this.state === 'open';
  }

  private async handshake(): Promise<void> {
    const welcomed = new Promise<void>((resolve) => (this.welcomed = resolve));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.settings.connectTimeoutMs)));
    this.write({ t: 'hello', v: IPC_PROTOCOL_VERSION });
    const result = await Promise.race([welcomed, timeout]);
    clearTimeout(timer);
    if (result === 'timeout' || this.state !== 'open') {
      const why =
        this.state === 'lost'
          ? 'the IPC channel to the parent closed during the handshake'
          : `the parent did not answer the IPC handshake within ${this.settings.connectTimeoutMs} ms (is it an IpcBrokerPort?)`;
      this.counts.connectFailures++;
      this.state = 'closed';
      this.release();
      throw new ConnectError(why);
    }
  }

  // ---- frames from the parent --------------------------------------------------------------------

  private readonly onMessage = (raw: unknown): void => {
    const parsed = this.frames.safeParse(raw);
    if (!parsed.success) {
      this.log.warn({ issues: frameIssues(parsed.error) }, 'malformed IPC frame from the parent ignored');
      return;
    }
    this.handle(parsed.data);
  };

  private handle(frame: ParentFrame): void {
    switch (frame.t) {
      case 'welcome':
        if (this.state !== 'connecting') return;
        this.state = 'open';
        this.counts.connects++;
        this.log.info('connected to the parent over IPC');
        this.welcomed?.();
        return;
      case 'done':
      case 'failed': {
        const request = this.requests.get(frame.id);
        if (!request) {
          this.log.warn({ id: frame.id, frame: frame.t }, 'IPC answer for no pending request ignored');
          return;
        }
        this.requests.delete(frame.id);
        if (frame.t === 'done') request.resolve();
        else request.reject(failureError(frame.reason, frame.error));
        return;
      }
      case 'deliver':
        this.onConsumerDelivery(frame);
        return;
      case 'reply':
        // The parent acked it in its reply queue already: ack/requeue are no-ops here.
        this.onReplyDelivery({ content: Buffer.from(frame.content, 'base64'), redelivered: false, ack: () => {}, requeue: () => {} });
        return;
    }
  }

  private onConsumerDelivery(frame: Extract<ParentFrame, { t: 'deliver' }>): void {
    let settled = false;
    const settle = (requeue: boolean): void => {
      if (settled) return;
      settled = true;
      // Once the channel is lost the parent has requeued every unacked delivery itself.
      if (this.state === 'open' || this.state === 'closed') this.write({ t: 'settle', delivery: frame.delivery, requeue });
    };
    const onDelivery = this.consumers.get(frame.tag);
    if (!onDelivery) {
      // Delivered while this consumer was being cancelled: back to the queue.
      settle(true);
      return;
    }
    onDelivery({
      content: Buffer.from(frame.content, 'base64'),
      redelivered: frame.redelivered,
      replyTo: frame.replyTo,
      ack: () => settle(false),
      requeue: () => settle(true),
    });
  }

  private readonly onDisconnect = (): void => this.lose();

  /** The channel closed, or a write on it failed (EPIPE: the parent is gone, its 'disconnect' follows). */
  private lose(err?: Error): void {
    if (this.state === 'closed' || this.state === 'lost') return;
    const wasOpen = this.state === 'open';
    this.state = 'lost';
    if (wasOpen) this.counts.connectionLosses++;
    this.log.warn({ err, pendingRequests: this.requests.size }, 'lost the IPC channel to the parent; it does not come back');
    this.failRequests(new TransportClosedError('the IPC channel to the parent is closed'));
    this.abandonPendingCalls(); // their answers can never come
    this.welcomed?.(); // a handshake in progress fails at once
  }

  // ---- the wire -----------------------------------------------------------------------------------

  protected send(msg: Outbound): Promise<void> {
    if (msg.deadline !== undefined && Date.now() >= msg.deadline) {
      return Promise.reject(new Error(`${msg.type} ${msg.messageId} not published before its deadline`));
    }
    let content: Buffer;
    try {
      content = msg.seal();
    } catch (err) {
      return Promise.reject(err);
    }
    const published = this.request({
      t: 'publish',
      dest: msg.dest,
      content: content.toString('base64'),
      wantsReply: msg.wantsReply,
      ...(msg.deadline !== undefined ? { expiresAt: msg.deadline } : {}),
    }).then(() => {
      this.counts.published++;
    });
    const tracked = published.catch(() => undefined);
    this.publishes.add(tracked);
    void tracked.finally(() => this.publishes.delete(tracked));
    return published;
  }

  protected async consume(source: Source, prefetch: number, onDelivery: (d: Delivery) => void): Promise<void> {
    const tag = ++this.nextTag;
    this.consumers.set(tag, onDelivery);
    try {
      await this.request({ t: 'consume', tag, source, prefetch });
    } catch (err) {
      this.consumers.delete(tag);
      throw err;
    }
  }

  protected async stopConsuming(): Promise<void> {
    this.consumers.clear();
    if (this.state !== 'open') return; // lost: the parent detached every consumer already
    await this.request({ t: 'cancel' });
  }

  protected async drainWire(deadline: number): Promise<void> {
    // Publishes are answered by the parent once queued in its broker (its "confirm").
    const remaining = deadline - Date.now();
    if (this.publishes.size === 0 || remaining <= 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all([...this.publishes]), new Promise((resolve) => (timer = setTimeout(resolve, remaining)))]);
    clearTimeout(timer);
  }

  protected async shutdownWire(): Promise<void> {
    try {
      // The parent requeues the deliveries still unacked (handlers that outlived the drain) and
      // deletes this transport's reply queue, as a closing AMQP channel would.
      if (this.state === 'open') await this.request({ t: 'close' });
    } catch (err) {
      if (!(err instanceof TransportClosedError)) this.log.warn({ err }, 'closing the IPC port failed');
    } finally {
      this.state = 'closed';
      this.failRequests(new TransportClosedError('transport closed'));
      this.release();
    }
  }

  protected deleteAmphoraQueue(): Promise<void> {
    return Promise.reject(new Error('forgetAmphora is not available over IPC: an IPC port serves one amphora'));
  }

  // ---- helpers -----------------------------------------------------------------------------------

  private request(frame: Request): Promise<void> {
    if (this.state === 'closed') return Promise.reject(new TransportClosedError('transport closed'));
    if (this.state === 'lost') return Promise.reject(new TransportClosedError('the IPC channel to the parent is closed'));
    const id = ++this.nextId;
    return new Promise<void>((resolve, reject) => {
      this.requests.set(id, { resolve, reject });
      this.write({ ...frame, id } as ChildFrame);
    });
  }

  /** A frame that cannot be written means the channel is broken: the transport is lost (requests fail). */
  private write(frame: ChildFrame): void {
    if (!process.send || !process.connected) return; // 'disconnect' is on its way
    process.send(frame, undefined, undefined, (err: Error | null) => {
      if (err) this.lose(err);
    });
  }

  private failRequests(err: Error): void {
    const pending = [...this.requests.values()];
    this.requests.clear();
    for (const r of pending) r.reject(err);
  }

  /** Stops listening to the channel, so that it no longer keeps the process alive. */
  private release(): void {
    process.off('message', this.onMessage);
    process.off('disconnect', this.onDisconnect);
  }
}

/** Whether this process was started with an IPC channel to its parent. */
export function hasIpcChannel(): boolean {
  return typeof process.send === 'function' && process.connected;
}

function failureError(reason: IpcFailure, message: string): Error {
  switch (reason) {
    case 'unroutable':
      return new UnroutableError(message);
    case 'closed':
      return new TransportClosedError(message);
    case 'refused':
    case 'error':
      return new Error(message);
  }
}
