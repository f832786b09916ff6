// The amphora's boot-time reader of the config drive (amphora/image/config-drive.ts and
// bin/argonaut-amphora-config-drive.ts): it must turn the user data the nova compute driver sends
// into the agent settings file the agent loads.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadAgentSettings } from '../../amphora/agent/settings.ts';
import { parseUserData, readUserData, USER_DATA_PATH, UserDataError, writeFiles } from '../../amphora/image/config-drive.ts';
import { agentSettings, DEFAULT_AGENT_SETTINGS_PATH, userData } from '../../driver/compute/nova-user-data.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const AMPHORA_ID = '3f4c2a8e-6d1b-4c9a-8e7f-0a1b2c3d4e5f';
const KEY = Buffer.alloc(32, 0xab);

/** The user data as Nova writes it on the config drive (the driver's base64 decoded). */
function driverUserData(): string {
  const settings = agentSettings({ messaging: { url: 'amqp://amphora:secret@127.0.0.1:5672', prefix: 'argonaut' }, heartbeatIntervalMs: 3000 }, AMPHORA_ID, KEY);
  return Buffer.from(userData(settings, DEFAULT_AGENT_SETTINGS_PATH), 'base64').toString('utf8');
}

describe('config drive user data', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'argonaut-config-drive-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the settings file the nova driver sends, mode 0600, and the agent loads it', async () => {
    const parsed = parseUserData(driverUserData());
    expect(parsed.ignoredKeys).toEqual([]);
    expect(parsed.files.map((f) => [f.path, f.mode.toString(8)])).toEqual([[DEFAULT_AGENT_SETTINGS_PATH, '600']]);
    const [written] = await writeFiles(parsed.files, dir);
    expect(written).toBe(path.join(dir, DEFAULT_AGENT_SETTINGS_PATH));
    expect((await stat(written!)).mode & 0o777).toBe(0o600);
    const settings = await loadAgentSettings(written!);
    expect(settings.amphoraId).toBe(AMPHORA_ID);
    expect(settings.key.equals(KEY)).toBe(true);
    expect(settings.heartbeatIntervalMs).toBe(3000);
    expect(settings.messaging.kind).toBe('amqp');
    if (settings.messaging.kind === 'amqp') {
      expect(settings.messaging.url).toBe('amqp://amphora:secret@127.0.0.1:5672');
      expect(settings.messaging.initialConnectTimeoutMs).toBeNull();
    }
  });

  it('decodes base64 content and reports the cloud-config keys it ignores', () => {
    const text = `#cloud-config\nruncmd: [reboot]\nwrite_files:\n  - path: /etc/x\n    encoding: b64\n    content: ${Buffer.from('hello\n').toString('base64')}\n    permissions: '0640'\n`;
    const parsed = parseUserData(text);
    expect(parsed.ignoredKeys).toEqual(['runcmd']);
    expect(parsed.files).toEqual([{ path: '/etc/x', content: Buffer.from('hello\n'), mode: 0o640 }]);
  });

  it.each([
    ['not a cloud-config', '#!/bin/sh\necho hi\n', /not a #cloud-config/],
    ['a relative path', '#cloud-config\nwrite_files: [{path: etc/x, content: a}]\n', /write_files\.0\.path/],
    ['a path climbing out', '#cloud-config\nwrite_files: [{path: /etc/../../x, content: a}]\n', /write_files\.0\.path/],
    ['gzip content', '#cloud-config\nwrite_files: [{path: /etc/x, content: a, encoding: gzip}]\n', /write_files\.0\.encoding/],
    ['another owner', '#cloud-config\nwrite_files: [{path: /etc/x, content: a, owner: "nobody:nogroup"}]\n', /write_files\.0\.owner/],
    ['a bad mode', '#cloud-config\nwrite_files: [{path: /etc/x, content: a, permissions: "rwx"}]\n', /write_files\.0\.permissions/],
    ['not YAML', '#cloud-config\nwrite_files: [\n', /not YAML/],
  ])('refuses %s', (_what, text, message) => {
    expect(() => parseUserData(text)).toThrow(UserDataError);
    expect(() => parseUserData(text)).toThrow(message);
  });

  it('reads the user data of an unpacked drive, and null when it has none', async () => {
    expect(await readUserData(dir)).toBeNull();
    await mkdir(path.join(dir, path.dirname(USER_DATA_PATH)), { recursive: true });
    await writeFile(path.join(dir, USER_DATA_PATH), 'x');
    expect(await readUserData(dir)).toBe('x');
  });

  it('the command writes the files from a drive folder, and exits 1 writing nothing for user data it cannot use', async () => {
    const drive = path.join(dir, 'drive');
    const root = path.join(dir, 'root');
    await mkdir(path.join(drive, path.dirname(USER_DATA_PATH)), { recursive: true });
    await writeFile(path.join(drive, USER_DATA_PATH), driverUserData());
    const cli = [process.execPath, '--import', 'tsx', path.join(ROOT, 'bin/argonaut-amphora-config-drive.ts')];
    const ok = await run(cli[0]!, [...cli.slice(1), '--dir', drive, '--root', root], { cwd: ROOT });
    expect(ok.stdout).toContain('config drive files written');
    expect(ok.stdout).not.toContain(KEY.toString('hex'));
    expect((await loadAgentSettings(path.join(root, DEFAULT_AGENT_SETTINGS_PATH))).amphoraId).toBe(AMPHORA_ID);

    const root2 = path.join(dir, 'root2');
    await writeFile(path.join(drive, USER_DATA_PATH), '#cloud-config\nwrite_files: [{path: /etc/a, content: a}, {path: rel, content: b}]\n');
    const bad = await run(cli[0]!, [...cli.slice(1), '--dir', drive, '--root', root2], { cwd: ROOT }).then(
      () => null,
      (err: { code: number; stdout: string }) => err,
    );
    expect(bad?.code).toBe(1);
    expect(bad?.stdout).toContain('the user data cannot be used');
    await expect(stat(path.join(root2, 'etc/a'))).rejects.toThrow(/ENOENT/);

    const help = await run(cli[0]!, [...cli.slice(1), '--help'], { cwd: ROOT });
    expect(help.stdout).toContain('Usage: argonaut-amphora-config-drive');
  });
});
