// Tiny TCP servers and clients run inside network namespaces (`ip netns exec`), for the tests of
// the local network plumbing and the netns compute driver. Root only.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { inNamespace } from '../../../driver/network/local/ip.ts';

const run = promisify(execFile);

export const IS_ROOT = process.getuid?.() === 0;

/** A test prefix of its own per run, so concurrent test files never remove each other's resources. */
export function testPrefix(letter: string): string {
  return `${letter}${randomBytes(3).toString('hex').slice(0, 4)}`;
}

const SERVER = `
const net = require('node:net');
const [host, port, reply] = process.argv.slice(1);
net.createServer((s) => { s.on('error', () => {}); s.end(reply + ' ' + s.remoteAddress); })
  .listen(Number(port), host, () => console.log('ready'));
`;

const CLIENT = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port), timeout: 2000 });
let data = '';
s.on('data', (d) => (data += d));
s.on('end', () => { console.log(data); process.exit(0); });
s.on('timeout', () => { console.error('timeout'); process.exit(3); });
s.on('error', (e) => { console.error(e.code || e.message); process.exit(2); });
`;

export interface TestServer {
  child: ChildProcess;
  stop(): Promise<void>;
}

/** A TCP server in a namespace answering "<reply> <client address>" and closing. */
export async function startServerIn(ns: string, host: string, port: number, reply: string): Promise<TestServer> {
  const cmd = inNamespace(ns, process.execPath, ['-e', SERVER, host, String(port), reply]);
  const child = spawn(cmd.command, cmd.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    child.once('exit', (code) => reject(new Error(`server in ${ns} exited (${code}): ${err}`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Connects from a namespace; resolves with what the server said, rejects with the client's error. */
export async function requestFrom(ns: string, host: string, port: number): Promise<string> {
  const cmd = inNamespace(ns, process.execPath, ['-e', CLIENT, host, String(port)]);
  try {
    const { stdout } = await run(cmd.command, cmd.args, { timeout: 10_000 });
    return stdout.trim();
  } catch (err) {
    const e = err as { stderr?: string; code?: number };
    throw new Error(`connect from ${ns} to ${host}:${port} failed (${e.code}): ${(e.stderr ?? '').trim()}`);
  }
}
