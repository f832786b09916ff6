import { spawn } from 'node:child_process';
import net from 'node:net';
import { sleep, type Resources } from './helpers.ts';

/**
 * A loopback port whose handshakes never complete: a stopped process listens on it with a one-slot
 * accept queue, which a few connections fill; the kernel then drops further SYNs, so connecting times out.
 */
export async function startBlackhole(resources: Resources): Promise<number> {
  const child = spawn(
    process.execPath,
    ['-e', "const s=require('net').createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>console.log(s.address().port));"],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  resources.add(() => {
    child.kill('SIGKILL');
  });
  const port = await new Promise<number>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  child.kill('SIGSTOP');
  const fillers: net.Socket[] = [];
  resources.add(() => fillers.forEach((s) => s.destroy()));
  for (let i = 0; i < 4; i++) {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('error', () => s.destroy());
    fillers.push(s);
  }
  await sleep(200);
  return port;
}
