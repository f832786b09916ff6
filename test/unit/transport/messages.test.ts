import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MESSAGE_TYPES, MessageValidationError, parseMessage } from '../../../common/messages.ts';
import { backoffDelay, transportOptionsSchema } from '../../../common/transport/transport.ts';
import { heartbeat } from './helpers.ts';

const amp = randomUUID();

function issues(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof MessageValidationError) return err.issues;
    throw err;
  }
  throw new Error('expected a MessageValidationError');
}

describe('heartbeat (contract §4.2, v3)', () => {
  it('accepts the contract shape plus the running config version (null before any)', () => {
    const h = heartbeat(amp, 0, null);
    expect(parseMessage('heartbeat', h)).toEqual(h);
    expect(parseMessage('heartbeat', { ...h, configVersion: 4 }).configVersion).toBe(4);
    const members = { m1: 'UP 1/3', m2: 'DOWN 2/3', m3: 'no check', m4: 'DRAIN', m5: 'MAINT' };
    const many = { ...h, pools: { 'p:l': { status: 'DOWN', members } }, listeners: { l: { status: 'FULL', stats: { tx: 0, rx: 0, conns: 5, totconns: 0, ereq: 0 } } } };
    expect(parseMessage('heartbeat', many).pools['p:l'].members).toEqual(members);
  });

  it('refuses other versions, non-integer or negative counters, bad pool statuses, a missing config version', () => {
    const h = heartbeat(amp, 1);
    expect(issues(() => parseMessage('heartbeat', { ...h, ver: 2 }))).toEqual([expect.stringMatching(/^ver:/)]);
    const l = Object.keys(h.listeners)[0];
    const neg = structuredClone(h);
    neg.listeners[l].stats.tx = -1;
    expect(issues(() => parseMessage('heartbeat', neg))).toEqual([expect.stringMatching(new RegExp(`^listeners\\.${l}\\.stats\\.tx:`))]);
    expect(issues(() => parseMessage('heartbeat', { ...h, seq: 1.5 }))).toEqual([expect.stringMatching(/^seq:/)]);
    const p = Object.keys(h.pools)[0];
    const badPool = structuredClone(h) as unknown as { pools: Record<string, { status: string }> };
    badPool.pools[p].status = 'MAYBE';
    expect(issues(() => parseMessage('heartbeat', badPool))).toHaveLength(1);
    const { configVersion: _, ...withoutVersion } = h;
    expect(issues(() => parseMessage('heartbeat', withoutVersion))).toEqual([expect.stringMatching(/^configVersion:/)]);
    expect(issues(() => parseMessage('heartbeat', { ...h, id: 'not-a-uuid' }))).toEqual([expect.stringMatching(/^id: must be a UUID/)]);
  });

  it('drops unknown fields instead of refusing the whole message', () => {
    expect(parseMessage('heartbeat', { ...heartbeat(amp, 1), extra: true })).not.toHaveProperty('extra');
  });
});

describe('config messages', () => {
  it('ConfigPush needs an amphora UUID, a version and a config document (opaque here)', () => {
    expect(parseMessage('config.push', { amphoraId: amp, configVersion: 2, config: { any: ['thing'] } }).config).toEqual({ any: ['thing'] });
    expect(issues(() => parseMessage('config.push', { amphoraId: amp, configVersion: 2 }))).toEqual(['config: config is required']);
    expect(issues(() => parseMessage('config.push', { amphoraId: amp, configVersion: -1, config: {} }))).toHaveLength(1);
  });

  it('ConfigAck: a refusal must carry its reason', () => {
    expect(parseMessage('config.ack', { amphoraId: amp, configVersion: 2, ok: true }).ok).toBe(true);
    expect(parseMessage('config.ack', { amphoraId: amp, configVersion: 1, ok: false, error: 'bad listener' }).error).toBe('bad listener');
    expect(issues(() => parseMessage('config.ack', { amphoraId: amp, configVersion: 1, ok: false }))).toEqual([expect.stringMatching(/^error:/)]);
  });

  it('a config fetch is answered by a ConfigPush or by "none"', () => {
    expect(parseMessage('config.fetch.reply', { amphoraId: amp, none: true })).toEqual({ amphoraId: amp, none: true });
    const push = { amphoraId: amp, configVersion: 3, config: {} };
    expect(parseMessage('config.fetch.reply', push)).toEqual(push);
    expect(issues(() => parseMessage('config.fetch.reply', { amphoraId: amp }))).not.toHaveLength(0);
    expect(issues(() => parseMessage('config.fetch', { amphoraId: 'x' }))).toHaveLength(1);
  });

  it('commands are a closed union', () => {
    expect(parseMessage('command', { amphoraId: amp, command: { kind: 'shutdown' } }).command.kind).toBe('shutdown');
    expect(parseMessage('command', { amphoraId: amp, command: { kind: 'ping' } }).command.kind).toBe('ping');
    expect(issues(() => parseMessage('command', { amphoraId: amp, command: { kind: 'reboot' } }))).toHaveLength(1);
    expect(issues(() => parseMessage('command.ack', { amphoraId: amp, kind: 'ping', ok: false }))).toEqual([expect.stringMatching(/^error:/)]);
  });

  it('every message type says which side receives it', () => {
    const to = Object.fromEntries(Object.entries(MESSAGE_TYPES).map(([k, v]) => [k, v.to]));
    expect(to).toEqual({
      'config.push': 'amphora',
      command: 'amphora',
      'config.fetch.reply': 'amphora',
      'config.ack': 'controller',
      'command.ack': 'controller',
      'config.fetch': 'controller',
      heartbeat: 'controller',
      error: 'either',
    });
  });
});

describe('transport options', () => {
  it('has documented defaults', () => {
    const s = transportOptionsSchema.parse(undefined);
    expect(s).toMatchObject({ url: 'amqp://guest:guest@127.0.0.1:5672/', prefix: 'argonaut', callRetries: 2, replayWindowMs: 300_000 });
    expect(s.prefetch).toEqual({ amphora: 1, health: 32, controller: 8 });
    const shape = transportOptionsSchema.unwrap().shape as Record<string, { description?: string }>;
    expect(Object.entries(shape).filter(([, f]) => !f.description).map(([k]) => k)).toEqual(['reconnect', 'prefetch']);
  });

  it('refuses prefixes that are not safe queue-name prefixes', () => {
    expect(transportOptionsSchema.safeParse({ prefix: 'a b' }).success).toBe(false);
    expect(transportOptionsSchema.safeParse({ prefix: 'test-1_x' }).success).toBe(true);
  });
});

describe('reconnection back-off', () => {
  const o = { initialDelayMs: 100, maxDelayMs: 2000, factor: 2, jitter: 0.2 };

  it('doubles from the initial delay up to the cap', () => {
    expect([0, 1, 2, 3, 4, 5, 10].map((a) => backoffDelay(a, o, () => 0))).toEqual([100, 200, 400, 800, 1600, 2000, 2000]);
  });

  it('takes jitter off the delay, never above the cap', () => {
    expect(backoffDelay(10, o, () => 0.999999)).toBe(1600);
    for (let a = 0; a < 20; a++) {
      const d = backoffDelay(a, o);
      expect(d).toBeGreaterThanOrEqual(Math.min(2000, 100 * 2 ** a) * 0.8 - 1);
      expect(d).toBeLessThanOrEqual(2000);
    }
  });
});
