// The single-call ("graph") create: a load balancer POST carrying listeners, pools (with members
// and a health monitor), L7 policies and rules, all created in the load balancer's transaction.
// Pools are defined once (at the top level, or inline as a listener's default_pool / a policy's
// redirect_pool) and referenced elsewhere by name.
import type { Transaction } from 'sequelize';
import type { Row } from '../../common/db/database.ts';
import type { ProviderDriver } from '../../driver/provider.ts';
import { errors } from '../errors.ts';
import { checkQuota, checkWithProvider, replaceTags } from '../mutations.ts';
import { checkPoolProtocol } from '../protocols.ts';
import { object, type Body, type Schema } from '../schema/object.ts';
import { list } from '../schema/types.ts';
import type { Ctx } from '../services.ts';
import { buildHealthMonitor, monitorCreateFields } from './healthmonitors.ts';
import { buildPolicy, placePolicy, policyCreateFields } from './l7policies.ts';
import { buildRule, ruleCreateFields } from './l7rules.ts';
import { buildListener, listenerCreateFields } from './listeners.ts';
import { checkListenerPool, checkPortConflicts } from '../listener-ports.ts';
import { buildMember, memberCreateFields } from './members.ts';
import { buildPool, poolCreateFields } from './pools.ts';
import { TlsRefs } from '../tls-refs.ts';

const optional = (schema: Schema, keys: string[]): Schema =>
  Object.fromEntries(Object.entries(schema).map(([k, f]) => [k, keys.includes(k) ? { type: f.type } : f]));

const poolItem: Schema = {
  ...optional(poolCreateFields, ['protocol', 'lb_algorithm']),
  healthmonitor: { type: object(monitorCreateFields, 'healthmonitor') },
  members: { type: list(object(memberCreateFields, 'members')) },
};
const policyItem: Schema = {
  ...policyCreateFields,
  redirect_pool: { type: object(poolItem, 'redirect_pool') },
  rules: { type: list(object(ruleCreateFields, 'rules')) },
};
const listenerItem: Schema = {
  ...listenerCreateFields,
  default_pool: { type: object(poolItem, 'default_pool') },
  l7policies: { type: list(object(policyItem, 'l7policies')) },
};

export const graphItemSchemas = { listener: listenerItem, pool: poolItem };

const isReference = (pool: Body) => Object.keys(pool).every((k) => k === 'name');

/** `tls`: the certificate references of every listener and pool, resolved before the transaction (api/tls-refs.ts). */
export async function createGraphChildren(ctx: Ctx, lb: Row, driver: ProviderDriver, body: Body, t: Transaction, tls: TlsRefs = TlsRefs.none(ctx.state.services)): Promise<void> {
  const listeners = (body.listeners as Body[] | null) ?? [];
  const definitions = [...((body.pools as Body[] | null) ?? [])];
  const references: Body[] = [];
  const collect = (pool: Body | null | undefined) => {
    if (!pool) return;
    // Octavia's _graph_create: every pool a listener or policy names must be named, reference or not.
    if (!pool.name) throw errors.validation('Pools must be named when creating a fully populated loadbalancer.');
    if (isReference(pool)) references.push(pool);
    else definitions.push(pool);
  };
  for (const l of listeners) {
    collect(l.default_pool as Body | null);
    for (const p of (l.l7policies as Body[] | null) ?? []) collect(p.redirect_pool as Body | null);
  }
  if (listeners.length === 0 && definitions.length === 0) return;
  const names = definitions.map((d) => d.name ?? null);
  if (new Set(names).size !== names.length) throw errors.validation('Pool names must be unique when creating a fully populated loadbalancer.');
  for (const ref of references) {
    if (!definitions.some((d) => d.name === ref.name)) throw errors.validation(`Pool '${ref.name}' was referenced but no full definition was found.`);
  }
  for (const d of definitions) {
    for (const attr of ['protocol', 'lb_algorithm']) {
      if (!d[attr]) throw errors.validation(`Pool definition for '${d.name ?? ''}' missing required attribute: ${attr}`);
    }
  }

  const project = lb.project_id as string;
  await checkQuota(ctx, project, 'listener', listeners.length, t);
  await checkQuota(ctx, project, 'pool', definitions.length, t);
  await checkQuota(ctx, project, 'health_monitor', definitions.filter((d) => d.healthmonitor).length, t);
  await checkQuota(ctx, project, 'member', definitions.reduce((n, d) => n + ((d.members as Body[] | null)?.length ?? 0), 0), t);

  const { services } = ctx.state;
  const { db } = services;
  const poolRows = new Map<Body, Row>();
  for (const def of definitions) {
    const pool = buildPool(services, lb, def, tls);
    checkWithProvider(driver, lb.provider, () => driver.checks.pool?.(pool));
    await db.models.pool.create(pool, { transaction: t });
    await replaceTags(services, pool.id, def.tags, t, true);
    poolRows.set(def, pool);
    const hm = def.healthmonitor as Body | null;
    if (hm) {
      const monitor = buildHealthMonitor(services, lb, pool, hm);
      await db.models.health_monitor.create(monitor, { transaction: t });
      await replaceTags(services, monitor.id, hm.tags, t, true);
    }
    const seen = new Set<string>();
    for (const m of (def.members as Body[] | null) ?? []) {
      const member = await buildMember(services, lb, pool, !!hm, m);
      const key = `${member.address}/${member.protocol_port}`;
      if (seen.has(key)) throw errors.duplicateMember(member.address, member.protocol_port);
      seen.add(key);
      await db.models.member.create(member, { transaction: t });
      await replaceTags(services, member.id, m.tags, t, true);
    }
  }
  const poolFor = (ref: Body): Row => {
    const def = isReference(ref) ? definitions.find((d) => d.name === ref.name)! : ref;
    return poolRows.get(def)!;
  };

  const created: Row[] = [];
  for (const item of listeners) {
    const listener = await buildListener(services, lb, item, t, true, tls);
    checkPortConflicts(created, listener);
    if (item.default_pool) {
      if (listener.protocol === 'PROMETHEUS') throw errors.listenerNoChildren('PROMETHEUS');
      const pool = poolFor(item.default_pool as Body);
      checkPoolProtocol(listener.protocol, pool.protocol);
      checkListenerPool(listener, pool);
      listener.default_pool_id = pool.id;
    }
    checkWithProvider(driver, lb.provider, () => driver.checks.listener?.(listener));
    await db.models.listener.create(listener, { transaction: t });
    await replaceTags(services, listener.id, item.tags, t, true);
    created.push(listener);
    for (const p of (item.l7policies as Body[] | null) ?? []) {
      const args = { ...p };
      if (p.redirect_pool) {
        const pool = poolFor(p.redirect_pool as Body);
        checkPoolProtocol(listener.protocol, pool.protocol);
        args.redirect_pool_id = pool.id;
        delete args.redirect_pool;
      }
      const policy = buildPolicy(lb, listener, args);
      checkWithProvider(driver, lb.provider, () => driver.checks.l7policy?.(policy, listener));
      await placePolicy(services, policy, t);
      await db.models.l7policy.create(policy, { transaction: t });
      await replaceTags(services, policy.id, p.tags, t, true);
      const rules = (p.rules as Body[] | null) ?? [];
      if (rules.length > 50) throw errors.tooManyRules(policy.id);
      for (const r of rules) {
        const rule = buildRule(lb, policy, r);
        await db.models.l7rule.create(rule, { transaction: t });
        await replaceTags(services, rule.id, r.tags, t, true);
      }
    }
  }
}
