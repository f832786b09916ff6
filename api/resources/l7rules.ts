// /v2/lbaas/l7policies/{l7policy_id}/rules.
import type Router from '@koa/router';
import type { Transaction } from 'sequelize';
import type { Row } from '../../common/db/database.ts';
import { enforce } from '../access.ts';
import { baseColumns, col, findOr404, listResource, showResource, type ResourceSpec } from '../collection.ts';
import { errors } from '../errors.ts';
import { checkQuota, lockLoadBalancer, newObject, now, providerOf, replaceTags, requireActive, setStatus } from '../mutations.ts';
import { parseRequest, type Body, type Schema } from '../schema/object.ts';
import { boolean, enumOf, list, string } from '../schema/types.ts';
import type { Ctx, Services } from '../services.ts';
import { l7ruleViews } from '../views.ts';
import { l7policySpec } from './l7policies.ts';

export const l7ruleSpec: ResourceSpec = {
  table: 'l7rule',
  display: 'L7 Rule',
  singular: 'rule',
  plural: 'rules',
  linksKey: 'rules_links',
  policy: 'l7rule',
  idColumn: 'id',
  hasTags: true,
  hasCreatedAt: true,
  projectScoped: false,
  view: l7ruleViews,
  columns: {
    ...baseColumns,
    type: col('type'),
    compare_type: col('compare_type'),
    key: col('key'),
    value: col('value'),
    invert: col('invert', 'bool'),
  },
};

const RULE_TYPES = ['HOST_NAME', 'PATH', 'FILE_TYPE', 'HEADER', 'COOKIE', 'SSL_CONN_HAS_CERT', 'SSL_VERIFY_RESULT', 'SSL_DN_FIELD'] as const;
const COMPARE_TYPES = ['REGEX', 'STARTS_WITH', 'ENDS_WITH', 'CONTAINS', 'EQUAL_TO'] as const;
const MAX_RULES = 50;
const noNewline = /^[^\r\n]*$/;

export const ruleCreateFields: Schema = {
  type: { type: enumOf(RULE_TYPES), mandatory: true },
  compare_type: { type: enumOf(COMPARE_TYPES), mandatory: true },
  key: { type: string({ max: 255, pattern: noNewline }) },
  value: { type: string({ max: 255, pattern: noNewline }), mandatory: true },
  invert: { type: boolean },
  admin_state_up: { type: boolean },
  project_id: { type: string({ max: 36 }) },
  tenant_id: { type: string({ max: 36 }) },
  tags: { type: list(string({ max: 255 })) },
};
const putSchema: Schema = Object.fromEntries(['type', 'compare_type', 'key', 'value', 'invert', 'admin_state_up', 'tags'].map((k) => [k, { type: ruleCreateFields[k]!.type }]));

const HEADER_NAME = /^[a-zA-Z0-9!#$%&'*+-.^_`|~]+$/;
const COOKIE_VALUE = /^[a-zA-Z0-9!#$%&'()*+-./:<=>?@[\]^_`{|}~]+$/;
const HEADER_VALUE = /^[a-zA-Z0-9!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~\\]+$/;
const QUOTED_HEADER_VALUE = /^"[a-zA-Z0-9 !#$%&'()*+,-./:;<=>?@[\]^_`{|}~\\]*"$/;
const DN_FIELD = /^[a-zA-Z][A-Za-z0-9-]*$/;
const SIMPLE_COMPARES = ['STARTS_WITH', 'ENDS_WITH', 'CONTAINS', 'EQUAL_TO'];

function checkRegex(value: string): void {
  try {
    new RegExp(value);
  } catch (err) {
    throw errors.invalidL7RuleRegex((err as Error).message);
  }
}

/** Octavia's l7rule_data checks on a complete rule (type, compare_type, key, value). */
export function checkRule(rule: Row): void {
  const { type, compare_type: compare, key, value } = rule;
  if (!value) throw errors.invalidL7Rule('L7 rule type requires a value');
  const checkCompare = (simple: (v: string) => void, allowed = SIMPLE_COMPARES) => {
    if (compare === 'REGEX') checkRegex(value);
    else if (allowed.includes(compare)) simple(value);
    else throw errors.invalidL7Rule('invalid comparison type for rule type');
  };
  const headerValue = (what: string) => (v: string) => {
    if (!HEADER_VALUE.test(v) && !QUOTED_HEADER_VALUE.test(v)) throw errors.invalidL7RuleString(what);
  };
  switch (type) {
    case 'HEADER':
    case 'COOKIE':
      if (!key) throw errors.invalidL7Rule('L7 rule type requires a key');
      if (!HEADER_NAME.test(key)) throw errors.invalidL7RuleString('key');
      if (type === 'HEADER') checkCompare(headerValue('header value'));
      else checkCompare((v) => {
        if (!COOKIE_VALUE.test(v)) throw errors.invalidL7RuleString('cookie value');
      });
      return;
    case 'HOST_NAME':
    case 'PATH':
      checkCompare(headerValue('comparison value'));
      return;
    case 'FILE_TYPE':
      checkCompare(headerValue('comparison value'), ['EQUAL_TO']);
      return;
    case 'SSL_CONN_HAS_CERT':
      if (key) throw errors.invalidL7Rule(`L7rule type ${type} does not use the "key" field.`);
      if (String(value).toLowerCase() !== 'true') throw errors.invalidL7Rule(`L7rule value ${value} is not a boolean True string.`);
      if (compare !== 'EQUAL_TO') throw errors.invalidL7Rule(`L7rule type ${type} only supports the EQUAL_TO compare type.`);
      return;
    case 'SSL_VERIFY_RESULT':
      if (key) throw errors.invalidL7Rule(`L7rule type ${type} does not use the "key" field.`);
      if (!/^\d+$/.test(value)) throw errors.invalidL7Rule(`L7rule type ${type} needs a int value, which is >= 0`);
      if (compare !== 'EQUAL_TO') throw errors.invalidL7Rule(`L7rule type ${type} only supports the EQUAL_TO compare type.`);
      return;
    case 'SSL_DN_FIELD':
      if (compare === 'REGEX') checkRegex(value);
      if (!key || !value) throw errors.invalidL7Rule(`L7rule type ${type} needs to specify a key and a value.`);
      if (!DN_FIELD.test(key)) throw errors.invalidL7Rule('Invalid L7rule distinguished name field.');
      return;
    default:
      throw errors.invalidL7Rule('invalid rule type');
  }
}

/** Builds and validates a new rule of `policy` (POST and graph create). */
export function buildRule(lb: Row, policy: Row, body: Body): Row {
  const row: Row = {
    ...newObject(lb.project_id, body),
    l7policy_id: policy.id,
    type: body.type,
    compare_type: body.compare_type,
    key: body.key ?? null,
    value: body.value,
    invert: body.invert ?? false,
  };
  checkRule(row);
  return row;
}

async function lockFor(services: Services, policy: Row, t: Transaction): Promise<{ listener: Row; lb: Row }> {
  const listener = (await services.db.models.listener.findByPk(policy.listener_id, { raw: true, transaction: t })) as Row;
  const lb = await lockLoadBalancer(services, listener.load_balancer_id, t);
  return { listener, lb };
}

/** The policy of the path; its 404 names it `L7Policy`, as Octavia's rules controller does. */
async function parentPolicy(ctx: Ctx, t?: Transaction): Promise<Row> {
  return findOr404(ctx.state.services, { ...l7policySpec, display: 'L7Policy' }, ctx.params.l7policy_id!, t);
}

async function create(ctx: Ctx): Promise<void> {
  const body = parseRequest(ctx.state.body, 'rule', ruleCreateFields, 'rule_');
  const { services } = ctx.state;
  const { db } = services;
  const parent = await parentPolicy(ctx);
  enforce(ctx, 'l7rule', 'post', parent.project_id);
  let provider = '';
  let lbId = '';
  const row = await db.tx(async (t) => {
    const policy = await parentPolicy(ctx, t);
    const { listener, lb } = await lockFor(services, policy, t);
    const rule = buildRule(lb, policy, body);
    await checkQuota(ctx, lb.project_id, 'l7rule', 1, t);
    // Octavia checks the parent before the load balancer.
    requireActive(policy, 'L7Policy');
    requireActive(lb, 'Load Balancer');
    if ((await db.models.l7rule.count({ where: { l7policy_id: policy.id }, transaction: t })) >= MAX_RULES) throw errors.tooManyRules(policy.id);
    await db.models.l7rule.create(rule, { transaction: t });
    await replaceTags(services, rule.id, body.tags, t, true);
    await setStatus(services, 'l7policy', [policy.id], 'PENDING_UPDATE', t);
    await setStatus(services, 'listener', [listener.id], 'PENDING_UPDATE', t);
    await setStatus(services, 'load_balancer', [lb.id], 'PENDING_UPDATE', t);
    provider = lb.provider;
    lbId = lb.id;
    return rule;
  });
  providerOf(services, provider).submit({ kind: 'l7rule', action: 'create', id: row.id, loadBalancerId: lbId });
  ctx.status = 201;
  const [view] = await db.read(() => l7ruleViews(db, [row]));
  ctx.body = { rule: view };
}

async function findRule(ctx: Ctx, t?: Transaction): Promise<{ policy: Row; rule: Row }> {
  const { services } = ctx.state;
  const policy = await parentPolicy(ctx, t);
  const rule = await findOr404(services, l7ruleSpec, ctx.params.id!, t);
  if (rule.l7policy_id !== policy.id) throw errors.notFound('L7 Rule', ctx.params.id!);
  return { policy, rule };
}

async function update(ctx: Ctx): Promise<void> {
  const body = parseRequest(ctx.state.body, 'rule', putSchema, 'rule_');
  const { services } = ctx.state;
  const { db } = services;
  const { rule: found } = await findRule(ctx);
  enforce(ctx, 'l7rule', 'put', found.project_id);
  let provider = '';
  let lbId = '';
  const row = await db.tx(async (t) => {
    const { policy, rule } = await findRule(ctx, t);
    const { listener, lb } = await lockFor(services, policy, t);
    const values: Row = {};
    for (const key of ['type', 'compare_type', 'value'] as const) if (key in body) values[key] = body[key];
    if ('key' in body) values.key = body.key;
    if ('invert' in body) values.invert = body.invert ?? false;
    if ('admin_state_up' in body) values.admin_state_up = body.admin_state_up ?? false;
    const merged = { ...rule, ...values };
    // Octavia's L7RuleRepository.update clears the key of rule types that do not use it.
    if (['HOST_NAME', 'PATH', 'FILE_TYPE'].includes(merged.type)) merged.key = null;
    values.key = merged.key;
    checkRule(merged);
    // Octavia checks the parent before the load balancer.
    requireActive(policy, 'L7Policy');
    requireActive(lb, 'Load Balancer');
    values.provisioning_status = 'PENDING_UPDATE';
    values.updated_at = now();
    await db.models.l7rule.update(values, { where: { id: rule.id }, transaction: t });
    await replaceTags(services, rule.id, body.tags, t);
    await setStatus(services, 'l7policy', [policy.id], 'PENDING_UPDATE', t);
    await setStatus(services, 'listener', [listener.id], 'PENDING_UPDATE', t);
    await setStatus(services, 'load_balancer', [lb.id], 'PENDING_UPDATE', t);
    provider = lb.provider;
    lbId = lb.id;
    return { ...merged, ...values };
  });
  providerOf(services, provider).submit({ kind: 'l7rule', action: 'update', id: row.id, loadBalancerId: lbId });
  const [view] = await db.read(() => l7ruleViews(db, [row]));
  ctx.body = { rule: view };
}

async function remove(ctx: Ctx): Promise<void> {
  const { services } = ctx.state;
  const { rule: found } = await findRule(ctx);
  enforce(ctx, 'l7rule', 'delete', found.project_id);
  let provider = '';
  let lbId = '';
  await services.db.tx(async (t) => {
    const { policy, rule } = await findRule(ctx, t);
    const { listener, lb } = await lockFor(services, policy, t);
    // Octavia checks the parent before the load balancer.
    requireActive(policy, 'L7Policy');
    requireActive(lb, 'Load Balancer');
    await setStatus(services, 'l7rule', [rule.id], 'PENDING_DELETE', t);
    await setStatus(services, 'l7policy', [policy.id], 'PENDING_UPDATE', t);
    await setStatus(services, 'listener', [listener.id], 'PENDING_UPDATE', t);
    await setStatus(services, 'load_balancer', [lb.id], 'PENDING_UPDATE', t);
    provider = lb.provider;
    lbId = lb.id;
  });
  providerOf(services, provider).submit({ kind: 'l7rule', action: 'delete', id: found.id, loadBalancerId: lbId });
  ctx.status = 204;
}

async function listRules(ctx: Ctx): Promise<void> {
  const policy = await parentPolicy(ctx);
  await listResource(ctx, l7ruleSpec, { where: { l7policy_id: policy.id }, authorizeParentProject: policy.project_id });
}

async function show(ctx: Ctx): Promise<void> {
  const { rule } = await findRule(ctx);
  await showResource(ctx, l7ruleSpec, rule);
}

export function routes(router: Router<any, any>): void {
  router.get('/l7policies/:l7policy_id/rules', (ctx) => listRules(ctx as Ctx));
  router.post('/l7policies/:l7policy_id/rules', (ctx) => create(ctx as Ctx));
  router.get('/l7policies/:l7policy_id/rules/:id', (ctx) => show(ctx as Ctx));
  router.put('/l7policies/:l7policy_id/rules/:id', (ctx) => update(ctx as Ctx));
  router.delete('/l7policies/:l7policy_id/rules/:id', (ctx) => remove(ctx as Ctx));
}
