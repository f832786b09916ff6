import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AmphoraConfigInput } from '../../common/amphora-config/index.ts';
import { config, eventually, freePort, pool, Resources, uid } from './helpers.ts';
import { TestPki, type CertificateAuthority, type Issued } from './tls-certs.ts';
import { handshake, httpsRequest, material, startHttpsMember } from './tls-helpers.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/argonaut-dataplane.ts');
const r = new Resources();
afterAll(() => r.cleanup());

describe('TLS with worker processes', () => {
  it('terminates, re-encrypts and checks members over TLS from cluster workers, and never logs key material', async () => {
    const pki = await TestPki.create();
    r.add(() => pki.cleanup());
    const ca: CertificateAuthority = await pki.rootCa('cluster-ca');
    const front: Issued = await pki.issue(ca, { subject: '/CN=lb.example.com', san: ['DNS:lb.example.com'] });
    const back: Issued = await pki.issue(ca, { subject: '/CN=member', san: ['IP:127.0.0.1', 'DNS:lb.example.com'] });
    const other: Issued = await pki.issue(ca, { subject: '/CN=other' });
    const member = await startHttpsMember(r, 'secure-member', { cert: back });
    const port = await freePort();

    const dir = mkdtempSync(path.join(tmpdir(), 'argonaut-tls-cli-'));
    r.add(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'amphora.json');
    const render = (version: number, key = front.key): AmphoraConfigInput =>
      config(
        [
          {
            id: uid(1),
            protocol: 'TERMINATED_HTTPS',
            ports: [port],
            defaultPoolId: uid(2),
            insertHeaders: { 'X-Forwarded-Proto': true },
            tls: { defaultCertificate: { ...material(front), privateKey: key }, clientAuthentication: 'OPTIONAL', clientCa: ca.cert },
          },
        ],
        [pool(2, 'HTTP', [{ id: 10, port: member.port }], { tls: { ca: ca.cert }, healthMonitor: { id: uid(3), type: 'HTTPS', delay: 200, timeout: 200, maxRetries: 1, maxRetriesDown: 1 } })],
        version,
      );
    writeFileSync(file, JSON.stringify(render(1)));
    chmodSync(file, 0o600);

    let output = '';
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', BIN, '--config', file, '--workers', '2', '--log-level', 'debug', '--no-watch'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    r.add(async () => {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await new Promise((resolve) => child.once('exit', resolve));
      }
    });
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    await eventually(() => output.includes('"config loaded"'), 20_000);

    for (let i = 0; i < 6; i++) {
      const res = await httpsRequest(port, { ca: ca.cert, servername: 'lb.example.com', path: `/r${i}` });
      expect(res.status).toBe(200);
      expect(res.body).toBe('secure-member');
    }
    // HTTP/2 from the workers too.
    const { default: http2 } = await import('node:http2');
    const h2 = http2.connect(`https://127.0.0.1:${port}`, { ca: ca.cert, servername: 'lb.example.com' });
    h2.on('error', () => {});
    const h2body = await new Promise<string>((resolve, reject) => {
      const stream = h2.request({ ':path': '/h2' });
      let text = '';
      stream.on('data', (d: Buffer) => (text += d.toString()));
      stream.on('end', () => resolve(text));
      stream.on('error', reject);
    });
    h2.close();
    expect(h2body).toBe('secure-member');
    expect(member.requests.find((q) => q.url === '/h2')?.headers['x-forwarded-proto']).toBe('https');

    // Session tickets work whichever worker accepts the next connection.
    let session = (await handshake(port, { servername: 'lb.example.com' })).session;
    expect(session).toBeDefined();
    for (let i = 0; i < 8; i++) {
      const again = await handshake(port, { servername: 'lb.example.com', session });
      expect(again.reused).toBe(true);
      session = again.session ?? session;
    }
    const proxied = member.requests.filter((q) => q.url.startsWith('/r'));
    expect(proxied).toHaveLength(6);
    expect(proxied.every((q) => q.headers['x-forwarded-proto'] === 'https' && q.sni === 'lb.example.com')).toBe(true);
    await eventually(() => member.requests.some((q) => q.url === '/'));

    // Failures that get logged: handshakes refused, a client certificate refused, a config with a wrong key.
    expect((await handshake(port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' })).ok).toBe(false);
    const rogue = await pki.issue(await pki.rootCa('rogue'), { subject: '/CN=x', usage: 'client' });
    await expect(httpsRequest(port, { cert: rogue.cert, key: rogue.key })).rejects.toThrow();
    await eventually(() => output.includes('client certificate refused'));
    writeFileSync(file, JSON.stringify(render(2, other.key)));
    child.kill('SIGHUP');
    await eventually(() => output.includes('"config rejected; running config stays"'), 10_000);
    expect(output).toMatch(/tls\.defaultCertificate\.privateKey: does not match the certificate/);
    expect((await httpsRequest(port, { ca: ca.cert, servername: 'lb.example.com' })).status).toBe(200);
    expect(output).toMatch(/TLS handshake failed/);

    for (const secret of [front.key, other.key, back.key, rogue.key]) {
      const body = secret.split('\n').filter((l) => l !== '' && !l.startsWith('-----'));
      for (const line of body) expect(output).not.toContain(line.slice(0, 24));
    }
    expect(output).not.toContain('PRIVATE KEY');
    expect(output).not.toContain('BEGIN CERTIFICATE');
  });
});
