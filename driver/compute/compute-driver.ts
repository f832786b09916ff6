// What the controller needs to start and remove amphorae (Octavia's compute driver: Nova in
// production). A compute driver starts an amphora agent that connects to the controller over the
// transport as `amphora:<amphoraId>` with the key it is given; it does not wait for the agent to
// connect (the controller waits for the agent's config fetch or ack instead).
/**
 * The amphora's port on the VIP subnet (with the `neutron` network driver: its Neutron VRRP port,
 * `octavia-lb-vrrp-<amphoraId>`): the address and MAC its VIP interface must carry.
 */
export interface AmphoraVipInterface {
  portId: string;
  address: string;
  mac: string;
  /** The VIP subnet's prefix length. */
  prefixLength: number;
}

export interface AmphoraBootRequest {
  amphoraId: string;
  /** null for a spare amphora (booted ahead of need, given to a load balancer later with assign()). */
  loadBalancerId: string | null;
  /** deriveAmphoraKey(masterKey, amphoraId): the only key the amphora gets. */
  key: Buffer;
  /** STANDALONE, MASTER or BACKUP; null for a spare. */
  role: string | null;
  /** The load balancer's VIP: drivers that plumb it into the amphora (netns) need it. */
  vipAddress?: string | null;
  /** The amphora's port on the VIP subnet, when the network driver made one (neutron); absent: none. */
  vipInterface?: AmphoraVipInterface | null;
}

export interface BootedAmphora {
  /** The driver's handle for destroy(), at most 64 characters (process: `process:<pid>:<amphoraId>`; netns: the amphora id; nova: the server id). */
  computeId: string;
  /** The amphora's management address, when it has one (Octavia's lb_network_ip). */
  lbNetworkIp: string | null;
}

export interface AmphoraAssignRequest {
  amphoraId: string;
  loadBalancerId: string;
  role: string;
  vipAddress: string | null;
  /** The amphora's port on the VIP subnet (neutron), made at the claim; absent: none. */
  vipInterface?: AmphoraVipInterface | null;
}

export interface ComputeDriver {
  readonly name: string;
  /**
   * True when boot() starts nothing that could be orphaned (no-op): the controller then writes the
   * amphora record once, already ALLOCATED, instead of BOOTING before the boot and ALLOCATED after.
   */
  readonly startsNothing?: boolean;
  /** Starts an amphora; resolves once it is started (not once its agent has connected). */
  boot(req: AmphoraBootRequest): Promise<BootedAmphora>;
  /**
   * A spare amphora is given to a load balancer: plumb what boot() would have plumbed for it (the
   * VIP, for netns). Absent: nothing to do. Called before its first configuration is pushed.
   */
  assign?(computeId: string, req: AmphoraAssignRequest): Promise<void>;
  /**
   * True when MASTER and BACKUP amphorae are booted into their load balancer's anti-affinity server
   * group (nova with serverGroupPolicy): a spare, booted outside any group, cannot take those roles.
   */
  readonly antiAffinity?: boolean;
  /** Removes the load balancer's server group, if any; idempotent. Absent: the driver makes none. */
  deleteServerGroup?(loadBalancerId: string): Promise<void>;
  /** Stops and removes an amphora; idempotent (an unknown or already gone computeId is not an error). */
  destroy(computeId: string): Promise<void>;
  /** Whether the amphora's process/instance still exists (false once it died or was destroyed). */
  isAlive(computeId: string): Promise<boolean>;
  /** Stops every amphora this driver started in this process (shutdown of the embedded default). */
  stop(): Promise<void>;
}
