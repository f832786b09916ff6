// Names of everything the local network plumbing creates. Every name starts with `<prefix>-`, so
// that leftovers (after a crash, or a failed test) can be found and removed by prefix, and two
// prefixes never match each other's resources. Interface names are at most 15 characters (IFNAMSIZ).
import { createHash } from 'node:crypto';

export const DEFAULT_PREFIX = 'argo';
export const MAX_INTERFACE_NAME = 15;
/** The name of the amphora's end of its veth, inside its namespace. */
export const AMPHORA_INTERFACE = 'eth0';

const PREFIX_RE = /^[a-z][a-z0-9]{1,5}$/;

export function checkPrefix(prefix: string): string {
  if (!PREFIX_RE.test(prefix)) throw new Error(`network prefix ${JSON.stringify(prefix)} must be 2-6 lower-case letters or digits, starting with a letter`);
  return prefix;
}

/** The amphora's network namespace (namespace names are not limited to 15 characters). */
export function namespaceName(prefix: string, amphoraId: string): string {
  return `${checkPrefix(prefix)}-${amphoraId}`;
}

/** The host end of the amphora's veth: `<prefix>-` and as many hex digits of the id as fit. */
export function hostVethName(prefix: string, amphoraId: string): string {
  const hex = amphoraId.replace(/-/g, '').toLowerCase();
  if (!/^[0-9a-f]{8,}$/.test(hex)) throw new Error(`amphora id ${amphoraId} is not a UUID`);
  return `${checkPrefix(prefix)}-${hex}`.slice(0, MAX_INTERFACE_NAME);
}

/** The default bridge name for a prefix ("br" holds a non-hex letter: never a veth name). */
export function bridgeName(prefix: string): string {
  return `${checkPrefix(prefix)}-br`;
}

/** A stable locally administered unicast MAC for an amphora's interface (ARP caches stay valid across re-plumbing). */
export function macFor(amphoraId: string): string {
  const bytes = createHash('sha256').update(amphoraId).digest().subarray(0, 5);
  return ['02', ...[...bytes].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** Whether a namespace or link name belongs to a prefix. */
export function hasPrefix(prefix: string, name: string): boolean {
  return name.startsWith(`${checkPrefix(prefix)}-`);
}
