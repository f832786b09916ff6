import type { L7Policy } from '../../../common/amphora-config/index.ts';
import { compileRule, type L7Connection, type L7Request, type RuleMatcher } from './rules.ts';

/** What the first matching policy tells the frontend to do with a request. */
export type L7Decision =
  | { action: 'REJECT'; policyId: string }
  | { action: 'REDIRECT'; policyId: string; status: number; location: (req: L7Request & { target: string }) => string }
  | { action: 'POOL'; policyId: string; poolId: string };

interface CompiledPolicy {
  id: string;
  rules: RuleMatcher[];
  decision: L7Decision;
}

/**
 * A listener's L7 policies in position order. A policy applies when all of its enabled rules match (rules
 * are ANDed); disabled policies and policies without an enabled rule never apply, as in Octavia.
 */
export class L7PolicySet {
  private readonly policies: CompiledPolicy[];

  constructor(policies: readonly L7Policy[]) {
    this.policies = [...policies]
      .filter((p) => p.enabled)
      .sort((a, b) => a.position - b.position)
      .map((p) => ({ id: p.id, rules: p.rules.filter((r) => r.enabled).map(compileRule), decision: decisionOf(p) }))
      .filter((p) => p.rules.length > 0);
  }

  get empty(): boolean {
    return this.policies.length === 0;
  }

  evaluate(req: L7Request, conn: L7Connection | null = null): L7Decision | null {
    for (const policy of this.policies) {
      if (policy.rules.every((matches) => matches(req, conn))) return policy.decision;
    }
    return null;
  }
}

function decisionOf(policy: L7Policy): L7Decision {
  const status = policy.redirectHttpCode ?? 302;
  switch (policy.action) {
    case 'REJECT':
      return { action: 'REJECT', policyId: policy.id };
    case 'REDIRECT_TO_POOL':
      return { action: 'POOL', policyId: policy.id, poolId: policy.redirectPoolId as string };
    case 'REDIRECT_TO_URL': {
      const url = policy.redirectUrl as string;
      return { action: 'REDIRECT', policyId: policy.id, status, location: () => url };
    }
    case 'REDIRECT_TO_PREFIX': {
      const prefix = (policy.redirectPrefix as string).replace(/\/+$/, '');
      return { action: 'REDIRECT', policyId: policy.id, status, location: (req) => prefix + originForm(req.target) };
    }
  }
}

function originForm(target: string): string {
  if (target.startsWith('/')) return target;
  const scheme = target.indexOf('://');
  if (scheme < 0) return '/';
  const slash = target.indexOf('/', scheme + 3);
  return slash < 0 ? '/' : target.slice(slash);
}
