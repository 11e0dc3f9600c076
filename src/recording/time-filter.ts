/**
 * Times as people type them in filters (`--since`, `?since=`): an ISO 8601 date or date-time, epoch
 * milliseconds, or a duration meaning "that long ago" (`2h`, `7d`).
 */
import { tryParseDuration } from '../core/duration.js';

export const TIME_HINT = 'an ISO 8601 time (2026-01-31 or 2026-01-31T12:00:00Z), epoch milliseconds, or a duration ago such as 2h or 7d';

export function parseTimeFilter(text: string, now: number): number | undefined {
  const s = text.trim();
  if (s === '') return undefined;
  if (/^\d{10,}$/.test(s)) return Number(s);
  const ago = tryParseDuration(s);
  if (ago !== undefined) return now - ago;
  if (/^\d{4}-\d{2}-\d{2}/.test(s)) {
    const t = Date.parse(s.includes('T') || s.length === 10 ? s : s.replace(' ', 'T'));
    return Number.isNaN(t) ? undefined : t;
  }
  return undefined;
}
