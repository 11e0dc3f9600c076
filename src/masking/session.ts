/**
 * Masking for one PostgreSQL session: the rules that apply to its identity and connection, the
 * catalog of its backend, and lineage over each statement (PostgreSQL's grammar) turned into
 * per-column masks. The pipeline uses its neutral part (SessionMasking: prepare, check); the
 * PostgreSQL relay's result masker uses the rest (plan, originMask, maskValue, scrub). Statements
 * that would carry masked data somewhere the user can read it unmasked, or whose data cannot be
 * followed, are refused here with a reason code.
 */
import type {
  ColumnMask,
  Decision,
  MaskedSource,
  MaskRule,
  SessionMasking,
  Statement,
  StatementMaskExplanation,
  StatementMaskPlan,
} from '../core/types.js';
import { redactFindings, type DetectorName } from './detectors.js';
import { lineageOf, relationOrigins, type Catalog, type ColumnOrigin, type LineageResult, type LineageSession } from './lineage.js';
import { maskForOrigin, sourceMask, UNPROVABLE } from './policy.js';
import { applyStrategy, byteMaskFor, type ByteMask, type MaskContext, type MaskStrategy } from './strategies.js';

/** OIDs below this are PostgreSQL's own objects (FirstNormalObjectId). */
const FIRST_USER_OID = 16384;
/**
 * A statement that reads user relations runs on a catalog validated at most this long ago; one
 * that expands a view or names a relation the catalog lacks, on one validated after it arrived.
 */
const CATALOG_MAX_AGE_MS = 1_000;

export interface SessionMaskingOptions {
  rules: readonly MaskRule[];
  detectors: readonly DetectorName[];
  hashKey: Buffer;
  /**
   * The backend's catalog, validated by a read that starts after the call, or with `maxAgeMs` one
   * validated (by any session) at most that long ago.
   */
  loadCatalog: (maxAgeMs?: number) => Promise<Catalog>;
  now?: () => number;
}

export class MaskingSession implements SessionMasking {
  private catalog: Catalog | undefined;
  private catalogAt = 0;
  private readonly state: LineageSession = { cursors: new Map(), prepared: new Map() };
  private last: { text: string; result: LineageResult } | undefined;
  private readonly origins = new Map<string, ColumnMask | undefined>();
  readonly scrub?: (text: string) => string | undefined;

  constructor(private readonly o: SessionMaskingOptions) {
    if (o.detectors.length > 0) {
      const enabled = o.detectors;
      this.scrub = (text) => {
        const r = redactFindings(text, enabled);
        return r.findings.length ? r.text : undefined;
      };
    }
  }

  async prepare(): Promise<void> {
    await this.refresh();
  }

  /**
   * A refusal, or undefined to let the statement run. When the statement's plan depends on catalog
   * facts that may have changed since they were read (a view's definition, a relation created
   * since), the catalog is validated first and the statement analysed again: the answer is then a
   * promise, and the statement waits for it.
   */
  check(statement: Statement): Decision | Promise<Decision | undefined> | undefined {
    if (statement.source === 'function-call') {
      return refusal('masking_unprovable', 'the function call protocol names functions by OID only, so masking cannot follow it');
    }
    if (statement.source === 'command') return undefined;
    const result = this.analyse(statement.text);
    const now = (this.o.now ?? Date.now)();
    const stale =
      result.ok && result.statements.some((s) => s.catalogSensitive || (now - this.catalogAt > CATALOG_MAX_AGE_MS && s.reads.length > 0));
    if (!stale) return this.decide(result);
    const sensitive = result.ok && result.statements.some((s) => s.catalogSensitive);
    return this.refresh(sensitive ? undefined : CATALOG_MAX_AGE_MS).then(
      () => this.decide(this.analyse(statement.text)),
      () => refusal('masking_unprovable', 'the catalog masking needs could not be read, so results cannot be masked'),
    );
  }

  private async refresh(maxAgeMs?: number): Promise<void> {
    const at = (this.o.now ?? Date.now)();
    const catalog = await this.o.loadCatalog(maxAgeMs);
    this.catalogAt = at;
    if (catalog === this.catalog) return;
    this.catalog = catalog;
    this.last = undefined;
    this.origins.clear();
  }

  private decide(result: LineageResult): Decision | undefined {
    if (!result.ok)
      return refusal('masking_unprovable', `the statement could not be parsed (${result.error}), so its results cannot be masked`);
    for (const s of result.statements) {
      const r = s.refusals[0];
      if (r) return refusal(r.reason, r.message);
      for (const f of s.flows) {
        const m = sourceMask(this.o.rules, f.source);
        if (m) {
          const what = f.source.startsWith('?')
            ? `data masking cannot follow (${f.source.slice(1)})`
            : `masked column ${f.source} (rule "${m.rule}")`;
          return refusal('masking_copy', `${f.into} would carry ${what} where it could be read unmasked`);
        }
      }
    }
    return undefined;
  }

  plan(text: string): StatementMaskPlan[] | undefined {
    const result = this.analyse(text);
    if (!result.ok) return undefined;
    return result.statements.map((s) => {
      const touches = s.reads.some((src) => sourceMask(this.o.rules, src) !== undefined);
      const columns = s.outputs === null ? null : s.outputs === 'unknown' ? 'unknown' : s.outputs.map((o) => this.mask(o));
      return {
        columns,
        fallback: this.mask(s.fallback),
        touchesMasked: touches,
        ...(s.copy ? { copy: s.copy } : {}),
      };
    });
  }

  /** plan(), with the lineage behind each mask (the sources and rules), for the policy tool. */
  explain(text: string): StatementMaskExplanation[] | undefined {
    const result = this.analyse(text);
    if (!result.ok) return undefined;
    const maskedBy = (sources: readonly string[]): MaskedSource[] =>
      sources.flatMap((source) => {
        const m = sourceMask(this.o.rules, source);
        return m ? [{ source, rule: m.rule }] : [];
      });
    return result.statements.map((s) => {
      const fallback = this.mask(s.fallback);
      const columns =
        s.outputs === null || s.outputs === 'unknown'
          ? s.outputs
          : s.outputs.map((o, index) => {
              const mask = this.mask(o);
              const name = s.names?.[index];
              return {
                index,
                ...(name !== undefined ? { name } : {}),
                sources: [...o.sources],
                derived: o.derived,
                ...(mask ? { mask } : {}),
                maskedBy: maskedBy(o.sources),
              };
            });
      return { columns, ...(fallback ? { fallback } : {}), reads: maskedBy(s.reads) };
    });
  }

  originMask(tableOid: number, attnum: number): ColumnMask | undefined {
    const key = `${tableOid}:${attnum}`;
    if (this.origins.has(key)) return this.origins.get(key);
    let mask: ColumnMask | undefined;
    const rel = this.catalog?.relations.get(tableOid);
    if (!rel) {
      // A relation made after the catalog was read (or a system one): unknown means masked, and
      // the next statement runs on a validated catalog.
      mask = tableOid < FIRST_USER_OID ? undefined : UNPROVABLE;
      if (mask) this.catalogAt = Number.NEGATIVE_INFINITY;
    } else {
      const i = rel.columns.findIndex((c) => c.attnum === attnum);
      const origin: ColumnOrigin | undefined = i < 0 ? undefined : relationOrigins(rel, this.catalog!)[i];
      mask = origin ? this.mask(origin) : UNPROVABLE;
    }
    this.origins.set(key, mask);
    return mask;
  }

  maskValue(mask: ColumnMask, value: string): string | null {
    return applyStrategy(this.strategyOf(mask), value, this.maskContext);
  }

  maskBytes(mask: ColumnMask): ByteMask | undefined {
    if (this.byteMasks.has(mask)) return this.byteMasks.get(mask);
    const bytes = byteMaskFor(this.strategyOf(mask));
    this.byteMasks.set(mask, bytes);
    return bytes;
  }

  /** Called for every masked cell: the strategy of each mask is built once, not per value. */
  private strategyOf(mask: ColumnMask): MaskStrategy {
    let strategy = this.strategies.get(mask);
    if (!strategy) {
      strategy =
        mask.strategy === 'partial' ? { kind: 'partial', keepLast: mask.keepLast ?? 4 } : ({ kind: mask.strategy } as MaskStrategy);
      this.strategies.set(mask, strategy);
    }
    return strategy;
  }

  private readonly strategies = new WeakMap<ColumnMask, MaskStrategy>();
  private readonly byteMasks = new WeakMap<ColumnMask, ByteMask | undefined>();
  private get maskContext(): MaskContext {
    return (this.context ??= { hashKey: this.o.hashKey });
  }

  private context: MaskContext | undefined;

  private mask(origin: ColumnOrigin): ColumnMask | undefined {
    return origin.sources.length === 0 ? undefined : maskForOrigin(this.o.rules, origin);
  }

  private analyse(text: string): LineageResult {
    if (this.last?.text === text) return this.last.result;
    if (!this.catalog) return { ok: false, error: 'the catalog is not loaded' };
    const result = lineageOf(text, this.catalog, this.state);
    this.last = { text, result };
    return result;
  }
}

function refusal(reason: string, what: string): Decision {
  return { effect: 'deny', reasons: [reason], rule: 'masking', message: `jitgate: statement refused by masking: ${what} (${reason})` };
}
