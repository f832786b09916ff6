// Persistence sharing between the two amphorae of an ACTIVE_STANDBY pair (extension): the MASTER
// streams the persistence entries its data plane learns to the BACKUP over TCP, so that sticky clients keep
// their member when the BACKUP takes the VIP. Every amphora runs a receiver on its own address
// (vrrp.address:vrrp.syncPort) and a sender towards each peer: entries are learned only where the
// traffic goes (the VIP holder), and a peer that (re)connects first gets the sender's whole journal.
//
// Wire format (newline-delimited JSON, UTF-8):
//   receiver -> sender, once on connect:  {"hello":"argonaut-persistence-sync/1","nonce":"<32 hex>"}
//   sender -> receiver, any number:       {"seq":1,"entries":[["<pool id>","<key>","<member id>"],...],"mac":"<64 hex>"}
// mac = HMAC-SHA256(vrrp.authKey, "argonaut-persistence-sync/1\n" + nonce + "\n" + seq + "\n" + JSON of entries);
// seq starts at 1 and goes up by one per line. The nonce binds the lines to this connection (no
// replay from another one), the seq to their order. The first line after connecting carries the
// sender's whole journal. A line that fails validation closes the connection; nothing of it is applied.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { z } from 'zod';
import type { Logger } from '../../common/logging.ts';
import type { PersistenceEntry } from '../dataplane/balancer/persistence-journal.ts';

export const SYNC_PROTOCOL = 'argonaut-persistence-sync/1';
/** Longest line accepted (a full journal of a few pools fits; larger dumps are split by the sender). */
const MAX_LINE = 4 * 1024 * 1024;
const ENTRIES_PER_LINE = 2000;
const RECONNECT_MS = 500;

const idLike = z.string().min(1).max(255);
const HelloSchema = z.object({ hello: z.literal(SYNC_PROTOCOL), nonce: z.string().regex(/^[0-9a-f]{32}$/) }).strict();
const BatchSchema = z
  .object({
    seq: z.number().int().min(1),
    entries: z.array(z.tuple([idLike, z.string().max(1024), z.string().max(255)])).max(ENTRIES_PER_LINE),
    mac: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .strict();

export function batchMac(key: Buffer, nonce: string, seq: number, entries: PersistenceEntry[]): string {
  return createHmac('sha256', key).update(`${SYNC_PROTOCOL}\n${nonce}\n${seq}\n${JSON.stringify(entries)}`).digest('hex');
}

/** Splits a socket's data into lines, refusing longer ones than MAX_LINE. */
function onLines(socket: Socket, handle: (line: string) => void, tooLong: () => void): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line !== '') handle(line);
      if (socket.destroyed) return;
    }
    if (buffered.length > MAX_LINE) tooLong();
  });
}

export interface ReceiverOptions {
  address: string;
  port: number;
  key: Buffer;
  log: Logger;
  /** Entries from the peer, validated and authenticated. */
  onEntries(entries: PersistenceEntry[]): void;
}

/** Accepts the peer's sender; applies what it sends. */
export class SyncReceiver {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  received = 0;
  rejected = 0;

  constructor(private readonly opts: ReceiverOptions) {}

  async start(): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.opts.address, port: this.opts.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.opts.log.error({ err }, 'persistence sync: receiver error'));
    this.server = server;
    this.opts.log.info({ address: this.opts.address, port: this.opts.port }, 'persistence sync: receiving');
  }

  private accept(socket: Socket): void {
    const { log, key } = this.opts;
    const peer = socket.remoteAddress;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', (err) => log.debug({ err, peer }, 'persistence sync: connection error'));
    const nonce = randomBytes(16).toString('hex');
    let expected = 1;
    const refuse = (why: string) => {
      this.rejected++;
      log.warn({ peer, why }, 'persistence sync: line refused; closing the connection');
      socket.destroy();
    };
    onLines(
      socket,
      (line) => {
        let batch: z.infer<typeof BatchSchema>;
        try {
          const parsed = BatchSchema.safeParse(JSON.parse(line));
          if (!parsed.success) return refuse(parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
          batch = parsed.data;
        } catch {
          return refuse('not JSON');
        }
        const mac = Buffer.from(batchMac(key, nonce, batch.seq, batch.entries), 'hex');
        if (!timingSafeEqual(mac, Buffer.from(batch.mac, 'hex'))) return refuse('bad MAC');
        if (batch.seq !== expected) return refuse(`sequence ${batch.seq}, expected ${expected}`);
        expected++;
        this.received += batch.entries.length;
        this.opts.onEntries(batch.entries);
      },
      () => refuse('line too long'),
    );
    socket.write(`${JSON.stringify({ hello: SYNC_PROTOCOL, nonce })}\n`);
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export interface SenderOptions {
  peer: string;
  port: number;
  /** Source address (the amphora's own address on the VIP network). */
  localAddress: string;
  key: Buffer;
  log: Logger;
  /** The whole journal, sent first on every (re)connection. */
  dump(): PersistenceEntry[];
}

/** Connects to one peer's receiver (again and again while started) and streams entries to it. */
export class SyncSender {
  private socket: Socket | null = null;
  private nonce: string | null = null;
  private seq = 0;
  private pending: PersistenceEntry[] = [];
  private flushTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private running = false;
  sent = 0;
  /** Resolves once a journal was sent on a connection (the first time). */
  readonly dumped: Promise<void>;
  private markDumped: () => void = () => {};

  constructor(private readonly opts: SenderOptions) {
    this.dumped = new Promise((resolve) => (this.markDumped = resolve));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  stop(): void {
    this.running = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.retryTimer = this.flushTimer = null;
    this.socket?.destroy();
    this.socket = null;
    this.pending = [];
  }

  /** Queues one entry; sent within a few milliseconds (batched) if connected, else with the next dump. */
  send(entry: PersistenceEntry): void {
    if (!this.nonce) return; // not connected: the dump after the connection carries it
    this.pending.push(entry);
    if (this.pending.length >= ENTRIES_PER_LINE) this.flush();
    else this.flushTimer ??= setTimeout(() => this.flush(), 5);
  }

  private connect(): void {
    const { peer, port, localAddress, log } = this.opts;
    const socket = connect({ host: peer, port, localAddress });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('error', (err) => log.debug({ err, peer }, 'persistence sync: cannot reach the peer'));
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.nonce = null;
      this.pending = [];
      if (this.running) this.retryTimer = setTimeout(() => this.connect(), RECONNECT_MS);
    });
    onLines(
      socket,
      (line) => {
        const hello = (() => {
          try {
            return HelloSchema.safeParse(JSON.parse(line));
          } catch {
            return null;
          }
        })();
        if (!hello?.success || this.nonce) {
          log.warn({ peer }, 'persistence sync: unexpected line from the receiver; reconnecting');
          socket.destroy();
          return;
        }
        this.nonce = hello.data.nonce;
        this.seq = 0;
        const dump = this.opts.dump();
        for (let i = 0; i < dump.length; i += ENTRIES_PER_LINE) this.write(dump.slice(i, i + ENTRIES_PER_LINE));
        if (dump.length === 0) this.write([]);
        log.info({ peer, entries: dump.length }, 'persistence sync: connected; journal sent');
        this.markDumped();
      },
      () => socket.destroy(),
    );
  }

  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    const batch = this.pending;
    this.pending = [];
    if (batch.length > 0 && this.nonce) this.write(batch);
  }

  private write(entries: PersistenceEntry[]): void {
    const seq = ++this.seq;
    const mac = batchMac(this.opts.key, this.nonce!, seq, entries);
    this.socket?.write(`${JSON.stringify({ seq, entries, mac })}\n`);
    this.sent += entries.length;
  }
}
