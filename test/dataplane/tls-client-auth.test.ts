import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { L7PolicyInput, ListenerInput, ListenerTlsInput } from '../../common/amphora-config/index.ts';
import type { LocalDataPlane } from '../../amphora/dataplane/dataplane.ts';
import { config, freePort, pool, Resources, startDataPlane, startHttpMember, uid, type HttpMember } from './helpers.ts';
import { TestPki, type CertificateAuthority, type Issued } from './tls-certs.ts';
import { httpsRequest, material, sha1Hex } from './tls-helpers.ts';

const run = promisify(execFile);
const r = new Resources();
let pki: TestPki;
let serverCa: CertificateAuthority;
let clientCa: CertificateAuthority;
let otherCa: CertificateAuthority;
let serverCert: Issued;
let alice: Issued;
let bob: Issued;
let revoked: Issued;
let stranger: Issued;
let crl: string;
let member: HttpMember;
let admin: HttpMember;
let port: number;
let dp: LocalDataPlane;
let version = 1;

const ALL_SSL_HEADERS = {
  'X-SSL-Client-Verify': true,
  'X-SSL-Client-Has-Cert': true,
  'X-SSL-Client-DN': true,
  'X-SSL-Client-CN': true,
  'X-SSL-Issuer': true,
  'X-SSL-Client-SHA1': true,
  'X-SSL-Client-Not-Before': true,
  'X-SSL-Client-Not-After': true,
};

async function apply(tls: Partial<ListenerTlsInput>, extra: Partial<ListenerInput> = {}): Promise<void> {
  version++;
  const listener: ListenerInput = {
    id: uid(1),
    protocol: 'TERMINATED_HTTPS',
    ports: [port],
    defaultPoolId: uid(2),
    insertHeaders: ALL_SSL_HEADERS,
    tls: { defaultCertificate: material(serverCert), ...tls },
    ...extra,
  };
  await dp.apply(config([listener], [pool(2, 'HTTP', [{ id: 10, port: member.port }]), pool(3, 'HTTP', [{ id: 11, port: admin.port }])], version));
}

const as = (who: Issued | null) => (who === null ? {} : { cert: who.cert, key: who.key });
/** The status of one request, or "refused" when TLS (or the connection) failed. */
async function statusAs(who: Issued | null): Promise<number | 'refused'> {
  try {
    return (await httpsRequest(port, { ...as(who), path: '/who' })).status;
  } catch {
    return 'refused';
  }
}
const lastHeaders = () => member.requests[member.requests.length - 1].headers;

/** What `openssl x509 -noout -<which>date` says, as YYMMDDhhmmssZ. */
async function opensslDate(cert: Issued, which: 'start' | 'end'): Promise<string> {
  const { stdout } = await run('openssl', ['x509', '-in', cert.certFile, '-noout', `-${which}date`, '-dateopt', 'iso_8601']);
  const m = /(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})Z/.exec(stdout) as RegExpExecArray;
  return `${m[1].slice(2)}${m[2]}${m[3]}${m[4]}${m[5]}${m[6]}Z`;
}

beforeAll(async () => {
  pki = await TestPki.create();
  r.add(() => pki.cleanup());
  serverCa = await pki.rootCa('server-ca');
  clientCa = await pki.rootCa('client-ca');
  otherCa = await pki.rootCa('other-ca');
  serverCert = await pki.issue(serverCa, { subject: '/CN=lb.example.com', san: ['DNS:lb.example.com'] });
  alice = await pki.issue(clientCa, { subject: '/C=FR/O=Example, Inc./OU=admins/OU=staff/CN=alice', usage: 'client' });
  bob = await pki.issue(clientCa, { subject: '/O=Example/OU=users/CN=bob', usage: 'client' });
  revoked = await pki.issue(clientCa, { subject: '/O=Example/OU=admins/CN=mallory', usage: 'client' });
  stranger = await pki.issue(otherCa, { subject: '/O=Elsewhere/OU=admins/CN=eve', usage: 'client' });
  await pki.revoke(clientCa, revoked);
  crl = await pki.crl(clientCa);
  member = await startHttpMember(r, 'default');
  admin = await startHttpMember(r, 'admin');
  port = await freePort();
  dp = await startDataPlane(r, config([], []));
});
afterAll(() => r.cleanup());

describe('client authentication', () => {
  it('NONE: no certificate is asked for, so none is seen', async () => {
    await apply({ clientAuthentication: 'NONE' });
    expect(await statusAs(null)).toBe(200);
    expect(await statusAs(alice)).toBe(200);
    expect(lastHeaders()['x-ssl-client-has-cert']).toBe('0');
    expect(await statusAs(stranger)).toBe(200);
  });

  it('OPTIONAL: no certificate or a valid one is served; a foreign or revoked one is refused', async () => {
    await apply({ clientAuthentication: 'OPTIONAL', clientCa: clientCa.cert, clientCrl: crl });
    expect(await statusAs(null)).toBe(200);
    expect(lastHeaders()['x-ssl-client-has-cert']).toBe('0');
    expect(lastHeaders()['x-ssl-client-verify']).toBe('0');
    expect(lastHeaders()['x-ssl-client-dn']).toBe('""');
    expect(await statusAs(alice)).toBe(200);
    expect(lastHeaders()['x-ssl-client-has-cert']).toBe('1');
    expect(await statusAs(stranger)).toBe('refused');
    expect(await statusAs(revoked)).toBe('refused');
    expect(await statusAs(bob)).toBe(200);
  });

  it('MANDATORY: only a valid, unrevoked certificate from the client CA is served', async () => {
    await apply({ clientAuthentication: 'MANDATORY', clientCa: clientCa.cert, clientCrl: crl });
    expect(await statusAs(null)).toBe('refused');
    expect(await statusAs(stranger)).toBe('refused');
    expect(await statusAs(revoked)).toBe('refused');
    expect(await statusAs(alice)).toBe(200);
    // Without the CRL the revoked certificate passes: the CRL is what refuses it.
    await apply({ clientAuthentication: 'MANDATORY', clientCa: clientCa.cert });
    expect(await statusAs(revoked)).toBe(200);
  });
});

describe('X-SSL-* headers', () => {
  it('carry the client certificate as HAProxy renders it, replacing what the client sent', async () => {
    await apply({ clientAuthentication: 'MANDATORY', clientCa: clientCa.cert, clientCrl: crl });
    const res = await httpsRequest(port, { ...as(alice), headers: { 'X-SSL-Client-CN': 'root', 'x-ssl-client-verify': '0', 'X-SSL-Other': 'kept' } });
    expect(res.status).toBe(200);
    const h = lastHeaders();
    expect(h['x-ssl-client-verify']).toBe('0');
    expect(h['x-ssl-client-has-cert']).toBe('1');
    expect(h['x-ssl-client-dn']).toBe('"/C=FR/O=Example, Inc./OU=admins/OU=staff/CN=alice"');
    expect(h['x-ssl-client-cn']).toBe('"alice"');
    expect(h['x-ssl-issuer']).toBe('"/CN=client-ca/O=Argonaut Tests"');
    expect(h['x-ssl-client-sha1']).toBe(`"${sha1Hex(alice.cert)}"`);
    expect(h['x-ssl-client-not-before']).toBe(`"${await opensslDate(alice, 'start')}"`);
    expect(h['x-ssl-client-not-after']).toBe(`"${await opensslDate(alice, 'end')}"`);
    expect(h['x-ssl-other']).toBe('kept');
    // Only the enabled ones are set.
    await apply({ clientAuthentication: 'MANDATORY', clientCa: clientCa.cert }, { insertHeaders: { 'X-SSL-Client-CN': true } });
    await httpsRequest(port, { ...as(bob), headers: { 'X-SSL-Client-DN': 'forged' } });
    expect(lastHeaders()['x-ssl-client-cn']).toBe('"bob"');
    expect(lastHeaders()['x-ssl-client-dn']).toBe('forged');
    expect(lastHeaders()['x-ssl-issuer']).toBeUndefined();
  });
});

describe('L7 SSL_* rules', () => {
  const toAdmin = (id: number, rules: L7PolicyInput['rules']): L7PolicyInput => ({ id: uid(id), position: 1, action: 'REDIRECT_TO_POOL', redirectPoolId: uid(3), rules });
  const routed = async (who: Issued | null) => {
    const before = admin.requests.length;
    await httpsRequest(port, { ...as(who), path: '/route' });
    return admin.requests.length > before ? 'admin' : 'default';
  };

  it('SSL_CONN_HAS_CERT, SSL_VERIFY_RESULT and SSL_DN_FIELD route as HAProxy ssl_c_used / ssl_c_verify / ssl_c_s_dn', async () => {
    const tls = { clientAuthentication: 'OPTIONAL' as const, clientCa: clientCa.cert };
    await apply(tls, { l7policies: [toAdmin(100, [{ id: uid(101), type: 'SSL_CONN_HAS_CERT', compareType: 'EQUAL_TO', value: 'True' }])] });
    expect(await routed(alice)).toBe('admin');
    expect(await routed(null)).toBe('default');

    await apply(tls, { l7policies: [toAdmin(100, [{ id: uid(101), type: 'SSL_CONN_HAS_CERT', compareType: 'EQUAL_TO', value: 'TRUE', invert: true }])] });
    expect(await routed(alice)).toBe('default');
    expect(await routed(null)).toBe('admin');

    await apply(tls, { l7policies: [toAdmin(100, [{ id: uid(101), type: 'SSL_VERIFY_RESULT', compareType: 'EQUAL_TO', value: '0' }])] });
    expect(await routed(alice)).toBe('admin');
    expect(await routed(null)).toBe('admin'); // no certificate: nothing failed verification

    // The first OU of the subject (alice: admins, staff; bob: users).
    await apply(tls, { l7policies: [toAdmin(100, [{ id: uid(101), type: 'SSL_DN_FIELD', key: 'OU', compareType: 'EQUAL_TO', value: 'admins' }])] });
    expect(await routed(alice)).toBe('admin');
    expect(await routed(bob)).toBe('default');
    expect(await routed(null)).toBe('default');

    await apply(tls, {
      l7policies: [
        toAdmin(100, [
          { id: uid(101), type: 'SSL_DN_FIELD', key: 'CN', compareType: 'REGEX', value: '^b.b$' },
          { id: uid(102), type: 'PATH', compareType: 'STARTS_WITH', value: '/route' },
        ]),
      ],
    });
    expect(await routed(bob)).toBe('admin');
    expect(await routed(alice)).toBe('default');
  });

  it('on a plain HTTP listener SSL_* rules never match (their inverse always does)', async () => {
    const httpPort = await freePort();
    version++;
    await dp.apply(
      config(
        [
          {
            id: uid(5),
            protocol: 'HTTP',
            ports: [httpPort],
            defaultPoolId: uid(2),
            l7policies: [toAdmin(100, [{ id: uid(101), type: 'SSL_DN_FIELD', key: 'CN', compareType: 'CONTAINS', value: 'a' }]), { ...toAdmin(103, [{ id: uid(104), type: 'SSL_CONN_HAS_CERT', compareType: 'EQUAL_TO', value: 'true', invert: true }]), position: 2 }],
          },
        ],
        [pool(2, 'HTTP', [{ id: 10, port: member.port }]), pool(3, 'HTTP', [{ id: 11, port: admin.port }])],
        version,
      ),
    );
    const { request } = await import('./helpers.ts');
    const before = admin.requests.length;
    expect((await request(httpPort)).status).toBe(200);
    expect(admin.requests.length).toBe(before + 1); // via the inverted SSL_CONN_HAS_CERT rule
  });
});

describe('PROXYV2 pools behind a TLS listener', () => {
  it('send the SSL TLV of send-proxy-v2-ssl-cn: client flags, verify, version and CN', async () => {
    const net = await import('node:net');
    const headers: Buffer[] = [];
    const proxyPort = await freePort();
    const server = net.createServer((s) => {
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length < 16) return;
        const total = 16 + buf.readUInt16BE(14);
        if (buf.indexOf('\r\n\r\n', total) < 0) return;
        headers.push(buf.subarray(0, total));
        buf = Buffer.alloc(0);
        s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      });
      s.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(proxyPort, '127.0.0.1', () => resolve()));
    r.add(() => new Promise<void>((resolve) => server.close(() => resolve())));
    version++;
    await dp.apply(
      config(
        [{ id: uid(1), protocol: 'TERMINATED_HTTPS', ports: [port], defaultPoolId: uid(4), tls: { defaultCertificate: material(serverCert), clientAuthentication: 'OPTIONAL', clientCa: clientCa.cert } }],
        [pool(4, 'PROXYV2', [{ id: 12, port: proxyPort }])],
        version,
      ),
    );
    const parseTlv = (h: Buffer) => {
      const tlvs = h.subarray(28); // IPv4 addresses end at 28
      expect(tlvs[0]).toBe(0x20);
      const value = tlvs.subarray(3, 3 + tlvs.readUInt16BE(1));
      const subs: Record<number, string> = {};
      for (let i = 5; i < value.length; ) {
        const len = value.readUInt16BE(i + 1);
        subs[value[i]] = value.subarray(i + 3, i + 3 + len).toString();
        i += 3 + len;
      }
      return { client: value[0], verify: value.readUInt32BE(1), subs };
    };
    expect((await httpsRequest(port, as(alice))).body).toBe('ok');
    expect(parseTlv(headers[0])).toEqual({ client: 0x07, verify: 0, subs: { 0x21: 'TLSv1.3', 0x22: 'alice' } });
    expect((await httpsRequest(port, { maxVersion: 'TLSv1.2' })).body).toBe('ok');
    expect(parseTlv(headers[1])).toEqual({ client: 0x01, verify: 0, subs: { 0x21: 'TLSv1.2' } });
  });
});
