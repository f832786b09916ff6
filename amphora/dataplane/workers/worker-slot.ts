import type { Worker } from 'node:cluster';
import type { Logger } from '../log.ts';
import type { FromWorker, ToWorker } from './messages.ts';

export interface SlotEvents {
  /** A message that is not a reply to a request (persistence entries, metrics requests). */
  message(slot: WorkerSlot, message: FromWorker): void;
  /** The worker exited (or could not be started); `wasServing`: it ran the configuration until then, for `servedMs`. */
  exit(slot: WorkerSlot, how: { code: number | null; signal: string | null; wasServing: boolean; servedMs: number }): void;
}

type Reply = Exclude<FromWorker, { type: 'ready' } | { type: 'stick' } | { type: 'metrics' }>;

/**
 * One data plane worker process as the primary sees it: its life (booting, ready, dead), the
 * messages sent to it and the replies it owes. Nothing is sent before it says it is ready (a worker
 * installs its message handler only once its modules are loaded: earlier messages would be lost),
 * nor once it is dead, and every reply it owes is refused the moment it dies.
 */
export class WorkerSlot {
  /** true once the worker said it is ready; false if it died first. */
  readonly ready: Promise<boolean>;
  isReady = false;
  dead = false;
  /** Runs the primary's current configuration (false from its death on). */
  serving = false;
  private servingSince: number | null = null;
  private readonly pending = new Map<string, { resolve: (reply: Reply) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();

  constructor(
    readonly index: number,
    readonly worker: Worker,
    private readonly log: Logger,
    events: SlotEvents,
  ) {
    let settleReady: (ok: boolean) => void = () => {};
    this.ready = new Promise<boolean>((resolve) => (settleReady = resolve));
    worker.on('message', (message: FromWorker) => {
      // IPC messages may still be delivered after 'exit'.
      if (this.dead) return;
      if (message.type === 'ready') {
        this.isReady = true;
        settleReady(true);
      } else if (message.type === 'stick' || message.type === 'metrics') {
        events.message(this, message);
      } else {
        this.settle(message);
      }
    });
    const exited = (code: number | null, signal: string | null) => {
      if (this.dead) return;
      const wasServing = this.serving;
      const servedMs = this.servingSince === null ? 0 : Date.now() - this.servingSince;
      this.dead = true;
      this.isReady = false;
      this.serving = false;
      settleReady(false);
      for (const [key, waiter] of this.pending) {
        clearTimeout(waiter.timer);
        waiter.reject(new Error(`worker ${index} died`));
        this.pending.delete(key);
      }
      events.exit(this, { code, signal, wasServing, servedMs });
    };
    worker.on('exit', exited);
    worker.on('error', (err) => {
      // A process that could not be started (no pid) never exits: it is dead now.
      if (worker.process.pid === undefined) {
        this.log.error({ worker: index, err: err.message }, 'a data plane worker could not be started');
        exited(null, null);
        return;
      }
      // E.g. EPIPE: a message written while the worker was dying. Its exit follows and is handled there.
      this.log.warn({ worker: index, err: err.message }, 'channel to a data plane worker failed');
    });
  }

  /** It runs the primary's current configuration now. */
  markServing(): void {
    if (this.dead) return;
    this.serving = true;
    this.servingSince ??= Date.now();
  }

  /** Sends when the worker can take it (ready and alive); otherwise the message is dropped. */
  send(message: ToWorker): boolean {
    if (!this.isReady || this.dead || !this.worker.isConnected()) return false;
    this.worker.send(message, undefined, undefined, (err: Error | null) => {
      if (err) this.log.warn({ worker: this.index, err: err.message, message: message.type }, 'message to a data plane worker not delivered');
    });
    return true;
  }

  /** Sends `message` and resolves with the worker's reply of `replyType` and the same seq; rejects if it dies, cannot take it, or does not answer in time. */
  request(message: ToWorker & { seq: number }, replyType: Reply['type'], timeoutMs: number): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const key = `${replyType}:${message.seq}`;
      const timer = setTimeout(() => {
        this.pending.delete(key);
        reject(new Error(`worker ${this.index} did not answer ${message.type} in time`));
      }, timeoutMs);
      this.pending.set(key, { resolve, reject, timer });
      if (!this.send(message)) {
        clearTimeout(timer);
        this.pending.delete(key);
        reject(new Error(`worker ${this.index} is not running`));
      }
    });
  }

  kill(): void {
    if (!this.dead) this.worker.process.kill('SIGKILL');
  }

  private settle(reply: Reply): void {
    const key = `${reply.type}:${reply.seq}`;
    const waiter = this.pending.get(key);
    if (!waiter) return;
    clearTimeout(waiter.timer);
    this.pending.delete(key);
    waiter.resolve(reply);
  }
}
