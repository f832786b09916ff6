// At an amphora's boot: the files of the config drive's #cloud-config user data (write_files), which
// is how the nova compute driver delivers the agent settings (driver/compute/nova-user-data.ts).
// A small stand-in for cloud-init, which the image does not carry: only write_files with plain or
// base64 content and root ownership is understood; any other cloud-config key is reported and
// ignored, and anything else in write_files is refused whole, before a file is written.
import { execFile } from 'node:child_process';
import { access, chmod, chown, mkdir, mkdtemp, readFile, rename, rmdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

const run = promisify(execFile);

/** Where Nova's config drive shows up (label config-2; Nova writes ISO 9660 or VFAT, which upper-cases it). */
export const CONFIG_DRIVE_DEVICES = ['/dev/disk/by-label/config-2', '/dev/disk/by-label/CONFIG-2'];
/** The user data on the drive (the latest metadata version). */
export const USER_DATA_PATH = 'openstack/latest/user_data';

const writeFileSchema = z.strictObject({
  path: z
    .string()
    .refine((p) => path.posix.isAbsolute(p) && path.posix.normalize(p) === p && !p.endsWith('/'), 'must be an absolute, normalized file path'),
  content: z.string().default(''),
  encoding: z.enum(['text/plain', 'b64', 'base64']).default('text/plain'),
  permissions: z
    .string()
    .regex(/^0?[0-7]{3,4}$/, 'must be an octal mode such as 0600')
    .default('0644'),
  owner: z.enum(['root', 'root:root']).default('root:root'),
});

const cloudConfigSchema = z.looseObject({ write_files: z.array(writeFileSchema).default([]) });

export interface FileToWrite {
  path: string;
  content: Buffer;
  mode: number;
}

export interface ParsedUserData {
  files: FileToWrite[];
  /** Cloud-config keys this reader does not act on. */
  ignoredKeys: string[];
}

export class UserDataError extends Error {
  override name = 'UserDataError';
}

/** Parses #cloud-config user data; throws UserDataError listing every problem (never file contents). */
export function parseUserData(text: string): ParsedUserData {
  if (!/^#cloud-config[ \t]*\r?\n/.test(text)) throw new UserDataError('the user data is not a #cloud-config document');
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (err) {
    throw new UserDataError(`the user data is not YAML: ${(err as Error).message}`);
  }
  const parsed = cloudConfigSchema.safeParse(document ?? {});
  if (!parsed.success) {
    throw new UserDataError(`unsupported cloud-config: ${parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  const files = parsed.data.write_files.map((f) => ({
    path: f.path,
    content: f.encoding === 'text/plain' ? Buffer.from(f.content, 'utf8') : Buffer.from(f.content, 'base64'),
    mode: Number.parseInt(f.permissions, 8),
  }));
  return { files, ignoredKeys: Object.keys(parsed.data).filter((k) => k !== 'write_files') };
}

/**
 * Writes each file under `root` (normally /) with its mode, owned by root; a file is written to a
 * temporary name first, so an amphora never sees half a settings file.
 */
export async function writeFiles(files: FileToWrite[], root = '/'): Promise<string[]> {
  const written: string[] = [];
  for (const file of files) {
    const target = path.join(root, file.path);
    await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
    const temporary = `${target}.config-drive-${process.pid}`;
    await writeFile(temporary, file.content, { mode: file.mode });
    await chmod(temporary, file.mode);
    if (process.getuid?.() === 0) await chown(temporary, 0, 0);
    await rename(temporary, target);
    written.push(target);
  }
  return written;
}

/** The user data of a mounted (or unpacked) config drive; null when the drive has none. */
export async function readUserData(driveDir: string): Promise<string | null> {
  try {
    return await readFile(path.join(driveDir, USER_DATA_PATH), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** The first of the devices that exists, waiting up to waitMs for udev to create it; null if none came. */
export async function findDevice(devices: string[], waitMs: number, pollMs = 500): Promise<string | null> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    for (const device of devices) {
      if (await access(device).then(() => true, () => false)) return device;
    }
    if (Date.now() >= deadline) return null;
    await sleep(Math.min(pollMs, Math.max(1, deadline - Date.now())));
  }
}

/** Mounts the device read-only on a temporary folder for the time of `use`. */
export async function withMountedDrive<T>(device: string, use: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'config-drive-'));
  try {
    await run('mount', ['-o', 'ro', device, dir]);
    try {
      return await use(dir);
    } finally {
      await run('umount', [dir]);
    }
  } finally {
    await rmdir(dir);
  }
}
