/**
 * Statement reviews in the audit log: `review.created|approved|denied|expired|withdrawn`, actor =
 * who acted (the gateway for timeouts and ended sessions), subject = the review id.
 */
import type { AuditAppender } from '../audit/log.js';
import type { Logger } from '../obs/log.js';
import type { ReviewEvent, ReviewEvents } from './events.js';
import type { Review } from './repository.js';

export function auditReviewEvents(events: ReviewEvents, audit: AuditAppender, log: Logger): () => void {
  return events.on((e) => {
    audit
      .append({ type: e.type, actor: actorOf(e), subject: e.review.id, data: { ...reviewData(e.review), ...extra(e) } })
      .catch((err: unknown) => log.error({ err, event: e.type }, 'cannot write a review event to the audit log'));
  });
}

function actorOf(e: ReviewEvent): string {
  switch (e.type) {
    case 'review.created':
      return e.review.user;
    case 'review.approved':
      return e.approver;
    case 'review.denied':
      return e.by;
    case 'review.expired':
    case 'review.escalated':
      return 'gateway';
    case 'review.withdrawn':
      return e.by ?? 'gateway';
  }
}

function extra(e: ReviewEvent): Record<string, unknown> {
  switch (e.type) {
    case 'review.approved':
      return { comment: e.comment, final: e.final };
    case 'review.denied':
      return { comment: e.comment };
    case 'review.withdrawn':
      return { reason: e.reason };
    case 'review.escalated':
      return { to: e.to, waitedMs: e.waitedMs, approverGroups: e.review.approverGroups };
    default:
      return {};
  }
}

function reviewData(r: Review) {
  return {
    session: r.sessionId,
    user: r.user,
    connection: r.connection,
    statement: r.statement.length > 1024 ? `${r.statement.slice(0, 1024)}...` : r.statement,
    rule: r.rule,
    reasons: r.reasons,
    state: r.state,
    approvedBy: r.approvals.map((a) => a.approver),
  };
}
