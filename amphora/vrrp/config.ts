// The election's settings, validated where they are received (the standalone command's config file,
// or the agent's AmphoraConfig `vrrp` section mapped onto it).
import { isIP } from 'node:net';
import { z } from 'zod';

const address = z.string().refine((s) => isIP(s) !== 0, 'must be an IPv4 or IPv6 address');

export const DEFAULT_VRRP_PORT = 5112;

export const VrrpConfigSchema = z
  .object({
    /** The interface the VIPs go on (the amphora's eth0). */
    interface: z.string().min(1).max(15),
    /** The floating addresses (without prefix length: added as /32 or /128). */
    vips: z.array(address).min(1),
    /** This amphora's own address on that interface: adverts are sent from it. */
    localAddress: address,
    /** The other amphora(e) of the group. */
    peers: z.array(address).min(1),
    /** UDP port of the adverts, the same on every peer. */
    port: z.number().int().min(1).max(65535).default(DEFAULT_VRRP_PORT),
    /** Identifies the group: adverts of another group on the same port are ignored. */
    routerId: z.number().int().min(1).max(255).default(1),
    /** 1..254; higher wins (Octavia: MASTER 100, BACKUP 90). */
    priority: z.number().int().min(1).max(254),
    /** Milliseconds between adverts; the master-down interval is deadIntervals × this + a small skew. */
    advertIntervalMs: z.number().int().min(10).max(60_000).default(1000),
    /** Adverts missed before a BACKUP takes over. */
    deadIntervals: z.number().int().min(2).max(10).default(3),
    /** A higher-priority BACKUP takes the VIPs from a lower-priority MASTER. Off by default (one interruption, not two). */
    preempt: z.boolean().default(false),
    /** Shared HMAC-SHA256 key (at least 16 characters). */
    authKey: z.string().min(16),
  })
  .strict()
  .superRefine((c, ctx) => {
    const family = isIP(c.localAddress);
    for (const [i, p] of c.peers.entries()) {
      if (isIP(p) !== family) ctx.addIssue({ code: 'custom', path: ['peers', i], message: 'must be of the same family as localAddress' });
      if (p === c.localAddress) ctx.addIssue({ code: 'custom', path: ['peers', i], message: 'must not be localAddress' });
    }
  });

export type VrrpConfig = z.output<typeof VrrpConfigSchema>;
export type VrrpConfigInput = z.input<typeof VrrpConfigSchema>;
