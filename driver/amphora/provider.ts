// The amphora provider (Octavia's default, also answering to the alias `octavia`): the option
// checks of Octavia's amphora driver and a controller worker that builds amphora records and
// completes operations. The compute, network and amphora backends are the no-op ones of Octavia's
// API gate (records only, no instances, no traffic): real backends come with the amphora issue.
import { randomUUID } from 'node:crypto';
import { Op } from 'sequelize';
import type { Database, Row } from '../../common/db/database.ts';
import type { Logger } from '../../common/logging.ts';
import { ipVersion } from '../../api/schema/types.ts';
import { toCapabilities, validateMetadata } from '../capabilities.ts';
import { nowSeconds } from '../controller/completion.ts';
import type { WorkerRequest } from '../controller/worker.ts';
import { WorkerProvider } from '../controller/worker-provider.ts';
import type { NetworkDriver } from '../network/network-driver.ts';
import { UnsupportedOptionError } from '../provider.ts';
import { AMPHORA_AZ_CAPABILITIES, AMPHORA_FLAVOR_CAPABILITIES } from './capabilities.ts';

const SUPPORTED_ALGORITHMS = ['ROUND_ROBIN', 'SOURCE_IP', 'LEAST_CONNECTIONS'];
const L7_LISTENER_PROTOCOLS = ['HTTP', 'TERMINATED_HTTPS'];
const SUPPORTED_ALPN = ['h2', 'http/1.1', 'http/1.0'];
const LVS_PROTOCOLS = ['UDP', 'SCTP'];

export interface AmphoraProviderOptions {
  db: Database;
  log: Logger;
  network: NetworkDriver;
  defaultTopology: 'SINGLE' | 'ACTIVE_STANDBY';
  workerDelayMs: number;
}

export class AmphoraProvider extends WorkerProvider {
  readonly name = 'amphora';

  constructor(private readonly opts: AmphoraProviderOptions) {
    super(opts.db, opts.log, opts.network, opts.workerDelayMs);
  }

  readonly checks = {
    pool(pool: Row) {
      if (!SUPPORTED_ALGORITHMS.includes(pool.lb_algorithm)) {
        throw new UnsupportedOptionError(`Amphora provider does not support ${pool.lb_algorithm} algorithm.`);
      }
      checkAlpn(pool.alpn_protocols);
    },
    listener(listener: Row) {
      checkAlpn(listener.alpn_protocols);
    },
    l7policy(_policy: Row, listener: Row) {
      if (!L7_LISTENER_PROTOCOLS.includes(listener.protocol)) {
        throw new UnsupportedOptionError(`${listener.protocol} protocol listeners do not support L7 policies`);
      }
    },
    member(member: Row, pool: Row, lb: Row, servesListeners: boolean) {
      // Octavia checks through the listeners of the pool: a standalone pool is not checked.
      if (!LVS_PROTOCOLS.includes(pool.protocol) || !servesListeners) return;
      const vips = [lb.vip_address, ...parseJson<Array<{ ip_address: string | null }>>(lb.additional_vips, []).map((v) => v.ip_address)];
      const versions = new Set(vips.filter(Boolean).map((v) => ipVersion(v!)));
      if (!versions.has(ipVersion(member.address))) {
        throw new UnsupportedOptionError(
          `This provider doesn't support mixing IPv4 and IPv6 addresses for its VIP and members in ${pool.protocol} load balancers.`,
        );
      }
    },
    flavorData: (data: Record<string, unknown>) => validateMetadata(AMPHORA_FLAVOR_CAPABILITIES, data),
    availabilityZoneData: (data: Record<string, unknown>) => validateMetadata(AMPHORA_AZ_CAPABILITIES, data),
  };

  override flavorCapabilities() {
    return toCapabilities(AMPHORA_FLAVOR_CAPABILITIES);
  }

  override availabilityZoneCapabilities() {
    return toCapabilities(AMPHORA_AZ_CAPABILITIES);
  }


  protected async realise(req: WorkerRequest): Promise<void> {
    const { db } = this.opts;
    if (req.kind === 'amphora' && req.action === 'delete') {
      // The no-op compute driver has no instance to delete: the record is marked deleted.
      await db.tx((t) => db.models.amphora.update({ status: 'DELETED', updated_at: nowSeconds() }, { where: { id: req.amphoraId }, transaction: t }));
      return;
    }
    const lb = (await db.read(() => db.models.load_balancer.findByPk(req.loadBalancerId, { raw: true }))) as Row | null;
    if (!lb) return;
    if (lb.provisioning_status === 'PENDING_CREATE') {
      await this.ensureAmphorae(lb);
    } else if (req.kind === 'loadbalancer' && req.action === 'failover') {
      await this.replaceAmphorae(lb, null);
    } else if (req.kind === 'amphora' && req.action === 'failover') {
      await this.replaceAmphorae(lb, req.amphoraId);
    }
    // The no-op amphora driver acknowledges every configuration at once.
  }

  /** Creates the amphora records of a new load balancer (idempotent: a resumed create reuses them). */
  private async ensureAmphorae(lb: Row): Promise<void> {
    const { db } = this.opts;
    await db.tx(async (t) => {
      const existing = await db.models.amphora.count({ where: { load_balancer_id: lb.id, status: 'ALLOCATED' }, transaction: t });
      if (existing > 0) return;
      for (const role of this.roles(lb)) await db.models.amphora.create(amphoraRecord(lb, role), { transaction: t });
    });
  }

  /** Failover with no-op compute: each replaced amphora is marked DELETED and a new record takes its role. */
  private async replaceAmphorae(lb: Row, onlyAmphoraId: string | null): Promise<void> {
    const { db } = this.opts;
    await db.tx(async (t) => {
      // One named amphora is replaced whatever its state (an ERROR amphora is the usual case); a
      // load balancer failover replaces every amphora in service.
      const where: Row = onlyAmphoraId
        ? { id: onlyAmphoraId, load_balancer_id: lb.id, status: { [Op.notIn]: ['DELETED', 'PENDING_DELETE'] } }
        : { load_balancer_id: lb.id, status: 'ALLOCATED' };
      const old = (await db.models.amphora.findAll({ where, raw: true, transaction: t })) as Row[];
      for (const amp of old) {
        await db.models.amphora.update({ status: 'DELETED', updated_at: nowSeconds() }, { where: { id: amp.id }, transaction: t });
        await db.models.amphora.create(amphoraRecord(lb, amp.role), { transaction: t });
      }
      if (!onlyAmphoraId && old.length === 0) {
        for (const role of this.roles(lb)) await db.models.amphora.create(amphoraRecord(lb, role), { transaction: t });
      }
    });
  }

  private roles(lb: Row): string[] {
    const topology = lb.topology ?? this.opts.defaultTopology;
    return topology === 'ACTIVE_STANDBY' ? ['MASTER', 'BACKUP'] : ['STANDALONE'];
  }
}

function amphoraRecord(lb: Row, role: string): Row {
  const active = role !== 'STANDALONE';
  return {
    id: randomUUID(),
    load_balancer_id: lb.id,
    compute_id: randomUUID(),
    lb_network_ip: null,
    vrrp_ip: null,
    ha_ip: lb.vip_address,
    vrrp_port_id: randomUUID(),
    ha_port_id: lb.vip_port_id,
    cert_expiration: null,
    cert_busy: false,
    role,
    status: 'ALLOCATED',
    vrrp_interface: null,
    vrrp_id: active ? 1 : null,
    vrrp_priority: role === 'MASTER' ? 100 : role === 'BACKUP' ? 90 : null,
    cached_zone: lb.availability_zone ?? null,
    image_id: null,
    compute_flavor: null,
    // Octavia's records pass PENDING_CREATE -> BOOTING -> ALLOCATED, so updated_at is set by now.
    created_at: nowSeconds(),
    updated_at: nowSeconds(),
  };
}

function checkAlpn(value: unknown): void {
  const list = (typeof value === 'string' ? parseJson<string[] | null>(value, null) : Array.isArray(value) ? (value as string[]) : null) ?? [];
  const unsupported = list.filter((p) => !SUPPORTED_ALPN.includes(p));
  if (unsupported.length > 0) {
    throw new UnsupportedOptionError(`Amphora provider does not support ${unsupported.join(', ')} ALPN protocol(s). Supported: ${SUPPORTED_ALPN.join(', ')}`);
  }
}

export function parseJson<T>(text: unknown, fallback: T): T {
  if (typeof text !== 'string' || text === '') return fallback;
  return JSON.parse(text) as T;
}
