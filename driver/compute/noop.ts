// The no-op compute driver of Octavia's API gate: no instance is started; every amphora "exists".
import { randomUUID } from 'node:crypto';
import type { BootedAmphora, ComputeDriver } from './compute-driver.ts';

export class NoopComputeDriver implements ComputeDriver {
  readonly name = 'noop';
  readonly startsNothing = true;

  async boot(): Promise<BootedAmphora> {
    return { computeId: randomUUID(), lbNetworkIp: null };
  }

  async destroy(): Promise<void> {}

  async isAlive(): Promise<boolean> {
    return true;
  }

  async stop(): Promise<void> {}
}
