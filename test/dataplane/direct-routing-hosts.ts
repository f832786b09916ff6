// Hosts of the direct-routing end-to-end test (root): one L2 segment (a bridge in a namespace of its
// own, so nothing touches the host's interfaces), and processes in namespaces driven over their IPC
// channel: members that own the VIP on lo and answer with their name and the addresses they saw, and a
// client that opens TCP connections and sends UDP datagrams from a chosen source address.
import { spawn, type ChildProcess } from 'node:child_process';
import { realServerInstructions, type RealServerMethod } from '../../amphora/dataplane/directrouting/realserver-commands.ts';
import { addAddress, createNamespace, createVeth, deleteNamespace, ensureBridge, inNamespace, ip } from '../../driver/network/local/ip.ts';

/** A namespace with an eth0 plugged into `bridge` (in namespace `switchNs`) and the given addresses. */
export async function plugHost(opts: { switchNs: string; bridge: string; name: string; port: string; addresses: string[] }): Promise<void> {
  await createNamespace(opts.name);
  await createVeth({ netns: opts.switchNs, hostName: opts.port, bridge: opts.bridge, peerNamespace: opts.name, peerName: 'eth0' });
  for (const a of opts.addresses) await addAddress('eth0', a, { netns: opts.name });
}

export async function createSwitch(ns: string, bridge: string): Promise<void> {
  await createNamespace(ns);
  await ensureBridge(bridge, { netns: ns });
}

/** "Solving the ARP problem" in `ns` by running what `bin/argonaut-realserver.ts` prints for `method`. */
export async function makeRealServer(ns: string, vip: string, method: RealServerMethod): Promise<void> {
  const { commands } = realServerInstructions({ vip, method, interfaces: ['eth0'] });
  const cmd = inNamespace(ns, 'sh', ['-e', '-c', commands.join('\n')]);
  await run(cmd.command, cmd.args);
}

export async function macOf(ns: string, device = 'eth0'): Promise<string> {
  const [link] = JSON.parse(await ip(['-j', 'link', 'show', device], { netns: ns })) as { address: string }[];
  return link.address.toLowerCase();
}

export async function removeNamespaces(names: string[]): Promise<void> {
  for (const name of names) await deleteNamespace(name).catch(() => undefined);
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} ${args.join(' ')}: ${err.trim() || code}`))));
  });
}

/** Runs `command args` in `ns` and returns its stdout. */
export function runIn(ns: string, command: string, args: string[]): Promise<string> {
  const cmd = inNamespace(ns, command, args);
  return run(cmd.command, cmd.args);
}

const MEMBER = `
const net = require('node:net');
const dgram = require('node:dgram');
const [name, udpAddress, ports, healthPort] = process.argv.slice(1);
const plain = (a) => a.replace(/^::ffff:/, '');
// TCP on every address (the VIP on lo and its own): "<name> <client address> <address it was reached at>".
const answer = (s) => { s.on('error', () => {}); s.end(name + ' ' + plain(s.remoteAddress) + ' ' + plain(s.localAddress) + '\\n'); };
// UDP bound to the VIP where the member owns it, so that answers leave from the VIP (a wildcard socket
// would answer from eth0's address); with NAT redirect, to the wildcard (conntrack turns the source back).
const udp = dgram.createSocket('udp4');
udp.on('message', (msg, from) => udp.send(name + ' ' + from.address, from.port, from.address));
let health = null;
const healthUp = (done) => {
  health = net.createServer((s) => s.end());
  health.listen(Number(healthPort), '0.0.0.0', done);
};
process.on('message', (m) => {
  if (m === 'health-down' && health) health.close(() => { health = null; process.send('ok'); });
  else if (m === 'health-up' && !health) healthUp(() => process.send('ok'));
  else process.send('ok');
});
process.on('disconnect', () => process.exit(0));
const tcpPorts = ports.split(',').map(Number);
let listening = 0;
for (const port of tcpPorts) {
  net.createServer(answer).listen(port, '0.0.0.0', () => {
    if (++listening === tcpPorts.length) udp.bind(tcpPorts[0], udpAddress, () => healthUp(() => process.send('ready')));
  });
}
`;

const CLIENT = `
const net = require('node:net');
const dgram = require('node:dgram');
process.on('message', (m) => {
  let done = false;
  const finish = (error, data) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    process.send({ id: m.id, error, data });
  };
  const timer = setTimeout(() => finish('timeout'), m.timeoutMs);
  if (m.kind === 'tcp') {
    const s = net.connect({ host: m.host, port: m.port, localAddress: m.localAddress });
    let data = '';
    if (m.payload) s.on('connect', () => s.write(m.payload));
    s.on('data', (d) => (data += d));
    s.on('end', () => finish(null, { text: data.trim(), from: m.host }));
    s.on('error', (e) => finish(e.code || e.message));
  } else {
    const s = dgram.createSocket('udp4');
    s.on('error', (e) => { s.close(); finish(e.code || e.message); });
    s.on('message', (msg, from) => { s.close(); finish(null, { text: msg.toString(), from: from.address }); });
    s.bind(0, m.localAddress, () => s.send('hello', m.port, m.host));
  }
});
process.on('disconnect', () => process.exit(0));
process.send('ready');
`;

interface Driven {
  child: ChildProcess;
  stop(): Promise<void>;
}

async function startDriven(ns: string, script: string, args: string[]): Promise<Driven> {
  const cmd = inNamespace(ns, process.execPath, ['-e', script, ...args]);
  const child = spawn(cmd.command, cmd.args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code, signal) => reject(new Error(`process in ${ns} exited (${code ?? signal}): ${err.trim()}`)));
  });
  return {
    child,
    async stop() {
      if (child.connected) child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface DrMember {
  name: string;
  /** Closes or reopens its health-check port. */
  health(up: boolean): Promise<void>;
  stop(): Promise<void>;
}

/** TCP on every port of `tcpPorts`, UDP on the first one (bound to `udpAddress`), TCP health checks on `healthPort`. */
export async function startDrMember(ns: string, name: string, udpAddress: string, tcpPorts: number[], healthPort: number): Promise<DrMember> {
  const driven = await startDriven(ns, MEMBER, [name, udpAddress, tcpPorts.join(','), String(healthPort)]);
  return {
    name,
    health: (up) =>
      new Promise<void>((resolve) => {
        driven.child.once('message', () => resolve());
        driven.child.send(up ? 'health-up' : 'health-down');
      }),
    stop: () => driven.stop(),
  };
}

export interface Answer {
  /** What the member said: "<name> <client address as it saw it>[ <address it was reached at>]". */
  text: string;
  /** Where the answer came from (UDP: the datagram's source address). */
  from: string;
}

export interface DrClient {
  tcp(host: string, port: number, localAddress?: string): Promise<Answer>;
  /** GET `path` over HTTP/1.0; resolves with the whole response. */
  get(host: string, port: number, path: string): Promise<string>;
  udp(host: string, port: number, localAddress?: string): Promise<Answer>;
  stop(): Promise<void>;
}

export async function startDrClient(ns: string): Promise<DrClient> {
  const driven = await startDriven(ns, CLIENT, []);
  const pending = new Map<number, { resolve: (a: Answer) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  driven.child.on('message', (m: { id: number; error: string | null; data: Answer }) => {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error !== null) p?.reject(new Error(m.error));
    else p?.resolve(m.data);
  });
  const ask = (kind: 'tcp' | 'udp', host: string, port: number, localAddress?: string, payload?: string) =>
    new Promise<Answer>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      driven.child.send({ id, kind, host, port, localAddress, payload, timeoutMs: 3000 });
    });
  return {
    tcp: (host, port, localAddress) => ask('tcp', host, port, localAddress),
    udp: (host, port, localAddress) => ask('udp', host, port, localAddress),
    get: async (host, port, path) => (await ask('tcp', host, port, undefined, `GET ${path} HTTP/1.0\r\nHost: ${host}\r\n\r\n`)).text,
    stop: () => driven.stop(),
  };
}
