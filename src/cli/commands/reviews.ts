/**
 * Statement reviews in the approver's verbs: `jitgate requests` lists statements held for
 * approval (who, where, the full statement, why it was flagged); `jitgate approve|deny ID` act on a
 * review when the id names one. Everything goes through the gateway's API (/api/reviews).
 */
import type { ApiClient } from '../api-client.js';
import { table } from '../format.js';
import type { CliIo } from '../io.js';
import { short, time } from './access-json.js';

/** As GET /api/reviews returns it (src/api/review-routes.ts). */
export interface ReviewJson {
  id: string;
  sessionId: string;
  user: string;
  connection: string;
  statement: string;
  rule: string;
  ruleReason: string | null;
  reasons: string[];
  what: string;
  approverGroups: string[];
  approvalsRequired: number;
  approvals: Array<{ approver: string; comment: string | null; at: string }>;
  state: 'pending' | 'approved' | 'denied' | 'expired' | 'withdrawn';
  createdAt: string;
  expiresAt: string;
  decidedAt: string | null;
  decidedBy: string | null;
  comment: string | null;
  canApprove?: boolean;
}

export interface ReviewDecisionJson {
  review: ReviewJson;
  reasons: string[];
  message: string;
}

export const REVIEW_STATES = ['pending', 'approved', 'denied', 'expired', 'withdrawn'];

/** Reviews in `state` (default pending) the caller may see. */
export async function listReviews(api: ApiClient, state = 'pending'): Promise<ReviewJson[]> {
  return (await api.get<{ reviews: ReviewJson[] }>(`/api/reviews?state=${encodeURIComponent(state)}`)).reviews;
}

/** The table of held statements, each followed by its full text (indented) so approvers read what runs. */
export function printReviews(io: CliIo, reviews: ReviewJson[], title: string): void {
  io.out(`${title}\n`);
  const rows = reviews.map((r) => [
    short(r.id),
    r.user,
    r.connection,
    r.state === 'pending' && r.canApprove ? 'pending (yours to approve)' : stateOf(r),
    r.rule,
    `${r.approvals.length}/${r.approvalsRequired}`,
    time(r.state === 'pending' ? r.expiresAt : (r.decidedAt ?? r.createdAt)),
    `${r.what} (${r.reasons.join(', ')})${r.ruleReason ? ` — ${r.ruleReason}` : ''}`,
  ]);
  const lines = table(['ID', 'USER', 'CONNECTION', 'STATE', 'RULE', 'APPROVALS', 'UNTIL', 'WHY'], rows).split('\n');
  io.out(lines[0] + '\n');
  reviews.forEach((r, i) => {
    io.out(lines[i + 1] + '\n');
    for (const line of r.statement.split('\n')) io.out(`    ${line}\n`);
  });
}

/** The review the id names, or null when it names none (then it may be an access request). */
export function findReview(api: ApiClient, id: string): Promise<ReviewJson | null> {
  return api.find<ReviewJson>(`/api/reviews/${encodeURIComponent(id)}`);
}

export async function approveReview(io: CliIo, api: ApiClient, review: ReviewJson, comment: string | undefined): Promise<void> {
  const res = await api.post<ReviewDecisionJson>(`/api/reviews/${review.id}/approve`, comment ? { comment } : {});
  const r = res.review;
  if (r.state === 'approved') io.out(`approved review ${short(r.id)}: ${r.user}'s statement runs now on ${r.connection}\n`);
  else
    io.out(
      `approved review ${short(r.id)} of ${r.user} on ${r.connection} (${r.approvals.length}/${r.approvalsRequired} approvals; more needed)\n`,
    );
}

export async function denyReview(io: CliIo, api: ApiClient, review: ReviewJson, comment: string | undefined): Promise<void> {
  const res = await api.post<ReviewDecisionJson>(`/api/reviews/${review.id}/deny`, comment ? { comment } : {});
  const r = res.review;
  io.out(
    r.state === 'withdrawn'
      ? `withdrew your statement (review ${short(r.id)}) on ${r.connection}\n`
      : `denied review ${short(r.id)}: ${r.user}'s statement on ${r.connection} is refused\n`,
  );
}

function stateOf(r: ReviewJson): string {
  if ((r.state === 'approved' || r.state === 'denied') && r.decidedBy) return `${r.state} by ${r.decidedBy}`;
  return r.state;
}
