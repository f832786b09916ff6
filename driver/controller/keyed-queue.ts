// Runs jobs one at a time per key (a load balancer id) and in parallel across keys.
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<void>>();

  run(key: string, job: () => Promise<void>): Promise<void> {
    // A new job waits for the I/O already under way (an API answer being written) before it starts.
    const previous = this.tails.get(key) ?? new Promise<void>((resolve) => setImmediate(resolve));
    const next = previous.then(job, job);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }

  /** Resolves when every queued job has finished. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }

  get busy(): number {
    return this.tails.size;
  }
}
