// AgentConfigDelivery records each configuration before pushing it. On MariaDB (ARGONAUT_TEST_DB=mysql),
// many amphorae recording their first configuration at once must not deadlock on each other's
// locks: a restarted controller resumes every pending load balancer at once, each with a new amphora.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database, Row } from '../../common/db/database.ts';
import { createLogger } from '../../common/logging.ts';
import type { ConfigAck, ConfigPush } from '../../common/messages.ts';
import type { ControllerTransport } from '../../common/transport/transport.ts';
import { AgentConfigDelivery } from '../../driver/amphora/config-delivery.ts';
import { refreshHealth } from '../../driver/health/heartbeat-db.ts';
import type { LoadBalancerTree } from '../../driver/controller/completion.ts';
import { openTestDatabase } from '../helpers/database.ts';

let db: Database;
let close: () => Promise<void>;
const pushed: ConfigPush[] = [];

/** Acknowledges every push with its version, as a living amphora does. */
const transport = {
  async pushConfig(push: ConfigPush): Promise<ConfigAck> {
    pushed.push(push);
    return { amphoraId: push.amphoraId, ok: true, configVersion: push.configVersion } as ConfigAck;
  },
  async forgetAmphora(): Promise<void> {},
} as unknown as ControllerTransport;

function tree(lbId: string): LoadBalancerTree {
  const lb: Row = { id: lbId, vip_address: '127.0.100.9', vip_port_id: randomUUID(), vip_subnet_id: randomUUID(), additional_vips: null };
  return { lb, listeners: [], pools: [], members: [], monitors: [], policies: [], rules: [] };
}

beforeAll(async () => {
  ({ db, close } = await openTestDatabase());
});

afterAll(() => close());

describe('AgentConfigDelivery on the database', () => {
  it('records the first configurations of many new amphorae at once, then their next versions', async () => {
    const delivery = new AgentConfigDelivery(db, transport, createLogger('delivery-test', 'silent'), 5000, Buffer.alloc(32, 7), async () => null);
    const amphorae = Array.from({ length: 16 }, () => ({ amphoraId: randomUUID(), lbId: randomUUID() }));
    const first = await Promise.allSettled(amphorae.map((a) => delivery.deliver(a.amphoraId, async () => tree(a.lbId))));
    expect(first.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    await Promise.all(amphorae.map((a) => delivery.deliver(a.amphoraId, async () => tree(a.lbId))));

    const rows = (await db.models.amphora_config.findAll({ raw: true })) as Row[];
    expect(rows).toHaveLength(amphorae.length);
    expect(rows.every((r) => r.config_version === 2)).toBe(true);
    // What an amphora fetches is what it was last pushed.
    const fetched = await delivery.fetch({ amphoraId: amphorae[0]!.amphoraId } as never);
    expect(fetched).toBeNull(); // no amphora row in service: nothing is served
    await db.tx((t) => db.models.amphora.create({ id: amphorae[0]!.amphoraId, load_balancer_id: amphorae[0]!.lbId, status: 'ALLOCATED', cert_busy: false, created_at: new Date() }, { transaction: t }));
    const served = await delivery.fetch({ amphoraId: amphorae[0]!.amphoraId } as never);
    expect(served).toMatchObject({ amphoraId: amphorae[0]!.amphoraId, configVersion: 2, config: { configVersion: 2, loadBalancerId: amphorae[0]!.lbId } });
    expect(pushed.filter((p) => p.amphoraId === amphorae[0]!.amphoraId).map((p) => p.configVersion)).toEqual([1, 2]);
  });
});

describe('refreshHealth on the database', () => {
  it('creates a new amphora’s health row once with its time, then moves the time on; concurrent first writers do not collide', async () => {
    const amphoraId = randomUUID();
    const first = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    // A heartbeat and the acknowledgement of the first configuration write the row of a new amphora.
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => db.tx((t) => refreshHealth(db, amphoraId, first, t))));
    expect(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    const read = async () => (await db.models.amphora_health.findAll({ where: { amphora_id: amphoraId }, raw: true })) as Row[];
    let rows = await read();
    expect(rows).toHaveLength(1);
    expect(new Date(rows[0]!.last_update).getTime()).toBe(first.getTime());
    expect(Boolean(rows[0]!.busy)).toBe(false);

    await db.models.amphora_health.update({ busy: true }, { where: { amphora_id: amphoraId } });
    const later = new Date(first.getTime() + 30_000);
    await db.tx((t) => refreshHealth(db, amphoraId, later, t));
    rows = await read();
    expect(new Date(rows[0]!.last_update).getTime()).toBe(later.getTime());
    expect(Boolean(rows[0]!.busy)).toBe(true); // left as it was
  });
});
