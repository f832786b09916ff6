import { parseArgs } from 'node:util';
import { formatInstructions, REALSERVER_METHODS, RealServerError, realServerInstructions, type RealServerMethod } from './realserver-commands.ts';

export const REALSERVER_HELP = `Usage: realserver --vip ADDRESS [--method METHOD] [options]

Prints the commands a member (real server) of a DIRECT_ROUTING listener must run so that it accepts
packets addressed to the VIP without answering ARP for it ("solving the ARP problem"). Nothing is run.

Options:
  --vip ADDRESS            The load balancer's VIP (required).
  --method METHOD          One of: ${REALSERVER_METHODS.join(', ')}
                           (default: every method, the preferred Linux one first).
                             arp-sysctl          VIP on lo, arp_ignore=1 / arp_announce=2 (preferred)
                             iptables            NAT REDIRECT of the VIP with iptables
                             nftables            NAT redirect of the VIP with nftables
                             firewalld           NAT REDIRECT of the VIP with firewall-cmd
                             windows-netsh       Loopback Adapter + weak host model, netsh
                             windows-powershell  Loopback Adapter + weak host model, PowerShell
  --member ADDRESS         The member's own address (shown, and used in the checks).
  --interface NAME         Linux: an interface facing the load balancer (repeatable; default eth0).
  --lan-adapter NAME       Windows: the LAN adapter's name (default "net").
  --loopback-adapter NAME  Windows: the loopback adapter's name (default "loopback").
  -h, --help               Show this help.

Exit status: 0, or 2 for bad arguments.
`;

export interface CliOutput {
  out(text: string): void;
  err(text: string): void;
}

/** The realserver command on `args` (without the command word); returns the exit status. */
export function runRealServerCli(args: string[], io: CliOutput): number {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        vip: { type: 'string' },
        method: { type: 'string' },
        member: { type: 'string' },
        interface: { type: 'string', multiple: true },
        'lan-adapter': { type: 'string' },
        'loopback-adapter': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }));
  } catch (err) {
    io.err(`realserver: ${(err as Error).message}\n\n${REALSERVER_HELP}`);
    return 2;
  }
  if (values.help) {
    io.out(REALSERVER_HELP);
    return 0;
  }
  if (values.vip === undefined) {
    io.err(`realserver: --vip ADDRESS is required\n\n${REALSERVER_HELP}`);
    return 2;
  }
  if (values.method !== undefined && !(REALSERVER_METHODS as readonly string[]).includes(values.method)) {
    io.err(`realserver: --method must be one of ${REALSERVER_METHODS.join(', ')}\n`);
    return 2;
  }
  const methods = values.method === undefined ? [...REALSERVER_METHODS] : [values.method as RealServerMethod];
  try {
    const texts = methods.map((method) => {
      const req = {
        vip: values.vip as string,
        method,
        member: values.member,
        interfaces: values.interface,
        lanAdapter: values['lan-adapter'],
        loopbackAdapter: values['loopback-adapter'],
      };
      return formatInstructions(req, realServerInstructions(req));
    });
    io.out(texts.join('\n'));
    return 0;
  } catch (err) {
    if (!(err instanceof RealServerError)) throw err;
    io.err(`realserver: ${err.message}\n`);
    return 2;
  }
}
