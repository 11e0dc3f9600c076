/**
 * Leaf checks shared by every configuration section (./schema.ts, ./identities.ts, ./recording.ts),
 * in one house style: a wrong value is reported as "expected X, got Y", a missing one as required.
 */
import { z } from 'zod';
import { DURATION_HINT, formatDuration, tryParseDuration } from '../core/duration.js';

/** A check's own message for a value that is wrong in a specific way. */
export class Bad {
  constructor(readonly message: string) {}
}

/** A short, safe description of a value for an error message. */
export function describeValue(v: unknown): string {
  if (v === undefined || v === null) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return typeof v;
}

/**
 * A leaf value: `check` returns the value, `undefined` for "not what we expected" (message built from
 * `what`), or a Bad with its own message. `secret` values are described by type only, never echoed.
 */
export function leaf<T>(what: string, check: (v: unknown) => T | Bad | undefined, opts: { secret?: boolean } = {}) {
  return z.unknown().transform((v, ctx): T => {
    if (v === undefined) {
      ctx.addIssue({ code: 'custom', message: `required: expected ${what}` });
      return z.NEVER;
    }
    const r = check(v);
    if (r instanceof Bad || r === undefined) {
      const got = opts.secret ? `a ${Array.isArray(v) ? 'list' : typeof v === 'object' ? 'mapping' : typeof v}` : describeValue(v);
      ctx.addIssue({ code: 'custom', message: r instanceof Bad ? r.message : `expected ${what}, got ${got}` });
      return z.NEVER;
    }
    return r;
  });
}

export const bool = () => leaf('true or false', (v) => (typeof v === 'boolean' ? v : undefined));

export const text = (what = 'a non-empty string') => leaf(what, (v) => (typeof v === 'string' && v.trim() !== '' ? v : undefined));

/** A duration between min and max ms; a bare number is refused with a hint in `exampleUnit`. */
export function duration(min: number, max: number, exampleUnit = 's') {
  return leaf(DURATION_HINT, (v) => {
    if (typeof v === 'number') return new Bad(`expected ${DURATION_HINT}, got ${v} (add a unit, e.g. ${v}${exampleUnit})`);
    if (typeof v !== 'string') return undefined;
    const ms = tryParseDuration(v);
    if (ms === undefined) return undefined;
    if (ms < min) return new Bad(`must be at least ${formatDuration(min)}, got ${JSON.stringify(v)}`);
    if (ms > max) return new Bad(`must be at most ${formatDuration(max)}, got ${JSON.stringify(v)}`);
    return ms;
  });
}

/** A list of names (a single string is a list of one), without duplicates. */
export const nameList = (what: string, opts: { allowEmpty?: boolean } = {}) =>
  leaf(`a list of ${what}`, (v) => {
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || (list.length === 0 && !opts.allowEmpty)) return undefined;
    for (const [i, x] of list.entries()) {
      if (typeof x !== 'string' || x.trim() === '') return new Bad(`item ${i}: expected a non-empty string, got ${describeValue(x)}`);
    }
    return [...new Set(list as string[])];
  });

export const intBetween = (min: number, max: number) =>
  leaf(`an integer from ${min} to ${max}`, (v) => (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : undefined));

export const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
