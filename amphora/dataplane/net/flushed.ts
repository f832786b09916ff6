import type net from 'node:net';

const NOTHING = Buffer.alloc(0);

/**
 * Calls `done` once every socket has handed the writes queued so far to the kernel. A socket whose
 * write fails is being destroyed: `done` is then not called (its session closes on the error).
 *
 * Not 'drain': Node emits it only after a write() that returned false, so a socket with a few bytes
 * still queued (written while connecting, or when the kernel took part of a write) would never emit it.
 * An empty write completes right after the writes queued before it. The sockets must not have been
 * ended (a write after end() destroys them): sessions use allowHalfOpen and end nothing before.
 */
export function whenFlushed(sockets: readonly net.Socket[], done: () => void): void {
  const waiting = sockets.filter((s) => s.writableLength > 0);
  if (waiting.length === 0) return done();
  let left = waiting.length;
  for (const socket of waiting) {
    socket.write(NOTHING, (err) => {
      if (!err && --left === 0) done();
    });
  }
}
