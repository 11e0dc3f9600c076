/**
 * The masking report (`jitgate masking report`, GET /api/masking/report): what masking did over a
 * period, read from the session recordings, which already hold it — each result's columns with the
 * masks the gateway applied (rule, reason), the rows the client was sent, every refused statement
 * with its reason codes, and the values as the client saw them. Nothing is added to the data path.
 *
 *  - per rule and column: how many results and rows it masked;
 *  - the statements refused as masking_copy / masking_unprovable most often (normalised text);
 *  - columns no rule masked whose values content detectors rewrote (`[email]`, `[card]`, ...):
 *    candidates for a rule, since detectors are a safety net, not masking.
 *
 * Only recorded values can show detector findings (recordings keep a capped number of rows), so
 * those counts are a lower bound. Where a connection records no column masks (MySQL, Redis), only
 * its refusals are counted.
 */
import type { RecordedEvent } from './file-recorder.js';
import type { ColumnsData, DecisionData, ResultData, StatementData } from './events.js';

const DETECTOR_TOKEN = /\[(email|card|iban|ssn|phone|ip|jwt|cloud_key|private_key)\]/g;
const MASKING_REFUSALS = new Set(['masking_copy', 'masking_unprovable']);
/** Most refused statements and detector-only columns listed. */
const TOP = 50;

export interface MaskedColumnCount {
  connection: string;
  rule: string;
  reason: string;
  /** The column's name in the results. */
  column: string;
  results: number;
  rows: number;
}

export interface RefusedStatementCount {
  connection: string;
  reason: string;
  /** The statement with literals replaced by `?` and blanks collapsed. */
  statement: string;
  count: number;
  lastAt: number;
}

export interface DetectorOnlyColumn {
  connection: string;
  column: string;
  detectors: string[];
  results: number;
  /** Recorded rows in which a detector rewrote the column's value. */
  rows: number;
}

export interface MaskingReport {
  since: number;
  until: number;
  connection: string | null;
  sessions: { read: number; unreadable: number; /** More sessions matched than were read (the newest were). */ limited: boolean };
  columns: MaskedColumnCount[];
  refusals: RefusedStatementCount[];
  detectorOnly: DetectorOnlyColumn[];
}

interface ResultInProgress {
  names: string[];
  masked: Array<{ column: number; rule: string; reason: string }>;
  findings: Map<number, { detectors: Set<string>; rows: number }>;
}

/** Adds sessions' recorded events up into a report. Pure: events in, counts out. */
export class MaskingReportBuilder {
  private readonly columns = new Map<string, MaskedColumnCount>();
  private readonly refusals = new Map<string, RefusedStatementCount>();
  private readonly detectorOnly = new Map<string, DetectorOnlyColumn & { seen: Set<string> }>();
  private read = 0;
  private unreadable = 0;

  constructor(private readonly window: { since: number; until: number }) {}

  /** One session's events (in order). */
  add(connection: string, events: readonly RecordedEvent[]): void {
    this.read++;
    let result: ResultInProgress | undefined;
    const end = (rows: number) => {
      if (result) this.countResult(connection, result, rows);
      result = undefined;
    };
    for (const e of events) {
      if (e.at < this.window.since || e.at > this.window.until) continue;
      switch (e.type) {
        case 'statement':
          this.countRefusal(connection, e.data as unknown as StatementData, e.at);
          break;
        case 'columns':
          end(0);
          result = start(e.data as unknown as ColumnsData);
          break;
        case 'rows':
          if (result) scan(result, (e.data as { rows?: Array<Array<string | null>> }).rows ?? []);
          break;
        case 'result': {
          end(0);
          const data = e.data as unknown as ResultData;
          result = start(data);
          scan(result, data.rows ?? []);
          end(data.count ?? 0);
          break;
        }
        case 'complete':
          end(Number((e.data as { rows?: number }).rows ?? 0));
          break;
        case 'error':
          end(Number((e.data as { rows?: number }).rows ?? 0));
          break;
      }
    }
    end(0);
  }

  /** A session whose recording could not be read (deleted meanwhile, damaged). */
  skip(): void {
    this.unreadable++;
  }

  build(o: { connection: string | null; limited: boolean }): MaskingReport {
    const byCount = <T extends { count?: number; results?: number; rows?: number }>(a: T, b: T) =>
      (b.count ?? b.results ?? 0) - (a.count ?? a.results ?? 0) || (b.rows ?? 0) - (a.rows ?? 0);
    return {
      since: this.window.since,
      until: this.window.until,
      connection: o.connection,
      sessions: { read: this.read, unreadable: this.unreadable, limited: o.limited },
      columns: [...this.columns.values()].sort(byCount),
      refusals: [...this.refusals.values()].sort(byCount).slice(0, TOP),
      detectorOnly: [...this.detectorOnly.values()]
        .map(({ seen, ...c }) => ({ ...c, detectors: [...seen].sort() }))
        .sort(byCount)
        .slice(0, TOP),
    };
  }

  private countRefusal(connection: string, s: StatementData, at: number): void {
    const d: DecisionData | undefined = s.decision;
    if (!d || d.effect !== 'deny') return;
    const reason = d.reasons.find((r) => MASKING_REFUSALS.has(r));
    if (!reason) return;
    const statement = normaliseStatement(s.text);
    const key = JSON.stringify([connection, reason, statement]);
    const c = this.refusals.get(key);
    if (c) {
      c.count++;
      c.lastAt = Math.max(c.lastAt, at);
    } else this.refusals.set(key, { connection, reason, statement, count: 1, lastAt: at });
  }

  private countResult(connection: string, r: ResultInProgress, rows: number): void {
    for (const m of r.masked) {
      const column = r.names[m.column] ?? `#${m.column + 1}`;
      const key = JSON.stringify([connection, m.rule, m.reason, column]);
      const c = this.columns.get(key) ?? { connection, rule: m.rule, reason: m.reason, column, results: 0, rows: 0 };
      c.results++;
      c.rows += rows;
      this.columns.set(key, c);
    }
    for (const [i, f] of r.findings) {
      const column = r.names[i] ?? `#${i + 1}`;
      const key = JSON.stringify([connection, column]);
      const c = this.detectorOnly.get(key) ?? { connection, column, detectors: [], results: 0, rows: 0, seen: new Set<string>() };
      c.results++;
      c.rows += f.rows;
      f.detectors.forEach((d) => c.seen.add(d));
      this.detectorOnly.set(key, c);
    }
  }
}

function start(data: ColumnsData): ResultInProgress {
  return { names: (data.columns ?? []).map((c) => c.name), masked: data.masked ?? [], findings: new Map() };
}

/** Detector tokens in the recorded values of columns no rule masked. */
function scan(r: ResultInProgress, rows: ReadonlyArray<ReadonlyArray<string | null>>): void {
  const ruled = new Set(r.masked.map((m) => m.column));
  for (const row of rows) {
    row.forEach((v, i) => {
      if (v === null || ruled.has(i) || !v.includes('[')) return;
      const found = [...v.matchAll(DETECTOR_TOKEN)].map((m) => m[1]!);
      if (found.length === 0) return;
      const f = r.findings.get(i) ?? { detectors: new Set<string>(), rows: 0 };
      f.rows++;
      found.forEach((d) => f.detectors.add(d));
      r.findings.set(i, f);
    });
  }
}

/**
 * A statement's shape: string, dollar-quoted and numeric literals become `?`, blanks collapse and
 * a trailing semicolon goes, so the same statement with other values counts once. Cut to 500 characters.
 */
export function normaliseStatement(text: string): string {
  const shape = text
    .replace(/\$([A-Za-z_][A-Za-z0-9_]*)?\$[\s\S]*?\$\1\$/g, '?')
    .replace(/[EeXxBbNn]?'(?:[^'\\]|''|\\.)*'/g, '?')
    .replace(/(?<![\w$."])[-+]?\b\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b/g, '?')
    .replace(/\s+/g, ' ')
    // psql sends the terminating semicolon; drivers usually do not.
    .replace(/[\s;]+$/, '')
    .trim();
  return shape.length > 500 ? `${shape.slice(0, 500)}...` : shape;
}
