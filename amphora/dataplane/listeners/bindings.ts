import dgram from 'node:dgram';
import net from 'node:net';
import type { Transport } from '../../../common/amphora-config/index.ts';
import { familyOf } from '../net/address.ts';

/** One address:port a listener serves, keyed so that the same socket can pass from one config to the next. */
export interface BindingSpec {
  transport: Transport;
  address: string;
  port: number;
}

export function bindingKey(spec: BindingSpec): string {
  return `${spec.transport} ${spec.address} ${spec.port}`;
}

/** Receives what arrives on a bound socket; swapped atomically when a config is committed. */
export interface StreamTarget {
  accept(socket: net.Socket, localPort: number): void;
}

export interface DatagramTarget {
  receive(socket: dgram.Socket, message: Buffer, remote: dgram.RemoteInfo, localPort: number): void;
}

interface StreamBinding {
  kind: 'stream';
  spec: BindingSpec;
  server: net.Server;
  target: StreamTarget | null;
}

interface DatagramBinding {
  kind: 'datagram';
  spec: BindingSpec;
  socket: dgram.Socket;
  target: DatagramTarget | null;
}

type Binding = StreamBinding | DatagramBinding;

export interface BindOptions {
  /** In a cluster worker: bind UDP privately instead of through the primary. */
  exclusiveUdp: boolean;
  /** Errors a listening socket raises after it is bound (accept failures, ICMP feedback). */
  onSocketError: (spec: BindingSpec, err: Error) => void;
}

/**
 * The sockets the data plane listens on. A socket is opened once and kept across config applies for as
 * long as some listener serves its address and port, so unchanged listeners never drop connections.
 */
export class BindingTable {
  private readonly bindings = new Map<string, Binding>();

  constructor(private readonly options: BindOptions) {}

  has(key: string): boolean {
    return this.bindings.has(key);
  }

  keys(): IterableIterator<string> {
    return this.bindings.keys();
  }

  /** Opens the sockets in `specs` that are not open yet. On any failure closes what it opened and throws. */
  async open(specs: readonly BindingSpec[]): Promise<string[]> {
    const opened: string[] = [];
    try {
      // Bind in bounded batches: a port range can name thousands of sockets.
      for (let i = 0; i < specs.length; i += 256) {
        const batch = specs.slice(i, i + 256).filter((s) => !this.bindings.has(bindingKey(s)));
        await Promise.all(
          batch.map(async (spec) => {
            const binding = spec.transport === 'udp' ? await this.bindDatagram(spec) : await this.bindStream(spec);
            this.bindings.set(bindingKey(spec), binding);
            opened.push(bindingKey(spec));
          }),
        );
      }
    } catch (err) {
      await this.close(opened);
      throw err;
    }
    return opened;
  }

  setStreamTarget(key: string, target: StreamTarget): void {
    const binding = this.bindings.get(key);
    if (binding?.kind === 'stream') binding.target = target;
  }

  setDatagramTarget(key: string, target: DatagramTarget): void {
    const binding = this.bindings.get(key);
    if (binding?.kind === 'datagram') binding.target = target;
  }

  datagramSocket(key: string): dgram.Socket | undefined {
    const binding = this.bindings.get(key);
    return binding?.kind === 'datagram' ? binding.socket : undefined;
  }

  /** Stops listening on `keys`; established connections are left to finish (or to the caller to close). */
  async close(keys: Iterable<string>): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const key of keys) {
      const binding = this.bindings.get(key);
      if (binding === undefined) continue;
      this.bindings.delete(key);
      if (binding.kind === 'stream') {
        // Listening stops now; close()'s callback would only come once every established connection ended.
        binding.server.close();
        closing.push(new Promise((resolve) => setImmediate(resolve)));
      }
      else closing.push(new Promise((resolve) => binding.socket.close(() => resolve())));
    }
    await Promise.all(closing);
  }

  async closeAll(): Promise<void> {
    await this.close([...this.bindings.keys()]);
  }

  private bindStream(spec: BindingSpec): Promise<StreamBinding> {
    const binding: StreamBinding = { kind: 'stream', spec, server: undefined as unknown as net.Server, target: null };
    const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
      if (binding.target === null) socket.destroy();
      else binding.target.accept(socket, spec.port);
    });
    binding.server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new Error(`cannot listen on ${spec.address}:${spec.port}/tcp: ${err.message}`));
      server.once('error', onError);
      server.listen({ host: spec.address, port: spec.port, backlog: 4096, ipv6Only: familyOf(spec.address) === 'ipv6' }, () => {
        server.off('error', onError);
        server.on('error', (err) => this.options.onSocketError(spec, err));
        resolve(binding);
      });
    });
  }

  private bindDatagram(spec: BindingSpec): Promise<DatagramBinding> {
    const socket = dgram.createSocket({ type: familyOf(spec.address) === 'ipv4' ? 'udp4' : 'udp6', ipv6Only: familyOf(spec.address) === 'ipv6' });
    const binding: DatagramBinding = { kind: 'datagram', spec, socket, target: null };
    socket.on('message', (message, remote) => binding.target?.receive(socket, message, remote, spec.port));
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new Error(`cannot listen on ${spec.address}:${spec.port}/udp: ${err.message}`));
      socket.once('error', onError);
      socket.bind({ address: spec.address, port: spec.port, exclusive: this.options.exclusiveUdp }, () => {
        socket.off('error', onError);
        socket.on('error', (err) => this.options.onSocketError(spec, err));
        resolve(binding);
      });
    });
  }
}
