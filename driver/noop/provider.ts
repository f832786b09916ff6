// The no-op provider: accepts every option and moves objects to ACTIVE without any data plane,
// so API conformance can be tested on its own.
import type { Database } from '../../common/db/database.ts';
import type { Logger } from '../../common/logging.ts';
import { ControllerWorker } from '../controller/worker.ts';
import { allocateVip } from '../network/allocate-vip.ts';
import type { NetworkDriver } from '../network/network-driver.ts';
import type { ProviderDriver, ProviderRequest, VipAllocation, VipRequest } from '../provider.ts';

export class NoopProvider implements ProviderDriver {
  readonly checks = {};
  readonly worker: ControllerWorker;

  constructor(
    readonly name: string,
    db: Database,
    log: Logger,
    private readonly network: NetworkDriver,
    delayMs: number,
  ) {
    this.worker = new ControllerWorker(db, log, async () => undefined, delayMs);
  }

  flavorCapabilities() {
    return [];
  }

  availabilityZoneCapabilities() {
    return [];
  }

  createVipPort(req: VipRequest): Promise<VipAllocation> {
    return allocateVip(this.network, req);
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
