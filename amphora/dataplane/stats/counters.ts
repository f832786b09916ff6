/** Traffic counters of one listener or one member, in one worker. Absolute since the object was created. */
export class TrafficCounters {
  bytesIn = 0;
  bytesOut = 0;
  activeConnections = 0;
  totalConnections = 0;
  requestErrors = 0;

  snapshot(): TrafficSnapshot {
    return {
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      activeConnections: this.activeConnections,
      totalConnections: this.totalConnections,
      requestErrors: this.requestErrors,
    };
  }
}

export interface TrafficSnapshot {
  bytesIn: number;
  bytesOut: number;
  activeConnections: number;
  totalConnections: number;
  requestErrors: number;
}

export function emptyTraffic(): TrafficSnapshot {
  return { bytesIn: 0, bytesOut: 0, activeConnections: 0, totalConnections: 0, requestErrors: 0 };
}

export function addTraffic(into: TrafficSnapshot, from: TrafficSnapshot): void {
  into.bytesIn += from.bytesIn;
  into.bytesOut += from.bytesOut;
  into.activeConnections += from.activeConnections;
  into.totalConnections += from.totalConnections;
  into.requestErrors += from.requestErrors;
}
