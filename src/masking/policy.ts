/**
 * Masking policy: which rules apply to a session, and what mask a column gets given where its data
 * comes from (lineage sources). Pure.
 *
 * A source is `schema.table.column`; a rule's column pattern is a glob over it, where a pattern with
 * fewer parts leaves the leading ones open (`users.email` = any schema, `ssn` = any table). Sources
 * lineage could not follow (`?...`) are always masked: what cannot be proven clean is not clean.
 */
import type { ColumnMask, MaskRule, MaskTarget } from '../core/types.js';
import type { DetectorName } from './detectors.js';
import type { MaskStrategy } from './strategies.js';
import type { ColumnOrigin } from './lineage.js';

/** One glob of a rule and its strategy (core's MaskTarget). */
export type MaskingColumnRule = MaskTarget;

/** A configured rule: what it masks (core's MaskRule), on which connections, for whom. */
export interface MaskingRule extends MaskRule {
  /** Connection names or globs. */
  connections: string[];
  /** Groups it applies to ('*' = everyone). */
  groups: string[];
  /** Exempt groups: they see clear values. */
  except: string[];
}

export interface DetectorRule {
  connections: string[];
  detectors: DetectorName[];
  /** Exempt groups. */
  except: string[];
}

export interface MaskingConfig {
  rules: MaskingRule[];
  detectors: DetectorRule[];
  /** Secret reference for the deterministic hash key; absent = a key generated under dataDir. */
  hashKey?: string;
}

export function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(
    '^' +
      pattern
        .split('*')
        .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*') +
      '$',
    'i',
  );
  return re.test(value);
}

const applies = (connections: string[], groups: string[], except: string[], connection: string, mine: readonly string[]): boolean =>
  connections.some((c) => globMatch(c, connection)) &&
  (groups.includes('*') || groups.some((g) => mine.includes(g))) &&
  !except.some((g) => mine.includes(g));

/** The column rules and detectors that apply to one session. */
export function maskingFor(
  config: MaskingConfig | undefined,
  connection: string,
  groups: readonly string[],
): { rules: MaskingRule[]; detectors: DetectorName[] } {
  if (!config) return { rules: [], detectors: [] };
  const rules = config.rules.filter((r) => applies(r.connections, r.groups, r.except, connection, groups));
  const detectors = new Set<DetectorName>();
  for (const d of config.detectors) {
    if (applies(d.connections, ['*'], d.except, connection, groups)) d.detectors.forEach((x) => detectors.add(x));
  }
  return { rules, detectors: [...detectors] };
}

/** Whether a source column pattern matches `schema.table.column`. */
export function columnMatches(pattern: string, source: string): boolean {
  const parts = source.split('.');
  const wanted = pattern.split('.').length;
  return globMatch(pattern, parts.slice(Math.max(parts.length - wanted, 0)).join('.'));
}

export const UNPROVABLE: ColumnMask = Object.freeze({ rule: 'lineage', reason: 'masking_unprovable', strategy: 'redact' }) as ColumnMask;

/** The rule and strategy masking one source column, if any (first matching rule wins). */
export function sourceMask(rules: readonly MaskRule[], source: string): { rule: string; strategy: MaskStrategy } | undefined {
  if (source.startsWith('?')) return { rule: 'lineage', strategy: { kind: 'redact' } };
  for (const r of rules) {
    for (const c of r.columns) if (columnMatches(c.pattern, source)) return { rule: r.name, strategy: c.strategy };
  }
  return undefined;
}

/**
 * The mask of an output column from its origin. A plain copy of one masked column keeps that
 * column's strategy; anything computed from masked data (or from several differently masked
 * columns) is redacted, except that the `null` strategy stays null.
 */
export function maskForOrigin(rules: readonly MaskRule[], origin: ColumnOrigin): ColumnMask | undefined {
  let first: { rule: string; strategy: MaskStrategy } | undefined;
  let same = true;
  let unprovable = false;
  for (const s of origin.sources) {
    const m = sourceMask(rules, s);
    if (!m) continue;
    if (s.startsWith('?')) unprovable = true;
    if (!first) first = m;
    else if (JSON.stringify(first.strategy) !== JSON.stringify(m.strategy)) same = false;
  }
  if (!first) return undefined;
  if (unprovable) return UNPROVABLE;
  if (origin.derived || !same) {
    return { rule: first.rule, reason: 'masked_expression', strategy: first.strategy.kind === 'null' && same ? 'null' : 'redact' };
  }
  const st = first.strategy;
  return { rule: first.rule, reason: 'masked_column', strategy: st.kind, ...(st.kind === 'partial' ? { keepLast: st.keepLast } : {}) };
}
