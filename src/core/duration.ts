/**
 * Durations as people write them in config files and on the command line: `500ms`, `30s`, `15m`,
 * `1h`, `1d`, and combinations such as `1h30m`. Pure; imports nothing.
 */

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

export const DURATION_HINT = 'a duration such as 500ms, 30s, 15m, 1h or 1h30m';

/** Parse a duration into milliseconds, or return undefined when the text is not a duration. */
export function tryParseDuration(text: string): number | undefined {
  const s = text.trim();
  if (!WHOLE.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(PART)) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  if (!Number.isFinite(total) || total > Number.MAX_SAFE_INTEGER) return undefined;
  return Math.round(total);
}

/** Parse a duration into milliseconds; throws a RangeError naming what was expected. */
export function parseDuration(text: string): number {
  const ms = tryParseDuration(text);
  if (ms === undefined) throw new RangeError(`expected ${DURATION_HINT}, got ${JSON.stringify(text)}`);
  return ms;
}

/** Format milliseconds compactly (`1h30m`, `15m`, `500ms`); the inverse of parseDuration for whole units. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return String(ms);
  if (ms === 0) return '0s';
  let rest = Math.round(ms);
  let out = '';
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  if (rest > 0) out += `${rest}ms`;
  return out;
}
