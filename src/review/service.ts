/**
 * Statement reviews: a statement a review rule matched is held inside its session until enough
 * approvers say yes (then it runs and its result flows back into the same session), someone says
 * no, its time runs out, or the author gives up (cancel, quit). The one place that applies the
 * access approval rules (policy/access.ts: approver groups, N distinct approvals, no self-approval)
 * to reviews, stores them, keeps their timers and announces what happened on `events`.
 *
 * Each held statement waits on its own promise: one session waiting never blocks another. Time
 * comes from the injected Clock (tests advance a ManualClock; nothing here sleeps).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Clock } from '../core/clock.js';
import { formatDuration } from '../core/duration.js';
import { pendingDecision } from '../core/pending-decision.js';
import type { Decision, HoldInfo, Identity, PendingDecision, Statement } from '../core/types.js';
import type { Logger } from '../obs/log.js';
import { decideApproval, inAnyGroup } from '../policy/access.js';
import { redactStatement } from '../recording/redact.js';
import { ReviewEvents } from './events.js';
import { AmbiguousReviewIdError, type Review, type ReviewFilter, type ReviewRepository, type ReviewState } from './repository.js';
import type { ReviewMatch } from '../policy/review-rules.js';

export type ReviewErrorKind = 'not_found' | 'forbidden' | 'conflict' | 'invalid';

/** A refusal the caller can show as is: the kind maps to an HTTP status, reasons are stable codes. */
export class ReviewError extends Error {
  constructor(
    readonly kind: ReviewErrorKind,
    message: string,
    readonly reasons: string[] = [],
  ) {
    super(message);
    this.name = 'ReviewError';
  }
}

export interface ReviewServiceOptions {
  repo: ReviewRepository;
  clock: Clock;
  log: Logger;
  /** Administrators see every review and may deny any (never approve: that takes an approver). */
  isAdmin?: (who: Identity) => boolean;
  /**
   * Where the console shows a review (the gateway's HTTP address), for the notice a held client
   * sees. Read when a statement is held: the HTTP listener binds after this service is built.
   */
  consoleBase?: () => string | undefined;
}

export interface HoldInput {
  sessionId: string;
  user: string;
  groups: readonly string[];
  connection: string;
  statement: Statement;
  match: ReviewMatch;
}

export interface ReviewOutcome {
  review: Review;
  reasons: string[];
  message: string;
}

/** A held statement's session side: how to let it go. */
interface Waiting {
  sessionId: string;
  resolve: (decision: Decision) => void;
  cancelTimer: () => void;
}

const CANCELLED = 'canceling statement due to user request';

/** The decision a held statement gets from its closed review, whichever instance closed it. */
function decisionOf(r: Review): Decision {
  const base = { rule: r.rule, reviewId: r.id };
  switch (r.state) {
    case 'approved':
      return {
        effect: 'allow',
        reasons: ['review_approved'],
        ...base,
        approvedBy: r.approvals.map((a) => a.approver),
        ...(r.comment ? { comment: r.comment } : {}),
      } as Decision;
    case 'denied':
      return {
        effect: 'deny',
        reasons: ['review_denied'],
        ...base,
        deniedBy: r.decidedBy,
        message: `jitgate: statement denied by ${r.decidedBy} (review ${short(r.id)}, rule "${r.rule}")${r.comment ? `: ${r.comment}` : ''}`,
      } as Decision;
    case 'expired':
      return {
        effect: 'deny',
        reasons: ['review_timeout'],
        code: 'cancelled',
        ...base,
        message: `jitgate: canceling statement: review ${short(r.id)} (rule "${r.rule}") was not approved within ${formatDuration(r.timeoutMs)} (review_timeout)`,
      } as Decision;
    case 'withdrawn':
    case 'pending':
      // A pending review is never released; were it, the statement would not run.
      return withdrawnDecision(r.id, r.outcome, r.comment ?? 'withdrawn');
  }
}

function withdrawnDecision(id: string, outcome: readonly string[], why: string): Decision {
  return {
    effect: 'deny',
    reasons: [...outcome],
    code: 'cancelled',
    reviewId: id,
    message: outcome.includes('cancelled_by_client') ? CANCELLED : `jitgate: statement withdrawn (review ${short(id)}): ${why}`,
  } as Decision;
}

export class ReviewService {
  readonly events: ReviewEvents;
  private readonly repo: ReviewRepository;
  private readonly clock: Clock;
  private readonly log: Logger;
  private isAdminFn: (who: Identity) => boolean;
  private readonly waiting = new Map<string, Waiting>();
  private readonly consoleBaseOf: () => string | undefined;

  constructor(options: ReviewServiceOptions) {
    this.repo = options.repo;
    this.clock = options.clock;
    this.log = options.log;
    this.isAdminFn = options.isAdmin ?? (() => false);
    this.consoleBaseOf = options.consoleBase ?? (() => undefined);
    this.events = new ReviewEvents((err, event) => this.log.error({ err, event: event.type }, 'review event listener failed'));
  }

  /**
   * Closes what nobody waits for any more: reviews left pending by a gateway process that is gone
   * (an earlier process, an instance found lost), whose sessions are closed in the store. Those of
   * sessions still open, served by another live instance, are left alone. Timed out ones expire,
   * the rest are withdrawn. Returns how many it closed.
   */
  closeOrphans(openSessions: ReadonlySet<string>): number {
    const now = this.clock.now();
    let closed = 0;
    for (const r of this.repo.list({ state: 'pending', limit: 100_000 })) {
      if (this.waiting.has(r.id) || openSessions.has(r.sessionId)) continue;
      if (r.expiresAt <= now) {
        if (this.closeRecord(r.id, 'expired', null, 'no decision in time', ['review_timeout'])) closed++;
      } else if (this.closeRecord(r.id, 'withdrawn', null, 'the session ended when its gateway stopped', ['session_ended'])) {
        closed++;
      }
    }
    if (closed > 0) this.log.info({ reviews: closed }, 'closed statement reviews left pending by a gateway that is gone');
    return closed;
  }

  /** Replaces the admin check given at construction: a test seam (tests decide who is an admin). */
  setAdminCheck(fn: (who: Identity) => boolean): void {
    this.isAdminFn = fn;
  }

  /** Timers stop; statements still held are released as refused (sessions are normally gone by now). */
  close(): void {
    for (const [id, w] of [...this.waiting]) {
      w.cancelTimer();
      this.waiting.delete(id);
      w.resolve({
        effect: 'deny',
        reasons: ['gateway_shutdown'],
        message: 'jitgate: the gateway is shutting down; the held statement did not run',
      });
    }
  }

  isAdmin(who: Identity): boolean {
    try {
      return this.isAdminFn(who);
    } catch (err) {
      this.log.error({ err }, 'admin check failed');
      return false;
    }
  }

  // -- the session side ---------------------------------------------------------------------------

  /**
   * Stores a review for the statement and holds it: the returned promise settles with the decision
   * the session acts on; `hold.notice` is what the client is told at once.
   */
  hold(input: HoldInput): PendingDecision {
    const now = this.clock.now();
    const { rule } = input.match;
    const review = {
      id: randomUUID(),
      sessionId: input.sessionId,
      user: input.user,
      groups: [...input.groups],
      connection: input.connection,
      // Stored and shown without password literals; the session still runs the original text.
      statement: redactStatement(input.statement.text).text,
      source: input.statement.source,
      rule: rule.name,
      ruleReason: rule.reason ?? null,
      reasons: [...input.match.reasons],
      what: input.match.what,
      approverGroups: [...rule.approval.approvers],
      approvalsRequired: rule.approval.approvals,
      timeoutMs: rule.approval.timeoutMs,
      createdAt: now,
      expiresAt: now + rule.approval.timeoutMs,
    };
    // Fail closed: a hold nobody can find (not stored) is refused, never run and never left waiting.
    this.repo.insert(review);
    const stored = this.repo.get(review.id)!;
    let resolve!: (d: Decision) => void;
    const { pending: decision, held } = pendingDecision(new Promise<Decision>((r) => (resolve = r)));
    const cancelTimeout = this.clock.at(review.expiresAt, () => this.timeout(review.id));
    const escalate = rule.approval.escalate;
    const cancelEscalation =
      escalate && escalate.afterMs < rule.approval.timeoutMs
        ? this.clock.at(now + escalate.afterMs, () => this.escalate(review.id, escalate.to))
        : undefined;
    const cancelTimer = () => {
      cancelTimeout();
      cancelEscalation?.();
    };
    this.waiting.set(review.id, { sessionId: input.sessionId, resolve, cancelTimer });
    const hold: HoldInfo = {
      notice: {
        effect: 'review',
        reasons: [...review.reasons],
        rule: rule.name,
        reviewId: review.id,
        message: `jitgate: statement held for approval: review ${short(review.id)} (rule "${rule.name}")`,
      } as Decision,
      detail: `${stored.what} (${stored.reasons.join(', ')})${stored.ruleReason ? ` — ${stored.ruleReason}` : ''}`,
      hint: this.hintText(stored),
      withdraw: () => this.withdraw(review.id, input.user, 'cancelled by the client', ['cancelled_by_client']),
    };
    held(hold);
    this.log.info(
      {
        review: review.id,
        session: input.sessionId,
        user: input.user,
        connection: input.connection,
        rule: rule.name,
        reasons: review.reasons,
      },
      'statement held for review',
    );
    this.events.emit({ type: 'review.created', at: now, review: stored });
    return decision;
  }

  /** The session ended (client quit, kill, revoked grant): whatever it had held is withdrawn. */
  endSession(sessionId: string): void {
    for (const [id, w] of [...this.waiting]) {
      if (w.sessionId === sessionId) this.withdraw(id, null, 'the session ended', ['session_ended']);
    }
  }

  // -- the approvers' side ------------------------------------------------------------------------

  get(who: Identity, idOrPrefix: string): Review {
    return this.requireVisible(who, idOrPrefix);
  }

  /** Reviews the caller may see (their own, those they approve; admins all), newest first. */
  list(who: Identity, filter: Omit<ReviewFilter, 'limit'> = {}): Review[] {
    const admin = this.isAdmin(who);
    return this.repo
      .list({ ...filter, limit: 1000 })
      .filter((r) => admin || this.maySee(who, r))
      .slice(0, 200);
  }

  /** Whether the caller could approve the review now (for listings and the console). */
  canApprove(who: Identity, review: Review): boolean {
    return (
      review.state === 'pending' &&
      review.user !== who.user &&
      inAnyGroup(who, review.approverGroups) &&
      !review.approvals.some((a) => a.approver === who.user)
    );
  }

  approve(who: Identity, idOrPrefix: string, comment?: string): ReviewOutcome {
    const now = this.clock.now();
    const note = comment?.trim() || null;
    const result = this.repo.transaction(() => {
      const review = this.requireVisible(who, idOrPrefix);
      const decision = decideApproval({
        request: { ...review, breakGlassAllowed: false, approvedBy: review.approvals.map((a) => a.approver) },
        approver: who,
        now,
      });
      if (decision.effect === 'refuse') return { refused: decision, final: false, review };
      this.repo.insertApproval(review.id, { approver: who.user, comment: note, at: now });
      if (decision.final) {
        this.repo.decide(review.id, { state: 'approved', decidedAt: now, decidedBy: who.user, comment: note, outcome: ['approved'] });
      }
      return { refused: undefined, final: decision.final, review: this.repo.get(review.id)! };
    });
    if (result.refused) {
      const reasons = result.refused.reasons.map(reviewReason);
      if (reasons.includes('review_expired')) this.timeout(result.review.id);
      const kind = reasons.some((r) => r === 'review_not_pending' || r === 'review_expired' || r === 'already_approved')
        ? 'conflict'
        : 'forbidden';
      this.log.info({ review: result.review.id, user: who.user, reasons }, 'review approval refused');
      throw new ReviewError(kind, refusalText(reasons, result.review, who), reasons);
    }
    const { review, final } = result;
    this.log.info(
      { review: review.id, approver: who.user, final },
      final ? 'held statement approved' : 'held statement: approval recorded',
    );
    this.events.emit({ type: 'review.approved', at: now, review, approver: who.user, comment: note, final });
    if (final) {
      this.release(review.id, decisionOf(review));
      return { review, reasons: ['approved'], message: `approved: the statement runs in ${review.user}'s session` };
    }
    const count = `${review.approvals.length} of ${review.approvalsRequired}`;
    return { review, reasons: ['approval_recorded'], message: `approval recorded (${count})` };
  }

  /** Approvers and admins deny; the author may withdraw their own statement. */
  deny(who: Identity, idOrPrefix: string, comment?: string): ReviewOutcome {
    const now = this.clock.now();
    const note = comment?.trim() || null;
    const review = this.requireVisible(who, idOrPrefix);
    if (review.state !== 'pending') throw new ReviewError('conflict', `the review is ${review.state}, not pending`, ['review_not_pending']);
    if (review.expiresAt <= now) {
      this.timeout(review.id);
      throw new ReviewError('conflict', 'the review timed out; the statement was refused', ['review_expired']);
    }
    if (who.user === review.user) {
      if (!this.withdraw(review.id, who.user, note ?? 'withdrawn by the author', ['withdrawn_by_author'])) {
        throw new ReviewError('conflict', 'the review is no longer pending', ['review_not_pending']);
      }
      return { review: this.repo.get(review.id)!, reasons: ['withdrawn_by_author'], message: 'statement withdrawn' };
    }
    if (!this.isAdmin(who) && !inAnyGroup(who, review.approverGroups)) {
      throw new ReviewError('forbidden', `only members of ${review.approverGroups.join(' or ')} may deny this statement`, [
        'not_allowed_to_deny',
      ]);
    }
    if (!this.closeRecord(review.id, 'denied', who.user, note, ['denied_by_approver'])) {
      throw new ReviewError('conflict', 'the review is no longer pending', ['review_not_pending']);
    }
    const closed = this.repo.get(review.id)!;
    this.log.info({ review: review.id, by: who.user }, 'held statement denied');
    this.events.emit({ type: 'review.denied', at: now, review: closed, by: who.user, comment: note });
    this.release(review.id, decisionOf(closed));
    return { review: closed, reasons: ['denied_by_approver'], message: 'statement denied' };
  }

  // ---------------------------------------------------------------------------------------------

  private timeout(id: string): void {
    try {
      const review = this.repo.get(id);
      if (!review || review.state !== 'pending') return;
      if (!this.closeRecord(id, 'expired', null, 'no decision in time', ['review_timeout'])) return;
      const closed = this.repo.get(id)!;
      this.log.info({ review: id, session: review.sessionId }, 'held statement timed out');
      this.events.emit({ type: 'review.expired', at: this.clock.now(), review: closed });
      this.release(id, decisionOf(closed));
    } catch (err) {
      // Fail closed: the statement is refused even if the record could not be closed.
      this.log.error({ err, review: id }, 'cannot close a timed-out review');
      this.release(id, {
        effect: 'deny',
        reasons: ['review_timeout'],
        code: 'cancelled',
        message: 'jitgate: canceling statement: the review timed out',
      });
    }
  }

  /** Still pending at the rule's escalation time: `to` joins the approvers, and everyone is reminded. */
  private escalate(id: string, to: readonly string[]): void {
    try {
      const review = this.repo.get(id);
      if (!review || review.state !== 'pending' || !this.waiting.has(id)) return;
      const groups = [...new Set([...review.approverGroups, ...to])];
      if (!this.repo.setApprovers(id, groups)) return;
      const now = this.clock.now();
      const widened = this.repo.get(id)!;
      this.log.warn(
        { review: id, session: review.sessionId, to, waitedMs: now - review.createdAt },
        'held statement escalated: still waiting for approval',
      );
      this.events.emit({ type: 'review.escalated', at: now, review: widened, to: [...to], waitedMs: now - review.createdAt });
    } catch (err) {
      this.log.error({ err, review: id }, 'cannot escalate a held statement');
    }
  }

  /** The author gave up or the session ended; true when it was still pending. */
  private withdraw(id: string, by: string | null, why: string, outcome: string[]): boolean {
    let closed = false;
    try {
      closed = this.closeRecord(id, 'withdrawn', by, why, outcome);
    } catch (err) {
      this.log.error({ err, review: id }, 'cannot record a withdrawn review');
    }
    if (closed) {
      const review = this.repo.get(id)!;
      this.log.info({ review: id, session: review.sessionId, why }, 'held statement withdrawn');
      this.events.emit({ type: 'review.withdrawn', at: this.clock.now(), review, by, reason: why });
    }
    this.release(id, withdrawnDecision(id, outcome, why));
    return closed;
  }

  private closeRecord(
    id: string,
    state: Exclude<ReviewState, 'pending'>,
    by: string | null,
    comment: string | null,
    outcome: string[],
  ): boolean {
    return this.repo.decide(id, { state, decidedAt: this.clock.now(), decidedBy: by, comment, outcome });
  }

  /**
   * Statements held here whose review was closed through another gateway instance (approved,
   * denied, withdrawn by its author) or in the store by anyone: each gets the decision its record
   * says, as if it had been decided here (StoreCatchUp calls this).
   */
  catchUpDecisions(): void {
    for (const id of [...this.waiting.keys()]) {
      const review = this.repo.get(id);
      if (review && review.state !== 'pending') this.release(id, decisionOf(review));
    }
  }

  /** Hands the decision to the waiting session (if it still waits). */
  private release(id: string, decision: Decision): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    w.cancelTimer();
    w.resolve(decision);
  }

  private requireVisible(who: Identity, idOrPrefix: string): Review {
    let review: Review | undefined;
    try {
      review = this.repo.find(idOrPrefix);
    } catch (err) {
      if (err instanceof AmbiguousReviewIdError) throw new ReviewError('invalid', err.message, ['ambiguous_id']);
      throw err;
    }
    // Invisible and missing look the same, so ids cannot be probed.
    if (!review || !(this.maySee(who, review) || this.isAdmin(who))) {
      throw new ReviewError('not_found', `no review ${idOrPrefix}`, ['review_not_found']);
    }
    return review;
  }

  private maySee(who: Identity, r: Review): boolean {
    return r.user === who.user || inAnyGroup(who, r.approverGroups);
  }

  private hintText(r: Review): string {
    const approvals = `${r.approvalsRequired} approval${r.approvalsRequired === 1 ? '' : 's'} from ${r.approverGroups.join(' or ')}`;
    const consoleBase = consoleUrl(this.consoleBaseOf());
    const where = [`jitgate approve ${short(r.id)}`, ...(consoleBase ? [`${consoleBase}/reviews/${r.id}`] : [])].join(' or ');
    return `waiting up to ${formatDuration(r.timeoutMs)} for ${approvals}; approve with ${where} (Ctrl-C withdraws it)`;
  }
}

/** A listener on every interface (0.0.0.0, ::) is reached by the host's name, not that address. */
function consoleUrl(base: string | undefined): string | undefined {
  return base?.replace(/\/$/, '').replace(/^(https?:\/\/)(0\.0\.0\.0|\[::\])(?=:|$)/, `$1${hostname()}`);
}

export function short(id: string): string {
  return id.slice(0, 8);
}

/** Access reason codes that mean the same for reviews, renamed where they speak of requests. */
function reviewReason(code: string): string {
  return code === 'request_not_pending' ? 'review_not_pending' : code === 'request_expired' ? 'review_expired' : code;
}

function refusalText(reasons: string[], r: Review, who: Identity): string {
  if (reasons.includes('review_not_pending')) return `the review is ${r.state}, not pending`;
  if (reasons.includes('review_expired')) return 'the review timed out; the statement was refused';
  if (reasons.includes('self_approval')) return 'nobody approves their own statement';
  if (reasons.includes('agent_cannot_approve'))
    return 'held statements are approved by people; a service account or AI agent cannot approve';
  if (reasons.includes('already_approved')) return `${who.user} has already approved this statement`;
  return `only members of ${r.approverGroups.join(' or ')} may approve this statement`;
}
