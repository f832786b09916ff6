// Shared by the amphora agent tests: configs on a loopback VIP, exact-byte HTTP exchanges, a data plane
// that records what it applies, and a controller stand-in on a transport.
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import pino from 'pino';
import type { AmphoraConfigInput, HealthMonitorInput, ListenerInput, PoolInput } from '../../common/amphora-config/index.ts';
import type { Logger } from '../../common/logging.ts';
import type { ConfigPush, Heartbeat } from '../../common/messages.ts';
import type { ControllerTransport } from '../../common/transport/transport.ts';
import type { DataPlane } from '../../amphora/dataplane/dataplane.ts';
import type { ConfigDiff } from '../../amphora/dataplane/config/diff.ts';
import type { DataPlaneSnapshot } from '../../amphora/dataplane/stats/snapshot.ts';
import type { AmphoraConfig } from '../../common/amphora-config/index.ts';

export const MASTER_KEY = 'agent-test-master-key-0123456789';

/** A VIP on the loopback network (127.0.0.0/8 is all local on Linux), different per call. */
export function loopbackVip(): string {
  return `127.0.100.${2 + Math.floor(Math.random() * 250)}`;
}

export const uuid = (): string => randomUUID();

export function document(
  amphoraId: string,
  configVersion: number,
  vip: string,
  listeners: ListenerInput[],
  pools: PoolInput[],
): AmphoraConfigInput {
  return { version: 1, configVersion, amphoraId, vips: [{ address: vip }], listeners, pools };
}

export function push(amphoraId: string, configVersion: number, config: unknown): ConfigPush {
  return { amphoraId, configVersion, config };
}

export function httpListener(id: string, port: number, poolId: string | null, extra: Partial<ListenerInput> = {}): ListenerInput {
  return { id, protocol: 'HTTP', ports: [port], defaultPoolId: poolId, ...extra };
}

export function memberPool(id: string, protocol: PoolInput['protocol'], members: Array<{ id: string; port: number; enabled?: boolean }>, extra: Partial<PoolInput> = {}): PoolInput {
  return {
    id,
    protocol,
    algorithm: 'ROUND_ROBIN',
    members: members.map((m) => ({ id: m.id, address: '127.0.0.1', port: m.port, enabled: m.enabled ?? true })),
    ...extra,
  };
}

/**
 * A dead member (connection refused) is DOWN at its first check; a healthy one stays UP through an
 * event-loop stall: it takes a check slower than 250 ms to fail, and three failures in a row to go DOWN.
 */
export function httpMonitor(id: string): HealthMonitorInput {
  return { id, type: 'HTTP', delay: 250, timeout: 250, maxRetries: 1, maxRetriesDown: 3, urlPath: '/' };
}

/** A logger that keeps every event at or above `level` for assertions (and prints nothing). */
export function captureLogger(level = 'info'): { logger: Logger; events: Array<Record<string, unknown>> } {
  const events: Array<Record<string, unknown>> = [];
  const logger = pino({ level }, { write: (line: string) => void events.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, events };
}

export const silentLogger = (): Logger => pino({ level: 'silent' });

/** Polls `check` until it returns true or the deadline passes (then throws with `what`). */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Exchange {
  status: number;
  body: string;
  /** Bytes the client wrote and read, exactly. */
  sent: number;
  received: number;
}

/** One HTTP/1.1 request on a new connection (Connection: close), counting the bytes on the wire. */
export function httpExchange(host: string, port: number, path = '/', timeoutMs = 5000): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const request = `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
    const socket = net.connect({ host, port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error(`no complete answer from ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
    socket.on('connect', () => socket.write(request));
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      socket.end();
      const raw = Buffer.concat(chunks);
      const text = raw.toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      const split = text.indexOf('\r\n\r\n');
      resolve({ status, body: split >= 0 ? text.slice(split + 4) : '', sent: Buffer.byteLength(request), received: raw.length });
    });
  });
}

/** Resolves with the error code of a connection attempt ('connected' if it succeeds). */
export function connectOutcome(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.on('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/**
 * Wraps a data plane: records the configVersion of every apply (and its order), can slow applies down,
 * and says when an apply has begun.
 */
export class RecordingDataPlane implements DataPlane {
  readonly applied: number[] = [];
  readonly begun: number[] = [];
  applyDelayMs = 0;
  stopped = false;

  constructor(private readonly inner: DataPlane) {}

  get config(): AmphoraConfig | null {
    return this.inner.config;
  }

  async apply(input: unknown): Promise<ConfigDiff> {
    const version = (input as { configVersion: number }).configVersion;
    this.begun.push(version);
    if (this.applyDelayMs > 0) await sleep(this.applyDelayMs);
    const diff = await this.inner.apply(input);
    this.applied.push(version);
    return diff;
  }

  snapshot(): Promise<DataPlaneSnapshot> {
    return this.inner.snapshot();
  }

  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    await this.inner.stop(graceMs);
  }

  onPersistenceLearned(listener: Parameters<DataPlane['onPersistenceLearned']>[0]): void {
    this.inner.onPersistenceLearned(listener);
  }

  importPersistence(poolId: string, key: string, serverId: string): void {
    this.inner.importPersistence(poolId, key, serverId);
  }

  serving(): ReturnType<DataPlane['serving']> {
    return this.inner.serving();
  }

  onStoppedServing(listener: Parameters<DataPlane['onStoppedServing']>[0]): void {
    this.inner.onStoppedServing(listener);
  }
}

/** The test's controller: answers config fetches with `current` and records heartbeats. */
export class FakeController {
  current: ConfigPush | null = null;
  fetches = 0;
  readonly heartbeats: Heartbeat[] = [];
  readonly heartbeatTimes: number[] = [];

  constructor(readonly transport: ControllerTransport) {}

  async listen(): Promise<void> {
    await this.transport.onAmphoraReport({
      heartbeat: async (h) => {
        this.heartbeats.push(h);
        this.heartbeatTimes.push(Date.now());
      },
      configFetch: async () => {
        this.fetches++;
        return this.current;
      },
    });
  }

  heartbeatsSince(index: number): Heartbeat[] {
    return this.heartbeats.slice(index);
  }
}
