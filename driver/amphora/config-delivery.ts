// How a load balancer's configuration reaches its amphorae. `noop` (Octavia's no-op amphora driver)
// acknowledges at once. `agent` renders the document, records it as the amphora's configuration
// (what the amphora fetches when it starts or reconnects), pushes it over the transport and waits
// for the amphora's acknowledgement of that version.
import type { Database, Row } from '../../common/db/database.ts';
import type { Logger } from '../../common/logging.ts';
import type { ConfigFetch, ConfigPush } from '../../common/messages.ts';
import type { ControllerTransport } from '../../common/transport/transport.ts';
import type { LoadBalancerTree } from '../controller/completion.ts';
import { renderAmphoraConfig } from './render-config.ts';

export interface ConfigDelivery {
  /** Gives the amphora the configuration of the load balancer's tree (loaded only if needed); resolves once it runs it. */
  deliver(amphoraId: string, tree: () => Promise<LoadBalancerTree>): Promise<void>;
  /** The amphora is gone: forget its configuration and its queue. */
  forget(amphoraId: string): Promise<void>;
}

export class NoopConfigDelivery implements ConfigDelivery {
  async deliver(): Promise<void> {}
  async forget(): Promise<void> {}
}

/** An amphora answered a push with ok: false; the operation fails with its reason. */
export class ConfigRefusedError extends Error {
  override name = 'ConfigRefusedError';
}

/** Statuses of amphorae that may still ask for their configuration. */
const IN_SERVICE = ['BOOTING', 'ALLOCATED'];

export class AgentConfigDelivery implements ConfigDelivery {
  constructor(
    private readonly db: Database,
    private readonly transport: ControllerTransport,
    private readonly log: Logger,
    private readonly ackTimeoutMs: number,
  ) {}

  async deliver(amphoraId: string, tree: () => Promise<LoadBalancerTree>): Promise<void> {
    const push = await this.record(amphoraId, await tree());
    const startedAt = Date.now();
    const ack = await this.transport.pushConfig(push, { timeoutMs: this.ackTimeoutMs, retries: 0 });
    if (!ack.ok) throw new ConfigRefusedError(`amphora ${amphoraId} refused configuration ${push.configVersion}: ${ack.error}`);
    if (ack.configVersion < push.configVersion) {
      throw new ConfigRefusedError(`amphora ${amphoraId} acknowledged version ${ack.configVersion}, not ${push.configVersion}`);
    }
    this.log.info({ amphoraId, configVersion: push.configVersion, ms: Date.now() - startedAt }, 'configuration acknowledged');
  }

  async forget(amphoraId: string): Promise<void> {
    await this.db.tx((t) => this.db.models.amphora_config.destroy({ where: { amphora_id: amphoraId }, transaction: t }));
    await this.transport.forgetAmphora(amphoraId);
  }

  /** The configuration an amphora asks for: what it was last given, or null if it is not in service. */
  async fetch(req: ConfigFetch): Promise<ConfigPush | null> {
    const { db } = this;
    return db.read(async () => {
      const amphora = (await db.models.amphora.findByPk(req.amphoraId, { raw: true })) as Row | null;
      if (!amphora || !IN_SERVICE.includes(amphora.status)) return null;
      const row = (await db.models.amphora_config.findByPk(req.amphoraId, { raw: true })) as Row | null;
      if (!row) return null;
      return { amphoraId: req.amphoraId, configVersion: row.config_version, config: JSON.parse(row.document) };
    });
  }

  /** Renders the next version and records it before it is sent: a restarting amphora fetches it. */
  private async record(amphoraId: string, tree: LoadBalancerTree): Promise<ConfigPush> {
    const { db } = this;
    return db.tx(async (t) => {
      const model = db.models.amphora_config;
      const current = (await model.findByPk(amphoraId, { raw: true, transaction: t, lock: db.lock })) as Row | null;
      const configVersion = (current?.config_version ?? 0) + 1;
      const config = renderAmphoraConfig(tree, amphoraId, configVersion);
      const values = { config_version: configVersion, document: JSON.stringify(config), updated_at: new Date() };
      if (current) await model.update(values, { where: { amphora_id: amphoraId }, transaction: t });
      else await model.create({ amphora_id: amphoraId, ...values }, { transaction: t });
      return { amphoraId, configVersion, config };
    });
  }
}
