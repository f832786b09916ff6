// The agent's settings document and the command line of bin/argonaut-amphora.ts.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { AgentSettingsError, loadAgentSettings, resolveAgentSettings } from '../../amphora/agent/settings.ts';
import { deriveAmphoraKey } from '../../common/transport/index.ts';
import { MASTER_KEY, uuid } from './helpers.ts';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
const dir = mkdtempSync(path.join(tmpdir(), 'argonaut-agent-settings-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function issuesOf(document: unknown): Promise<string[]> {
  try {
    await resolveAgentSettings(document, 'test', dir);
  } catch (err) {
    if (err instanceof AgentSettingsError) return err.issues;
    throw err;
  }
  throw new Error('the settings were accepted');
}

describe('agent settings', () => {
  const amphoraId = uuid();
  const keyHex = deriveAmphoraKey(MASTER_KEY, amphoraId).toString('hex');

  it('fills every default and decodes the key', async () => {
    const s = await resolveAgentSettings({ amphoraId, key: keyHex }, 'test', dir);
    expect(s.key.equals(deriveAmphoraKey(MASTER_KEY, amphoraId))).toBe(true);
    expect(s).toMatchObject({
      amphoraId,
      heartbeatIntervalMs: 10_000,
      configFetch: { timeoutMs: 5000, initialDelayMs: 500, maxDelayMs: 30_000, factor: 2, jitter: 0.2 },
      reconnectCheckMs: 250,
      dataplane: { workers: availableParallelism(), drainTimeoutMs: 30_000 },
      logLevel: 'info',
    });
    // The transport's defaults, except that an amphora never gives up connecting.
    expect(s.messaging).toMatchObject({ url: 'amqp://guest:guest@127.0.0.1:5672/', prefix: 'argonaut', initialConnectTimeoutMs: null, drainTimeoutMs: 10_000 });
    const given = await resolveAgentSettings({ amphoraId, key: keyHex, messaging: { prefix: 'x', initialConnectTimeoutMs: 1000 } }, 'test', dir);
    expect(given.messaging).toMatchObject({ prefix: 'x', initialConnectTimeoutMs: 1000 });
  });

  it('selects the transport with messaging.kind: amqp by default, ipc without the AMQP-only options', async () => {
    const amqp = await resolveAgentSettings({ amphoraId, key: keyHex }, 'test', dir);
    expect(amqp.messaging.kind).toBe('amqp');
    const ipc = await resolveAgentSettings({ amphoraId, key: keyHex, messaging: { kind: 'ipc', callTimeoutMs: 2000 } }, 'test', dir);
    expect(ipc.messaging).toMatchObject({ kind: 'ipc', callTimeoutMs: 2000, connectTimeoutMs: 5000, drainTimeoutMs: 10_000 });
    expect(ipc.messaging).not.toHaveProperty('url');
    expect(await issuesOf({ amphoraId, key: keyHex, messaging: { kind: 'ipc', url: 'amqp://x/' } })).toEqual([expect.stringMatching(/^messaging: .*url/)]);
    expect(await issuesOf({ amphoraId, key: keyHex, messaging: { kind: 'zeromq' } })).toEqual([expect.stringMatching(/^messaging\.kind: /)]);
  });

  it('reads the key from keyFile (relative to the settings file) in YAML settings', async () => {
    writeFileSync(path.join(dir, 'amphora.key'), `${keyHex}\n`);
    const file = path.join(dir, 'agent.yaml');
    writeFileSync(file, `amphoraId: ${amphoraId}\nkeyFile: amphora.key\nheartbeatIntervalMs: 2000\ndataplane:\n  workers: 0\n`);
    const s = await loadAgentSettings(file);
    expect(s.key.toString('hex')).toBe(keyHex);
    expect(s.heartbeatIntervalMs).toBe(2000);
    expect(s.dataplane.workers).toBe(0);
  });

  it('refuses bad settings, naming every offending path and never the key', async () => {
    expect(await issuesOf({ amphoraId })).toEqual(['key: give exactly one of key and keyFile']);
    expect(await issuesOf({ amphoraId, key: keyHex, keyFile: 'k' })).toEqual(['key: give exactly one of key and keyFile']);
    const issues = await issuesOf({ amphoraId: 'amp-1', key: 'zz', heartbeatIntervalMs: 0, messaging: { prefx: 'a' }, dataplane: { workers: -1 } });
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^amphoraId: /),
        expect.stringMatching(/^key: must be hex/),
        expect.stringMatching(/^heartbeatIntervalMs: /),
        expect.stringMatching(/^messaging: .*prefx/),
        expect.stringMatching(/^dataplane\.workers: /),
      ]),
    );
    expect(await issuesOf({ amphoraId, key: keyHex.slice(0, 30) })).toEqual([expect.stringMatching(/^key: must be hex, at least 16 bytes/)]);
    writeFileSync(path.join(dir, 'bad.key'), 'not hex secret');
    const keyIssues = await issuesOf({ amphoraId, keyFile: 'bad.key' });
    expect(keyIssues).toEqual([expect.stringMatching(/^keyFile: .*bad\.key must hold the key in hex/)]);
    expect(keyIssues.join()).not.toContain('not hex secret');
    expect(await issuesOf({ amphoraId, keyFile: 'missing.key' })).toEqual([expect.stringMatching(/^keyFile: cannot read/)]);
  });
});

describe('argonaut-amphora command line', () => {
  const cli = (...args: string[]) =>
    run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bin/argonaut-amphora.ts'), ...args], { cwd: ROOT, timeout: 20_000 }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  it('--help prints the usage and the settings contract, exit 0', async () => {
    const r = await cli('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^argonaut-amphora: the amphora agent/);
    for (const word of ['--config FILE', 'amphoraId', 'keyFile', 'messaging', 'kind: ipc', 'heartbeatIntervalMs', 'dataplane', 'SIGTERM', 'Exit status']) expect(r.stdout).toContain(word);
  });

  it('exits 2 on bad arguments or invalid settings, saying why', async () => {
    const noConfig = await cli();
    expect(noConfig.code).toBe(2);
    expect(noConfig.stderr).toContain('--config FILE is required');
    const file = path.join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ amphoraId: 'nope', key: 'ab' }));
    const bad = await cli('--config', file);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid agent settings .*amphoraId: must be a UUID/);
  });

  it('exits 2 with messaging.kind ipc when it was not started with an IPC channel', async () => {
    const amphoraId = uuid();
    const file = path.join(dir, 'ipc.json');
    writeFileSync(file, JSON.stringify({ amphoraId, key: deriveAmphoraKey(MASTER_KEY, amphoraId).toString('hex'), messaging: { kind: 'ipc' } }));
    const r = await cli('--config', file);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('messaging.kind is ipc but this process has no IPC channel');
  });
});
