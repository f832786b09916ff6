import net from 'node:net';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { HealthMonitorInput } from '../../common/amphora-config/index.ts';
import type { LocalDataPlane } from '../../amphora/dataplane/dataplane.ts';
import { config, eventually, freePort, httpListener, pool, Resources, startDataPlane, startHttpMember, uid } from './helpers.ts';
import { TestPki, type CertificateAuthority, type Issued } from './tls-certs.ts';
import { material, startHttpsMember } from './tls-helpers.ts';

const shared = new Resources();
const r = new Resources();
let pki: TestPki;
let ca: CertificateAuthority;
let memberCert: Issued;
let lbClient: Issued;

beforeAll(async () => {
  pki = await TestPki.create();
  shared.add(() => pki.cleanup());
  ca = await pki.rootCa('health-ca');
  memberCert = await pki.issue(ca, { subject: '/CN=member' });
  lbClient = await pki.issue(ca, { subject: '/CN=lb', usage: 'client' });
});
afterEach(() => r.cleanup());
afterAll(() => shared.cleanup());

// A healthy member is asserted UP at single instants: it takes a check slower than 250 ms (a stalled
// event loop) to fail and three failures in a row to go DOWN. The failures these tests cause
// (refused, not TLS, a 503) are immediate: DOWN within about three delays.
const monitor = (extra: Partial<HealthMonitorInput>): HealthMonitorInput => ({ id: uid(99), type: 'HTTPS', delay: 250, timeout: 250, maxRetries: 1, maxRetriesDown: 3, ...extra });
const tcpListener = (port: number) => ({ id: uid(1), protocol: 'TCP' as const, ports: [port], defaultPoolId: uid(2) });
const statusOf = async (dp: LocalDataPlane, member: number) => (await dp.snapshot()).pools[uid(2)].members[uid(member)].status;

/** A TLS server on `port` that completes handshakes; close() frees the port. */
async function tlsServer(port: number, options: tls.TlsOptions = {}): Promise<{ handshakes: number; connections: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const state = { handshakes: 0, connections: 0, close: async () => {} };
  const server = tls.createServer({ cert: memberCert.cert, key: memberCert.key, ...options }, (s) => {
    state.handshakes++;
    s.on('error', () => {});
    s.end();
  });
  server.on('connection', (s) => {
    state.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  state.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  r.add(() => state.close());
  return state;
}

/** A plain TCP server that answers like an HTTP server, not TLS. */
async function plainServer(port: number): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.on('data', () => s.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  const close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  r.add(close);
  return { close };
}

describe('TLS health monitors', () => {
  it('TLS-HELLO: a member answering as a TLS server is up; plain TCP or a closed port is down', async () => {
    const port = await freePort();
    const memberPort = await freePort();
    let server = await tlsServer(memberPort);
    const dp = await startDataPlane(r, config([tcpListener(port)], [pool(2, 'TCP', [{ id: 10, port: memberPort }], { healthMonitor: monitor({ type: 'TLS-HELLO' }) })]));
    await eventually(() => server.handshakes >= 2);
    expect(await statusOf(dp, 10)).toBe('UP');

    await server.close();
    const plain = await plainServer(memberPort);
    await eventually(async () => (await statusOf(dp, 10)) === 'DOWN', 5_000);
    await plain.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await statusOf(dp, 10)).toBe('DOWN'); // closed port

    server = await tlsServer(memberPort);
    await eventually(async () => (await statusOf(dp, 10)) === 'UP', 5_000);

    // A TLS server refusing the hello with an alert still speaks TLS: up, as HAProxy's ssl-hello-chk.
    await server.close();
    const alerting = await tlsServer(memberPort, { minVersion: 'TLSv1.3', ciphers: 'TLS_CHACHA20_POLY1305_SHA256' });
    version++;
    await dp.apply(
      config(
        [tcpListener(port)],
        [pool(2, 'TCP', [{ id: 10, port: memberPort }], { healthMonitor: monitor({ type: 'TLS-HELLO' }), tls: { versions: ['TLSv1.2'] } })],
        version,
      ),
    );
    // Two checks of the new monitor (the pool's TLS changed: a new checker, which starts UP), and one
    // more: a check of the old one may still have been on its way.
    const checked = alerting.connections;
    await eventually(() => alerting.connections >= checked + 3, 5_000);
    expect(await statusOf(dp, 10)).toBe('UP');
  });

  it('HTTPS: an HTTP check over TLS, unverified, with expected codes; a plain HTTP member is down', async () => {
    const port = await freePort();
    const secure = await startHttpsMember(r, 'secure', { cert: memberCert });
    let code = 200;
    secure.handler = (req, res) => res.writeHead(req.url === '/health' ? code : 200).end('ok');
    const plain = await startHttpMember(r, 'plain');
    const dp = await startDataPlane(
      r,
      config(
        [httpListener(1, port, 2)],
        [pool(2, 'HTTP', [{ id: 10, port: secure.port }, { id: 11, port: plain.port }], { healthMonitor: monitor({ urlPath: '/health', httpVersion: '1.1', domainName: 'health.example' }) })],
      ),
    );
    await eventually(() => secure.requests.some((q) => q.url === '/health'));
    const check = secure.requests.find((q) => q.url === '/health');
    expect(check?.headers.host).toBe('health.example');
    expect(check?.sni).toBe(false); // no check-sni
    await eventually(async () => (await statusOf(dp, 11)) === 'DOWN', 5_000);
    expect(await statusOf(dp, 10)).toBe('UP');

    code = 503;
    await eventually(async () => (await statusOf(dp, 10)) === 'DOWN', 5_000);
    code = 200;
    await eventually(async () => (await statusOf(dp, 10)) === 'UP', 5_000);
  });

  it('HTTPS checks of a re-encrypting pool present its client certificate and offer its ALPN without h2', async () => {
    const port = await freePort();
    const strict = await startHttpsMember(r, 'strict', { cert: memberCert, clientCa: ca.cert, ALPNProtocols: ['h2', 'http/1.1'] });
    const dp = await startDataPlane(
      r,
      config(
        [httpListener(1, port, 2)],
        [pool(2, 'HTTP', [{ id: 10, port: strict.port }], { healthMonitor: monitor({ urlPath: '/health' }), tls: { clientCertificate: material(lbClient) } })],
      ),
    );
    await eventually(() => strict.requests.filter((q) => q.url === '/health').length >= 2);
    expect(strict.requests[0]).toMatchObject({ clientCn: 'lb', alpn: 'http/1.1' });
    expect(await statusOf(dp, 10)).toBe('UP');
  });
});

let version = 1;
