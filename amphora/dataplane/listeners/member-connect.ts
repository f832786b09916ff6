import net from 'node:net';
import tls from 'node:tls';
import type { Backend, SelectRequest } from '../balancer/backend.ts';
import type { Server } from '../balancer/server.ts';
import type { MemberTls } from '../tls/member-tls.ts';

/** HAProxy `retries 3` + `option redispatch`: the last attempts go to other servers. */
export const CONNECT_ATTEMPTS = 3;

/** How to reach a member over TLS (pools with re-encryption). */
export interface SecureTarget {
  tls: MemberTls;
  /** The client's server name, passed on (HAProxy `sni ssl_fc_sni`); null when there is none. */
  sni: string | null;
  mode: 'http' | 'stream';
}

export interface MemberConnection {
  socket: net.Socket;
  server: Server;
}

/**
 * Connects to a server of `backend` for `req`: each failed attempt marks the server failed for
 * persistence and tries another one, up to CONNECT_ATTEMPTS. `done` gets null when nothing could be reached
 * (no server available, or every attempt failed).
 */
export function connectToBackend(
  backend: Backend,
  req: SelectRequest,
  connectTimeoutMs: number,
  done: (conn: MemberConnection | null, lastError: Error | null) => void,
  onread?: net.OnReadOpts,
): void {
  const tried = new Set<Server>();
  let attempts = 0;
  const attempt = (lastError: Error | null) => {
    if (attempts >= CONNECT_ATTEMPTS) return done(null, lastError);
    // Prefer a server not tried yet (redispatch); with none left, retry the same one as HAProxy does.
    const server = backend.select(req, tried) ?? (tried.size > 0 ? backend.select(req) : null);
    if (server === null) return done(null, lastError);
    attempts++;
    tried.add(server);
    server.counters.activeConnections++;
    const secure: SecureTarget | null = backend.tls === null ? null : { tls: backend.tls, sni: null, mode: 'stream' };
    openSocket(
      server,
      connectTimeoutMs,
      (err, socket) => {
        if (err !== null) {
          server.counters.activeConnections--;
          server.counters.requestErrors++;
          backend.failed(server);
          return attempt(err);
        }
        server.counters.totalConnections++;
        done({ socket: socket as net.Socket, server }, null);
      },
      secure === null ? onread : undefined,
      secure,
    );
  };
  attempt(null);
}

/**
 * Opens a TCP connection to a server with a connect timeout; the socket comes back without listeners.
 * `onread` makes the socket read into caller-provided buffers instead of emitting 'data'. With `secure`
 * the connection is TLS and counts as open once the handshake (and the member certificate's
 * verification, when the pool has a CA) succeeded; the timeout covers both.
 */
export function openSocket(
  server: Server,
  timeoutMs: number,
  done: (err: Error | null, socket?: net.Socket) => void,
  onread?: net.OnReadOpts,
  secure?: SecureTarget | null,
): void {
  // Member addresses are IP literals: net skips the resolver for them.
  const socket =
    secure === undefined || secure === null
      ? net.connect({ host: server.address, port: server.port, noDelay: true, allowHalfOpen: true, onread })
      : tls.connect({ ...secure.tls.connectOptions(server.address, server.port, secure.sni, secure.mode), allowHalfOpen: true } as tls.ConnectionOptions);
  if (secure !== undefined && secure !== null) {
    // tls.connect does not take noDelay.
    socket.setNoDelay(true);
    secure.tls.watchSessions(socket as tls.TLSSocket, server.address, server.port, secure.sni);
  }
  const connectEvent = secure === undefined || secure === null ? 'connect' : 'secureConnect';
  let settled = false;
  const finish = (err: Error | null) => {
    if (settled) return;
    settled = true;
    socket.off(connectEvent, onConnect);
    socket.off('error', finish);
    socket.off('timeout', onTimeout);
    socket.setTimeout(0);
    if (err !== null) {
      socket.destroy();
      done(err);
    } else {
      done(null, socket);
    }
  };
  const onConnect = () => finish(null);
  const onTimeout = () => finish(new Error(`connect to ${server.address}:${server.port} timed out`));
  socket.once(connectEvent, onConnect);
  socket.once('error', finish);
  socket.once('timeout', onTimeout);
  if (timeoutMs > 0) socket.setTimeout(timeoutMs);
}
