/**
 * The `masking:` section: which source columns are masked, how, for whom, and which content
 * detectors run on each connection (see masking/policy.ts and README "Masking").
 *
 *   masking:
 *     hashKey: env:JITGATE_MASK_KEY     # optional secret reference; default: a key generated under dataDir
 *     rules:
 *       - name: pii                     # required; recorded and shown with each masked column
 *         connections: ["prod-*"]       # names or globs (default: every connection)
 *         groups: ["*"]                 # whom it applies to (default: everyone)
 *         except: [dba]                 # exempt groups see clear values
 *         columns:                      # "schema.table.column" globs; fewer parts = any schema / table
 *           users.email: email
 *           "public.users.ssn": { strategy: partial, keep: 4 }
 *           "*.card_number": card
 *           "hr.*.salary": "null"
 *         keys:                         # Redis connections: values of keys matching these globs
 *           "user:*:email": email
 *         fields:                       # Redis hash values by field name
 *           ssn: { strategy: partial, keep: 4 }
 *     detectors:
 *       - connections: ["prod-*"]
 *         use: all                      # or a list: [email, card, iban, ssn, phone, ip, jwt, cloud_key, private_key]
 *         except: [dba]
 */
import { z } from 'zod';
import { tryParseSecretRef } from '../core/secret-ref.js';
import { ALL_DETECTORS, type DetectorName } from '../masking/detectors.js';
import type { MaskingColumnRule, MaskingConfig, MaskingRule } from '../masking/policy.js';
import type { MaskStrategy } from '../masking/strategies.js';
import { Bad, describeValue, isObj, leaf, nameList, text } from './leaf.js';

const STRATEGIES = ['redact', 'partial', 'hash', 'null', 'email', 'phone', 'card'] as const;

const names = (what: string) => nameList(what, { allowEmpty: true });

function strategyOf(v: unknown, column: string): MaskStrategy | Bad {
  const spec = typeof v === 'string' ? { strategy: v } : v;
  if (!isObj(spec))
    return new Bad(`column "${column}": expected a strategy (${STRATEGIES.join(', ')}) or { strategy, keep }, got ${describeValue(v)}`);
  for (const k of Object.keys(spec)) {
    if (k !== 'strategy' && k !== 'keep') return new Bad(`column "${column}": unknown key "${k}" (expected strategy, keep)`);
  }
  const kind = spec.strategy;
  if (!STRATEGIES.includes(kind as (typeof STRATEGIES)[number])) {
    return new Bad(`column "${column}": expected a strategy (${STRATEGIES.join(', ')}), got ${describeValue(kind)}`);
  }
  if (spec.keep !== undefined && kind !== 'partial') return new Bad(`column "${column}": keep is only used with strategy partial`);
  if (kind === 'partial') {
    const keep = spec.keep ?? 4;
    if (typeof keep !== 'number' || !Number.isInteger(keep) || keep < 0 || keep > 64) {
      return new Bad(`column "${column}": keep: expected an integer between 0 and 64, got ${describeValue(keep)}`);
    }
    return { kind: 'partial', keepLast: keep };
  }
  return { kind } as MaskStrategy;
}

const columns = () =>
  leaf('a mapping of "schema.table.column" patterns to strategies', (v) => {
    if (!isObj(v) || Object.keys(v).length === 0) return undefined;
    const out: MaskingRule['columns'] = [];
    for (const [pattern, spec] of Object.entries(v)) {
      const parts = pattern.split('.');
      if (parts.length > 3 || parts.some((p) => p.trim() === '')) {
        return new Bad(`column "${pattern}": expected column, table.column or schema.table.column (globs allowed)`);
      }
      const strategy = strategyOf(spec, pattern);
      if (strategy instanceof Bad) return strategy;
      out.push({ pattern: pattern.toLowerCase(), strategy });
    }
    return out;
  });

/** Redis key or hash field globs to strategies; case is kept (Redis names are case-sensitive). */
const redisPatterns = (what: string) =>
  leaf(`a mapping of ${what} globs to strategies`, (v) => {
    if (!isObj(v) || Object.keys(v).length === 0) return undefined;
    const out: MaskingColumnRule[] = [];
    for (const [pattern, spec] of Object.entries(v)) {
      const strategy = strategyOf(spec, pattern);
      if (strategy instanceof Bad) return new Bad(strategy.message.replace(/^column /, `${what} `));
      out.push({ pattern, strategy });
    }
    return out;
  });

const detectorList = () =>
  leaf(`all, or a list of detectors (${ALL_DETECTORS.join(', ')})`, (v) => {
    if (v === 'all') return [...ALL_DETECTORS];
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || list.length === 0) return undefined;
    for (const [i, x] of list.entries()) {
      if (!ALL_DETECTORS.includes(x as DetectorName))
        return new Bad(`item ${i}: expected one of ${ALL_DETECTORS.join(', ')}, got ${describeValue(x)}`);
    }
    return [...new Set(list as DetectorName[])];
  });

const hashKeyRef = () =>
  leaf('a secret reference: env:NAME, file:PATH or secret:NAME', (v) => {
    if (typeof v !== 'string') return undefined;
    const r = tryParseSecretRef(v);
    return r.ok
      ? v
      : new Bad(
          /^(env|file|secret):/.test(v)
            ? r.problem
            : 'a plain key is not allowed in the config; use a secret reference: env:NAME, file:PATH or secret:NAME',
        );
  });

export const maskingSchema = z.strictObject({
  hashKey: hashKeyRef().optional(),
  rules: z
    .array(
      z.strictObject({
        name: text('a rule name'),
        connections: names('connection names or globs').optional(),
        groups: names('group names').optional(),
        except: names('group names').optional(),
        columns: columns().optional(),
        // Redis connections: values of keys matching these globs, hash values of these fields.
        keys: redisPatterns('key').optional(),
        fields: redisPatterns('hash field').optional(),
      }),
    )
    .optional(),
  detectors: z
    .array(
      z.strictObject({
        connections: names('connection names or globs').optional(),
        use: detectorList(),
        except: names('group names').optional(),
      }),
    )
    .optional(),
});

export type MaskingFile = z.output<typeof maskingSchema>;

export function buildMasking(m: MaskingFile | undefined): MaskingConfig | undefined {
  if (!m) return undefined;
  return {
    rules: (m.rules ?? []).map((r) => ({
      name: r.name,
      connections: r.connections ?? ['*'],
      groups: r.groups ?? ['*'],
      except: r.except ?? [],
      columns: r.columns ?? [],
      ...(r.keys ? { keys: r.keys } : {}),
      ...(r.fields ? { fields: r.fields } : {}),
    })),
    detectors: (m.detectors ?? []).map((d) => ({ connections: d.connections ?? ['*'], detectors: d.use, except: d.except ?? [] })),
    ...(m.hashKey ? { hashKey: m.hashKey } : {}),
  };
}
