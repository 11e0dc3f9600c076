/**
 * Masking on MySQL sessions, with the gateway's masking rules, strategies and content detectors.
 *
 * MySQL tells the client where each result column comes from: the column definition carries the
 * schema, the original table and the original column (`org_table`, `org_name`), also for aliases
 * and for binary (prepared statement) results. A column whose origin matches a rule is masked
 * with that rule's strategy. A column with no origin (an expression: CONCAT(email, ''), a
 * subquery, a UNION across tables) is masked ("redact") when the statement refers to a column a
 * rule could match, or when the statement cannot be parsed: what cannot be shown to be clean is not
 * shown. Statements that would carry masked data past the masking (INSERT ... SELECT, CREATE TABLE
 * ... SELECT, UPDATE ... SET from a masked column, SELECT ... INTO) are refused. Content detectors
 * run over every other text value and over error messages.
 *
 * A view's columns report the view as their origin, not the masked table under it. So the views of
 * the database are read when the session starts (prepare): a view whose definition uses a column a
 * rule could match, reads another such view, or cannot be read or parsed, is a masked view. Its
 * columns are redacted, expressions over it are redacted, and copying out of it is refused.
 */
import type { Decision, DetectorName, MaskRule, SessionMasking, Statement } from '../../core/types.js';
import { redactFindings } from '../../masking/detectors.js';
import { globMatch, sourceMask } from '../../masking/policy.js';
import { applyStrategy } from '../../masking/strategies.js';
import { analyseMysqlCached, plainSelect, type MysqlAnalysis, type MysqlDialect } from '../../sql/mysql.js';
import type { ResultMasking, ResultMaskPlan } from './relay.js';
import type { ColumnDefinition } from './results.js';

/** A session's MaskingScope (core/types.ts), with how views are read where the listener does not read them. */
export interface MysqlMaskingOptions {
  rules: readonly MaskRule[];
  detectors: readonly DetectorName[];
  hashKey: Buffer;
  /** The backend's views as [schema, name, definition (null when not visible)], over a connection of its own (when the listener does not read them over the session's). */
  views?: () => Promise<Array<Array<string | null>>>;
}

/** The backend's views as masking reads them at session start. */
export const VIEWS_QUERY = 'SELECT TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS';

/** Nesting depth of views followed when deciding which views show masked data. */
const MAX_VIEW_DEPTH = 16;

/** Errors that quote the data that caused them (duplicate entries, bad values). */
const DATA_ERRORS = new Set([1062, 1265, 1292, 1366, 1406, 1411, 1525, 1586, 3140, 4025]);

export class MysqlMasking implements SessionMasking, ResultMasking {
  readonly scrub?: (text: string) => string | undefined;
  private readonly columnNames: string[];
  /** Views that show masked data, as `schema.name` and as bare names (lower case). */
  private readonly maskedViews = new Set<string>();
  private readonly maskedViewNames = new Set<string>();
  /** How the backend read the last statement checked (results and errors follow it). */
  private dialect: Partial<MysqlDialect> | undefined;
  /** SQL-level prepared statements of the session: every text ever prepared under a name (PREPARE ... FROM). */
  private readonly preparedTexts = new Map<string, Set<string>>();

  constructor(private readonly o: MysqlMaskingOptions) {
    if (o.detectors.length > 0) {
      const enabled = o.detectors;
      this.scrub = (text) => {
        const r = redactFindings(text, enabled);
        return r.findings.length ? r.text : undefined;
      };
    }
    // The column part of every pattern (`email` of `app.customers.email`): what an expression must not use.
    this.columnNames = o.rules.flatMap((r) => r.columns.map((c) => c.pattern.split('.').pop()!));
  }

  /**
   * Reads the views over the session's own backend connection instead (the listener sets this
   * before prepare): no second connection at login, and what the session's user sees, fresh.
   */
  readViewsWith(read: () => Promise<Array<Array<string | null>>>): void {
    this.viewSource = read;
  }

  private viewSource: (() => Promise<Array<Array<string | null>>>) | undefined;

  async prepare(): Promise<void> {
    const read = this.viewSource ?? this.o.views;
    if (this.o.rules.length === 0 || !read) return;
    const views = (await read()).map(([schema, name, definition]) => ({
      key: `${schema ?? ''}.${name ?? ''}`.toLowerCase(),
      name: (name ?? '').toLowerCase(),
      analysis: definition ? analyseMysqlCached(definition) : undefined,
    }));
    // Until nothing changes: a view over a masked view is masked too.
    for (let depth = 0, changed = true; changed && depth < MAX_VIEW_DEPTH; depth++) {
      changed = false;
      for (const v of views) {
        if (this.maskedViews.has(v.key)) continue;
        const masked =
          !v.analysis?.ok ||
          v.analysis.statements.some((st) => this.maskedReference(st.columns) !== undefined || this.readsMaskedView(st.tablesRead));
        if (masked) {
          this.maskedViews.add(v.key);
          this.maskedViewNames.add(v.name);
          changed = true;
        }
      }
    }
  }

  check(statement: Statement): Decision | undefined {
    if (this.o.rules.length === 0) return undefined;
    this.dialect = statement.dialect;
    const analysis = analyseMysqlCached(statement.text, statement.dialect);
    if (!analysis.ok)
      return refusal('masking_unprovable', `the statement could not be parsed (${analysis.error}), so its results cannot be masked`);
    for (const s of analysis.statements) {
      // Every text ever prepared under a name counts for its EXECUTEs (a refused PREPARE only adds caution).
      if (s.prepares !== undefined) {
        const name = s.prepares.toLowerCase();
        this.preparedTexts.set(name, (this.preparedTexts.get(name) ?? new Set<string>()).add(s.preparedText ?? s.text));
      }
      // A stored function or procedure can read masked columns in its body and return them in any form.
      if (s.routines.length > 0)
        return refusal('masking_unprovable', `stored routine ${s.routines[0]}() could return masked data in any form`);
      if (s.executes !== undefined && !this.preparedTexts.has(s.executes.toLowerCase())) {
        return refusal('masking_unprovable', `prepared statement ${s.executes} was not prepared from a text the gateway saw`);
      }
      const used = () => this.maskedReference(s.columns) ?? this.readsMaskedView(s.tablesRead);
      // A variable keeps the value for later statements, whose results show no origin.
      if (s.assignsVariables) {
        const u = used();
        if (u) return refusal('masking_copy', `a variable would hold masked column ${u} where it could be read unmasked`);
      }
      const copies = !s.readOnly;
      if (
        copies &&
        (s.kind === 'insert' || s.kind === 'update' || s.kind === 'ddl' || s.kind === 'copy' || s.kind === 'select' || s.kind === 'other')
      ) {
        const u = used();
        if (u) return refusal('masking_copy', `${s.kind.toUpperCase()} would carry masked column ${u} where it could be read unmasked`);
      }
    }
    return undefined;
  }

  /** The statement's analysis with what its EXECUTEs run (every text prepared under the name). */
  private analysed(statement: string): MysqlAnalysis {
    const analysis = analyseMysqlCached(statement, this.dialect);
    if (!analysis.ok) return analysis;
    const statements = [...analysis.statements];
    for (const s of analysis.statements) {
      if (s.executes === undefined) continue;
      const texts = this.preparedTexts.get(s.executes.toLowerCase());
      if (!texts) return { ok: false, error: `unknown prepared statement ${s.executes}` };
      for (const text of texts) {
        const inner = analyseMysqlCached(text, this.dialect);
        if (!inner.ok) return inner;
        statements.push(...inner.statements);
      }
    }
    return { ok: true, statements };
  }

  /** EXECUTE name of a name prepared from one text only: that text (its origins can be checked); else the statement. */
  private executedText(statement: string): string {
    const analysis = analyseMysqlCached(statement, this.dialect);
    if (!analysis.ok || analysis.statements.length !== 1 || analysis.statements[0]!.executes === undefined) return statement;
    const texts = this.preparedTexts.get(analysis.statements[0]!.executes.toLowerCase());
    return texts?.size === 1 ? [...texts][0]! : statement;
  }

  /** Whether a statement (its text, as run) could show masked data other than through a masked column's origin. */
  private touchesMasked(statement: string | undefined): boolean {
    if (statement === undefined) return true;
    const analysis = this.analysed(statement);
    return (
      !analysis.ok ||
      analysis.statements.some(
        (s) => s.routines.length > 0 || this.maskedReference(s.columns) !== undefined || this.readsMaskedView(s.tablesRead) !== undefined,
      )
    );
  }

  resultPlan(columns: ColumnDefinition[], statement: string | undefined): ResultMaskPlan {
    const masks = new Map<number, (value: string) => string | null>();
    // Origins are believed only for a plain SELECT over base tables: a derived table or CTE names
    // itself as the origin of what it selected, so anything else is judged as an expression.
    const effective = statement === undefined ? undefined : this.executedText(statement);
    const plain = this.o.rules.length > 0 && effective !== undefined ? plainSelect(effective, this.dialect) : undefined;
    const byColumn = plain?.outputs && plain.outputs.length === columns.length ? plain.outputs : undefined;
    let expressionsMasked: boolean | undefined;
    const expressionTouchesMasked = (i: number) => {
      if (byColumn && plain) return this.maskedReference(byColumn[i]!) !== undefined || this.readsMaskedView(plain.tables) !== undefined;
      if (expressionsMasked === undefined) {
        expressionsMasked = this.o.rules.length > 0 && this.touchesMasked(statement);
      }
      return expressionsMasked;
    };
    // SHOW WARNINGS / ERRORS: messages of earlier statements, which may quote values (scrubbed as errors are).
    const warnings = this.o.rules.length > 0 && statement !== undefined && this.showsWarnings(statement);
    columns.forEach((c, i) => {
      if (warnings && c.name.toLowerCase() === 'message') {
        masks.set(i, (v) => this.scrubQuoted(v));
        return;
      }
      const m = c.orgTable && c.orgName ? sourceMask(this.o.rules, `${c.schema}.${c.orgTable}.${c.orgName}`.toLowerCase()) : undefined;
      if (m) {
        const key = this.o.hashKey;
        masks.set(i, (v) => applyStrategy(m.strategy, v, { hashKey: key }));
        return;
      }
      if (c.orgTable && this.maskedViews.has(`${c.schema}.${c.orgTable}`.toLowerCase())) {
        masks.set(i, () => '[redacted]');
        return;
      }
      const trusted =
        c.orgTable !== '' && c.orgName !== '' && (this.o.rules.length === 0 || (plain?.tables.includes(c.orgTable.toLowerCase()) ?? false));
      if (!trusted && expressionTouchesMasked(i)) {
        masks.set(i, () => '[redacted]');
        return;
      }
      if (this.scrub) {
        const scrub = this.scrub;
        masks.set(i, (v) => scrub(v) ?? v);
      }
    });
    return { masks };
  }

  /**
   * An error or warning message safe to show. Where a statement reads a masked column anywhere (not
   * only in its results: WHERE, function arguments), or cannot be followed, what the message quotes
   * is withheld: servers quote values in errors (XPATH syntax error: '<value>', Truncated incorrect
   * INTEGER value: '<value>'). Errors that quote the data that caused them always lose it.
   */
  errorMessage(errno: number, message: string, statement?: string): string {
    let out = message;
    if (this.o.rules.length > 0 && (DATA_ERRORS.has(errno) || this.touchesMasked(statement))) out = this.scrubQuoted(out);
    return this.scrub?.(out) ?? out;
  }

  /** Quoted parts and long digit runs of a message withheld. */
  private scrubQuoted(message: string): string {
    const out = message.replace(/'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*"/g, "'[redacted]'").replace(/\d{6,}/g, '[redacted]');
    return this.scrub?.(out) ?? out;
  }

  private showsWarnings(statement: string): boolean {
    const analysis = analyseMysqlCached(statement, this.dialect);
    return analysis.ok && analysis.statements.some((s) => s.showsWarnings === true);
  }

  /** A table read that is a view showing masked data (by bare name: the schema may be implicit). */
  private readsMaskedView(tables: string[]): string | undefined {
    if (this.maskedViewNames.size === 0) return undefined;
    return tables.find((t) => this.maskedViewNames.has(t.split('.').pop()!.replace(/`/g, '').toLowerCase()));
  }

  /** A column reference (as parsed) that a rule's column pattern could match, `*` included. */
  private maskedReference(columns: string[]): string | undefined {
    for (const ref of columns) {
      const name = ref.split('.').pop()!;
      if (name === '*' || name === '(.*)') {
        if (this.columnNames.length > 0) return ref;
        continue;
      }
      if (this.columnNames.some((p) => globMatch(p, name))) return ref;
    }
    return undefined;
  }
}

function refusal(reason: string, what: string): Decision {
  return { effect: 'deny', reasons: [reason], message: `jitgate: statement refused by masking: ${what} (${reason})` };
}
