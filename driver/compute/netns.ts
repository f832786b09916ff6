// The `netns` compute driver (root): each amphora is a network namespace plugged into the local
// bridge (driver/network/local/amphora-plumbing.ts: management address, default route, the VIP;
// with neutron, the VRRP port's address and MAC on eth0),
// and its agent is a process started by the `process` compute driver, run inside the namespace with
// `ip netns exec` (the agent's IPC channel survives it), so that its data plane binds the VIP there.
//
// computeId: the amphora id (the namespace's name is derived from it; the amphora table's compute_id
// holds 36 characters). An amphora left by an earlier run of the controller (its agent stopped with
// that controller) can still be destroyed: what still runs in its namespace is killed, the
// namespace removed.
import { AmphoraIdSchema } from '../../common/messages.ts';
import type { Logger } from '../../common/logging.ts';
import { AmphoraNetwork, type AmphoraNetworkOptions } from '../network/local/amphora-plumbing.ts';
import { killIfRunning } from '../network/local/cleanup.ts';
import { namespacePids, namespaceExists } from '../network/local/ip.ts';
import type { AmphoraAssignRequest, AmphoraBootRequest, BootedAmphora, ComputeDriver } from './compute-driver.ts';

/** Rewrites the agent's command line (here: prefixes it with `ip netns exec <namespace>`). */
export type CommandWrapper = (req: AmphoraBootRequest, command: string, args: string[]) => { command: string; args: string[] };

/** The boot request, plus the load balancer's VIP to plumb into the namespace (absent: none). */
export type NetnsBootRequest = AmphoraBootRequest & { vipAddress?: string | null };

export interface NetnsComputeOptions {
  network: AmphoraNetworkOptions;
  /**
   * Builds the process compute driver that starts the agents, given the wrapper it must apply to
   * the agent's command line (e.g. `(wrapCommand) => new ProcessComputeDriver({ ...options, wrapCommand })`).
   */
  processes: (wrapCommand: CommandWrapper) => ComputeDriver;
  logger: Logger;
}

export class NetnsComputeDriver implements ComputeDriver {
  readonly name = 'netns';
  readonly network: AmphoraNetwork;
  private readonly processes: ComputeDriver;
  private readonly log: Logger;
  /** Amphorae whose command line went through the wrapper (checked after each boot). */
  private readonly wrapped = new Set<string>();
  /** Amphorae booted by this driver and not destroyed yet: amphora id -> the process driver's computeId. */
  private readonly booted = new Map<string, string>();

  constructor(opts: NetnsComputeOptions) {
    this.network = new AmphoraNetwork(opts.network);
    this.log = opts.logger.child({ component: 'compute', driver: 'netns' });
    this.processes = opts.processes((req, command, args) => {
      this.wrapped.add(req.amphoraId);
      return this.network.wrap(req.amphoraId, command, args);
    });
  }

  async boot(req: NetnsBootRequest): Promise<BootedAmphora> {
    const amphoraId = AmphoraIdSchema.parse(req.amphoraId);
    if (this.booted.has(amphoraId)) throw new Error(`amphora ${amphoraId} is already booted`);
    const plugged = await this.network.plug({ amphoraId, role: req.role, vipAddress: req.vipAddress, vipInterface: req.vipInterface ?? null });
    this.wrapped.delete(amphoraId);
    let processId: string;
    try {
      processId = (await this.processes.boot(req)).computeId;
      if (!this.wrapped.has(amphoraId)) {
        await this.processes.destroy(processId);
        throw new Error(`the ${this.processes.name} compute driver started the agent of amphora ${amphoraId} without wrapCommand: it would run outside its namespace`);
      }
    } catch (err) {
      await this.unplug(amphoraId).catch((cleanupErr: unknown) => {
        throw new AggregateError([err, cleanupErr], `booting amphora ${amphoraId} failed, and so did removing its namespace`);
      });
      throw err;
    }
    this.booted.set(amphoraId, processId);
    this.log.info({ amphoraId, processId, namespace: plugged.namespace, lbNetworkIp: plugged.managementAddress, vip: req.vipAddress ?? null }, 'amphora namespace plugged');
    return { computeId: amphoraId, lbNetworkIp: plugged.managementAddress };
  }

  async destroy(computeId: string): Promise<void> {
    if (!AmphoraIdSchema.safeParse(computeId).success) {
      this.log.warn({ computeId }, 'destroy of a computeId that is not an amphora id: nothing to do');
      return;
    }
    const processId = this.booted.get(computeId);
    if (processId !== undefined) await this.processes.destroy(processId);
    await this.unplug(computeId);
  }

  async assign(computeId: string, req: Pick<AmphoraAssignRequest, 'role' | 'vipAddress' | 'vipInterface'>): Promise<void> {
    if (req.vipAddress || req.vipInterface) await this.network.assignVip(computeId, req.vipAddress, req.role, req.vipInterface ?? null);
  }

  async isAlive(computeId: string): Promise<boolean> {
    const processId = this.booted.get(computeId);
    // The agent's process is enough: the namespace is removed only by destroy(), and this check runs
    // on every operation (looking the namespace up costs an `ip` process each time).
    return processId !== undefined && (await this.processes.isAlive(processId));
  }

  async stop(): Promise<void> {
    await this.processes.stop();
    for (const amphoraId of [...this.booted.keys()]) await this.unplug(amphoraId);
  }

  /** Kills what still runs in the namespace (an agent of an earlier controller run), then removes it. */
  private async unplug(amphoraId: string): Promise<void> {
    const namespace = this.network.namespaceOf(amphoraId);
    if (await namespaceExists(namespace)) {
      for (const pid of await namespacePids(namespace)) {
        this.log.warn({ amphoraId, namespace, pid }, 'killing a process left in the amphora namespace');
        killIfRunning(pid);
      }
    }
    await this.network.unplug(amphoraId);
    this.booted.delete(amphoraId);
  }
}
