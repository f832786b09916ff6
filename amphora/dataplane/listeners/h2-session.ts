import { addCookiePairs } from '../http/request-head.ts';
import http2 from 'node:http2';
import type net from 'node:net';
import type tls from 'node:tls';
import type { Backend, SelectRequest } from '../balancer/backend.ts';
import type { Server } from '../balancer/server.ts';
import { ChunkedDecoder } from '../http/chunked.ts';
import { parseResponseHead, type ResponseHead } from '../http/response-head.ts';
import { errorBody } from '../http/responses.ts';
import { findHeadEnd, HttpParseError, TARGET_CHAR } from '../http/syntax.ts';
import type { L7Request } from '../l7/rules.ts';
import { plainAddress } from '../net/address.ts';
import { proxyV1Header, proxyV2Header, proxyV2SslTlv } from '../proxy-protocol.ts';
import { clientCertHeaderLines, type TlsClientConnection } from '../tls/client-cert.ts';
import type { Session } from './frontend.ts';
import type { HttpFrontend } from './http.ts';
import { CONNECT_ATTEMPTS, openSocket, type SecureTarget } from './member-connect.ts';
import type { Upstream, UpstreamOwner } from './upstream-pool.ts';

const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_FLAG_END_STREAM } = http2.constants;

/** Connection-specific request fields that never cross to HTTP/1.1 (RFC 9113 §8.2.2), plus host (rebuilt). */
const REQUEST_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'host', 'http2-settings']);
/** Connection-specific response fields an HTTP/2 response must not carry. */
const RESPONSE_DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
/** Methods whose HTTP/1.1 request needs `content-length: 0` when the HTTP/2 request has no body. */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);
const MAX_RESPONSE_HEAD = 65_536;
const MAX_BUFFERED_BODY = 65_536;
const MAX_CONCURRENT_STREAMS = 100;

/**
 * An HTTP/2 client connection on a TERMINATED_HTTPS listener (ALPN h2): each stream becomes an HTTP/1.1
 * exchange with a member, routed, balanced and rewritten exactly as on the HTTP/1.1 path (L7 policies,
 * persistence, inserted headers, member keep-alive, retries), as HAProxy's h2 front mux does.
 */
export class H2Connection implements Session {
  readonly client: net.Socket;
  readonly sourceAddress: string;
  readonly sourcePort: number;
  private session: http2.ServerHttp2Session | null = null;
  private readonly exchanges = new Set<H2Exchange>();
  /** Member connections that carry this client's PROXY header (PROXY/PROXYV2 pools), idle. */
  private readonly privateIdle: Upstream[] = [];
  private insertedLines: string | null = null;
  private closed = false;

  constructor(
    readonly frontend: HttpFrontend,
    socket: tls.TLSSocket,
    readonly localPort: number,
    readonly secure: TlsClientConnection,
  ) {
    this.client = socket;
    this.sourceAddress = plainAddress(socket.remoteAddress);
    this.sourcePort = socket.remotePort ?? 0;
    const limits = frontend.context.limits();
    // A server object per connection, never listening: the way to run Node's HTTP/2 server side on a socket.
    const server = http2.createServer({
      maxHeaderListPairs: limits.maxHeaderCount + 8,
      settings: { maxHeaderListSize: limits.maxHeaderBytes, enablePush: false, maxConcurrentStreams: MAX_CONCURRENT_STREAMS },
    });
    server.on('session', (session: http2.ServerHttp2Session) => {
      this.session = session;
      session.on('error', () => this.destroy());
      session.on('close', () => this.destroy());
      const idle = frontend.config.timeouts.clientData;
      if (idle > 0) {
        session.setTimeout(idle, () => {
          // timeout client: only an idle connection (no exchange waiting on a member) is closed.
          if (this.exchanges.size === 0) session.close();
        });
      }
    });
    server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number) => {
      if (this.closed || frontend.isDraining) {
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      const exchange = new H2Exchange(this, stream, headers, (flags & NGHTTP2_FLAG_END_STREAM) !== 0);
      this.exchanges.add(exchange);
      exchange.start();
    });
    // HTTP/2 has no half-close of the connection: the client's end (even before its preface) ends it.
    socket.allowHalfOpen = false;
    socket.once('end', () => this.destroy());
    socket.once('close', () => this.destroy());
    server.emit('connection', socket);
  }

  done(exchange: H2Exchange): void {
    this.exchanges.delete(exchange);
  }

  /** X-Forwarded-* and X-SSL-* lines for this connection (computed once). */
  inserted(): string {
    if (this.insertedLines === null) {
      const insert = this.frontend.insert;
      let lines = '';
      if (insert.forwardedFor) lines += `X-Forwarded-For: ${this.sourceAddress}\r\n`;
      if (insert.forwardedPort) lines += `X-Forwarded-Port: ${this.localPort}\r\n`;
      if (insert.forwardedProto) lines += 'X-Forwarded-Proto: https\r\n';
      if (this.frontend.sslHeaders !== null) lines += clientCertHeaderLines(this.secure.clientCert, this.frontend.sslHeaders);
      this.insertedLines = lines;
    }
    return this.insertedLines;
  }

  takePrivate(server: Server): Upstream | null {
    for (let i = this.privateIdle.length - 1; i >= 0; i--) {
      const upstream = this.privateIdle[i];
      if (upstream.server !== server || !upstream.usable) continue;
      this.privateIdle.splice(i, 1);
      return upstream;
    }
    return null;
  }

  givePrivate(upstream: Upstream): void {
    if (this.closed) upstream.socket.destroy();
    else this.privateIdle.push(upstream);
  }

  drain(): void {
    // GOAWAY: streams in progress finish, no new ones.
    this.session?.close();
    if (this.session === null) this.destroy();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    for (const exchange of [...this.exchanges]) exchange.abort();
    for (const upstream of this.privateIdle.splice(0)) upstream.socket.destroy();
    this.session?.destroy();
    this.client.destroy();
  }
}

/** What routing, balancing and persistence read from an HTTP/2 request. */
class H2Request implements L7Request, SelectRequest {
  readonly path: string;
  private cookies: Map<string, string> | null = null;

  constructor(
    private readonly headers: http2.IncomingHttpHeaders,
    readonly target: string,
    readonly host: string | null,
    readonly sourceAddress: string,
    readonly sourcePort: number,
  ) {
    const q = target.indexOf('?');
    this.path = q < 0 ? target : target.slice(0, q);
  }

  header(name: string): string | undefined {
    const value = this.headers[name.toLowerCase()];
    return Array.isArray(value) ? value[0] : value;
  }

  cookie(name: string): string | undefined {
    if (this.cookies === null) {
      const jar = new Map<string, string>();
      const raw = this.headers.cookie;
      for (const line of Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]) addCookiePairs(jar, line);
      this.cookies = jar;
    }
    return this.cookies.get(name);
  }
}

/** One HTTP/2 stream proxied as one HTTP/1.1 exchange with a member. */
class H2Exchange implements UpstreamOwner {
  private req: H2Request | null = null;
  private backend: Backend | null = null;
  private server: Server | null = null;
  private upstream: Upstream | null = null;
  private privateMode = false;
  private tried: Set<Server> | null = null;
  private attempts = 0;
  private retried = false;
  /** The request head, until it is written to a member connection. */
  private head: Buffer | null = null;
  /** The request head as first built, for a replay. */
  private firstHead: Buffer | null = null;
  /** Request body bytes waiting for the member connection (and kept for a replay while nothing was streamed). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private bodyStreamed = false;
  private requestDone: boolean;
  private chunkedRequest = false;
  private reqBytes = 0;
  private resBytes = 0;
  private res: ResponseHead | null = null;
  private resBuffer: Buffer | null = null;
  private resScanFrom = 0;
  private resRemaining = 0;
  private resDecoder: ChunkedDecoder | null = null;
  private resCloseDelimited = false;
  private resStarted = false;
  private upstreamDirty = false;
  private finished = false;

  constructor(
    private readonly conn: H2Connection,
    private readonly stream: http2.ServerHttp2Stream,
    private readonly headers: http2.IncomingHttpHeaders,
    endStream: boolean,
  ) {
    this.requestDone = endStream;
  }

  start(): void {
    const { stream, headers, conn } = this;
    const frontend = conn.frontend;
    stream.on('error', () => this.abort());
    stream.on('close', () => {
      if (!this.finished) this.abort();
    });
    const method = headers[':method'] ?? '';
    const target = headers[':path'] ?? '';
    const authority = headers[':authority'] ?? (typeof headers.host === 'string' ? headers.host : undefined);
    if (method === 'CONNECT') return this.fail(501);
    if (authority === undefined || !validTarget(target, method) || !validHeaders(headers)) {
      frontend.counters.requestErrors++;
      return this.fail(400);
    }
    const req = new H2Request(headers, target, authority, conn.sourceAddress, conn.sourcePort);
    this.req = req;
    let poolId = frontend.config.defaultPoolId;
    if (!frontend.policies.empty) {
      const decision = frontend.policies.evaluate(req, conn.secure);
      if (decision !== null) {
        if (decision.action === 'REJECT') return this.fail(403);
        if (decision.action === 'REDIRECT') return this.redirect(decision.status, decision.location(req));
        poolId = decision.poolId;
      }
    }
    const backend = poolId === null ? undefined : frontend.context.backend(poolId);
    if (backend === undefined) return this.fail(503);
    this.backend = backend;
    this.privateMode = backend.pool.protocol === 'PROXY' || backend.pool.protocol === 'PROXYV2';
    this.head = this.buildHead(method, target, authority);
    this.firstHead = this.head;
    if (!this.requestDone) {
      stream.on('data', (chunk: Buffer) => this.onClientData(chunk));
      stream.on('end', () => this.onClientEnd());
    }
    this.dispatch();
  }

  private buildHead(method: string, target: string, authority: string): Buffer {
    const { headers, conn } = this;
    const frontend = conn.frontend;
    const insert = frontend.insert;
    const ssl = frontend.sslHeaders !== null;
    let text = `${method} ${target} HTTP/1.1\r\nhost: ${authority}\r\n`;
    let hasLength = false;
    for (const name of Object.keys(headers)) {
      if (name.charCodeAt(0) === 58 /* : */ || REQUEST_DROP.has(name)) continue;
      if ((name === 'x-forwarded-port' && insert.forwardedPort) || (name === 'x-forwarded-proto' && insert.forwardedProto)) continue;
      if (ssl && frontend.sslHeaderNameSet.has(name)) continue;
      if (name === 'content-length') hasLength = true;
      const value = headers[name];
      if (name === 'cookie') {
        // HTTP/2 may split cookies over several fields; HTTP/1.1 wants one (RFC 9113 §8.2.3).
        text += `cookie: ${Array.isArray(value) ? value.join('; ') : value}\r\n`;
      } else if (Array.isArray(value)) {
        for (const v of value) text += `${name}: ${v}\r\n`;
      } else if (value !== undefined) {
        text += `${name}: ${value}\r\n`;
      }
    }
    if (!this.requestDone && !hasLength) {
      this.chunkedRequest = true;
      text += 'transfer-encoding: chunked\r\n';
    } else if (this.requestDone && !hasLength && BODY_METHODS.has(method)) {
      text += 'content-length: 0\r\n';
    }
    text += conn.inserted();
    text += '\r\n';
    return Buffer.from(text, 'latin1');
  }

  // ---- request body ----------------------------------------------------------------------------

  private frame(chunk: Buffer): Buffer[] {
    return this.chunkedRequest ? [Buffer.from(`${chunk.length.toString(16)}\r\n`, 'latin1'), chunk, CRLF] : [chunk];
  }

  private onClientData(chunk: Buffer): void {
    if (chunk.length === 0 || this.finished) return;
    this.reqBytes += chunk.length;
    const upstream = this.upstream;
    if (upstream === null || this.head !== null) {
      this.pending.push(...this.frame(chunk));
      this.pendingBytes += chunk.length;
      if (this.pendingBytes > MAX_BUFFERED_BODY) this.stream.pause();
      return;
    }
    this.bodyStreamed = true;
    let more = true;
    for (const part of this.frame(chunk)) more = upstream.socket.write(part);
    if (!more) this.pauseUntilDrain(this.stream, upstream.socket);
  }

  private onClientEnd(): void {
    if (this.finished) return;
    this.requestDone = true;
    const tail = this.chunkedRequest ? [LAST_CHUNK] : [];
    if (this.upstream === null || this.head !== null) this.pending.push(...tail);
    else for (const part of tail) this.upstream.socket.write(part);
    if (this.res !== null && this.resComplete) this.finish();
  }

  // ---- member side -----------------------------------------------------------------------------

  private get secureTarget(): SecureTarget | null {
    const backend = this.backend as Backend;
    return backend.tls === null ? null : { tls: backend.tls, sni: this.conn.secure.sni, mode: 'http' };
  }

  private dispatch(): void {
    const backend = this.backend as Backend;
    const req = this.req as H2Request;
    const tried = this.tried;
    if (tried !== null && this.attempts >= CONNECT_ATTEMPTS) return this.fail(503);
    const server = backend.select(req, tried ?? undefined) ?? (tried !== null ? backend.select(req) : null);
    if (server === null) return this.fail(503);
    this.attempts++;
    this.server = server;
    server.counters.activeConnections++;
    server.counters.totalConnections++;
    const secure = this.secureTarget;
    const tag = secure === null ? '' : (secure.sni ?? '');
    const pool = this.conn.frontend.context.upstreams;
    const reused = this.privateMode ? this.conn.takePrivate(server) : pool.acquire(server, tag);
    if (reused !== null) return this.send(reused);
    openSocket(
      server,
      this.conn.frontend.config.timeouts.memberConnect,
      (err, socket) => {
        if (this.finished) {
          socket?.destroy();
          return;
        }
        if (err !== null) {
          server.counters.activeConnections--;
          server.counters.requestErrors++;
          backend.failed(server);
          this.server = null;
          if (this.tried === null) this.tried = new Set();
          this.tried.add(server);
          return this.dispatch();
        }
        const fresh = pool.adopt(socket as net.Socket, server, tag);
        if (this.privateMode) {
          const conn = this.conn;
          const client = conn.client;
          const facts = {
            sourceAddress: conn.sourceAddress,
            sourcePort: conn.sourcePort,
            destinationAddress: plainAddress(client.localAddress),
            destinationPort: conn.localPort,
          };
          const cert = conn.secure.clientCert;
          const tlv = proxyV2SslTlv({ version: conn.secure.protocol, certificate: cert.used, verify: cert.verify, cn: cert.subjectField('CN') });
          fresh.socket.write(backend.pool.protocol === 'PROXY' ? proxyV1Header(facts) : proxyV2Header(facts, 'stream', tlv));
        }
        this.send(fresh);
      },
      undefined,
      secure,
    );
  }

  private send(upstream: Upstream): void {
    this.upstream = upstream;
    upstream.owner = this;
    upstream.uses++;
    upstream.setTimeout(this.conn.frontend.config.timeouts.memberData);
    this.res = null;
    this.resBuffer = null;
    this.resScanFrom = 0;
    this.resStarted = false;
    this.resBytes = 0;
    this.upstreamDirty = false;
    const socket = upstream.socket;
    socket.cork();
    socket.write(this.head as Buffer);
    for (const part of this.pending) socket.write(part);
    socket.uncork();
    // Body bytes buffered so far are kept until the response starts (a replay may need them) unless more stream.
    this.head = null;
    if (!this.requestDone) {
      this.bodyStreamed = this.bodyStreamed || this.pending.length > 0;
      this.pending = [];
      this.pendingBytes = 0;
      if (this.stream.isPaused()) this.stream.resume();
    }
  }

  onUpstreamData(chunk: Buffer): void {
    this.resBytes += chunk.length;
    if (this.res === null) {
      this.resBuffer = this.resBuffer === null ? chunk : Buffer.concat([this.resBuffer, chunk]);
      this.readResponseHead();
      return;
    }
    this.forwardBody(chunk);
  }

  private readResponseHead(): void {
    while (this.res === null && this.resBuffer !== null) {
      const buf = this.resBuffer;
      let head: ResponseHead;
      let end: number;
      try {
        end = findHeadEnd(buf, this.resScanFrom, buf.length);
        if (end < 0) {
          if (buf.length > MAX_RESPONSE_HEAD) throw new HttpParseError(502, 'response head too large');
          this.resScanFrom = Math.max(0, buf.length - 3);
          return;
        }
        head = parseResponseHead(buf, end, this.backend?.persistence?.type === 'APP_COOKIE');
      } catch (err) {
        if (!(err instanceof HttpParseError)) throw err;
        this.releaseUpstream(false);
        return this.fail(502);
      }
      this.resScanFrom = 0;
      const rest = buf.subarray(end);
      if (head.status < 200) {
        if (head.status === 101) {
          this.releaseUpstream(false);
          return this.fail(502);
        }
        // Interim responses (100 Continue) are not relayed: the final one follows.
        this.resBuffer = rest.length > 0 ? rest : null;
        continue;
      }
      this.res = head;
      this.resBuffer = null;
      this.startResponse(head, buf, end, rest);
    }
  }

  private startResponse(head: ResponseHead, buf: Buffer, end: number, rest: Buffer): void {
    const req = this.req as H2Request;
    const backend = this.backend as Backend;
    const server = this.server as Server;
    const method = this.headers[':method'];
    this.resDecoder = null;
    this.resCloseDelimited = false;
    let noBody = false;
    if (method === 'HEAD' || head.status === 204 || head.status === 304) {
      this.resRemaining = 0;
      noBody = true;
    } else if (head.chunked) {
      this.resDecoder = new ChunkedDecoder(502, (b, s, e) => this.writeClient(b.subarray(s, e)));
    } else if (head.contentLength >= 0) {
      this.resRemaining = head.contentLength;
      noBody = head.contentLength === 0;
    } else {
      this.resCloseDelimited = true;
    }
    if (head.status < 500) backend.succeeded(server);
    const persistence = backend.persistence;
    let extra: string | null = null;
    if (persistence !== null) {
      if (head.setCookies.length > 0) persistence.learnFromResponse(head.setCookies, server);
      extra = persistence.responseCookie(req, server);
    }
    const out = responseHeaders(buf, end, head.status, extra, this.conn.frontend.hstsValue);
    if (head.chunked) delete out['content-length'];
    this.resStarted = true;
    try {
      this.stream.respond(out, { endStream: noBody });
    } catch {
      // Headers HTTP/2 refuses (a repeated single-value field, say): the member's answer cannot be relayed.
      this.releaseUpstream(false);
      this.resStarted = false;
      return this.fail(502);
    }
    if (noBody) return this.onResponseComplete();
    if (rest.length > 0) this.forwardBody(rest);
  }

  private resComplete = false;

  private forwardBody(chunk: Buffer): void {
    let end = chunk.length;
    let done = false;
    if (this.resDecoder !== null) {
      try {
        const at = this.resDecoder.feed(chunk, 0, chunk.length);
        if (at >= 0) {
          end = at;
          done = true;
        }
      } catch (err) {
        if (!(err instanceof HttpParseError)) throw err;
        this.releaseUpstream(false);
        return this.reset();
      }
    } else {
      if (!this.resCloseDelimited) {
        end = Math.min(this.resRemaining, chunk.length);
        this.resRemaining -= end;
        done = this.resRemaining === 0;
      }
      if (end > 0) this.writeClient(end === chunk.length ? chunk : chunk.subarray(0, end));
    }
    if (end < chunk.length) this.upstreamDirty = true;
    if (done) this.onResponseComplete();
  }

  private writeClient(data: Buffer): void {
    if (this.stream.destroyed || this.stream.closed) return;
    if (!this.stream.write(data) && this.upstream !== null) this.pauseUntilDrain(this.upstream.socket, this.stream);
  }

  private onResponseComplete(): void {
    if (this.resComplete) return;
    this.resComplete = true;
    if (!this.stream.destroyed && !this.stream.writableEnded) this.stream.end();
    if (!this.requestDone) {
      // The member answered before the request body ended: that member connection cannot be reused.
      this.releaseUpstream(false);
      this.finished = true;
      this.conn.done(this);
      return;
    }
    this.finish();
  }

  private finish(): void {
    const res = this.res as ResponseHead;
    const reusable = !this.resCloseDelimited && !this.upstreamDirty && !res.connectionClose && (res.minor === 1 || res.connectionKeepAlive);
    this.releaseUpstream(reusable);
    this.finished = true;
    this.conn.done(this);
  }

  onUpstreamEnd(): void {
    if (this.res !== null && this.resCloseDelimited) return this.onResponseComplete();
    this.onUpstreamLost();
  }

  onUpstreamClose(): void {
    if (this.upstream === null) return;
    if (this.res !== null && this.resCloseDelimited && !this.resComplete) return this.onResponseComplete();
    this.onUpstreamLost();
  }

  private onUpstreamLost(): void {
    const upstream = this.upstream;
    if (upstream === null) return;
    this.releaseUpstream(false);
    if (this.resStarted) return this.reset();
    // A reused connection the member had closed meanwhile: replay once on a new one, when nothing streamed.
    if (upstream.uses > 1 && this.resBytes === 0 && !this.retried && this.requestDone && !this.bodyStreamed) {
      this.retried = true;
      const server = this.server as Server;
      this.server = null;
      server.counters.activeConnections--;
      server.counters.totalConnections--;
      this.head = this.firstHead;
      this.tried = null;
      return this.dispatch();
    }
    this.backend?.failed(this.server as Server);
    this.fail(502);
  }

  onUpstreamTimeout(): void {
    this.releaseUpstream(false);
    if (this.resStarted) return this.reset();
    this.fail(504);
  }

  private releaseUpstream(reusable: boolean): void {
    const upstream = this.upstream;
    const server = this.server;
    if (server !== null) {
      server.counters.activeConnections--;
      server.counters.bytesIn += this.reqBytes;
      server.counters.bytesOut += this.resBytes;
      this.server = null;
    }
    if (upstream === null) return;
    this.upstream = null;
    upstream.owner = null;
    if (upstream.socket.isPaused()) upstream.socket.resume();
    if (!reusable) upstream.socket.destroy();
    else if (this.privateMode) this.conn.givePrivate(upstream);
    else this.conn.frontend.context.upstreams.release(upstream);
  }

  // ---- answers of the proxy itself ---------------------------------------------------------------

  private fail(status: number): void {
    this.releaseUpstream(false);
    this.finished = true;
    this.conn.done(this);
    const stream = this.stream;
    if (stream.destroyed || stream.closed || stream.headersSent) return this.reset();
    const body = errorBody(status);
    stream.respond({ ':status': status, 'content-type': 'text/html', 'cache-control': 'no-cache', 'content-length': body.length });
    stream.end(body);
  }

  private redirect(status: number, location: string): void {
    this.finished = true;
    this.conn.done(this);
    this.stream.respond({ ':status': status, location, 'cache-control': 'no-cache', 'content-length': 0 }, { endStream: true });
  }

  private reset(): void {
    this.finished = true;
    this.conn.done(this);
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_INTERNAL_ERROR);
  }

  /** The client went away (stream reset, connection closed): the member connection cannot be reused. */
  abort(): void {
    if (this.finished) return;
    this.finished = true;
    this.releaseUpstream(false);
    this.conn.done(this);
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
  }

  private pauseUntilDrain(source: NodeJS.ReadableStream & { isPaused(): boolean }, sink: NodeJS.EventEmitter): void {
    if (source.isPaused()) return;
    source.pause();
    sink.once('drain', () => {
      if (!this.finished || this.upstream !== null) source.resume();
    });
  }
}

const CRLF = Buffer.from('\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

function validTarget(target: string, method: string): boolean {
  if (target === '*') return method === 'OPTIONS';
  if (target.charCodeAt(0) !== 47) return false;
  for (let i = 0; i < target.length; i++) if (TARGET_CHAR[target.charCodeAt(i)] !== 1) return false;
  return true;
}

/** nghttp2 already refuses CR, LF and NUL in fields; checked again since the values are written into an HTTP/1.1 head. */
function validHeaders(headers: http2.IncomingHttpHeaders): boolean {
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    for (const v of Array.isArray(value) ? value : [value]) if (v !== undefined && /[\r\n\0]/.test(v)) return false;
  }
  return true;
}

/** The member's response head as HTTP/2 response headers: lower-case names, repeated fields as lists. */
function responseHeaders(buf: Buffer, end: number, status: number, extraLines: string | null, hsts: string | null): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = { ':status': status };
  const add = (name: string, value: string) => {
    if (RESPONSE_DROP.has(name) || name.charCodeAt(0) === 58) return;
    if (hsts !== null && name === 'strict-transport-security') return;
    const existing = out[name];
    if (existing === undefined) out[name] = name === 'set-cookie' ? [value] : value;
    else if (Array.isArray(existing)) existing.push(value);
    else out[name] = [String(existing), value];
  };
  const text = buf.toString('latin1', 0, end - 4);
  const lines = text.split('\r\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    add(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  if (extraLines !== null) {
    for (const line of extraLines.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) add(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
  }
  if (hsts !== null) out['strict-transport-security'] = hsts;
  return out;
}
