// The enabled providers by name. `amphora` and its alias `octavia` share one driver; `noop` and
// `noop_driver` name the no-op provider. A name that is enabled in the configuration but has no
// driver here answers 501 "was not found", as Octavia does.
import type { ArgonautConfig } from '../common/config.ts';
import type { Database } from '../common/db/database.ts';
import type { Logger } from '../common/logging.ts';
import { createAmphoraBackends, type AmphoraBackends } from './amphora/backends.ts';
import { AmphoraProvider } from './amphora/provider.ts';
import { pendingLoadBalancers } from './controller/completion.ts';
import type { NetworkDriver } from './network/network-driver.ts';
import { localNetworkDriver } from './network/local/from-config.ts';
import { LoopbackNetworkDriver } from './network/loopback.ts';
import { neutronNetworkDriver } from './network/neutron-from-config.ts';
import { NoopNetworkDriver } from './network/noop.ts';
import { NoopProvider } from './noop/provider.ts';
import type { ProviderDriver } from './provider.ts';

export class ProviderRegistry {
  private readonly drivers = new Map<string, ProviderDriver>();
  private readonly amphora: AmphoraProvider;

  /** Builds the drivers and their backends; the amphora backends start consuming reports. */
  static async create(config: ArgonautConfig, db: Database, log: Logger): Promise<ProviderRegistry> {
    const network = createNetworkDriver(config, db, log);
    const backends = await createAmphoraBackends(config, db, log);
    const registry = new ProviderRegistry(config, db, log, network, backends);
    await backends.start((amphoraId, loadBalancerId) => registry.amphora.failoverFromHealthManager(amphoraId, loadBalancerId));
    return registry;
  }

  private constructor(
    private readonly config: ArgonautConfig,
    private readonly db: Database,
    log: Logger,
    readonly network: NetworkDriver,
    private readonly backends: AmphoraBackends,
  ) {
    const cw = config.controllerWorker;
    const amphora = new AmphoraProvider({
      db,
      log,
      network,
      compute: backends.compute,
      delivery: backends.delivery,
      spares: backends.spares,
      masterKey: backends.masterKey,
      defaultTopology: cw.loadbalancerTopology,
      vrrpSyncPort: config.vrrp.syncPort,
      workerDelayMs: cw.workerDelayMs,
    });
    this.amphora = amphora;
    const noop = new NoopProvider('noop', db, log, this.network, cw.workerDelayMs);
    for (const name of Object.keys(config.api.enabledProviderDrivers)) {
      if (name === 'amphora' || name === 'octavia') this.drivers.set(name, amphora);
      else if (name === 'noop' || name === 'noop_driver') this.drivers.set(name, noop);
    }
  }

  isEnabled(name: string): boolean {
    return name in this.config.api.enabledProviderDrivers;
  }

  /** The driver of an enabled provider, or undefined if none is built in for that name. */
  get(name: string): ProviderDriver | undefined {
    return this.drivers.get(name);
  }

  list(): Array<{ name: string; description: string }> {
    return Object.entries(this.config.api.enabledProviderDrivers).map(([name, description]) => ({ name, description }));
  }

  /** Hands every load balancer left in PENDING_* to its provider to finish. */
  async resumePending(): Promise<number> {
    const pending = await pendingLoadBalancers(this.db);
    for (const lb of pending) this.drivers.get(lb.provider)?.resume(lb.id);
    return pending.length;
  }

  async idle(): Promise<void> {
    for (const d of new Set(this.drivers.values())) await d.idle();
  }

  /** Stops taking requests, waits for running operations, then stops the amphorae and the transport. */
  async stop(): Promise<void> {
    for (const d of new Set([...this.drivers.values(), this.amphora])) await d.stop();
    await this.backends.stop();
  }
}

function createNetworkDriver(config: ArgonautConfig, db: Database, log: Logger): NetworkDriver {
  switch (config.controllerWorker.networkDriver) {
    case 'noop':
      return new NoopNetworkDriver();
    case 'loopback':
      return new LoopbackNetworkDriver(db);
    case 'local':
      return localNetworkDriver(config, db);
    case 'neutron':
      return neutronNetworkDriver(config, log);
  }
}
