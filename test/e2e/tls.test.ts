// TLS end to end through the API on the embedded drivers: a certificate stored in the local
// certificate manager, a TERMINATED_HTTPS listener referencing it, the amphora process serving it
// on the VIP (SNI picks the certificate; a client trusting the test CA gets the member's answer),
// and the recorded amphora configuration sealed at rest (no private key in the database).
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCertificateManager } from '../../common/certificates/index.ts';
import type { Row } from '../../common/db/database.ts';
import { LOOPBACK_SUBNET_ID } from '../../driver/network/loopback.ts';
import { startApi, type TestApi } from '../helpers/api.ts';
import { makePki, type TestPki } from '../helpers/certs.ts';
import { waitFor, waitLoadBalancerActive } from '../helpers/wait.ts';

const KEY = 'e2e-tls-local-certificate-store-key-0123456789';
const PROJECT = 'e2e-tls';
let api: TestApi;
let pki: TestPki;
let stateDir: string;
let member: http.Server;

const post = async (p: string, body: unknown) =>
  api.client().raw('POST', p, JSON.stringify(body), { 'Content-Type': 'application/json', 'X-Project-Id': PROJECT });

function waitActive(id: string): Promise<void> {
  return waitLoadBalancerActive(api.client(), id, 30_000);
}

function httpsGet(host: string, port: number, servername: string): Promise<{ body: string; subject: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host, port, path: '/', servername, ca: pki.ca.cert, agent: false, timeout: 3000 }, (res) => {
      const subject = String((res.socket as import('node:tls').TLSSocket).getPeerCertificate().subject?.CN ?? '');
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ body, subject }));
    });
    req.on('error', reject);
  });
}

beforeAll(async () => {
  pki = makePki();
  stateDir = mkdtempSync(path.join(tmpdir(), 'argonaut-e2e-tls-'));
  api = await startApi({
    controllerWorker: { computeDriver: 'process', networkDriver: 'loopback', amphoraDriver: 'agent', stateDir, sparePoolSize: 0 },
    messaging: { kind: 'in-process' },
    certificates: { manager: 'local', localKey: KEY },
  });
  member = http.createServer((_req, res) => res.end('member over TLS'));
  await new Promise<void>((r) => member.listen(0, '127.0.0.1', () => r()));
}, 60_000);

afterAll(async () => {
  await api?.close();
  member?.close();
  pki?.cleanup();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
}, 60_000);

describe('TERMINATED_HTTPS through the API, on a real amphora', () => {
  it('serves the referenced certificates by SNI and proxies to the member; the recorded configuration holds no private key', async () => {
    const manager = new LocalCertificateManager(api.service.services.db, KEY);
    const leaf = (await manager.store({ projectId: PROJECT, name: 'leaf', kind: 'certificate', certificate: pki.leaf.cert, privateKey: pki.leaf.key })).ref;
    const sni = (await manager.store({ projectId: PROJECT, name: 'sni', kind: 'certificate', certificate: pki.sni.cert, privateKey: pki.sni.key })).ref;

    const lb = await post('/v2/lbaas/loadbalancers', { loadbalancer: { name: 'tls', vip_subnet_id: LOOPBACK_SUBNET_ID } });
    expect(lb.status).toBe(201);
    const lbId = lb.body.loadbalancer.id as string;
    const vip = lb.body.loadbalancer.vip_address as string;
    await waitActive(lbId);
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as AddressInfo).port;
    probe.close();
    const listener = await post('/v2/lbaas/listeners', {
      listener: { loadbalancer_id: lbId, protocol: 'TERMINATED_HTTPS', protocol_port: port, default_tls_container_ref: leaf, sni_container_refs: [sni] },
    });
    expect(listener.status).toBe(201);
    await waitActive(lbId);
    const pool = await post('/v2/lbaas/pools', { pool: { listener_id: listener.body.listener.id, protocol: 'HTTP', lb_algorithm: 'ROUND_ROBIN' } });
    await waitActive(lbId);
    await post(`/v2/lbaas/pools/${pool.body.pool.id}/members`, { member: { address: '127.0.0.1', protocol_port: (member.address() as AddressInfo).port } });
    await waitActive(lbId);

    const byDefault = await waitFor('HTTPS through the VIP', () => httpsGet(vip, port, 'leaf.example').catch(() => undefined), 10_000);
    expect(byDefault).toEqual({ body: 'member over TLS', subject: 'leaf.example' });
    expect((await httpsGet(vip, port, 'sni.example')).subject).toBe('sni.example');

    const { db } = api.service.services;
    const rows = (await db.models.amphora_config.findAll({ raw: true })) as Row[];
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(String(row.document)).not.toContain('PRIVATE KEY');
      expect(String(row.document).startsWith('sealed:')).toBe(true);
    }
  }, 90_000);
});
