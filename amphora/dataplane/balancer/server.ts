import type { Member } from '../../../common/amphora-config/index.ts';
import { TrafficCounters } from '../stats/counters.ts';

/** HAProxy's admin state: ready serves, drain keeps sticky sessions only, maint serves nothing. */
export type AdminState = 'ready' | 'drain' | 'maint';

/** The heartbeat's member status vocabulary (contract §4.2). */
export type ServerStatus = string;

/** A member as the data plane runs it: a "server" of a backend, with health and admin state. */
export class Server {
  readonly id: string;
  address: string;
  port: number;
  weight: number;
  backup: boolean;
  maxConnections: number | null;
  adminState: AdminState;
  /** Whether a health monitor watches this server; without one it is "no check" and always healthy. */
  checked = false;
  healthy = true;
  /** HAProxy-style check label: "UP", "DOWN", "UP 1/3" (going down), "DOWN 1/2" (going up). */
  checkLabel = 'UP';
  readonly counters = new TrafficCounters();
  /** Smooth weighted round-robin state. */
  currentWeight = 0;

  constructor(member: Member) {
    this.id = member.id;
    this.address = member.address;
    this.port = member.port;
    this.weight = member.weight;
    this.backup = member.backup;
    this.maxConnections = member.maxConnections;
    this.adminState = adminStateOf(member);
  }

  /** Applies a changed member in place; returns false when the target moved (a new server is needed). */
  update(member: Member): boolean {
    if (member.address !== this.address || member.port !== this.port) return false;
    this.weight = member.weight;
    this.backup = member.backup;
    this.maxConnections = member.maxConnections;
    this.adminState = adminStateOf(member);
    return true;
  }

  get full(): boolean {
    return this.maxConnections !== null && this.counters.activeConnections >= this.maxConnections;
  }

  /** May receive new, non-sticky traffic. */
  get eligible(): boolean {
    return this.adminState === 'ready' && this.healthy;
  }

  /** May receive traffic that persistence pins to it (a draining server still serves its sessions). */
  get servesSticky(): boolean {
    return this.adminState !== 'maint' && this.healthy && !this.full;
  }

  get status(): ServerStatus {
    if (this.adminState === 'maint') return 'MAINT';
    if (this.checked && !this.healthy) return this.checkLabel;
    if (this.adminState === 'drain') return 'DRAIN';
    return this.checked ? this.checkLabel : 'no check';
  }
}

function adminStateOf(member: Member): AdminState {
  if (!member.enabled) return 'maint';
  if (member.weight === 0) return 'drain';
  return 'ready';
}
