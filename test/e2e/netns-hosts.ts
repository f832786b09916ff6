// "Other hosts" for the end-to-end test on the netns drivers (root): network namespaces plugged
// into the local network driver's bridge, member servers (HTTP and TCP) run in them, and a client
// process in a namespace of its own that sends requests on behalf of the test, each on a new
// connection, over its IPC channel (one long-running process: no Node start-up per request).
import { spawn, type ChildProcess } from 'node:child_process';
import { addAddress, createNamespace, createVeth, inNamespace } from '../../driver/network/local/ip.ts';
import { AMPHORA_INTERFACE } from '../../driver/network/local/names.ts';

/**
 * A namespace `<name>` whose eth0 (address `address/prefixLength`) is plugged into `bridge` (on
 * the host) by a veth whose host end is `hostVeth`. Named with the network driver's prefix and with
 * an eth0 like an amphora's, its address is also never picked as an amphora management address
 * (AmphoraNetwork skips the addresses of its prefix's namespaces), and cleanupLocalNetwork(prefix)
 * removes it.
 */
export async function plugHost(opts: { name: string; hostVeth: string; bridge: string; address: string; prefixLength: number }): Promise<void> {
  await createNamespace(opts.name);
  await createVeth({ hostName: opts.hostVeth, bridge: opts.bridge, peerNamespace: opts.name, peerName: AMPHORA_INTERFACE });
  await addAddress(AMPHORA_INTERFACE, `${opts.address}/${opts.prefixLength}`, { netns: opts.name });
}

const SERVER = `
const http = require('node:http');
const net = require('node:net');
const [kind, host, port, name] = process.argv.slice(1);
const onListen = () => console.log('ready');
if (kind === 'http') {
  http.createServer((req, res) => {
    res.setHeader('Content-Type', 'text/plain');
    res.end(req.url === '/healthz' ? 'ok' : name);
  }).listen(Number(port), host, onListen);
} else {
  // Reads one line, answers "<name> <bytes of the line>" and closes.
  net.createServer((s) => {
    s.on('error', () => {});
    let got = '';
    s.on('data', (d) => {
      got += d;
      const eol = got.indexOf('\\n');
      if (eol >= 0) s.end(name + ' ' + (eol + 1) + '\\n');
    });
  }).listen(Number(port), host, onListen);
}
`;

export interface MemberProcess {
  readonly name: string;
  readonly pid: number;
  /** SIGKILL, and wait until it has exited. */
  kill(): Promise<void>;
  running(): boolean;
}

/** A node script started in a namespace, once it has printed "ready". */
export interface ReadyProcess {
  readonly pid: number;
  /** SIGKILL, and wait until it has exited. */
  kill(): Promise<void>;
  running(): boolean;
}

/** Runs `node -e script ...args` in `ns` and waits for its "ready" line; `label` names it when it exits first. */
export async function startReadyScript(ns: string, script: string, args: string[], label: string): Promise<ReadyProcess> {
  const cmd = inNamespace(ns, process.execPath, ['-e', script, ...args]);
  const child = spawn(cmd.command, cmd.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.once('exit', (code, signal) => reject(new Error(`${label} exited (${code ?? signal}): ${err.trim()}`)));
    child.once('error', reject);
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    pid: child.pid!,
    running,
    async kill() {
      if (running()) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** An HTTP server (answers its name, "ok" on /healthz) or a TCP server (answers "<name> <bytes>" to a line) in a namespace. */
export async function startMember(ns: string, kind: 'http' | 'tcp', host: string, port: number, name: string): Promise<MemberProcess> {
  const p = await startReadyScript(ns, SERVER, [kind, host, String(port), name], `${kind} server ${name} in ${ns}`);
  return { name, pid: p.pid, running: () => p.running(), kill: () => p.kill() };
}

const CLIENT = `
const net = require('node:net');
process.on('message', (m) => {
  const started = Date.now();
  const s = net.connect({ host: m.host, port: m.port, ...(m.localAddress ? { localAddress: m.localAddress } : {}) });
  const chunks = [];
  let done = false;
  const finish = (error) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    s.destroy();
    process.send({ id: m.id, error: error ? String(error.code || error.message || error) : null, data: Buffer.concat(chunks).toString('latin1'),
      bytesWritten: s.bytesWritten, bytesRead: s.bytesRead, ms: Date.now() - started });
  };
  const timer = setTimeout(() => finish(new Error('timeout')), m.timeoutMs);
  s.on('connect', () => s.write(m.payload));
  s.on('data', (d) => chunks.push(d));
  s.on('end', () => finish(null));
  s.on('error', (e) => finish(e));
});
process.on('disconnect', () => process.exit(0));
process.send({ ready: true });
`;

export interface Exchange {
  /** What the server sent (latin1). */
  data: string;
  bytesWritten: number;
  bytesRead: number;
  ms: number;
}

export interface ClientProcess {
  /** Connects (from `localAddress` when given), sends `payload`, returns what came back until the server closed; rejects on error or timeout. */
  exchange(host: string, port: number, payload: string, timeoutMs?: number, localAddress?: string): Promise<Exchange>;
  /** `GET path` with `Connection: close` on a connection of its own; resolves with the status, the body and the byte counts. */
  get(host: string, port: number, path?: string, timeoutMs?: number, localAddress?: string): Promise<Exchange & { status: number; body: string }>;
  stop(): Promise<void>;
}

/** A client process in a namespace, driven over its IPC channel (which `ip netns exec` passes on). */
export async function startClient(ns: string): Promise<ClientProcess> {
  const cmd = inNamespace(ns, process.execPath, ['-e', CLIENT]);
  const child: ChildProcess = spawn(cmd.command, cmd.args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pending = new Map<number, { resolve: (e: Exchange) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code, signal) => reject(new Error(`client in ${ns} exited (${code ?? signal}): ${err.trim()}`)));
    child.once('error', reject);
  });
  child.on('message', (m: { id?: number; error: string | null } & Exchange) => {
    const p = m.id === undefined ? undefined : pending.get(m.id);
    if (!p) return;
    pending.delete(m.id!);
    if (m.error) p.reject(new Error(`${m.error} after ${m.ms} ms`));
    else p.resolve({ data: m.data, bytesWritten: m.bytesWritten, bytesRead: m.bytesRead, ms: m.ms });
  });
  child.once('exit', () => {
    for (const p of pending.values()) p.reject(new Error(`client in ${ns} exited: ${err.trim()}`));
    pending.clear();
  });
  const exchange = (host: string, port: number, payload: string, timeoutMs = 5000, localAddress?: string) =>
    new Promise<Exchange>((resolve, reject) => {
      if (!child.connected) return reject(new Error(`client in ${ns} is gone`));
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ id, host, port, payload, timeoutMs, localAddress });
    });
  return {
    exchange,
    async get(host, port, path = '/', timeoutMs = 5000, localAddress?: string) {
      const e = await exchange(host, port, `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: close\r\n\r\n`, timeoutMs, localAddress);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(e.data);
      const sep = e.data.indexOf('\r\n\r\n');
      if (!m || sep < 0) throw new Error(`not an HTTP response: ${JSON.stringify(e.data.slice(0, 200))}`);
      return { ...e, status: Number(m[1]), body: e.data.slice(sep + 4) };
    },
    async stop() {
      if (child.connected) child.disconnect();
      if (child.exitCode === null && child.signalCode === null) {
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
