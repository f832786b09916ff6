// The loopback network driver against the real database (SQLite in memory, or a fresh MariaDB
// database when ARGONAUT_TEST_DB=mysql): VIPs come from 127.0.100.2 up, skip addresses of load
// balancers that are not DELETED and never go twice to concurrent creates.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Transaction } from 'sequelize';
import { ApiError } from '../../api/errors.ts';
import type { Database } from '../../common/db/database.ts';
import { LOOPBACK_NETWORK_ID, LOOPBACK_SUBNET_ID, LoopbackNetworkDriver } from '../../driver/network/loopback.ts';
import { openTestDatabase } from '../helpers/database.ts';

let db: Database;
let closeDb: () => Promise<void>;

beforeAll(async () => {
  ({ db, close: closeDb } = await openTestDatabase());
});

afterAll(() => closeDb());

beforeEach(async () => {
  await db.models.load_balancer.destroy({ where: {} });
});

async function insertLb(t: Transaction | undefined, id: string, address: string, status = 'ACTIVE'): Promise<void> {
  await db.models.load_balancer.create(
    {
      id, project_id: 'p', provisioning_status: status, operating_status: 'OFFLINE', admin_state_up: true,
      vip_address: address, vip_subnet_id: LOOPBACK_SUBNET_ID, vip_network_id: LOOPBACK_NETWORK_ID, created_at: new Date(),
    },
    { transaction: t },
  );
}

/** What the API does: allocate inside the create transaction, then insert the row. */
async function create(driver: LoopbackNetworkDriver, address: string | null = null): Promise<string> {
  return db.tx(async (t) => {
    const id = randomUUID();
    const vip = await driver.allocateVipAddress({ subnetId: LOOPBACK_SUBNET_ID, address, loadBalancerId: id, transaction: t });
    await insertLb(t, id, vip);
    return vip;
  });
}

async function apiError(p: Promise<unknown>): Promise<ApiError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ApiError);
  return err as ApiError;
}

describe('loopback network driver', () => {
  it('knows its one subnet and network only; no ports, QoS policies or security groups', async () => {
    const driver = new LoopbackNetworkDriver(db);
    const subnet = { id: LOOPBACK_SUBNET_ID, networkId: LOOPBACK_NETWORK_ID, ipVersion: 4, cidr: '127.0.100.0/24' };
    expect(await driver.getSubnet(LOOPBACK_SUBNET_ID)).toEqual(subnet);
    expect(await driver.getSubnet(randomUUID())).toBeUndefined();
    expect(await driver.getNetworkSubnets(LOOPBACK_NETWORK_ID)).toEqual([subnet]);
    expect(await driver.getNetworkSubnets(LOOPBACK_SUBNET_ID)).toBeUndefined();
    expect(await driver.getPort(randomUUID())).toBeUndefined();
    expect(await driver.qosPolicyExists(randomUUID())).toBe(false);
    expect(await driver.securityGroupExists(randomUUID())).toBe(false);
  });

  it('hands out the lowest free address from 127.0.100.2, skipping load balancers that are not DELETED', async () => {
    const driver = new LoopbackNetworkDriver(db);
    await insertLb(undefined, randomUUID(), '127.0.100.2');
    await insertLb(undefined, randomUUID(), '127.0.100.3', 'DELETED');
    await insertLb(undefined, randomUUID(), '127.0.100.4', 'PENDING_DELETE');
    await insertLb(undefined, randomUUID(), '198.51.100.1');
    expect(await create(driver)).toBe('127.0.100.3');
    expect(await create(driver)).toBe('127.0.100.5');
    expect(await create(driver)).toBe('127.0.100.6');
  });

  it('gives a requested address when it is free, 409 when it is taken', async () => {
    const driver = new LoopbackNetworkDriver(db);
    expect(await create(driver, '127.0.100.77')).toBe('127.0.100.77');
    const err = await apiError(create(driver, '127.0.100.77'));
    expect([err.httpStatus, err.faultstring]).toEqual([409, `IP address 127.0.100.77 already allocated in subnet ${LOOPBACK_SUBNET_ID}.`]);
    expect(await create(driver)).toBe('127.0.100.2');
  });

  it('refuses with 400 a requested address outside the subnet or its range, and another subnet', async () => {
    const driver = new LoopbackNetworkDriver(db);
    const outside = await apiError(create(driver, '127.0.101.5'));
    expect([outside.httpStatus, outside.faultstring]).toEqual([400, `Validation failure: VIP address 127.0.101.5 is not in subnet ${LOOPBACK_SUBNET_ID}.`]);
    for (const address of ['127.0.100.0', '127.0.100.1', '127.0.100.255']) {
      const err = await apiError(create(driver, address));
      expect(err.httpStatus).toBe(400);
      expect(err.faultstring).toBe(`Validation failure: VIP address ${address} is outside the allocation range 127.0.100.2-127.0.100.254 of subnet ${LOOPBACK_SUBNET_ID}.`);
    }
    expect((await apiError(create(driver, '::1'))).httpStatus).toBe(400);
    const other = randomUUID();
    const err = await apiError(driver.allocateVipAddress({ subnetId: other, address: null, loadBalancerId: randomUUID() }));
    expect([err.httpStatus, err.faultstring]).toEqual([400, `Subnet ${other} not found.`]);
  });

  it('never gives one address to two concurrent creates', async () => {
    const driver = new LoopbackNetworkDriver(db);
    const vips = await Promise.all(Array.from({ length: 8 }, () => create(driver)));
    expect(new Set(vips).size).toBe(8);
    expect([...vips].sort()).toEqual(['127.0.100.2', '127.0.100.3', '127.0.100.4', '127.0.100.5', '127.0.100.6', '127.0.100.7', '127.0.100.8', '127.0.100.9']);
  });

  it('frees the address of a rolled back create at once', async () => {
    const driver = new LoopbackNetworkDriver(db);
    const failed = db.tx(async (t) => {
      await driver.allocateVipAddress({ subnetId: LOOPBACK_SUBNET_ID, address: '127.0.100.9', loadBalancerId: randomUUID(), transaction: t });
      throw new Error('a later check refused the request');
    });
    await expect(failed).rejects.toThrow('a later check refused');
    expect(await create(driver, '127.0.100.9')).toBe('127.0.100.9');
  });

  it('without a transaction, keeps an address reserved until its load balancer row appears', async () => {
    const driver = new LoopbackNetworkDriver(db);
    const id = randomUUID();
    const first = await driver.allocateVipAddress({ subnetId: LOOPBACK_SUBNET_ID, address: null, loadBalancerId: id });
    expect(first).toBe('127.0.100.2');
    expect(await driver.allocateVipAddress({ subnetId: LOOPBACK_SUBNET_ID, address: null, loadBalancerId: randomUUID() })).toBe('127.0.100.3');
    // The first load balancer is committed, then deleted: its address is free again.
    await insertLb(undefined, id, first, 'DELETED');
    expect(await create(driver, first)).toBe(first);
  });

  it('answers 409 when every address is taken', async () => {
    const driver = new LoopbackNetworkDriver(db);
    const rows = Array.from({ length: 253 }, (_, i) => ({
      id: randomUUID(), project_id: 'p', provisioning_status: 'ACTIVE', operating_status: 'OFFLINE', admin_state_up: true,
      vip_address: `127.0.100.${i + 2}`, created_at: new Date(),
    }));
    await db.models.load_balancer.bulkCreate(rows);
    const err = await apiError(create(driver));
    expect([err.httpStatus, err.faultstring]).toEqual([409, `No more IP addresses available on network ${LOOPBACK_NETWORK_ID}.`]);
  });
});
