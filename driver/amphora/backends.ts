// The amphora provider's backends, built from the configuration: the controller's transport to the
// amphorae, the compute driver that starts them, the config delivery, and the health manager that
// consumes their heartbeats. With the defaults of Octavia's API gate (noop everywhere) nothing is
// started and no transport is opened.
import { randomBytes } from 'node:crypto';
import type { ArgonautConfig } from '../../common/config.ts';
import type { Database } from '../../common/db/database.ts';
import type { Logger } from '../../common/logging.ts';
import { AmqpTransport } from '../../common/transport/amqp-transport.ts';
import { InProcessBroker } from '../../common/transport/in-process-transport.ts';
import type { ControllerTransport } from '../../common/transport/transport.ts';
import type { ComputeDriver } from '../compute/compute-driver.ts';
import { NetnsComputeDriver } from '../compute/netns.ts';
import { NoopComputeDriver } from '../compute/noop.ts';
import { novaComputeDriver } from '../compute/nova-from-config.ts';
import { ProcessComputeDriver, type ProcessComputeOptions } from '../compute/process.ts';
import { LocalFloatingIps } from '../network/local/floating-ips.ts';
import { localNetworkDriver } from '../network/local/from-config.ts';
import { HealthManager } from '../health/health-manager.ts';
import { SparePool } from './spare-pool.ts';
import { markLoadBalancersWithDeadAmphorae } from './dead-amphorae.ts';
import { createCertificateManager, type CertificateManager } from '../../common/certificates/index.ts';
import { AgentConfigDelivery, NoopConfigDelivery, type ConfigDelivery } from './config-delivery.ts';

export interface AmphoraBackends {
  compute: ComputeDriver;
  delivery: ConfigDelivery;
  spares: SparePool | null;
  masterKey: Buffer;
  /**
   * Marks the load balancers whose amphorae are dead PENDING_UPDATE (the resumption of pending
   * load balancers that follows repairs them), then starts consuming the amphorae's reports
   * (heartbeats, config fetches); `failover` is the health manager's way to replace an amphora.
   */
  start(failover: (amphoraId: string, loadBalancerId: string) => Promise<void>): Promise<void>;
  /** Stops the health manager, the amphorae this process started, and the transport. */
  stop(): Promise<void>;
}

export async function createAmphoraBackends(config: ArgonautConfig, db: Database, log: Logger): Promise<AmphoraBackends> {
  const cw = config.controllerWorker;
  const masterKey = config.messaging.masterKey === null ? randomBytes(32) : Buffer.from(config.messaging.masterKey, 'utf8');
  if (cw.amphoraDriver === 'noop') {
    return { compute: new NoopComputeDriver(), delivery: new NoopConfigDelivery(), spares: null, masterKey, start: async () => {}, stop: async () => {} };
  }
  let transport: ControllerTransport;
  let broker: InProcessBroker | null = null;
  if (config.messaging.kind === 'in-process') {
    broker = new InProcessBroker();
    transport = broker.connect({ identity: { role: 'controller', masterKey }, logger: log });
  } else {
    transport = await AmqpTransport.connect({ ...config.messaging.amqp, identity: { role: 'controller', masterKey }, logger: log });
  }
  let certificates: Promise<CertificateManager | null> | undefined;
  const delivery = new AgentConfigDelivery(db, transport, log.child({ component: 'config-delivery' }), cw.configAckTimeoutMs, masterKey, () =>
    (certificates ??= createCertificateManager(config, db, log)), config.vrrp,
  );
  const compute = createComputeDriver(config, db, log, broker);
  if (compute instanceof NetnsComputeDriver) {
    const local = localNetworkDriver(config, db);
    await local.ensureBridge(config.localNetwork.bridge);
    const floating = config.localNetwork.floatingNetwork;
    if (floating) {
      const router = new LocalFloatingIps({
        prefix: config.localNetwork.prefix,
        externalCidr: floating.cidr,
        ...(floating.routerAddress ? { routerAddress: floating.routerAddress } : {}),
        internalBridge: config.localNetwork.bridge,
        routerInternalAddress: floating.routerInternalAddress,
        internalPrefixLength: local.prefixLength,
      });
      await router.ensure();
      for (const a of floating.associations) await router.associate(a.floatingIp, a.vipAddress);
      log.info({ router: router.routerNamespace, associations: router.list() }, 'floating IPs associated');
    }
  }
  let healthManager: HealthManager | undefined;
  const spares =
    cw.sparePoolSize > 0 && compute.name !== 'noop'
      ? new SparePool({ db, log: log.child({ component: 'spare-pool' }), compute, masterKey, size: cw.sparePoolSize,
          checkIntervalMs: cw.spareCheckIntervalMs,
          waitServing: async (amphoraId) => {
            const ack = await transport.sendCommand(amphoraId, { kind: 'ping' }, { timeoutMs: cw.configAckTimeoutMs, retries: 0 });
            if (!ack.ok) throw new Error(`spare amphora ${amphoraId} answered ping with ${ack.error}`);
          },
        })
      : null;
  return {
    compute,
    delivery,
    spares,
    masterKey,
    async start(failover) {
      // Before the pending load balancers are resumed: with the drivers whose amphorae stop with the
      // controller process that started them, those of the previous process are all dead; their
      // load balancers become pending too and are repaired now. (Nova's servers outlive a
      // controller: the health manager finds the dead ones without a liveness call per amphora.)
      if (cw.computeDriver === 'process' || cw.computeDriver === 'netns') {
        await markLoadBalancersWithDeadAmphorae(db, compute, log.child({ component: 'controller' }));
      }
      const hmConfig = config.healthManager;
      healthManager = new HealthManager({
        db,
        log: log.child({ component: 'health-manager' }),
        heartbeatTimeoutMs: hmConfig.heartbeatTimeoutMs,
        healthCheckIntervalMs: hmConfig.healthCheckIntervalMs,
        failoverThreshold: hmConfig.failoverThreshold,
        failover,
        // Heartbeats cannot arrive while RabbitMQ is away: no amphora is failed over for that.
        reportPath: transport instanceof AmqpTransport ? () => ({ connected: transport.connected, connects: transport.counters().connects }) : undefined,
      });
      const hm = healthManager;
      await transport.onAmphoraReport({
        heartbeat: (h, meta) => hm.handleHeartbeat(h, meta),
        configFetch: (req) => delivery.fetch(req),
      });
      hm.start();
      spares?.start();
    },
    async stop() {
      await spares?.stop();
      await healthManager?.stop();
      await compute.stop();
      await transport.close();
    },
  };
}

function createComputeDriver(config: ArgonautConfig, db: Database, log: Logger, broker: InProcessBroker | null): ComputeDriver {
  const cw = config.controllerWorker;
  const processOptions = (): ProcessComputeOptions => ({
    stateDir: cw.stateDir,
    logger: log,
    messaging: broker ? { kind: 'ipc', broker } : { kind: 'amqp', settings: config.messaging.amqp },
    heartbeatIntervalMs: config.healthManager.heartbeatIntervalMs,
    dataplaneWorkers: cw.amphoraDataplaneWorkers,
    logLevel: cw.amphoraLogLevel,
  });
  switch (cw.computeDriver) {
    case 'noop':
      return new NoopComputeDriver();
    case 'process':
      return new ProcessComputeDriver(processOptions());
    case 'netns': {
      const net = localNetworkDriver(config, db);
      return new NetnsComputeDriver({
        network: net.amphoraNetwork({ prefix: config.localNetwork.prefix, bridge: config.localNetwork.bridge }),
        processes: (wrapCommand) => new ProcessComputeDriver({ ...processOptions(), wrapCommand }),
        logger: log,
      });
    }
    case 'nova':
      return novaComputeDriver(config, log);
  }
}
