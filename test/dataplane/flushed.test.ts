import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { whenFlushed } from '../../amphora/dataplane/net/flushed.ts';
import { sleep } from './helpers.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A listening server whose accepted sockets are handed to the test paused (nothing read until it resumes them). */
async function pausedServer(): Promise<{ port: number; accepted: Promise<net.Socket> }> {
  let accept: (s: net.Socket) => void = () => {};
  const accepted = new Promise<net.Socket>((resolve) => (accept = resolve));
  const server = net.createServer({ pauseOnConnect: true }, (s) => {
    cleanups.push(() => s.destroy());
    accept(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => server.close());
  return { port: (server.address() as net.AddressInfo).port, accepted };
}

function connect(port: number): net.Socket {
  const socket = net.connect({ host: '127.0.0.1', port });
  cleanups.push(() => socket.destroy());
  return socket;
}

function flushed(sockets: net.Socket[]): { done: Promise<void>; isDone: () => boolean } {
  let finished = false;
  const done = new Promise<void>((resolve) => whenFlushed(sockets, () => ((finished = true), resolve())));
  return { done, isDone: () => finished };
}

describe('whenFlushed (the kernel relay takes over a session once its queued writes are out)', () => {
  it('is done at once when nothing is queued', async () => {
    const { port } = await pausedServer();
    const socket = connect(port);
    await once(socket, 'connect');
    let called = false;
    whenFlushed([socket], () => (called = true));
    expect(called).toBe(true);
  });

  it('is done once a few bytes written while connecting are out, though no drain event ever comes', async () => {
    const { port, accepted } = await pausedServer();
    const socket = connect(port);
    socket.write('PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n');
    expect(socket.writableLength).toBeGreaterThan(0);
    expect(socket.writableNeedDrain).toBe(false);
    const { done } = flushed([socket]);
    await Promise.race([done, sleep(5000).then(() => Promise.reject(new Error('never flushed')))]);
    expect(socket.writableLength).toBe(0);
    const peer = await accepted;
    peer.resume();
    const [first] = (await once(peer, 'data')) as [Buffer];
    expect(first.toString()).toMatch(/^PROXY TCP4/);
  });

  it('waits while the peer reads nothing and the kernel is full, and is done once it reads', async () => {
    const { port, accepted } = await pausedServer();
    const socket = connect(port);
    await once(socket, 'connect');
    const peer = await accepted;
    const total = 64 * 1024 * 1024;
    expect(socket.write(Buffer.alloc(total))).toBe(false);
    const { done, isDone } = flushed([socket]);
    await sleep(200);
    expect(isDone()).toBe(false);
    expect(socket.writableLength).toBeGreaterThan(0);
    let received = 0;
    peer.on('data', (d: Buffer) => (received += d.length));
    peer.resume();
    await done;
    expect(socket.writableLength).toBe(0);
    await sleep(0);
    expect(received).toBeGreaterThan(0);
  });
});
