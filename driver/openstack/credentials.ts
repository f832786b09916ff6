// The Keystone service credentials the OpenStack drivers use (the `keystone` section: the same
// service user that validates tokens). One client per configuration, so that the Neutron and Nova
// drivers of a process share one service token.
import { keystoneClientFromConfig, type KeystoneClient } from '../../api/auth/keystone-client.ts';
import type { ArgonautConfig } from '../../common/config.ts';
import type { Logger } from '../../common/logging.ts';

const clients = new WeakMap<ArgonautConfig['keystone'], KeystoneClient>();

export function serviceCredentials(config: Pick<ArgonautConfig, 'keystone'>, log: Logger): KeystoneClient {
  const k = config.keystone;
  let client = clients.get(k);
  if (!client) {
    if (!k.password) throw new Error('keystone.password is empty: the neutron and nova drivers need the service user credentials of the keystone section');
    client = keystoneClientFromConfig(k, log.child({ component: 'openstack-auth' }));
    clients.set(k, client);
  }
  return client;
}
