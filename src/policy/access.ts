/**
 * Access policy: who may ask for which connection, for how long, and what it takes to be granted.
 *
 * Pure (config and facts in, decisions out; no store, no clock). Every decision carries stable reason
 * codes that the API returns, the store records and notifications repeat, plus a sentence for people.
 *
 * Matching: a policy applies to an identity on a connection when one of its `connections` patterns
 * matches the name (`*` any run of characters, `?` one character) and the identity is one of its
 * `users` or in one of its `groups` (`*` = any signed-in identity). Among the policies with an
 * `access` section that apply, the first in file order wins, so a file reads top-down like a firewall.
 * Nothing applies -> deny: there is no standing or default access (fail closed).
 */

import { formatDuration as formatMs } from '../core/duration.js';

export type ApprovalMode = 'auto' | 'required';

/** What a policy says about access requests (the `access:` section of a policy). */
export interface AccessRules {
  /** Longest grant a request may ask for. */
  maxDurationMs: number;
  /** `auto`: granted at once; `required`: approvers decide. */
  approval: ApprovalMode;
  /** Groups whose members may approve (any of them). */
  approvers: string[];
  /** Distinct approvals needed before the grant exists. */
  approvals: number;
  /** Whether the requester may approve their own request in an emergency (reason mandatory). */
  breakGlass: boolean;
  /** A pending request is closed as expired after this long. */
  pendingExpiryMs: number;
  /** Whether a request must say why. Break-glass always must. */
  requireReason: boolean;
  /** A request still pending after `afterMs` is escalated: a reminder, and the `to` groups may approve too. */
  escalate?: { afterMs: number; to: string[] };
}

export interface PolicyRule {
  name: string;
  /** Connection names or globs. */
  connections: string[];
  /** Groups whose members the policy applies to; '*' = everyone signed in. */
  groups: string[];
  /** Individual users the policy applies to, in addition to the groups. */
  users: string[];
  /** Absent: the policy says nothing about access (later issues add guardrails, masking). */
  access?: AccessRules;
}

export interface Who {
  user: string;
  groups: readonly string[];
  /** 'service': a service account or AI agent (never an approver). Absent: a person. */
  kind?: 'human' | 'service';
}

/** Stable reason codes. Never rename one: they are recorded and appear in notifications. */
export type AccessReason =
  // request
  | 'unknown_connection'
  | 'no_matching_policy'
  | 'duration_invalid'
  | 'duration_exceeds_max'
  | 'reason_required'
  | 'auto_approved'
  | 'approval_required'
  | 'break_glass'
  | 'break_glass_not_allowed'
  | 'break_glass_reason_required'
  // approval / denial
  | 'request_not_pending'
  | 'request_expired'
  | 'self_approval'
  | 'agent_cannot_approve'
  | 'not_an_approver'
  | 'already_approved'
  | 'approval_recorded'
  | 'approved'
  | 'denied_by_approver'
  | 'withdrawn_by_requester'
  | 'deny_reason_required'
  | 'not_allowed_to_deny'
  // revocation
  | 'grant_not_active'
  | 'not_allowed_to_revoke'
  | 'revoked_by_grantee'
  | 'revoked_by_admin'
  | 'revoked_by_approver';

export interface AccessDecision<E extends string> {
  effect: E;
  reasons: AccessReason[];
  /** One sentence for the person who asked. */
  message: string;
}

// ---------------------------------------------------------------------------------------------
// Matching

/** `*` matches any run of characters (including none), `?` exactly one; everything else is literal. */
export function globMatch(pattern: string, name: string): boolean {
  if (!pattern.includes('*') && !pattern.includes('?')) return pattern === name;
  const source = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`).test(name);
}

export function isGlob(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?');
}

export function policyCoversConnection(policy: PolicyRule, connection: string): boolean {
  return policy.connections.some((p) => globMatch(p, connection));
}

export function policyCoversIdentity(policy: PolicyRule, who: Who): boolean {
  return policy.users.includes(who.user) || policy.groups.includes('*') || policy.groups.some((g) => who.groups.includes(g));
}

/** The policy that decides `who`'s access requests for `connection`: the first access policy that applies. */
export function accessPolicyFor(
  policies: readonly PolicyRule[],
  who: Who,
  connection: string,
): (PolicyRule & { access: AccessRules }) | undefined {
  for (const p of policies) {
    if (p.access && policyCoversConnection(p, connection) && policyCoversIdentity(p, who)) {
      return p as PolicyRule & { access: AccessRules };
    }
  }
  return undefined;
}

/**
 * Groups that approve access to `connection` under any policy, whoever asks. Used for revocation
 * and visibility of grants that did not come from a request (admin-issued).
 */
export function approverGroupsFor(policies: readonly PolicyRule[], connection: string): string[] {
  const out = new Set<string>();
  for (const p of policies) {
    if (p.access && policyCoversConnection(p, connection)) for (const g of p.access.approvers) out.add(g);
  }
  return [...out];
}

export function inAnyGroup(who: Who, groups: readonly string[]): boolean {
  return groups.some((g) => who.groups.includes(g));
}

// ---------------------------------------------------------------------------------------------
// Requests

export interface RequestInput {
  policies: readonly PolicyRule[];
  /** Names of the configured connections. */
  connections: readonly string[];
  who: Who;
  connection: string;
  durationMs: number;
  reason: string;
  breakGlass: boolean;
}

export type RequestDecision =
  | (AccessDecision<'deny'> & { policy?: string })
  | (AccessDecision<'grant' | 'pending'> & { policy: string; rules: AccessRules; breakGlass: boolean });

export function decideRequest(input: RequestInput): RequestDecision {
  const { who, connection, durationMs } = input;
  const reason = input.reason.trim();
  if (!input.connections.includes(connection)) {
    return deny(['unknown_connection'], `connection "${connection}" does not exist`);
  }
  const policy = accessPolicyFor(input.policies, who, connection);
  if (!policy) {
    return deny(['no_matching_policy'], `no access policy lets ${who.user} request access to "${connection}"`);
  }
  const rules = policy.access;
  const denyHere = (reasons: AccessReason[], message: string) => deny(reasons, message, policy.name);
  if (!Number.isFinite(durationMs) || durationMs <= 0) {
    return denyHere(['duration_invalid'], 'the requested duration must be positive');
  }
  if (durationMs > rules.maxDurationMs) {
    return denyHere(
      ['duration_exceeds_max'],
      `policy "${policy.name}" allows at most ${formatMs(rules.maxDurationMs)} on "${connection}" (asked for ${formatMs(durationMs)})`,
    );
  }
  if (rules.approval === 'auto') {
    if (rules.requireReason && reason === '') {
      return denyHere(['reason_required'], `policy "${policy.name}" requires a reason`);
    }
    return {
      effect: 'grant',
      reasons: ['auto_approved'],
      message: `granted by policy "${policy.name}"`,
      policy: policy.name,
      rules,
      breakGlass: false,
    };
  }
  if (input.breakGlass) {
    if (!rules.breakGlass) {
      return denyHere(['break_glass_not_allowed'], `policy "${policy.name}" does not allow break-glass access to "${connection}"`);
    }
    if (reason === '') {
      return denyHere(['break_glass_reason_required'], 'break-glass access needs a reason');
    }
    return {
      effect: 'grant',
      reasons: ['break_glass'],
      message: `break-glass access granted under policy "${policy.name}"; approvers are notified`,
      policy: policy.name,
      rules,
      breakGlass: true,
    };
  }
  if (rules.requireReason && reason === '') {
    return denyHere(['reason_required'], `policy "${policy.name}" requires a reason`);
  }
  return {
    effect: 'pending',
    reasons: ['approval_required'],
    message: `needs ${rules.approvals} approval${rules.approvals === 1 ? '' : 's'} from ${rules.approvers.join(' or ')}`,
    policy: policy.name,
    rules,
    breakGlass: false,
  };
}

// ---------------------------------------------------------------------------------------------
// Approvals and denials. The request carries a snapshot of the rules it was created under, so a
// later config change does not silently change who may approve a pending request.

export interface PendingRequestFacts {
  user: string;
  state: string;
  /** Pending expiry (epoch ms). */
  expiresAt: number;
  approverGroups: readonly string[];
  approvalsRequired: number;
  breakGlassAllowed: boolean;
  /** Users who have approved so far. */
  approvedBy: readonly string[];
}

export interface ApprovalInput {
  request: PendingRequestFacts;
  approver: Who;
  now: number;
  /** Self-approval in an emergency; needs the policy's permission and a comment as the reason. */
  breakGlass?: boolean;
  comment?: string;
}

export type ApprovalDecision = AccessDecision<'approve' | 'refuse'> & { final: boolean; breakGlass: boolean };

export function decideApproval(input: ApprovalInput): ApprovalDecision {
  const { request, approver, now } = input;
  const refuse = (reasons: AccessReason[], message: string): ApprovalDecision => ({
    effect: 'refuse',
    reasons,
    message,
    final: false,
    breakGlass: false,
  });
  const stateCheck = pendingCheck(request, now);
  if (stateCheck) return refuse(...stateCheck);
  // A human decides: a service account or AI agent approves nothing, whatever its groups.
  if (approver.kind === 'service')
    return refuse(['agent_cannot_approve'], 'approvals are given by people; a service account or AI agent cannot approve');
  const comment = (input.comment ?? '').trim();
  if (approver.user === request.user) {
    if (!input.breakGlass) return refuse(['self_approval'], 'nobody approves their own request');
    if (!request.breakGlassAllowed)
      return refuse(['self_approval', 'break_glass_not_allowed'], 'the policy does not allow break-glass self-approval');
    if (comment === '') return refuse(['break_glass_reason_required'], 'break-glass self-approval needs a reason (--comment)');
    return {
      effect: 'approve',
      reasons: ['break_glass'],
      message: 'break-glass self-approval recorded; approvers are notified',
      final: true,
      breakGlass: true,
    };
  }
  if (!inAnyGroup(approver, request.approverGroups)) {
    return refuse(['not_an_approver'], `only members of ${request.approverGroups.join(' or ')} may approve this request`);
  }
  if (request.approvedBy.includes(approver.user)) {
    return refuse(['already_approved'], `${approver.user} has already approved this request`);
  }
  const count = request.approvedBy.length + 1;
  if (count >= request.approvalsRequired) {
    return { effect: 'approve', reasons: ['approved'], message: 'approved: access granted', final: true, breakGlass: false };
  }
  return {
    effect: 'approve',
    reasons: ['approval_recorded'],
    message: `approval recorded (${count} of ${request.approvalsRequired})`,
    final: false,
    breakGlass: false,
  };
}

export interface DenyInput {
  request: PendingRequestFacts;
  actor: Who;
  isAdmin: boolean;
  reason: string;
  now: number;
}

/** Approvers and admins deny; the requester may withdraw their own request. A reason is mandatory. */
export function decideDeny(input: DenyInput): AccessDecision<'deny' | 'withdraw' | 'refuse'> {
  const { request, actor, now } = input;
  const stateCheck = pendingCheck(request, now);
  if (stateCheck) return { effect: 'refuse', reasons: stateCheck[0], message: stateCheck[1] };
  if (input.reason.trim() === '') return { effect: 'refuse', reasons: ['deny_reason_required'], message: 'a denial needs a reason' };
  if (actor.user === request.user) return { effect: 'withdraw', reasons: ['withdrawn_by_requester'], message: 'request withdrawn' };
  if (input.isAdmin || inAnyGroup(actor, request.approverGroups)) {
    return { effect: 'deny', reasons: ['denied_by_approver'], message: 'request denied' };
  }
  return {
    effect: 'refuse',
    reasons: ['not_allowed_to_deny'],
    message: `only members of ${request.approverGroups.join(' or ')} may deny this request`,
  };
}

function pendingCheck(request: PendingRequestFacts, now: number): [AccessReason[], string] | undefined {
  if (request.state !== 'pending') return [['request_not_pending'], `the request is ${request.state}, not pending`];
  if (request.expiresAt <= now) return [['request_expired'], 'the request has expired; ask again'];
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Revocation

export interface RevokeInput {
  grant: { user: string; expiresAt: number; revokedAt: number | null };
  actor: Who;
  isAdmin: boolean;
  /** Groups that approve access to the grant's connection (request snapshot and current policy). */
  approverGroups: readonly string[];
  now: number;
}

export function decideRevoke(input: RevokeInput): AccessDecision<'revoke' | 'refuse'> {
  const { grant, actor } = input;
  if (grant.revokedAt !== null || grant.expiresAt <= input.now) {
    return {
      effect: 'refuse',
      reasons: ['grant_not_active'],
      message: `the grant is already ${grant.revokedAt !== null ? 'revoked' : 'expired'}`,
    };
  }
  if (input.isAdmin) return { effect: 'revoke', reasons: ['revoked_by_admin'], message: 'grant revoked' };
  if (inAnyGroup(actor, input.approverGroups)) return { effect: 'revoke', reasons: ['revoked_by_approver'], message: 'grant revoked' };
  if (actor.user === grant.user) return { effect: 'revoke', reasons: ['revoked_by_grantee'], message: 'grant revoked' };
  return {
    effect: 'refuse',
    reasons: ['not_allowed_to_revoke'],
    message: 'only the grantee, an approver of this connection or an administrator may revoke this grant',
  };
}

// ---------------------------------------------------------------------------------------------

function deny(reasons: AccessReason[], message: string, policy?: string): RequestDecision {
  return { effect: 'deny', reasons, message, ...(policy !== undefined ? { policy } : {}) };
}
