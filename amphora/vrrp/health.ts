// Own-health checks of an amphora: its interface is up, its data plane accepts connections.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { HealthResult } from './election.ts';

/**
 * Whether `device` is operationally up, from /sys (the namespace's own when the process runs
 * under `ip netns exec`). "unknown" counts as up (devices without carrier reporting).
 */
export function interfaceHealth(device: string): HealthResult {
  let state: string;
  try {
    state = readFileSync(`/sys/class/net/${device}/operstate`, 'utf8').trim();
  } catch {
    return { ok: false, reason: `interface ${device} not found` };
  }
  return state === 'up' || state === 'unknown' ? { ok: true } : { ok: false, reason: `interface ${device} is ${state}` };
}

/** Connects to host:port; ok when the connection is accepted within timeoutMs. */
export function tcpHealth(host: string, port: number, timeoutMs: number): Promise<HealthResult> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (r: HealthResult) => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, reason: `data plane ${host}:${port}: no answer within ${timeoutMs} ms` }), timeoutMs);
    s.once('connect', () => done({ ok: true }));
    s.once('error', (e: NodeJS.ErrnoException) => done({ ok: false, reason: `data plane ${host}:${port}: ${e.code ?? e.message}` }));
  });
}
