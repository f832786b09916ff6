import { createRequire } from 'node:module';
import type net from 'node:net';

/**
 * The kernel relay (relay.cc, built by `npm ci` with node-gyp): established L4 sessions whose bytes are
 * moved between the client and the member socket by splice(2) on a thread of its own, never through
 * JavaScript. Optional: without the built addon, or with ARGONAUT_KERNEL_RELAY=off, TCP sessions use
 * the JavaScript path (tcp.ts), which behaves the same and costs more CPU per byte.
 */

/** Bytes of one relayed session: read from / written to the client, read from / written to the member. */
export interface RelayedBytes {
  clientRead: number;
  clientWritten: number;
  memberRead: number;
  memberWritten: number;
}

/** Why the relay ended a session on its own: both directions finished, a socket error, an idle timeout. */
export type RelayEnd = 'end' | 'error' | 'timeout';

interface RelayAddon {
  createRelay(onEnd: (id: number, cr: number, cw: number, mr: number, mw: number, reason: RelayEnd) => void): object;
  add(relay: object, id: number, clientFd: number, memberFd: number, clientIdleMs: number, memberIdleMs: number): boolean;
  bytes(relay: object, id: number): [number, number, number, number] | undefined;
  close(relay: object, id: number): void;
}

type EndListener = (bytes: RelayedBytes, reason: RelayEnd) => void;

export class KernelRelay {
  private readonly relay: object;
  private readonly listeners = new Map<number, EndListener>();
  private nextId = 1;
  /** Sessions handed to the relay so far (diagnostics and tests). */
  sessions = 0;

  constructor(private readonly addon: RelayAddon) {
    this.relay = addon.createRelay((id, cr, cw, mr, mw, reason) => {
      const listener = this.listeners.get(id);
      if (listener === undefined) return; // closed by JavaScript in the meantime
      this.listeners.delete(id);
      listener({ clientRead: cr, clientWritten: cw, memberRead: mr, memberWritten: mw }, reason);
    });
  }

  /**
   * Hands a session's two connected sockets to the relay (it works on duplicates of their descriptors;
   * the sockets stay open and owned by the caller, who must have stopped reading from them). Idle
   * timeouts are per socket, as `socket.setTimeout`; 0 = none. Returns the session's relay id, or null
   * when the descriptors could not be duplicated (the caller keeps serving the session itself).
   */
  add(client: net.Socket, member: net.Socket, clientIdleMs: number, memberIdleMs: number, onEnd: EndListener): number | null {
    const clientFd = descriptorOf(client);
    const memberFd = descriptorOf(member);
    if (clientFd === null || memberFd === null) return null;
    const id = this.nextId++;
    if (!this.addon.add(this.relay, id, clientFd, memberFd, clientIdleMs, memberIdleMs)) return null;
    this.listeners.set(id, onEnd);
    this.sessions++;
    return id;
  }

  /** Bytes moved so far; undefined once the session has ended. */
  bytes(id: number): RelayedBytes | undefined {
    const b = this.addon.bytes(this.relay, id);
    return b === undefined ? undefined : { clientRead: b[0], clientWritten: b[1], memberRead: b[2], memberWritten: b[3] };
  }

  /** Stops relaying a session now (its listener is not called). */
  close(id: number): void {
    this.listeners.delete(id);
    this.addon.close(this.relay, id);
  }
}

interface StreamHandle {
  fd?: number;
  reading?: boolean;
  readStop?(): number;
}

function handleOf(socket: net.Socket): StreamHandle | null {
  return ((socket as unknown as { _handle?: StreamHandle | null })._handle ?? null);
}

/** The descriptor of a plain TCP socket; null for anything else (a TLS socket's handle has none). */
export function descriptorOf(socket: net.Socket): number | null {
  const fd = handleOf(socket)?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

/**
 * Stops Node reading from a socket for good: the handle stops now, and the stream can no longer restart
 * it. `pause()` is not enough: Node goes on reading into the stream's buffer up to its high-water mark,
 * and a connect or a pending read-ahead tick calls `read(0)`, which starts the handle again.
 */
export function stopReading(socket: net.Socket): void {
  (socket as unknown as { _read: () => void })._read = () => {};
  const handle = handleOf(socket);
  if (handle?.reading && handle.readStop) {
    handle.reading = false;
    handle.readStop();
  }
}

let loaded: KernelRelay | null | undefined;

/**
 * This process's relay, or null when the addon is not built or ARGONAUT_KERNEL_RELAY=off (read at each
 * call, so that a test can compare both paths in one process).
 */
export function kernelRelay(): KernelRelay | null {
  if (process.env.ARGONAUT_KERNEL_RELAY === 'off') return null;
  if (loaded === undefined) loaded = loadRelay();
  return loaded;
}

function loadRelay(): KernelRelay | null {
  if (process.platform !== 'linux') return null;
  try {
    return new KernelRelay(createRequire(import.meta.url)('./build/Release/argonaut_relay.node') as RelayAddon);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    return null;
  }
}
