// Migration 0005: amphora.vip_holder (extension): whether the amphora said in its last heartbeat
// that it holds its load balancer's VIP (ACTIVE_STANDBY election); null until it reports. Frozen: never edit.
import type { QueryInterface } from 'sequelize';
import { bool } from '../common/db/columns.ts';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.addColumn('amphora', 'vip_holder', bool(true));
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.removeColumn('amphora', 'vip_holder');
}
