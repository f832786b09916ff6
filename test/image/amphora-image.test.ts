// The amphora image (amphora/image/build.sh) builds here and boots under qemu (TCG, no KVM needed,
// no network: -nic none) with a config drive made as Nova makes it from the nova driver's user data,
// to a running agent: the serial console shows the settings written from the drive, the agent
// starting as that amphora and retrying RabbitMQ (unreachable in the VM) instead of crashing, and,
// after an ACPI power-off, the agent stopping cleanly on SIGTERM.
//
// Opt-in (minutes): ARGONAUT_IMAGE_TEST=1 npx vitest run test/image/amphora-image.test.ts
// The serial console is kept in <out>/amphora-image-test.console.log (var/image by default).
// Needs root and the Debian packages debootstrap, qemu-system-x86, qemu-utils, xorriso, syslinux,
// syslinux-common, mtools, dosfstools, fdisk. The build is reused while its inputs are unchanged
// (amphora/image/build.sh --help: ARGONAUT_IMAGE_OUT, ARGONAUT_IMAGE_CACHE).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentSettings, DEFAULT_AGENT_SETTINGS_PATH, userData } from '../../driver/compute/nova-user-data.ts';
import { GiveUp, waitFor } from '../helpers/wait.ts';

const run = promisify(execFile);
const ENABLED = process.env.ARGONAUT_IMAGE_TEST === '1';
const ROOT = path.resolve(import.meta.dirname, '../..');
const OUT = process.env.ARGONAUT_IMAGE_OUT ?? path.join(ROOT, 'var/image');
const IMAGE = path.join(OUT, 'argonaut-amphora.qcow2');
const CONSOLE_LOG = path.join(OUT, 'amphora-image-test.console.log');
const AMPHORA_ID = '7c1e9f20-5b3a-4d6e-9f80-1a2b3c4d5e6f';
const KEY = Buffer.alloc(32, 0x5a);
/** Inside the VM nothing listens there: the agent must keep retrying. Loopback: no traffic leaves. */
const BROKER_URL = 'amqp://amphora:not-a-real-password@127.0.0.1:5672';
const BUILD_TIMEOUT_MS = 40 * 60_000;
const BOOT_TIMEOUT_MS = 15 * 60_000;

if (!ENABLED) console.log('amphora image test skipped: it builds and boots a VM (minutes); set ARGONAUT_IMAGE_TEST=1 to run it');

interface LogEvent {
  name?: string;
  msg?: string;
  [key: string]: unknown;
}

/** The JSON log events (pino lines) among the console's lines. */
function events(consoleText: string): LogEvent[] {
  const found: LogEvent[] = [];
  for (const line of consoleText.split(/\r?\n/)) {
    const start = line.indexOf('{"level"');
    if (start < 0) continue;
    try {
      found.push(JSON.parse(line.slice(start)) as LogEvent);
    } catch {
      // a line cut by kernel messages on the same console: not an event
    }
  }
  return found;
}

/** CPU time qemu used so far (ms): what the boot costs on an idle machine, whatever the load here. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in USER_HZ (100)
}

/** Sends QMP commands (after the capabilities handshake) to qemu's socket. */
async function qmp(socket: string, commands: string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const conn = connect(socket);
    const queue = ['qmp_capabilities', ...commands];
    let buffer = '';
    conn.on('data', (chunk) => {
      buffer += chunk.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const message = JSON.parse(buffer.slice(0, nl)) as { QMP?: unknown; return?: unknown; error?: { desc: string } };
        buffer = buffer.slice(nl + 1);
        if (message.error) return reject(new Error(`QMP: ${message.error.desc}`));
        if (message.QMP === undefined && message.return === undefined) continue; // an event
        const next = queue.shift();
        if (next === undefined) {
          conn.end();
          return resolve();
        }
        conn.write(`${JSON.stringify({ execute: next })}\n`);
      }
    });
    conn.on('error', reject);
  });
}

describe.skipIf(!ENABLED)('amphora image', () => {
  let work: string;
  let qemu: ChildProcess | undefined;
  let qemuExit: Promise<number | string> | undefined;
  let consoleText = '';
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'argonaut-image-test-'));
    const started = Date.now();
    const build = await run('bash', [path.join(ROOT, 'amphora/image/build.sh'), '--out', OUT], { cwd: ROOT, maxBuffer: 16 << 20 });
    timings.buildMs = Date.now() - started;
    console.log(build.stdout);
  }, BUILD_TIMEOUT_MS);

  afterAll(async () => {
    if (qemu && qemu.exitCode === null && qemu.signalCode === null) {
      qemu.kill('SIGKILL');
      await qemuExit;
    }
    if (work) await rm(work, { recursive: true, force: true });
    console.log(`amphora image test timings (ms): ${JSON.stringify(timings)}`);
  });

  it(
    'boots with a Nova-style config drive to a running agent that retries RabbitMQ, and stops it cleanly on power-off',
    async () => {
      // The config drive as Nova writes it: ISO 9660, label config-2, the user data decoded.
      const settings = agentSettings({ messaging: { url: BROKER_URL, prefix: 'argonaut' }, heartbeatIntervalMs: 10_000 }, AMPHORA_ID, KEY);
      const drive = path.join(work, 'drive');
      await mkdir(path.join(drive, 'openstack/latest'), { recursive: true });
      await writeFile(path.join(drive, 'openstack/latest/user_data'), Buffer.from(userData(settings, DEFAULT_AGENT_SETTINGS_PATH), 'base64'));
      await writeFile(path.join(drive, 'openstack/latest/meta_data.json'), JSON.stringify({ uuid: AMPHORA_ID, name: `amphora-${AMPHORA_ID}`, hostname: 'amphora' }));
      const iso = path.join(work, 'config-drive.iso');
      await run('xorriso', ['-as', 'mkisofs', '-quiet', '-J', '-r', '-V', 'config-2', '-o', iso, drive]);
      // The built image stays pristine: the VM writes to an overlay.
      const disk = path.join(work, 'disk.qcow2');
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', IMAGE, disk]);

      const qmpSocket = path.join(work, 'qmp.sock');
      const bootStarted = Date.now();
      qemu = spawn(
        'qemu-system-x86_64',
        [
          '-machine', 'pc,accel=tcg', '-cpu', 'max', '-smp', '1', '-m', '1024',
          '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-qmp', `unix:${qmpSocket},server=on,wait=off`,
          '-nic', 'none', '-no-reboot',
          '-drive', `file=${disk},if=virtio,format=qcow2`,
          '-drive', `file=${iso},media=cdrom,if=ide,readonly=on`,
        ],
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      qemuExit = new Promise((resolve) => qemu!.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
      // Also kept in a file, to read while the VM boots and after a failure.
      const consoleLog = createWriteStream(CONSOLE_LOG);
      qemu.stdout!.on('data', (d: Buffer) => {
        consoleText += d.toString('latin1');
        consoleLog.write(d);
      });
      qemu.stderr!.on('data', (d: Buffer) => {
        consoleText += `[qemu stderr] ${d.toString()}`;
        consoleLog.write(`[qemu stderr] ${d.toString()}`);
      });
      qemu.once('exit', () => consoleLog.end());
      const onConsole = <T>(what: string, probe: (e: LogEvent[]) => T | undefined) =>
        waitFor(
          what,
          async () => {
            const found = probe(events(consoleText));
            if (found === undefined && qemu!.exitCode !== null) throw new GiveUp(`qemu exited ${qemu!.exitCode}`);
            return found;
          },
          BOOT_TIMEOUT_MS,
          500,
        ).catch((err: Error) => {
          throw new Error(`${err.message}\n--- console (end) ---\n${consoleText.slice(-6000)}`);
        });

      const written = await onConsole('the settings written from the config drive', (e) => e.find((x) => x.msg === 'config drive files written'));
      timings.settingsWrittenMs = Date.now() - bootStarted;
      expect(written.name).toBe('argonaut-amphora-config-drive');
      expect(written.files).toEqual([{ path: DEFAULT_AGENT_SETTINGS_PATH, mode: '600' }]);

      const starting = await onConsole('the agent starting', (e) => e.find((x) => x.msg === 'amphora agent starting'));
      timings.agentStartingMs = Date.now() - bootStarted;
      timings.qemuCpuMsAtAgentStart = cpuMs(qemu.pid!);
      expect(starting.name).toBe('argonaut-amphora');
      expect(starting.amphoraId).toBe(AMPHORA_ID);

      // It keeps retrying the broker (initialConnectTimeoutMs null) rather than exiting.
      const retry = await onConsole('the agent retrying RabbitMQ a second time', (e) =>
        e.find((x) => x.msg === 'cannot connect to RabbitMQ; retrying' && (x.attempt as number) >= 2),
      );
      timings.secondRetryMs = Date.now() - bootStarted;
      expect(retry.amphoraId).toBe(AMPHORA_ID);
      expect(String(retry.url)).toContain('127.0.0.1:5672');
      expect(consoleText).not.toContain('not-a-real-password');
      expect(consoleText).not.toContain(KEY.toString('hex'));
      expect(events(consoleText).filter((x) => x.msg === 'amphora agent starting')).toHaveLength(1); // never restarted
      expect(consoleText).not.toMatch(/amphora agent failed to start|uncaught exception|unhandled promise rejection/);
      expect(consoleText).not.toMatch(/ login: /); // no getty on the console

      // ACPI power-off: systemd stops the agent with SIGTERM, then the VM powers off.
      const powerOff = Date.now();
      await qmp(qmpSocket, ['system_powerdown']);
      const stopped = await onConsole('the agent stopped', (e) => e.find((x) => x.msg === 'amphora agent stopped'));
      expect(stopped.reason).toBe('SIGTERM');
      expect(stopped.clean).toBe(true);
      const exit = await Promise.race([qemuExit, new Promise((r) => setTimeout(() => r('timeout'), 180_000))]);
      timings.powerOffMs = Date.now() - powerOff;
      expect(exit).toBe(0);
    },
    BOOT_TIMEOUT_MS + 5 * 60_000,
  );
});
