// The devstack plugin (devstack/): runs test/devstack/harness.sh (every phase with recording fakes of
// devstack's functions), loads the files it generated with Argonaut's own loaders, and lints every
// shell file with shellcheck. Devstack itself cannot run here.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../common/config.ts';
import { createLogger } from '../../common/logging.ts';
import { novaComputeDriver } from '../../driver/compute/nova-from-config.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const SHELL_FILES = ['devstack/plugin.sh', 'devstack/settings', 'test/devstack/harness.sh'];
// The harness's check count: change it together with the harness.
const HARNESS_CHECKS = 96;

function findShellcheck(): string | null {
  const r = spawnSync('sh', ['-c', 'command -v shellcheck'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

describe('devstack plugin', () => {
  let work: string;
  let harness: ReturnType<typeof spawnSync>;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'argonaut-devstack-'));
    harness = spawnSync('bash', ['test/devstack/harness.sh'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, HARNESS_KEEP: work },
      timeout: 60_000,
    });
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('passes every harness check, and runs all of them', () => {
    const out = `${harness.stdout}\n${harness.stderr}`;
    expect(harness.status, out).toBe(0);
    const summary = /^harness: (\d+) checks passed, (\d+) failed$/m.exec(String(harness.stdout));
    expect(summary, out).not.toBeNull();
    expect(Number(summary![2])).toBe(0);
    expect(Number(summary![1])).toBe(HARNESS_CHECKS);
  });

  it('writes a config that Argonaut itself loads: Keystone, MySQL from DATABASE_*, advanced policy', () => {
    const config = loadConfigFile(join(work, 'generated-argonaut.yaml'));
    expect(config.api).toMatchObject({ host: '0.0.0.0', port: 9876, authStrategy: 'keystone', defaultProviderDriver: 'amphora' });
    expect(Object.keys(config.api.enabledProviderDrivers)).toEqual(['amphora', 'octavia', 'noop']);
    // user root, password db@pw:/#% (percent-encoded), host DATABASE_HOST
    expect(config.database.url).toBe('mysql://root:db%40pw%3A%2F%23%25@10.0.0.6:3306/argonaut');
    const url = new URL(config.database.url);
    expect(decodeURIComponent(url.password)).toBe('db@pw:/#%');
    expect(config.database.migrateOnStart).toBe(false);
    expect(config.keystone).toMatchObject({
      authUrl: 'http://10.0.0.5/identity/v3',
      username: 'argonaut',
      password: "se'rvice pw",
      projectName: 'service',
      userDomainName: 'Default',
      region: 'RegionOne',
    });
    expect(config.policy).toEqual({ ruleSet: 'advanced', enforceNewDefaults: false });
    // the default drivers: Octavia's no-op API gate, no RabbitMQ
    expect(config.controllerWorker).toMatchObject({ loadbalancerTopology: 'SINGLE', computeDriver: 'noop', networkDriver: 'noop', amphoraDriver: 'noop' });
    expect(config.messaging.kind).toBe('in-process');
  });

  it('with computeDriver nova, writes a config Argonaut loads: RabbitMQ, the master key, the nova section', () => {
    const config = loadConfigFile(join(work, 'generated-argonaut-nova.yaml'));
    expect(config.controllerWorker).toMatchObject({ loadbalancerTopology: 'ACTIVE_STANDBY', computeDriver: 'nova', networkDriver: 'neutron', amphoraDriver: 'agent' });
    expect(config.messaging.kind).toBe('amqp');
    expect(config.messaging.masterKey).toBe(readFileSync(join(work, 'generated-master.key'), 'utf8'));
    expect(config.messaging.masterKey).toMatch(/^[0-9a-f]{64}$/);
    expect(config.messaging.amqp).toMatchObject({ url: 'amqp://stackrabbit:rabbit-pw@10.0.0.7:5672/argonaut', prefix: 'argonaut' });
    // the ids the harness's fake openstack gives the flavor and network made in the extra phase
    expect(config.nova).toMatchObject({
      flavorId: 'id-of-argonaut-amphora',
      imageId: null,
      imageTag: 'amphora',
      managementNetworkId: 'id-of-lb-mgmt-net',
      securityGroups: ['lb-mgmt-sec-grp'],
      serverGroupPolicy: 'soft-anti-affinity',
      keyName: null,
      amqpUrl: null,
      endpoint: null,
      region: null,
    });
    expect(config.keystone.password).toBe("se'rvice pw");
    // what `argonaut api` builds from it (no request is made until an amphora boots)
    const driver = novaComputeDriver(config, createLogger('devstack-test', 'silent'));
    expect(driver.antiAffinity).toBe(true);
  });

  it("writes tempest's [load_balancer] providers as the API lists them", () => {
    const ini = readFileSync(join(work, 'generated-tempest.conf'), 'utf8');
    const line = /^enabled_provider_drivers = (.*)$/m.exec(ini)![1];
    const config = loadConfigFile(join(work, 'generated-argonaut.yaml'));
    const fromTempest = Object.fromEntries(line.split(',').map((e) => [e.slice(0, e.indexOf(':')), e.slice(e.indexOf(':') + 1)]));
    expect(fromTempest).toEqual(config.api.enabledProviderDrivers);
  });

  it('is clean under shellcheck (plugin.sh, settings, harness.sh)', () => {
    let shellcheck = findShellcheck();
    if (!shellcheck && process.getuid?.() === 0) {
      spawnSync('apt-get', ['install', '-y', 'shellcheck'], { stdio: 'ignore', timeout: 120_000 });
      shellcheck = findShellcheck();
    }
    if (!shellcheck) {
      throw new Error('shellcheck not found: install it (Debian/Ubuntu: `sudo apt-get install -y shellcheck`), then rerun');
    }
    const r = spawnSync(shellcheck, ['-x', ...SHELL_FILES], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
  }, 150_000);
});
