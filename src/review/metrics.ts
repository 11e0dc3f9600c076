/**
 * Statement reviews' decisions into the approval metrics (access/approval-metrics.ts): time from hold
 * to decision by review rule and outcome, and holds that expired with nobody deciding.
 */
import type { ApprovalMetrics, ApprovalOutcome } from '../access/approval-metrics.js';
import type { ReviewEvent, ReviewEvents } from './events.js';

export function watchReviewDecisions(events: ReviewEvents, metrics: ApprovalMetrics): () => void {
  return events.on((e) => {
    const outcome = reviewOutcome(e);
    if (!outcome) return;
    const r = e.review;
    metrics.decided({ kind: 'statement', connection: r.connection, policy: r.rule, createdAt: r.createdAt }, outcome, e.at);
  });
}

function reviewOutcome(e: ReviewEvent): ApprovalOutcome | undefined {
  switch (e.type) {
    case 'review.approved':
      return e.final ? 'approved' : undefined;
    case 'review.denied':
      return 'denied';
    case 'review.withdrawn':
      return 'withdrawn';
    case 'review.expired':
      return 'expired';
    case 'review.created':
    case 'review.escalated':
      return undefined;
  }
}
