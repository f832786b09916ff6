// Migration 0004: the appliance extensions of the Octavia API (issue 7): a listener's additional
// ports and ranges beyond protocol_port ("554,50000-65535"), whether a TCP listener also serves UDP
// on the same ports, its forwarding method (PROXY or DIRECT_ROUTING), and the body a health monitor
// expects. Rows that exist keep Octavia's behaviour (no extra ports, TCP only, PROXY, no body match).
// Frozen: never edit.
import { DataTypes, type QueryInterface } from 'sequelize';

export async function up({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.addColumn('listener', 'additional_ports', { type: DataTypes.TEXT, allowNull: true });
  await qi.addColumn('listener', 'also_udp', { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false });
  await qi.addColumn('listener', 'forwarding_method', { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'PROXY' });
  await qi.addColumn('health_monitor', 'expected_body', { type: DataTypes.STRING(255), allowNull: true });
}

export async function down({ context: qi }: { context: QueryInterface }): Promise<void> {
  await qi.removeColumn('health_monitor', 'expected_body');
  await qi.removeColumn('listener', 'forwarding_method');
  await qi.removeColumn('listener', 'also_udp');
  await qi.removeColumn('listener', 'additional_ports');
}
