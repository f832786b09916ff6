// The nova compute driver of the configuration's `nova` section, authenticated with the `keystone`
// section's service user. The agents' messaging settings are the controller's (messaging.amqp),
// with nova.amqpUrl as the URL when the amphorae reach RabbitMQ at another address.
import type { ArgonautConfig } from '../../common/config.ts';
import type { Logger } from '../../common/logging.ts';
import { serviceCredentials } from '../openstack/credentials.ts';
import { NovaComputeDriver } from './nova.ts';

/** The `nova` section (common/config.ts). */
export interface NovaSection {
  endpoint: string | null;
  imageEndpoint: string | null;
  endpointInterface: 'public' | 'internal' | 'admin';
  region: string | null;
  timeoutMs: number;
  flavorId: string | null;
  imageId: string | null;
  imageTag: string | null;
  imageOwnerId: string | null;
  managementNetworkId: string | null;
  keyName: string | null;
  availabilityZone: string | null;
  securityGroups: string[];
  serverGroupPolicy: 'anti-affinity' | 'soft-anti-affinity' | null;
  bootTimeoutMs: number;
  pollIntervalMs: number;
  amqpUrl: string | null;
  agentSettingsPath: string;
}

export function novaComputeDriver(config: ArgonautConfig & { nova: NovaSection }, log: Logger): NovaComputeDriver {
  const n = config.nova;
  if (!n.flavorId || !n.managementNetworkId) throw new Error('computeDriver nova needs nova.flavorId and nova.managementNetworkId');
  return new NovaComputeDriver({
    credentials: serviceCredentials(config, log),
    endpoint: n.endpoint,
    imageEndpoint: n.imageEndpoint,
    interface: n.endpointInterface,
    region: n.region ?? config.keystone.region,
    timeoutMs: n.timeoutMs,
    flavorId: n.flavorId,
    imageId: n.imageId,
    imageTag: n.imageTag,
    imageOwnerId: n.imageOwnerId,
    managementNetworkId: n.managementNetworkId,
    keyName: n.keyName,
    availabilityZone: n.availabilityZone,
    securityGroups: n.securityGroups,
    serverGroupPolicy: n.serverGroupPolicy,
    bootTimeoutMs: n.bootTimeoutMs,
    pollIntervalMs: n.pollIntervalMs,
    agent: {
      messaging: { ...config.messaging.amqp, ...(n.amqpUrl ? { url: n.amqpUrl } : {}) },
      heartbeatIntervalMs: config.healthManager.heartbeatIntervalMs,
      dataplaneWorkers: config.controllerWorker.amphoraDataplaneWorkers,
      logLevel: config.controllerWorker.amphoraLogLevel,
    },
    agentSettingsPath: n.agentSettingsPath,
    logger: log,
  });
}
