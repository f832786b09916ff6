import { describe, expect, it } from 'vitest';
import { formatIp, ipToBigInt, normalizeCidr, parseCidr } from '../../common/ip-address.ts';

const text = (address: string) => {
  const ip = ipToBigInt(address);
  return ip && formatIp(ip.version, ip.value);
};

describe('IP address helpers', () => {
  it('parses IPv4 and IPv6 to numbers and formats them back (RFC 5952)', () => {
    expect(ipToBigInt('10.0.0.1')).toEqual({ version: 4, value: 0x0a000001n });
    expect(ipToBigInt('2001:DB8:0:0:1:0:0:1')).toEqual({ version: 6, value: 0x20010db8000000000001000000000001n });
    expect(text('2001:DB8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(text('::')).toBe('::');
    expect(text('fe80::1%eth0')).toBe('fe80::1');
    expect(ipToBigInt('not-an-address')).toBeUndefined();
  });

  it('reads an embedded IPv4 tail as the last two groups', () => {
    expect(ipToBigInt('::ffff:10.0.0.1')).toEqual({ version: 6, value: 0xffff0a000001n });
    expect(text('::10.0.0.1')).toBe('::a00:1');
    expect(text('1::10.0.0.1')).toBe('1::a00:1');
    expect(text('1:2:3:4:5:6:10.0.0.1')).toBe('1:2:3:4:5:6:a00:1');
    expect(text('0:0:0:0:0:ffff:10.0.0.1')).toBe('::ffff:a00:1');
    expect(text('::ffff:10.0.0.1%eth0')).toBe('::ffff:a00:1');
  });

  it('normalises a CIDR to its network, embedded IPv4 included', () => {
    expect(normalizeCidr('192.0.2.5/24')).toBe('192.0.2.0/24');
    expect(normalizeCidr('::ffff:192.0.2.5/120')).toBe('::ffff:c000:200/120');
    expect(parseCidr('1:2:3:4:5:6:192.0.2.5/128')).toEqual({ version: 6, network: 0x00010002000300040005_0006_c000_0205n, prefix: 128 });
    expect(parseCidr('192.0.2.0/33')).toBeUndefined();
  });
});
