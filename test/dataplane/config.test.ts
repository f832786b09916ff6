import { describe, expect, it } from 'vitest';
import { expandPorts, parseAmphoraConfig, parsePortList, safeParseAmphoraConfig } from '../../common/amphora-config/index.ts';
import { diffConfigs } from '../../amphora/dataplane/config/diff.ts';
import { config, httpListener, pool, uid } from './helpers.ts';

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

  it('rejects TLS features clearly as not supported yet', () => {
    expect(errorOf(config([{ ...httpListener(1, 443, null), protocol: 'TERMINATED_HTTPS' }], []))).toMatch(/TLS termination is not supported yet/);
    expect(errorOf(config([httpListener(1, 80, null, { tls: { certificateRef: 'x' } })], []))).toMatch(/listeners\.0\.tls: TLS termination is not supported yet/);
    expect(errorOf(config([], [pool(2, 'HTTP', [], { tls: { certificateRef: 'x' } })]))).toMatch(/re-encryption to members is not supported yet/);
    expect(errorOf(config([httpListener(1, 80, null, { insertHeaders: { 'X-SSL-Client-DN': true } })], []))).toMatch(/X-SSL-Client-DN is not supported yet/);
    expect(errorOf(config([], [pool(2, 'HTTP', [], { healthMonitor: { id: uid(4), type: 'TLS-HELLO', delay: 1000, timeout: 500 } })]))).toMatch(/TLS-HELLO health monitors is not supported yet|TLS-HELLO health monitors/);
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
