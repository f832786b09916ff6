// The no-op provider: accepts every option and moves objects to ACTIVE without any data plane,
// so API conformance can be tested on its own.
import type { Database } from '../../common/db/database.ts';
import type { Logger } from '../../common/logging.ts';
import { WorkerProvider } from '../controller/worker-provider.ts';
import type { NetworkDriver } from '../network/network-driver.ts';

export class NoopProvider extends WorkerProvider {
  readonly checks = {};

  constructor(
    readonly name: string,
    db: Database,
    log: Logger,
    network: NetworkDriver,
    delayMs: number,
  ) {
    super(db, log, network, delayMs);
  }

  protected async realise(): Promise<void> {}
}
