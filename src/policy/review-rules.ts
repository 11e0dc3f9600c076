/**
 * Review rules: which statements are held for a person to approve before they run. Pure: rules and
 * a statement analysis in, the rule that holds it (with stable reason codes and a phrase saying what
 * was found) out. Statements are read exactly as guardrails read them (policy/guardrails.ts
 * matchStatement); guardrails are checked first and a guardrail refusal always wins.
 */
import { describe, matchStatement, type GuardrailReason, type RuleScope, type StatementCriteria } from './guardrails.js';
import type { AnalysisResult, StatementKind } from '../sql/postgres.js';

export interface ReviewRule extends RuleScope {
  name: string;
  /** Any one criterion met by any statement of the query string holds it. */
  match: {
    kinds: StatementKind[];
    /** Anything that is not read-only: writes, DDL, privileges, settings. */
    writes: boolean;
    tables: string[];
    functions: string[];
    unboundedWrites: boolean;
    multiStatement: boolean;
  };
  approval: {
    /** Groups whose members may approve (any of them); never the statement's own author. */
    approvers: string[];
    /** Distinct approvals needed before the statement runs. */
    approvals: number;
    /** Undecided after this long: the statement is refused (review_timeout). */
    timeoutMs: number;
    /** Still undecided after `afterMs`: a reminder goes out and the `to` groups may approve too. */
    escalate?: { afterMs: number; to: string[] };
  };
  /** Shown to the user and the approvers, e.g. "writes on production are reviewed". */
  reason?: string;
}

/** Stable reason codes of a hold. Never rename one: they are recorded and shown to people. */
export type ReviewMatchReason =
  | 'write_statement'
  | 'kind_matched'
  | 'table_matched'
  | 'function_matched'
  | 'unbounded_write'
  | 'multi_statement'
  | 'unparsable_statement'
  | 'setting_matched'
  | 'copy_matched'
  | 'opaque_code';

const REASON_OF: Record<GuardrailReason, ReviewMatchReason> = {
  read_only: 'write_statement',
  kind_denied: 'kind_matched',
  table_denied: 'table_matched',
  function_denied: 'function_matched',
  unbounded_write: 'unbounded_write',
  multi_statement: 'multi_statement',
  unparsable_statement: 'unparsable_statement',
  setting_denied: 'setting_matched',
  copy_denied: 'copy_matched',
  opaque_code: 'opaque_code',
};

export interface ReviewMatch {
  rule: ReviewRule;
  reasons: ReviewMatchReason[];
  /** What was found, for people: "UPDATE changes data or settings", "SELECT touches public.payroll". */
  what: string;
}

/**
 * The first rule (in file order) that holds the statement, if any. A statement that does not parse
 * is held by the first applicable rule: a person can look at what the parser could not.
 */
export function matchReview(rules: readonly ReviewRule[], analysis: AnalysisResult): ReviewMatch | undefined {
  if (rules.length === 0) return undefined;
  if (!analysis.ok) {
    return { rule: rules[0]!, reasons: ['unparsable_statement'], what: `the statement could not be parsed (${analysis.error})` };
  }
  for (const rule of rules) {
    const m = rule.match;
    if (m.multiStatement && analysis.statements.length > 1) {
      return { rule, reasons: ['multi_statement'], what: `${analysis.statements.length} statements in one query string` };
    }
    const criteria: StatementCriteria = {
      kinds: m.kinds,
      tables: m.tables,
      functions: m.functions,
      unboundedWrites: m.unboundedWrites,
      multiStatement: false,
      readOnly: m.writes,
    };
    for (const s of analysis.statements) {
      const found = matchStatement(criteria, s);
      if (found) return { rule, reasons: [REASON_OF[found[0]]], what: found[0] === 'kind_denied' ? describe(s) : found[1] };
    }
  }
  return undefined;
}
