// The amphora provider (Octavia's default, also answering to the alias `octavia`): the option
// checks of Octavia's amphora driver and a controller worker that realises each request with a
// compute driver (starts and removes amphorae) and a config delivery (renders the load balancer's
// configuration, pushes it, waits for every amphora's acknowledgement). With the no-op backends of
// Octavia's API gate it keeps amphora records only and sends no traffic anywhere.
import { listenerIntervals } from '../../common/listener-ports.ts';
import { randomUUID } from 'node:crypto';
import { Op, type Transaction } from 'sequelize';
import type { Database, Row } from '../../common/db/database.ts';
import type { Logger } from '../../common/logging.ts';
import { ipVersion } from '../../common/ip-address.ts';
import { toCapabilities, validateMetadata } from '../capabilities.ts';
import { nowSeconds } from '../controller/completion.ts';
import type { WorkerRequest } from '../controller/worker.ts';
import { WorkerProvider } from '../controller/worker-provider.ts';
import type { NetworkDriver } from '../network/network-driver.ts';
import { NeutronNetworkDriver } from '../network/neutron.ts';
import { deriveAmphoraKey } from '../../common/transport/signing.ts';
import type { AmphoraVipInterface, ComputeDriver } from '../compute/compute-driver.ts';
import { loadTree, type EndWrite, type LoadBalancerTree } from '../controller/completion.ts';
import { DEFAULT_VRRP_SETTINGS, type ConfigDelivery } from './config-delivery.ts';
import { DEFAULT_VRRP_PORT } from '../../amphora/vrrp/index.ts';
import type { SparePool } from './spare-pool.ts';
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
  compute: ComputeDriver;
  delivery: ConfigDelivery;
  /** Amphorae booted ahead of need; a boot takes one when it can. */
  spares: SparePool | null;
  /** Every amphora's key is derived from it (given to the compute driver at boot). */
  masterKey: Buffer;
  defaultTopology: 'SINGLE' | 'ACTIVE_STANDBY';
  /** ACTIVE_STANDBY: the TCP port of the amphorae's persistence sync (config vrrp.syncPort), opened in Neutron's lb- group. */
  vrrpSyncPort?: number;
  workerDelayMs: number;
}

/** Amphorae that hold (or are about to hold) a role of their load balancer. */
const IN_SERVICE = ['BOOTING', 'ALLOCATED'];

/** How often an amphora whose acknowledgement is awaited is checked to be alive (compute.isAlive). */
const LIVENESS_CHECK_MS = 1000;

export class AmphoraProvider extends WorkerProvider {
  readonly name = 'amphora';
  /** neutron: the groups of each load balancer's VRRP ports (its lb- group, then vip_sg_ids), as last synchronised. */
  private readonly vrrpGroups = new Map<string, string[]>();

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
      // Direct routing keeps no connection state (amphora/README.md, Direct routing).
      if (listener.forwarding_method === 'DIRECT_ROUTING' && listener.connection_limit !== null && listener.connection_limit !== undefined && listener.connection_limit !== -1) {
        throw new UnsupportedOptionError('Amphora provider does not support connection_limit on DIRECT_ROUTING listeners.');
      }
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


  /**
   * The health manager found an amphora silent for too long: the load balancer goes to
   * PENDING_UPDATE and the amphora is replaced, as an API-triggered amphora failover would.
   * Throws LoadBalancerBusyError when the load balancer has an operation in progress (that
   * operation itself replaces dead amphorae; the health manager tries again later).
   */
  async failoverFromHealthManager(amphoraId: string, loadBalancerId: string): Promise<void> {
    const { db, log } = this.opts;
    await db.tx(async (t) => {
      const lb = (await db.models.load_balancer.findByPk(loadBalancerId, { raw: true, transaction: t, lock: db.lock })) as Row | null;
      if (!lb) throw new LoadBalancerBusyError(`load balancer ${loadBalancerId} of amphora ${amphoraId} does not exist`);
      if (String(lb.provisioning_status).startsWith('PENDING_') || lb.provisioning_status === 'DELETED') {
        throw new LoadBalancerBusyError(`load balancer ${loadBalancerId} is ${lb.provisioning_status}`);
      }
      await db.models.load_balancer.update({ provisioning_status: 'PENDING_UPDATE', updated_at: nowSeconds() }, { where: { id: loadBalancerId }, transaction: t });
    });
    log.warn({ amphoraId, loadBalancerId }, 'amphora stopped sending heartbeats: failing it over');
    this.submit({ kind: 'amphora', action: 'failover', amphoraId, loadBalancerId });
  }

  protected async realise(req: WorkerRequest, atEnd: (write: EndWrite) => void): Promise<void> {
    const { db } = this.opts;
    if (req.kind === 'amphora' && req.action === 'delete') {
      const amphora = (await db.read(() => db.models.amphora.findByPk(req.amphoraId, { raw: true }))) as Row | null;
      if (amphora) await this.retire(amphora);
      return;
    }
    const [lb] = await db.read(() => db.select('SELECT * FROM load_balancer WHERE id = ?', [req.loadBalancerId]));
    if (!lb) return;
    if (lb.provisioning_status === 'PENDING_DELETE') {
      const amphorae = await this.amphoraeOf(lb.id, IN_SERVICE);
      for (const amphora of amphorae) await this.retire(amphora);
      // Neutron's VIP port (and whatever else the driver made for the load balancer) goes with it.
      if (this.network instanceof NeutronNetworkDriver) {
        await this.network.deallocateVip({ loadBalancerId: lb.id, portId: lb.vip_port_id ?? null, amphoraIds: amphorae.map((a) => a.id) });
        this.vrrpGroups.delete(lb.id);
      }
      await this.opts.compute.deleteServerGroup?.(lb.id);
      return;
    }
    // neutron (Octavia's allowed-address-pairs driver): the lb- group matches the live listeners
    // before any amphora is plugged or configured (a VRRP port made below gets the group).
    if (!(req.kind === 'amphora' && req.action === 'configure')) await this.syncSecurityGroup(lb);
    if (req.kind === 'loadbalancer' && req.action === 'failover') {
      await this.replace(lb, await this.amphoraeOf(lb.id, ['ALLOCATED']));
    } else if (req.kind === 'amphora' && req.action === 'failover') {
      // One named amphora is replaced whatever its state (an ERROR amphora is the usual case).
      const named = (await this.amphoraeOf(lb.id, null)).filter((a) => a.id === req.amphoraId && !['DELETED', 'PENDING_DELETE'].includes(a.status));
      if (named.length === 0) return;
      await this.replace(lb, named);
    } else if (req.kind === 'amphora' && req.action === 'configure') {
      const amphora = (await this.amphoraeOf(lb.id, IN_SERVICE)).find((a) => a.id === req.amphoraId);
      if (amphora) await this.deliverWatched(lb, amphora, () => this.tree(lb.id));
      return;
    }
    // Every operation (and the resumption of one a stopped controller left pending) first makes
    // sure each role has a living amphora, then gives all of them the current configuration.
    try {
      const amphorae = await this.ensureAmphorae(lb, atEnd);
      let tree: Promise<LoadBalancerTree> | undefined;
      const loadOnce = () => (tree ??= this.tree(lb.id));
      await Promise.all(amphorae.map((a) => this.deliverWatched(lb, a, loadOnce)));
    } catch (err) {
      if (req.kind === 'loadbalancer' && req.action === 'create') {
        // The create's own error is what the operation fails with; this one is only logged.
        await this.dropUnusedServerGroup(lb).catch((e: unknown) =>
          this.opts.log.error({ err: e, loadBalancerId: lb.id }, 'deleting the server group of a failed create failed; the delete of the load balancer removes it'),
        );
      }
      throw err;
    }
  }

  /**
   * A create failed: its server group goes unless an amphora of the load balancer is still in
   * service (the group keeps it apart from its replacement; the delete removes the group then).
   */
  private async dropUnusedServerGroup(lb: Row): Promise<void> {
    const { compute } = this.opts;
    if (!compute.deleteServerGroup || (await this.amphoraeOf(lb.id, IN_SERVICE)).length > 0) return;
    await compute.deleteServerGroup(lb.id);
  }

  /**
   * Delivers the configuration to one amphora while watching that it stays alive. An amphora that
   * dies while its acknowledgement is awaited (killed, crashed during boot) would otherwise hold
   * the operation until configAckTimeoutMs and then fail it: instead it is replaced at once and
   * the configuration delivered to the replacement. One replacement per amphora and operation: a
   * replacement that dies too fails the operation (ERROR), as does any other delivery failure.
   */
  private async deliverWatched(lb: Row, amphora: Row, tree: () => Promise<LoadBalancerTree>, isReplacement = false): Promise<void> {
    const { compute, delivery, log } = this.opts;
    const delivered = delivery.deliver(amphora.id, tree);
    if (!amphora.compute_id) return delivered;
    let watching = true;
    let timer: NodeJS.Timeout | undefined;
    const died = new Promise<true>((resolve) => {
      const check = async (): Promise<void> => {
        // A failing liveness check (a compute API hiccup) is not a death: the delivery's own timeout still bounds the wait.
        const alive = await compute.isAlive(amphora.compute_id).catch(() => true);
        if (!watching) return;
        if (!alive) resolve(true);
        else timer = setTimeout(() => void check(), LIVENESS_CHECK_MS);
      };
      timer = setTimeout(() => void check(), LIVENESS_CHECK_MS);
    });
    try {
      const outcome = await Promise.race([delivered.then(() => false as const), died]);
      if (!outcome) return;
    } finally {
      watching = false;
      clearTimeout(timer);
    }
    // Abandoned: it ends with its timeout (or when retire() deletes the amphora's queue); nobody awaits it.
    delivered.catch(() => undefined);
    if (isReplacement) throw new AmphoraDiedError(`amphora ${amphora.id} (${amphora.compute_id}) died before acknowledging its configuration`);
    log.warn({ amphoraId: amphora.id, loadBalancerId: lb.id, computeId: amphora.compute_id }, 'amphora died while its configuration was awaited: replacing it');
    await this.retire(amphora);
    const replacement = await this.boot(lb, await this.replacementRole(lb, amphora));
    await this.deliverWatched(lb, replacement, tree, true);
    // ACTIVE_STANDBY: the other amphora's election must learn its new peer (and maybe its new role).
    if (replacement.role === 'MASTER' || replacement.role === 'BACKUP') {
      const siblings = (await this.amphoraeOf(lb.id, IN_SERVICE)).filter((a) => a.id !== replacement.id);
      await Promise.all(siblings.map((a) => this.opts.delivery.deliver(a.id, tree)));
    }
  }

  /**
   * The role the replacement of `failed` boots with. ACTIVE_STANDBY: when a MASTER fails while its
   * BACKUP lives, the BACKUP (which took the VIP) becomes MASTER (priority 100) and the replacement
   * joins as BACKUP, so that it never preempts the amphora serving now.
   */
  private async replacementRole(lb: Row, failed: Row): Promise<string> {
    const all = await this.amphoraeOf(lb.id, null);
    // The row as it is now: an earlier replacement of the same operation may have promoted it.
    const role = all.find((a) => a.id === failed.id)?.role ?? failed.role ?? 'STANDALONE';
    if (role !== 'MASTER') return role;
    const survivor = all.find((a) => a.id !== failed.id && a.role === 'BACKUP' && IN_SERVICE.includes(a.status));
    if (!survivor) return role;
    await this.promoteToMaster(survivor);
    this.opts.log.info({ amphoraId: survivor.id, loadBalancerId: lb.id, failedAmphoraId: failed.id }, 'the BACKUP amphora becomes MASTER; the replacement joins as BACKUP');
    return 'BACKUP';
  }

  /** The surviving BACKUP of an ACTIVE_STANDBY pair (it holds the VIP now) becomes MASTER; returns its row as updated. */
  private async promoteToMaster(amphora: Row): Promise<Row> {
    const { db } = this.opts;
    const promoted = { role: 'MASTER', vrrp_priority: 100 };
    await db.tx((t) => db.models.amphora.update({ ...promoted, updated_at: nowSeconds() }, { where: { id: amphora.id }, transaction: t }));
    return { ...amphora, ...promoted };
  }

  /**
   * Boots an amphora for every role without a living one (dead ones are removed first); returns the
   * amphorae in service. With `atEnd`, records boot() may defer are not read back in this operation.
   */
  private async ensureAmphorae(lb: Row, atEnd?: (write: EndWrite) => void): Promise<Row[]> {
    const living: Row[] = [];
    for (const amphora of await this.amphoraeOf(lb.id, IN_SERVICE)) {
      if (amphora.compute_id && (await this.opts.compute.isAlive(amphora.compute_id))) living.push(amphora);
      else await this.retire(amphora);
    }
    // ACTIVE_STANDBY with only the BACKUP alive: it holds the VIP now and becomes MASTER; the new one joins as BACKUP.
    if (living.length === 1 && living[0]!.role === 'BACKUP' && this.roles(lb).includes('MASTER')) living[0] = await this.promoteToMaster(living[0]!);
    const missing = this.roles(lb).filter((role) => !living.some((a) => a.role === role));
    // Every boot ends before the operation does, even when one fails: none goes on behind the next operation.
    const booted = await Promise.allSettled(missing.map((role) => this.boot(lb, role, atEnd)));
    const failed = booted.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return [...living, ...booted.map((r) => (r as PromiseFulfilledResult<Row>).value)];
  }

  /**
   * Failover: each amphora is removed before its replacement boots, as the replacement takes over
   * the same VIP (on one host, two data planes cannot bind it at once). A load balancer without
   * amphorae (all failed earlier) gets them anew.
   */
  private async replace(lb: Row, amphorae: Row[]): Promise<void> {
    for (const amphora of amphorae) {
      const role = await this.replacementRole(lb, amphora);
      await this.retire(amphora);
      await this.boot(lb, role);
    }
    if (amphorae.length === 0) await this.ensureAmphorae(lb);
  }

  /**
   * `atEnd` (the worker's operation): with a compute driver that starts nothing, the amphora's
   * record is written in the transaction that completes the operation (nothing refers to it before;
   * if the operation fails, there is no record, and the next operation boots the amphora again).
   */
  private async boot(lb: Row, role: string, atEnd?: (write: EndWrite) => void): Promise<Row> {
    const { db, compute, masterKey, log } = this.opts;
    const plugPort = this.vrrpPlugger(lb);
    const claiming: string[] = [];
    // A spare was booted outside the load balancer's anti-affinity group: MASTER and BACKUP are booted in it (as Octavia does).
    const grouped = compute.antiAffinity === true && (role === 'MASTER' || role === 'BACKUP');
    const spare = grouped ? null : await this.opts.spares
      ?.claim(lb, role, amphoraRecord, plugPort ? (amphoraId) => (claiming.push(amphoraId), plugPort(amphoraId)) : undefined)
      .catch(async (err: unknown) => {
        // The claimed spare was removed: so goes the port made for it.
        for (const amphoraId of claiming) await this.unplugVrrp(amphoraId).catch((e: unknown) => log.error({ err: e, amphoraId }, 'removing the VRRP port of a failed claim failed'));
        throw err;
      });
    if (spare) return spare;
    const record = amphoraRecord(lb, role);
    if (compute.startsNothing) {
      // No agent will run, so no key is derived for one (HKDF is a few tenths of a millisecond).
      const booted = await compute.boot({ amphoraId: record.id, loadBalancerId: lb.id, key: Buffer.alloc(0), role, vipAddress: lb.vip_address ?? null });
      const allocated = { ...record, compute_id: booted.computeId, lb_network_ip: booted.lbNetworkIp, status: 'ALLOCATED' };
      const write = (t: Transaction) => db.insert('amphora', allocated, t);
      if (atEnd) atEnd(write);
      else await db.tx(write);
      return allocated;
    }
    const request = { amphoraId: record.id, loadBalancerId: lb.id, key: deriveAmphoraKey(masterKey, record.id), role, vipAddress: lb.vip_address ?? null };
    // The BOOTING record comes first: a controller stopped during the boot finds it and removes what was started.
    await db.tx((t) => db.models.amphora.create(record, { transaction: t }));
    try {
      // neutron: the VRRP port first, so that the amphora is started with its address and MAC.
      let vipInterface: AmphoraVipInterface | null = null;
      if (plugPort) {
        vipInterface = await plugPort(record.id);
        const port = { vrrp_port_id: vipInterface.portId, vrrp_ip: vipInterface.address };
        Object.assign(record, port);
        await db.tx((t) => db.models.amphora.update(port, { where: { id: record.id }, transaction: t }));
      }
      const booted = await compute.boot({ ...request, vipInterface });
      const values = { compute_id: booted.computeId, lb_network_ip: booted.lbNetworkIp, status: 'ALLOCATED', updated_at: nowSeconds() };
      await db.tx((t) => db.models.amphora.update(values, { where: { id: record.id }, transaction: t }));
      log.info({ amphoraId: record.id, loadBalancerId: lb.id, role, computeId: booted.computeId, compute: compute.name }, 'amphora started');
      return { ...record, ...values };
    } catch (err) {
      await db.tx((t) => db.models.amphora.update({ status: 'ERROR', updated_at: nowSeconds() }, { where: { id: record.id }, transaction: t }));
      if (plugPort) await this.unplugVrrp(record.id).catch((e: unknown) => log.error({ err: e, amphoraId: record.id }, 'removing the VRRP port of a failed boot failed'));
      throw err;
    }
  }

  /**
   * neutron with a compute driver that starts amphorae: makes an amphora's VRRP port
   * (`octavia-lb-vrrp-<amphoraId>` on the VIP subnet, the VIP addresses as allowed address pairs,
   * the lb- group) and answers what its interface must carry. null otherwise (nothing is made).
   */
  private vrrpPlugger(lb: Row): ((amphoraId: string) => Promise<AmphoraVipInterface>) | null {
    const network = this.network;
    if (!(network instanceof NeutronNetworkDriver) || this.opts.compute.startsNothing || !lb.vip_subnet_id) return null;
    return async (amphoraId) => {
      const groups = this.vrrpGroups.get(lb.id) ?? (await this.syncSecurityGroup(lb));
      const port = await network.plugAmphoraVip({ amphoraId, subnetId: lb.vip_subnet_id, vipAddresses: vipAddressesOf(lb), securityGroupIds: groups });
      return { portId: port.vrrpPortId, address: port.vrrpIp, mac: port.mac, prefixLength: port.prefixLength };
    };
  }

  private async unplugVrrp(amphoraId: string): Promise<void> {
    if (this.network instanceof NeutronNetworkDriver && !this.opts.compute.startsNothing) await this.network.unplugAmphoraVip(amphoraId);
  }

  /**
   * neutron: makes the lb-<lbId> group's rules what the live listeners (not PENDING_DELETE) need
   * (their ports and protocols, from their allowed_cidrs or anywhere; VRRP and AH for
   * ACTIVE_STANDBY) and sets it on the VIP port. Answers the VRRP ports' groups (none without neutron).
   */
  private async syncSecurityGroup(lb: Row): Promise<string[]> {
    const network = this.network;
    if (!(network instanceof NeutronNetworkDriver)) return [];
    const { db } = this.opts;
    const listeners = (await db.read(() =>
      db.models.listener.findAll({ where: { load_balancer_id: lb.id, provisioning_status: { [Op.notIn]: ['PENDING_DELETE', 'DELETED'] } }, raw: true }),
    )) as Row[];
    const vipSgIds = parseJson<string[] | null>(lb.vip_sg_ids, null) ?? [];
    const groupId = await network.updateVipSecurityGroup({
      loadBalancerId: lb.id,
      vipAddresses: vipAddressesOf(lb),
      listeners: listeners.map((l) => ({
        protocol: l.protocol,
        protocolPort: l.protocol_port,
        ports: listenerIntervals(l),
        alsoUdp: Boolean(l.also_udp),
        allowedCidrs: parseJson<string[] | null>(l.allowed_cidrs, null) ?? [],
      })),
      activeStandby: (lb.topology ?? this.opts.defaultTopology) === 'ACTIVE_STANDBY',
      electionPorts: { advertUdp: DEFAULT_VRRP_PORT, syncTcp: this.opts.vrrpSyncPort ?? DEFAULT_VRRP_SETTINGS.syncPort },
      vipPortId: lb.vip_port_id ?? null,
      vipSgIds,
    });
    const groups = [groupId, ...vipSgIds];
    this.vrrpGroups.set(lb.id, groups);
    return groups;
  }

  /** Stops an amphora and forgets it: its instance, configuration, queue and health record go. */
  private async retire(amphora: Row): Promise<void> {
    const { db, compute, delivery, log } = this.opts;
    if (amphora.compute_id) await compute.destroy(amphora.compute_id);
    // neutron: its VRRP port goes with it (a spare never had one; the lookup is by name, so a
    // port made by an attempt that failed half-way goes too).
    await this.unplugVrrp(amphora.id);
    await delivery.forget(amphora.id);
    await db.tx(async (t) => {
      await db.models.amphora.update({ status: 'DELETED', updated_at: nowSeconds() }, { where: { id: amphora.id }, transaction: t });
      await db.models.amphora_health.destroy({ where: { amphora_id: amphora.id }, transaction: t });
    });
    log.info({ amphoraId: amphora.id, loadBalancerId: amphora.load_balancer_id, computeId: amphora.compute_id }, 'amphora removed');
  }

  private async amphoraeOf(lbId: string, statuses: string[] | null): Promise<Row[]> {
    const { db } = this.opts;
    const byStatus = statuses ? ` AND status IN (${statuses.map(() => '?').join(', ')})` : '';
    return db.read(() => db.select(`SELECT * FROM amphora WHERE load_balancer_id = ?${byStatus}`, [lbId, ...(statuses ?? [])]));
  }

  private async tree(lbId: string) {
    const { db } = this.opts;
    const tree = await db.read(() => loadTree(db, lbId));
    if (!tree) throw new Error(`load balancer ${lbId} disappeared during its operation`);
    return tree;
  }

  private roles(lb: Row): string[] {
    const topology = lb.topology ?? this.opts.defaultTopology;
    return topology === 'ACTIVE_STANDBY' ? ['MASTER', 'BACKUP'] : ['STANDALONE'];
  }
}

/** An amphora (a replacement already) died while its configuration was awaited. */
export class AmphoraDiedError extends Error {
  override name = 'AmphoraDiedError';
}

/** The load balancer cannot be failed over now (an operation is running, or it is gone). */
export class LoadBalancerBusyError extends Error {
  override name = 'LoadBalancerBusyError';
}

function amphoraRecord(lb: Row, role: string): Row {
  const active = role !== 'STANDALONE';
  return {
    id: randomUUID(),
    load_balancer_id: lb.id,
    compute_id: null,
    lb_network_ip: null,
    vrrp_ip: null,
    ha_ip: lb.vip_address,
    vrrp_port_id: randomUUID(),
    ha_port_id: lb.vip_port_id,
    cert_expiration: null,
    cert_busy: false,
    role,
    status: 'BOOTING',
    vrrp_interface: null,
    vrrp_id: active ? 1 : null,
    vrrp_priority: role === 'MASTER' ? 100 : role === 'BACKUP' ? 90 : null,
    cached_zone: lb.availability_zone ?? null,
    image_id: null,
    compute_flavor: null,
    // Octavia's records pass PENDING_CREATE -> BOOTING -> ALLOCATED, so updated_at is set from the start.
    created_at: nowSeconds(),
    updated_at: nowSeconds(),
  };
}

/** The VIP and the additional VIPs: the addresses an amphora answers for. */
function vipAddressesOf(lb: Row): string[] {
  const additional = parseJson<Array<{ ip_address: string | null }>>(lb.additional_vips, []).map((v) => v.ip_address);
  return [lb.vip_address, ...additional].filter((a): a is string => typeof a === 'string' && a !== '');
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
