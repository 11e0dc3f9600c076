/**
 * Statement reviews as webhook notifications: kind `review` when a statement is held (approvers
 * are asked), `review_decision` when it is approved, denied, timed out or withdrawn. Delivery,
 * signing and retries are the notifier's (notify/webhooks.ts).
 */
import { formatDuration } from '../core/duration.js';
import type { NotificationEventKind } from '../config/types.js';
import type { WebhookNotifier } from '../notify/webhooks.js';
import type { ReviewEvent, ReviewEvents } from './events.js';
import type { Review } from './repository.js';

export function notifyReviewEvents(events: ReviewEvents, notifier: WebhookNotifier): () => void {
  return events.on((e) => {
    const kind: NotificationEventKind =
      e.type === 'review.created' ? 'review' : e.type === 'review.escalated' ? 'escalation' : 'review_decision';
    notifier.enqueue(kind, e.type, (format, id) =>
      format === 'slack' ? { text: `${ICON[e.type]} jitgate: ${escapeSlack(reviewSummary(e))}` } : reviewPayload(id, kind, e),
    );
  });
}

function reviewPayload(id: string, kind: NotificationEventKind, e: ReviewEvent) {
  const base = { id, type: e.type, kind, at: new Date(e.at).toISOString(), summary: reviewSummary(e), review: reviewData(e.review) };
  switch (e.type) {
    case 'review.created':
    case 'review.expired':
      return base;
    case 'review.approved':
      return { ...base, actor: e.approver, comment: e.comment, final: e.final };
    case 'review.denied':
      return { ...base, actor: e.by, comment: e.comment };
    case 'review.withdrawn':
      return { ...base, actor: e.by, reason: e.reason };
    case 'review.escalated':
      return { ...base, to: e.to, waitedMs: e.waitedMs };
  }
}

function reviewData(r: Review) {
  return {
    id: r.id,
    sessionId: r.sessionId,
    user: r.user,
    connection: r.connection,
    statement: r.statement,
    rule: r.rule,
    reasons: r.reasons,
    what: r.what,
    state: r.state,
    approverGroups: r.approverGroups,
    approvalsRequired: r.approvalsRequired,
    approvedBy: r.approvals.map((a) => a.approver),
    createdAt: new Date(r.createdAt).toISOString(),
    expiresAt: new Date(r.expiresAt).toISOString(),
  };
}

/** One line for people (Slack text, and `summary` in JSON). */
export function reviewSummary(e: ReviewEvent): string {
  const r = e.review;
  const id = r.id.slice(0, 8);
  const statement = r.statement.length > 200 ? `${r.statement.slice(0, 200)}…` : r.statement;
  switch (e.type) {
    case 'review.created':
      return `${r.user} on ${r.connection} waits for approval of: ${statement} (rule ${r.rule}: ${r.what}; needs ${r.approvalsRequired} from ${r.approverGroups.join(' or ')} within ${formatDuration(r.timeoutMs)}; review ${id})`;
    case 'review.approved':
      return `${e.approver} approved ${r.user}'s statement on ${r.connection} (${r.approvals.length} of ${r.approvalsRequired})${e.final ? ': it runs now' : ''} (review ${id})`;
    case 'review.denied':
      return `${e.by} denied ${r.user}'s statement on ${r.connection}${e.comment ? `: ${e.comment}` : ''} (review ${id})`;
    case 'review.expired':
      return `${r.user}'s statement on ${r.connection} timed out without a decision (review ${id})`;
    case 'review.escalated':
      return `REMINDER: ${r.user}'s statement on ${r.connection} has waited ${formatDuration(e.waitedMs)} for approval; ${e.to.join(' or ')} may now approve it too: ${statement} (review ${id})`;
    case 'review.withdrawn':
      return `${r.user}'s statement on ${r.connection} was withdrawn: ${e.reason} (review ${id})`;
  }
}

const ICON: Record<ReviewEvent['type'], string> = {
  'review.created': ':hourglass_flowing_sand:',
  'review.approved': ':white_check_mark:',
  'review.denied': ':no_entry:',
  'review.expired': ':hourglass:',
  'review.escalated': ':alarm_clock:',
  'review.withdrawn': ':leftwards_arrow_with_hook:',
};

/** Slack mrkdwn: &, < and > are control characters and must be escaped in user text. */
function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
