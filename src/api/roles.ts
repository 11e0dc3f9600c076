/**
 * The four roles of the HTTP API and the console, derived from groups:
 *   requester  everyone signed in (asks for access, sees their own sessions);
 *   approver   member of a policy's approver groups (decides requests and held statements);
 *   auditor    member of audit.auditors (reads every session and the audit log);
 *   admin      member of identities.admins (everything, incl. configuration reads and kill).
 * Each route enforces its own rule; this module only answers "is this caller an X".
 */
import type { Identity } from '../core/types.js';
import type { PolicyRule } from '../policy/access.js';
import { HttpError } from './router.js';

export type ConsoleRole = 'requester' | 'approver' | 'auditor' | 'admin';

export interface RoleModel {
  isAdmin(who: Identity): boolean;
  isAuditor(who: Identity): boolean;
  isApprover(who: Identity): boolean;
  rolesOf(who: Identity): ConsoleRole[];
}

export function roleModel(o: {
  isAdmin: (who: Identity) => boolean;
  auditors: readonly string[];
  policies: readonly PolicyRule[];
}): RoleModel {
  const auditors = new Set(o.auditors);
  const approvers = new Set(o.policies.flatMap((p) => p.access?.approvers ?? []));
  const model: RoleModel = {
    isAdmin: o.isAdmin,
    isAuditor: (who) => who.groups.some((g) => auditors.has(g)),
    isApprover: (who) => who.groups.some((g) => approvers.has(g)),
    rolesOf: (who) => {
      const roles: ConsoleRole[] = ['requester'];
      if (model.isApprover(who)) roles.push('approver');
      if (model.isAuditor(who)) roles.push('auditor');
      if (model.isAdmin(who)) roles.push('admin');
      return roles;
    },
  };
  return model;
}

/** 403 unless the caller has one of `roles` (admins always pass). */
export function requireRole(model: RoleModel, who: Identity, roles: ReadonlyArray<'auditor' | 'admin' | 'approver'>): void {
  if (model.isAdmin(who)) return;
  if (roles.includes('auditor') && model.isAuditor(who)) return;
  if (roles.includes('approver') && model.isApprover(who)) return;
  const who_ = [...new Set([...roles, 'admin'])].map((r) => `${r}s`);
  throw new HttpError(403, 'forbidden', `only ${who_.join(' or ')} may do this`);
}
