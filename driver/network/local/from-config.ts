// The local network driver of the configuration's `localNetwork` section (one per process: the
// network driver that allocates VIPs and the netns compute driver that plugs amphorae share it).
import type { ArgonautConfig } from '../../../common/config.ts';
import type { Database } from '../../../common/db/database.ts';
import { LocalNetworkDriver } from './local-network-driver.ts';

const drivers = new WeakMap<Database, LocalNetworkDriver>();

export function localNetworkDriver(config: ArgonautConfig, db: Database): LocalNetworkDriver {
  let driver = drivers.get(db);
  if (!driver) {
    const c = config.localNetwork;
    driver = new LocalNetworkDriver({ db, subnetId: c.subnetId, networkId: c.networkId, cidr: c.cidr, ...(c.gateway ? { gateway: c.gateway } : {}) });
    drivers.set(db, driver);
  }
  return driver;
}
