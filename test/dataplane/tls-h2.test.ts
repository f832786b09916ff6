import http2 from 'node:http2';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ListenerInput, PoolInput } from '../../common/amphora-config/index.ts';
import type { LocalDataPlane } from '../../amphora/dataplane/dataplane.ts';
import { config, freePort, pool, Resources, startDataPlane, startHttpMember, uid, type HttpMember } from './helpers.ts';
import { TestPki, type CertificateAuthority, type Issued } from './tls-certs.ts';
import { handshake, material } from './tls-helpers.ts';

const r = new Resources();
let pki: TestPki;
let ca: CertificateAuthority;
let serverCert: Issued;
let alice: Issued;
let m1: HttpMember;
let m2: HttpMember;
let port: number;
let dp: LocalDataPlane;
let version = 1;

async function apply(extra: Partial<ListenerInput> = {}, poolExtra: Partial<PoolInput> = {}): Promise<void> {
  version++;
  await dp.apply(
    config(
      [
        {
          id: uid(1),
          protocol: 'TERMINATED_HTTPS',
          ports: [port],
          defaultPoolId: uid(2),
          tls: { defaultCertificate: material(serverCert), clientAuthentication: 'OPTIONAL', clientCa: ca.cert },
          ...extra,
        },
      ],
      [pool(2, 'HTTP', [{ id: 10, port: m1.port }, { id: 11, port: m2.port }], poolExtra), pool(3, 'HTTP', [{ id: 12, port: m2.port }])],
      version,
    ),
  );
}

interface H2Result {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
}

/** A client session over TLS with ALPN h2 (and a client certificate when given). */
function connect(client?: Issued): http2.ClientHttp2Session {
  const session = http2.connect(`https://127.0.0.1:${port}`, {
    ca: ca.cert,
    servername: 'lb.example.com',
    cert: client?.cert,
    key: client?.key,
  });
  session.on('error', () => {});
  return session;
}

function h2request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string | Buffer | (string | Buffer)[]): Promise<H2Result> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let responseHeaders: http2.IncomingHttpHeaders = {};
    stream.on('response', (h) => (responseHeaders = h));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status: Number(responseHeaders[':status']), headers: responseHeaders, body: Buffer.concat(chunks).toString() }));
    stream.on('error', reject);
    if (body !== undefined) {
      const parts = Array.isArray(body) ? body : [body];
      for (const part of parts) stream.write(part);
      stream.end();
    }
  });
}

beforeAll(async () => {
  pki = await TestPki.create();
  r.add(() => pki.cleanup());
  ca = await pki.rootCa('h2-ca');
  serverCert = await pki.issue(ca, { subject: '/CN=lb.example.com', san: ['DNS:lb.example.com'] });
  alice = await pki.issue(ca, { subject: '/O=Example/OU=admins/CN=alice', usage: 'client' });
  m1 = await startHttpMember(r, 'm1');
  m2 = await startHttpMember(r, 'm2');
  port = await freePort();
  dp = await startDataPlane(r, config([], []));
  await apply();
});
afterAll(() => r.cleanup());
beforeEach(() => {
  for (const m of [m1, m2]) {
    m.handler = (_req, res) => {
      res.setHeader('x-member', m.name);
      res.end(m.name);
    };
  }
});

describe('HTTP/2 to clients on TERMINATED_HTTPS', () => {
  it('negotiates h2 when the client offers it, and http/1.1 otherwise', async () => {
    expect((await handshake(port, { ALPNProtocols: ['h2', 'http/1.1'] })).alpn).toBe('h2');
    expect((await handshake(port, { ALPNProtocols: ['http/1.1'] })).alpn).toBe('http/1.1');
    await apply({ tls: { defaultCertificate: material(serverCert), alpnProtocols: ['http/1.1', 'h2'] } });
    expect((await handshake(port, { ALPNProtocols: ['h2', 'http/1.1'] })).alpn).toBe('http/1.1'); // the listener's order wins
    await apply({ tls: { defaultCertificate: material(serverCert), alpnProtocols: ['http/1.1'] } });
    expect((await handshake(port, { ALPNProtocols: ['h2', 'http/1.1'] })).alpn).toBe('http/1.1');
  });

  it('multiplexes streams of one connection over HTTP/1.1 member connections, balanced and with inserted headers', async () => {
    await apply({ insertHeaders: { 'X-Forwarded-Proto': true, 'X-Forwarded-For': true, 'X-SSL-Client-CN': true, 'X-SSL-Client-Has-Cert': true } });
    const session = connect(alice);
    r.add(() => session.close());
    const before = m1.requests.length + m2.requests.length;
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => h2request(session, { ':path': `/multi/${i}?q=${i}`, 'x-custom': `v${i}`, 'x-ssl-client-cn': 'forged', cookie: 'a=1' })),
    );
    expect(results.map((x) => x.status)).toEqual(new Array(10).fill(200));
    expect(new Set(results.map((x) => x.body))).toEqual(new Set(['m1', 'm2']));
    const seen = [...m1.requests, ...m2.requests].slice(before);
    expect(seen).toHaveLength(10);
    for (const q of seen) {
      expect(q.url).toMatch(/^\/multi\/\d\?q=\d$/);
      expect(q.headers.host).toBe(`lb.example.com:${port}`); // :authority
      expect(q.headers['x-custom']).toMatch(/^v\d$/);
      expect(q.headers['x-forwarded-proto']).toBe('https');
      expect(q.headers['x-forwarded-for']).toBe('127.0.0.1');
      expect(q.headers['x-ssl-client-cn']).toBe('"alice"');
      expect(q.headers['x-ssl-client-has-cert']).toBe('1');
      expect(q.headers.cookie).toBe('a=1');
    }
    expect(results[0].headers['x-member']).toMatch(/^m[12]$/);
  });

  it('carries request bodies (with and without content-length) and large chunked responses', async () => {
    await apply();
    m1.handler = m2.handler = (req, res, body) => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' }); // chunked
        for (let i = 0; i < 64; i++) res.write(Buffer.alloc(16_384, 0x61 + (i % 26)));
        res.end();
        return;
      }
      res.end(JSON.stringify({ method: req.method, length: body.length, te: req.headers['transfer-encoding'] ?? null, cl: req.headers['content-length'] ?? null }));
    };
    const session = connect();
    r.add(() => session.close());
    const sized = await h2request(session, { ':method': 'POST', ':path': '/upload', 'content-length': '5000' }, 'x'.repeat(5000));
    expect(JSON.parse(sized.body)).toEqual({ method: 'POST', length: 5000, te: null, cl: '5000' });
    const streamed = await h2request(session, { ':method': 'PUT', ':path': '/upload' }, ['a'.repeat(70_000), 'b'.repeat(70_000)]);
    expect(JSON.parse(streamed.body)).toEqual({ method: 'PUT', length: 140_000, te: 'chunked', cl: null });
    const empty = await h2request(session, { ':method': 'POST', ':path': '/upload' });
    expect(JSON.parse(empty.body)).toMatchObject({ length: 0, cl: '0' });
    const big = await h2request(session, { ':path': '/big' });
    expect(big.status).toBe(200);
    expect(big.body.length).toBe(64 * 16_384);
    expect(big.headers['transfer-encoding']).toBeUndefined();
    const head = await h2request(session, { ':method': 'HEAD', ':path': '/x' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('applies L7 policies (including SSL_* rules), local answers, HSTS and cookie persistence', async () => {
    await apply(
      {
        hsts: { maxAge: 600 },
        l7policies: [
          { id: uid(20), position: 1, action: 'REJECT', rules: [{ id: uid(21), type: 'PATH', compareType: 'STARTS_WITH', value: '/forbidden' }] },
          { id: uid(22), position: 2, action: 'REDIRECT_TO_PREFIX', redirectPrefix: 'https://elsewhere.example', redirectHttpCode: 308, rules: [{ id: uid(23), type: 'PATH', compareType: 'STARTS_WITH', value: '/moved' }] },
          { id: uid(24), position: 3, action: 'REDIRECT_TO_POOL', redirectPoolId: uid(3), rules: [{ id: uid(25), type: 'SSL_DN_FIELD', key: 'OU', compareType: 'EQUAL_TO', value: 'admins' }] },
        ],
      },
      { sessionPersistence: { type: 'HTTP_COOKIE', cookieName: 'SRV' } },
    );
    const anonymous = connect();
    const admin = connect(alice);
    r.add(() => anonymous.close());
    r.add(() => admin.close());
    expect((await h2request(anonymous, { ':path': '/forbidden/x' })).status).toBe(403);
    const moved = await h2request(anonymous, { ':path': '/moved/page?a=1' });
    expect(moved.status).toBe(308);
    expect(moved.headers.location).toBe('https://elsewhere.example/moved/page?a=1');
    for (let i = 0; i < 3; i++) expect((await h2request(admin, { ':path': '/admin' })).body).toBe('m2'); // pool 3: m2 only
    const first = await h2request(anonymous, { ':path': '/sticky' });
    expect(first.headers['strict-transport-security']).toBe('max-age=600');
    const cookie = (first.headers['set-cookie'] as string[]).find((c) => c.startsWith('SRV='));
    expect(cookie).toBeDefined();
    const member = first.body;
    for (let i = 0; i < 4; i++) {
      const again = await h2request(anonymous, { ':path': '/sticky', cookie: (cookie as string).split(';')[0] });
      expect(again.body).toBe(member);
      expect(again.headers['set-cookie']).toBeUndefined();
    }
  });

  it('answers 503 when no member can be reached and 504 when the member is too slow', async () => {
    await apply({ timeouts: { memberData: 300 } }, {});
    const session = connect();
    r.add(() => session.close());
    const slowName = 'slow';
    m1.handler = m2.handler = (req, res) => {
      if (req.url === '/slow') setTimeout(() => res.end(slowName), 1_000);
      else res.end('ok');
    };
    expect((await h2request(session, { ':path': '/slow' })).status).toBe(504);
    version++;
    const deadPort = await freePort();
    await dp.apply(
      config(
        [{ id: uid(1), protocol: 'TERMINATED_HTTPS', ports: [port], defaultPoolId: uid(2), tls: { defaultCertificate: material(serverCert) } }],
        [pool(2, 'HTTP', [{ id: 10, port: deadPort }])],
        version,
      ),
    );
    const res = await h2request(session, { ':path': '/' });
    expect(res.status).toBe(503);
    expect(res.body).toContain('503 Service Unavailable');
  });
});

describe('HTTP/2 drain', () => {
  it('a stopping data plane lets streams in progress finish, then closes the connection (GOAWAY)', async () => {
    const own = new Resources();
    try {
      const slow = await startHttpMember(own, 'slow');
      slow.handler = (_req, res) => setTimeout(() => res.end('finished'), 400);
      const drainPort = await freePort();
      const { LocalDataPlane } = await import('../../amphora/dataplane/dataplane.ts');
      const { createLogger } = await import('../../amphora/dataplane/log.ts');
      const plane = new LocalDataPlane({ log: createLogger('silent') });
      await plane.apply(
        config(
          [{ id: uid(1), protocol: 'TERMINATED_HTTPS', ports: [drainPort], defaultPoolId: uid(2), tls: { defaultCertificate: material(serverCert) } }],
          [pool(2, 'HTTP', [{ id: 10, port: slow.port }])],
        ),
      );
      const session = http2.connect(`https://127.0.0.1:${drainPort}`, { ca: ca.cert, servername: 'lb.example.com' });
      session.on('error', () => {});
      let goaway = false;
      session.on('goaway', () => (goaway = true));
      const closed = new Promise<void>((resolve) => session.on('close', () => resolve()));
      const pending = h2request(session, { ':path': '/slow' });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const stopping = plane.stop(3_000);
      const res = await pending;
      expect(res).toMatchObject({ status: 200, body: 'finished' });
      await stopping;
      await closed;
      expect(goaway).toBe(true);
    } finally {
      await own.cleanup();
    }
  });
});
