import type net from 'node:net';
import type tls from 'node:tls';
import type { Listener, ListenerTls } from '../../../common/amphora-config/index.ts';
import type { Logger } from '../log.ts';
import { ListenerTlsRuntime, tlsFingerprint } from '../tls/listener-tls.ts';
import type { Session } from './frontend.ts';

/** The four addresses of a connection: how a TLS socket finds the accepted socket it wraps. */
function connectionKey(socket: net.Socket): string {
  return `${socket.remoteAddress} ${socket.remotePort} ${socket.localAddress} ${socket.localPort}`;
}

/** Handshake time: the request-head timeout (slowloris defence) or the client timeout, whichever is set and shorter. */
function handshakeTimeout(listener: Listener): number {
  const candidates = [listener.timeouts.httpRequest, listener.timeouts.clientData].filter((t) => t > 0);
  return candidates.length === 0 ? 0 : Math.min(...candidates);
}

/**
 * TLS termination for a listener (HAProxy `bind ... ssl crt-list ... [ca-file verify ...] [crl-file]`): runs
 * the handshake on admitted sockets (certificate chosen by SNI, client certificate verified per
 * `clientAuthentication`) and hands the established TLS socket to what serves the listener.
 */
export class TlsTerminator {
  private runtime: ListenerTlsRuntime;
  private runtimeKey: string;
  /** Connections in their handshake, by connection key. */
  private readonly handshaking = new Map<string, TlsSession>();

  constructor(
    listener: Listener,
    private readonly log: Logger,
    /** Whether what serves the listener speaks HTTP/2 (then h2 is advertised when listed). */
    private readonly http2: boolean,
  ) {
    this.runtimeKey = tlsFingerprint([listener.tls, handshakeTimeout(listener)]);
    this.runtime = this.makeRuntime(listener);
  }

  /** New TLS settings apply to new handshakes; established connections keep what they negotiated. */
  update(listener: Listener): void {
    const key = tlsFingerprint([listener.tls, handshakeTimeout(listener)]);
    if (key === this.runtimeKey) return;
    try {
      this.runtime = this.makeRuntime(listener);
      this.runtimeKey = key;
    } catch (err) {
      // Validation loads the same material first, so this should not happen; if it does, keep serving.
      this.log.error({ listenerId: listener.id, err: (err as Error).message }, 'new TLS settings cannot be loaded; the previous ones stay');
    }
  }

  private makeRuntime(listener: Listener): ListenerTlsRuntime {
    const runtime = new ListenerTlsRuntime(listener.id, listener.tls as ListenerTls, handshakeTimeout(listener), this.http2);
    const listenerId = listener.id;
    if (!runtime.renewsTickets) this.log.warn({ listenerId }, 'this Node cannot renew TLS session tickets: clients resume every other connection');
    runtime.server.on('secureConnection', (socket: tls.TLSSocket) => this.onSecure(socket, runtime, listenerId));
    runtime.server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
      // OpenSSL's reason only (protocol version, no shared cipher, certificate required...): never material.
      this.log.debug({ listenerId, err: err.message }, 'TLS handshake failed');
      socket.destroy();
    });
    return runtime;
  }

  /** Starts the handshake on an admitted socket; `start` serves the connection once it is established. */
  accept(raw: net.Socket, start: (socket: tls.TLSSocket) => Session): Session {
    const session = new TlsSession(raw, start);
    const key = connectionKey(raw);
    this.handshaking.set(key, session);
    raw.once('close', () => {
      if (this.handshaking.get(key) === session) this.handshaking.delete(key);
    });
    // The tls.Server never listens: it gets the admitted socket and runs the handshake on it.
    this.runtime.server.emit('connection', raw);
    return session;
  }

  private onSecure(socket: tls.TLSSocket, runtime: ListenerTlsRuntime, listenerId: string): void {
    const key = connectionKey(socket);
    const session = this.handshaking.get(key);
    this.handshaking.delete(key);
    if (session === undefined) {
      socket.destroy();
      return;
    }
    // OPTIONAL: no certificate is fine, a certificate that fails verification (or is revoked) is not.
    if (runtime.clientAuthentication !== 'NONE' && !socket.authorized && socket.getPeerX509Certificate() !== undefined) {
      this.log.debug({ listenerId, reason: socket.authorizationError }, 'client certificate refused');
      socket.destroy();
      return;
    }
    session.established(socket);
  }
}

/** A TLS connection as a frontend tracks it: the handshake, then the session serving it. */
class TlsSession implements Session {
  private inner: Session | null = null;
  private secure: tls.TLSSocket | null = null;
  private closed = false;
  private drainRequested = false;

  constructor(
    private readonly raw: net.Socket,
    private readonly start: (socket: tls.TLSSocket) => Session,
  ) {}

  /** Byte counts are the decrypted traffic once the handshake is done (as HAProxy counts a TLS frontend). */
  get client(): net.Socket {
    return this.secure ?? this.raw;
  }

  established(socket: tls.TLSSocket): void {
    if (this.closed || this.drainRequested) {
      socket.destroy();
      return;
    }
    this.secure = socket;
    socket.allowHalfOpen = true;
    this.inner = this.start(socket);
  }

  drain(): void {
    this.drainRequested = true;
    if (this.inner !== null) this.inner.drain();
    else this.destroy();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.inner?.destroy();
    this.secure?.destroy();
    this.raw.destroy();
  }
}
