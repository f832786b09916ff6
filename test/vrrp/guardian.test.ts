// The guardian on its own (root): an empty bridge carrying a VIP, a UDP socket standing for the
// peer, and the guardian's input pipe closed or left silent the way a dead or hung election leaves it.
// Timestamps of the resignation's arrival and of the VIP's removal (stamped by `ip -ts monitor` as it
// reads the kernel's notification, not when the line reaches this process) check the order:
// resignation first, VIP kept for the grace, then removed, all within one advert interval.
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ip } from '../../driver/network/local/ip.ts';
import { Guardian, GuardianSlot, type GuardianOptions } from '../../amphora/vrrp/guardian.ts';
import { IS_ROOT, testPrefix } from '../driver/local/netns-helpers.ts';

const quiet = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (!IS_ROOT) console.warn('test/vrrp/guardian.test.ts skipped: it needs root (an interface and addresses)');

describe.skipIf(!IS_ROOT)('vrrp guardian (root)', () => {
  const device = `${testPrefix('g')}d`;
  const vip = `10.223.${randomBytes(1)[0]}.100`;
  let peer: Socket;
  let port: number;
  let received: { at: number; bytes: Buffer }[];
  let monitor: ChildProcess;
  let removals: number[];
  const guardians: Guardian[] = [];

  beforeAll(async () => {
    await ip(['link', 'add', device, 'type', 'bridge']); // no dummy module here; a bridge without ports holds addresses as well
    await ip(['link', 'set', device, 'up']);
    peer = createSocket('udp4');
    peer.on('message', (bytes) => received.push({ at: Date.now(), bytes }));
    await new Promise<void>((resolve) => peer.bind(0, '127.0.0.1', () => resolve()));
    port = peer.address().port;
    monitor = spawn('ip', ['-ts', '-o', 'monitor', 'address', 'dev', device], { stdio: ['ignore', 'pipe', 'inherit'] });
    let rest = '';
    monitor.stdout!.on('data', (d: Buffer) => {
      const lines = (rest + d.toString()).split('\n');
      rest = lines.pop()!;
      for (const line of lines) {
        // [2026-12-06T13:33:01.123456] Deleted 7: <device>    inet 10.223.5.100/32 scope global ...
        const m = /^\[([0-9T:.-]+)\]\s+Deleted\s/.exec(line);
        if (m && line.includes(` ${vip}/32 `)) removals.push(Date.parse(m[1].slice(0, 23)));
      }
    });
    await sleep(200); // ip monitor subscribed
  });

  afterAll(async () => {
    monitor?.kill();
    peer?.close();
    await ip(['link', 'del', device]).catch(() => undefined);
  });

  beforeEach(async () => {
    received = [];
    removals = [];
    await ip(['addr', 'replace', `${vip}/32`, 'dev', device]);
  });

  afterEach(async () => {
    for (const g of guardians.splice(0)) await g.stop();
  });

  async function start(o: Partial<GuardianOptions> = {}): Promise<Guardian> {
    const g = new Guardian({ device, vips: [`${vip}/32`], peers: ['127.0.0.1'], port, timeoutMs: 10_000, graceMs: 100, ...o }, quiet, () => undefined);
    guardians.push(g);
    await g.start();
    return g;
  }

  /** What the election's death does to the guardian: its input ends without a last word. */
  const die = (g: Guardian) => (g as unknown as { child: ChildProcess }).child.stdin!.destroy();

  const holds = async () => (await ip(['-o', 'addr', 'show', 'dev', device])).includes(`${vip}/32`);

  /** Waits for `cond`; a timeout says what was seen (the full suite loads the machine heavily: bounded generously). */
  async function until(cond: () => boolean, ms = 15_000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) {
        throw new Error(`timed out after ${ms} ms: ${received.length} resignation(s) received, ${removals.length} removal(s) seen, VIP held: ${await holds()}`);
      }
      await sleep(2);
    }
  }

  it('the election dies while MASTER: the resignation (every byte value intact) first, the VIP kept for the grace, removed within one interval', async () => {
    // Grace and interval twice the product's (100 of 200 ms): the bounds leave 200 ms for the
    // guardian's own fork and exec of sleep and ip on a loaded machine, and still tell a grace
    // skipped (0) or applied twice (one interval) from the right one.
    const interval = 400;
    const grace = interval / 2;
    const g = await start({ graceMs: grace });
    const resign = Buffer.from([...Array(256).keys()]); // every byte value: NUL, %, \, newline ...
    g.beat(resign);
    await sleep(50);
    die(g);
    await until(() => received.length > 0 && removals.length > 0);
    expect(received).toHaveLength(1);
    expect(received[0].bytes.equals(resign)).toBe(true);
    const overlap = removals[0] - received[0].at;
    console.log(`guardian: VIP removed ${overlap} ms after the resignation arrived (grace ${grace} ms)`);
    expect(overlap).toBeGreaterThanOrEqual(grace - 10);
    expect(overlap).toBeLessThan(interval);
  });

  it('the election dies while BACKUP: no resignation, the VIP (if any) removed at once', async () => {
    // A long grace, so that "at once" (fork and exec of ip) and "after the grace" stay far apart.
    const g = await start({ graceMs: 1000 });
    g.beat(Buffer.from('x'));
    g.beat(null);
    await sleep(50);
    const diedAt = Date.now();
    die(g);
    await until(() => removals.length > 0);
    expect(removals[0] - diedAt).toBeLessThan(500);
    await sleep(100);
    expect(received).toHaveLength(0);
  });

  it('the election hangs while MASTER: after timeoutMs of silence, resignation, grace, removal', async () => {
    const grace = 150;
    const g = await start({ timeoutMs: 300, graceMs: grace });
    const lastBeat = Date.now();
    g.beat(Buffer.from('resign'));
    await until(() => removals.length > 0);
    expect(received.map((r) => r.bytes.toString())).toEqual(['resign']);
    expect(received[0].at - lastBeat).toBeGreaterThanOrEqual(290);
    // Kept for the grace, removed within one interval (twice the grace).
    expect(removals[0] - received[0].at).toBeGreaterThanOrEqual(grace - 5);
    expect(removals[0] - received[0].at).toBeLessThan(2 * grace);
    expect(await holds()).toBe(false);
  });

  it('retired (another guardian took over) while MASTER: exits without resigning or touching the VIP', async () => {
    const g = await start();
    g.beat(Buffer.from('resign'));
    const pid = g.pid;
    await g.retire();
    expect(g.pid).toBeUndefined();
    expect(() => process.kill(pid!, 0)).toThrow();
    await sleep(150);
    expect(received).toHaveLength(0);
    expect(removals).toHaveLength(0);
    expect(await holds()).toBe(true);
  });

  it('a swap (new peers): the new guardian is ready and knows the last beat before the old one leaves, untouched VIP, no resignation', async () => {
    const lost: string[] = [];
    const slot = new GuardianSlot(quiet, (why) => lost.push(why));
    const opts = (peer: string): GuardianOptions => ({ device, vips: [`${vip}/32`], peers: [peer], port, timeoutMs: 10_000, graceMs: 50 });
    try {
      await slot.start(opts('127.0.0.2')); // the old peer: its resignations would not reach the socket on 127.0.0.1
      slot.beat(Buffer.from('resign'));
      const old = slot.current!;
      await slot.swap(opts('127.0.0.1'));
      const next = slot.current!;
      expect(next).not.toBe(old);
      expect(old.pid).toBeUndefined();
      expect(old.exitedAt).toBeGreaterThan(0);
      expect(next.readyAt).toBeGreaterThan(0);
      expect(next.readyAt).toBeLessThanOrEqual(old.exitedAt); // never a moment without a guardian
      await sleep(100);
      expect(removals).toHaveLength(0);
      expect(await holds()).toBe(true);
      expect(lost).toEqual([]); // the old one's exit is no loss
      // The new one guards a MASTER: the election dies, it resigns to the new peer and removes the VIP.
      die(next);
      await until(() => received.length > 0 && removals.length > 0);
      expect(received.map((r) => r.bytes.toString())).toEqual(['resign']);
    } finally {
      await slot.stop();
    }
  });

  it('the election stops it: no resignation; its input ends', async () => {
    const g = await start();
    g.beat(Buffer.from('resign'));
    await g.stop();
    await sleep(50);
    expect(received).toHaveLength(0);
    expect(g.pid).toBeUndefined();
  });
});
