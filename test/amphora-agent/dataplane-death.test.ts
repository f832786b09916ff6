// An amphora whose data plane workers all die hands the VIP over at once: the agent's election is
// told the moment the last worker exits (not at its next health check), its health check says so
// until a worker runs the configuration again, and one worker dying of two changes nothing (nor
// waits the data plane's snapshots, which heartbeats are made of, for the dead one).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../dataplane/helpers.ts';
import { waitFor } from './helpers.ts';

const CHILD = fileURLToPath(new URL('./cluster-serving-child.ts', import.meta.url));

interface Line {
  event: string;
  error?: string;
  configVersion?: number;
  ok?: boolean;
  reason?: string;
  workers?: number[];
}

let child: ChildProcess | undefined;
afterEach(async () => {
  const proc = child;
  child = undefined;
  if (!proc || proc.exitCode !== null) return;
  // End of input stops it cleanly, workers included; SIGKILL if it does not.
  const exited = once(proc, 'exit');
  proc.stdin!.end();
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
});

async function startChild(): Promise<{ lines: Line[]; check: () => Promise<Line>; ask: (command: string, answer: (l: Line) => boolean) => Promise<Line> }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, String(await freePort())], { stdio: ['pipe', 'pipe', 'inherit'] });
  child = proc;
  const lines: Line[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as Line));
  await waitFor('the child ready', () => lines.some((l) => l.event === 'ready'), 30_000);
  const check = async () => {
    const before = lines.length;
    proc.stdin!.write('check\n');
    await waitFor('a health line', () => lines.slice(before).some((l) => l.event === 'health'), 5000);
    return lines.slice(before).find((l) => l.event === 'health')!;
  };
  /** Writes a command line and resolves with the first line after it that `answer` accepts. */
  const ask = async (command: string, answer: (l: Line) => boolean) => {
    const before = lines.length;
    proc.stdin!.write(`${command}\n`);
    await waitFor(`an answer to ${command}`, () => lines.slice(before).some(answer), 15_000);
    return lines.slice(before).find(answer)!;
  };
  return { lines, check, ask };
}

type Child = Awaited<ReturnType<typeof startChild>>;

/** Both workers back and serving; the replacement, in the first slot (whose version the merged snapshot carries), runs `version`. */
async function expectBothServing({ check, ask }: Pick<Child, 'check' | 'ask'>, version: number): Promise<void> {
  await waitFor('both workers serving', async () => {
    const now = await check();
    return now.ok === true && now.workers!.length === 2;
  }, 15_000);
  expect(await ask('snapshot', (l) => l.event === 'snapshot')).toEqual({ event: 'snapshot', configVersion: version });
}

describe('the election and the data plane workers (ClusterDataPlane, VrrpRunner)', () => {
  it('one worker dying changes nothing; every worker dead: FAULT at once, unhealthy until one runs the configuration again', async () => {
    const { lines, check } = await startChild();
    const first = await check();
    expect(first.ok).toBe(true);
    expect(first.workers).toHaveLength(2);
    const [one] = first.workers!;

    process.kill(one!, 'SIGKILL');
    await waitFor('the worker gone', async () => !(await check()).workers!.includes(one!), 5000);
    expect((await check()).ok).toBe(true);
    expect(lines.filter((l) => l.event === 'fail')).toEqual([]);
    // Heartbeats take snapshots: the dead worker is not waited for (its reply timeout is 30 s).
    const before = lines.length;
    child!.stdin!.write('snapshot\n');
    await waitFor('a snapshot without the dead worker', () => lines.slice(before).some((l) => l.event === 'snapshot'), 5000);
    expect(lines.slice(before).find((l) => l.event === 'snapshot')).toEqual({ event: 'snapshot', configVersion: 1 });

    // Both die (the first one back first): the election is told at once.
    await waitFor('the first worker back', async () => (await check()).workers!.length === 2, 15_000);
    const both = (await check()).workers!;
    for (const pid of both) process.kill(pid, 'SIGKILL');
    await waitFor('the election told', () => lines.some((l) => l.event === 'fail'), 5000);
    expect(lines.filter((l) => l.event === 'fail')).toEqual([{ event: 'fail', reason: 'every data plane worker died' }]);
    // Restarts wait 500 ms: the health check says why meanwhile.
    expect(await check()).toMatchObject({ ok: false, reason: expect.stringMatching(/no data plane worker is running/) });

    // Restarted and given the configuration again: healthy (the election's next check leaves FAULT).
    await waitFor('healthy again', async () => (await check()).ok === true, 15_000);
    await waitFor('both workers back', async () => (await check()).workers!.length === 2, 15_000);
    expect(lines.filter((l) => l.event === 'fail')).toHaveLength(1);
  }, 60_000);

  it('an apply that comes while a worker is dead waits for its replacement, which runs the new configuration', async () => {
    const { check, ask } = await startChild();
    const [first] = (await check()).workers!;
    process.kill(first!, 'SIGKILL');
    const outcome = await ask('apply 2', (l) => l.event === 'applied' || l.event === 'apply-failed');
    expect(outcome).toEqual({ event: 'applied', configVersion: 2 });
    await expectBothServing({ check, ask }, 2);
  }, 60_000);

  it('an apply waiting for a restart survives the replacement dying while it boots (the next one gets it)', async () => {
    const { lines, check, ask } = await startChild();
    const original = (await check()).workers!;
    process.kill(original[0]!, 'SIGKILL');
    const before = lines.length;
    child!.stdin!.write('apply 2\n');
    // The replacement is killed as soon as it is seen: it takes a while to boot.
    let replacement: number | undefined;
    await waitFor('the replacement forked', async () => {
      replacement = (await check()).workers!.find((pid) => !original.includes(pid));
      return replacement !== undefined;
    }, 15_000, 5);
    process.kill(replacement!, 'SIGKILL');
    const settled = (l: Line) => l.event === 'applied' || l.event === 'apply-failed';
    await waitFor('the apply settled', () => lines.slice(before).some(settled), 25_000);
    expect(lines.slice(before).find(settled)).toEqual({ event: 'applied', configVersion: 2 });
    await expectBothServing({ check, ask }, 2);
  }, 60_000);
});
