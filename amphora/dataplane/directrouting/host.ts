import { spawn } from 'node:child_process';

/** What direct routing needs from the amphora's host: nftables, iproute2 and arping. */
export interface DrHost {
  /** Null when nftables' netdev family with an ingress hook on `device` works here, else why not. */
  probeNetdev(device: string): Promise<string | null>;
  /** Interface holding `address` and its MAC, or null when no interface holds it. */
  interfaceOf(address: string): Promise<{ device: string; mac: string; loopback: boolean } | null>;
  /** The MAC of an interface. */
  macOf(device: string): Promise<string>;
  /** How the host reaches `address`: the device and the gateway (absent = on the link). */
  routeTo(address: string): Promise<{ device: string; gateway: string | null; local: boolean }>;
  /** The MAC answering for `address` on `device`, or undefined when nobody answers. */
  resolveMac(device: string, address: string): Promise<string | undefined>;
  /** Runs an nftables script; `check` only validates it against the kernel (nothing changes). */
  nft(script: string, check?: boolean): Promise<void>;
  /** Named counters of a table (empty when the table does not exist). */
  counters(table: string): Promise<Map<string, { packets: number; bytes: number }>>;
}

export class HostCommandError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
    readonly missing: boolean,
  ) {
    super(missing ? `${command}: command not found` : `${command} failed: ${stderr.trim() || 'no error output'}`);
  }
}

/** Runs a command (no shell), feeding `input` on stdin; rejects with its stderr. */
export function runCommand(command: string, args: string[], input?: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', (err: NodeJS.ErrnoException) => reject(new HostCommandError(command, err.message, err.code === 'ENOENT')));
    child.on('close', (code, signal) => {
      if (code === 0) resolve(stdout);
      else reject(new HostCommandError(`${command} ${args.join(' ')}`, stderr || `exit ${code ?? signal}`, false));
    });
    child.stdin.on('error', () => {}); // the command may exit before reading its input
    child.stdin.end(input ?? '');
  });
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export const systemHost: DrHost = {
  async probeNetdev(device) {
    const probe = `table netdev argonaut_probe {\n  chain probe {\n    type filter hook ingress device "${device}" priority 0; policy accept;\n    ether type ip counter\n  }\n}\n`;
    try {
      await runCommand('nft', ['-c', '-f', '-'], probe);
      return null;
    } catch (err) {
      if (err instanceof HostCommandError && err.missing) return 'the nft command is missing (Debian package nftables)';
      return `nftables' netdev family (ingress hook) does not work on this kernel or without CAP_NET_ADMIN: ${(err as Error).message}`;
    }
  },

  async interfaceOf(address) {
    type Raw = { ifname: string; address?: string; link_type?: string; addr_info?: { local?: string }[] };
    const links = JSON.parse((await runCommand('ip', ['-j', 'addr', 'show'])) || '[]') as Raw[];
    const link = links.find((l) => l.addr_info?.some((a) => a.local === address));
    if (link === undefined || link.address === undefined) return null;
    return { device: link.ifname, mac: link.address.toLowerCase(), loopback: link.link_type === 'loopback' };
  },

  async macOf(device) {
    const [link] = JSON.parse((await runCommand('ip', ['-j', 'link', 'show', 'dev', device])) || '[]') as { address?: string }[];
    if (link?.address === undefined) throw new Error(`interface ${device} has no MAC address`);
    return link.address.toLowerCase();
  },

  async routeTo(address) {
    type Raw = { dev: string; gateway?: string; type?: string };
    const [route] = JSON.parse((await runCommand('ip', ['-j', 'route', 'get', address])) || '[]') as Raw[];
    if (route === undefined) throw new Error(`no route to ${address}`);
    return { device: route.dev, gateway: route.gateway ?? null, local: route.type === 'local' };
  },

  async resolveMac(device, address) {
    // arping asks on the wire (a packet socket: the neighbour table is not filled); without it, take
    // what the kernel learnt, e.g. from health checks.
    try {
      const out = await runCommand('arping', ['-c', '1', '-w', '1', '-I', device, address], undefined, 5_000);
      const mac = /\[([0-9A-Fa-f:]{17})\]/.exec(out)?.[1]?.toLowerCase();
      if (mac !== undefined && MAC.test(mac)) return mac;
    } catch (err) {
      if (!(err instanceof HostCommandError && err.missing)) return undefined; // no answer
    }
    type Raw = { lladdr?: string; state?: string[] };
    const [entry] = JSON.parse((await runCommand('ip', ['-j', 'neigh', 'show', address, 'dev', device])) || '[]') as Raw[];
    const mac = entry?.lladdr?.toLowerCase();
    return mac !== undefined && MAC.test(mac) && !entry.state?.includes('FAILED') ? mac : undefined;
  },

  async nft(script, check = false) {
    await runCommand('nft', check ? ['-c', '-f', '-'] : ['-f', '-'], script);
  },

  async counters(table) {
    type Raw = { nftables: { counter?: { name: string; table: string; packets: number; bytes: number } }[] };
    let out: string;
    try {
      out = await runCommand('nft', ['-j', 'list', 'counters', 'table', 'netdev', table]);
    } catch (err) {
      if (err instanceof HostCommandError && /No such file or directory/.test(err.stderr)) return new Map();
      throw err;
    }
    const result = new Map<string, { packets: number; bytes: number }>();
    for (const item of (JSON.parse(out) as Raw).nftables) {
      if (item.counter !== undefined) result.set(item.counter.name, { packets: item.counter.packets, bytes: item.counter.bytes });
    }
    return result;
  },
};
