// The controller worker: takes provider requests, runs them one at a time per load balancer, and
// finishes each with completion (ACTIVE) or failure (ERROR). On start it resumes every load
// balancer it is told an earlier process left in PENDING_*.
import type { Database } from '../../common/db/database.ts';
import type { Logger } from '../../common/logging.ts';
import type { ProviderRequest } from '../provider.ts';
import { completeLoadBalancer, failLoadBalancer, type EndWrite, type FailureTarget } from './completion.ts';
import { KeyedQueue } from './keyed-queue.ts';

/** A provider request, or the resumption of one an earlier process left pending. */
export type WorkerRequest = ProviderRequest | { kind: 'resume'; loadBalancerId: string };

/**
 * What a provider does for one request before the statuses are completed. Records that need not be
 * written before then (nothing outside the database depends on them) go to `atEnd`: they are
 * written in the transaction that completes the operation, saving one of their own (a failed
 * operation drops them; the next operation on the load balancer makes what is missing).
 */
export type Realiser = (req: WorkerRequest, atEnd: (write: EndWrite) => void) => Promise<void>;

export class ControllerWorker {
  private readonly queue = new KeyedQueue();
  private stopped = false;

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
    private readonly realise: Realiser,
    private readonly delayMs = 0,
  ) {}

  submit(req: ProviderRequest): void {
    if (this.stopped) throw new Error('controller worker is stopped');
    void this.queue.run(req.loadBalancerId, () => this.execute(req));
  }

  /** Finishes what an earlier process left pending on this load balancer. */
  resume(loadBalancerId: string): void {
    this.log.info({ loadBalancerId }, 'resuming pending load balancer');
    void this.queue.run(loadBalancerId, () => this.execute({ kind: 'resume', loadBalancerId }));
  }

  async idle(): Promise<void> {
    await this.queue.idle();
  }

  /** Stops taking requests and waits for running ones (SIGTERM). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.queue.idle();
  }

  private async execute(req: WorkerRequest): Promise<void> {
    const lbId = req.loadBalancerId;
    const writes: EndWrite[] = [];
    try {
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      await this.realise(req, (write) => writes.push(write));
      // Re-pushing an amphora's configuration or deleting a failed amphora changes no object of the load balancer.
      if (req.kind === 'amphora' && (req.action === 'configure' || req.action === 'delete')) {
        if (writes.length > 0) await this.db.tx(async (t) => { for (const write of writes) await write(t); });
        return;
      }
      await completeLoadBalancer(this.db, lbId, writes);
      this.log.info({ loadBalancerId: lbId, request: req }, 'operation complete');
    } catch (err) {
      this.log.error({ loadBalancerId: lbId, request: req, err }, 'operation failed');
      try {
        // The end writes are dropped: they may be what failed, and the marking must not fail with them.
        await failLoadBalancer(this.db, lbId, failureTarget(req));
      } catch (markErr) {
        this.log.error({ loadBalancerId: lbId, err: markErr }, 'could not mark the failed operation; the next start resumes it');
      }
    }
  }
}

function failureTarget(req: WorkerRequest): FailureTarget {
  switch (req.kind) {
    case 'loadbalancer':
      return { table: 'load_balancer', ids: [req.loadBalancerId] };
    case 'amphora':
    case 'resume':
      return { table: 'load_balancer', ids: [req.loadBalancerId] };
    case 'member_batch':
      return { table: 'member', ids: [] };
    case 'healthmonitor':
      return { table: 'health_monitor', ids: [req.id] };
    default:
      return { table: req.kind, ids: [req.id] };
  }
}
