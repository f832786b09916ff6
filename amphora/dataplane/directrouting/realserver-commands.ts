import { isIP } from 'node:net';

/**
 * What a member (a "real server") of a DIRECT_ROUTING listener must run so that it accepts packets
 * addressed to the VIP without answering ARP for it ("solving the ARP problem"): the four Linux methods
 * and the Windows steps. Only text: nothing here runs a command.
 */

export const REALSERVER_METHODS = ['arp-sysctl', 'iptables', 'nftables', 'firewalld', 'windows-netsh', 'windows-powershell'] as const;
export type RealServerMethod = (typeof REALSERVER_METHODS)[number];

export interface RealServerRequest {
  vip: string;
  method: RealServerMethod;
  /** The member's own address (shown in the instructions and the checks). */
  member?: string;
  /** Linux: the member's network interfaces that face the load balancer (arp-sysctl). */
  interfaces?: string[];
  /** Windows: the adapter names. */
  lanAdapter?: string;
  loopbackAdapter?: string;
}

export interface RealServerInstructions {
  method: RealServerMethod;
  title: string;
  /** Run in this order, as root / Administrator. Lines starting with `#` are steps done by hand. */
  commands: string[];
  /** How to make it survive a reboot. */
  persistent: string[];
  notes: string[];
}

export class RealServerError extends Error {}

export function realServerInstructions(req: RealServerRequest): RealServerInstructions {
  const family = isIP(req.vip);
  if (family === 0) throw new RealServerError(`--vip must be an IPv4 or IPv6 address, not "${req.vip}"`);
  if (req.member !== undefined && isIP(req.member) !== family) {
    throw new RealServerError(`--member must be an address of the VIP's family (IPv${family}), not "${req.member}"`);
  }
  const interfaces = req.interfaces && req.interfaces.length > 0 ? req.interfaces : ['eth0'];
  for (const name of interfaces) {
    if (!/^[A-Za-z0-9_.@-]{1,15}$/.test(name)) throw new RealServerError(`--interface "${name}" is not a Linux interface name`);
  }
  const v6 = family === 6;
  const vip = req.vip;
  const natNote =
    'REDIRECT hands the packets to the address of the interface they came in on: a service bound to the VIP only ' +
    '(IP-based virtual hosting) will not see them; use arp-sysctl then.';
  switch (req.method) {
    case 'arp-sysctl': {
      const sysctls = v6
        ? ['net.ipv6.conf.lo.dad_transmits=0', 'net.ipv6.conf.lo.accept_dad=0']
        : ['all', ...interfaces].flatMap((i) => [`net.ipv4.conf.${i}.arp_ignore=1`, `net.ipv4.conf.${i}.arp_announce=2`]);
      const prefix = v6 ? 128 : 32;
      return {
        method: req.method,
        title: 'Linux method 1 (preferred): the VIP on the loopback interface, ARP replies and announcements for it switched off',
        commands: [...sysctls.map((s) => `sysctl -w ${s}`), `ip addr add dev lo ${vip}/${prefix}`, 'ip addr show dev lo'],
        persistent: [
          `printf '%s\\n' ${sysctls.join(' ')} > /etc/sysctl.d/90-argonaut-dr.conf && sysctl -p /etc/sysctl.d/90-argonaut-dr.conf`,
          `# add "ip addr add dev lo ${vip}/${prefix}" to the distribution's network configuration (or /etc/rc.local)`,
          `# to undo: ip addr del dev lo ${vip}/${prefix}`,
        ],
        notes: v6
          ? ['dad_transmits=0 / accept_dad=0: every real server and the load balancer own the VIP, so duplicate address detection must not flag it.']
          : [
              'arp_ignore=1: answer ARP only for addresses of the interface the request came in on; the VIP lives on lo, so its requests are ignored.',
              'arp_announce=2: never use an address of another interface (the VIP on lo) as the sender of ARP requests sent out of this one.',
              `Set both on "all" and on every interface facing the load balancer (${interfaces.join(', ')}).`,
              'UDP services must answer from the VIP: bind them to the VIP (or to the wildcard with IP_PKTINFO), not to the wildcard alone.',
            ],
      };
    }
    case 'iptables': {
      const tool = v6 ? 'ip6tables' : 'iptables';
      return {
        method: req.method,
        title: `Linux method 2: NAT "redirect" with ${tool}`,
        commands: [`${tool} -t nat -A PREROUTING -d ${vip} -j REDIRECT`, `${tool} -t nat -L PREROUTING -n`],
        persistent: [`# add the rule to the distribution's ${tool} rules file (e.g. ${tool}-save > /etc/iptables/rules.v${v6 ? 6 : 4}) or to /etc/rc.local`],
        notes: [natNote, 'One rule per VIP the server serves.'],
      };
    }
    case 'nftables': {
      const match = v6 ? `ip6 daddr ${vip}` : `ip daddr ${vip}`;
      const script = [
        'table inet argonaut_dr_nat {',
        '  chain prerouting {',
        '    type nat hook prerouting priority -100; policy accept;',
        `    ${match} redirect comment "Argonaut direct routing VIP"`,
        '  }',
        '}',
      ];
      return {
        method: req.method,
        title: 'Linux method 3: NAT "redirect" with nftables',
        commands: [`nft -f - <<'EOF'`, ...script, 'EOF', 'nft list table inet argonaut_dr_nat'],
        persistent: ['# put the table in /etc/nftables.conf (or a file it includes) and enable nftables.service'],
        notes: [
          natNote,
          'Kernels before 5.2 cannot NAT in an inet table: use "table ip" (or "table ip6") instead; before 4.18 also add an empty nat postrouting chain.',
        ],
      };
    }
    case 'firewalld': {
      const family4or6 = v6 ? 'ipv6' : 'ipv4';
      return {
        method: req.method,
        title: 'Linux method 4: NAT "redirect" with firewall-cmd (firewalld)',
        commands: [`firewall-cmd --permanent --direct --add-rule ${family4or6} nat PREROUTING 0 -d ${vip} -j REDIRECT`, 'firewall-cmd --reload'],
        persistent: ['# --permanent already keeps the rule across reboots'],
        notes: [natNote],
      };
    }
    case 'windows-netsh':
    case 'windows-powershell': {
      const lan = req.lanAdapter ?? 'net';
      const loopback = req.loopbackAdapter ?? 'loopback';
      const ipv = v6 ? 'ipv6' : 'ipv4';
      const install = [
        '# 1. Install the Microsoft KM-TEST Loopback Adapter: run hdwwiz, "Install the hardware that I manually select from a list (Advanced)",',
        '#    Network adapters, Microsoft, "Microsoft KM-TEST Loopback Adapter"; then name the new adapter "' + loopback + '" (and the LAN adapter "' + lan + '").',
        `# 2. On "${loopback}", uncheck every item but Internet Protocol Version ${v6 ? 6 : 4}.`,
      ];
      const address =
        req.method === 'windows-netsh'
          ? v6
            ? `netsh interface ipv6 add address "${loopback}" ${vip}/128`
            : `netsh interface ipv4 add address "${loopback}" ${vip} 255.255.255.255`
          : `New-NetIPAddress -InterfaceAlias "${loopback}" -IPAddress ${vip} -PrefixLength ${v6 ? 128 : 32} -SkipAsSource $true`;
      const weakHost =
        req.method === 'windows-netsh'
          ? [
              `netsh interface ${ipv} set interface "${lan}" weakhostreceive=enabled`,
              `netsh interface ${ipv} set interface "${loopback}" weakhostreceive=enabled`,
              `netsh interface ${ipv} set interface "${loopback}" weakhostsend=enabled`,
              ...(v6 ? [`netsh interface ipv6 set interface "${loopback}" dadtransmits=0`] : []),
            ]
          : [
              `Set-NetIpInterface -InterfaceAlias "${loopback}" -WeakHostReceive Enabled -WeakHostSend Enabled -DadTransmits 0 -AddressFamily IPv${v6 ? 6 : 4}`,
              `Set-NetIpInterface -InterfaceAlias "${lan}" -WeakHostReceive Enabled -AddressFamily IPv${v6 ? 6 : 4}`,
            ];
      return {
        method: req.method,
        title: `Windows Server 2012 and later: the VIP on the Microsoft Loopback Adapter, weak host model (${req.method === 'windows-netsh' ? 'netsh' : 'PowerShell'})`,
        commands: [...install, address, ...weakHost],
        persistent: ['# these settings persist across reboots'],
        notes: [
          'Adapter names are case sensitive: adjust "' + lan + '" and "' + loopback + '" (--lan-adapter, --loopback-adapter) to the real names.',
          'The weak host model lets the LAN adapter accept packets for the VIP held by the loopback adapter, and the loopback adapter send the replies.',
          'One loopback address per VIP the server serves.',
        ],
      };
    }
  }
}

/** The instructions as the command prints them. */
export function formatInstructions(req: RealServerRequest, instructions: RealServerInstructions): string {
  const who = req.member === undefined ? 'each member' : `member ${req.member}`;
  const lines = [
    `# ${instructions.title}`,
    `# VIP ${req.vip}, on ${who}${instructions.method.startsWith('windows') ? ' (as Administrator)' : ' (as root)'}:`,
    ...instructions.commands,
    '',
    '# Persistence:',
    ...instructions.persistent,
    '',
    ...instructions.notes.map((n) => `# Note: ${n}`),
  ];
  if (req.member !== undefined && isIP(req.vip) === 4) {
    lines.push(
      `# Check: from another host of the segment, "arping -c 3 ${req.vip}" must show one MAC only (the amphora's),`,
      `#        and "arping -c 1 ${req.member}" must still answer (the member's own address is unaffected).`,
    );
  }
  return `${lines.join('\n')}\n`;
}
