import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startBlackhole } from './blackhole.ts';
import { config, freePort, httpListener, pool, rawExchange, request, Resources, sleep, startDataPlane, startHttpMember, uid } from './helpers.ts';

const r = new Resources();
afterEach(() => r.cleanup());

describe('HTTP listener', () => {
  it('proxies requests and bodies, reusing member connections across client keep-alive requests', async () => {
    const m = await startHttpMember(r, 'm1');
    m.handler = (req, res, body) => res.end(`${req.method} ${req.url} ${body.length}`);
    const port = await freePort();
    await startDataPlane(r, config([httpListener(1, port, 2)], [pool(2, 'HTTP', [{ id: 3, port: m.port }])]));

    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    r.add(() => agent.destroy());
    for (let i = 0; i < 20; i++) {
      const res = await request(port, { agent, path: `/p${i}?q=1` });
      expect(res.body).toBe(`GET /p${i}?q=1 0`);
    }
    const big = 'x'.repeat(300_000);
    const post = await request(port, { agent, method: 'POST', path: '/upload', body: big });
    expect(post.body).toBe('POST /upload 300000');
    // Chunked request body (node sends chunked when no length is given).
    const chunked = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'PUT', path: '/c', agent }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.write('abc');
      setTimeout(() => req.end('defg'), 50);
    });
    expect(chunked).toBe('PUT /c 7');
    expect(m.connections).toBe(1);
  });

  it('relays chunked, HEAD, 204 and close-delimited responses with correct framing', async () => {
    const m = await startHttpMember(r, 'm1');
    m.handler = (req, res) => {
      if (req.url === '/chunked') {
        res.write('part1-');
        setTimeout(() => res.end('part2'), 20);
      } else if (req.url === '/nocontent') {
        res.writeHead(204).end();
      } else {
        res.setHeader('content-length', '5');
        res.end(req.method === 'HEAD' ? undefined : 'hello');
      }
    };
    const raw = net.createServer((s) => {
      s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil-close'));
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', () => resolve()));
    r.add(() => new Promise<void>((resolve) => raw.close(() => resolve())));
    const rawPort = (raw.address() as net.AddressInfo).port;

    const port = await freePort();
    const closePort = await freePort();
    await startDataPlane(
      r,
      config(
        [httpListener(1, port, 2), httpListener(4, closePort, 5)],
        [pool(2, 'HTTP', [{ id: 3, port: m.port }]), pool(5, 'HTTP', [{ id: 6, port: rawPort }])],
      ),
    );
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    r.add(() => agent.destroy());
    expect((await request(port, { agent, path: '/chunked' })).body).toBe('part1-part2');
    const head = await request(port, { agent, method: 'HEAD', path: '/x' });
    expect(head.headers['content-length']).toBe('5');
    expect(head.body).toBe('');
    expect((await request(port, { agent, path: '/nocontent' })).status).toBe(204);
    expect((await request(port, { agent, path: '/after' })).body).toBe('hello');
    expect((await request(closePort, { path: '/' })).body).toBe('until-close');
  });

  it('inserts X-Forwarded-For/-Port/-Proto and replaces client-sent Port and Proto', async () => {
    const m = await startHttpMember(r, 'm1');
    const port = await freePort();
    await startDataPlane(
      r,
      config(
        [httpListener(1, port, 2, { insertHeaders: { 'X-Forwarded-For': true, 'X-Forwarded-Port': true, 'X-Forwarded-Proto': true } })],
        [pool(2, 'HTTP', [{ id: 3, port: m.port }])],
      ),
    );
    await request(port, { localAddress: '127.0.0.7', headers: { 'X-Forwarded-Port': '1', 'X-Forwarded-Proto': 'https' } });
    const h = m.requests[0].headers;
    expect(h['x-forwarded-for']).toBe('127.0.0.7');
    expect(h['x-forwarded-port']).toBe(String(port));
    expect(h['x-forwarded-proto']).toBe('http');
  });

  it('does not insert headers it was not asked to', async () => {
    const m = await startHttpMember(r, 'm1');
    const port = await freePort();
    await startDataPlane(r, config([httpListener(1, port, 2)], [pool(2, 'HTTP', [{ id: 3, port: m.port }])]));
    await request(port);
    expect(m.requests[0].headers['x-forwarded-for']).toBeUndefined();
  });

  it('answers 503 without members, 502 for a broken member and retries another member on refused connections', async () => {
    const good = await startHttpMember(r, 'good');
    const garbage = net.createServer((s) => s.once('data', () => s.end('NOT HTTP AT ALL\r\n\r\n')));
    await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', () => resolve()));
    r.add(() => new Promise<void>((resolve) => garbage.close(() => resolve())));
    const deadPort = await freePort();
    const [empty, bad, retry] = [await freePort(), await freePort(), await freePort()];
    await startDataPlane(
      r,
      config(
        [httpListener(1, empty, 10), httpListener(2, bad, 11), httpListener(3, retry, 12)],
        [
          pool(10, 'HTTP', []),
          pool(11, 'HTTP', [{ id: 20, port: (garbage.address() as net.AddressInfo).port }]),
          pool(12, 'HTTP', [
            { id: 21, port: deadPort },
            { id: 22, port: good.port },
          ]),
        ],
      ),
    );
    expect((await request(empty)).status).toBe(503);
    expect((await request(bad)).status).toBe(502);
    for (let i = 0; i < 6; i++) expect((await request(retry)).body).toBe('good');
  });

  it('sends PROXY v1 and v2 headers to PROXY/PROXYV2 pools on HTTP listeners', async () => {
    const seen: Buffer[] = [];
    const member = net.createServer((s) => {
      s.once('data', (d: Buffer) => {
        seen.push(d);
        s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
      });
    });
    await new Promise<void>((resolve) => member.listen(0, '127.0.0.1', () => resolve()));
    r.add(() => new Promise<void>((resolve) => member.close(() => resolve())));
    const mPort = (member.address() as net.AddressInfo).port;
    const [p1, p2] = [await freePort(), await freePort()];
    await startDataPlane(
      r,
      config([httpListener(1, p1, 10), httpListener(2, p2, 11)], [pool(10, 'PROXY', [{ id: 20, port: mPort }]), pool(11, 'PROXYV2', [{ id: 21, port: mPort }])]),
    );
    await request(p1, { localAddress: '127.0.0.9' });
    const v1 = seen[0].toString('latin1');
    expect(v1).toMatch(new RegExp(`^PROXY TCP4 127\\.0\\.0\\.9 127\\.0\\.0\\.1 \\d+ ${p1}\\r\\nGET / HTTP/1\\.1\\r\\n`));
    await request(p2, { localAddress: '127.0.0.9' });
    const v2 = seen[1];
    expect(v2.subarray(0, 12).equals(Buffer.from('0d0a0d0a000d0a515549540a', 'hex'))).toBe(true);
    expect(v2[12]).toBe(0x21);
    expect(v2[13]).toBe(0x11);
    expect(v2.readUInt16BE(14)).toBe(12);
    expect([...v2.subarray(16, 20)]).toEqual([127, 0, 0, 9]);
    expect([...v2.subarray(20, 24)]).toEqual([127, 0, 0, 1]);
    expect(v2.readUInt16BE(26)).toBe(p2);
    expect(v2.subarray(28).toString('latin1')).toMatch(/^GET \/ HTTP\/1\.1\r\n/);
  });

  it('answers 504 when the member does not respond within timeout_member_data', async () => {
    const m = await startHttpMember(r, 'slow');
    m.handler = (_req, res) => setTimeout(() => res.end('late'), 3_000);
    const port = await freePort();
    await startDataPlane(r, config([httpListener(1, port, 2, { timeouts: { memberData: 300 } })], [pool(2, 'HTTP', [{ id: 3, port: m.port }])]));
    const started = Date.now();
    const res = await request(port);
    expect(res.status).toBe(504);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(Date.now() - started).toBeLessThan(2_500);
  });

  it('closes idle client connections after timeout_client_data', async () => {
    const m = await startHttpMember(r, 'm1');
    const port = await freePort();
    await startDataPlane(r, config([httpListener(1, port, 2, { timeouts: { clientData: 300 } })], [pool(2, 'HTTP', [{ id: 3, port: m.port }])]));
    const started = Date.now();
    const res = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', 5_000);
    expect(res.text).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(res.closed).toBe(true);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('answers 503 after timeout_member_connect when the member never accepts', async () => {
    const bhPort = await startBlackhole(r);
    const port = await freePort();
    await startDataPlane(r, config([httpListener(1, port, 2, { timeouts: { memberConnect: 400 } })], [pool(2, 'HTTP', [{ id: 3, port: bhPort }])]));
    const started = Date.now();
    const res = await request(port, { timeoutMs: 10_000 });
    expect(res.status).toBe(503);
    // Three attempts (retries), each bounded by the connect timeout.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_100);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('keeps serving pipelined requests in order', async () => {
    const m = await startHttpMember(r, 'm1');
    m.handler = (req, res) => res.end(`r:${req.url}`);
    const port = await freePort();
    await startDataPlane(r, config([httpListener(1, port, 2)], [pool(2, 'HTTP', [{ id: 3, port: m.port }])]));
    const res = await rawExchange(
      port,
      'GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
      5_000,
    );
    expect(res.text.match(/r:\/\d/g)).toEqual(['r:/1', 'r:/2', 'r:/3']);
    expect(res.closed).toBe(true);
    expect(uid(1)).toBeTruthy();
  });
});
