// A provider whose requests run in this process's controller worker: subclasses say what realising
// a request means; queuing per load balancer, completion, resumption and shutdown are shared.
import type { Transaction } from 'sequelize';
import type { Database } from '../../common/db/database.ts';
import type { Logger } from '../../common/logging.ts';
import { allocateVip } from '../network/allocate-vip.ts';
import type { NetworkDriver } from '../network/network-driver.ts';
import type { Capability, ProviderChecks, ProviderDriver, ProviderRequest, VipAllocation, VipRequest } from '../provider.ts';
import type { EndWrite } from './completion.ts';
import { ControllerWorker, type WorkerRequest } from './worker.ts';

export abstract class WorkerProvider implements ProviderDriver {
  abstract readonly name: string;
  abstract readonly checks: ProviderChecks;
  protected readonly worker: ControllerWorker;

  constructor(
    protected readonly db: Database,
    log: Logger,
    protected readonly network: NetworkDriver,
    delayMs: number,
  ) {
    this.worker = new ControllerWorker(db, log, (req, atEnd) => this.realise(req, atEnd), delayMs);
  }

  /** The provider's own work for one request; statuses are completed by the worker afterwards (see Realiser). */
  protected abstract realise(req: WorkerRequest, atEnd: (write: EndWrite) => void): Promise<void>;

  flavorCapabilities(): Capability[] {
    return [];
  }

  availabilityZoneCapabilities(): Capability[] {
    return [];
  }

  createVipPort(req: VipRequest, t: Transaction): Promise<VipAllocation> {
    return allocateVip(this.network, req, t);
  }

  submit(req: ProviderRequest): void {
    this.worker.submit(req);
  }

  resume(loadBalancerId: string): void {
    this.worker.resume(loadBalancerId);
  }

  idle(): Promise<void> {
    return this.worker.idle();
  }

  stop(): Promise<void> {
    return this.worker.stop();
  }
}
