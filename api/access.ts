// RBAC checks of the API handlers, on top of the policy engine in auth/.
import { authorize } from './auth/policy.ts';
import { errors } from './errors.ts';
import type { Ctx } from './services.ts';

const PREFIX = 'os_load-balancer_api';

export function isAllowed(ctx: Ctx, object: string, action: string, projectId: string | null): boolean {
  return authorize(`${PREFIX}:${object}:${action}`, ctx.state.auth, { projectId }, ctx.state.services.config.policy);
}

/** 403 unless the caller may do `action` on `object` owned by `projectId`. */
export function enforce(ctx: Ctx, object: string, action: string, projectId: string | null): void {
  if (!isAllowed(ctx, object, action, projectId)) throw errors.forbidden();
}

/**
 * Which project a list is restricted to: none for admins and global observers (unless they ask
 * with ?project_id), the caller's own project for everyone else (403 if they ask for another).
 */
export function listScope(ctx: Ctx, object: string, requested: string | undefined): string | null {
  if (isAllowed(ctx, object, 'get_all-global', requested ?? null)) return requested ?? null;
  const projectId = requested ?? ctx.state.auth.projectId;
  if (!projectId) throw errors.forbidden();
  enforce(ctx, object, 'get_all', projectId);
  return projectId;
}
