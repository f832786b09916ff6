// The neutron network driver of the configuration's `neutron` section, authenticated with the
// `keystone` section's service user.
import type { ArgonautConfig } from '../../common/config.ts';
import type { Logger } from '../../common/logging.ts';
import { serviceCredentials } from '../openstack/credentials.ts';
import { NeutronNetworkDriver } from './neutron.ts';

/** The `neutron` section (common/config.ts). */
export interface NeutronSection {
  endpoint: string | null;
  endpointInterface: 'public' | 'internal' | 'admin';
  region: string | null;
  timeoutMs: number;
  securityGroupDeleteAttempts: number;
  retryIntervalMs: number;
}

export function neutronNetworkDriver(config: Pick<ArgonautConfig, 'keystone'> & { neutron: NeutronSection }, log: Logger): NeutronNetworkDriver {
  const n = config.neutron;
  return new NeutronNetworkDriver({
    credentials: serviceCredentials(config, log),
    endpoint: n.endpoint,
    interface: n.endpointInterface,
    region: n.region ?? config.keystone.region,
    timeoutMs: n.timeoutMs,
    securityGroupDeleteAttempts: n.securityGroupDeleteAttempts,
    retryIntervalMs: n.retryIntervalMs,
    logger: log,
  });
}
