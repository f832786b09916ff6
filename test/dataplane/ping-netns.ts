import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * Runs ping-netns-child.ts in a fresh network namespace (only its own loopback), where it may switch
 * ICMP echo replies off and on without touching the host, and returns the member states it observed.
 */
export function runPingScenario(): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', ['-n', process.execPath, '--import', 'tsx', path.join(here, 'ping-netns-child.ts')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`ping scenario failed (${code}): ${err}${out}`));
      resolve(JSON.parse(line) as string[]);
    });
  });
}
