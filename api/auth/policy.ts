// Octavia's default RBAC policy, as data: named base rules and action → rule, written in the
// oslo.policy check-string language and evaluated by a small interpreter.
//
// Rule sets:
// - 'keystone_default_roles' (default): Octavia's in-code defaults (Keystone admin/member/reader roles).
//   With enforceNewDefaults=false (the reference deployment's setting) each rule that has a deprecated
//   predecessor is OR-ed with it, which re-admits the load-balancer_* roles.
// - 'advanced': Octavia's "advanced RBAC" policy file (etc/policy/octavia-advanced-rbac-policy.yaml):
//   a load-balancer_* role is required (role:admin stays global admin). For project-scoped tokens this
//   is what Octavia ≤ 2024.1 (e.g. the Zed reference on :19876) effectively enforces, and what tempest's
//   RBAC_test_type=advanced expects (a user with only `member` is refused).
// - 'admin_or_owner': Octavia's etc/policy/admin_or_owner-policy.yaml (tempest RBAC_test_type=owner_or_admin).
// Overridden rules never get the deprecated OR (oslo.policy only ORs rules left at their defaults).
import type { AuthContext } from './auth-context.ts';

export const POLICY_FORBIDDEN_MESSAGE = 'Policy does not allow this request to be performed.';

/** 403, rendered by the API's error mapper as Octavia's fault body. */
export class PolicyForbiddenError extends Error {
  readonly httpStatus = 403;
  readonly faultstring = POLICY_FORBIDDEN_MESSAGE;
  constructor(readonly action?: string) {
    super(POLICY_FORBIDDEN_MESSAGE);
    this.name = 'PolicyForbiddenError';
  }
}

/** An action name that is not in the policy table: a programming error (Octavia answers 500 too). */
export class PolicyNotRegisteredError extends Error {
  constructor(readonly action: string) {
    super(`Policy not registered: ${action}`);
    this.name = 'PolicyNotRegisteredError';
  }
}

export type PolicyRuleSet = 'keystone_default_roles' | 'advanced' | 'admin_or_owner';

export interface PolicyOptions {
  /** false (default, like the reference): deprecated load-balancer_* role rules are OR-ed with the new ones. */
  enforceNewDefaults: boolean;
  /** Default 'keystone_default_roles' (Octavia's in-code defaults, contract §3). */
  ruleSet?: PolicyRuleSet;
}

export interface PolicyTarget {
  /** The owning project of the object acted on (for creates: the requested project; see contract §3). */
  projectId: string | null;
}

export const POLICY_PREFIX = 'os_load-balancer_api';

export type PolicyObject =
  | 'loadbalancer'
  | 'listener'
  | 'pool'
  | 'member'
  | 'healthmonitor'
  | 'l7policy'
  | 'l7rule'
  | 'quota'
  | 'provider'
  | 'provider-flavor'
  | 'provider-availability-zone'
  | 'flavor'
  | 'flavor-profile'
  | 'availability-zone'
  | 'availability-zone-profile'
  | 'amphora';

/** Objects whose list has a get_all-global variant (Octavia's _auth_get_all). */
export type GlobalListObject = 'loadbalancer' | 'listener' | 'pool' | 'healthmonitor' | 'l7policy' | 'quota';

/** `os_load-balancer_api:<object>:<action>` */
export function policyAction(object: PolicyObject, action: string): string {
  return `${POLICY_PREFIX}:${object}:${action}`;
}

// --- Rule tables ----------------------------------------------------------------------------------

/** API access methods (octavia/policies/base.py): the rules the actions point at. */
export const API_ACCESS_RULES: Readonly<Record<string, string>> = Object.freeze({
  'load-balancer:read':
    'rule:load-balancer:observer_and_owner or rule:load-balancer:global_observer or ' +
    'rule:load-balancer:member_and_owner or rule:load-balancer:admin',
  'load-balancer:read-global': 'rule:load-balancer:global_observer or rule:load-balancer:admin',
  'load-balancer:write': 'rule:load-balancer:member_and_owner or rule:load-balancer:admin',
  'load-balancer:read-quota':
    'rule:load-balancer:observer_and_owner or rule:load-balancer:global_observer or ' +
    'rule:load-balancer:member_and_owner or rule:load-balancer:quota-admin or rule:load-balancer:admin',
  'load-balancer:read-quota-global':
    'rule:load-balancer:global_observer or rule:load-balancer:quota-admin or rule:load-balancer:admin',
  'load-balancer:write-quota': 'rule:load-balancer:quota-admin or rule:load-balancer:admin',
});

/** Role rules of the default policy (Keystone default roles; contract §3 "Base rules"). */
export const DEFAULT_ROLE_RULES: Readonly<Record<string, string>> = Object.freeze({
  context_is_admin: 'role:admin',
  'load-balancer:admin': 'is_admin:True or role:admin',
  'load-balancer:global_observer': 'role:admin',
  'load-balancer:quota-admin': 'role:admin',
  'project-member': 'role:member and project_id:%(project_id)s',
  'project-reader': 'role:reader and project_id:%(project_id)s',
  'load-balancer:member_and_owner': 'rule:project-member',
  'load-balancer:observer_and_owner': 'rule:project-reader',
  'load-balancer:owner': 'project_id:%(project_id)s',
  service: 'role:service',
});

/** Deprecated (pre-Wallaby) forms, OR-ed with the rule of the same name when enforceNewDefaults is false. */
export const DEPRECATED_RULES: Readonly<Record<string, string>> = Object.freeze({
  context_is_admin: 'role:admin or role:load-balancer_admin',
  'load-balancer:admin': 'is_admin:True or role:admin or role:load-balancer_admin',
  'load-balancer:global_observer': 'role:load-balancer_global_observer',
  'load-balancer:member_and_owner': 'role:load-balancer_member and rule:load-balancer:owner',
  'load-balancer:observer_and_owner': 'role:load-balancer_observer and rule:load-balancer:owner',
  'load-balancer:quota-admin': 'role:load-balancer_quota_admin',
});

/** Overrides of the 'advanced' rule set (Octavia's octavia-advanced-rbac-policy.yaml). */
export const ADVANCED_RBAC_OVERRIDES: Readonly<Record<string, string>> = Object.freeze({
  context_is_admin: 'role:admin or role:load-balancer_admin',
  'load-balancer:owner': 'project_id:%(project_id)s',
  'load-balancer:admin': 'is_admin:True or role:admin or role:load-balancer_admin',
  'load-balancer:observer_and_owner': 'role:load-balancer_observer and rule:load-balancer:owner',
  'load-balancer:global_observer': 'role:load-balancer_global_observer',
  'load-balancer:member_and_owner': 'role:load-balancer_member and rule:load-balancer:owner',
  'load-balancer:read':
    'rule:load-balancer:observer_and_owner or rule:load-balancer:global_observer or ' +
    'rule:load-balancer:member_and_owner or rule:load-balancer:admin',
  'load-balancer:read-global': 'rule:load-balancer:global_observer or rule:load-balancer:admin',
  'load-balancer:write': 'rule:load-balancer:member_and_owner or rule:load-balancer:admin',
  'load-balancer:read-quota':
    'rule:load-balancer:observer_and_owner or rule:load-balancer:global_observer or ' +
    'rule:load-balancer:member_and_owner or role:load-balancer_quota_admin or rule:load-balancer:admin',
  'load-balancer:read-quota-global':
    'rule:load-balancer:global_observer or role:load-balancer_quota_admin or rule:load-balancer:admin',
  'load-balancer:write-quota': 'role:load-balancer_quota_admin or rule:load-balancer:admin',
});

/** Overrides of the 'admin_or_owner' rule set (Octavia's admin_or_owner-policy.yaml). */
export const ADMIN_OR_OWNER_OVERRIDES: Readonly<Record<string, string>> = Object.freeze({
  context_is_admin: 'role:admin or role:load-balancer_admin',
  admin_or_owner: 'is_admin:True or project_id:%(project_id)s',
  'load-balancer:read': 'rule:admin_or_owner',
  'load-balancer:read-global': 'is_admin:True',
  'load-balancer:write': 'rule:admin_or_owner',
  'load-balancer:read-quota': 'rule:admin_or_owner',
  'load-balancer:read-quota-global': 'is_admin:True',
  'load-balancer:write-quota': 'is_admin:True',
});

const READ = 'rule:load-balancer:read';
const READ_GLOBAL = 'rule:load-balancer:read-global';
const WRITE = 'rule:load-balancer:write';
const ADMIN = 'rule:load-balancer:admin';
const READ_QUOTA = 'rule:load-balancer:read-quota';
const READ_QUOTA_GLOBAL = 'rule:load-balancer:read-quota-global';
const WRITE_QUOTA = 'rule:load-balancer:write-quota';

const lbTreeActions = (object: PolicyObject, opts: { global: boolean; read?: string }): Record<string, string> => {
  const rules: Record<string, string> = {
    [policyAction(object, 'get_all')]: opts.read ?? READ,
    [policyAction(object, 'post')]: WRITE,
    [policyAction(object, 'get_one')]: READ,
    [policyAction(object, 'put')]: WRITE,
    [policyAction(object, 'delete')]: WRITE,
  };
  if (opts.global) rules[policyAction(object, 'get_all-global')] = READ_GLOBAL;
  return rules;
};

const adminManaged = (object: PolicyObject, read: string): Record<string, string> => ({
  [policyAction(object, 'get_all')]: read,
  [policyAction(object, 'post')]: ADMIN,
  [policyAction(object, 'get_one')]: read,
  [policyAction(object, 'put')]: ADMIN,
  [policyAction(object, 'delete')]: ADMIN,
});

/** Every API action and the rule it requires (contract §3 "Action rules"). */
export const ACTION_RULES: Readonly<Record<string, string>> = Object.freeze({
  ...lbTreeActions('loadbalancer', { global: true }),
  [policyAction('loadbalancer', 'post:vip_sg_ids')]: WRITE,
  [policyAction('loadbalancer', 'put:vip_sg_ids')]: WRITE,
  [policyAction('loadbalancer', 'get_stats')]: READ,
  [policyAction('loadbalancer', 'get_status')]: READ,
  [policyAction('loadbalancer', 'put_failover')]: ADMIN,

  ...lbTreeActions('listener', { global: true }),
  [policyAction('listener', 'get_stats')]: READ,

  ...lbTreeActions('pool', { global: true }),
  ...lbTreeActions('member', { global: false, read: `${READ} or rule:service` }),
  ...lbTreeActions('healthmonitor', { global: true }),
  ...lbTreeActions('l7policy', { global: true }),
  ...lbTreeActions('l7rule', { global: false }),

  [policyAction('quota', 'get_all')]: READ_QUOTA,
  [policyAction('quota', 'get_all-global')]: READ_QUOTA_GLOBAL,
  [policyAction('quota', 'get_one')]: READ_QUOTA,
  [policyAction('quota', 'put')]: WRITE_QUOTA,
  [policyAction('quota', 'delete')]: WRITE_QUOTA,
  [policyAction('quota', 'get_defaults')]: READ_QUOTA,

  [policyAction('provider', 'get_all')]: READ,
  [policyAction('provider-flavor', 'get_all')]: ADMIN,
  [policyAction('provider-availability-zone', 'get_all')]: ADMIN,

  ...adminManaged('flavor', READ),
  ...adminManaged('flavor-profile', ADMIN),
  ...adminManaged('availability-zone', READ),
  ...adminManaged('availability-zone-profile', ADMIN),

  [policyAction('amphora', 'get_all')]: ADMIN,
  [policyAction('amphora', 'get_one')]: ADMIN,
  [policyAction('amphora', 'delete')]: ADMIN,
  [policyAction('amphora', 'put_config')]: ADMIN,
  [policyAction('amphora', 'put_failover')]: ADMIN,
  [policyAction('amphora', 'get_stats')]: ADMIN,
});

// --- Check-string language ------------------------------------------------------------------------

type CredKey = 'project_id' | 'user_id';

export type Check =
  | { t: 'or'; of: Check[] }
  | { t: 'and'; of: Check[] }
  | { t: 'not'; of: Check }
  | { t: 'true' }
  | { t: 'false' }
  | { t: 'role'; role: string }
  | { t: 'rule'; name: string }
  | { t: 'is_admin'; expected: boolean }
  | { t: 'generic'; cred: CredKey; targetKey?: 'project_id'; literal?: string };

/** Parses an oslo.policy check string (or/and/not, parentheses, @, !, role:, rule:, is_admin:, project_id:/user_id:). */
export function parseCheck(text: string): Check {
  // Tokenise like oslo.policy: split on whitespace, then peel leading '(' and trailing ')' off each
  // word (so the parentheses of `%(project_id)s` stay part of their check).
  const tokens: string[] = [];
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    let w = word;
    while (w.startsWith('(')) {
      tokens.push('(');
      w = w.slice(1);
    }
    let trailing = 0;
    while (w.endsWith(')')) {
      trailing++;
      w = w.slice(0, -1);
    }
    if (w !== '') {
      const lower = w.toLowerCase();
      tokens.push(lower === 'and' || lower === 'or' || lower === 'not' ? lower : w);
    }
    for (let i = 0; i < trailing; i++) tokens.push(')');
  }
  let pos = 0;
  const fail = (why: string): never => {
    throw new Error(`Invalid policy check string ${JSON.stringify(text)}: ${why}`);
  };
  const parseOr = (): Check => {
    const of = [parseAnd()];
    while (tokens[pos] === 'or') {
      pos++;
      of.push(parseAnd());
    }
    return of.length === 1 ? of[0] : { t: 'or', of };
  };
  const parseAnd = (): Check => {
    const of = [parseNot()];
    while (tokens[pos] === 'and') {
      pos++;
      of.push(parseNot());
    }
    return of.length === 1 ? of[0] : { t: 'and', of };
  };
  const parseNot = (): Check => {
    if (tokens[pos] === 'not') {
      pos++;
      return { t: 'not', of: parseNot() };
    }
    return parseAtom();
  };
  const parseAtom = (): Check => {
    const tok = tokens[pos++];
    if (tok === undefined) return fail('unexpected end');
    if (tok === '(') {
      const inner = parseOr();
      if (tokens[pos++] !== ')') fail('missing )');
      return inner;
    }
    if (tok === '@') return { t: 'true' };
    if (tok === '!') return { t: 'false' };
    const colon = tok.indexOf(':');
    if (colon <= 0) return fail(`bad check ${tok}`);
    const kind = tok.slice(0, colon);
    const match = tok.slice(colon + 1);
    if (match === '') return fail(`empty match in ${tok}`);
    switch (kind) {
      case 'role':
        return { t: 'role', role: match.toLowerCase() };
      case 'rule':
        return { t: 'rule', name: match };
      case 'is_admin':
        return { t: 'is_admin', expected: match.toLowerCase() === 'true' };
      case 'project_id':
      case 'user_id': {
        if (match === '%(project_id)s') return { t: 'generic', cred: kind, targetKey: 'project_id' };
        if (match.includes('%(')) return fail(`unsupported target reference in ${tok}`);
        return { t: 'generic', cred: kind, literal: match };
      }
      default:
        return fail(`unsupported check kind ${kind}`);
    }
  };
  const check = parseOr();
  if (pos !== tokens.length) fail(`unexpected ${tokens[pos]}`);
  return check;
}

interface CompiledPolicy {
  rules: Map<string, Check>;
}

function referencedRules(check: Check, out: Set<string>): void {
  switch (check.t) {
    case 'or':
    case 'and':
      for (const c of check.of) referencedRules(c, out);
      return;
    case 'not':
      referencedRules(check.of, out);
      return;
    case 'rule':
      out.add(check.name);
      return;
    default:
      return;
  }
}

/** The effective check strings of a configuration (after overrides and the deprecated OR). */
export function effectiveRuleStrings(opts: PolicyOptions): Record<string, string> {
  const ruleSet = opts.ruleSet ?? 'keystone_default_roles';
  const overrides =
    ruleSet === 'advanced' ? ADVANCED_RBAC_OVERRIDES : ruleSet === 'admin_or_owner' ? ADMIN_OR_OWNER_OVERRIDES : {};
  const out: Record<string, string> = { ...DEFAULT_ROLE_RULES, ...API_ACCESS_RULES, ...ACTION_RULES };
  for (const [name, deprecated] of Object.entries(DEPRECATED_RULES)) {
    if (!opts.enforceNewDefaults && !(name in overrides)) out[name] = `(${out[name]}) or (${deprecated})`;
  }
  Object.assign(out, overrides);
  return out;
}

const compiledCache = new Map<string, CompiledPolicy>();

function compile(opts: PolicyOptions): CompiledPolicy {
  const key = `${opts.ruleSet ?? 'keystone_default_roles'}|${opts.enforceNewDefaults ? 'new' : 'compat'}`;
  const cached = compiledCache.get(key);
  if (cached) return cached;
  const rules = new Map<string, Check>();
  for (const [name, text] of Object.entries(effectiveRuleStrings(opts))) rules.set(name, parseCheck(text));
  for (const [name, check] of rules) {
    const refs = new Set<string>();
    referencedRules(check, refs);
    for (const ref of refs) if (!rules.has(ref)) throw new Error(`Policy rule ${name} references unknown rule ${ref}`);
  }
  const compiled = { rules };
  compiledCache.set(key, compiled);
  return compiled;
}

const MAX_DEPTH = 32;

class Evaluation {
  private adminFlag: boolean | undefined;

  constructor(
    private readonly policy: CompiledPolicy,
    private readonly ctx: AuthContext,
    private readonly target: PolicyTarget,
  ) {}

  rule(name: string, depth: number): boolean {
    const check = this.policy.rules.get(name);
    // oslo.policy: a reference to an unknown rule is simply false (our tables are verified at compile time).
    if (!check) return false;
    return this.eval(check, depth + 1);
  }

  /** Octavia's context.is_admin: context_is_admin passes, or the deployment forces it (noauth). */
  private isAdmin(depth: number): boolean {
    if (this.adminFlag === undefined) this.adminFlag = this.ctx.isAdmin || this.rule('context_is_admin', depth);
    return this.adminFlag;
  }

  eval(check: Check, depth: number): boolean {
    if (depth > MAX_DEPTH) throw new Error('Policy rules nest too deeply (circular reference?)');
    switch (check.t) {
      case 'or':
        return check.of.some((c) => this.eval(c, depth));
      case 'and':
        return check.of.every((c) => this.eval(c, depth));
      case 'not':
        return !this.eval(check.of, depth);
      case 'true':
        return true;
      case 'false':
        return false;
      case 'role':
        return this.ctx.roles.some((r) => r.toLowerCase() === check.role);
      case 'rule':
        return this.rule(check.name, depth);
      case 'is_admin':
        return this.isAdmin(depth) === check.expected;
      case 'generic': {
        const cred = check.cred === 'project_id' ? this.ctx.projectId : this.ctx.userId;
        // Stricter than oslo.policy on one edge: a missing value never matches (oslo compares str(None)).
        if (cred === null || cred === undefined || cred === '') return false;
        if (check.literal !== undefined) return cred === check.literal;
        const want = this.target.projectId;
        return want !== null && want !== undefined && want !== '' && cred === want;
      }
    }
  }
}

const DEFAULT_OPTIONS: PolicyOptions = { enforceNewDefaults: false, ruleSet: 'keystone_default_roles' };

/** Is `ctx` allowed to perform `action` on an object owned by `target.projectId`? */
export function authorize(action: string, ctx: AuthContext, target: PolicyTarget, opts: PolicyOptions): boolean {
  const policy = compile(opts);
  if (!policy.rules.has(action) || !action.startsWith(`${POLICY_PREFIX}:`)) throw new PolicyNotRegisteredError(action);
  return new Evaluation(policy, ctx, target).rule(action, 0);
}

/** May `ctx` list `object`s of every project (the get_all-global check)? */
export function canListGlobally(object: GlobalListObject, ctx: AuthContext, opts: PolicyOptions = DEFAULT_OPTIONS): boolean {
  return authorize(policyAction(object, 'get_all-global'), ctx, { projectId: ctx.projectId }, opts);
}

/** All registered action names. */
export function listPolicyActions(): string[] {
  return Object.keys(ACTION_RULES);
}

/** Options matching a tempest `[load_balancer] RBAC_test_type`. */
export function policyOptionsForTempestRbacType(
  type: 'advanced' | 'keystone_default_roles' | 'owner_or_admin',
): Required<PolicyOptions> {
  switch (type) {
    case 'advanced':
      return { ruleSet: 'advanced', enforceNewDefaults: false };
    case 'keystone_default_roles':
      return { ruleSet: 'keystone_default_roles', enforceNewDefaults: true };
    case 'owner_or_admin':
      return { ruleSet: 'admin_or_owner', enforceNewDefaults: false };
  }
}

export class PolicyEnforcer {
  readonly options: Required<PolicyOptions>;

  constructor(opts: Partial<PolicyOptions> = {}) {
    this.options = {
      enforceNewDefaults: opts.enforceNewDefaults ?? false,
      ruleSet: opts.ruleSet ?? 'keystone_default_roles',
    };
    compile(this.options); // fail at start-up, not on the first request, if the tables are broken
  }

  /** true/false; throws PolicyNotRegisteredError for an unknown action. */
  check(action: string, ctx: AuthContext, target: PolicyTarget): boolean {
    return authorize(action, ctx, target, this.options);
  }

  /** Throws PolicyForbiddenError (403) unless allowed. */
  enforce(action: string, ctx: AuthContext, target: PolicyTarget): void {
    if (!this.check(action, ctx, target)) throw new PolicyForbiddenError(action);
  }

  canListGlobally(object: GlobalListObject, ctx: AuthContext): boolean {
    return canListGlobally(object, ctx, this.options);
  }

  /**
   * Octavia's _auth_get_all: the project filter for a list request. Returns null (= all projects) for
   * callers passing get_all-global without ?project_id, the requested project when given, else the
   * caller's own project after checking get_all on it. Throws PolicyForbiddenError when the caller
   * asks for another project, or has no project and no global right.
   */
  scopeForList(object: GlobalListObject, ctx: AuthContext, requestedProjectId: string | null | undefined): string | null {
    // As in Octavia, an empty ?project_id= is a (non-matching) project id, not "absent".
    const requested = requestedProjectId === undefined ? null : requestedProjectId;
    if (this.check(policyAction(object, 'get_all-global'), ctx, { projectId: requested })) return requested;
    const projectId = requested ?? ctx.projectId;
    if (projectId === null) throw new PolicyForbiddenError(policyAction(object, 'get_all'));
    this.enforce(policyAction(object, 'get_all'), ctx, { projectId });
    return projectId;
  }
}
