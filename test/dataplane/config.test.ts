import { describe, expect, it } from 'vitest';
import { expandPorts, parseAmphoraConfig, parsePortList, safeParseAmphoraConfig } from '../../common/amphora-config/index.ts';
import { diffConfigs } from '../../amphora/dataplane/config/diff.ts';
import { config, httpListener, pool, uid } from './helpers.ts';
import { TestPki } from './tls-certs.ts';

const errorOf = (input: unknown) => {
  const r = safeParseAmphoraConfig(input);
  return r.ok ? '' : r.error.message;
};

describe('AmphoraConfig document', () => {
  it('fills Octavia defaults', () => {
    const c = parseAmphoraConfig(config([httpListener(1, 80, 2)], [pool(2, 'HTTP', [{ id: 3, port: 8080 }], { healthMonitor: { id: uid(4), type: 'HTTP', delay: 5000, timeout: 3000 } })]));
    const l = c.listeners[0];
    expect(l.timeouts).toEqual({ clientData: 50_000, memberConnect: 5_000, memberData: 50_000, tcpInspect: 0, httpRequest: 10_000 });
    expect(l.connectionLimit).toBe(-1);
    expect(l.enabled).toBe(true);
    expect(c.pools[0].members[0]).toMatchObject({ weight: 1, backup: false, enabled: true, monitorAddress: null, maxConnections: null });
    expect(c.pools[0].healthMonitor).toMatchObject({ maxRetries: 3, maxRetriesDown: 3, httpMethod: 'GET', urlPath: '/', expectedCodes: '200' });
    expect(c.limits.maxHeaderBytes).toBe(16_384);
  });

  it('reads the appliance port notation and expands ranges', () => {
    expect(parsePortList('1935,554,50000-50003')).toEqual([1935, 554, { from: 50000, to: 50003 }]);
    expect(expandPorts([554, { from: 50000, to: 50002 }, 554])).toEqual([554, 50000, 50001, 50002]);
    expect(() => parsePortList('80,x')).toThrow(/invalid port list item/);
  });

  it('rejects schema violations with their paths', () => {
    expect(errorOf({ ...config([], []), version: 2 })).toMatch(/version/);
    expect(errorOf(config([httpListener(1, 70000, null)], []))).toMatch(/listeners\.0\.ports\.0/);
    expect(errorOf(config([{ ...httpListener(1, 80, null), ports: [{ from: 90, to: 80 }] }], []))).toMatch(/"from" must be <= "to"/);
    expect(errorOf(config([httpListener(1, 80, null, { allowedCidrs: ['10.0.0.0/33'] })], []))).toMatch(/allowedCidrs\.0/);
    expect(errorOf(config([], [pool(2, 'HTTP', [{ id: 3, port: 80, weight: 257 }])]))).toMatch(/members\.0\.weight/);
    expect(errorOf(config([], [pool(2, 'HTTP', [{ id: 3, port: 80 }], { algorithm: 'RANDOM' as never })]))).toMatch(/algorithm/);
    expect(errorOf({ ...config([], []), listeners: [{ ...httpListener(1, 80, null), unknownField: 1 }] })).toMatch(/unknownField|Unrecognized/);
  });

  it('rejects broken references, protocol mismatches, duplicate ids and port conflicts', () => {
    expect(errorOf(config([httpListener(1, 80, 9)], []))).toMatch(/pool .* does not exist/);
    expect(errorOf(config([httpListener(1, 80, 2)], [pool(2, 'UDP', [])]))).toMatch(/a HTTP listener cannot use a UDP pool/);
    expect(errorOf(config([httpListener(1, 80, 2)], [pool(1, 'HTTP', [])]))).toMatch(/duplicate id/);
    expect(errorOf(config([httpListener(1, 80, null), { ...httpListener(2, 79, null), ports: [{ from: 75, to: 85 }] }], []))).toMatch(/tcp port 80 on 127\.0\.0\.1 is already used/);
    // TCP and UDP may share ports; a disabled listener claims nothing.
    expect(errorOf(config([httpListener(1, 80, null), { id: uid(2), protocol: 'UDP', ports: [80] }, httpListener(3, 80, null, { enabled: false })], []))).toBe('');
    expect(errorOf(config([httpListener(1, 80, null, { l7policies: [{ id: uid(5), position: 1, action: 'REDIRECT_TO_POOL', rules: [] }] })], []))).toMatch(/redirectPoolId: required/);
    expect(errorOf(config([{ id: uid(1), protocol: 'TCP', ports: [80], l7policies: [{ id: uid(5), position: 1, action: 'REJECT' }] }], []))).toMatch(/L7 policies need an HTTP listener/);
    expect(
      errorOf(config([httpListener(1, 80, null, { l7policies: [{ id: uid(5), position: 1, action: 'REJECT', rules: [{ id: uid(6), type: 'PATH', compareType: 'REGEX', value: '(' }] }] })], [])),
    ).toMatch(/invalid regular expression/);
    expect(errorOf(config([], [pool(2, 'HTTP', [], { healthMonitor: { id: uid(4), type: 'HTTP', delay: 1000, timeout: 2000 } })]))).toMatch(/timeout must not exceed delay/);
  });

  it('validates TLS blocks without ever quoting key material', async () => {
    const pki = await TestPki.create();
    try {
      const ca = await pki.rootCa('cfg-ca');
      const a = await pki.issue(ca, { subject: '/CN=a.example.com' });
      const b = await pki.issue(ca, { subject: '/CN=b.example.com' });
      const crl = await pki.crl(ca);
      const good = { certificate: a.cert, privateKey: a.key };
      const tlsListener = (tls: unknown, extra: object = {}) =>
        config([{ id: uid(1), protocol: 'TERMINATED_HTTPS', ports: [443], defaultPoolId: null, tls: tls as never, ...extra }], []);

      const parsed = parseAmphoraConfig(tlsListener({ defaultCertificate: good }));
      expect(parsed.listeners[0].tls).toMatchObject({
        clientAuthentication: 'NONE',
        clientCa: null,
        clientCrl: null,
        sniCertificates: [],
        versions: ['TLSv1.2', 'TLSv1.3'],
        ciphers: null,
        alpnProtocols: ['h2', 'http/1.1', 'http/1.0'],
      });
      expect(parsed.listeners[0].tls?.defaultCertificate).toMatchObject({ ref: null, intermediates: [] });
      expect(errorOf(tlsListener({ sniCertificates: [good, { certificate: b.cert, privateKey: b.key, intermediates: [ca.cert] }], clientAuthentication: 'MANDATORY', clientCa: ca.cert, clientCrl: crl }))).toBe('');

      expect(errorOf(tlsListener(null))).toMatch(/listeners\.0\.tls: required by TERMINATED_HTTPS/);
      expect(errorOf(tlsListener({}))).toMatch(/tls\.defaultCertificate: a default certificate or SNI certificates are required/);
      const mismatch = errorOf(tlsListener({ defaultCertificate: { certificate: a.cert, privateKey: b.key } }));
      expect(mismatch).toMatch(/tls\.defaultCertificate\.privateKey: does not match the certificate/);
      expect(errorOf(tlsListener({ defaultCertificate: { certificate: a.cert, privateKey: 'secret' } }))).toMatch(/privateKey: must be PEM text/);
      const badKey = errorOf(tlsListener({ defaultCertificate: { certificate: a.cert, privateKey: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----' } }));
      expect(badKey).toMatch(/privateKey: must be an unencrypted PEM private key/);
      expect(errorOf(tlsListener({ defaultCertificate: { certificate: a.key, privateKey: a.key } }))).toMatch(/certificate: must hold at least one PEM certificate/);
      for (const message of [mismatch, badKey]) {
        expect(message).not.toContain('BEGIN');
        expect(message).not.toContain(a.key.split('\n')[1].slice(0, 16));
      }
      expect(errorOf(tlsListener({ defaultCertificate: good, clientAuthentication: 'OPTIONAL' }))).toMatch(/tls\.clientCa: required by clientAuthentication OPTIONAL/);
      expect(errorOf(tlsListener({ defaultCertificate: good, clientCrl: crl }))).toMatch(/tls\.clientCrl: needs clientCa/);
      expect(errorOf(tlsListener({ defaultCertificate: good, clientCa: ca.cert, clientCrl: ca.cert }))).toMatch(/clientCrl: must hold at least one PEM X509 CRL/);
      expect(errorOf(tlsListener({ defaultCertificate: good, versions: ['SSLv3'] }))).toMatch(/tls\.versions: must name a TLS version/);
      expect(errorOf(tlsListener({ defaultCertificate: good, versions: [] }))).toMatch(/tls\.versions/);
      expect(errorOf(tlsListener({ defaultCertificate: good, versions: ['TLSv1.4'] }))).toMatch(/tls\.versions\.0/);
      expect(errorOf(tlsListener({ defaultCertificate: good, ciphers: 'NO-SUCH-CIPHER', versions: ['TLSv1.2'] }))).toMatch(/tls\.ciphers: OpenSSL accepts none/);
      expect(errorOf(tlsListener({ defaultCertificate: good, ciphers: 'HIGH; rm -rf' }))).toMatch(/tls\.ciphers: must be an OpenSSL cipher string/);
      expect(errorOf(tlsListener({ defaultCertificate: good, alpnProtocols: ['spdy/3'] }))).toMatch(/alpnProtocols\.0/);
      expect(errorOf(config([httpListener(1, 80, null, { tls: { defaultCertificate: good } })], []))).toMatch(/listeners\.0\.tls: a HTTP listener does not terminate TLS \(TERMINATED_HTTPS and PROMETHEUS only\)/);
      expect(errorOf(config([httpListener(1, 80, null, { hsts: { maxAge: 1 } })], []))).toMatch(/listeners\.0\.hsts: HSTS needs a TERMINATED_HTTPS listener/);
      expect(errorOf(config([httpListener(1, 80, null, { insertHeaders: { 'X-SSL-Client-DN': true } })], []))).toMatch(/X-SSL-Client-DN needs a TERMINATED_HTTPS listener/);
      expect(errorOf(tlsListener({ defaultCertificate: good }, { insertHeaders: { 'X-SSL-Client-DN': true, 'X-Forwarded-For': true }, hsts: { maxAge: 10 } }))).toBe('');

      expect(errorOf(config([], [pool(2, 'HTTP', [], { tls: {} })]))).toBe('');
      expect(errorOf(config([], [pool(2, 'UDP', [], { tls: {} })]))).toMatch(/pools\.0\.tls: UDP pools cannot use TLS/);
      expect(errorOf(config([], [pool(2, 'HTTP', [], { tls: { crl } })]))).toMatch(/pools\.0\.tls\.crl: needs ca/);
      expect(errorOf(config([], [pool(2, 'HTTP', [], { tls: { clientCertificate: { certificate: b.cert, privateKey: a.key } } })]))).toMatch(/tls\.clientCertificate\.privateKey: does not match/);
      expect(errorOf(config([], [pool(2, 'HTTP', [], { tls: { ca: ca.cert, crl, clientCertificate: good, versions: ['TLSv1.3'], alpnProtocols: ['http/1.1'] } })]))).toBe('');
      for (const type of ['HTTPS', 'TLS-HELLO'] as const) {
        expect(errorOf(config([], [pool(2, 'HTTP', [], { healthMonitor: { id: uid(4), type, delay: 1000, timeout: 500 } })]))).toBe('');
      }
    } finally {
      await pki.cleanup();
    }
  });

  it('validates SSL_* L7 rules as Octavia does', () => {
    const withRule = (rule: object) =>
      errorOf(config([httpListener(1, 80, null, { l7policies: [{ id: uid(5), position: 1, action: 'REJECT', rules: [{ id: uid(6), ...rule } as never] }] })], []));
    expect(withRule({ type: 'SSL_CONN_HAS_CERT', compareType: 'EQUAL_TO', value: 'True' })).toBe('');
    expect(withRule({ type: 'SSL_CONN_HAS_CERT', compareType: 'CONTAINS', value: 'True' })).toMatch(/SSL_CONN_HAS_CERT rules support EQUAL_TO only/);
    expect(withRule({ type: 'SSL_CONN_HAS_CERT', compareType: 'EQUAL_TO', value: 'yes' })).toMatch(/take the value True/);
    expect(withRule({ type: 'SSL_VERIFY_RESULT', compareType: 'EQUAL_TO', value: '21' })).toBe('');
    expect(withRule({ type: 'SSL_VERIFY_RESULT', compareType: 'EQUAL_TO', value: '-1' })).toMatch(/verify result code/);
    expect(withRule({ type: 'SSL_DN_FIELD', key: 'OU', compareType: 'REGEX', value: '^a' })).toBe('');
    expect(withRule({ type: 'SSL_DN_FIELD', compareType: 'EQUAL_TO', value: 'a' })).toMatch(/SSL_DN_FIELD rules need a DN field name/);
    expect(withRule({ type: 'SSL_DN_FIELD', key: '1bad', compareType: 'EQUAL_TO', value: 'a' })).toMatch(/SSL_DN_FIELD rules need a DN field name/);
  });

  it('diffs configs by object id', () => {
    const before = parseAmphoraConfig(config([httpListener(1, 80, 2), httpListener(3, 81, 2)], [pool(2, 'HTTP', [])]));
    const after = parseAmphoraConfig(config([httpListener(1, 80, 2), httpListener(4, 82, 2)], [pool(2, 'HTTP', [{ id: 9, port: 1 }])], 2));
    const diff = diffConfigs(before, after);
    expect(diff.listeners).toEqual({ added: [uid(4)], removed: [uid(3)], changed: [], unchanged: [uid(1)] });
    expect(diff.pools.changed).toEqual([uid(2)]);
    expect(diff.fromVersion).toBe(1);
    expect(diff.toVersion).toBe(2);
  });
});
