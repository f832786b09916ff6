// The worker's completion: the statuses of a load balancer's tree and the operation's end writes
// (driver/controller/worker.ts) are committed together or not at all.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database, Row } from '../../common/db/database.ts';
import { completeLoadBalancer, nowSeconds } from '../../driver/controller/completion.ts';
import { openTestDatabase } from '../helpers/database.ts';

let db: Database;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ db, close } = await openTestDatabase());
});
afterAll(async () => {
  await close();
});

const pending = (extra: Row = {}): Row => ({
  id: randomUUID(), project_id: 'p1', provisioning_status: 'PENDING_CREATE', operating_status: 'OFFLINE', admin_state_up: true,
  created_at: nowSeconds(), updated_at: null, ...extra,
});

async function pendingTree(): Promise<{ lb: Row; listener: Row; pool: Row; monitorUp: Row; monitorDown: Row }> {
  const lb = pending();
  const listener = pending({ load_balancer_id: lb.id, protocol: 'HTTP', protocol_port: 80, hsts_include_subdomains: false, hsts_preload: false });
  const pool = pending({ load_balancer_id: lb.id, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN', tls_enabled: false });
  const pool2 = pending({ load_balancer_id: lb.id, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN', tls_enabled: false });
  const monitorUp = pending({ pool_id: pool.id, type: 'HTTP', delay: 5, timeout: 3, max_retries: 2 });
  const monitorDown = pending({ pool_id: pool2.id, type: 'HTTP', delay: 5, timeout: 3, max_retries: 2, admin_state_up: false });
  await db.tx(async (t) => {
    await db.models.load_balancer.create(lb, { transaction: t });
    await db.models.listener.create(listener, { transaction: t });
    await db.models.pool.bulkCreate([pool, pool2], { transaction: t });
    await db.models.health_monitor.bulkCreate([monitorUp, monitorDown], { transaction: t });
  });
  return { lb, listener, pool, monitorUp, monitorDown };
}

const statusOf = async (table: 'load_balancer' | 'listener' | 'pool' | 'health_monitor', id: string) =>
  (await db.read(() => db.models[table].findByPk(id, { raw: true }))) as Row | null;
const amphoraeOf = async (lbId: string) => (await db.read(() => db.models.amphora.findAll({ where: { load_balancer_id: lbId }, raw: true }))) as Row[];

const amphoraWrite = (lbId: string) => (t: Parameters<Parameters<Database['tx']>[0]>[0]) =>
  db.insert('amphora', { id: randomUUID(), load_balancer_id: lbId, status: 'ALLOCATED', role: 'STANDALONE', cert_busy: false, created_at: nowSeconds(), updated_at: nowSeconds() }, t);

describe('completeLoadBalancer', () => {
  it('activates the tree (operating status of monitors from admin_state_up) and makes the end writes in the same transaction', async () => {
    const { lb, listener, pool, monitorUp, monitorDown } = await pendingTree();
    expect(await completeLoadBalancer(db, lb.id, [amphoraWrite(lb.id)])).toBe(true);
    expect((await statusOf('load_balancer', lb.id))!.provisioning_status).toBe('ACTIVE');
    expect((await statusOf('listener', listener.id))!.provisioning_status).toBe('ACTIVE');
    expect((await statusOf('pool', pool.id))!.provisioning_status).toBe('ACTIVE');
    expect(await statusOf('health_monitor', monitorUp.id)).toMatchObject({ provisioning_status: 'ACTIVE', operating_status: 'ONLINE' });
    expect(await statusOf('health_monitor', monitorDown.id)).toMatchObject({ provisioning_status: 'ACTIVE', operating_status: 'OFFLINE' });
    expect((await statusOf('load_balancer', lb.id))!.updated_at).not.toBeNull();
    expect(await amphoraeOf(lb.id)).toHaveLength(1);
  });

  it('commits nothing when an end write fails: the tree stays pending and no record is left', async () => {
    const { lb, listener } = await pendingTree();
    const failing = async () => {
      throw new Error('end write failed');
    };
    await expect(completeLoadBalancer(db, lb.id, [amphoraWrite(lb.id), failing])).rejects.toThrow('end write failed');
    expect((await statusOf('load_balancer', lb.id))!.provisioning_status).toBe('PENDING_CREATE');
    expect((await statusOf('listener', listener.id))!.provisioning_status).toBe('PENDING_CREATE');
    expect(await amphoraeOf(lb.id)).toHaveLength(0);
  });

  it('answers false for a load balancer that does not exist, writing nothing', async () => {
    const id = randomUUID();
    expect(await completeLoadBalancer(db, id, [amphoraWrite(id)])).toBe(false);
    expect(await amphoraeOf(id)).toHaveLength(0);
  });
});
