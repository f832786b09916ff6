import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { READ_BUFFER_SIZE, ReadBufferPool, readBuffers } from '../../amphora/dataplane/listeners/read-buffers.ts';
import { kernelRelay } from '../../amphora/dataplane/native/kernel-relay.ts';
import { config, eventually, freePort, pool, Resources, sleep, startDataPlane, uid } from './helpers.ts';

const r = new Resources();
afterEach(() => r.cleanup());

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface BulkMember {
  port: number;
  /** What each connection received, complete once the client's end arrived. */
  received: Promise<Buffer>[];
}

/** A member that sends `payload` in chunks of every size on each connection, then half-closes. */
async function startBulkMember(payload: Buffer): Promise<BulkMember> {
  const port = await freePort();
  const member: BulkMember = { port, received: [] };
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    const chunks: Buffer[] = [];
    member.received.push(
      new Promise((resolve) => {
        socket.on('data', (d: Buffer) => chunks.push(d));
        socket.on('end', () => resolve(Buffer.concat(chunks)));
      }),
    );
    socket.on('error', () => socket.destroy());
    let at = 0;
    let size = 1;
    const pump = () => {
      while (at < payload.length) {
        const end = Math.min(payload.length, at + size);
        size = size >= 300_000 ? 1 : size * 7 + 3; // odd sizes, some far above the read buffer
        const more = socket.write(payload.subarray(at, end));
        at = end;
        if (!more) return void socket.once('drain', pump);
      }
      socket.end();
    };
    pump();
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  r.add(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return member;
}

/** Sends `upload` and reads everything back, pausing now and then so that the proxy meets backpressure. */
function bulkClient(port: number, upload: Buffer, slow: boolean): Promise<{ got: Buffer; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let n = 0;
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      // Let the socket buffers fill up, so that the proxy's writes to this client are partial.
      if (slow && ++n % 8 === 0) {
        s.pause();
        setTimeout(() => s.resume(), 40);
      }
    });
    if (slow) {
      s.pause();
      setTimeout(() => s.resume(), 300);
    }
    s.on('end', () => {
      s.end();
      resolve({ got: Buffer.concat(chunks), ended: true });
    });
    s.on('error', reject);
    s.write(upload);
    s.end();
  });
}

// The data plane runs in this process: ARGONAUT_KERNEL_RELAY chooses the path of the sessions it starts.
describe.each([
  { path: 'kernel relay', relay: true },
  { path: 'JavaScript', relay: false },
])('TCP listener, bulk transfers ($path)', ({ relay }) => {
  beforeEach(() => {
    if (relay) delete process.env.ARGONAUT_KERNEL_RELAY;
    else process.env.ARGONAUT_KERNEL_RELAY = 'off';
  });
  afterAll(() => {
    delete process.env.ARGONAUT_KERNEL_RELAY;
  });

  it('relays megabytes byte-exact both ways with backpressure and half-close, and counts them', async () => {
    const download = randomBytes(6 * 1024 * 1024 + 123);
    const upload = randomBytes(2 * 1024 * 1024 + 7);
    const member = await startBulkMember(download);
    const port = await freePort();
    const dp = await startDataPlane(r, config([{ id: uid(1), protocol: 'TCP', ports: [port], defaultPoolId: uid(2) }], [pool(2, 'TCP', [{ id: 10, port: member.port }])]));

    const replacedBefore = readBuffers.replacements;
    const relayedBefore = kernelRelay()?.sessions ?? 0;
    const [slow, fast] = await Promise.all([bulkClient(port, upload, true), bulkClient(port, upload, false)]);
    if (relay) {
      // Both sessions went through the kernel relay (npm ci builds it on Linux), none through read buffers.
      expect(kernelRelay()?.sessions).toBe(relayedBefore + 2);
      expect(readBuffers.replacements).toBe(replacedBefore);
    } else {
      // The slow client made writes leave bytes behind: their buffers went with them.
      expect(readBuffers.replacements).toBeGreaterThan(replacedBefore);
    }
    for (const result of [slow, fast]) {
      expect(result.ended).toBe(true);
      expect(result.got.length).toBe(download.length);
      expect(sha(result.got)).toBe(sha(download));
    }
    expect(member.received).toHaveLength(2);
    for (const got of await Promise.all(member.received)) expect(sha(got)).toBe(sha(upload));

    await eventually(async () => (await dp.snapshot()).listeners[uid(1)].traffic.activeConnections === 0);
    const snap = await dp.snapshot();
    expect(snap.listeners[uid(1)].traffic.bytesOut).toBe(2 * download.length);
    expect(snap.listeners[uid(1)].traffic.bytesIn).toBe(2 * upload.length);
    expect(snap.pools[uid(2)].members[uid(10)].traffic.bytesOut).toBe(2 * download.length);
    expect(snap.pools[uid(2)].members[uid(10)].traffic.bytesIn).toBe(2 * upload.length);
  });

  it('keeps streaming when the client closes mid-transfer and frees the session', async () => {
    const member = await startBulkMember(randomBytes(8 * 1024 * 1024));
    const port = await freePort();
    const dp = await startDataPlane(r, config([{ id: uid(1), protocol: 'TCP', ports: [port], defaultPoolId: uid(2) }], [pool(2, 'TCP', [{ id: 10, port: member.port }])]));
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port });
        let got = 0;
        s.on('data', (d: Buffer) => {
          got += d.length;
          if (got > 256 * 1024) s.destroy();
        });
        s.on('close', () => resolve());
        s.on('error', () => undefined);
      });
    }
    await sleep(50);
    await eventually(async () => (await dp.snapshot()).listeners[uid(1)].traffic.activeConnections === 0);
    expect((await dp.snapshot()).pools[uid(2)].members[uid(10)].traffic.activeConnections).toBe(0);
  });
});

describe('ReadBufferPool', () => {
  it('lends up to its cap, reuses returned buffers and replaces without counting twice', () => {
    const buffers = new ReadBufferPool(2, 1);
    const a = buffers.take() as Buffer;
    const b = buffers.take() as Buffer;
    expect(a.length).toBe(READ_BUFFER_SIZE);
    expect(buffers.take()).toBeNull();
    const replacement = buffers.replace();
    expect(replacement).not.toBe(a);
    expect(buffers.inUse).toBe(2);
    buffers.give(replacement);
    buffers.give(b);
    expect(buffers.inUse).toBe(0);
    expect(buffers.take()).toBe(replacement); // only one kept for reuse
    expect(buffers.take()).not.toBe(b);
  });
});
