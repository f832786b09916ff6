// The `vrrp` section of the AmphoraConfig (ACTIVE_STANDBY): defaults, limits and the address rules
// of checkSemantics, and the per-load-balancer election key.
import { describe, expect, it } from 'vitest';
import { parseAmphoraConfig, safeParseAmphoraConfig, type VrrpInput } from '../../common/amphora-config/index.ts';
import { deriveAmphoraKey, deriveVrrpKey } from '../../common/transport/signing.ts';
import { config } from '../dataplane/helpers.ts';

const KEY = 'ab'.repeat(32);
const base = (vrrp: Partial<VrrpInput> = {}) => ({
  ...config([], []),
  vips: [{ address: '10.222.1.10' }],
  vrrp: { role: 'MASTER', priority: 100, address: '10.222.1.200', peers: ['10.222.1.201'], authKey: KEY, ...vrrp },
});
const errorOf = (input: unknown) => {
  const r = safeParseAmphoraConfig(input);
  return r.ok ? '' : r.error.message;
};

describe('AmphoraConfig vrrp section', () => {
  it('is null by default and gets Octavia\'s defaults when present', () => {
    expect(parseAmphoraConfig(config([], [])).vrrp).toBeNull();
    expect(parseAmphoraConfig(base()).vrrp).toEqual({
      role: 'MASTER', priority: 100, routerId: 1, address: '10.222.1.200', peers: ['10.222.1.201'], interface: null,
      advertIntervalMs: 1000, preempt: false, authKey: KEY, syncPort: 1114,
    });
  });

  it('refuses intervals below 50 ms, bad roles, short keys, no peers and unknown fields, naming the path', () => {
    expect(errorOf(base({ advertIntervalMs: 49 }))).toMatch(/vrrp\.advertIntervalMs/);
    expect(parseAmphoraConfig(base({ advertIntervalMs: 50 })).vrrp!.advertIntervalMs).toBe(50);
    expect(errorOf(base({ role: 'STANDALONE' as never }))).toMatch(/vrrp\.role/);
    expect(errorOf(base({ authKey: 'ab'.repeat(15) }))).toMatch(/vrrp\.authKey/);
    expect(errorOf(base({ peers: [] }))).toMatch(/vrrp\.peers/);
    expect(errorOf(base({ priority: 255 }))).toMatch(/vrrp\.priority/);
    expect(errorOf({ ...base(), vrrp: { ...base().vrrp, extra: 1 } })).toMatch(/extra|Unrecognized/);
  });

  it('refuses its own address as a peer or a VIP, and a peer of another IP version', () => {
    expect(errorOf(base({ peers: ['10.222.1.200'] }))).toMatch(/vrrp\.peers\.0: is this amphora's own address/);
    expect(errorOf(base({ address: '10.222.1.10' }))).toMatch(/vrrp\.address: must be the amphora's own address/);
    expect(errorOf(base({ peers: ['10.222.1.10'] }))).toMatch(/vrrp\.peers\.0: is a VIP/);
    expect(errorOf(base({ peers: ['fd00::1'] }))).toMatch(/vrrp\.peers\.0: is not of the IP version/);
  });

  it('a key per load balancer, different from every amphora key', () => {
    const master = 'm'.repeat(32);
    const a = deriveVrrpKey(master, 'lb-a');
    expect(a).toHaveLength(32);
    expect(deriveVrrpKey(master, 'lb-a').equals(a)).toBe(true);
    expect(deriveVrrpKey(master, 'lb-b').equals(a)).toBe(false);
    expect(deriveVrrpKey('n'.repeat(32), 'lb-a').equals(a)).toBe(false);
    expect(deriveAmphoraKey(master, 'lb-a').equals(a)).toBe(false);
  });
});
