// Octavia's spare amphora pool: amphorae booted ahead of need (status READY, no load balancer),
// so that a create or a failover only has to hand one a configuration instead of waiting for a
// boot. The pool is topped up in the background after every claim and checked periodically (a
// spare that died is removed and replaced). Spares are a cache: a create or failover that finds
// none boots an amphora as before.
import { randomUUID } from 'node:crypto';
import type { Database, Row } from '../../common/db/database.ts';
import type { Logger } from '../../common/logging.ts';
import { deriveAmphoraKey } from '../../common/transport/signing.ts';
import type { AmphoraVipInterface, ComputeDriver } from '../compute/compute-driver.ts';
import { nowSeconds } from '../controller/completion.ts';

export interface SparePoolOptions {
  db: Database;
  log: Logger;
  compute: ComputeDriver;
  masterKey: Buffer;
  /** Spares kept ready (Octavia's spare_amphora_pool_size); 0 turns the pool off. */
  size: number;
  /** How often dead spares are looked for. */
  checkIntervalMs: number;
  /** Resolves once the amphora's agent answers orders (a spare is READY only then); rejects on timeout. */
  waitServing(amphoraId: string): Promise<void>;
}

export class SparePool {
  private timer?: NodeJS.Timeout;
  private topping: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  /** Rejects when the pool stops: a boot waiting for its agent gives up at once. */
  private readonly stopping: Promise<never>;
  private signalStop!: (err: Error) => void;

  constructor(private readonly opts: SparePoolOptions) {
    this.stopping = new Promise<never>((_, reject) => (this.signalStop = reject));
    this.stopping.catch(() => undefined);
  }

  start(): void {
    if (this.opts.size === 0) return;
    this.topUp();
    this.timer = setInterval(() => this.topUp(), this.opts.checkIntervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.signalStop(new Error('the spare pool is stopping'));
    if (this.timer) clearInterval(this.timer);
    while (this.topping) await this.topping;
  }

  /**
   * Gives a living spare to the load balancer (its record becomes ALLOCATED with the role) and
   * plumbs it; null when none is ready. `plugPort` (neutron) makes the amphora's port on the VIP
   * subnet once the spare is claimed (a spare has no load balancer, hence no VIP subnet, before):
   * its id and address are recorded (vrrp_port_id, vrrp_ip) and the compute driver plumbs it with
   * the VIP. When that fails the claimed amphora is destroyed and its record DELETED (the caller
   * removes the port it made), and the error thrown.
   */
  async claim(
    lb: Row,
    role: string,
    amphoraRecord: (lb: Row, role: string) => Row,
    plugPort?: (amphoraId: string) => Promise<AmphoraVipInterface>,
  ): Promise<Row | null> {
    const { db, compute, log } = this.opts;
    if (this.opts.size === 0) return null;
    const spares = (await db.read(() =>
      db.models.amphora.findAll({ where: { status: 'READY', load_balancer_id: null }, order: [['created_at', 'ASC']], raw: true }),
    )) as Row[];
    for (const spare of spares) {
      if (!(await compute.isAlive(spare.compute_id))) continue; // the next top-up removes it
      const template = amphoraRecord(lb, role);
      const values: Row = {
        load_balancer_id: lb.id,
        role,
        status: 'ALLOCATED',
        ha_ip: template.ha_ip,
        ha_port_id: template.ha_port_id,
        vrrp_port_id: template.vrrp_port_id,
        vrrp_id: template.vrrp_id,
        vrrp_priority: template.vrrp_priority,
        cached_zone: template.cached_zone,
        updated_at: nowSeconds(),
      };
      // Conditional: two operations racing for one spare, only one gets it.
      const [claimed] = await db.tx((t) => db.models.amphora.update(values, { where: { id: spare.id, status: 'READY' }, transaction: t }));
      if (claimed !== 1) continue;
      let vipInterface: AmphoraVipInterface | null = null;
      try {
        if (plugPort) {
          vipInterface = await plugPort(spare.id);
          values.vrrp_port_id = vipInterface.portId;
          values.vrrp_ip = vipInterface.address;
          await db.tx((t) => db.models.amphora.update({ vrrp_port_id: values.vrrp_port_id, vrrp_ip: values.vrrp_ip }, { where: { id: spare.id }, transaction: t }));
        }
        await compute.assign?.(spare.compute_id, { amphoraId: spare.id, loadBalancerId: lb.id, role, vipAddress: lb.vip_address ?? null, vipInterface });
      } catch (err) {
        log.error({ err, amphoraId: spare.id, loadBalancerId: lb.id }, 'plumbing a claimed spare amphora failed: removing it');
        await compute.destroy(spare.compute_id);
        await db.tx((t) => db.models.amphora.update({ status: 'DELETED', updated_at: nowSeconds() }, { where: { id: spare.id }, transaction: t }));
        this.topUp();
        throw err;
      }
      log.info({ amphoraId: spare.id, loadBalancerId: lb.id, role, vrrpPortId: vipInterface?.portId, vrrpIp: vipInterface?.address }, 'spare amphora claimed');
      this.topUp();
      return { ...spare, ...values };
    }
    this.topUp();
    return null;
  }

  /** Removes dead spares and boots new ones until the pool is full (one run at a time). */
  private topUp(): void {
    if (this.stopped || this.opts.size === 0) return;
    if (this.topping) {
      this.again = true;
      return;
    }
    this.topping = (async () => {
      do {
        this.again = false;
        await this.fill();
      } while (this.again && !this.stopped);
    })()
      .catch((err: unknown) => {
        if (this.stopped) this.opts.log.info({ err }, 'spare amphora pool top-up abandoned: stopping');
        else this.opts.log.error({ err }, 'spare amphora pool top-up failed; retried at the next check');
      })
      .finally(() => (this.topping = null));
  }

  private async fill(): Promise<void> {
    const { db, compute } = this.opts;
    const spares = (await db.read(() =>
      db.models.amphora.findAll({ where: { status: ['READY', 'BOOTING'], load_balancer_id: null }, raw: true }),
    )) as Row[];
    let living = 0;
    for (const spare of spares) {
      if (spare.compute_id && (await compute.isAlive(spare.compute_id))) living++;
      else await this.remove(spare);
    }
    const missing = this.stopped ? 0 : Math.max(0, this.opts.size - living);
    await Promise.all(Array.from({ length: missing }, () => this.bootSpare()));
  }

  private async bootSpare(): Promise<void> {
    const { db, compute, masterKey, log } = this.opts;
    const id = randomUUID();
    const now = nowSeconds();
    const record: Row = { id, load_balancer_id: null, compute_id: null, role: null, status: 'BOOTING', cert_busy: false, created_at: now, updated_at: now };
    await db.tx((t) => db.models.amphora.create(record, { transaction: t }));
    try {
      const booted = await compute.boot({ amphoraId: id, loadBalancerId: null, key: deriveAmphoraKey(masterKey, id), role: null, vipAddress: null });
      await db.tx((t) => db.models.amphora.update({ compute_id: booted.computeId, updated_at: nowSeconds() }, { where: { id }, transaction: t }));
      await Promise.race([this.opts.waitServing(id), this.stopping]);
      await db.tx((t) =>
        db.models.amphora.update(
          { compute_id: booted.computeId, lb_network_ip: booted.lbNetworkIp, status: 'READY', updated_at: nowSeconds() },
          { where: { id }, transaction: t },
        ),
      );
      log.info({ amphoraId: id, computeId: booted.computeId }, 'spare amphora ready');
    } catch (err) {
      await db.tx((t) => db.models.amphora.update({ status: 'ERROR', updated_at: nowSeconds() }, { where: { id }, transaction: t }));
      throw err;
    }
  }

  private async remove(spare: Row): Promise<void> {
    const { db, compute, log } = this.opts;
    if (spare.compute_id) await compute.destroy(spare.compute_id);
    await db.tx((t) => db.models.amphora.update({ status: 'DELETED', updated_at: nowSeconds() }, { where: { id: spare.id }, transaction: t }));
    log.warn({ amphoraId: spare.id, computeId: spare.compute_id }, 'dead spare amphora removed');
  }
}
