import type net from 'node:net';
import type { Backend } from '../balancer/backend.ts';
import type { Server } from '../balancer/server.ts';
import { plainAddress } from '../net/address.ts';
import { whenFlushed } from '../net/flushed.ts';
import { kernelRelay, stopReading, type KernelRelay, type RelayedBytes } from '../native/kernel-relay.ts';
import { proxyV1Header, proxyV2Header } from '../proxy-protocol.ts';
import { StreamFrontend, type Session } from './frontend.ts';
import { connectToBackend } from './member-connect.ts';
import { readBuffers } from './read-buffers.ts';

/** A TCP (or TLS pass-through) listener: each client connection is spliced to one member connection. */
export class TcpFrontend extends StreamFrontend {
  protected serve(client: net.Socket, localPort: number): Session {
    const session = new TcpSession(this, client, localPort);
    session.start();
    return session;
  }

  backendForNewSession(): Backend | undefined {
    const poolId = this.config.defaultPoolId;
    return poolId === null ? undefined : this.ctx.backend(poolId);
  }
}

class TcpSession implements Session {
  private member: net.Socket | null = null;
  private server: Server | null = null;
  private backend: Backend | undefined;
  private initial: Buffer[] = [];
  private closed = false;
  /**
   * Member → client fast path: the member socket reads into this buffer (see read-buffers.ts), null when
   * this session uses the ordinary stream path.
   */
  private readBuffer: Buffer | null = null;
  /** The kernel relay this session will hand its bytes to (plain members only), chosen once at connect. */
  private relay: KernelRelay | null = null;
  /** Set while the kernel relay moves this session's bytes (native/kernel-relay.ts). */
  private relayId: number | null = null;
  /** Bytes the kernel relay moved, once it has finished with the session. */
  private relayed: RelayedBytes | null = null;

  constructor(
    private readonly frontend: TcpFrontend,
    readonly client: net.Socket,
    private readonly localPort: number,
  ) {}

  start(): void {
    const { client } = this;
    const timeouts = this.frontend.config.timeouts;
    client.on('error', () => this.destroy());
    client.on('close', () => this.destroy());
    client.on('timeout', () => this.destroy());
    if (timeouts.clientData > 0) client.setTimeout(timeouts.clientData);
    this.backend = this.frontend.backendForNewSession();
    if (this.backend === undefined) return this.destroy();

    if (timeouts.tcpInspect > 0) {
      // tcp-request inspect-delay: give the client a moment to speak before a member is chosen.
      const collect = (chunk: Buffer) => {
        this.initial.push(chunk);
        proceed();
      };
      const timer = setTimeout(() => proceed(), timeouts.tcpInspect);
      const proceed = () => {
        clearTimeout(timer);
        client.off('data', collect);
        client.pause();
        if (!this.closed) this.connect();
      };
      client.on('data', collect);
    } else {
      client.pause();
      this.connect();
    }
  }

  private connect(): void {
    const backend = this.backend as Backend;
    const { client } = this;
    const req = { sourceAddress: plainAddress(client.remoteAddress), sourcePort: client.remotePort ?? 0 };
    // TLS member sockets read through their own TLS layer: the onread fast path is for plain TCP, and
    // unneeded when the kernel relay will move the bytes.
    this.relay = backend.tls === null ? kernelRelay() : null;
    this.readBuffer = backend.tls === null && this.relay === null ? readBuffers.take() : null;
    // Bound methods rather than arrow functions: tsx (esbuild keepNames) renames every named closure it creates.
    const onread =
      this.readBuffer === null ? undefined : { buffer: this.nextReadBuffer.bind(this), callback: this.forwardFromMember.bind(this) };
    connectToBackend(backend, req, this.frontend.config.timeouts.memberConnect, (conn) => {
      if (this.closed) {
        if (conn !== null) {
          conn.server.counters.activeConnections--;
          conn.socket.destroy();
        }
        return;
      }
      if (conn === null) {
        this.frontend.counters.requestErrors++;
        return this.destroy();
      }
      this.member = conn.socket;
      this.server = conn.server;
      backend.succeeded(conn.server);
      this.splice(conn.socket, backend);
    }, onread);
  }

  private splice(member: net.Socket, backend: Backend): void {
    const { client } = this;
    member.on('error', () => this.destroy());
    member.on('close', () => this.destroy());
    member.on('timeout', () => this.destroy());
    const memberData = this.frontend.config.timeouts.memberData;
    if (memberData > 0) member.setTimeout(memberData);

    const protocol = backend.pool.protocol;
    if (protocol === 'PROXY' || protocol === 'PROXYV2') {
      const facts = {
        sourceAddress: plainAddress(client.remoteAddress),
        sourcePort: client.remotePort ?? 0,
        destinationAddress: plainAddress(client.localAddress),
        destinationPort: this.localPort,
      };
      member.write(protocol === 'PROXY' ? proxyV1Header(facts) : proxyV2Header(facts));
    }
    for (const chunk of this.initial) member.write(chunk);
    this.initial = [];
    if (this.relay !== null) {
      this.relayThroughKernel(member, this.relay);
      return;
    }
    client.pipe(member);
    if (this.readBuffer === null) {
      member.pipe(client);
    } else {
      // What pipe() would do for this direction: end after end, resume after the client drained.
      member.on('end', () => client.end());
      client.on('drain', () => {
        if (!this.closed) member.resume();
      });
      member.resume();
    }
    client.resume();
  }

  /**
   * A member chunk read into this session's buffer (onread): written to the client at once. A write that
   * does not complete in the call keeps referencing the buffer, so the next read gets a new one; reading
   * stops until the client drains when its queue is full.
   */
  private forwardFromMember(length: number, buffer: Uint8Array): boolean {
    const { client } = this;
    if (this.closed || client.destroyed) return false;
    const more = client.write(length === buffer.length ? buffer : buffer.subarray(0, length));
    if (client.writableLength > 0) this.readBuffer = readBuffers.replace();
    return more;
  }

  /** `onread` asks, after every read, for the buffer of the next one. */
  private nextReadBuffer(): Buffer {
    return this.readBuffer ?? readBuffers.replace();
  }

  /**
   * Hands both sockets to the kernel relay once whatever Node already read or queued has gone through
   * (Node may have read from either socket before reading could be stopped).
   */
  private relayThroughKernel(member: net.Socket, relay: KernelRelay): void {
    const { client } = this;
    client.pause();
    member.pause();
    stopReading(client);
    stopReading(member);
    forwardBuffered(client, member);
    forwardBuffered(member, client);
    const timeouts = this.frontend.config.timeouts;
    whenFlushed([client, member], () => {
      if (this.closed) return;
      const id = relay.add(client, member, timeouts.clientData, timeouts.memberData, (bytes) => {
        this.relayId = null;
        this.relayed = bytes;
        this.destroy();
      });
      if (id === null) {
        this.frontend.counters.requestErrors++;
        return this.destroy();
      }
      this.relayId = id;
      // The relay keeps the idle timeouts from here on.
      client.setTimeout(0);
      member.setTimeout(0);
    });
  }

  /** Client bytes read and written, including those the kernel relay moved. */
  clientBytes(): { read: number; written: number } {
    const relayed = this.relayedSoFar();
    return {
      read: this.client.bytesRead + (relayed?.clientRead ?? 0),
      written: this.client.bytesWritten + (relayed?.clientWritten ?? 0),
    };
  }

  private relayedSoFar(): RelayedBytes | null {
    if (this.relayId === null) return this.relayed;
    return this.relay?.bytes(this.relayId) ?? this.relayed;
  }

  drain(): void {
    // An L4 stream has no request boundary: it is left to finish within the drain grace period.
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.relayId !== null) {
      this.relayed = this.relayedSoFar();
      this.relay?.close(this.relayId);
      this.relayId = null;
    }
    this.client.destroy();
    const member = this.member;
    const server = this.server;
    member?.destroy();
    // The member socket is closed (no more reads) and no pending write holds the buffer.
    readBuffers.give(this.readBuffer);
    this.readBuffer = null;
    if (member !== null && server !== null) {
      server.counters.activeConnections--;
      server.counters.bytesIn += member.bytesWritten + (this.relayed?.memberWritten ?? 0);
      server.counters.bytesOut += member.bytesRead + (this.relayed?.memberRead ?? 0);
    }
  }
}

/** Writes on what Node had already read from `from` into its buffer (reading is stopped for good). */
function forwardBuffered(from: net.Socket, to: net.Socket): void {
  if (from.readableLength === 0) return;
  const data = from.read() as Buffer | null;
  if (data !== null) to.write(data);
}
