import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PoolTlsInput } from '../../common/amphora-config/index.ts';
import type { LocalDataPlane } from '../../amphora/dataplane/dataplane.ts';
import { config, freePort, httpListener, pool, request, Resources, startDataPlane, tcpGreeting, uid } from './helpers.ts';
import { TestPki, type CertificateAuthority, type Issued } from './tls-certs.ts';
import { httpsRequest, material, startHttpsMember, type HttpsMember } from './tls-helpers.ts';

const r = new Resources();
let pki: TestPki;
let memberCa: CertificateAuthority;
let otherCa: CertificateAuthority;
let clientCa: CertificateAuthority;
let good: Issued;
let foreign: Issued;
let revokedCert: Issued;
let lbClient: Issued;
let frontCert: Issued;
let crl: string;
let port: number;
let dp: LocalDataPlane;
let version = 1;

beforeAll(async () => {
  pki = await TestPki.create();
  r.add(() => pki.cleanup());
  memberCa = await pki.rootCa('member-ca');
  otherCa = await pki.rootCa('other-ca');
  clientCa = await pki.rootCa('lb-client-ca');
  good = await pki.issue(memberCa, { subject: '/CN=member.internal', san: ['DNS:member.internal', 'DNS:www.example.com', 'IP:127.0.0.1'] });
  foreign = await pki.issue(otherCa, { subject: '/CN=member.internal', san: ['DNS:member.internal', 'IP:127.0.0.1'] });
  revokedCert = await pki.issue(memberCa, { subject: '/CN=revoked.internal', san: ['DNS:www.example.com'] });
  await pki.revoke(memberCa, revokedCert);
  crl = await pki.crl(memberCa);
  lbClient = await pki.issue(clientCa, { subject: '/CN=argonaut-lb', usage: 'client' });
  frontCert = await pki.issue(memberCa, { subject: '/CN=www.example.com', san: ['DNS:www.example.com', 'DNS:other.example.com'] });
  port = await freePort();
  dp = await startDataPlane(r, config([], []));
});
afterAll(() => r.cleanup());

async function applyHttp(member: HttpsMember, tls: PoolTlsInput | null, protocol: 'HTTP' | 'TERMINATED_HTTPS' = 'HTTP'): Promise<void> {
  version++;
  const listener =
    protocol === 'HTTP'
      ? httpListener(1, port, 2)
      : { id: uid(1), protocol, ports: [port], defaultPoolId: uid(2), tls: { defaultCertificate: material(frontCert) } };
  await dp.apply(config([listener], [pool(2, 'HTTP', [{ id: 10, port: member.port }], { tls })], version));
}

describe('re-encryption to members', () => {
  it('without a CA the member certificate is not verified (verify none)', async () => {
    const m = await startHttpsMember(r, 'self', { cert: foreign });
    await applyHttp(m, {});
    const res = await request(port, { path: '/x' });
    expect(res.status).toBe(200);
    expect(res.body).toBe('self');
    expect(m.requests[0].protocol).toMatch(/^TLSv1\.[23]$/);
    await m.close();
  });

  it('with a CA the member certificate must chain to it: a foreign one is refused (503)', async () => {
    const ok = await startHttpsMember(r, 'ok', { cert: good });
    await applyHttp(ok, { ca: memberCa.cert });
    expect((await request(port)).body).toBe('ok');
    await ok.close();
    const bad = await startHttpsMember(r, 'bad', { cert: foreign });
    await applyHttp(bad, { ca: memberCa.cert });
    expect((await request(port)).status).toBe(503);
    expect(bad.requests).toHaveLength(0);
    await bad.close();
  });

  it('with a CRL a revoked member certificate is refused', async () => {
    const m = await startHttpsMember(r, 'revoked', { cert: revokedCert });
    await applyHttp(m, { ca: memberCa.cert });
    expect((await request(port)).status).toBe(200);
    await applyHttp(m, { ca: memberCa.cert, crl });
    expect((await request(port)).status).toBe(503);
    await m.close();
  });

  it('presents the pool client certificate to members that require one', async () => {
    const m = await startHttpsMember(r, 'strict', { cert: good, clientCa: clientCa.cert });
    await applyHttp(m, { ca: memberCa.cert });
    expect((await request(port)).status).toBeGreaterThanOrEqual(502);
    await applyHttp(m, { ca: memberCa.cert, clientCertificate: material(lbClient) });
    const res = await request(port);
    expect(res.status).toBe(200);
    expect(m.requests[m.requests.length - 1].clientCn).toBe('argonaut-lb');
    await m.close();
  });

  it('tls_versions and ALPN towards members: h2 is never offered to an HTTP member', async () => {
    const m = await startHttpsMember(r, 'alpn', { cert: good, ALPNProtocols: ['h2', 'http/1.1'] });
    await applyHttp(m, { versions: ['TLSv1.2'], alpnProtocols: ['h2', 'http/1.1'] });
    expect((await request(port)).status).toBe(200);
    expect(m.requests[0]).toMatchObject({ protocol: 'TLSv1.2', alpn: 'http/1.1' });
    await applyHttp(m, { versions: ['TLSv1.3'], alpnProtocols: ['http/1.0', 'http/1.1'] });
    expect((await request(port)).status).toBe(200);
    expect(m.requests[1]).toMatchObject({ protocol: 'TLSv1.3', alpn: 'http/1.1' });
    // A member that only speaks TLS 1.2 cannot be reached by a TLS 1.3-only pool.
    await m.close();
    const old = await startHttpsMember(r, 'old', { cert: good, maxVersion: 'TLSv1.2' });
    await applyHttp(old, { versions: ['TLSv1.3'] });
    expect((await request(port)).status).toBe(503);
    await old.close();
  });

  it('keeps member TLS connections alive and reuses them', async () => {
    const m = await startHttpsMember(r, 'reuse', { cert: good });
    await applyHttp(m, {});
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    r.add(() => agent.destroy());
    for (let i = 0; i < 5; i++) expect((await request(port, { agent })).status).toBe(200);
    expect(m.connections).toBe(1);
    await m.close();
  });

  it("passes the client's SNI on from a TERMINATED_HTTPS listener, verifies the member name against it, and does not mix SNIs on one connection", async () => {
    const m = await startHttpsMember(r, 'sni', { cert: good });
    await applyHttp(m, { ca: memberCa.cert }, 'TERMINATED_HTTPS');
    expect((await httpsRequest(port, { servername: 'www.example.com' })).status).toBe(200);
    expect((await httpsRequest(port, { servername: 'www.example.com' })).status).toBe(200);
    expect(m.requests.map((q) => q.sni)).toEqual(['www.example.com', 'www.example.com']);
    expect(new Set(m.requests.map((q) => q.tlsSession)).size).toBe(1); // reused
    // The member certificate does not name other.example.com: refused, as HAProxy's `sni` + `verify required`.
    expect((await httpsRequest(port, { servername: 'other.example.com' })).status).toBe(503);
    // No SNI from the client: none to the member, and only the chain is verified.
    expect((await httpsRequest(port, {})).status).toBe(200);
    expect(m.requests[m.requests.length - 1].sni).toBe(false);
    expect(new Set(m.requests.map((q) => q.tlsSession)).size).toBe(2);
    await m.close();
  });

  it('TCP listeners re-encrypt too (L4)', async () => {
    const tls = await import('node:tls');
    const echoPort = await freePort();
    const resumed: boolean[] = [];
    const server = tls.createServer({ cert: good.cert, key: good.key }, (s) => {
      resumed.push(s.isSessionReused());
      s.write('tls-member\n');
      s.pipe(s);
    });
    await new Promise<void>((resolve) => server.listen(echoPort, '127.0.0.1', () => resolve()));
    r.add(() => new Promise<void>((resolve) => server.close(() => resolve())));
    version++;
    await dp.apply(
      config([{ id: uid(1), protocol: 'TCP', ports: [port], defaultPoolId: uid(2) }], [pool(2, 'TCP', [{ id: 10, port: echoPort }], { tls: { ca: memberCa.cert } })], version),
    );
    const { socket, line } = await tcpGreeting(port);
    expect(line).toBe('tls-member');
    const echoed = await new Promise<string>((resolve) => {
      socket.once('data', (d: Buffer) => resolve(d.toString()));
      socket.write('ping');
    });
    expect(echoed).toBe('ping');
    socket.destroy();
    // Each client connection has its own member connection; the later ones resume the member's session.
    for (let i = 0; i < 3; i++) {
      const next = await tcpGreeting(port);
      expect(next.line).toBe('tls-member');
      next.socket.destroy();
    }
    expect(resumed[0]).toBe(false);
    expect(resumed.slice(1)).toEqual([true, true, true]);
  });
});
