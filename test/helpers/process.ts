// Runs the real `argonaut` command as a child process (for crash and restart tests).
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface ApiProcess {
  url: string;
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startApiProcess(dir: string, config: Record<string, unknown>, name = 'argonaut.yaml'): Promise<ApiProcess> {
  const port = (config as { api: { port: number } }).api.port;
  // Otherwise the new process fails to listen and whatever holds the port answers the polls below
  // (a port from freePort() may have been handed out again since).
  if (await portTaken(port)) throw new Error(`127.0.0.1:${port} is already taken: the argonaut process to start could not listen on it`);
  const file = join(dir, name);
  writeFileSync(file, stringify(config));
  const root = new URL('../..', import.meta.url).pathname;
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'bin/argonaut.ts'), 'api', '--config', file], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${url}/`);
      if (res.ok) break;
    } catch {
      /* not listening yet */
    }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`argonaut did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, child, output: () => out, exited };
}
