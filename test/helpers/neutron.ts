// Whether the peers' Neutron (and the Keystone in front of it) answers, for the tests that use it.
import { z } from 'zod';
import type { ServiceClient } from '../../driver/openstack/client.ts';

/** Null when a network list works through `client`; otherwise why not (the tests skip, saying so). */
export async function neutronUnavailable(client: ServiceClient): Promise<string | null> {
  try {
    await client.get('/networks', z.object({ networks: z.array(z.unknown()) }), { limit: 1 });
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}
