import type { z } from 'zod';
import type {
  AmphoraConfigSchema,
  HealthMonitorSchema,
  HstsSchema,
  L7PolicySchema,
  L7RuleSchema,
  LimitsSchema,
  ListenerSchema,
  ListenerTimeoutsSchema,
  ListenerTlsSchema,
  MemberSchema,
  PoolSchema,
  PoolTlsSchema,
  PortSpecSchema,
  SessionPersistenceSchema,
  TLS_VERSION_NAMES,
  TlsCertificateSchema,
  VipSchema,
  VrrpSchema,
} from './schema.ts';

/** A validated config, every default filled in. */
export type AmphoraConfig = z.output<typeof AmphoraConfigSchema>;
/** What the driver may write: defaults may be left out. */
export type AmphoraConfigInput = z.input<typeof AmphoraConfigSchema>;

export type Vip = z.output<typeof VipSchema>;
export type Vrrp = z.output<typeof VrrpSchema>;
export type VrrpInput = z.input<typeof VrrpSchema>;
export type Limits = z.output<typeof LimitsSchema>;
export type Listener = z.output<typeof ListenerSchema>;
export type ListenerInput = z.input<typeof ListenerSchema>;
export type ListenerProtocol = Listener['protocol'];
export type ListenerTimeouts = z.output<typeof ListenerTimeoutsSchema>;
export type PortSpec = z.output<typeof PortSpecSchema>;
export type L7Policy = z.output<typeof L7PolicySchema>;
export type L7PolicyInput = z.input<typeof L7PolicySchema>;
export type L7Rule = z.output<typeof L7RuleSchema>;
export type L7RuleInput = z.input<typeof L7RuleSchema>;
export type Pool = z.output<typeof PoolSchema>;
export type PoolInput = z.input<typeof PoolSchema>;
export type PoolProtocol = Pool['protocol'];
export type LbAlgorithm = Pool['algorithm'];
export type SessionPersistence = z.output<typeof SessionPersistenceSchema>;
export type Member = z.output<typeof MemberSchema>;
export type MemberInput = z.input<typeof MemberSchema>;
export type HealthMonitor = z.output<typeof HealthMonitorSchema>;
export type HealthMonitorInput = z.input<typeof HealthMonitorSchema>;

export type TlsCertificate = z.output<typeof TlsCertificateSchema>;
export type TlsCertificateInput = z.input<typeof TlsCertificateSchema>;
export type ListenerTls = z.output<typeof ListenerTlsSchema>;
export type ListenerTlsInput = z.input<typeof ListenerTlsSchema>;
export type PoolTls = z.output<typeof PoolTlsSchema>;
export type PoolTlsInput = z.input<typeof PoolTlsSchema>;
export type Hsts = z.output<typeof HstsSchema>;
export type TlsVersionName = (typeof TLS_VERSION_NAMES)[number];

/** The transport a listener binds: what decides whether two listeners may share a port. */
export type Transport = 'tcp' | 'udp' | 'sctp';
