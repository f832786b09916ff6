import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AmphoraConfigInput } from '../../common/amphora-config/index.ts';
import { config, distribution, eventually, freePort, httpListener, pool, request, Resources, startHttpMember, startUdpMember, udpAsk, uid, type HttpMember } from './helpers.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/argonaut-dataplane.ts');
const r = new Resources();
let dir: string;
let file: string;
let child: ChildProcess;
let logs: Record<string, unknown>[] = [];
let port: number;
let udpPort: number;
let metricsPort: number;
let members: HttpMember[];

const render = (version: number, memberIndexes: number[], extra: Partial<AmphoraConfigInput> = {}): AmphoraConfigInput => ({
  ...config(
    [httpListener(1, port, 2), { id: uid(3), protocol: 'UDP', ports: [udpPort], defaultPoolId: uid(4) }, { id: uid(5), protocol: 'PROMETHEUS', ports: [metricsPort] }],
    [
      // Random picks: with ROUND_ROBIN both workers pick in lockstep for each new client, and would agree
      // even if the primary relayed nothing between them.
      pool(2, 'HTTP', memberIndexes.map((i) => ({ id: 10 + i, port: members[i].port })), { algorithm: 'POWER_OF_TWO_CHOICES', sessionPersistence: { type: 'SOURCE_IP' } }),
      pool(4, 'UDP', [{ id: 20, port: udpMemberPort }]),
    ],
    version,
  ),
  ...extra,
});
let udpMemberPort: number;

/**
 * Rounds of 8 concurrent requests from `address` until one round reaches a single member (the relay
 * between the workers has two IPC hops, so no fixed wait is long enough on a loaded machine), then
 * one more round that must reach that member only. Workers that never agree keep splitting the
 * rounds, and fail here; the last round catches a lucky round that reached one worker only.
 */
async function settlesOnOneMember(address: string, timeoutMs = 5_000): Promise<void> {
  // Concurrent: sequential connections tend to be accepted by the same worker, which agrees with itself.
  const round = async () => [...new Set(await Promise.all(Array.from({ length: 8 }, async () => (await request(port, { localAddress: address })).body)))].sort();
  let seen: string[] = [];
  await eventually(async () => (seen = await round()).length === 1, timeoutMs).catch(() => {
    throw new Error(`${address}: requests still reach ${seen.join(' and ')} after ${timeoutMs} ms`);
  });
  expect(await round(), address).toEqual(seen);
}

const loaded = (version: number) => logs.some((l) => l.msg === 'config loaded' && l.configVersion === version);

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'argonaut-cli-'));
  file = path.join(dir, 'amphora.json');
  members = [await startHttpMember(r, 'a'), await startHttpMember(r, 'b'), await startHttpMember(r, 'c')];
  udpMemberPort = (await startUdpMember(r, 'u')).port;
  [port, udpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  writeFileSync(file, JSON.stringify(render(1, [0, 1])));
  child = spawn(process.execPath, ['--import', 'tsx', BIN, '--config', file, '--workers', '2', '--drain-timeout', '5000'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let buffered = '';
  child.stdout?.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) if (line.startsWith('{')) logs.push(JSON.parse(line) as Record<string, unknown>);
  });
  await eventually(() => loaded(1), 20_000);
});

afterAll(async () => {
  if (child.exitCode === null) {
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
  }
  await r.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('argonaut-dataplane CLI', () => {
  it('documents itself with --help', () => {
    const out = spawnSync(process.execPath, ['--import', 'tsx', BIN, '--help'], { encoding: 'utf8' });
    expect(out.status).toBe(0);
    expect(out.stdout).toMatch(/Usage: argonaut-dataplane --config FILE/);
    expect(out.stdout).toMatch(/SIGHUP reloads the config/);
    const bad = spawnSync(process.execPath, ['--import', 'tsx', BIN], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--config FILE is required/);
  });

  it('serves HTTP and UDP from its workers, with persistence shared between workers', async () => {
    for (let ip = 2; ip < 8; ip++) {
      const address = `127.0.0.${ip}`;
      // The first request's worker learns the client's member and the primary relays it to the
      // other worker; the next requests may overtake that relay on a loaded machine.
      await request(port, { localAddress: address });
      await settlesOnOneMember(address);
    }
    expect(await udpAsk(udpPort, 'hello')).toBe('u:hello');
  });

  it('workers that learned different members for a new client at once agree on one afterwards', async () => {
    for (let ip = 60; ip < 70; ip++) {
      const address = `127.0.0.${ip}`;
      // Concurrent first connections reach both workers before either has heard of the other's choice.
      await Promise.all(Array.from({ length: 8 }, () => request(port, { localAddress: address })));
      await settlesOnOneMember(address);
    }
  });

  it('a restarted worker gets the persistence table: clients keep their member when a worker is killed', async () => {
    const pinned = new Map<string, string>();
    for (let ip = 80; ip < 90; ip++) {
      const address = `127.0.0.${ip}`;
      await request(port, { localAddress: address });
      await settlesOnOneMember(address);
      pinned.set(address, (await request(port, { localAddress: address })).body);
    }
    const children = spawnSync('ps', ['--ppid', String(child.pid), '-o', 'pid=,args='], { encoding: 'utf8' }).stdout.trim().split('\n');
    const workers = children.filter((line) => line.includes('worker-main.ts')).map((line) => Number(line.trim().split(/\s+/)[0]));
    expect(workers).toHaveLength(2);
    const upToDate = () => logs.filter((l) => l.msg === 'restarted worker brought up to date');
    const before = upToDate().length;
    process.kill(workers[0]!, 'SIGKILL');
    await eventually(() => upToDate().length > before, 20_000);
    expect(upToDate().at(-1)!.persistenceEntries).toBeGreaterThanOrEqual(pinned.size);
    for (const [address, member] of pinned) {
      // Concurrent rounds reach both workers, the restarted one included.
      for (let i = 0; i < 3; i++) {
        const seen = new Set(await Promise.all(Array.from({ length: 8 }, async () => (await request(port, { localAddress: address })).body)));
        expect([...seen], address).toEqual([member]);
      }
    }
  });

  it('aggregates the workers in its Prometheus listener', async () => {
    const before = await request(metricsPort, { path: '/metrics' });
    const total = (text: string) => Number(new RegExp(`octavia_listener_sessions_total\\{listener="${uid(1)}"\\} (\\d+)`).exec(text)?.[1] ?? -1);
    for (let i = 0; i < 10; i++) await request(port, { localAddress: '127.0.0.2' });
    const after = await request(metricsPort, { path: '/metrics' });
    expect(total(after.body) - total(before.body)).toBe(10);
  });

  it('reloads when the file changes, and on SIGHUP', async () => {
    writeFileSync(file, JSON.stringify(render(2, [2])));
    await eventually(() => loaded(2), 10_000);
    expect(await distribution(4, async () => (await request(port, { localAddress: '127.0.0.50' })).body)).toEqual({ c: 4 });

    // SIGHUP re-reads the file; if the watcher saw the write first, the same content is not applied twice.
    writeFileSync(file, JSON.stringify(render(3, [1])));
    child.kill('SIGHUP');
    await eventually(() => loaded(3), 10_000);
    expect(await distribution(4, async () => (await request(port, { localAddress: '127.0.0.51' })).body)).toEqual({ b: 4 });
  });

  it('rejects an invalid file and keeps serving the running config', async () => {
    writeFileSync(file, JSON.stringify(render(4, [0], { vips: [] })));
    await eventually(() => logs.some((l) => l.msg === 'config rejected; running config stays'), 10_000);
    const rejected = logs.find((l) => l.msg === 'config rejected; running config stays') as { err: string };
    expect(rejected.err).toMatch(/vips/);
    expect((await request(port, { localAddress: '127.0.0.52' })).body).toBe('b');
  });

  it('drains on SIGTERM: in-flight requests complete, then it exits 0', async () => {
    members[1].handler = (_req, res) => setTimeout(() => res.end('slow-b'), 800);
    const inflight = request(port, { localAddress: '127.0.0.53' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect((await inflight).body).toBe('slow-b');
    expect(await exited).toBe(0);
    await expect(request(port)).rejects.toThrow(/ECONNREFUSED/);
  });
});
