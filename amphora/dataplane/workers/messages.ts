import type { HealthReport } from '../health/supervisor.ts';
import type { DataPlaneSnapshot } from '../stats/snapshot.ts';

/** Messages from the primary to a worker. */
export type ToWorker =
  | { type: 'prepare'; seq: number; config: unknown }
  | { type: 'commit'; seq: number }
  | { type: 'abort'; seq: number }
  | { type: 'health'; reports: HealthReport[] }
  | { type: 'stick'; poolId: string; key: string; serverId: string }
  | { type: 'snapshot'; seq: number }
  | { type: 'metrics'; seq: number; text: string | null; error: string | null }
  | { type: 'shutdown'; graceMs: number };

/** Messages from a worker to the primary. */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'prepared'; seq: number; error: string | null }
  | { type: 'committed'; seq: number }
  | { type: 'snapshot'; seq: number; snapshot: DataPlaneSnapshot }
  | { type: 'stick'; poolId: string; key: string; serverId: string }
  | { type: 'metrics'; seq: number };
