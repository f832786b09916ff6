// The seam between the API and whatever realises load balancers (Octavia's provider driver API).
// The API calls `checks` and `createVipPort` inside its transaction (a refusal rolls everything
// back), and `submit` after commit. Drivers report progress by moving provisioning_status in the
// database through driver/controller/completion.ts, never by return values.
import type { Transaction } from 'sequelize';
import type { Row } from '../common/db/database.ts';

export type ProviderRequest =
  | { kind: 'loadbalancer'; action: 'create' | 'update' | 'delete' | 'failover'; loadBalancerId: string }
  | { kind: 'listener' | 'pool' | 'member' | 'healthmonitor' | 'l7policy' | 'l7rule'; action: 'create' | 'update' | 'delete'; id: string; loadBalancerId: string }
  | { kind: 'member_batch'; poolId: string; loadBalancerId: string }
  | { kind: 'amphora'; action: 'failover' | 'configure' | 'delete'; amphoraId: string; loadBalancerId: string };

export interface Capability {
  name: string;
  description: string;
}

export interface VipRequest {
  loadBalancerId: string;
  projectId: string;
  address: string | null;
  subnetId: string | null;
  networkId: string | null;
  portId: string | null;
  additionalVips: Array<{ subnet_id: string; ip_address?: string | null }>;
}

export interface VipAllocation {
  address: string;
  subnetId: string;
  networkId: string;
  portId: string;
  additionalVips: Array<{ subnet_id: string; ip_address: string | null; port_id: string | null }>;
}

/** Thrown by checks: the API answers 501 "does not support a requested option". */
export class UnsupportedOptionError extends Error {}
/** Thrown by checks: the API answers 501 "does not support a requested action". */
export class NotImplementedByProviderError extends Error {}

export interface ProviderChecks {
  pool?(pool: Row): void;
  listener?(listener: Row): void;
  l7policy?(policy: Row, listener: Row): void;
  /** `servesListeners`: some listener uses the pool as its default pool. */
  member?(member: Row, pool: Row, loadBalancer: Row, servesListeners: boolean): void;
  healthMonitor?(monitor: Row, pool: Row): void;
  /** Validates flavor_data / availability_zone_data (already parsed JSON objects). */
  flavorData?(data: Record<string, unknown>): void;
  availabilityZoneData?(data: Record<string, unknown>): void;
}

export interface ProviderDriver {
  readonly name: string;
  readonly checks: ProviderChecks;
  flavorCapabilities(): Capability[];
  availabilityZoneCapabilities(): Capability[];
  /** Called inside the create transaction: reserves the VIP and returns its addresses. */
  createVipPort(req: VipRequest, t: Transaction): Promise<VipAllocation>;
  /** Finishes an operation an earlier process left pending on this load balancer. */
  resume(loadBalancerId: string): void;
  /** Resolves when no operation is running (tests, shutdown). */
  idle(): Promise<void>;
  /** Stops taking requests and waits for running ones. */
  stop(): Promise<void>;
  /** Called after the API committed; returns at once, progress shows in the database. */
  submit(req: ProviderRequest): void;
}
