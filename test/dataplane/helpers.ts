import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import type { AmphoraConfigInput, ListenerInput, PoolInput } from '../../common/amphora-config/index.ts';
import { LocalDataPlane } from '../../amphora/dataplane/dataplane.ts';
import { createLogger } from '../../amphora/dataplane/log.ts';

/** Deterministic UUIDs for fixtures. */
export const uid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
export const AMPHORA_ID = uid(0xa0);

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Things a test started, closed in reverse order by `cleanup()`. */
export class Resources {
  private readonly closers: (() => Promise<unknown> | void)[] = [];

  add(closer: () => Promise<unknown> | void): void {
    this.closers.push(closer);
  }

  async cleanup(): Promise<void> {
    while (this.closers.length > 0) await (this.closers.pop() as () => Promise<unknown> | void)();
  }
}

export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    // The same number must be free for UDP too (TCP+UDP listeners share ports).
    const udpFree = await new Promise<boolean>((resolve) => {
      const socket = dgram.createSocket('udp4');
      socket.once('error', () => resolve(false));
      socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  remotePort: number;
}

export interface HttpMember {
  name: string;
  port: number;
  requests: RecordedRequest[];
  /** Raw bytes received on every connection, in order. */
  raw: Buffer[];
  connections: number;
  server: http.Server;
  handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;
  close(): Promise<void>;
}

/** An HTTP member answering `name` (and an X-Member header); `handler` can be replaced by a test. */
export async function startHttpMember(resources: Resources, name: string, port?: number): Promise<HttpMember> {
  const listenPort = port ?? (await freePort());
  const member: HttpMember = {
    name,
    port: listenPort,
    requests: [],
    raw: [],
    connections: 0,
    server: undefined as unknown as http.Server,
    handler: (_req, res) => {
      res.setHeader('x-member', name);
      res.end(name);
    },
    close: async () => {
      member.server.closeAllConnections();
      await new Promise<void>((resolve) => member.server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      member.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, remotePort: req.socket.remotePort ?? 0 });
      member.handler(req, res, body);
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (socket: net.Socket) => {
    member.connections++;
    socket.on('data', (d: Buffer) => member.raw.push(d));
  });
  member.server = server;
  await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', () => resolve()));
  resources.add(() => member.close());
  return member;
}

export interface TcpMember {
  name: string;
  port: number;
  /** First bytes of every connection (PROXY header checks), and live sockets. */
  received: Buffer[][];
  sockets: Set<net.Socket>;
  close(): Promise<void>;
}

/** A TCP member that greets with "<name>\n" and echoes what it receives. */
export async function startTcpMember(resources: Resources, name: string, options: { greet?: boolean } = {}): Promise<TcpMember> {
  const port = await freePort();
  const member: TcpMember = { name, port, received: [], sockets: new Set(), close: async () => {} };
  const server = net.createServer((socket) => {
    const chunks: Buffer[] = [];
    member.received.push(chunks);
    member.sockets.add(socket);
    socket.on('close', () => member.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    if (options.greet !== false) socket.write(`${name}\n`);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      socket.write(d);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  member.close = async () => {
    for (const s of member.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  resources.add(() => member.close());
  return member;
}

export interface UdpMember {
  name: string;
  port: number;
  received: string[];
  close(): Promise<void>;
}

/** A UDP member replying "<name>:<datagram>". */
export async function startUdpMember(resources: Resources, name: string, port?: number): Promise<UdpMember> {
  const listenPort = port ?? (await freePort());
  const socket = dgram.createSocket('udp4');
  let closed = false;
  const member: UdpMember = {
    name,
    port: listenPort,
    received: [],
    close: () =>
      new Promise<void>((resolve) => {
        if (closed) return resolve();
        closed = true;
        socket.close(() => resolve());
      }),
  };
  socket.on('message', (msg, remote) => {
    member.received.push(msg.toString());
    socket.send(`${name}:${msg.toString()}`, remote.port, remote.address);
  });
  await new Promise<void>((resolve) => socket.bind(listenPort, '127.0.0.1', () => resolve()));
  resources.add(() => member.close());
  return member;
}

/** A config around the given listeners and pools, on VIP 127.0.0.1. */
export function config(listeners: ListenerInput[], pools: PoolInput[], configVersion = 1): AmphoraConfigInput {
  return { version: 1, configVersion, amphoraId: AMPHORA_ID, vips: [{ address: '127.0.0.1' }], listeners, pools };
}

export async function startDataPlane(resources: Resources, input: AmphoraConfigInput): Promise<LocalDataPlane> {
  const dp = new LocalDataPlane({ log: createLogger(process.env.ARGONAUT_TEST_LOG ?? 'silent') });
  await dp.apply(input);
  resources.add(() => dp.stop(200));
  return dp;
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface RequestOptions {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  localAddress?: string;
  agent?: http.Agent | false;
  timeoutMs?: number;
}

/** One HTTP request through node's client; a new connection unless an agent is given. */
export function request(port: number, options: RequestOptions = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path ?? '/',
        headers: options.headers,
        localAddress: options.localAddress,
        agent: options.agent ?? false,
        timeout: options.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Counts answers per member name over `n` sequential requests. */
export async function distribution(n: number, send: (i: number) => Promise<string>): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const name = await send(i);
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

/**
 * Writes raw bytes on a new connection and collects everything the proxy sends back until it closes
 * the connection or `waitMs` passes.
 */
export function rawExchange(port: number, bytes: string | Buffer | (string | Buffer)[], waitMs = 2_000, gapMs = 0): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let closed = false;
    const timer = setTimeout(() => finish(), waitMs);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    };
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => {
      closed = true;
      finish();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
        closed = true;
        finish();
      } else {
        clearTimeout(timer);
        reject(err);
      }
    });
    socket.on('connect', async () => {
      const parts = Array.isArray(bytes) ? bytes : [bytes];
      for (const part of parts) {
        if (socket.destroyed) return;
        socket.write(part);
        if (gapMs > 0) await sleep(gapMs);
      }
    });
  });
}

/** Connects a TCP client and resolves with the socket and the first line it reads. */
export function tcpGreeting(port: number, localAddress?: string): Promise<{ socket: net.Socket; line: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no greeting'));
    }, 5_000);
    socket.on('data', (d: Buffer) => {
      text += d.toString();
      const nl = text.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        socket.removeAllListeners('data');
        resolve({ socket, line: text.slice(0, nl) });
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      reject(new Error('closed before greeting'));
    });
  });
}

/** Sends one datagram from a fresh socket and waits for one reply. */
export function udpAsk(port: number, message: string, options: { socket?: dgram.Socket; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const own = options.socket === undefined;
    const socket = options.socket ?? dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      socket.off('message', onMessage);
      if (own) socket.close();
      reject(new Error('no UDP reply'));
    }, options.timeoutMs ?? 2_000);
    const onMessage = (msg: Buffer) => {
      clearTimeout(timer);
      socket.off('message', onMessage);
      if (own) socket.close();
      resolve(msg.toString());
    };
    socket.on('message', onMessage);
    socket.send(message, port, '127.0.0.1');
  });
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, stepMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(stepMs);
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

export function httpListener(id: number, port: number, poolId: number | null, extra: Partial<ListenerInput> = {}): ListenerInput {
  return { id: uid(id), protocol: 'HTTP', ports: [port], defaultPoolId: poolId === null ? null : uid(poolId), ...extra };
}

export function pool(id: number, protocol: PoolInput['protocol'], members: { id: number; port: number; [k: string]: unknown }[], extra: Partial<PoolInput> = {}): PoolInput {
  return {
    id: uid(id),
    protocol,
    algorithm: 'ROUND_ROBIN',
    members: members.map(({ id: memberId, port, ...rest }) => ({ id: uid(memberId), address: '127.0.0.1', port, ...rest })),
    ...extra,
  };
}
