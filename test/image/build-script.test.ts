// amphora/image/build.sh without building (that is amphora-image.test.ts, opt-in): it is
// shellcheck-clean, documents itself, and refuses bad arguments before touching anything.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SCRIPT = path.join(ROOT, 'amphora/image/build.sh');

describe('amphora/image/build.sh', () => {
  it('is shellcheck-clean', (ctx) => {
    if (spawnSync('sh', ['-c', 'command -v shellcheck']).status !== 0) ctx.skip('shellcheck is not installed (Debian package shellcheck)');
    const r = spawnSync('shellcheck', [SCRIPT], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('prints its usage with --help and exits 0', () => {
    const r = spawnSync('bash', [SCRIPT, '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: amphora/image/build.sh');
    expect(r.stdout).toContain('argonaut-amphora-config-drive.service');
  });

  it.each([
    [['--bogus'], /unknown argument --bogus/],
    [['--format', 'vmdk'], /--format must be qcow2 or raw/],
  ])('refuses %j with exit 2', (args, message) => {
    const r = spawnSync('bash', [SCRIPT, ...args], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});
