// Listener statistics as the API shows them: sums of the per-amphora rows.
import type { Row } from '../common/db/database.ts';
import type { Services } from './services.ts';

/** Sums the per-amphora statistics rows of some listeners. */
export async function listenerStatistics(services: Services, listenerIds: string[]) {
  const { db } = services;
  const totals = { bytes_in: 0, bytes_out: 0, active_connections: 0, total_connections: 0, request_errors: 0 };
  if (listenerIds.length === 0) return totals;
  const rows = (await db.read(() => db.models.listener_statistics.findAll({ where: { listener_id: listenerIds }, raw: true }))) as Row[];
  const amphoraIds = [...new Set(rows.map((r) => r.amphora_id))];
  const allocated = new Set(
    ((await db.read(() => db.models.amphora.findAll({ where: { id: amphoraIds, status: 'ALLOCATED' }, attributes: ['id'], raw: true }))) as Row[]).map((a) => a.id),
  );
  for (const r of rows) {
    totals.bytes_in += Number(r.bytes_in);
    totals.bytes_out += Number(r.bytes_out);
    totals.total_connections += Number(r.total_connections);
    totals.request_errors += Number(r.request_errors);
    if (allocated.has(r.amphora_id) || r.amphora_id === r.listener_id) totals.active_connections += Number(r.active_connections);
  }
  return totals;
}
