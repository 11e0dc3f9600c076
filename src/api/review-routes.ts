/**
 * HTTP API of statement reviews (statements held in a live session until approved): a thin adapter
 * over ReviewService, authenticated like the access routes. Refusals come back as
 * `{error, message, reasons}` with 400/403/404/409.
 *
 *   GET  /api/reviews?state=&connection=&user=   {reviews}: those I may see (mine, those I approve; admins all)
 *   GET  /api/reviews/:id?wait=20                one review; `wait` long-polls (seconds) while it is pending
 *   POST /api/reviews/:id/approve                {comment?} -> {review, reasons, message}
 *   POST /api/reviews/:id/deny                   {comment?} -> {review, reasons, message} (the author: withdraws it)
 *
 * Every review carries `canApprove` for the caller, so a console can offer the buttons that work.
 */
import type { EventSource } from '../access/events.js';
import type { ReviewEvent } from '../review/events.js';
import type { Identity } from '../core/types.js';
import { REVIEW_STATES, type Review, type ReviewState } from '../review/repository.js';
import { ReviewError, type ReviewService } from '../review/service.js';
import { sendJson } from './http.js';
import type { LiveHub } from './live-routes.js';
import { HttpError, type RouteContext, type RouteDoc, type Router } from './router.js';
import { LongPolls } from './long-poll.js';

export interface ReviewRoutes {
  /** Answer every waiting long-poll now (shutdown). */
  stop(): void;
}

const STATUS = { not_found: 404, forbidden: 403, conflict: 409, invalid: 400 } as const;

export function registerReviewRoutes(router: Router, reviews: ReviewService): ReviewRoutes {
  const polls = new LongPolls();

  const route = (method: string, pattern: string, doc: RouteDoc, fn: (ctx: RouteContext, who: Identity) => unknown) =>
    router.add(
      method,
      pattern,
      async (ctx) => {
        try {
          return await fn(ctx, ctx.identity!);
        } catch (err) {
          if (err instanceof ReviewError) {
            sendJson(ctx.res, STATUS[err.kind], { error: err.reasons[0] ?? err.kind, message: err.message, reasons: err.reasons });
            return undefined;
          }
          throw err;
        }
      },
      { doc },
    );

  route(
    'GET',
    '/api/reviews',
    {
      summary: 'statement reviews the caller may see, newest first',
      roles: ['requester', 'approver', 'admin'],
      query: {
        state: `string? - one of ${REVIEW_STATES.join(', ')}`,
        connection: 'string? - only this connection',
        user: 'string? - only statements of this user',
      },
    },
    (ctx, who) => {
      const state = ctx.query.get('state') ?? undefined;
      if (state !== undefined && !(REVIEW_STATES as readonly string[]).includes(state)) {
        throw new HttpError(400, 'invalid_state', `state must be one of ${REVIEW_STATES.join(', ')}`);
      }
      const connection = ctx.query.get('connection') || undefined;
      const user = ctx.query.get('user') || undefined;
      const list = reviews.list(who, {
        ...(state ? { state: state as ReviewState } : {}),
        ...(connection ? { connection } : {}),
        ...(user ? { user } : {}),
      });
      return { reviews: list.map((r) => reviewJson(r, reviews.canApprove(who, r))) };
    },
  );

  route(
    'GET',
    '/api/reviews/:id',
    {
      summary: 'one statement review (id or unique prefix); wait long-polls while it is pending',
      roles: ['requester', 'approver', 'admin'],
      query: { wait: 'integer? - seconds to wait for a change (max 25)' },
    },
    async (ctx, who) => {
      let review = reviews.get(who, ctx.params.id!);
      const wait = polls.waitOf(ctx);
      if (review.state === 'pending' && wait > 0) {
        // Wake on anything that happens to this review; the caller re-reads it.
        await polls.wait(ctx, wait, (changed) =>
          reviews.events.on((e) => {
            if (e.review.id === review.id) changed();
          }),
        );
        review = reviews.get(who, review.id);
      }
      return reviewJson(review, reviews.canApprove(who, review));
    },
  );

  route(
    'POST',
    '/api/reviews/:id/approve',
    {
      summary: 'approve a held statement; with enough approvals it runs in its session',
      roles: ['approver'],
      body: { comment: 'string? - for the record' },
    },
    (ctx, who) => {
      const outcome = reviews.approve(who, ctx.params.id!, optionalString(ctx.body, 'comment'));
      return {
        review: reviewJson(outcome.review, reviews.canApprove(who, outcome.review)),
        reasons: outcome.reasons,
        message: outcome.message,
      };
    },
  );

  route(
    'POST',
    '/api/reviews/:id/deny',
    {
      summary: 'deny a held statement (the client gets an error with the comment); its author withdraws it',
      roles: ['approver', 'admin', 'requester'],
      body: { comment: 'string? - shown to the user' },
    },
    (ctx, who) => {
      const outcome = reviews.deny(who, ctx.params.id!, optionalString(ctx.body, 'comment'));
      return {
        review: reviewJson(outcome.review, reviews.canApprove(who, outcome.review)),
        reasons: outcome.reasons,
        message: outcome.message,
      };
    },
  );

  return {
    stop: () => polls.stop(),
  };
}

export function reviewJson(r: Review, canApprove?: boolean) {
  return {
    id: r.id,
    sessionId: r.sessionId,
    user: r.user,
    groups: r.groups,
    connection: r.connection,
    statement: r.statement,
    source: r.source,
    rule: r.rule,
    ruleReason: r.ruleReason,
    reasons: r.reasons,
    what: r.what,
    approverGroups: r.approverGroups,
    approvalsRequired: r.approvalsRequired,
    approvals: r.approvals.map((a) => ({ approver: a.approver, comment: a.comment, at: iso(a.at) })),
    timeoutMs: r.timeoutMs,
    state: r.state,
    createdAt: iso(r.createdAt),
    expiresAt: iso(r.expiresAt),
    decidedAt: r.decidedAt === null ? null : iso(r.decidedAt),
    decidedBy: r.decidedBy,
    comment: r.comment,
    outcome: r.outcome,
    ...(canApprove !== undefined ? { canApprove } : {}),
  };
}

export type ReviewJson = ReturnType<typeof reviewJson>;

/**
 * Review events on the console's live stream (GET /api/events), as `review.created`,
 * `review.approved`, ... with `{review, ...}`: for the statement's author, its approvers and admins.
 */
export function publishReviewEvents(reviews: ReviewService, hub: LiveHub, events: EventSource<ReviewEvent> = reviews.events): () => void {
  return events.on((e) => {
    const r = e.review;
    const { type, at: _at, review: _review, ...rest } = e;
    hub.publish({
      type,
      data: { review: reviewJson(r), ...rest },
      audience: (who) => who.user === r.user || who.groups.some((g) => r.approverGroups.includes(g)) || reviews.isAdmin(who),
    });
  });
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** `comment` from a JSON body that may be absent altogether. */
function optionalString(body: unknown, key: string): string | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'invalid_body', 'expected a JSON object');
  const v = (body as Record<string, unknown>)[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new HttpError(400, 'invalid_body', `"${key}" must be a string`);
  if (v.length > 2000) throw new HttpError(400, 'invalid_body', `"${key}" is longer than 2000 characters`);
  return v;
}
