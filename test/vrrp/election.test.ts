// The election state machine with a fake clock and recorded actions: takeover timing, step-down
// rules, preemption, FAULT, and the resignation reserved for the guardian.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Election, masterDownMs, resignGraceMs, skewMs, type Clock, type ElectionActions, type HealthResult, type OutgoingAdvert, type TimerHandle } from '../../amphora/vrrp/election.ts';
import type { Advert } from '../../amphora/vrrp/packet.ts';

class FakeClock implements Clock {
  t = 1_000_000;
  private timers: { at: number; fn: () => void; cancelled: boolean }[] = [];
  now() {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { at: this.t + ms, fn, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  }
  /** Moves time forward, firing due timers in order and letting promises settle after each. */
  async advance(ms: number) {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => !x.cancelled && x.at <= end).sort((x, y) => x.at - y.at)[0];
      if (!due) break;
      due.cancelled = true;
      this.t = due.at;
      due.fn();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

const settle = () => new Promise<void>((r) => setImmediate(r));

interface Recorder extends ElectionActions {
  log: string[];
  sent: (OutgoingAdvert & { at: number })[];
  beats: { master: boolean; resign: OutgoingAdvert | null }[];
  health: HealthResult;
}

function recorder(clock: FakeClock): Recorder {
  const r: Recorder = {
    log: [],
    sent: [],
    beats: [],
    health: { ok: true },
    send: (a) => {
      r.sent.push({ ...a, at: clock.now() });
      r.log.push(a.priority === 0 ? 'resign' : 'advert');
    },
    acquire: async () => void r.log.push('acquire'),
    release: async () => void r.log.push('release'),
    checkHealth: async () => r.health,
    heartbeat: (b) => void r.beats.push(b),
  };
  return r;
}

const quiet = pino({ level: 'silent' });
const INTERVAL = 100;

async function setup(opts: { priority?: number; preempt?: boolean; localAddress?: string; peerCount?: number } = {}) {
  const clock = new FakeClock();
  const actions = recorder(clock);
  const election = new Election(
    { localAddress: opts.localAddress ?? '10.221.0.2', priority: opts.priority ?? 90, advertIntervalMs: INTERVAL, preempt: opts.preempt ?? false, deadIntervals: 3, peerCount: opts.peerCount ?? 1 },
    actions,
    clock,
    quiet,
  );
  const changes: string[] = [];
  election.on('state', (c) => changes.push(`${c.from}->${c.to}`));
  await election.start();
  return { clock, actions, election, changes };
}

let seq = 0n;
function advert(priority: number, sender = '10.221.0.1', interval = INTERVAL): Advert {
  seq += 1n;
  return { routerId: 1, priority, state: priority === 0 ? 'FAULT' : 'MASTER', advertIntervalMs: interval, epoch: 1n, seq, sender };
}

/** Becomes MASTER by hearing nobody for the master-down interval. */
async function toMaster(s: Awaited<ReturnType<typeof setup>>) {
  await s.clock.advance(masterDownMs({ priority: s.election['opts'].priority, deadIntervals: 3 }, INTERVAL) + 1);
  expect(s.election.state).toBe('MASTER');
}

describe('vrrp election: takeover', () => {
  it('starts BACKUP and takes over when no MASTER is heard for 3 intervals plus the skew, then adverts every interval', async () => {
    const s = await setup({ priority: 90 });
    expect(s.election.state).toBe('BACKUP');
    const down = 3 * INTERVAL + skewMs(90, INTERVAL);
    await s.clock.advance(down - 1);
    expect(s.election.state).toBe('BACKUP');
    expect(s.actions.log).not.toContain('acquire');
    await s.clock.advance(2);
    expect(s.election.state).toBe('MASTER');
    expect(s.actions.log.slice(1, 3)).toEqual(['advert', 'acquire']); // after the hello: advert first, so a second MASTER yields at once
    expect(s.election.holdsVip).toBe(true);
    const before = s.actions.sent.length;
    await s.clock.advance(5 * INTERVAL);
    expect(s.actions.sent.length - before).toBe(5);
    expect(s.changes).toEqual(['INIT->BACKUP', 'BACKUP->MASTER']);
  });

  it('stays BACKUP while adverts arrive; its only peer, the MASTER, silent: takes over 3 intervals after the last advert, without the skew', async () => {
    const s = await setup({ priority: 90 });
    for (let i = 0; i < 20; i++) {
      s.election.onAdvert(advert(100));
      await s.clock.advance(INTERVAL);
    }
    expect(s.election.state).toBe('BACKUP');
    const last = s.clock.now() - INTERVAL;
    await s.clock.advance(2 * INTERVAL - 1);
    expect(s.election.state).toBe('BACKUP');
    await s.clock.advance(1);
    expect(s.election.state).toBe('MASTER');
    expect(s.actions.sent.find((a) => a.state === 'MASTER')!.at - last).toBe(3 * INTERVAL);
  });

  it('with several peers, a silent MASTER is replaced after 3 intervals plus the skew (the highest-priority BACKUP first)', async () => {
    const s = await setup({ priority: 90, peerCount: 2 });
    s.election.onAdvert(advert(100));
    await s.clock.advance(3 * INTERVAL + skewMs(90, INTERVAL) - 1);
    expect(s.election.state).toBe('BACKUP');
    await s.clock.advance(2);
    expect(s.election.state).toBe('MASTER');
  });

  it("uses the MASTER's advertised interval for the master-down interval", async () => {
    const s = await setup({ priority: 90 });
    s.election.onAdvert(advert(100, '10.221.0.1', 1000));
    await s.clock.advance(3 * INTERVAL + 50);
    expect(s.election.state).toBe('BACKUP');
    await s.clock.advance(3 * 1000);
    expect(s.election.state).toBe('MASTER');
  });

  it('takes over at once when its only peer, the MASTER, resigns (priority 0)', async () => {
    const s = await setup({ priority: 90 });
    s.election.onAdvert(advert(100));
    await s.clock.advance(INTERVAL);
    s.election.onAdvert(advert(0));
    await s.clock.advance(0);
    expect(s.election.state).toBe('MASTER');
  });

  it('with several peers, waits the skew time after a resignation (the highest-priority BACKUP first)', async () => {
    const s = await setup({ priority: 90, peerCount: 2 });
    s.election.onAdvert(advert(100));
    await s.clock.advance(INTERVAL);
    s.election.onAdvert(advert(0));
    await s.clock.advance(skewMs(90, INTERVAL) - 1);
    expect(s.election.state).toBe('BACKUP');
    await s.clock.advance(2);
    expect(s.election.state).toBe('MASTER');
    expect(skewMs(200, INTERVAL)).toBeLessThan(skewMs(90, INTERVAL));
  });
});

describe('vrrp election: step down', () => {
  it('a MASTER that hears a higher priority steps down and releases the VIPs', async () => {
    const s = await setup({ priority: 90 });
    await toMaster(s);
    s.election.onAdvert(advert(100));
    await s.clock.advance(1);
    expect(s.election.state).toBe('BACKUP');
    expect(s.election.holdsVip).toBe(false);
    expect(s.actions.log.at(-1)).toBe('release');
  });

  it('equal priority: the higher address wins; the lower one yields, the higher one asserts itself at once', async () => {
    const low = await setup({ priority: 100, localAddress: '10.221.0.2' });
    await toMaster(low);
    low.election.onAdvert(advert(100, '10.221.0.3'));
    await low.clock.advance(1);
    expect(low.election.state).toBe('BACKUP');

    const high = await setup({ priority: 100, localAddress: '10.221.0.9' });
    await toMaster(high);
    const before = high.actions.sent.length;
    high.election.onAdvert(advert(100, '10.221.0.3'));
    expect(high.election.state).toBe('MASTER');
    expect(high.actions.sent.length).toBe(before + 1); // without waiting for the next interval
  });

  it('a MASTER that hears a lower priority (both MASTER after a link cut) keeps the VIPs and answers at once', async () => {
    const s = await setup({ priority: 100 });
    await toMaster(s);
    const before = s.actions.sent.length;
    s.election.onAdvert(advert(90));
    expect(s.election.state).toBe('MASTER');
    expect(s.actions.sent.length).toBe(before + 1);
    expect(s.actions.log).not.toContain('release');
  });
});

describe('vrrp election: BACKUP hello', () => {
  it('a new BACKUP says hello once; a MASTER answers it at once and keeps the VIPs whatever its priority', async () => {
    const s = await setup({ priority: 90 });
    expect(s.actions.sent.map((a) => a.state)).toEqual(['BACKUP']);
    await toMaster(s);
    const before = s.actions.sent.length;
    s.election.onAdvert({ ...advert(200), state: 'BACKUP' });
    expect(s.election.state).toBe('MASTER');
    expect(s.actions.sent.length).toBe(before + 1);
    expect(s.actions.sent.at(-1)!.state).toBe('MASTER');
  });

  it('a BACKUP hello does not reset the master-down timer of another BACKUP', async () => {
    const s = await setup({ priority: 90 });
    for (let i = 0; i < 5; i++) {
      s.election.onAdvert({ ...advert(100), state: 'BACKUP' });
      await s.clock.advance(INTERVAL);
    }
    expect(s.election.state).toBe('MASTER');
  });
});

describe('vrrp election: preemption', () => {
  it('off (default): a higher-priority BACKUP leaves a lower-priority MASTER alone', async () => {
    const s = await setup({ priority: 100, preempt: false });
    for (let i = 0; i < 10; i++) {
      s.election.onAdvert(advert(90));
      await s.clock.advance(INTERVAL);
    }
    expect(s.election.state).toBe('BACKUP');
  });

  it('on: a higher-priority BACKUP ignores a lower-priority MASTER and takes over after the master-down interval', async () => {
    const s = await setup({ priority: 100, preempt: true });
    for (let i = 0; i < 10; i++) {
      s.election.onAdvert(advert(90));
      await s.clock.advance(INTERVAL);
    }
    expect(s.election.state).toBe('MASTER');
  });

  it('on: a lower-priority BACKUP still follows a higher-priority MASTER', async () => {
    const s = await setup({ priority: 90, preempt: true });
    for (let i = 0; i < 10; i++) {
      s.election.onAdvert(advert(100));
      await s.clock.advance(INTERVAL);
    }
    expect(s.election.state).toBe('BACKUP');
  });
});

describe('vrrp election: own health', () => {
  it('a MASTER whose health fails goes FAULT: it removes the VIPs first, then resigns; back to BACKUP when healthy', async () => {
    const s = await setup({ priority: 100 });
    await toMaster(s);
    s.actions.log.length = 0;
    s.actions.health = { ok: false, reason: 'data plane down' };
    await s.clock.advance(INTERVAL);
    expect(s.election.state).toBe('FAULT');
    await s.election.settled();
    expect(s.actions.log.filter((x) => x !== 'advert')).toEqual(['release', 'resign']);
    expect(s.election.holdsVip).toBe(false);
    // FAULT never takes over, however long it hears nobody.
    await s.clock.advance(10 * INTERVAL);
    expect(s.election.state).toBe('FAULT');
    s.actions.health = { ok: true };
    await s.clock.advance(INTERVAL);
    expect(s.election.state).toBe('BACKUP');
  });

  it('a BACKUP whose health fails goes FAULT and does not take over', async () => {
    const s = await setup({ priority: 90 });
    s.actions.health = { ok: false, reason: 'interface eth0 is down' };
    await s.clock.advance(INTERVAL);
    expect(s.election.state).toBe('FAULT');
    await s.clock.advance(10 * INTERVAL);
    expect(s.actions.log).not.toContain('acquire');
  });

  it('fail() goes FAULT at once, without waiting for the next check', async () => {
    const s = await setup({ priority: 100 });
    await toMaster(s);
    s.election.fail('data plane exited');
    expect(s.election.state).toBe('FAULT');
    await s.election.settled();
    expect(s.actions.log.slice(-2)).toEqual(['release', 'resign']);
  });

  it('a failing start goes to FAULT, not BACKUP', async () => {
    const clock = new FakeClock();
    const actions = recorder(clock);
    actions.health = { ok: false, reason: 'interface eth0 not found' };
    const e = new Election({ localAddress: '10.221.0.2', priority: 90, advertIntervalMs: INTERVAL, preempt: false, deadIntervals: 3, peerCount: 1 }, actions, clock, quiet);
    await e.start();
    expect(e.state).toBe('FAULT');
  });

});

describe('vrrp election: stopping while MASTER', () => {
  it('resigns first, keeps the VIPs for the grace (more than 0, less than one interval), then removes them', async () => {
    const s = await setup({ priority: 100 });
    await toMaster(s);
    let releasedAt = -1;
    s.actions.release = async () => {
      releasedAt = s.clock.now();
      s.actions.log.push('release');
    };
    const stopping = s.election.stop();
    await s.clock.advance(0);
    expect(s.actions.log.at(-1)).toBe('resign');
    expect(s.actions.log).not.toContain('release');
    const resignedAt = s.actions.sent.at(-1)!.at;
    expect(s.election.holdsVip).toBe(true); // the data plane here still serves during the takeover
    await s.clock.advance(resignGraceMs(INTERVAL) - 1);
    expect(s.actions.log).not.toContain('release');
    await s.clock.advance(1);
    await stopping;
    expect(s.actions.log.slice(-2)).toEqual(['resign', 'release']);
    expect(releasedAt - resignedAt).toBe(resignGraceMs(INTERVAL));
    expect(releasedAt - resignedAt).toBeGreaterThan(0);
    expect(releasedAt - resignedAt).toBeLessThan(INTERVAL);
    expect(s.election.holdsVip).toBe(false);
    expect(s.election.state).toBe('INIT');
  });

  it('tells the guardian it is no longer MASTER before resigning (so that it does not resign again)', async () => {
    const s = await setup({ priority: 100 });
    await toMaster(s);
    const order: string[] = [];
    const send = s.actions.send;
    s.actions.send = (a) => {
      order.push(a.priority === 0 ? 'resign' : 'advert');
      send(a);
    };
    s.actions.heartbeat = (b) => void order.push(b.master ? 'beat M' : 'beat B');
    const stopping = s.election.stop();
    await s.clock.advance(0);
    await s.clock.advance(INTERVAL);
    await stopping;
    expect(order).toEqual(['beat B', 'resign']);
  });

  it('the grace is half an interval, at most 100 ms: always above 0 and below one interval', () => {
    expect(resignGraceMs(50)).toBe(25);
    expect(resignGraceMs(100)).toBe(50);
    expect(resignGraceMs(1000)).toBe(100);
    for (const i of [10, 50, 100, 200, 1000, 60_000]) {
      expect(resignGraceMs(i)).toBeGreaterThan(0);
      expect(resignGraceMs(i)).toBeLessThan(i);
    }
  });

  it('a BACKUP stops without resigning or touching the VIPs', async () => {
    const s = await setup({ priority: 90 });
    s.election.onAdvert(advert(100));
    await s.election.stop();
    expect(s.actions.log).not.toContain('resign');
    expect(s.actions.log).not.toContain('release');
  });
});

describe('vrrp election: reconfigure', () => {
  const settings = { priority: 100, advertIntervalMs: INTERVAL, preempt: false, deadIntervals: 3, peerCount: 1 };

  it('a MASTER keeps the VIPs, tells its peers the new priority at once and adverts at the new interval', async () => {
    const s = await setup({ priority: 100 });
    await toMaster(s);
    const before = s.actions.sent.length;
    s.election.reconfigure({ ...settings, priority: 120, advertIntervalMs: 2 * INTERVAL });
    expect(s.election.state).toBe('MASTER');
    expect(s.actions.sent.length).toBe(before + 1);
    expect(s.actions.sent.at(-1)).toMatchObject({ priority: 120, state: 'MASTER', advertIntervalMs: 2 * INTERVAL });
    await s.clock.advance(10 * INTERVAL);
    expect(s.actions.sent.length).toBe(before + 1 + 5);
    expect(s.actions.log).not.toContain('release');
    expect(s.actions.log).not.toContain('resign');
    expect(s.election.holdsVip).toBe(true);
    expect(s.actions.beats.at(-1)!.resign).toMatchObject({ priority: 0, advertIntervalMs: 2 * INTERVAL });
  });

  it('a BACKUP stays BACKUP, says hello (a new peer that is MASTER answers) and follows its MASTER with the new rules', async () => {
    const s = await setup({ priority: 90 });
    s.election.onAdvert(advert(100));
    s.election.reconfigure({ ...settings, priority: 110, preempt: true });
    expect(s.election.state).toBe('BACKUP');
    expect(s.actions.sent.at(-1)).toMatchObject({ state: 'BACKUP', priority: 110 });
    // preempt on, own priority above the MASTER's now: its adverts no longer hold this node back.
    for (let i = 0; i < 5; i++) {
      s.election.onAdvert(advert(100));
      await s.clock.advance(INTERVAL);
    }
    expect(s.election.state).toBe('MASTER');
  });
});

describe('vrrp election: sequence numbers', () => {
  it('increase in the order the adverts are sent, the resignation after a slow release included', async () => {
    const s = await setup({ priority: 100 });
    await toMaster(s);
    let finishRelease!: () => void;
    s.actions.release = () => new Promise<void>((r) => (finishRelease = r));
    s.actions.health = { ok: false, reason: 'data plane down' };
    await s.clock.advance(INTERVAL); // FAULT; the release hangs
    s.actions.health = { ok: true };
    await s.clock.advance(INTERVAL); // BACKUP again: hello sent while the release still runs
    finishRelease();
    await s.election.settled();
    expect(s.actions.sent.slice(-2).map((a) => a.state)).toEqual(['BACKUP', 'FAULT']);
    const seqs = s.actions.sent.map((a) => a.seq);
    expect(seqs.every((x, i) => i === 0 || x > seqs[i - 1])).toBe(true);
  });
});

describe('vrrp election: the guardian heartbeat', () => {
  it('while MASTER, reserves for the resignation a sequence number above every advert sent before and below every one after', async () => {
    const s = await setup({ priority: 100 });
    await toMaster(s);
    await s.clock.advance(3 * INTERVAL);
    const beat = s.actions.beats.at(-1)!;
    expect(beat.master).toBe(true);
    expect(beat.resign?.priority).toBe(0);
    const reserved = beat.resign!.seq;
    const sentBefore = s.actions.sent.map((a) => a.seq);
    expect(sentBefore.every((x) => x < reserved)).toBe(true);
    await s.clock.advance(INTERVAL);
    expect(s.actions.sent.at(-1)!.seq).toBeGreaterThan(reserved);
  });

  it('as BACKUP, the heartbeat carries no resignation', async () => {
    const s = await setup({ priority: 90 });
    s.election.onAdvert(advert(100));
    await s.clock.advance(INTERVAL);
    expect(s.actions.beats.at(-1)).toEqual({ master: false, resign: null });
  });
});
