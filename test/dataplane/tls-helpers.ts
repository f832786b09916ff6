import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import tls from 'node:tls';
import type { TlsCertificateInput } from '../../common/amphora-config/index.ts';
import { freePort, type RecordedRequest, type Resources } from './helpers.ts';
import type { Issued } from './tls-certs.ts';

/** An Issued certificate as the AmphoraConfig carries it. */
export function material(issued: Issued, intermediates: Issued[] = [], ref?: string): TlsCertificateInput {
  return { ref: ref ?? null, certificate: issued.cert, privateKey: issued.key, intermediates: intermediates.map((i) => i.cert) };
}

export interface TlsClientOptions {
  servername?: string;
  /** Trust anchors; without them the server certificate is not verified. */
  ca?: string;
  cert?: string;
  key?: string;
  minVersion?: tls.SecureVersion;
  maxVersion?: tls.SecureVersion;
  ciphers?: string;
  ALPNProtocols?: string[];
  /** A session to resume. */
  session?: Buffer;
  /** Source address (any 127.x.y.z). */
  localAddress?: string;
}

function clientTlsOptions(o: TlsClientOptions): tls.ConnectionOptions & { localAddress?: string } {
  const old = o.minVersion === 'TLSv1' || o.minVersion === 'TLSv1.1';
  return {
    servername: o.servername,
    ca: o.ca,
    cert: o.cert,
    key: o.key,
    minVersion: o.minVersion,
    maxVersion: o.maxVersion,
    ciphers: o.ciphers ?? (old ? 'DEFAULT:@SECLEVEL=0' : undefined),
    ALPNProtocols: o.ALPNProtocols,
    session: o.session,
    localAddress: o.localAddress,
    rejectUnauthorized: o.ca !== undefined,
  };
}

export interface HandshakeResult {
  ok: boolean;
  error?: string;
  /** CN of the certificate the server presented. */
  serverCn?: string;
  protocol?: string | null;
  alpn?: string | false | null;
  cipher?: string;
  /** The session resumed the one given. */
  reused?: boolean;
  /** A session to resume next time (a TLS 1.3 ticket arrives just after the handshake). */
  session?: Buffer;
}

/** Completes (or fails) a TLS handshake with 127.0.0.1:port and reports what was negotiated. */
export function handshake(port: number, options: TlsClientOptions = {}): Promise<HandshakeResult> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...clientTlsOptions(options) });
    const timer = setTimeout(() => done({ ok: false, error: 'timeout' }), 5_000);
    let settled = false;
    const done = (r: HandshakeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    let ticket: Buffer | undefined;
    socket.on('session', (session: Buffer) => (ticket = session));
    socket.once('secureConnect', () => {
      const peer = socket.getPeerX509Certificate();
      const result: HandshakeResult = {
        ok: true,
        serverCn: peer === undefined ? undefined : /CN=([^\n]*)/.exec(peer.subject)?.[1],
        protocol: socket.getProtocol(),
        alpn: socket.alpnProtocol,
        cipher: socket.getCipher().name,
        reused: socket.isSessionReused(),
      };
      // The handshake completed; wait a moment for the session ticket (sent after it in TLS 1.3).
      settledOk = result;
      setTimeout(() => done({ ...result, session: ticket }), 50);
    });
    let settledOk: HandshakeResult | null = null;
    socket.once('error', (err: NodeJS.ErrnoException) => done(settledOk ?? { ok: false, error: err.code ?? err.message }));
    socket.once('close', () => done(settledOk ?? { ok: false, error: 'closed' }));
  });
}

export interface HttpsResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  serverCn?: string;
}

export interface HttpsRequestOptions extends TlsClientOptions {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  agent?: https.Agent;
}

/** One HTTPS request to 127.0.0.1:port (a new connection unless an agent is given). Rejects when TLS fails. */
export function httpsRequest(port: number, options: HttpsRequestOptions = {}): Promise<HttpsResult> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        method: options.method ?? 'GET',
        path: options.path ?? '/',
        headers: options.headers,
        agent: options.agent ?? false,
        timeout: 10_000,
        ...clientTlsOptions(options),
      },
      (res) => {
        const chunks: Buffer[] = [];
        const peer = (res.socket as tls.TLSSocket).getPeerX509Certificate?.();
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
            serverCn: peer === undefined ? undefined : /CN=([^\n]*)/.exec(peer.subject)?.[1],
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(options.body);
  });
}

export interface HttpsMember {
  name: string;
  port: number;
  requests: (RecordedRequest & { sni: string | false; alpn: string | false | null; protocol: string | null; clientCn: string | null; tlsSession: number })[];
  /** TLS connections accepted. */
  connections: number;
  handler: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  server: https.Server;
  close(): Promise<void>;
}

export interface HttpsMemberOptions {
  cert: Issued;
  /** Ask for a client certificate, and require one chaining to this CA. */
  clientCa?: string;
  ALPNProtocols?: string[];
  minVersion?: tls.SecureVersion;
  maxVersion?: tls.SecureVersion;
  port?: number;
}

/** An HTTPS member answering its name; records SNI, ALPN, TLS version and client certificate of each request. */
export async function startHttpsMember(resources: Resources, name: string, options: HttpsMemberOptions): Promise<HttpsMember> {
  const port = options.port ?? (await freePort());
  const sessions = new WeakMap<net.Socket, number>();
  const member: HttpsMember = {
    name,
    port,
    requests: [],
    connections: 0,
    handler: (_req, res) => {
      res.setHeader('x-member', name);
      res.end(name);
    },
    server: undefined as unknown as https.Server,
    close: async () => {
      member.server.closeAllConnections();
      await new Promise<void>((resolve) => member.server.close(() => resolve()));
    },
  };
  const server = https.createServer(
    {
      cert: options.cert.cert,
      key: options.cert.key,
      ca: options.clientCa,
      requestCert: options.clientCa !== undefined,
      rejectUnauthorized: options.clientCa !== undefined,
      ALPNProtocols: options.ALPNProtocols,
      minVersion: options.minVersion,
      maxVersion: options.maxVersion,
    },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const socket = req.socket as tls.TLSSocket;
        const peer = socket.getPeerX509Certificate();
        member.requests.push({
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
          remotePort: socket.remotePort ?? 0,
          sni: (socket as unknown as { servername: string | false }).servername,
          alpn: socket.alpnProtocol,
          protocol: socket.getProtocol(),
          clientCn: peer === undefined ? null : (/CN=([^\n]*)/.exec(peer.subject)?.[1] ?? null),
          tlsSession: sessions.get(socket) ?? 0,
        });
        member.handler(req, res);
      });
    },
  );
  server.keepAliveTimeout = 30_000;
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    member.connections++;
    sessions.set(socket, member.connections);
  });
  server.on('tlsClientError', () => {});
  member.server = server;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  resources.add(() => member.close());
  return member;
}

/** SHA-1 fingerprint, upper-case hex without colons (HAProxy ssl_c_sha1,hex). */
export function sha1Hex(pem: string): string {
  return new X509Certificate(pem).fingerprint.replaceAll(':', '');
}
