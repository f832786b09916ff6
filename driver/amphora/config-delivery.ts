// How a load balancer's configuration reaches its amphorae. `noop` (Octavia's no-op amphora driver)
// acknowledges at once. `agent` renders the document, records it as the amphora's configuration
// (what the amphora fetches when it starts or reconnects), pushes it over the transport and waits
// for the amphora's acknowledgement of that version.
import { vrrpSettingsSchema, type VrrpSettings } from '../../common/config.ts';
import type { Database, Row } from '../../common/db/database.ts';
import type { Logger } from '../../common/logging.ts';
import type { ConfigFetch, ConfigPush } from '../../common/messages.ts';
import type { ControllerTransport } from '../../common/transport/transport.ts';
import type { LoadBalancerTree } from '../controller/completion.ts';
import { refreshHealth, wholeSeconds } from '../health/heartbeat-db.ts';
import type { CertificateManager } from '../../common/certificates/index.ts';
import { Sealer } from '../../common/certificates/sealing.ts';
import { deriveVrrpKey } from '../../common/transport/signing.ts';
import { renderAmphoraConfig, type VrrpRenderInput } from './render-config.ts';
import { resolveTreeTls, type TreeTlsMaterial } from './tls-material.ts';

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

/** Recorded documents holding TLS material (private keys) are sealed at rest: this prefix marks them. */
const SEALED = 'sealed:';

/** The `vrrp` section's defaults, for a delivery built without a configuration. */
export const DEFAULT_VRRP_SETTINGS: VrrpSettings = vrrpSettingsSchema.parse({});

export class AgentConfigDelivery implements ConfigDelivery {
  /** Seals recorded documents that carry private keys (AES-256-GCM, a key derived from the master key). */
  private readonly sealer: Sealer;
  /** The amphorae of one operation share its tree: its references are resolved once, not per amphora. */
  private readonly resolved = new WeakMap<LoadBalancerTree, Promise<TreeTlsMaterial>>();
  private readonly masterKey: Buffer;

  constructor(
    private readonly db: Database,
    private readonly transport: ControllerTransport,
    private readonly log: Logger,
    private readonly ackTimeoutMs: number,
    masterKey: Buffer,
    /** Resolves listeners' and pools' certificate references (null: no certificate manager). */
    private readonly certificates: () => Promise<CertificateManager | null>,
    private readonly vrrp: VrrpSettings = DEFAULT_VRRP_SETTINGS,
  ) {
    this.masterKey = masterKey;
    this.sealer = new Sealer(masterKey, 'amphora configurations at rest v1');
  }

  async deliver(amphoraId: string, tree: () => Promise<LoadBalancerTree>): Promise<void> {
    const loaded = await tree();
    // Resolved outside the recording transaction (Barbican is a remote call; the local store reads the database).
    const tls = await this.tlsOf(loaded);
    const push = await this.record(amphoraId, loaded, tls);
    const startedAt = Date.now();
    const ack = await this.transport.pushConfig(push, { timeoutMs: this.ackTimeoutMs, retries: 0 });
    if (!ack.ok) throw new ConfigRefusedError(`amphora ${amphoraId} refused configuration ${push.configVersion}: ${ack.error}`);
    if (ack.configVersion < push.configVersion) {
      throw new ConfigRefusedError(`amphora ${amphoraId} acknowledged version ${ack.configVersion}, not ${push.configVersion}`);
    }
    this.log.info({ amphoraId, configVersion: push.configVersion, ms: Date.now() - startedAt }, 'configuration acknowledged');
    await this.markAlive(amphoraId);
  }

  /**
   * An acknowledgement proves the amphora alive as a heartbeat does: its health record is
   * refreshed, and created for a new amphora. Without it, an amphora that died before a heartbeat
   * of it was handled while ALLOCATED (a claimed spare acknowledges its first configuration within
   * milliseconds) had no health record to go stale, and the health manager never failed it over.
   */
  private async markAlive(amphoraId: string): Promise<void> {
    const { db } = this;
    const at = wholeSeconds(Date.now());
    try {
      await db.tx((t) => refreshHealth(db, amphoraId, at, t));
    } catch (err) {
      // The database failed: heartbeats refresh the record anyway.
      this.log.warn({ err, amphoraId }, 'could not refresh the health record of an amphora that acknowledged its configuration');
    }
  }

  private tlsOf(tree: LoadBalancerTree): Promise<TreeTlsMaterial> {
    let tls = this.resolved.get(tree);
    if (!tls) {
      tls = this.certificates().then((manager) => resolveTreeTls(manager, tree));
      this.resolved.set(tree, tls);
    }
    return tls;
  }

  async forget(amphoraId: string): Promise<void> {
    await this.db.tx((t) => this.db.models.amphora_config.destroy({ where: { amphora_id: amphoraId }, transaction: t }));
    try {
      await this.transport.forgetAmphora(amphoraId);
    } catch (err) {
      // RabbitMQ unreachable: the amphora is gone all the same, and failing the operation for its
      // queue (whose orders expire on their own) would leave the load balancer in ERROR.
      this.log.warn({ err, amphoraId }, 'could not delete the queue of a removed amphora; it is left behind');
    }
  }

  /** The configuration an amphora asks for: what it was last given, or null if it is not in service. */
  async fetch(req: ConfigFetch): Promise<ConfigPush | null> {
    const { db } = this;
    return db.read(async () => {
      const amphora = (await db.models.amphora.findByPk(req.amphoraId, { raw: true })) as Row | null;
      if (!amphora || !IN_SERVICE.includes(amphora.status)) return null;
      const row = (await db.models.amphora_config.findByPk(req.amphoraId, { raw: true })) as Row | null;
      if (!row) return null;
      const document = String(row.document).startsWith(SEALED) ? this.sealer.open(String(row.document).slice(SEALED.length), req.amphoraId) : row.document;
      return { amphoraId: req.amphoraId, configVersion: row.config_version, config: JSON.parse(document) };
    });
  }

  /** Renders the next version and records it before it is sent: a restarting amphora fetches it. */
  private async record(amphoraId: string, tree: LoadBalancerTree, tls: TreeTlsMaterial): Promise<ConfigPush> {
    const { db } = this;
    return db.tx(async (t) => {
      const model = db.models.amphora_config;
      // The row is made (version 0) before it is locked: on MariaDB, locking an absent row locks the
      // gap it would go in, and two amphorae recording their first configuration at once (a restarted
      // controller resuming two load balancers) each waited for the other's gap lock to insert: a
      // deadlock, and one of the two operations failed.
      await db.insertIfAbsent('amphora_config', { amphora_id: amphoraId, config_version: 0, document: '', updated_at: new Date() }, t);
      const current = (await model.findByPk(amphoraId, { raw: true, transaction: t, lock: db.lock })) as Row | null;
      if (!current) throw new Error(`the configuration record of amphora ${amphoraId} vanished while it was locked`);
      const configVersion = current.config_version + 1;
      // Read now, not with the tree: an amphora replaced during the operation is the peer of the other.
      const amphorae = (await db.models.amphora.findAll({ where: { load_balancer_id: tree.lb.id, status: IN_SERVICE }, raw: true, transaction: t })) as Row[];
      const vrrp: VrrpRenderInput = { amphorae, authKey: deriveVrrpKey(this.masterKey, tree.lb.id).toString('hex'), ...this.vrrp };
      const config = renderAmphoraConfig(tree, amphoraId, configVersion, tls, vrrp);
      const self = amphorae.find((a) => a.id === amphoraId);
      if (config.vrrp == null && (self?.role === 'MASTER' || self?.role === 'BACKUP')) {
        // Served without an election: nothing holds the VIP on such an amphora (its peer or its own address is missing).
        this.log.warn(
          { amphoraId, loadBalancerId: tree.lb.id, configVersion, amphorae: amphorae.map((a) => ({ id: a.id, role: a.role, status: a.status, address: a.vrrp_ip ?? a.lb_network_ip ?? null })) },
          'ACTIVE_STANDBY amphora configured without an election: no peer address known',
        );
      }
      const text = JSON.stringify(config);
      // Private keys and the election key are sealed at rest.
      const hasKeys = tls.listeners.size + tls.pools.size > 0 || config.vrrp != null;
      const values = { config_version: configVersion, document: hasKeys ? SEALED + this.sealer.seal(text, amphoraId) : text, updated_at: new Date() };
      await model.update(values, { where: { amphora_id: amphoraId }, transaction: t });
      return { amphoraId, configVersion, config };
    });
  }
}
