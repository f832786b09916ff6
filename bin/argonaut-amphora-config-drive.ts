#!/usr/bin/env -S npx tsx
// At an amphora's boot: writes the agent settings from the config drive (amphora/image/config-drive.ts).
import { parseArgs } from 'node:util';
import {
  CONFIG_DRIVE_DEVICES,
  findDevice,
  parseUserData,
  readUserData,
  USER_DATA_PATH,
  UserDataError,
  withMountedDrive,
  writeFiles,
} from '../amphora/image/config-drive.ts';
import { createLogger } from '../common/logging.ts';

const HELP = `argonaut-amphora-config-drive: writes the files of the config drive's #cloud-config user data

Run once at an amphora's boot (argonaut-amphora-config-drive.service), before the agent: the nova
compute driver boots each amphora with a config drive whose user data writes the agent settings
(write_files). Mounts the drive (label config-2) read-only, reads ${USER_DATA_PATH} and writes each
file with its permissions, owned by root. Only write_files with plain or base64 content and root
ownership is understood; other cloud-config keys are logged and ignored.

Usage: argonaut-amphora-config-drive [--device DEV | --dir DIR] [--root DIR] [--wait-ms MS]

Options:
  --device DEV   The config drive (default: the first of ${CONFIG_DRIVE_DEVICES.join(', ')}).
  --dir DIR      Read a config drive already mounted or unpacked at DIR instead of mounting one.
  --root DIR     Write the files under DIR instead of / (for tests).
  --wait-ms MS   How long to wait for the device to appear (default: 30000).
  -h, --help     Show this help.

Logs: pino JSON lines on stdout (paths and modes, never file contents).
Exit status: 0 when the files were written, 1 when there is no config drive, no user data, or the
user data cannot be used (nothing is written then), 2 for bad arguments.
`;

interface Args {
  device?: string;
  dir?: string;
  root: string;
  waitMs: number;
}

function readArgs(argv: string[]): Args | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      device: { type: 'string' },
      dir: { type: 'string' },
      root: { type: 'string', default: '/' },
      'wait-ms': { type: 'string', default: '30000' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return null;
  if (values.device !== undefined && values.dir !== undefined) throw new Error('give at most one of --device and --dir');
  const waitMs = Number(values['wait-ms']);
  if (!Number.isInteger(waitMs) || waitMs < 0) throw new Error('--wait-ms must be a whole number of milliseconds');
  return { device: values.device, dir: values.dir, root: values.root, waitMs };
}

async function main(): Promise<number> {
  let args: Args | null;
  try {
    args = readArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`argonaut-amphora-config-drive: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (args === null) {
    process.stdout.write(HELP);
    return 0;
  }
  const log = createLogger('argonaut-amphora-config-drive');

  const apply = async (dir: string, source: string): Promise<number> => {
    const text = await readUserData(dir);
    if (text === null) {
      log.error({ source, file: USER_DATA_PATH }, 'the config drive has no user data: no agent settings');
      return 1;
    }
    let parsed;
    try {
      parsed = parseUserData(text);
    } catch (err) {
      if (!(err instanceof UserDataError)) throw err;
      log.error({ source, reason: err.message }, 'the user data cannot be used: nothing written');
      return 1;
    }
    if (parsed.ignoredKeys.length > 0) log.warn({ keys: parsed.ignoredKeys }, 'cloud-config keys ignored (only write_files is understood)');
    const written = await writeFiles(parsed.files, args.root);
    log.info({ source, files: parsed.files.map((f) => ({ path: f.path, mode: f.mode.toString(8) })), written: written.length }, 'config drive files written');
    return 0;
  };

  if (args.dir !== undefined) return apply(args.dir, args.dir);
  const device = await findDevice(args.device ? [args.device] : CONFIG_DRIVE_DEVICES, args.waitMs);
  if (device === null) {
    log.error({ devices: args.device ?? CONFIG_DRIVE_DEVICES, waitMs: args.waitMs }, 'no config drive: no agent settings');
    return 1;
  }
  log.info({ device }, 'reading the config drive');
  return withMountedDrive(device, (dir) => apply(dir, device));
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`argonaut-amphora-config-drive: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
