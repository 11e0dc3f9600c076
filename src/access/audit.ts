/**
 * The access workflow's events (requests, approvals, denials, grants, revocations, break-glass) as
 * audit entries: `access.<event type>`, actor = who acted, subject = the request or grant id.
 */
import type { AccessEvent, AccessEvents } from './events.js';
import type { Logger } from '../obs/log.js';
import type { AuditAppender } from '../audit/log.js';

export function auditAccessEvents(events: AccessEvents, audit: AuditAppender, log: Logger): () => void {
  return events.on((e) => {
    audit
      .append(accessAuditEntry(e))
      .catch((err: unknown) => log.error({ err, event: e.type }, 'cannot write an access event to the audit log'));
  });
}

/** The audit entry of an access event (also written by admin commands that create grants offline). */
export function accessAuditEntry(e: AccessEvent): { type: string; actor: string; subject: string; data: Record<string, unknown> } {
  const type = `access.${e.type}`;
  switch (e.type) {
    case 'request.created':
      return { type, actor: e.request.user, subject: e.request.id, data: requestData(e.request) };
    case 'request.approved':
      return { type, actor: e.approver, subject: e.request.id, data: { ...requestData(e.request), comment: e.comment, final: e.final } };
    case 'request.denied':
      return { type, actor: e.by, subject: e.request.id, data: { ...requestData(e.request), reason: e.reason } };
    case 'request.withdrawn':
      return { type, actor: e.request.user, subject: e.request.id, data: { ...requestData(e.request), reason: e.reason } };
    case 'request.expired':
      return { type, actor: 'gateway', subject: e.request.id, data: requestData(e.request) };
    case 'request.escalated':
      return {
        type,
        actor: 'gateway',
        subject: e.request.id,
        data: { ...requestData(e.request), to: e.to, waitedMs: e.waitedMs, approverGroups: e.request.approverGroups },
      };
    case 'grant.created':
      return { type, actor: e.grant.issuedBy ?? e.grant.approvedBy.at(-1) ?? 'policy', subject: e.grant.id, data: grantData(e.grant) };
    case 'grant.revoked':
      return { type, actor: e.by, subject: e.grant.id, data: { ...grantData(e.grant), reason: e.reason } };
    case 'break_glass.used':
      return { type, actor: e.request.user, subject: e.grant.id, data: { ...grantData(e.grant), requestId: e.request.id } };
  }
}

function requestData(r: {
  user: string;
  connection: string;
  reason: string;
  durationMs: number;
  state: string;
  policy: string;
  breakGlass: boolean;
}) {
  return {
    user: r.user,
    connection: r.connection,
    reason: r.reason,
    durationMs: r.durationMs,
    state: r.state,
    policy: r.policy,
    breakGlass: r.breakGlass,
  };
}

function grantData(g: {
  user: string;
  groups: string[];
  connection: string;
  reason: string;
  requestId: string | null;
  approvedBy: string[];
  breakGlass: boolean;
  expiresAt: number;
  issuedBy: string | null;
  policy: string | null;
}) {
  return {
    user: g.user,
    // The groups decide masking and guardrails for every session under the grant.
    groups: g.groups,
    connection: g.connection,
    reason: g.reason,
    requestId: g.requestId,
    approvedBy: g.approvedBy,
    breakGlass: g.breakGlass,
    expiresAt: g.expiresAt,
    issuedBy: g.issuedBy,
    policy: g.policy,
  };
}
