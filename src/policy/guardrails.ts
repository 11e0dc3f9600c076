/**
 * Guardrails: deny rules over parsed statements (never over raw text). Pure: rules and a statement
 * analysis in, a Decision with stable reason codes and the rule's name out. A statement that does
 * not parse is refused whenever any guardrail applies: what cannot be analysed cannot be allowed.
 */
import type { Decision } from '../core/types.js';
import type { AnalysisResult, StatementInfo, StatementKind } from '../sql/postgres.js';

export interface GuardrailRule {
  name: string;
  /** Connection names or globs (`*`, `prod-*`). */
  connections: string[];
  /** Applies to sessions of these groups ('*' = everyone). */
  groups: string[];
  /** Sessions of these groups are exempt. */
  except: string[];
  deny: {
    kinds: StatementKind[];
    tables: string[];
    functions: string[];
    unboundedWrites: boolean;
    multiStatement: boolean;
    readOnly: boolean;
    /** Redis: commands or subcommands (`flushall`, `config`, `client|kill`), globs allowed (policy/redis-guardrails.ts). */
    commands?: string[];
    /** Redis: ACL categories (`dangerous`, `scripting`). */
    categories?: string[];
    /** Redis: key globs, matched against the keys a command touches (case-sensitive). */
    keys?: string[];
    /** Settings (globs) that SET, RESET, set_config() or ALTER ... SET may not change: `role`, `search_path`. */
    settings?: string[];
    /** COPY ends refused: `program`, `file`, `stdin`, `stdout`. */
    copy?: string[];
  };
  /**
   * Code the gateway cannot see that this rule lets run anyway. By default a rule with any SQL
   * criterion refuses DO blocks, procedures, functions and operators PostgreSQL does not ship, SQL
   * passed as text it cannot read, and code created to run later (functions, triggers, rules).
   */
  allow?: {
    /** Functions, procedures (CALL) and operators, by name or glob (`app.*`, `refresh_totals`). */
    functions?: string[];
    /** DO blocks. */
    do?: boolean;
    /** Everything opaque: the rule trusts code it cannot see. */
    code?: boolean;
  };
  reason?: string;
}

export type GuardrailReason =
  | 'unparsable_statement'
  | 'multi_statement'
  | 'read_only'
  | 'kind_denied'
  | 'table_denied'
  | 'function_denied'
  | 'unbounded_write'
  | 'setting_denied'
  | 'copy_denied'
  | 'opaque_code';

/** Who a rule applies to: connection names or globs, groups ('*' = everyone), exempt groups. */
export interface RuleScope {
  connections: string[];
  groups: string[];
  except: string[];
}

/** The rules (guardrails, review rules) that apply to one session. */
export function rulesFor<R extends RuleScope>(rules: readonly R[], connection: string, groups: readonly string[]): R[] {
  return rules.filter(
    (r) =>
      r.connections.some((c) => globMatch(c, connection)) &&
      (r.groups.includes('*') || r.groups.some((g) => groups.includes(g))) &&
      !r.except.some((g) => groups.includes(g)),
  );
}

const ALLOW: Decision = Object.freeze({ effect: 'allow', reasons: [] }) as Decision;

export function decideStatement(rules: readonly GuardrailRule[], analysis: AnalysisResult): Decision {
  if (rules.length === 0) return ALLOW;
  if (!analysis.ok) {
    return refuse(rules[0]!, 'unparsable_statement', `the statement could not be parsed (${analysis.error}), so it cannot be checked`);
  }
  for (const rule of rules) {
    if (rule.deny.multiStatement && analysis.statements.length > 1) {
      return refuse(rule, 'multi_statement', `${analysis.statements.length} statements in one query string`);
    }
    for (const s of analysis.statements) {
      const found = matchStatement(rule.deny, s);
      if (found) return refuse(rule, found[0], found[0] === 'read_only' ? `${found[1]} on a read-only connection` : found[1]);
    }
  }
  // What a rule names explicitly is the better reason; code nobody can see is refused after that.
  for (const rule of rules) {
    for (const s of analysis.statements) {
      const found = matchOpaque(rule, s);
      if (found) return refuse(rule, found[0], found[1]);
    }
  }
  return ALLOW;
}

/**
 * Code the gateway cannot see runs unchecked, so a rule that checks anything refuses it (fail
 * closed) unless the rule allows it by name. A rule with only Redis criteria checks no SQL.
 */
function matchOpaque(rule: GuardrailRule, s: StatementInfo): [GuardrailReason, string] | undefined {
  if (!s.opaque?.length || rule.allow?.code || !checksSql(rule.deny)) return undefined;
  const allowed = rule.allow?.functions ?? [];
  const hidden = s.opaque.find((o) => {
    if (o.startsWith('DO block')) return !rule.allow?.do;
    const named = /^(?:function (.+)\(\)|operator (.+))$/.exec(o);
    const name = named?.[1] ?? named?.[2];
    return !(name !== undefined && allowed.some((p) => nameMatch(p, name)));
  });
  return hidden ? ['opaque_code', `${describe(s)} runs code jitgate cannot check: ${hidden}`] : undefined;
}

function checksSql(d: StatementCriteria): boolean {
  return (
    d.kinds.length > 0 ||
    d.tables.length > 0 ||
    d.functions.length > 0 ||
    d.unboundedWrites ||
    d.multiStatement ||
    d.readOnly ||
    (d.settings?.length ?? 0) > 0 ||
    (d.copy?.length ?? 0) > 0
  );
}

/** What a rule looks for in one parsed statement (guardrails refuse it, review rules hold it). */
export type StatementCriteria = GuardrailRule['deny'];

/**
 * The first criterion one statement meets, as a reason code and a phrase naming what was found
 * (`readOnly` here means "matches any statement that is not read-only"). Shared by guardrails and
 * statement reviews so both read a statement the same way.
 */
export function matchStatement(d: StatementCriteria, s: StatementInfo): [GuardrailReason, string] | undefined {
  if (d.readOnly && !s.readOnly) return ['read_only', `${describe(s)} changes data or settings`];
  if (d.kinds.includes(s.kind)) return ['kind_denied', `${describe(s)} is not allowed`];
  // What runs inside (a CTE's DELETE, PREPARE's statement, a DO block's DDL) counts as well.
  const inner = s.innerKinds?.find((k) => d.kinds.includes(k));
  if (inner) return ['kind_denied', `${describe(s)} runs ${inner.toUpperCase()}, which is not allowed`];
  const table = [...s.tablesRead, ...s.tablesWritten].find((t) => d.tables.some((p) => nameMatch(p, t)));
  if (table) return ['table_denied', `${describe(s)} touches ${table}`];
  const fn = s.functions.find((f) => d.functions.some((p) => nameMatch(p, f)));
  if (fn) return ['function_denied', `${describe(s)} calls ${fn}()`];
  if (d.settings?.length && s.settings?.length) {
    // `*` (RESET ALL, a name built at run time) may change any of them.
    const setting = s.settings.find((x) => x === '*' || d.settings!.some((p) => globMatch(p, x)));
    if (setting) return ['setting_denied', setting === '*' ? `${describe(s)} may change any setting` : `${describe(s)} changes ${setting}`];
  }
  if (d.copy?.length && s.copyTargets?.length) {
    const end = s.copyTargets.find((t) => d.copy!.includes(t));
    if (end)
      return [
        'copy_denied',
        `COPY ${end === 'program' ? 'to or from a program' : end === 'file' ? 'to or from a server file' : end.toUpperCase()} is not allowed`,
      ];
  }
  if (d.unboundedWrites && s.unboundedWrites.length > 0) {
    const notes = s.unboundedNotes?.length
      ? s.unboundedNotes
      : [`${s.kind.toUpperCase()} without WHERE on ${s.unboundedWrites.join(', ')}`];
    return ['unbounded_write', notes.join('; ')];
  }
  return undefined;
}

function refuse(rule: GuardrailRule, reason: GuardrailReason, what: string): Decision {
  return {
    effect: 'deny',
    reasons: [reason],
    rule: rule.name,
    message: `jitgate: statement refused by guardrail "${rule.name}": ${what} (${reason})${rule.reason ? ` — ${rule.reason}` : ''}`,
  };
}

export function describe(s: StatementInfo): string {
  return s.kind === 'ddl' && s.ddl ? s.ddl.toUpperCase() : s.kind.toUpperCase();
}

/**
 * A policy name matches a qualified name when it equals it or its unqualified tail, with globs:
 * `payroll` matches `public.payroll`; `audit.*` matches `audit.log`; `pg_read_file` matches
 * `pg_catalog.pg_read_file`.
 */
export function nameMatch(pattern: string, name: string): boolean {
  const p = pattern.toLowerCase();
  if (globMatch(p, name)) return true;
  const tail = name.slice(name.lastIndexOf('.') + 1);
  return !p.includes('.') && globMatch(p, tail);
}

export function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(
    '^' +
      pattern
        .split('*')
        .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*') +
      '$',
  );
  return re.test(value);
}
