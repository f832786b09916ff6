// Adverts over unicast UDP: signs what the election sends, and passes on only what is authentic,
// from a configured peer, of this group and fresh (replays rejected).
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import type { OutgoingAdvert } from './election.ts';
import { canonicalAddress, decodeAdvert, encodeAdvert, ReplayGuard, type Advert, type RejectReason } from './packet.ts';

export interface TransportOptions {
  localAddress: string;
  peers: string[];
  port: number;
  routerId: number;
  key: Buffer;
  epoch: bigint;
  /** Older epochs of a peer silent this long are accepted again (see ReplayGuard). */
  staleAfterMs: number;
}

export class UdpTransport {
  private socket: Socket | null = null;
  private peers: Set<string>;
  private readonly replay: ReplayGuard;
  readonly rejected: Record<RejectReason, number> = { malformed: 0, 'bad-mac': 0, 'unknown-peer': 0, 'sender-mismatch': 0, 'other-router': 0, replay: 0 };
  private lastSendError = '';

  constructor(
    private readonly opts: TransportOptions,
    private readonly log: Logger,
  ) {
    this.peers = new Set(opts.peers.map(canonicalAddress));
    this.replay = new ReplayGuard(opts.staleAfterMs);
  }

  /** Binds to localAddress:port and calls onAdvert for every accepted advert. */
  async open(onAdvert: (a: Advert) => void): Promise<void> {
    const socket = createSocket({ type: isIPv6(this.opts.localAddress) ? 'udp6' : 'udp4', reuseAddr: false });
    socket.on('message', (msg, rinfo) => {
      const a = this.accept(msg, rinfo.address, Date.now());
      if (a) onAdvert(a);
    });
    socket.on('error', (err) => this.log.error({ err }, 'vrrp: advert socket error'));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.opts.port, this.opts.localAddress, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    this.socket = socket;
  }

  /** Adverts go to (and are accepted from) these peers from now on; replay state of known peers is kept. */
  setPeers(peers: string[], staleAfterMs: number): void {
    this.peers = new Set(peers.map(canonicalAddress));
    this.replay.staleAfterMs = staleAfterMs;
  }

  /** The checks of a received datagram, in order; null (and a counted, logged reason) when rejected. */
  accept(msg: Buffer, from: string, now: number): Advert | null {
    const source = canonicalAddress(from);
    const reject = (reason: RejectReason) => {
      this.rejected[reason] += 1;
      this.log.warn({ from: source, reason }, 'vrrp: advert rejected');
      return null;
    };
    if (!this.peers.has(source)) return reject('unknown-peer');
    const decoded = decodeAdvert(msg, this.opts.key);
    if (!decoded.ok) return reject(decoded.reason);
    const a = decoded.advert;
    if (a.sender !== source) return reject('sender-mismatch');
    if (a.routerId !== this.opts.routerId) return reject('other-router');
    if (!this.replay.accept(source, a.epoch, a.seq, now)) return reject('replay');
    return a;
  }

  /** The signed bytes of an advert from this node. */
  encode(advert: OutgoingAdvert): Buffer {
    return encodeAdvert({ ...advert, routerId: this.opts.routerId, epoch: this.opts.epoch, sender: this.opts.localAddress }, this.opts.key);
  }

  send(advert: OutgoingAdvert): void {
    const socket = this.socket;
    if (!socket) return;
    const bytes = this.encode(advert);
    for (const peer of this.peers) {
      socket.send(bytes, this.opts.port, peer, (err) => {
        // An interface that is down fails every send: log a change of error once, not every interval.
        const text = err ? String((err as NodeJS.ErrnoException).code ?? err.message) : '';
        if (text !== this.lastSendError) {
          if (err) this.log.warn({ peer, err: text }, 'vrrp: cannot send adverts');
          else this.log.info({ peer }, 'vrrp: sending adverts again');
          this.lastSendError = text;
        }
      });
    }
  }

  async close(): Promise<void> {
    const socket = this.socket;
    this.socket = null;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}
