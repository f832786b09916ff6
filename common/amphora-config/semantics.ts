import { isIP } from 'node:net';
import { expandPorts, transportOf } from './ports.ts';
import { checkListenerTls, checkPoolTls } from './tls.ts';
import type { AmphoraConfig, ListenerProtocol, PoolProtocol } from './types.ts';

export interface ConfigIssue {
  path: (string | number)[];
  message: string;
}

/** Octavia's listener → pool protocol compatibility map. */
const POOL_PROTOCOLS_FOR_LISTENER: Record<ListenerProtocol, readonly PoolProtocol[]> = {
  TCP: ['TCP', 'HTTP', 'HTTPS', 'PROXY', 'PROXYV2'],
  HTTP: ['HTTP', 'PROXY', 'PROXYV2'],
  HTTPS: ['HTTPS', 'TCP', 'PROXY', 'PROXYV2'],
  TERMINATED_HTTPS: ['HTTP', 'PROXY', 'PROXYV2'],
  UDP: ['UDP'],
  SCTP: ['SCTP'],
  PROMETHEUS: [],
};

/**
 * Cross-object rules a schema cannot express: references, protocol compatibility, port conflicts, and
 * features this data plane does not implement yet (rejected explicitly rather than silently ignored).
 */
export function checkSemantics(config: AmphoraConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const seenIds = new Map<string, string>();
  const claimId = (id: string, path: (string | number)[]) => {
    const previous = seenIds.get(id);
    if (previous !== undefined) issues.push({ path, message: `duplicate id ${id} (already used at ${previous})` });
    else seenIds.set(id, path.join('.'));
  };

  const poolsById = new Map(config.pools.map((p) => [p.id, p]));

  config.pools.forEach((pool, pi) => {
    const at = ['pools', pi];
    claimId(pool.id, [...at, 'id']);
    if (pool.protocol === 'SCTP') issues.push({ path: [...at, 'protocol'], message: 'SCTP pools are not supported' });
    if (pool.tls) {
      if (pool.protocol === 'UDP' || pool.protocol === 'SCTP') {
        issues.push({ path: [...at, 'tls'], message: `${pool.protocol} pools cannot use TLS` });
      } else {
        for (const issue of checkPoolTls(pool.tls)) issues.push({ path: [...at, 'tls', ...issue.path], message: issue.message });
      }
    }
    if (pool.protocol === 'UDP' && pool.sessionPersistence && pool.sessionPersistence.type !== 'SOURCE_IP') {
      issues.push({ path: [...at, 'sessionPersistence'], message: 'UDP pools support SOURCE_IP persistence only' });
    }
    const persistence = pool.sessionPersistence;
    if (persistence && (persistence.type === 'HTTP_COOKIE' || persistence.type === 'APP_COOKIE')) {
      if (pool.protocol !== 'HTTP') {
        issues.push({ path: [...at, 'sessionPersistence'], message: `${persistence.type} needs an HTTP pool` });
      }
      if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(persistence.cookieName)) {
        issues.push({ path: [...at, 'sessionPersistence', 'cookieName'], message: 'must be a cookie name token' });
      }
    }
    if (persistence?.type === 'SOURCE_IP' && persistence.granularity !== null && !isNetmask(persistence.granularity)) {
      issues.push({
        path: [...at, 'sessionPersistence', 'granularity'],
        message: 'must be a netmask such as 255.255.255.0 or a prefix length such as 24',
      });
    }
    const monitor = pool.healthMonitor;
    if (monitor) {
      claimId(monitor.id, [...at, 'healthMonitor', 'id']);
      if (monitor.type === 'SCTP') {
        issues.push({ path: [...at, 'healthMonitor', 'type'], message: 'SCTP health monitors are not supported' });
      }
      if (monitor.timeout > monitor.delay) {
        issues.push({ path: [...at, 'healthMonitor', 'timeout'], message: 'timeout must not exceed delay' });
      }
    }
    pool.members.forEach((member, mi) => claimId(member.id, [...at, 'members', mi, 'id']));
  });

  const boundPorts = new Map<string, string>();
  config.listeners.forEach((listener, li) => {
    const at = ['listeners', li];
    claimId(listener.id, [...at, 'id']);
    const protocol = listener.protocol;
    const terminated = protocol === 'TERMINATED_HTTPS';
    if (protocol === 'SCTP') issues.push({ path: [...at, 'protocol'], message: 'SCTP listeners are not supported' });
    if (listener.forwarding === 'DIRECT_ROUTING') issues.push(...checkDirectRouting(config, li, poolsById));
    if (terminated && listener.tls === null) {
      issues.push({ path: [...at, 'tls'], message: 'required by TERMINATED_HTTPS listeners (certificates)' });
    } else if (!terminated && protocol !== 'PROMETHEUS' && listener.tls !== null) {
      issues.push({ path: [...at, 'tls'], message: `a ${protocol} listener does not terminate TLS (TERMINATED_HTTPS and PROMETHEUS only)` });
    } else if (listener.tls !== null) {
      for (const issue of checkListenerTls(listener.tls)) issues.push({ path: [...at, 'tls', ...issue.path], message: issue.message });
    }
    if (!terminated && listener.hsts !== null) {
      issues.push({ path: [...at, 'hsts'], message: 'HSTS needs a TERMINATED_HTTPS listener' });
    }

    for (const [name, wanted] of Object.entries(listener.insertHeaders)) {
      if (!wanted) continue;
      if (name.startsWith('X-SSL-')) {
        if (!terminated) issues.push({ path: [...at, 'insertHeaders', name], message: `${name} needs a TERMINATED_HTTPS listener` });
      } else if (protocol !== 'HTTP' && !terminated) {
        issues.push({ path: [...at, 'insertHeaders', name], message: 'headers can only be inserted by HTTP and TERMINATED_HTTPS listeners' });
      }
    }

    const allowedPools = POOL_PROTOCOLS_FOR_LISTENER[protocol];
    const checkPoolRef = (poolId: string | null, path: (string | number)[]) => {
      if (poolId === null) return;
      const pool = poolsById.get(poolId);
      if (!pool) issues.push({ path, message: `pool ${poolId} does not exist` });
      else if (!allowedPools.includes(pool.protocol)) {
        issues.push({ path, message: `a ${protocol} listener cannot use a ${pool.protocol} pool` });
      }
    };
    if (protocol === 'PROMETHEUS' && listener.defaultPoolId !== null) {
      issues.push({ path: [...at, 'defaultPoolId'], message: 'a PROMETHEUS listener has no pool' });
    } else {
      checkPoolRef(listener.defaultPoolId, [...at, 'defaultPoolId']);
    }

    if (listener.l7policies.length > 0 && protocol !== 'HTTP' && protocol !== 'TERMINATED_HTTPS') {
      issues.push({ path: [...at, 'l7policies'], message: 'L7 policies need an HTTP listener' });
    }
    listener.l7policies.forEach((policy, pi) => {
      const pat = [...at, 'l7policies', pi];
      claimId(policy.id, [...pat, 'id']);
      if (policy.action === 'REDIRECT_TO_POOL') {
        if (policy.redirectPoolId === null) issues.push({ path: [...pat, 'redirectPoolId'], message: 'required by REDIRECT_TO_POOL' });
        checkPoolRef(policy.redirectPoolId, [...pat, 'redirectPoolId']);
      }
      if (policy.action === 'REDIRECT_TO_URL' && policy.redirectUrl === null) {
        issues.push({ path: [...pat, 'redirectUrl'], message: 'required by REDIRECT_TO_URL' });
      }
      if (policy.action === 'REDIRECT_TO_PREFIX' && policy.redirectPrefix === null) {
        issues.push({ path: [...pat, 'redirectPrefix'], message: 'required by REDIRECT_TO_PREFIX' });
      }
      policy.rules.forEach((rule, ri) => {
        const rat = [...pat, 'rules', ri];
        claimId(rule.id, [...rat, 'id']);
        if ((rule.type === 'SSL_CONN_HAS_CERT' || rule.type === 'SSL_VERIFY_RESULT') && rule.compareType !== 'EQUAL_TO') {
          issues.push({ path: [...rat, 'compareType'], message: `${rule.type} rules support EQUAL_TO only` });
        }
        if (rule.type === 'SSL_CONN_HAS_CERT' && rule.value.toLowerCase() !== 'true') {
          issues.push({ path: [...rat, 'value'], message: 'SSL_CONN_HAS_CERT rules take the value True' });
        }
        if (rule.type === 'SSL_VERIFY_RESULT' && !/^\d{1,9}$/.test(rule.value)) {
          issues.push({ path: [...rat, 'value'], message: 'SSL_VERIFY_RESULT rules take an OpenSSL verify result code (0 = verified)' });
        }
        if (rule.type === 'SSL_DN_FIELD' && (rule.key === null || !/^[a-zA-Z][A-Za-z0-9-]*$/.test(rule.key))) {
          issues.push({ path: [...rat, 'key'], message: 'SSL_DN_FIELD rules need a DN field name such as CN, OU or emailAddress' });
        }
        if ((rule.type === 'HEADER' || rule.type === 'COOKIE') && rule.key === null) {
          issues.push({ path: [...rat, 'key'], message: `${rule.type} rules need a key` });
        }
        if (rule.type === 'FILE_TYPE' && rule.compareType !== 'EQUAL_TO' && rule.compareType !== 'REGEX') {
          issues.push({ path: [...rat, 'compareType'], message: 'FILE_TYPE rules support EQUAL_TO and REGEX only' });
        }
        if (rule.compareType === 'REGEX') {
          try {
            new RegExp(rule.value);
          } catch (err) {
            issues.push({ path: [...rat, 'value'], message: `invalid regular expression: ${(err as Error).message}` });
          }
        }
      });
    });

    if (!listener.enabled) return;
    const transport = transportOf(protocol);
    for (const port of expandPorts(listener.ports)) {
      for (const vip of config.vips) {
        const key = `${transport} ${vip.address} ${port}`;
        const owner = boundPorts.get(key);
        if (owner !== undefined) {
          issues.push({ path: [...at, 'ports'], message: `${transport} port ${port} on ${vip.address} is already used by listener ${owner}` });
        } else {
          boundPorts.set(key, listener.id);
        }
      }
    }
  });

  if (config.vrrp) issues.push(...checkVrrp(config));
  return issues;
}

/** The election's addresses: its own is no peer's and no VIP, and all of one IP version. */
function checkVrrp(config: AmphoraConfig): ConfigIssue[] {
  const vrrp = config.vrrp!;
  const issues: ConfigIssue[] = [];
  const vips = new Set(config.vips.map((v) => v.address));
  if (vips.has(vrrp.address)) issues.push({ path: ['vrrp', 'address'], message: 'must be the amphora\'s own address, not a VIP' });
  vrrp.peers.forEach((peer, i) => {
    if (peer === vrrp.address) issues.push({ path: ['vrrp', 'peers', i], message: 'is this amphora\'s own address' });
    else if (vips.has(peer)) issues.push({ path: ['vrrp', 'peers', i], message: 'is a VIP, not a peer amphora\'s address' });
    else if (isIP(peer) !== isIP(vrrp.address)) issues.push({ path: ['vrrp', 'peers', i], message: 'is not of the IP version of vrrp.address' });
  });
  return issues;
}

/**
 * Direct routing forwards packets with their destination MAC rewritten and keeps no per-connection
 * state: only what a stateless L4 forwarder can honour is accepted. That the members share the VIP's L2
 * segment and that the host offers nftables' netdev family is checked by the data plane when it applies.
 */
function checkDirectRouting(config: AmphoraConfig, li: number, poolsById: Map<string, AmphoraConfig['pools'][number]>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const listener = config.listeners[li];
  const at = ['listeners', li];
  const dr = 'DIRECT_ROUTING';
  if (listener.protocol !== 'TCP' && listener.protocol !== 'UDP') {
    issues.push({ path: [...at, 'forwarding'], message: `${dr} needs a TCP or UDP listener, not ${listener.protocol}` });
    return issues;
  }
  if (listener.connectionLimit !== -1) {
    issues.push({ path: [...at, 'connectionLimit'], message: `${dr} keeps no connection state: connection limits cannot be enforced (use -1)` });
  }
  config.vips.forEach((vip, vi) => {
    if (isIP(vip.address) !== 4) issues.push({ path: ['vips', vi, 'address'], message: `${dr} serves IPv4 VIPs only (listener ${listener.id})` });
  });
  if (listener.defaultPoolId === null) return issues;
  const pool = poolsById.get(listener.defaultPoolId);
  if (pool === undefined) return issues; // reported as a missing reference
  const pi = config.pools.indexOf(pool);
  const pat = ['pools', pi];
  if (pool.protocol !== listener.protocol) {
    issues.push({
      path: [...at, 'defaultPoolId'],
      message: `a ${dr} ${listener.protocol} listener needs a ${listener.protocol} pool, not ${pool.protocol}: the amphora never speaks to the members (no PROXY header, no HTTP)`,
    });
  }
  if (pool.tls !== null) issues.push({ path: [...pat, 'tls'], message: `pool of a ${dr} listener: the amphora does not speak to members, it cannot re-encrypt` });
  const persistence = pool.sessionPersistence;
  if (persistence !== null && persistence.type !== 'SOURCE_IP') {
    issues.push({ path: [...pat, 'sessionPersistence'], message: `pool of a ${dr} listener: SOURCE_IP persistence only (or none), not ${persistence.type}` });
  }
  if (persistence?.type === 'SOURCE_IP' && persistence.granularity !== null && ipv4Mask(persistence.granularity) === null) {
    issues.push({ path: [...pat, 'sessionPersistence', 'granularity'], message: `pool of a ${dr} listener: must be an IPv4 netmask or a prefix length up to 32` });
  }
  pool.members.forEach((member, mi) => {
    if (isIP(member.address) !== 4) {
      issues.push({ path: [...pat, 'members', mi, 'address'], message: `member of a ${dr} pool: must be an IPv4 address on the VIP's L2 segment` });
    }
    if (member.maxConnections !== null) {
      issues.push({ path: [...pat, 'members', mi, 'maxConnections'], message: `member of a ${dr} pool: connection ceilings need connection state, which ${dr} does not keep` });
    }
  });
  return issues;
}

/** A granularity (255.255.255.0 or 24) as a dotted IPv4 netmask, or null when it is not one. */
export function ipv4Mask(granularity: string): string | null {
  if (/^\d{1,2}$/.test(granularity)) {
    const bits = Number(granularity);
    if (bits > 32) return null;
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    return [24, 16, 8, 0].map((shift) => (mask >>> shift) & 255).join('.');
  }
  return isNetmask(granularity) && granularity.includes('.') ? granularity : null;
}

function isNetmask(text: string): boolean {
  if (/^\d{1,3}$/.test(text)) return Number(text) <= 128;
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return false;
  const bits = parts.reduce((acc, p) => (acc << 8) | Number(p), 0) >>> 0;
  const inverted = ~bits >>> 0;
  return (inverted & (inverted + 1)) === 0;
}
