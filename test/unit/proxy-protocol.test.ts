import { describe, expect, it } from 'vitest';
import { proxyV1Header, proxyV2Header } from '../../amphora/dataplane/proxy-protocol.ts';

const SIGNATURE = '0d0a0d0a000d0a515549540a';

describe('PROXY protocol headers (as HAProxy send-proxy / send-proxy-v2 write them)', () => {
  it('v2 over IPv4: AF_INET, the two addresses and ports', () => {
    const h = proxyV2Header({ sourceAddress: '192.0.2.1', sourcePort: 40000, destinationAddress: '198.51.100.7', destinationPort: 443 });
    expect(h.toString('hex')).toBe(`${SIGNATURE}21` + '11' + '000c' + 'c0000201' + 'c6336407' + '9c40' + '01bb');
  });

  it('v2 over IPv6, an IPv4 side written IPv4-mapped, UDP as DGRAM', () => {
    const h = proxyV2Header({ sourceAddress: '2001:db8::1:2', sourcePort: 1, destinationAddress: '198.51.100.7', destinationPort: 2 }, 'dgram');
    expect(h.toString('hex')).toBe(
      `${SIGNATURE}21` + '22' + '0024' + '20010db8000000000000000000010002' + '00000000000000000000ffffc6336407' + '0001' + '0002',
    );
  });

  it('v2 reads an IPv6 address with an IPv4 tail', () => {
    const h = proxyV2Header({ sourceAddress: '::ffff:192.0.2.1', sourcePort: 1, destinationAddress: '2001:db8::', destinationPort: 2 });
    expect(h.subarray(16, 48).toString('hex')).toBe('00000000000000000000ffffc0000201' + '20010db8000000000000000000000000');
  });

  it('v1: TCP4, or TCP6 with an IPv4 side mapped', () => {
    expect(proxyV1Header({ sourceAddress: '192.0.2.1', sourcePort: 5, destinationAddress: '192.0.2.2', destinationPort: 80 }).toString()).toBe(
      'PROXY TCP4 192.0.2.1 192.0.2.2 5 80\r\n',
    );
    expect(proxyV1Header({ sourceAddress: '2001:db8::1', sourcePort: 5, destinationAddress: '192.0.2.2', destinationPort: 80 }).toString()).toBe(
      'PROXY TCP6 2001:db8::1 ::ffff:192.0.2.2 5 80\r\n',
    );
  });
});
