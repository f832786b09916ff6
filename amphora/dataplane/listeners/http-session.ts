import type net from 'node:net';
import type { Backend, SelectRequest } from '../balancer/backend.ts';
import type { Server } from '../balancer/server.ts';
import { ChunkedDecoder } from '../http/chunked.ts';
import { rewriteHead } from '../http/head-rewrite.ts';
import { parseRequestHead, type HeaderSpan, type RequestHead } from '../http/request-head.ts';
import { parseResponseHead, type ResponseHead } from '../http/response-head.ts';
import { errorResponse, redirectResponse } from '../http/responses.ts';
import { equalsLower, findHeadEnd, HttpParseError } from '../http/syntax.ts';
import { plainAddress } from '../net/address.ts';
import { proxyV1Header, proxyV2Header, proxyV2SslTlv } from '../proxy-protocol.ts';
import { clientCertHeaderLines, type TlsClientConnection } from '../tls/client-cert.ts';
import type { Session } from './frontend.ts';
import type { HttpFrontend } from './http.ts';
import { CONNECT_ATTEMPTS, openSocket, type SecureTarget } from './member-connect.ts';
import type { Upstream, UpstreamOwner } from './upstream-pool.ts';

const READ_HEAD = 0;
const SEND_BODY = 1;
const AWAIT_RESPONSE = 2;
const TUNNEL = 3;
const CLOSING = 4;
const CLOSED = 5;

/** Pipelined bytes buffered while a response is pending, before the client is paused. */
const MAX_PIPELINE_BUFFER = 65_536;
/** How long a refused client may keep sending before the socket is torn down (lingering close). */
const LINGER_MS = 2_000;
const MAX_RESPONSE_HEAD = 65_536;

/** Whether a request header line is one of `names` (lower-case X-SSL-* names the listener sets itself). */
function isSslHeader(buf: Buffer, span: HeaderSpan, names: readonly Uint8Array[]): boolean {
  const length = span.nameEnd - span.lineStart;
  if (length < 12 || (buf[span.lineStart] | 0x20) !== 0x78 || buf[span.lineStart + 1] !== 0x2d) return false; // "x-"
  for (const name of names) if (name.length === length && equalsLower(buf, span.lineStart, length, name)) return true;
  return false;
}

/**
 * What balancing and persistence read from an HTTP request. A class rather than an object literal with an
 * arrow function: tsx (esbuild keepNames) wraps every such named closure in a defineProperty call, which
 * showed up at ~3% of a worker's CPU when it ran once per request.
 */
class HttpSelectRequest implements SelectRequest {
  constructor(
    readonly sourceAddress: string,
    readonly sourcePort: number,
    private readonly head: RequestHead,
  ) {}

  cookie(name: string): string | undefined {
    return this.head.cookie(name);
  }
}

/**
 * One client connection on an HTTP listener: reads request heads strictly, routes each request (L7
 * policies, pool, persistence), forwards it over a member connection and relays the response, request
 * after request, as HAProxy does in `http-keep-alive` mode.
 */
export class HttpSession implements Session, UpstreamOwner {
  private state = READ_HEAD;
  private buffer: Buffer | null = null;
  private scanFrom = 0;
  private headTimer: NodeJS.Timeout | null = null;
  private readonly sourceAddress: string;
  private forwardedLines: Buffer | null = null;
  private drainRequested = false;
  private closing = false;

  // The exchange in progress.
  private req: RequestHead | null = null;
  private backend: Backend | null = null;
  private server: Server | null = null;
  private upstream: Upstream | null = null;
  private tried: Set<Server> | null = null;
  private attempts = 0;
  private sentHead: Buffer | null = null;
  private bodyRemaining = 0;
  private bodyDecoder: ChunkedDecoder | null = null;
  private requestDone = false;
  private res: ResponseHead | null = null;
  private resBuffer: Buffer | null = null;
  private resScanFrom = 0;
  private resRemaining = 0;
  private resDecoder: ChunkedDecoder | null = null;
  private resCloseDelimited = false;
  private resStarted = false;
  private resBytes = 0;
  private reqBytes = 0;
  private upstreamDirty = false;
  private retried = false;
  /** Member connection kept for this client only (pools sending a PROXY header cannot share). */
  private privateUpstream: Upstream | null = null;

  constructor(
    private readonly frontend: HttpFrontend,
    readonly client: net.Socket,
    private readonly localPort: number,
    /** The TLS side of the client connection on TERMINATED_HTTPS listeners; null on plain HTTP. */
    private readonly secure: TlsClientConnection | null,
  ) {
    this.sourceAddress = plainAddress(client.remoteAddress);
    client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    client.on('end', () => this.onClientEnd());
    client.on('error', () => this.destroy());
    client.on('close', () => this.destroy());
    client.on('timeout', () => this.onClientTimeout());
    const timeouts = frontend.config.timeouts;
    if (timeouts.clientData > 0) client.setTimeout(timeouts.clientData);
    this.armHeadTimer();
  }

  // ---- client side ---------------------------------------------------------------------------------

  private onClientData(chunk: Buffer): void {
    switch (this.state) {
      case READ_HEAD:
        this.buffer = this.buffer === null ? chunk : Buffer.concat([this.buffer, chunk]);
        this.readHead();
        return;
      case SEND_BODY:
        this.forwardBody(chunk);
        return;
      case AWAIT_RESPONSE:
        this.buffer = this.buffer === null ? chunk : Buffer.concat([this.buffer, chunk]);
        if (this.buffer.length > MAX_PIPELINE_BUFFER) this.client.pause();
        return;
      case TUNNEL:
        if (this.upstream !== null && !this.upstream.socket.write(chunk)) this.pauseUntilDrain(this.client, this.upstream.socket);
        return;
      default:
        return; // CLOSING: a refused client's remaining bytes are discarded
    }
  }

  private onClientEnd(): void {
    if (this.state === TUNNEL && this.upstream !== null) {
      this.upstream.socket.end();
      return;
    }
    if (this.state === READ_HEAD && (this.buffer === null || this.buffer.length === 0)) {
      this.closeClient();
      return;
    }
    if (this.state === READ_HEAD || this.state === SEND_BODY) {
      // The client gave up in the middle of a request.
      this.frontend.counters.requestErrors++;
      this.destroy();
      return;
    }
    // AWAIT_RESPONSE: the client half-closed after its request; answer, then close.
    this.drainRequested = true;
  }

  private onClientTimeout(): void {
    if (this.state === READ_HEAD) {
      if (this.buffer !== null && this.buffer.length > 0) this.refuse(408);
      else this.closeClient();
    } else if (this.state === SEND_BODY) {
      this.frontend.counters.requestErrors++;
      this.destroy();
    } else if (this.state === TUNNEL || this.state === CLOSING) {
      this.destroy();
    }
    // AWAIT_RESPONSE: the member side has its own timeout.
  }

  private armHeadTimer(): void {
    const ms = this.frontend.config.timeouts.httpRequest;
    if (ms === 0 || this.headTimer !== null) return;
    this.headTimer = setTimeout(() => {
      this.headTimer = null;
      if (this.state !== READ_HEAD) return;
      if (this.buffer !== null && this.buffer.length > 0) this.refuse(408);
      else this.closeClient();
    }, ms);
  }

  private clearHeadTimer(): void {
    if (this.headTimer !== null) {
      clearTimeout(this.headTimer);
      this.headTimer = null;
    }
  }

  /** Parses the next request head from the buffer, if it is complete. */
  private readHead(): void {
    let buf = this.buffer as Buffer;
    // Tolerate empty lines between requests (RFC 9112 §2.2).
    let skip = 0;
    while (skip + 1 < buf.length && buf[skip] === 13 && buf[skip + 1] === 10) skip += 2;
    if (skip > 0) {
      buf = buf.subarray(skip);
      this.buffer = buf;
      this.scanFrom = 0;
    }
    if (buf.length === 0) return;
    const limits = this.frontend.context.limits();
    let end: number;
    let head: RequestHead;
    try {
      end = findHeadEnd(buf, this.scanFrom, buf.length);
      if (end < 0) {
        if (buf.length > limits.maxHeaderBytes) throw new HttpParseError(431, 'request head too large');
        this.scanFrom = Math.max(0, buf.length - 3);
        this.armHeadTimer();
        return;
      }
      if (end > limits.maxHeaderBytes) throw new HttpParseError(431, 'request head too large');
      head = parseRequestHead(buf, end, limits);
    } catch (err) {
      if (err instanceof HttpParseError) return this.refuse(err.status);
      throw err;
    }
    this.clearHeadTimer();
    this.scanFrom = 0;
    this.buffer = null;
    this.handleRequest(head, buf.subarray(end));
  }

  private handleRequest(head: RequestHead, rest: Buffer): void {
    this.req = head;
    this.requestDone = false;
    this.bodyDecoder = null;
    this.bodyRemaining = 0;
    this.reqBytes = 0;
    const frontend = this.frontend;

    // Validate whatever body bytes already arrived before anything reaches a member.
    let bodyEnd = 0;
    if (head.chunked) {
      this.bodyDecoder = new ChunkedDecoder(400);
      try {
        const end = this.bodyDecoder.feed(rest, 0, rest.length);
        bodyEnd = end < 0 ? rest.length : end;
        this.requestDone = end >= 0;
      } catch (err) {
        if (err instanceof HttpParseError) return this.refuse(err.status);
        throw err;
      }
    } else if (head.contentLength > 0) {
      bodyEnd = Math.min(head.contentLength, rest.length);
      this.bodyRemaining = head.contentLength - bodyEnd;
      this.requestDone = this.bodyRemaining === 0;
    } else {
      this.requestDone = true;
    }
    const body = bodyEnd > 0 ? rest.subarray(0, bodyEnd) : null;
    if (bodyEnd < rest.length) this.buffer = rest.subarray(bodyEnd);

    let poolId = frontend.config.defaultPoolId;
    if (!frontend.policies.empty) {
      const decision = frontend.policies.evaluate(head, this.secure);
      if (decision !== null) {
        if (decision.action === 'REJECT') return this.respondLocally(errorResponse(403, !this.canContinue()));
        if (decision.action === 'REDIRECT') {
          return this.respondLocally(redirectResponse(decision.status, decision.location(head), !this.canContinue()));
        }
        poolId = decision.poolId;
      }
    }
    const backend = poolId === null ? undefined : frontend.context.backend(poolId);
    if (backend === undefined) return this.respondLocally(errorResponse(503, !this.canContinue()));
    this.backend = backend;
    this.tried = null;
    this.attempts = 0;
    this.retried = false;
    this.sentHead = this.buildRequestHead(head);
    this.state = this.requestDone ? AWAIT_RESPONSE : SEND_BODY;
    this.pendingBody = body;
    this.dispatch();
  }

  /** Body bytes that arrived with the head, sent right after it. */
  private pendingBody: Buffer | null = null;

  /** A request answered by the proxy itself leaves the connection usable only if it had no body to skip. */
  private canContinue(): boolean {
    const req = this.req as RequestHead;
    return req.keepAlive && !req.hasBody && !this.drainRequested && !this.frontend.isDraining;
  }

  private respondLocally(response: Buffer): void {
    const keep = this.canContinue();
    this.client.write(response);
    this.req = null;
    if (!keep) {
      this.state = CLOSING;
      this.closeClient();
      return;
    }
    this.state = READ_HEAD;
    if (this.buffer !== null && this.buffer.length > 0) this.readHead();
  }

  /** Refuses a malformed or abusive request: error response, then a lingering close. */
  private refuse(status: number): void {
    this.frontend.counters.requestErrors++;
    this.clearHeadTimer();
    this.buffer = null;
    if (this.state === CLOSING || this.state === CLOSED) return;
    this.state = CLOSING;
    this.releaseUpstream(false);
    this.client.write(errorResponse(status, true));
    this.closeClient();
  }

  private closeClient(): void {
    this.clearHeadTimer();
    if (this.state === CLOSED || this.closing) return;
    this.closing = true;
    this.state = CLOSING;
    this.client.end();
    const linger = setTimeout(() => this.destroy(), LINGER_MS);
    linger.unref();
    this.client.once('close', () => clearTimeout(linger));
  }

  private buildRequestHead(head: RequestHead): Buffer {
    const frontend = this.frontend;
    const insert = frontend.insert;
    const remove: HeaderSpan[] = [];
    // A client's "Connection: close" is for us: the member connection stays reusable.
    if (head.minor === 1 && head.connectionClose && !head.isUpgrade) remove.push(...head.connectionLines);
    let extra: Buffer | null = null;
    const ssl = frontend.sslHeaders;
    if (insert.forwardedFor || insert.forwardedPort || insert.forwardedProto || ssl !== null) {
      if (insert.forwardedPort || insert.forwardedProto) {
        for (const span of head.forwardedLines) {
          const isPort = span.nameEnd - span.lineStart === 16;
          if ((isPort && insert.forwardedPort) || (!isPort && insert.forwardedProto)) remove.push(span);
        }
      }
      // The X-SSL-* headers are set, not added (HAProxy set-header): a client's own values must not pass.
      if (ssl !== null) for (const span of head.headers) if (isSslHeader(head.buf, span, frontend.sslHeaderNames)) remove.push(span);
      if (this.forwardedLines === null) {
        let lines = '';
        if (insert.forwardedFor) lines += `X-Forwarded-For: ${this.sourceAddress}\r\n`;
        if (insert.forwardedPort) lines += `X-Forwarded-Port: ${this.localPort}\r\n`;
        if (insert.forwardedProto) lines += `X-Forwarded-Proto: ${this.secure === null ? 'http' : 'https'}\r\n`;
        if (ssl !== null && this.secure !== null) lines += clientCertHeaderLines(this.secure.clientCert, ssl);
        this.forwardedLines = Buffer.from(lines, 'latin1');
      }
      extra = this.forwardedLines;
    }
    if (remove.length === 0 && extra === null) return head.buf.length === head.length ? head.buf : head.buf.subarray(0, head.length);
    return rewriteHead(head.buf, head.length, remove, extra);
  }

  // ---- member side ---------------------------------------------------------------------------------

  /** Picks a server and gets a connection to it, retrying other servers on connect failure. */
  private dispatch(): void {
    const backend = this.backend as Backend;
    const req = this.req as RequestHead;
    const tried = this.tried;
    const selectReq = new HttpSelectRequest(this.sourceAddress, this.client.remotePort ?? 0, req);
    if (tried !== null && this.attempts >= CONNECT_ATTEMPTS) return this.failExchange(503);
    // Prefer a server not tried yet (redispatch); with none left, retry the same one as HAProxy does.
    const server = backend.select(selectReq, tried ?? undefined) ?? (tried !== null ? backend.select(selectReq) : null);
    if (server === null) return this.failExchange(503);
    this.attempts++;
    this.server = server;
    server.counters.activeConnections++;
    server.counters.totalConnections++;
    const privateMode = backend.pool.protocol === 'PROXY' || backend.pool.protocol === 'PROXYV2';
    const pool = this.frontend.context.upstreams;
    const secure = this.secureTarget(backend);
    // A TLS member connection carries the client's server name: it serves clients that sent the same one.
    const tag = secure === null ? '' : (secure.sni ?? '');
    let upstream: Upstream | null = null;
    if (privateMode) {
      if (this.privateUpstream !== null && this.privateUpstream.server === server && this.privateUpstream.usable) upstream = this.privateUpstream;
    } else {
      upstream = pool.acquire(server, tag);
    }
    if (upstream !== null) return this.send(upstream);

    openSocket(server, this.frontend.config.timeouts.memberConnect, (err, socket) => {
      if (this.req !== req || this.state === CLOSED) {
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
      if (privateMode) {
        this.privateUpstream?.socket.destroy();
        this.privateUpstream = fresh;
        const facts = {
          sourceAddress: this.sourceAddress,
          sourcePort: this.client.remotePort ?? 0,
          destinationAddress: plainAddress(this.client.localAddress),
          destinationPort: this.localPort,
        };
        fresh.socket.write(backend.pool.protocol === 'PROXY' ? proxyV1Header(facts) : proxyV2Header(facts, 'stream', this.proxySslTlv()));
      }
      this.send(fresh);
    }, undefined, secure);
  }

  /** `send-proxy-v2-ssl-cn` on TLS listeners: the client's TLS facts in the PROXY v2 header. */
  private proxySslTlv(): Buffer | null {
    const secure = this.secure;
    if (secure === null) return null;
    const cert = secure.clientCert;
    return proxyV2SslTlv({ version: secure.protocol, certificate: cert.used, verify: cert.verify, cn: cert.subjectField('CN') });
  }

  /** How members of `backend` are reached: TLS with the client's server name when the pool re-encrypts. */
  private secureTarget(backend: Backend): SecureTarget | null {
    if (backend.tls === null) return null;
    return { tls: backend.tls, sni: this.secure === null ? null : this.secure.sni, mode: 'http' };
  }

  private send(upstream: Upstream): void {
    this.upstream = upstream;
    upstream.owner = this;
    upstream.uses++;
    upstream.setTimeout(this.frontend.config.timeouts.memberData);
    this.res = null;
    this.resBuffer = null;
    this.resScanFrom = 0;
    this.resStarted = false;
    this.resBytes = 0;
    this.upstreamDirty = false;
    const head = this.sentHead as Buffer;
    const body = this.pendingBody;
    const socket = upstream.socket;
    this.reqBytes = head.length;
    if (body !== null) {
      socket.cork();
      socket.write(head);
      socket.write(body);
      socket.uncork();
      this.reqBytes += body.length;
    } else {
      socket.write(head);
    }
    if (this.state === SEND_BODY) {
      this.pendingBody = null; // streamed from now on: no retry possible
      this.client.resume();
    }
  }

  private forwardBody(chunk: Buffer): void {
    const upstream = this.upstream;
    let end: number;
    if (this.bodyDecoder !== null) {
      try {
        const at = this.bodyDecoder.feed(chunk, 0, chunk.length);
        end = at < 0 ? chunk.length : at;
        if (at >= 0) this.requestDone = true;
      } catch (err) {
        if (!(err instanceof HttpParseError)) throw err;
        // The member already saw part of this body: it must not see a complete message.
        this.releaseUpstream(false);
        if (this.resStarted) return this.destroy();
        return this.refuse(err.status);
      }
    } else {
      end = Math.min(this.bodyRemaining, chunk.length);
      this.bodyRemaining -= end;
      if (this.bodyRemaining === 0) this.requestDone = true;
    }
    if (end < chunk.length) this.buffer = chunk.subarray(end);
    this.reqBytes += end;
    if (upstream === null) {
      // Still connecting: keep the bytes for when the connection is up.
      this.pendingBody = this.pendingBody === null ? chunk.subarray(0, end) : Buffer.concat([this.pendingBody, chunk.subarray(0, end)]);
      this.client.pause();
    } else if (!upstream.socket.write(end === chunk.length ? chunk : chunk.subarray(0, end))) {
      this.pauseUntilDrain(this.client, upstream.socket);
    }
    if (this.requestDone) {
      if (this.res !== null && this.responseComplete) this.finishExchange();
      else this.state = AWAIT_RESPONSE;
    }
  }

  private responseComplete = false;

  onUpstreamData(chunk: Buffer): void {
    this.resBytes += chunk.length;
    if (this.state === TUNNEL) {
      if (!this.client.write(chunk)) this.pauseUntilDrain((this.upstream as Upstream).socket, this.client);
      return;
    }
    if (this.res === null) {
      this.resBuffer = this.resBuffer === null ? chunk : Buffer.concat([this.resBuffer, chunk]);
      this.readResponseHead();
      return;
    }
    this.forwardResponseBody(chunk);
  }

  private readResponseHead(): void {
    while (this.res === null && this.resBuffer !== null) {
      const buf = this.resBuffer;
      const req = this.req as RequestHead;
      let head: ResponseHead;
      let end: number;
      try {
        end = findHeadEnd(buf, this.resScanFrom, buf.length);
        if (end < 0) {
          if (buf.length > MAX_RESPONSE_HEAD) throw new HttpParseError(502, 'response head too large');
          this.resScanFrom = Math.max(0, buf.length - 3);
          return;
        }
        head = parseResponseHead(buf, end, this.backend?.persistence?.type === 'APP_COOKIE', this.frontend.hstsLine !== null);
      } catch (err) {
        if (!(err instanceof HttpParseError)) throw err;
        this.releaseUpstream(false);
        return this.failExchange(502);
      }
      this.resScanFrom = 0;
      const rest = buf.subarray(end);
      if (head.status < 200) {
        if (head.status === 101 && req.isUpgrade) {
          this.res = head;
          this.resStarted = true;
          this.state = TUNNEL;
          this.client.write(buf);
          return;
        }
        // Interim responses (100 Continue) pass through; the final one follows.
        this.client.write(buf.subarray(0, end));
        this.resBuffer = rest.length > 0 ? rest : null;
        continue;
      }
      this.res = head;
      this.resBuffer = null;
      this.startResponse(head, buf, end, rest);
    }
  }

  private startResponse(head: ResponseHead, buf: Buffer, end: number, rest: Buffer): void {
    const req = this.req as RequestHead;
    const backend = this.backend as Backend;
    const server = this.server as Server;
    this.responseComplete = false;
    this.resDecoder = null;
    this.resCloseDelimited = false;
    if (req.method === 'HEAD' || head.status === 204 || head.status === 304) this.resRemaining = 0;
    else if (head.chunked) this.resDecoder = new ChunkedDecoder(502);
    else if (head.contentLength >= 0) this.resRemaining = head.contentLength;
    else this.resCloseDelimited = true;

    if (head.status < 500) backend.succeeded(server);
    const persistence = backend.persistence;
    let cookieLine: string | null = null;
    if (persistence !== null) {
      if (head.setCookies.length > 0) persistence.learnFromResponse(head.setCookies, server);
      cookieLine = persistence.responseCookie(new HttpSelectRequest(this.sourceAddress, 0, req), server);
    }
    const closing = !this.keepClient(head);
    const hsts = this.frontend.hstsLine;
    let out: Buffer;
    if (cookieLine === null && hsts === null && !(closing && !head.connectionClose)) {
      out = end === buf.length ? buf : buf.subarray(0, end);
    } else {
      let extra = cookieLine ?? '';
      const remove = closing ? [...head.connectionLines] : [];
      if (closing) extra += 'Connection: close\r\n';
      let extraBytes = Buffer.from(extra, 'latin1');
      if (hsts !== null) {
        // http-response set-header: the member's own Strict-Transport-Security lines are replaced.
        remove.push(...head.hstsLines);
        extraBytes = Buffer.concat([extraBytes, hsts]);
      }
      out = rewriteHead(buf, end, remove, extraBytes);
    }
    this.resStarted = true;
    if (rest.length === 0) {
      this.client.write(out);
      if (!this.resCloseDelimited && this.resDecoder === null && this.resRemaining === 0) this.onResponseComplete();
      return;
    }
    this.client.cork();
    this.client.write(out);
    this.forwardResponseBody(rest);
    this.client.uncork();
  }

  private keepClient(head: ResponseHead): boolean {
    const req = this.req as RequestHead;
    return (
      req.keepAlive &&
      !this.resCloseDelimited &&
      !this.drainRequested &&
      !this.frontend.isDraining &&
      this.requestDone &&
      head.status !== 101
    );
  }

  private forwardResponseBody(chunk: Buffer): void {
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
        return this.destroy();
      }
    } else if (!this.resCloseDelimited) {
      end = Math.min(this.resRemaining, chunk.length);
      this.resRemaining -= end;
      done = this.resRemaining === 0;
    }
    if (end < chunk.length) this.upstreamDirty = true; // bytes past the response: never reuse
    if (end > 0 && !this.client.write(end === chunk.length ? chunk : chunk.subarray(0, end))) {
      const upstream = this.upstream;
      if (upstream !== null) this.pauseUntilDrain(upstream.socket, this.client);
    }
    if (done) this.onResponseComplete();
  }

  onUpstreamEnd(): void {
    if (this.state === TUNNEL) {
      this.client.end();
      return;
    }
    if (this.res !== null && this.resCloseDelimited) {
      this.onResponseComplete();
      return;
    }
    this.onUpstreamLost();
  }

  onUpstreamClose(): void {
    if (this.upstream === null) return;
    if (this.state === TUNNEL) return this.destroy();
    if (this.res !== null && this.resCloseDelimited && !this.responseComplete) return this.onResponseComplete();
    this.onUpstreamLost();
  }

  /** The member connection went away before the response was complete. */
  private onUpstreamLost(): void {
    const upstream = this.upstream;
    if (upstream === null) return;
    this.releaseUpstream(false);
    if (this.resStarted) return this.destroy();
    // A reused connection the member had closed meanwhile: replay once on a fresh connection.
    if (upstream.uses > 1 && this.resBytes === 0 && !this.retried && this.requestDone && this.pendingBodyIntact()) {
      this.retried = true;
      const server = this.server as Server;
      server.counters.activeConnections--;
      server.counters.totalConnections--;
      this.state = AWAIT_RESPONSE;
      this.dispatchFresh(server);
      return;
    }
    this.backend?.failed(this.server as Server);
    this.failExchange(502);
  }

  private pendingBodyIntact(): boolean {
    const req = this.req as RequestHead;
    return !req.hasBody || this.pendingBody !== null;
  }

  /** Replays the request to the same server over a new connection. */
  private dispatchFresh(server: Server): void {
    const req = this.req;
    server.counters.activeConnections++;
    server.counters.totalConnections++;
    const secure = this.secureTarget(this.backend as Backend);
    const tag = secure === null ? '' : (secure.sni ?? '');
    openSocket(server, this.frontend.config.timeouts.memberConnect, (err, socket) => {
      if (this.req !== req || this.state === CLOSED) {
        socket?.destroy();
        return;
      }
      if (err !== null) {
        server.counters.activeConnections--;
        this.backend?.failed(server);
        return this.failExchange(503);
      }
      this.send(this.frontend.context.upstreams.adopt(socket as net.Socket, server, tag));
    }, undefined, secure);
  }

  onUpstreamTimeout(): void {
    if (this.state === TUNNEL) return this.destroy();
    this.releaseUpstream(false);
    if (this.resStarted) return this.destroy();
    this.failExchange(504);
  }

  private onResponseComplete(): void {
    if (this.responseComplete) return;
    this.responseComplete = true;
    if (!this.requestDone) {
      // The member answered before the request body ended: the connection cannot be resynchronised.
      this.releaseUpstream(false);
      this.state = CLOSING;
      this.closeClient();
      return;
    }
    this.finishExchange();
  }

  private finishExchange(): void {
    const res = this.res as ResponseHead;
    const reusable =
      !this.resCloseDelimited && !this.upstreamDirty && !res.connectionClose && (res.minor === 1 || res.connectionKeepAlive);
    const keep = this.keepClient(res);
    this.releaseUpstream(reusable);
    this.req = null;
    this.res = null;
    this.pendingBody = null;
    if (!keep) {
      this.closeClient();
      return;
    }
    this.state = READ_HEAD;
    if (this.client.isPaused()) this.client.resume();
    if (this.buffer !== null && this.buffer.length > 0) this.readHead();
  }

  /** Ends the member side of the current exchange: back to the pool, or closed. */
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
    if (!reusable) {
      if (upstream === this.privateUpstream) this.privateUpstream = null;
      upstream.socket.destroy();
    } else if (upstream !== this.privateUpstream) {
      this.frontend.context.upstreams.release(upstream);
    }
  }

  /** The exchange failed before any response byte reached the client: answer with an error. */
  private failExchange(status: number): void {
    this.releaseUpstream(false);
    const keep = this.requestDone && this.canContinue();
    this.client.write(errorResponse(status, !keep));
    this.req = null;
    this.pendingBody = null;
    if (!keep) {
      this.closeClient();
      return;
    }
    this.state = READ_HEAD;
    if (this.client.isPaused()) this.client.resume();
    if (this.buffer !== null && this.buffer.length > 0) this.readHead();
  }

  private pauseUntilDrain(source: net.Socket, sink: net.Socket): void {
    if (source.isPaused()) return;
    source.pause();
    sink.once('drain', () => {
      if (this.state !== CLOSED) source.resume();
    });
  }

  // ---- lifecycle -----------------------------------------------------------------------------------

  drain(): void {
    this.drainRequested = true;
    if (this.state === READ_HEAD && (this.buffer === null || this.buffer.length === 0)) this.closeClient();
  }

  destroy(): void {
    if (this.state === CLOSED) return;
    this.state = CLOSED;
    this.clearHeadTimer();
    this.releaseUpstream(false);
    if (this.privateUpstream !== null) {
      this.privateUpstream.socket.destroy();
      this.privateUpstream = null;
    }
    this.client.destroy();
  }
}
