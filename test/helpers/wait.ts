// Polling with a deadline, for tests that wait on asynchronous outcomes (statuses, traffic).
import type { Client } from './api.ts';

/** Thrown by a probe when waiting is pointless (e.g. ERROR instead of ACTIVE): waitFor fails at once. */
export class GiveUp extends Error {}

/**
 * Calls `probe` every `intervalMs` until it returns something other than undefined, and returns
 * that. A probe that throws is retried (its last error is reported on timeout), unless it throws GiveUp.
 */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
}

/** Waits until a load balancer is ACTIVE through the API; fails at once when it goes to ERROR. */
export async function waitLoadBalancerActive(
  client: Pick<Client, 'get'>,
  id: string,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<void> {
  await waitFor(
    `load balancer ${id} ACTIVE`,
    async () => {
      const lb = (await client.get(`/v2/lbaas/loadbalancers/${id}`)).body.loadbalancer;
      if (lb.provisioning_status === 'ERROR') throw new GiveUp(`load balancer ${id} went to ERROR`);
      return lb.provisioning_status === 'ACTIVE' ? true : undefined;
    },
    timeoutMs,
    intervalMs,
  );
}

/**
 * Clean-up steps each bounded in time, so that the last ones (the network clean-up) run whatever
 * hangs before them; failures are collected and thrown together by `finish`.
 */
export class BoundedCleanup {
  private readonly errors: unknown[] = [];

  constructor(private readonly defaultTimeoutMs: number) {}

  async attempt(f: () => Promise<unknown>, what = 'a cleanup step', timeoutMs = this.defaultTimeoutMs): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([f(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${timeoutMs} ms`)), timeoutMs)))]);
    } catch (err) {
      this.errors.push(err);
    } finally {
      clearTimeout(timer);
    }
  }

  finish(message: string): void {
    if (this.errors.length > 0) throw new AggregateError(this.errors, message);
  }
}
