import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ListenerInput, ListenerTlsInput } from '../../common/amphora-config/index.ts';
import type { LocalDataPlane } from '../../amphora/dataplane/dataplane.ts';
import { config, eventually, freePort, pool, rawExchange, Resources, startDataPlane, startHttpMember, uid, type HttpMember } from './helpers.ts';
import { TestPki, type CertificateAuthority, type Issued } from './tls-certs.ts';
import { handshake, httpsRequest, material } from './tls-helpers.ts';

const r = new Resources();
let pki: TestPki;
let root: CertificateAuthority;
let inter: CertificateAuthority;
let defaultCert: Issued;
let wwwCert: Issued;
let wildCert: Issued;
let member: HttpMember;
let port: number;
let dp: LocalDataPlane;
let version = 1;

const listener = (tls: ListenerTlsInput, extra: Partial<ListenerInput> = {}): ListenerInput => ({
  id: uid(1),
  protocol: 'TERMINATED_HTTPS',
  ports: [port],
  defaultPoolId: uid(2),
  tls,
  ...extra,
});

async function apply(tls: ListenerTlsInput, extra: Partial<ListenerInput> = {}): Promise<void> {
  version++;
  await dp.apply(config([listener(tls, extra)], [pool(2, 'HTTP', [{ id: 10, port: member.port }])], version));
}

const baseTls = (): ListenerTlsInput => ({
  defaultCertificate: material(defaultCert, [inter]),
  sniCertificates: [material(wwwCert, [inter]), material(wildCert, [inter])],
});

beforeAll(async () => {
  pki = await TestPki.create();
  r.add(() => pki.cleanup());
  root = await pki.rootCa('root');
  inter = await pki.intermediateCa(root, 'intermediate');
  defaultCert = await pki.issue(inter, { subject: '/CN=default.example.com', san: ['DNS:default.example.com'] });
  wwwCert = await pki.issue(inter, { subject: '/CN=www.example.com', san: ['DNS:www.example.com', 'DNS:shop.example.com'] });
  wildCert = await pki.issue(inter, { subject: '/CN=wildcard', san: ['DNS:*.wild.example.com'] });
  member = await startHttpMember(r, 'm1');
  member.handler = (req, res) => {
    res.setHeader('strict-transport-security', 'max-age=1');
    res.end(JSON.stringify({ proto: req.headers['x-forwarded-proto'] ?? null, port: req.headers['x-forwarded-port'] ?? null }));
  };
  port = await freePort();
  dp = await startDataPlane(r, config([listener(baseTls())], [pool(2, 'HTTP', [{ id: 10, port: member.port }])]));
});
afterAll(() => r.cleanup());

describe('TERMINATED_HTTPS: certificates', () => {
  it('SNI picks the certificate by exact name, SAN or wildcard, and the default otherwise', async () => {
    await apply(baseTls());
    const cn = async (servername?: string) => (await handshake(port, { servername })).serverCn;
    expect(await cn('www.example.com')).toBe('www.example.com');
    expect(await cn('SHOP.example.com')).toBe('www.example.com'); // second SAN, case-insensitive
    expect(await cn('foo.wild.example.com')).toBe('wildcard');
    expect(await cn('a.b.wild.example.com')).toBe('default.example.com'); // a wildcard covers one label
    expect(await cn('wild.example.com')).toBe('default.example.com');
    expect(await cn('unknown.example.org')).toBe('default.example.com');
    expect(await cn(undefined)).toBe('default.example.com');
  });

  it('sends the intermediates: a client trusting only the root verifies every certificate for its name', async () => {
    for (const servername of ['www.example.com', 'x.wild.example.com', 'default.example.com']) {
      const res = await httpsRequest(port, { servername, ca: root.cert, path: '/' });
      expect(res.status).toBe(200);
    }
  });

  it('without a default certificate, the first SNI certificate is the default', async () => {
    await apply({ sniCertificates: [material(wildCert, [inter]), material(wwwCert, [inter])] });
    expect((await handshake(port, {})).serverCn).toBe('wildcard');
    expect((await handshake(port, { servername: 'www.example.com' })).serverCn).toBe('www.example.com');
  });
});

describe('TERMINATED_HTTPS: sessions', () => {
  it('resumes sessions, but not across a change of the TLS settings', async () => {
    await apply(baseTls());
    const first = await handshake(port, { servername: 'www.example.com' });
    expect(first.session).toBeDefined();
    const again = await handshake(port, { servername: 'www.example.com', session: first.session });
    expect(again.reused).toBe(true);
    await apply({ ...baseTls(), clientAuthentication: 'OPTIONAL', clientCa: root.cert });
    const after = await handshake(port, { servername: 'www.example.com', session: again.session });
    expect(after).toMatchObject({ ok: true, reused: false });
  });
});

describe('TERMINATED_HTTPS: ticket renewal', () => {
  // A client that keeps one ticket per connection (wrk, curl) resumes every time only if each
  // resumption brings a new ticket (TLS 1.3 tickets are not reused by OpenSSL clients).
  for (const servername of ['default.example.com', 'www.example.com']) {
    it(`a resumed TLS 1.3 session brings a new ticket that resumes again (${servername === 'www.example.com' ? 'SNI certificate' : 'default certificate'})`, async () => {
      await apply(baseTls());
      let last = await handshake(port, { servername });
      expect(last).toMatchObject({ ok: true, protocol: 'TLSv1.3', reused: false });
      for (let i = 0; i < 3; i++) {
        const next = await handshake(port, { servername, session: last.session });
        expect(next).toMatchObject({ ok: true, reused: true });
        expect(next.session).toBeDefined();
        expect(next.session!.equals(last.session!)).toBe(false);
        last = next;
      }
    });
  }
});

describe('TERMINATED_HTTPS: protocol settings', () => {
  it('tls_versions: TLSv1.2+ refuses a TLS 1.0/1.1-only client and serves 1.2 and 1.3', async () => {
    await apply({ ...baseTls(), versions: ['TLSv1.2', 'TLSv1.3'] });
    expect((await handshake(port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' })).ok).toBe(false);
    expect((await handshake(port, { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1' })).ok).toBe(false);
    expect((await handshake(port, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' })).protocol).toBe('TLSv1.2');
    expect((await handshake(port, {})).protocol).toBe('TLSv1.3');
  });

  it('tls_versions: a single version, and a list with a gap refuses the missing version', async () => {
    await apply({ ...baseTls(), versions: ['TLSv1.2'] });
    expect((await handshake(port, { minVersion: 'TLSv1.3' })).ok).toBe(false);
    expect((await handshake(port, {})).protocol).toBe('TLSv1.2');

    await apply({ ...baseTls(), versions: ['TLSv1', 'TLSv1.2'] });
    expect((await handshake(port, { minVersion: 'TLSv1', maxVersion: 'TLSv1' })).protocol).toBe('TLSv1');
    expect((await handshake(port, { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1' })).ok).toBe(false);
    expect((await handshake(port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.3' })).protocol).toBe('TLSv1.2');
    expect((await handshake(port, { minVersion: 'TLSv1.3' })).ok).toBe(false);

    // SSLv3 may be listed (Octavia accepts it) but is never spoken.
    await apply({ ...baseTls(), versions: ['SSLv3', 'TLSv1.3'] });
    expect((await handshake(port, {})).protocol).toBe('TLSv1.3');
  });

  it('tls_ciphers restrict TLS 1.2 ciphers, and TLS 1.3 suites when the string names some', async () => {
    await apply({ ...baseTls(), versions: ['TLSv1.2'], ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    expect((await handshake(port, { ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' })).ok).toBe(false);
    expect((await handshake(port, { ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256' })).cipher).toBe('ECDHE-ECDSA-AES128-GCM-SHA256');

    await apply({ ...baseTls(), ciphers: 'TLS_AES_128_GCM_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256' });
    expect((await handshake(port, { minVersion: 'TLSv1.3', ciphers: 'TLS_AES_256_GCM_SHA384' })).ok).toBe(false);
    expect((await handshake(port, { minVersion: 'TLSv1.3', ciphers: 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256' })).cipher).toBe('TLS_AES_128_GCM_SHA256');

    // A string without TLS 1.3 suites leaves TLS 1.3 its defaults (HAProxy's `ciphers` is the <= 1.2 list).
    await apply({ ...baseTls(), ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    expect((await handshake(port, {})).protocol).toBe('TLSv1.3');
  });

  it('ALPN: the listed protocols in their order (h2 served by the HTTP/2 front end); none listed, no ALPN', async () => {
    await apply({ ...baseTls(), alpnProtocols: ['h2', 'http/1.1', 'http/1.0'] });
    expect((await handshake(port, { ALPNProtocols: ['h2', 'http/1.1'] })).alpn).toBe('h2');
    expect((await handshake(port, { ALPNProtocols: ['http/1.1'] })).alpn).toBe('http/1.1');
    expect((await handshake(port, { ALPNProtocols: ['http/1.0'] })).alpn).toBe('http/1.0');
    expect((await handshake(port, { ALPNProtocols: ['spdy/3'] })).ok).toBe(false); // no overlap: Node refuses
    expect((await handshake(port, {})).alpn).toBe(false);
    await apply({ ...baseTls(), alpnProtocols: ['http/1.1'] });
    expect((await handshake(port, { ALPNProtocols: ['h2', 'http/1.1'] })).alpn).toBe('http/1.1');
    expect((await handshake(port, { ALPNProtocols: ['h2'] })).ok).toBe(false);
    await apply({ ...baseTls(), alpnProtocols: [] });
    expect((await handshake(port, { ALPNProtocols: ['h2', 'http/1.1'] })).alpn).toBe(false);
  });
});

describe('TERMINATED_HTTPS: HTTP over TLS', () => {
  it('proxies requests with X-Forwarded-Proto https, keeps the connection alive, and sets HSTS', async () => {
    await apply(baseTls(), { insertHeaders: { 'X-Forwarded-Proto': true, 'X-Forwarded-Port': true }, hsts: { maxAge: 31536000, includeSubdomains: true, preload: true } });
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
    const before = member.requests.length;
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await httpsRequest(port, { agent, path: `/k${i}`, headers: { 'x-forwarded-proto': 'http' } }));
    for (const res of results) {
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ proto: 'https', port: String(port) });
      expect(res.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains; preload');
    }
    expect(member.requests.length - before).toBe(3);
    agent.destroy();
    const post = await httpsRequest(port, { method: 'POST', path: '/upload', body: 'x'.repeat(100_000), headers: { 'content-type': 'text/plain' } });
    expect(post.status).toBe(200);
    expect(member.requests[member.requests.length - 1].body.length).toBe(100_000);
  });

  it('counts decrypted bytes for the listener and refuses plain HTTP on the TLS port', async () => {
    await apply(baseTls());
    const snap0 = (await dp.snapshot()).listeners[uid(1)].traffic;
    await httpsRequest(port, { path: '/count' });
    const snap1 = (await dp.snapshot()).listeners[uid(1)].traffic;
    expect(snap1.totalConnections - snap0.totalConnections).toBe(1);
    expect(snap1.bytesIn - snap0.bytesIn).toBeGreaterThan(30);
    const plain = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', 2_000);
    expect(plain.closed).toBe(true);
    expect(plain.text).not.toContain('HTTP/1.1 200');
  });
});

describe('TERMINATED_HTTPS: admission', () => {
  it('a connection over the limit waits its turn, then completes its handshake', async () => {
    await apply(baseTls(), { connectionLimit: 1 });
    await eventually(async () => (await dp.snapshot()).listeners[uid(1)].traffic.activeConnections === 0);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
    const first = await httpsRequest(port, { agent, path: '/first' });
    expect(first.status).toBe(200);
    let secondDone = false;
    const second = httpsRequest(port, { path: '/second' }).then((res) => {
      secondDone = true;
      return res;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(secondDone).toBe(false); // queued behind the kept-alive first connection
    agent.destroy();
    expect((await second).status).toBe(200);
  });
});

describe('PROMETHEUS listener with a certificate', () => {
  it('serves the metrics over TLS', async () => {
    const metricsPort = await freePort();
    version++;
    await dp.apply(
      config(
        [listener(baseTls()), { id: uid(7), protocol: 'PROMETHEUS', ports: [metricsPort], tls: { defaultCertificate: material(defaultCert, [inter]) } }],
        [pool(2, 'HTTP', [{ id: 10, port: member.port }])],
        version,
      ),
    );
    const res = await httpsRequest(metricsPort, { path: '/metrics', ca: root.cert, servername: 'default.example.com' });
    expect(res.status).toBe(200);
    expect(res.body).toContain('octavia_');
    expect(res.serverCn).toBe('default.example.com');
    expect((await rawExchange(metricsPort, 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n', 1_000)).text).not.toContain('200 OK');
  });
});

describe('HTTPS listener (TLS pass-through)', () => {
  it('stays L4: members present their own certificates, SOURCE_IP persistence and TLS-HELLO health apply', async () => {
    const tls = await import('node:tls');
    const certA = await pki.issue(inter, { subject: '/CN=member-a' });
    const certB = await pki.issue(inter, { subject: '/CN=member-b' });
    const ports: number[] = [];
    const servers: import('node:tls').Server[] = [];
    for (const cert of [certA, certB]) {
      const p = await freePort();
      const server = tls.createServer({ cert: cert.cert, key: cert.key }, (s) => {
        s.on('error', () => {});
        s.end();
      });
      server.on('tlsClientError', () => {});
      await new Promise<void>((resolve) => server.listen(p, '127.0.0.1', () => resolve()));
      ports.push(p);
      servers.push(server);
    }
    r.add(() => Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))));
    const passPort = await freePort();
    version++;
    await dp.apply(
      config(
        [{ id: uid(8), protocol: 'HTTPS', ports: [passPort], defaultPoolId: uid(9) }],
        [
          pool(9, 'HTTPS', [{ id: 20, port: ports[0] }, { id: 21, port: ports[1] }], {
            sessionPersistence: { type: 'SOURCE_IP' },
            // member-a must stay UP throughout: one slow check (a stalled event loop) does not take it down.
            healthMonitor: { id: uid(22), type: 'TLS-HELLO', delay: 250, timeout: 250, maxRetries: 1, maxRetriesDown: 3 },
          }),
        ],
        version,
      ),
    );
    const seen = new Set<string>();
    for (const localAddress of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7']) {
      const names = new Set<string | undefined>();
      for (let i = 0; i < 3; i++) names.add((await handshake(passPort, { localAddress })).serverCn);
      expect(names.size).toBe(1); // persistence: one member per source address
      seen.add([...names][0] as string);
    }
    expect([...seen].sort()).toEqual(['member-a', 'member-b']);
    // member-b stops: TLS-HELLO takes it down, everyone goes to member-a.
    await new Promise<void>((resolve) => servers[1].close(() => resolve()));
    await eventually(async () => (await dp.snapshot()).pools[uid(9)].members[uid(21)].status === 'DOWN', 5_000);
    for (const localAddress of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) {
      expect((await handshake(passPort, { localAddress })).serverCn).toBe('member-a');
    }
  });
});
