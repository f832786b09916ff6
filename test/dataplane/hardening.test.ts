import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { LocalDataPlane } from '../../amphora/dataplane/dataplane.ts';
import { uid, config, freePort, httpListener, pool, rawExchange, Resources, startDataPlane, startHttpMember, type HttpMember } from './helpers.ts';

const r = new Resources();
let port: number;
let member: HttpMember;
let dataPlane: LocalDataPlane;

beforeAll(async () => {
  member = await startHttpMember(r, 'm1');
  port = await freePort();
  dataPlane = await startDataPlane(
    r,
    config(
      [httpListener(1, port, 2, { timeouts: { httpRequest: 600 } })],
      [pool(2, 'HTTP', [{ id: 3, port: member.port }])],
    ),
  );
});
afterAll(() => r.cleanup());
beforeEach(() => {
  member.raw.length = 0;
  member.requests.length = 0;
});

const statusOf = (text: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);

/** Sends raw bytes; asserts the refusal status, that the connection closed, and that the member saw nothing. */
async function refused(bytes: string | string[], status: number, gapMs = 0): Promise<void> {
  const res = await rawExchange(port, bytes, 4_000, gapMs);
  expect(statusOf(res.text), res.text).toBe(status);
  expect(res.closed).toBe(true);
  expect(Buffer.concat(member.raw).toString('latin1')).toBe('');
}

describe('HTTP request hardening', () => {
  it('passes a well-formed request (control)', async () => {
    const res = await rawExchange(port, 'POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc');
    expect(statusOf(res.text)).toBe(200);
    expect(member.requests).toHaveLength(1);
    expect(member.requests[0].body).toBe('abc');
  });

  it('refuses Content-Length together with Transfer-Encoding (CL.TE / TE.CL)', async () => {
    await refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n', 400);
    await refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n', 400);
  });

  it('refuses duplicate or malformed Content-Length', async () => {
    await refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc', 400);
    await refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc', 400);
    await refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc', 400);
    await refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc', 400);
    await refused('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc', 400);
  });

  it('refuses obfuscated or unsupported Transfer-Encoding', async () => {
    await refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n', 400);
    await refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n', 400);
    await refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n', 400);
    await refused('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', 501);
    await refused('POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400);
  });

  it('refuses bad chunk sizes and chunk framing', async () => {
    const head = 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n';
    await refused(`${head}zz\r\nabc\r\n0\r\n\r\n`, 400);
    await refused(`${head} 3\r\nabc\r\n0\r\n\r\n`, 400);
    await refused(`${head}-3\r\nabc\r\n0\r\n\r\n`, 400);
    await refused(`${head}3 \r\nabc\r\n0\r\n\r\n`, 400);
    await refused(`${head}ffffffffffffffffff\r\nabc\r\n0\r\n\r\n`, 400);
    await refused(`${head}3\r\nabcd\r\n0\r\n\r\n`, 400);
    await refused(`${head}3\nabc\n0\n\n`, 400);
  });

  it('refuses obs-fold, whitespace before the colon, bare LF and bare CR', async () => {
    await refused('GET / HTTP/1.1\r\nHost: a\r\nX-Folded: one\r\n two\r\n\r\n', 400);
    await refused('GET / HTTP/1.1\r\nHost: a\r\nX-Space : v\r\n\r\n', 400);
    await refused('GET / HTTP/1.1\nHost: a\n\n', 400);
    await refused('GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n', 400);
    await refused('GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n', 400);
  });

  it('refuses malformed request lines, missing or duplicate Host and control bytes', async () => {
    await refused('GET  / HTTP/1.1\r\nHost: a\r\n\r\n', 400);
    await refused('GET / HTTP/1.1 \r\nHost: a\r\n\r\n', 400);
    await refused('GET /a b HTTP/1.1\r\nHost: a\r\n\r\n', 400);
    await refused('GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505);
    await refused('GET / HTTP/1.1\r\n\r\n', 400);
    await refused('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400);
    await refused('GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n', 400);
  });

  it('answers 431 to oversized request heads and to too many header fields', async () => {
    await refused(`GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`, 431);
    // Never terminated: refused as soon as the limit is crossed, not at the timeout.
    await refused(`GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(40_000)}`, 431);
    const many = Array.from({ length: 150 }, (_, i) => `X-H${i}: v\r\n`).join('');
    await refused(`GET / HTTP/1.1\r\nHost: a\r\n${many}\r\n`, 431);
  });

  it('answers 408 to slow headers (slowloris) even while bytes keep trickling in', async () => {
    const started = Date.now();
    const parts = ['GET / HTTP/1.1\r\n', 'Host: a\r\n', 'X-1: 1\r\n', 'X-2: 2\r\n', 'X-3: 3\r\n', 'X-4: 4\r\n', 'X-5: 5\r\n', 'X-6: 6\r\n'];
    await refused(parts, 408, 150);
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
  });

  it('refuses a bad chunk that arrives after the head without letting a complete message reach the member', async () => {
    const res = await rawExchange(port, ['POST /late HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n', 'zz\r\n\r\n'], 4_000, 200);
    expect(statusOf(res.text)).toBe(400);
    expect(res.closed).toBe(true);
    // The head went out before the bad chunk arrived, but the member never got a complete request.
    expect(member.requests).toHaveLength(0);
  });

  it('counts refused requests as request errors of the listener', async () => {
    const errors = async () => (await dataPlane.snapshot()).listeners[uid(1)].traffic.requestErrors;
    const before = await errors();
    await refused('GET / HTTP/1.1\nHost: a\n\n', 400);
    await refused('GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', 400);
    expect(await errors()).toBe(before + 2);
  });
});
