/**
 * Reusable read buffers for L4 streams (one worker's pool).
 *
 * By default Node reads every chunk into a freshly allocated 64 KiB buffer that the garbage collector
 * frees later: on a bulk transfer that is one malloc, page faults on fresh pages and a GC sweep per
 * 64 KiB, which profiling showed to cost about as much CPU as the copies themselves. A member socket
 * opened with `onread` reads into one buffer of its session over and over instead, and the bytes are
 * written on to the client synchronously (they almost always leave in the same call).
 *
 * Each such session holds one buffer for as long as it lives, so the number of sessions on this fast
 * path is capped per worker; sessions above the cap use the ordinary stream path.
 */
export const READ_BUFFER_SIZE = 64 * 1024;

export class ReadBufferPool {
  private readonly free: Buffer[] = [];
  private lent = 0;
  /** Buffers handed over to pending writes so far (for tests and diagnostics). */
  replacements = 0;

  constructor(
    /** Sessions that may hold a buffer at once. */
    private readonly maxLent: number,
    /** Buffers kept for reuse when sessions end. */
    private readonly maxFree = 64,
  ) {}

  /** A buffer for a new session, or null when the cap is reached. */
  take(): Buffer | null {
    if (this.lent >= this.maxLent) return null;
    this.lent++;
    return this.free.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
  }

  /**
   * Gives a replacement to a session whose buffer is still referenced by a pending write (the old one
   * is left to that write and the garbage collector). The session keeps its place under the cap.
   */
  replace(): Buffer {
    this.replacements++;
    return Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
  }

  /** Returns a session's buffer when it ends; the buffer must not be referenced any more. */
  give(buffer: Buffer | null): void {
    if (buffer === null) return;
    this.lent--;
    if (this.free.length < this.maxFree) this.free.push(buffer);
  }

  get inUse(): number {
    return this.lent;
  }
}

/** 1024 sessions × 64 KiB = 64 MiB per worker at most; beyond that sessions use the stream path. */
export const readBuffers = new ReadBufferPool(1024);
