import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runRealServerCli } from '../../amphora/dataplane/directrouting/realserver-cli.ts';
import { REALSERVER_METHODS, realServerInstructions } from '../../amphora/dataplane/directrouting/realserver-commands.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/argonaut-realserver.ts');

function cli(args: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = runRealServerCli(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

describe('real-server commands ("solving the ARP problem")', () => {
  it('method 1: the VIP on lo, arp_ignore/arp_announce on all and on each interface', () => {
    const r = realServerInstructions({ vip: '192.0.2.10', method: 'arp-sysctl', interfaces: ['eth0', 'eth1'] });
    expect(r.commands).toEqual([
      'sysctl -w net.ipv4.conf.all.arp_ignore=1',
      'sysctl -w net.ipv4.conf.all.arp_announce=2',
      'sysctl -w net.ipv4.conf.eth0.arp_ignore=1',
      'sysctl -w net.ipv4.conf.eth0.arp_announce=2',
      'sysctl -w net.ipv4.conf.eth1.arp_ignore=1',
      'sysctl -w net.ipv4.conf.eth1.arp_announce=2',
      'ip addr add dev lo 192.0.2.10/32',
      'ip addr show dev lo',
    ]);
    expect(r.persistent[0]).toContain('net.ipv4.conf.eth1.arp_announce=2 > /etc/sysctl.d/90-argonaut-dr.conf');
    const v6 = realServerInstructions({ vip: '2001:db8::10', method: 'arp-sysctl' });
    expect(v6.commands).toEqual(['sysctl -w net.ipv6.conf.lo.dad_transmits=0', 'sysctl -w net.ipv6.conf.lo.accept_dad=0', 'ip addr add dev lo 2001:db8::10/128', 'ip addr show dev lo']);
  });

  it('methods 2 to 4: NAT redirect of the VIP with iptables, nftables and firewall-cmd', () => {
    expect(realServerInstructions({ vip: '192.0.2.10', method: 'iptables' }).commands[0]).toBe('iptables -t nat -A PREROUTING -d 192.0.2.10 -j REDIRECT');
    expect(realServerInstructions({ vip: '2001:db8::10', method: 'iptables' }).commands[0]).toBe('ip6tables -t nat -A PREROUTING -d 2001:db8::10 -j REDIRECT');
    const nft = realServerInstructions({ vip: '192.0.2.10', method: 'nftables' }).commands.join('\n');
    expect(nft).toContain('type nat hook prerouting priority -100; policy accept;');
    expect(nft).toContain('ip daddr 192.0.2.10 redirect');
    expect(realServerInstructions({ vip: '192.0.2.10', method: 'firewalld' }).commands).toEqual([
      'firewall-cmd --permanent --direct --add-rule ipv4 nat PREROUTING 0 -d 192.0.2.10 -j REDIRECT',
      'firewall-cmd --reload',
    ]);
  });

  it('Windows: loopback adapter with the VIP and the weak host model, with netsh or PowerShell', () => {
    const netsh = realServerInstructions({ vip: '192.0.2.10', method: 'windows-netsh', lanAdapter: 'LAN' }).commands;
    expect(netsh).toContain('netsh interface ipv4 add address "loopback" 192.0.2.10 255.255.255.255');
    expect(netsh).toContain('netsh interface ipv4 set interface "LAN" weakhostreceive=enabled');
    expect(netsh).toContain('netsh interface ipv4 set interface "loopback" weakhostsend=enabled');
    expect(netsh.some((c) => c.includes('KM-TEST Loopback Adapter'))).toBe(true);
    const ps = realServerInstructions({ vip: '2001:db8::10', method: 'windows-powershell' }).commands;
    expect(ps).toContain('Set-NetIpInterface -InterfaceAlias "loopback" -WeakHostReceive Enabled -WeakHostSend Enabled -DadTransmits 0 -AddressFamily IPv6');
    expect(ps).toContain('Set-NetIpInterface -InterfaceAlias "net" -WeakHostReceive Enabled -AddressFamily IPv6');
  });

  it('prints every method by default, one with --method, and refuses bad arguments', () => {
    const all = cli(['--vip', '192.0.2.10', '--member', '192.0.2.21']);
    expect(all.code).toBe(0);
    expect(all.out.match(/^# VIP 192\.0\.2\.10, on member 192\.0\.2\.21/gm)).toHaveLength(REALSERVER_METHODS.length);
    expect(all.out.indexOf('Linux method 1')).toBeLessThan(all.out.indexOf('Linux method 2'));
    expect(all.out).toContain('arping -c 3 192.0.2.10');
    const one = cli(['--vip', '192.0.2.10', '--method', 'firewalld']);
    expect(one.out).toContain('firewall-cmd --reload');
    expect(one.out).not.toContain('arp_ignore');
    expect(cli([]).err).toMatch(/--vip ADDRESS is required/);
    expect(cli(['--vip', 'nope']).code).toBe(2);
    expect(cli(['--vip', '192.0.2.10', '--method', 'ipvs']).err).toMatch(/--method must be one of arp-sysctl, iptables/);
    expect(cli(['--vip', '192.0.2.10', '--member', '2001:db8::1']).err).toMatch(/--member must be an address of the VIP's family/);
    expect(cli(['--vip', '192.0.2.10', '--interface', 'eth0;rm']).err).toMatch(/not a Linux interface name/);
  });

  it('is a command with --help', () => {
    const help = spawnSync(process.execPath, ['--import', 'tsx', BIN, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/Usage: realserver --vip ADDRESS/);
    const run = spawnSync(process.execPath, ['--import', 'tsx', BIN, '--vip', '192.0.2.10', '--method', 'arp-sysctl'], { encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('ip addr add dev lo 192.0.2.10/32');
    const bad = spawnSync(process.execPath, ['--import', 'tsx', BIN, '--bogus'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
  });
});
