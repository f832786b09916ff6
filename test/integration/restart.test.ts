// A crash of the API process in the middle of an operation must not leave objects PENDING_*:
// the next process finds them and finishes the operation.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startApiProcess, type ApiProcess } from '../helpers/process.ts';

const dir = mkdtempSync(join(tmpdir(), 'argonaut-restart-'));
const running: ApiProcess[] = [];

afterAll(() => {
  for (const p of running) p.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const json = { 'Content-Type': 'application/json', 'X-Project-Id': 'p1' };

async function status(url: string, id: string): Promise<string> {
  const res = await fetch(`${url}/v2/lbaas/loadbalancers/${id}`);
  return (await res.json()).loadbalancer.provisioning_status;
}

describe('restart after a crash', () => {
  it('finishes a load balancer create that the killed process left pending', async () => {
    const port = await freePort();
    const base = {
      api: { port },
      database: { url: `sqlite:${join(dir, 'db.sqlite')}` },
      controllerWorker: { computeDriver: 'noop', networkDriver: 'noop', amphoraDriver: 'noop' },
      logging: { level: 'warn' },
    };

    const slow = await startApiProcess(dir, { ...base, controllerWorker: { ...base.controllerWorker, workerDelayMs: 60_000 } }, 'slow.yaml');
    running.push(slow);
    const created = await fetch(`${slow.url}/v2/lbaas/loadbalancers`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ loadbalancer: { name: 'crash', vip_subnet_id: '6c1f4a49-0e64-4e5f-a4a3-5a4d4cf6e8d1' } }),
    });
    expect(created.status).toBe(201);
    const lbId = (await created.json()).loadbalancer.id;
    expect(await status(slow.url, lbId)).toBe('PENDING_CREATE');
    slow.child.kill('SIGKILL');
    expect(await slow.exited).toBe('SIGKILL');

    const fresh = await startApiProcess(dir, base, 'fresh.yaml');
    running.push(fresh);
    const deadline = Date.now() + 10_000;
    while ((await status(fresh.url, lbId)) !== 'ACTIVE' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await status(fresh.url, lbId)).toBe('ACTIVE');
    const amphorae = await (await fetch(`${fresh.url}/v2/octavia/amphorae?loadbalancer_id=${lbId}`)).json();
    expect(amphorae.amphorae).toHaveLength(1);
    expect(amphorae.amphorae[0]).toMatchObject({ role: 'STANDALONE', status: 'ALLOCATED' });

    fresh.child.kill('SIGTERM');
    expect(await fresh.exited).toBe(0);
  });
});
