import { afterEach, describe, expect, it } from 'vitest';
import type { PoolInput } from '../../common/amphora-config/index.ts';
import { config, distribution, freePort, httpListener, pool, request, Resources, sleep, startDataPlane, startHttpMember, type HttpMember } from './helpers.ts';

const r = new Resources();
afterEach(() => r.cleanup());

async function httpPool(names: string[], poolExtra: Partial<PoolInput>) {
  const members: HttpMember[] = [];
  for (const name of names) members.push(await startHttpMember(r, name));
  const port = await freePort();
  const dp = await startDataPlane(r, config([httpListener(1, port, 2)], [pool(2, 'HTTP', members.map((m, i) => ({ id: 10 + i, port: m.port })), poolExtra)]));
  return { port, members, dp };
}

describe('session persistence', () => {
  it('SOURCE_IP sticks a client address to its member until the entry expires', async () => {
    // Timings wide apart (uses every 500 ms against a 2 s timeout, then 2.6 s idle), so that a loaded
    // machine's late timers neither expire the entry between uses nor hide its expiry.
    const { port } = await httpPool(['a', 'b'], { sessionPersistence: { type: 'SOURCE_IP', timeout: 2000 } });
    const first = (await request(port, { localAddress: '127.0.0.20' })).body;
    // Uses within the timeout keep the entry alive, even past the timeout in total (2.5 s).
    for (let i = 0; i < 5; i++) {
      await sleep(500);
      expect((await request(port, { localAddress: '127.0.0.20' })).body).toBe(first);
    }
    await sleep(2600);
    // Expired: round robin decides again, and its next pick after `first` is the other member.
    const again = (await request(port, { localAddress: '127.0.0.20' })).body;
    expect(again).not.toBe(first);
    for (let i = 0; i < 3; i++) expect((await request(port, { localAddress: '127.0.0.20' })).body).toBe(again);
  });

  it('SOURCE_IP granularity groups the addresses of one network', async () => {
    const { port } = await httpPool(['a', 'b'], { sessionPersistence: { type: 'SOURCE_IP', timeout: 60_000, granularity: '255.255.255.0' } });
    const names = new Set<string>();
    for (let ip = 2; ip < 12; ip++) names.add((await request(port, { localAddress: `127.0.0.${ip}` })).body);
    expect(names.size).toBe(1);
  });

  it('HTTP_COOKIE inserts a cookie naming the member and follows it', async () => {
    const { port } = await httpPool(['a', 'b'], { sessionPersistence: { type: 'HTTP_COOKIE', cookieName: 'LB' } });
    const first = await request(port);
    const setCookie = first.headers['set-cookie']?.[0] ?? '';
    expect(setCookie).toMatch(/^LB=[0-9a-f-]{36}; path=\//);
    const cookie = setCookie.split(';')[0];
    for (let i = 0; i < 6; i++) {
      const res = await request(port, { headers: { cookie } });
      expect(res.body).toBe(first.body);
      expect(res.headers['set-cookie']).toBeUndefined();
    }
    // Without the cookie, round robin applies.
    const counts = await distribution(6, async () => (await request(port)).body);
    expect(Object.keys(counts).sort()).toEqual(['a', 'b']);
  });

  it('APP_COOKIE learns the member from its own cookie and routes by it', async () => {
    const { port, members } = await httpPool(['a', 'b'], { sessionPersistence: { type: 'APP_COOKIE', cookieName: 'JSESSIONID' } });
    for (const m of members) {
      m.handler = (req, res) => {
        if (req.url === '/login') res.setHeader('set-cookie', `JSESSIONID=${m.name}-session-${Math.random().toString(36).slice(2)}; Path=/`);
        res.end(m.name);
      };
    }
    const logins = [await request(port, { path: '/login' }), await request(port, { path: '/login' })];
    expect(logins.map((l) => l.body).sort()).toEqual(['a', 'b']);
    for (const login of logins) {
      const cookie = (login.headers['set-cookie']?.[0] ?? '').split(';')[0];
      for (let i = 0; i < 5; i++) expect((await request(port, { headers: { cookie } })).body).toBe(login.body);
    }
    const unknown = await distribution(4, async () => (await request(port, { headers: { cookie: 'JSESSIONID=nobody' } })).body);
    expect(Object.keys(unknown).sort()).toEqual(['a', 'b']);
  });

  it('LAST_SUCCESSFUL sends everyone to one member, then all move to one other when it fails, and stay', async () => {
    const { port, members } = await httpPool(['a', 'b', 'c'], { sessionPersistence: { type: 'LAST_SUCCESSFUL' } });
    const first = await distribution(9, async (i) => (await request(port, { localAddress: `127.0.0.${2 + i}` })).body);
    expect(Object.keys(first)).toHaveLength(1);
    const pinned = Object.keys(first)[0];
    const pinnedMember = members.find((m) => m.name === pinned) as HttpMember;
    const port0 = pinnedMember.port;
    await pinnedMember.close();
    const after = await distribution(9, async (i) => (await request(port, { localAddress: `127.0.0.${2 + i}` })).body);
    expect(Object.keys(after)).toHaveLength(1);
    const next = Object.keys(after)[0];
    expect(next).not.toBe(pinned);
    // The first member comes back: clients stay where they are.
    await startHttpMember(r, pinned, port0);
    const stay = await distribution(9, async (i) => (await request(port, { localAddress: `127.0.0.${2 + i}` })).body);
    expect(stay).toEqual({ [next]: 9 });
  });
});
