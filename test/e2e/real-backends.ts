// Shared set-up of the end-to-end tests that run Argonaut with real backends under the peers of
// ../shared/peers (test/e2e/cli.test.ts, test/horizon/horizon.test.ts): Keystone auth, the
// `neutron` network driver (VIP and VRRP ports allocated by the real API-only Neutron) and the
// `netns` compute driver (amphorae are namespaces on a bridge of the run), and a free /24 for
// the run's Neutron subnet.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A `<base>.<n>` (base e.g. "10.217") whose /24 no Neutron subnet (`neutronCidrs`) and no route of the host uses. */
export async function chooseNet(base: string, neutronCidrs: string[]): Promise<string> {
  const { stdout } = await run('ip', ['-4', 'route', 'show', 'table', 'all']);
  const taken = (n: number) => neutronCidrs.some((c) => c.startsWith(`${base}.${n}.`)) || stdout.includes(`${base}.${n}.`);
  const start = randomBytes(1)[0]!;
  for (let i = 0; i < 256; i++) {
    const n = (start + i) % 256;
    if (!taken(n)) return `${base}.${n}`;
  }
  throw new Error(`no free ${base}.<n>.0/24 left`);
}

export interface RealBackendsOptions {
  port: number;
  dbUrl: string;
  keystoneUrl: string;
  /** The run's temporary directory (the amphorae's state goes under it). */
  dir: string;
  /** `<a>.<b>.<c>` of the run's /24; .1 is the gateway (Neutron's and the bridge's address). */
  net: string;
  bridge: string;
  prefix: string;
  subnetId: string;
  networkId: string;
}

/** Argonaut's configuration: Keystone (service user octavia), policy `advanced`, netns amphorae with Neutron ports, fast heartbeats. */
export function realBackendsConfig(o: RealBackendsOptions): Record<string, unknown> {
  return {
    api: { port: o.port, authStrategy: 'keystone' },
    database: { url: o.dbUrl },
    keystone: { authUrl: o.keystoneUrl, username: 'octavia', password: 'secret', projectName: 'service', region: 'RegionOne' },
    policy: { ruleSet: 'advanced' },
    controllerWorker: { computeDriver: 'netns', networkDriver: 'neutron', amphoraDriver: 'agent', stateDir: path.join(o.dir, 'amphorae'), configAckTimeoutMs: 30_000 },
    localNetwork: { cidr: `${o.net}.0/24`, gateway: `${o.net}.1`, bridge: o.bridge, prefix: o.prefix, subnetId: o.subnetId, networkId: o.networkId },
    messaging: { kind: 'in-process' },
    healthManager: { heartbeatIntervalMs: 500, heartbeatTimeoutMs: 10_000, healthCheckIntervalMs: 500 },
    logging: { level: 'info' },
  };
}
