// The spare amphora pool on a real database with a fake compute driver (which amphorae live is
// decided by the test): top-up to the configured size, READY only once the agent serves, claims,
// races for one spare, dead spares replaced.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Database, Row } from '../../common/db/database.ts';
import { createLogger } from '../../common/logging.ts';
import { SparePool } from '../../driver/amphora/spare-pool.ts';
import type { AmphoraAssignRequest, AmphoraBootRequest, BootedAmphora, ComputeDriver } from '../../driver/compute/compute-driver.ts';
import { openTestDatabase } from '../helpers/database.ts';

class FakeCompute implements ComputeDriver {
  readonly name = 'fake';
  readonly alive = new Set<string>();
  readonly booted: AmphoraBootRequest[] = [];
  readonly assigned: AmphoraAssignRequest[] = [];
  failAssign = false;
  readonly destroyed: string[] = [];
  async boot(req: AmphoraBootRequest): Promise<BootedAmphora> {
    this.booted.push(req);
    const computeId = `fake:${req.amphoraId}`;
    this.alive.add(computeId);
    return { computeId, lbNetworkIp: null };
  }
  async assign(_computeId: string, req: AmphoraAssignRequest): Promise<void> {
    if (this.failAssign) throw new Error('assign failed');
    this.assigned.push(req);
  }
  async destroy(computeId: string): Promise<void> {
    this.destroyed.push(computeId);
    this.alive.delete(computeId);
  }
  async isAlive(computeId: string): Promise<boolean> {
    return this.alive.has(computeId);
  }
  async stop(): Promise<void> {}
}

const lb: Row = { id: randomUUID(), vip_address: '127.0.100.9', vip_port_id: randomUUID(), availability_zone: null };
const record = (l: Row, role: string): Row => ({ ha_ip: l.vip_address, ha_port_id: l.vip_port_id, vrrp_port_id: null, vrrp_id: null, vrrp_priority: null, cached_zone: null, role });

let db: Database;
let close: () => Promise<void>;
let compute: FakeCompute;
let serving: Set<string>;
let pools: SparePool[];
let finished: boolean;

function pool(size: number): SparePool {
  const p = new SparePool({
    db,
    log: createLogger('test', 'silent'),
    compute,
    masterKey: randomBytes(32),
    size,
    checkIntervalMs: 50,
    waitServing: async (amphoraId) => {
      while (!serving.has(amphoraId)) {
        if (finished) throw new Error('test over');
        await new Promise((r) => setTimeout(r, 5));
      }
    },
  });
  pools.push(p);
  return p;
}

const spares = async (status: string) => (await db.models.amphora.findAll({ where: { status, load_balancer_id: null }, raw: true })) as Row[];
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeEach(async () => {
  ({ db, close } = await openTestDatabase());
  compute = new FakeCompute();
  serving = new Set();
  pools = [];
  finished = false;
});

afterEach(async () => {
  finished = true;
  for (const p of pools) await p.stop();
  await close();
});

describe('spare amphora pool', () => {
  it('boots spares up to its size; they are READY only once their agent serves', async () => {
    pool(2).start();
    await until(async () => compute.booted.length === 2, 'two boots');
    expect(compute.booted.every((b) => b.loadBalancerId === null && b.role === null)).toBe(true);
    expect(await spares('READY')).toHaveLength(0);
    for (const b of compute.booted) serving.add(b.amphoraId);
    await until(async () => (await spares('READY')).length === 2, 'two READY spares');
    expect(compute.booted).toHaveLength(2);
  });

  it('a claim gives a living spare the role and VIP of the load balancer, then tops the pool up', async () => {
    const p = pool(1);
    p.start();
    await until(async () => compute.booted.length === 1, 'a boot');
    serving.add(compute.booted[0]!.amphoraId);
    await until(async () => (await spares('READY')).length === 1, 'a READY spare');

    const claimed = await p.claim(lb, 'STANDALONE', record);
    expect(claimed?.id).toBe(compute.booted[0]!.amphoraId);
    const row = (await db.models.amphora.findByPk(claimed!.id, { raw: true })) as Row;
    expect(row).toMatchObject({ load_balancer_id: lb.id, role: 'STANDALONE', status: 'ALLOCATED', ha_ip: '127.0.100.9' });
    expect(compute.assigned).toEqual([expect.objectContaining({ amphoraId: claimed!.id, loadBalancerId: lb.id, role: 'STANDALONE', vipAddress: '127.0.100.9' })]);
    await until(async () => compute.booted.length === 2, 'a replacement spare booted');
  });

  it('a claim with a port to plug (neutron): the port is made for the claimed spare, recorded and handed to the compute driver', async () => {
    const p = pool(1);
    p.start();
    await until(async () => compute.booted.length === 1, 'a boot');
    serving.add(compute.booted[0]!.amphoraId);
    await until(async () => (await spares('READY')).length === 1, 'a READY spare');
    const port = { portId: randomUUID(), address: '10.0.0.5', mac: 'fa:16:3e:00:00:01', prefixLength: 24 };
    const plugged: string[] = [];
    const claimed = await p.claim(lb, 'STANDALONE', record, async (amphoraId) => (plugged.push(amphoraId), port));
    expect(plugged).toEqual([claimed!.id]);
    expect(claimed).toMatchObject({ vrrp_port_id: port.portId, vrrp_ip: port.address });
    const row = (await db.models.amphora.findByPk(claimed!.id, { raw: true })) as Row;
    expect(row).toMatchObject({ status: 'ALLOCATED', load_balancer_id: lb.id, vrrp_port_id: port.portId, vrrp_ip: port.address });
    expect(compute.assigned).toEqual([expect.objectContaining({ amphoraId: claimed!.id, vipAddress: '127.0.100.9', vipInterface: port })]);
  });

  it('a claim whose port cannot be plumbed removes the claimed spare and fails', async () => {
    const p = pool(1);
    p.start();
    await until(async () => compute.booted.length === 1, 'a boot');
    const id = compute.booted[0]!.amphoraId;
    serving.add(id);
    await until(async () => (await spares('READY')).length === 1, 'a READY spare');
    compute.failAssign = true;
    const port = { portId: randomUUID(), address: '10.0.0.5', mac: 'fa:16:3e:00:00:01', prefixLength: 24 };
    await expect(p.claim(lb, 'STANDALONE', record, async () => port)).rejects.toThrow('assign failed');
    expect(((await db.models.amphora.findByPk(id, { raw: true })) as Row).status).toBe('DELETED');
    expect(compute.destroyed).toContain(`fake:${id}`);
  });

  it('answers null when no spare is ready, and never hands one spare to two claims', async () => {
    const p = pool(1);
    expect(await p.claim(lb, 'STANDALONE', record)).toBeNull();
    p.start();
    await until(async () => compute.booted.length >= 1, 'a boot');
    serving.add(compute.booted[0]!.amphoraId);
    await until(async () => (await spares('READY')).length === 1, 'a READY spare');
    const [a, b] = await Promise.all([p.claim(lb, 'MASTER', record), p.claim({ ...lb, id: randomUUID() }, 'BACKUP', record)]);
    expect([a, b].filter(Boolean)).toHaveLength(1);
  });

  it('removes a spare whose instance died and boots another', async () => {
    const p = pool(1);
    p.start();
    await until(async () => compute.booted.length === 1, 'a boot');
    const first = compute.booted[0]!.amphoraId;
    serving.add(first);
    await until(async () => (await spares('READY')).length === 1, 'a READY spare');
    compute.alive.delete(`fake:${first}`);
    expect(await p.claim(lb, 'STANDALONE', record)).toBeNull();
    await until(async () => compute.booted.length === 2, 'a replacement boot');
    serving.add(compute.booted[1]!.amphoraId);
    await until(async () => (await spares('READY')).length === 1, 'the replacement READY');
    expect(((await db.models.amphora.findByPk(first, { raw: true })) as Row).status).toBe('DELETED');
    expect(compute.destroyed).toContain(`fake:${first}`);
  });
});
