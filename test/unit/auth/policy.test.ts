import { describe, expect, it } from 'vitest';
import type { AuthContext } from '../../../api/auth/auth-context.ts';
import {
  authorize,
  canListGlobally,
  effectiveRuleStrings,
  listPolicyActions,
  parseCheck,
  PolicyEnforcer,
  PolicyForbiddenError,
  PolicyNotRegisteredError,
  type PolicyOptions,
  policyOptionsForTempestRbacType,
} from '../../../api/auth/policy.ts';

// ---------------------------------------------------------------------------------------------
// Personas. The target object is always owned by project P1.
const P1 = 'p1-owner-project';
const OTHER = 'p2-other-project';

const persona = (roles: string[], projectId: string | null, extra: Partial<AuthContext> = {}): AuthContext => ({
  projectId,
  userId: 'u',
  roles,
  isAdmin: false,
  authStrategy: 'keystone',
  ...extra,
});

const PERSONAS = {
  // Keystone default roles (tokens carry implied roles: admin ⊃ member ⊃ reader).
  admin: persona(['admin', 'member', 'reader'], OTHER, { isAdmin: true }),
  memberOwner: persona(['member', 'reader'], P1),
  memberOther: persona(['member', 'reader'], OTHER),
  readerOwner: persona(['reader'], P1),
  readerOther: persona(['reader'], OTHER),
  // Deprecated load-balancer_* roles, as tempest's advanced RBAC users have them.
  globalObserver: persona(['load-balancer_global_observer', 'reader'], OTHER),
  quotaAdmin: persona(['load-balancer_quota_admin'], OTHER),
  lbMemberOwner: persona(['load-balancer_member'], P1),
  lbMemberOther: persona(['load-balancer_member'], OTHER),
  lbObserverOwner: persona(['load-balancer_observer', 'reader'], P1),
  lbAdmin: persona(['load-balancer_admin'], OTHER),
  // The peers' demo user: member + load-balancer_member (+ implied reader).
  demoOwner: persona(['member', 'load-balancer_member', 'reader'], P1),
  service: persona(['service'], 'service-project'),
  noRolesOwner: persona([], P1),
  noauth: persona([], null, { isAdmin: true, authStrategy: 'noauth' }),
} satisfies Record<string, AuthContext>;
type Persona = keyof typeof PERSONAS;
const ALL = Object.keys(PERSONAS) as Persona[];

// ---------------------------------------------------------------------------------------------
// Action → rule category, written out from contract §3 (independently of api/auth/policy.ts).
type Category = 'read' | 'read-global' | 'write' | 'admin' | 'read-quota' | 'read-quota-global' | 'write-quota' | 'member-read';

const A = (object: string, action: string) => `os_load-balancer_api:${object}:${action}`;
const EXPECTED_ACTIONS: Record<string, Category> = {
  [A('loadbalancer', 'get_all')]: 'read',
  [A('loadbalancer', 'get_all-global')]: 'read-global',
  [A('loadbalancer', 'post')]: 'write',
  [A('loadbalancer', 'post:vip_sg_ids')]: 'write',
  [A('loadbalancer', 'get_one')]: 'read',
  [A('loadbalancer', 'put')]: 'write',
  [A('loadbalancer', 'put:vip_sg_ids')]: 'write',
  [A('loadbalancer', 'delete')]: 'write',
  [A('loadbalancer', 'get_stats')]: 'read',
  [A('loadbalancer', 'get_status')]: 'read',
  [A('loadbalancer', 'put_failover')]: 'admin',
  [A('listener', 'get_all')]: 'read',
  [A('listener', 'get_all-global')]: 'read-global',
  [A('listener', 'post')]: 'write',
  [A('listener', 'get_one')]: 'read',
  [A('listener', 'put')]: 'write',
  [A('listener', 'delete')]: 'write',
  [A('listener', 'get_stats')]: 'read',
  [A('pool', 'get_all')]: 'read',
  [A('pool', 'get_all-global')]: 'read-global',
  [A('pool', 'post')]: 'write',
  [A('pool', 'get_one')]: 'read',
  [A('pool', 'put')]: 'write',
  [A('pool', 'delete')]: 'write',
  [A('member', 'get_all')]: 'member-read',
  [A('member', 'post')]: 'write',
  [A('member', 'get_one')]: 'read',
  [A('member', 'put')]: 'write',
  [A('member', 'delete')]: 'write',
  [A('healthmonitor', 'get_all')]: 'read',
  [A('healthmonitor', 'get_all-global')]: 'read-global',
  [A('healthmonitor', 'post')]: 'write',
  [A('healthmonitor', 'get_one')]: 'read',
  [A('healthmonitor', 'put')]: 'write',
  [A('healthmonitor', 'delete')]: 'write',
  [A('l7policy', 'get_all')]: 'read',
  [A('l7policy', 'get_all-global')]: 'read-global',
  [A('l7policy', 'post')]: 'write',
  [A('l7policy', 'get_one')]: 'read',
  [A('l7policy', 'put')]: 'write',
  [A('l7policy', 'delete')]: 'write',
  [A('l7rule', 'get_all')]: 'read',
  [A('l7rule', 'post')]: 'write',
  [A('l7rule', 'get_one')]: 'read',
  [A('l7rule', 'put')]: 'write',
  [A('l7rule', 'delete')]: 'write',
  [A('quota', 'get_all')]: 'read-quota',
  [A('quota', 'get_all-global')]: 'read-quota-global',
  [A('quota', 'get_one')]: 'read-quota',
  [A('quota', 'put')]: 'write-quota',
  [A('quota', 'delete')]: 'write-quota',
  [A('quota', 'get_defaults')]: 'read-quota',
  [A('provider', 'get_all')]: 'read',
  [A('provider-flavor', 'get_all')]: 'admin',
  [A('provider-availability-zone', 'get_all')]: 'admin',
  [A('flavor', 'get_all')]: 'read',
  [A('flavor', 'post')]: 'admin',
  [A('flavor', 'get_one')]: 'read',
  [A('flavor', 'put')]: 'admin',
  [A('flavor', 'delete')]: 'admin',
  [A('flavor-profile', 'get_all')]: 'admin',
  [A('flavor-profile', 'post')]: 'admin',
  [A('flavor-profile', 'get_one')]: 'admin',
  [A('flavor-profile', 'put')]: 'admin',
  [A('flavor-profile', 'delete')]: 'admin',
  [A('availability-zone', 'get_all')]: 'read',
  [A('availability-zone', 'post')]: 'admin',
  [A('availability-zone', 'get_one')]: 'read',
  [A('availability-zone', 'put')]: 'admin',
  [A('availability-zone', 'delete')]: 'admin',
  [A('availability-zone-profile', 'get_all')]: 'admin',
  [A('availability-zone-profile', 'post')]: 'admin',
  [A('availability-zone-profile', 'get_one')]: 'admin',
  [A('availability-zone-profile', 'put')]: 'admin',
  [A('availability-zone-profile', 'delete')]: 'admin',
  [A('amphora', 'get_all')]: 'admin',
  [A('amphora', 'get_one')]: 'admin',
  [A('amphora', 'delete')]: 'admin',
  [A('amphora', 'put_config')]: 'admin',
  [A('amphora', 'put_failover')]: 'admin',
  [A('amphora', 'get_stats')]: 'admin',
};

// ---------------------------------------------------------------------------------------------
// Who passes each category, per configuration (derived by hand from Octavia's rules).
type Matrix = Record<Category, Persona[]>;

const withExtra = (base: Persona[], ...extra: Persona[]): Persona[] => [...base, ...extra];

// keystone_default_roles, enforceNewDefaults=true: only admin/member/reader (+ noauth's forced is_admin).
// (lbObserverOwner passes through the `reader` role it also holds, not through load-balancer_observer.)
const NEW_READ: Persona[] = ['admin', 'memberOwner', 'readerOwner', 'lbObserverOwner', 'demoOwner', 'noauth'];
const NEW_DEFAULTS: Matrix = {
  read: NEW_READ,
  'read-global': ['admin', 'noauth'],
  write: ['admin', 'memberOwner', 'demoOwner', 'noauth'],
  admin: ['admin', 'noauth'],
  'read-quota': NEW_READ,
  'read-quota-global': ['admin', 'noauth'],
  'write-quota': ['admin', 'noauth'],
  'member-read': withExtra(NEW_READ, 'service'),
};

// keystone_default_roles, enforceNewDefaults=false (the reference's setting): new OR deprecated roles.
const COMPAT_READ: Persona[] = [
  'admin', 'memberOwner', 'readerOwner', 'globalObserver', 'lbMemberOwner', 'lbObserverOwner', 'lbAdmin', 'demoOwner', 'noauth',
];
const COMPAT: Matrix = {
  read: COMPAT_READ,
  'read-global': ['admin', 'globalObserver', 'lbAdmin', 'noauth'],
  write: ['admin', 'memberOwner', 'lbMemberOwner', 'lbAdmin', 'demoOwner', 'noauth'],
  admin: ['admin', 'lbAdmin', 'noauth'],
  'read-quota': withExtra(COMPAT_READ, 'quotaAdmin'),
  'read-quota-global': ['admin', 'globalObserver', 'quotaAdmin', 'lbAdmin', 'noauth'],
  'write-quota': ['admin', 'quotaAdmin', 'lbAdmin', 'noauth'],
  'member-read': withExtra(COMPAT_READ, 'service'),
};

// advanced RBAC policy file: a load-balancer_* role is required; plain member/reader get nothing.
const ADV_READ: Persona[] = ['admin', 'globalObserver', 'lbMemberOwner', 'lbObserverOwner', 'lbAdmin', 'demoOwner', 'noauth'];
const ADVANCED: Matrix = {
  read: ADV_READ,
  'read-global': ['admin', 'globalObserver', 'lbAdmin', 'noauth'],
  write: ['admin', 'lbMemberOwner', 'lbAdmin', 'demoOwner', 'noauth'],
  admin: ['admin', 'lbAdmin', 'noauth'],
  'read-quota': withExtra(ADV_READ, 'quotaAdmin'),
  'read-quota-global': ['admin', 'globalObserver', 'quotaAdmin', 'lbAdmin', 'noauth'],
  'write-quota': ['admin', 'quotaAdmin', 'lbAdmin', 'noauth'],
  'member-read': withExtra(ADV_READ, 'service'),
};

// admin_or_owner policy file: any role in the owning project, or an admin.
const OWNER_READ: Persona[] = [
  'admin', 'memberOwner', 'readerOwner', 'lbMemberOwner', 'lbObserverOwner', 'lbAdmin', 'demoOwner', 'noRolesOwner', 'noauth',
];
const ADMIN_OR_OWNER: Matrix = {
  read: OWNER_READ,
  'read-global': ['admin', 'lbAdmin', 'noauth'],
  write: OWNER_READ,
  admin: ['admin', 'lbAdmin', 'noauth'],
  'read-quota': OWNER_READ,
  'read-quota-global': ['admin', 'lbAdmin', 'noauth'],
  'write-quota': ['admin', 'lbAdmin', 'noauth'],
  'member-read': withExtra(OWNER_READ, 'service'),
};

const CONFIGS: Array<{ name: string; opts: PolicyOptions; matrix: Matrix }> = [
  { name: 'default rules, enforceNewDefaults=false', opts: { enforceNewDefaults: false }, matrix: COMPAT },
  { name: 'default rules, enforceNewDefaults=true', opts: { enforceNewDefaults: true }, matrix: NEW_DEFAULTS },
  { name: 'advanced RBAC', opts: { enforceNewDefaults: false, ruleSet: 'advanced' }, matrix: ADVANCED },
  { name: 'advanced RBAC, enforceNewDefaults=true', opts: { enforceNewDefaults: true, ruleSet: 'advanced' }, matrix: ADVANCED },
  { name: 'admin_or_owner', opts: { enforceNewDefaults: false, ruleSet: 'admin_or_owner' }, matrix: ADMIN_OR_OWNER },
];

const CASES = CONFIGS.flatMap((cfg) =>
  Object.entries(EXPECTED_ACTIONS).map(([action, category]) => ({ cfg: cfg.name, opts: cfg.opts, action, category, expected: cfg.matrix[category] })),
);

describe('policy matrix (contract §3)', () => {
  it('registers exactly the actions of the contract', () => {
    expect([...listPolicyActions()].sort()).toEqual(Object.keys(EXPECTED_ACTIONS).sort());
  });

  it.each(CASES)('$cfg: $action ($category)', ({ opts, action, expected }) => {
    const allowed = ALL.filter((p) => authorize(action, PERSONAS[p], { projectId: P1 }, opts));
    expect(allowed.sort()).toEqual([...expected].sort());
  });
});

describe('policy details', () => {
  const compat: PolicyOptions = { enforceNewDefaults: false };
  const strict: PolicyOptions = { enforceNewDefaults: true };

  it('the deprecated load-balancer_member role counts only while enforceNewDefaults is false', () => {
    const ctx = PERSONAS.lbMemberOwner;
    expect(authorize(A('loadbalancer', 'post'), ctx, { projectId: P1 }, compat)).toBe(true);
    expect(authorize(A('loadbalancer', 'post'), ctx, { projectId: P1 }, strict)).toBe(false);
    // ...and still only for the owner.
    expect(authorize(A('loadbalancer', 'post'), PERSONAS.lbMemberOther, { projectId: P1 }, compat)).toBe(false);
  });

  it('compares roles case-insensitively like oslo.policy', () => {
    const ctx = persona(['Load-Balancer_Member'], P1);
    expect(authorize(A('pool', 'put'), ctx, { projectId: P1 }, compat)).toBe(true);
  });

  it('never treats a missing project as ownership', () => {
    const noProject = persona(['member', 'reader'], null);
    expect(authorize(A('loadbalancer', 'get_one'), noProject, { projectId: null }, compat)).toBe(false);
    expect(authorize(A('loadbalancer', 'get_one'), PERSONAS.memberOwner, { projectId: null }, compat)).toBe(false);
    expect(authorize(A('loadbalancer', 'get_one'), persona(['member'], ''), { projectId: '' }, compat)).toBe(false);
  });

  it('honours the isAdmin flag (noauth) through is_admin:True only', () => {
    const forced = persona([], 'x', { isAdmin: true });
    expect(authorize(A('amphora', 'delete'), forced, { projectId: P1 }, strict)).toBe(true);
    // admin role without the flag is still admin (context_is_admin)
    expect(authorize(A('amphora', 'delete'), persona(['admin'], 'x'), { projectId: P1 }, strict)).toBe(true);
    // load-balancer_admin makes context_is_admin pass in compat mode only
    expect(authorize(A('amphora', 'delete'), PERSONAS.lbAdmin, { projectId: P1 }, compat)).toBe(true);
    expect(authorize(A('amphora', 'delete'), PERSONAS.lbAdmin, { projectId: P1 }, strict)).toBe(false);
  });

  it('throws PolicyNotRegisteredError for unknown actions and base rule names', () => {
    expect(() => authorize(A('loadbalancer', 'explode'), PERSONAS.admin, { projectId: P1 }, compat)).toThrow(PolicyNotRegisteredError);
    expect(() => authorize('load-balancer:read', PERSONAS.admin, { projectId: P1 }, compat)).toThrow(PolicyNotRegisteredError);
  });

  it('ORs the deprecated rules only when enforceNewDefaults is false and never into overridden rules', () => {
    expect(effectiveRuleStrings(strict)['load-balancer:member_and_owner']).toBe('rule:project-member');
    expect(effectiveRuleStrings(compat)['load-balancer:member_and_owner']).toBe(
      '(rule:project-member) or (role:load-balancer_member and rule:load-balancer:owner)',
    );
    expect(effectiveRuleStrings({ enforceNewDefaults: false, ruleSet: 'advanced' })['load-balancer:member_and_owner']).toBe(
      'role:load-balancer_member and rule:load-balancer:owner',
    );
  });

  it('maps tempest RBAC test types to options', () => {
    expect(policyOptionsForTempestRbacType('advanced')).toEqual({ ruleSet: 'advanced', enforceNewDefaults: false });
    expect(policyOptionsForTempestRbacType('keystone_default_roles')).toEqual({
      ruleSet: 'keystone_default_roles',
      enforceNewDefaults: true,
    });
    expect(policyOptionsForTempestRbacType('owner_or_admin')).toEqual({ ruleSet: 'admin_or_owner', enforceNewDefaults: false });
  });
});

describe('PolicyEnforcer', () => {
  const enforcer = new PolicyEnforcer();

  it('defaults to the reference configuration (default rules, enforceNewDefaults=false)', () => {
    expect(enforcer.options).toEqual({ enforceNewDefaults: false, ruleSet: 'keystone_default_roles' });
  });

  it('enforce() passes silently when allowed and throws a 403 fault when not', () => {
    expect(() => enforcer.enforce(A('loadbalancer', 'get_one'), PERSONAS.memberOwner, { projectId: P1 })).not.toThrow();
    let err: unknown;
    try {
      enforcer.enforce(A('loadbalancer', 'get_one'), PERSONAS.memberOther, { projectId: P1 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PolicyForbiddenError);
    expect(err).toMatchObject({
      httpStatus: 403,
      faultstring: 'Policy does not allow this request to be performed.',
      message: 'Policy does not allow this request to be performed.',
      action: A('loadbalancer', 'get_one'),
    });
  });

  it('canListGlobally() is the get_all-global check', () => {
    expect(enforcer.canListGlobally('loadbalancer', PERSONAS.admin)).toBe(true);
    expect(enforcer.canListGlobally('pool', PERSONAS.globalObserver)).toBe(true);
    expect(enforcer.canListGlobally('quota', PERSONAS.quotaAdmin)).toBe(true);
    expect(enforcer.canListGlobally('loadbalancer', PERSONAS.quotaAdmin)).toBe(false);
    expect(enforcer.canListGlobally('listener', PERSONAS.memberOwner)).toBe(false);
    expect(canListGlobally('healthmonitor', PERSONAS.globalObserver, { enforceNewDefaults: true })).toBe(false);
    expect(canListGlobally('l7policy', PERSONAS.noauth)).toBe(true);
  });

  describe('scopeForList (Octavia _auth_get_all)', () => {
    it('global callers see every project unless they ask for one', () => {
      expect(enforcer.scopeForList('loadbalancer', PERSONAS.admin, undefined)).toBeNull();
      expect(enforcer.scopeForList('loadbalancer', PERSONAS.admin, null)).toBeNull();
      expect(enforcer.scopeForList('loadbalancer', PERSONAS.admin, P1)).toBe(P1);
      expect(enforcer.scopeForList('pool', PERSONAS.noauth, undefined)).toBeNull();
    });

    it('other callers are confined to their own project', () => {
      expect(enforcer.scopeForList('loadbalancer', PERSONAS.memberOwner, undefined)).toBe(P1);
      expect(enforcer.scopeForList('loadbalancer', PERSONAS.readerOwner, P1)).toBe(P1);
      expect(() => enforcer.scopeForList('loadbalancer', PERSONAS.memberOwner, OTHER)).toThrow(PolicyForbiddenError);
      expect(() => enforcer.scopeForList('listener', persona(['member', 'reader'], null), undefined)).toThrow(PolicyForbiddenError);
      expect(() => enforcer.scopeForList('pool', PERSONAS.noRolesOwner, undefined)).toThrow(PolicyForbiddenError);
      expect(() => enforcer.scopeForList('loadbalancer', PERSONAS.memberOwner, '')).toThrow(PolicyForbiddenError);
    });

    it('quota lists use the quota rules', () => {
      expect(enforcer.scopeForList('quota', PERSONAS.quotaAdmin, undefined)).toBeNull();
      expect(enforcer.scopeForList('quota', PERSONAS.readerOwner, undefined)).toBe(P1);
    });
  });

  it('the advanced rule set refuses a plain member (tempest os_primary) but admits load-balancer_member', () => {
    const adv = new PolicyEnforcer(policyOptionsForTempestRbacType('advanced'));
    expect(() => adv.scopeForList('loadbalancer', PERSONAS.memberOwner, undefined)).toThrow(PolicyForbiddenError);
    expect(adv.scopeForList('loadbalancer', PERSONAS.lbMemberOwner, undefined)).toBe(P1);
  });
});

describe('parseCheck', () => {
  it('gives "and" precedence over "or" and supports not/parentheses', () => {
    expect(parseCheck('role:a or role:b and role:c')).toEqual({
      t: 'or',
      of: [{ t: 'role', role: 'a' }, { t: 'and', of: [{ t: 'role', role: 'b' }, { t: 'role', role: 'c' }] }],
    });
    expect(parseCheck('not (role:a or @)')).toEqual({ t: 'not', of: { t: 'or', of: [{ t: 'role', role: 'a' }, { t: 'true' }] } });
    expect(parseCheck('project_id:%(project_id)s')).toEqual({ t: 'generic', cred: 'project_id', targetKey: 'project_id' });
    expect(parseCheck('is_admin:True')).toEqual({ t: 'is_admin', expected: true });
  });

  it.each(['', 'role:', '(role:a', 'role:a or', 'frob:x', 'project_id:%(user_id)s', 'role:a role:b'])('rejects %j', (text) => {
    expect(() => parseCheck(text)).toThrow(/Invalid policy check string/);
  });
});
