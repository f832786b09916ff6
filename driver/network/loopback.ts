// The loopback network driver (embedded default: no root, no OpenStack): one subnet,
// 127.0.100.0/24, with fixed ids. On Linux all of 127.0.0.0/8 is local, so a data plane binds
// 127.0.100.x without anything being plumbed. VIPs are handed out from 127.0.100.2 up.
import type { Database } from '../../common/db/database.ts';
import { SingleSubnetNetworkDriver } from './local/single-subnet.ts';

export const LOOPBACK_SUBNET_ID = '127a0100-5b5e-4e7a-9c00-000000000024';
export const LOOPBACK_NETWORK_ID = '127a0100-0e70-4e7a-9c00-000000000000';
export const LOOPBACK_CIDR = '127.0.100.0/24';
export const LOOPBACK_FIRST_VIP = '127.0.100.2';
export const LOOPBACK_LAST_VIP = '127.0.100.254';

export class LoopbackNetworkDriver extends SingleSubnetNetworkDriver {
  constructor(db: Database) {
    super({
      name: 'loopback',
      db,
      subnetId: LOOPBACK_SUBNET_ID,
      networkId: LOOPBACK_NETWORK_ID,
      cidr: LOOPBACK_CIDR,
      allocationStart: LOOPBACK_FIRST_VIP,
      allocationEnd: LOOPBACK_LAST_VIP,
    });
  }
}
