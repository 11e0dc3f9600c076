/**
 * The order in which one statement is decided, in one place, so that the data path
 * (SessionService) and the policy tool (`jitgate policy test`, ./explain.ts) give the same answer:
 *
 *   grant still active → statement rate gate → masking (what would carry masked data out of its
 *   reach) → guardrails (a refusal names its rule) → the session's built-in protections → review
 *   rules (the first rule that holds the statement).
 *
 * Pure apart from what the steps handed in do themselves: a statement a review rule matches comes
 * back as a `review` verdict naming the match; holding it (storing a review, waiting for people) is
 * the caller's business, so the policy tool can report a hold without creating one.
 */
import type { Decision, Protocol, SessionMasking, Statement } from '../core/types.js';
import { decideStatement, type GuardrailRule } from '../policy/guardrails.js';
import { decideRedisCommand, matchRedisReview } from '../policy/redis-guardrails.js';
import { matchReview, type ReviewMatch, type ReviewRule } from '../policy/review-rules.js';
import { analyseMysqlCached } from '../sql/mysql.js';
import { analysePostgresCached } from '../sql/postgres.js';

/** What is decided, or which review rule holds the statement. */
export type Verdict = { kind: 'decision'; decision: Decision } | { kind: 'review'; match: ReviewMatch };

/** Guardrails and review rules already narrowed to one session's connection and groups (rulesFor). */
export interface StatementRules {
  protocol: Protocol;
  guardrails: readonly GuardrailRule[];
  reviews: readonly ReviewRule[];
  /**
   * Protections the protocol engine applies to every statement, with or without rules (PostgreSQL:
   * the gateway's credential, other people's sessions); a Decision refuses.
   */
  protect?: (statement: Statement) => Decision | undefined;
}

export interface DecisionSteps {
  /** The message to refuse with once the session's grant has ended (undefined while it holds). */
  grantEnded?: () => string | undefined;
  /** The statement rate gate (agents' quotas): a Decision refuses. */
  gate?: () => Decision | undefined;
  /** Result masking of the session, if any applies. */
  masking?: SessionMasking;
  rules: StatementRules;
}

const ALLOW: Decision = Object.freeze({ effect: 'allow', reasons: [] }) as Decision;
const FUNCTION_CALL_REFUSED: Decision = Object.freeze({
  effect: 'deny',
  reasons: ['function_call_protocol'],
  message: 'jitgate: the function call protocol cannot be checked against guardrails and is refused on this connection',
}) as Decision;

const decided = (decision: Decision): Verdict => ({ kind: 'decision', decision });

/**
 * Decides one statement in the gateway's order. A promise when masking must first read something
 * (PostgreSQL: validate its catalog after a view was redefined); the rest is decided after that.
 */
export function decideInOrder(steps: DecisionSteps, statement: Statement): Verdict | Promise<Verdict> {
  const over = steps.grantEnded?.();
  if (over !== undefined) return decided({ effect: 'deny', reasons: ['grant_ended'], message: over });
  const limited = steps.gate?.();
  if (limited) return decided(limited);
  // What would carry masked data out of masking's reach is refused before any review.
  const unmaskable = steps.masking?.check(statement);
  if (unmaskable instanceof Promise) return unmaskable.then((d) => (d ? decided(d) : decidePolicy(steps.rules, statement)));
  if (unmaskable) return decided(unmaskable);
  return decidePolicy(steps.rules, statement);
}

/** Guardrails, protections and reviews: what is decided once masking has let a statement through. */
export function decidePolicy(rules: StatementRules, statement: Statement): Verdict {
  // Protections every session gets; a guardrail's refusal (naming its rule) is reported first.
  const protectedFrom = rules.protect?.(statement);
  if (rules.guardrails.length === 0 && rules.reviews.length === 0) return decided(protectedFrom ?? ALLOW);
  // The fast-path function call protocol names a function by OID only: nothing to check it by.
  if (statement.source === 'function-call') return decided(FUNCTION_CALL_REFUSED);
  // Redis commands are checked by name, category and key (the relay passes the arguments).
  const redis = statement.source === 'command';
  // Each SQL protocol's statements are read with its own dialect's grammar.
  const analysis = redis
    ? undefined
    : rules.protocol === 'mysql'
      ? analyseMysqlCached(statement.text, statement.dialect)
      : analysePostgresCached(statement.text);
  const verdict = analysis ? decideStatement(rules.guardrails, analysis) : decideRedisCommand(rules.guardrails, statement.argv ?? []);
  // A guardrail refusal wins over any review: what is forbidden is not put to approvers.
  if (verdict.effect !== 'allow') return decided(verdict);
  if (protectedFrom) return decided(protectedFrom);
  if (rules.reviews.length === 0) return decided(verdict);
  const match = analysis ? matchReview(rules.reviews, analysis) : matchRedisReview(rules.reviews, statement.argv ?? []);
  return match ? { kind: 'review', match } : decided(verdict);
}
