// The `process` compute driver: real agent processes (bin/argonaut-amphora.ts) on the IPC transport,
// with this test process as the controller (an InProcessBroker), real HTTP traffic on 127.0.0.1.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { InProcessBroker } from '../../../common/transport/in-process-transport.ts';
import { deriveAmphoraKey } from '../../../common/transport/signing.ts';
import { ProcessComputeDriver, type ProcessComputeOptions } from '../../../driver/compute/process.ts';
import {
  captureLogger,
  connectOutcome,
  document,
  FakeController,
  httpExchange,
  httpListener,
  MASTER_KEY,
  memberPool,
  push,
  silentLogger,
  waitFor,
} from '../../amphora-agent/helpers.ts';
import { freePort, Resources, startHttpMember } from '../../dataplane/helpers.ts';

const ROOT = new URL('../../..', import.meta.url).pathname;
const VIP = '127.0.0.1';
const stateDir = mkdtempSync(path.join(tmpdir(), 'argonaut-process-driver-'));
const r = new Resources();
afterEach(() => r.cleanup());
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

async function setup(over: Partial<ProcessComputeOptions> = {}) {
  const broker = new InProcessBroker();
  const transport = broker.connect({ identity: { role: 'controller', masterKey: MASTER_KEY }, logger: silentLogger() });
  r.add(() => transport.close({ drainTimeoutMs: 200 }));
  const controller = new FakeController(transport);
  await controller.listen();
  const log = captureLogger('info');
  const driver = new ProcessComputeDriver({
    stateDir,
    messaging: { kind: 'ipc', broker, settings: { drainTimeoutMs: 500 } },
    logger: log.logger,
    heartbeatIntervalMs: 200,
    drainTimeoutMs: 500,
    ...over,
  });
  r.add(() => driver.stop());
  return { broker, transport, controller, driver, events: log.events };
}

function bootRequest(amphoraId = randomUUID()) {
  return { amphoraId, loadBalancerId: randomUUID(), key: deriveAmphoraKey(MASTER_KEY, amphoraId), role: 'STANDALONE' };
}

const pidOf = (computeId: string) => Number(/^process:(\d+):/.exec(computeId)![1]);

/** No such process any more (a zombie waiting for a reaper counts as gone). */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

/** Live processes whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid && fields[0] !== 'Z') found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

describe('process compute driver', () => {
  it('boots an agent that fetches its config over IPC and serves traffic, applies a pushed config, and is gone after destroy', async () => {
    const { transport, controller, driver, events } = await setup();
    const [a, b] = [await startHttpMember(r, 'a'), await startHttpMember(r, 'b')];
    const port = await freePort();
    const req = bootRequest();
    const { amphoraId } = req;
    const [listener, pool, ma, mb] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const version = (n: number, members: Array<{ id: string; port: number }>) =>
      push(amphoraId, n, document(amphoraId, n, VIP, [httpListener(listener, port, pool)], [memberPool(pool, 'HTTP', members)]));
    controller.current = version(1, [{ id: ma, port: a.port }]);

    const booted = await driver.boot(req);
    expect(booted.computeId).toBe(`process:${pidOf(booted.computeId)}:${amphoraId}`);
    expect(booted.lbNetworkIp).toBeNull();
    expect(await driver.isAlive(booted.computeId)).toBe(true);

    const dir = path.join(stateDir, 'amphorae', amphoraId);
    const settingsFile = path.join(dir, 'agent.yaml');
    expect(statSync(settingsFile).mode & 0o777).toBe(0o600);
    expect(parseYaml(readFileSync(settingsFile, 'utf8'))).toEqual({
      amphoraId,
      key: req.key.toString('hex'),
      messaging: { kind: 'ipc', drainTimeoutMs: 500 },
      heartbeatIntervalMs: 200,
      dataplane: { workers: 0, drainTimeoutMs: 500 },
      logLevel: 'info',
    });

    // The agent fetched version 1 from this process and serves it.
    await waitFor('the config fetch', () => controller.fetches >= 1, 20_000);
    await waitFor('traffic through the amphora', async () => (await httpExchange(VIP, port).catch(() => null))?.body === 'a', 10_000);

    // A member added by a push: acked with the new version, and both members get requests.
    const ack = await transport.pushConfig(version(2, [{ id: ma, port: a.port }, { id: mb, port: b.port }]), { timeoutMs: 10_000 });
    expect(ack).toEqual({ amphoraId, configVersion: 2, ok: true });
    const bodies = new Set<string>();
    for (let i = 0; i < 4; i++) bodies.add((await httpExchange(VIP, port)).body);
    expect([...bodies].sort()).toEqual(['a', 'b']);
    await waitFor('a heartbeat reporting version 2', () => controller.heartbeats.some((h) => h.configVersion === 2), 5000);

    const agentLog = readFileSync(path.join(dir, 'agent.log'), 'utf8');
    expect(agentLog).toContain('"msg":"config applied"');
    expect(agentLog.split('\n').filter((l) => l.length > 0).every((l) => l.startsWith('{'))).toBe(true);

    await driver.destroy(booted.computeId);
    expect(await driver.isAlive(booted.computeId)).toBe(false);
    expect(await connectOutcome(VIP, port)).toBe('ECONNREFUSED');
    expect(existsSync(dir)).toBe(false);
    await driver.destroy(booted.computeId); // idempotent
    expect(events.find((e) => e.msg === 'amphora process started')).toMatchObject({ amphoraId, computeId: booted.computeId, role: 'STANDALONE', messaging: 'ipc' });
    expect(events.find((e) => e.msg === 'amphora process exited')).toMatchObject({ amphoraId, code: 0, signal: null, expected: true });
  });

  it('shows a kill -9 in isAlive, boots the amphora again, and stop() destroys every amphora it started', async () => {
    const { controller, driver, events } = await setup();
    const firstRequest = bootRequest();
    const first = await driver.boot(firstRequest);
    const second = await driver.boot(bootRequest());
    await waitFor('both agents asking for their config', () => controller.fetches >= 2, 20_000);
    await expect(driver.boot(firstRequest)).rejects.toThrow('already running');

    process.kill(pidOf(first.computeId), 'SIGKILL');
    await waitFor('isAlive false after kill -9', async () => !(await driver.isAlive(first.computeId)));
    expect(await driver.isAlive(second.computeId)).toBe(true);
    expect(events.find((e) => e.msg === 'amphora process exited')).toMatchObject({ computeId: first.computeId, code: null, signal: 'SIGKILL', expected: false, level: 40 });

    // Booted again in its directory; destroying the dead process's computeId leaves the new one alone.
    const again = await driver.boot(firstRequest);
    await driver.destroy(first.computeId);
    expect(await driver.isAlive(again.computeId)).toBe(true);
    expect(existsSync(path.join(stateDir, 'amphorae', firstRequest.amphoraId, 'agent.yaml'))).toBe(true);

    await driver.stop();
    expect(await driver.isAlive(second.computeId)).toBe(false);
    expect(await driver.isAlive(again.computeId)).toBe(false);
    expect(gone(pidOf(second.computeId))).toBe(true);
    expect(gone(pidOf(again.computeId))).toBe(true);
    expect(readdirSync(path.join(stateDir, 'amphorae'))).toEqual([]);
    await expect(driver.boot(bootRequest())).rejects.toThrow('stopped');
  });

  it('writes the AMQP settings it is given, and refuses invalid agent settings before starting anything', async () => {
    const amqp = { url: 'amqp://guest:guest@127.0.0.1:1/', prefix: 'argonaut-process-test' };
    const { driver } = await setup({ messaging: { kind: 'amqp', settings: amqp } });
    const req = bootRequest();
    const booted = await driver.boot(req);
    const settings = parseYaml(readFileSync(path.join(stateDir, 'amphorae', req.amphoraId, 'agent.yaml'), 'utf8')) as Record<string, unknown>;
    expect(settings.messaging).toEqual({ kind: 'amqp', ...amqp });
    await driver.destroy(booted.computeId); // the agent was still trying to reach RabbitMQ
    expect(gone(pidOf(booted.computeId))).toBe(true);

    const { driver: bad } = await setup({ heartbeatIntervalMs: 1 });
    const badRequest = bootRequest();
    await expect(bad.boot(badRequest)).rejects.toThrow(/invalid agent settings .*heartbeatIntervalMs/);
    await expect(bad.boot(badRequest)).rejects.not.toThrow(badRequest.key.toString('hex'));
    expect(existsSync(path.join(stateDir, 'amphorae', badRequest.amphoraId))).toBe(false);
  });

  it('kills the whole process group (data plane workers included) when the agent does not stop in time', async () => {
    const { driver, events } = await setup({ dataplaneWorkers: 1, stopTimeoutMs: 1 });
    const req = bootRequest();
    const booted = await driver.boot(req);
    const pid = pidOf(booted.computeId);
    const agentLog = () => readFileSync(path.join(stateDir, 'amphorae', req.amphoraId, 'agent.log'), 'utf8');
    // Past its start-up (its SIGTERM handler is installed once the data plane runs), with its worker.
    await waitFor('the agent started', () => agentLog().includes('"msg":"amphora agent starting"'), 20_000);
    const workers = childrenOf(pid);
    expect(workers.length, agentLog()).toBeGreaterThanOrEqual(1);
    expect(await driver.isAlive(booted.computeId), agentLog()).toBe(true);

    await driver.destroy(booted.computeId);
    expect(events.some((e) => e.msg === 'amphora process did not stop in time; killing it')).toBe(true);
    expect(gone(pid)).toBe(true);
    await waitFor('the workers gone', () => workers.every(gone));
  });

  it('leaves nothing running when the controller process exits without stop()', async () => {
    const parentState = mkdtempSync(path.join(tmpdir(), 'argonaut-process-parent-'));
    r.add(() => rmSync(parentState, { recursive: true, force: true }));
    const parent = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/driver/compute/process-parent.ts'), parentState], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    parent.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => parent.once('exit', resolve));
    expect(code).toBe(0);
    const computeId = out.trim();
    expect(computeId).toMatch(/^process:\d+:/);
    await waitFor(`agent ${computeId} gone after its parent exited`, () => gone(pidOf(computeId)), 10_000);
  });
});
