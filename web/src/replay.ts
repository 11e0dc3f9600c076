/**
 * The model behind watching a session recording: where each event sits on the session's timeline,
 * the marks worth finding on it (holds, refusals, masked results, errors), how playback advances,
 * and the `t=` of a link to one moment. No React here; the Session page renders it.
 */
import type { RecordedEvent } from './api';

export type MarkKind = 'hold' | 'refusal' | 'masked' | 'error';

export interface Mark {
  kind: MarkKind;
  /** Milliseconds since the session started. */
  offset: number;
  seq: number;
  label: string;
}

export interface StatementStop {
  n: number;
  seq: number;
  offset: number;
  text: string;
}

export interface Timeline {
  /** When the first event happened (epoch ms). */
  start: number;
  /** Milliseconds from the first to the last event. */
  duration: number;
  marks: Mark[];
  statements: StatementStop[];
  /** Numbers (n) of the statements held for people (approval), not just for the gateway. */
  held: Set<number>;
  /** Offsets of the events that show something, in order (what stepping moves between). */
  stops: number[];
}

/** What each mark is called and drawn as: a shape as well as a colour, so colour is never needed. */
export const MARK_KINDS: Record<MarkKind, { symbol: string; one: string; many: string }> = {
  refusal: { symbol: '✕', one: 'refusal', many: 'refusals' },
  hold: { symbol: '⏸', one: 'hold', many: 'holds' },
  masked: { symbol: '◆', one: 'masked result', many: 'masked results' },
  error: { symbol: '!', one: 'error', many: 'errors' },
};

/** Waits longer than this (session time) are cut short when "skip idle" is on. */
export const IDLE_MS = 2000;

/** Events that show nothing of their own in the timeline. */
const SILENT = new Set(['ready', 'bind']);

export function timelineOf(events: readonly RecordedEvent[]): Timeline {
  const start = events.length ? events[0]!.at : 0;
  const marks: Mark[] = [];
  const statements: StatementStop[] = [];
  const stops: number[] = [];
  const held = new Set<number>();
  // A held statement's decision comes later, as its own event.
  const decisions = new Map<number, Record<string, unknown>>();
  for (const e of events) if (e.type === 'decision') decisions.set(Number(e.data.n), (e.data.decision as Record<string, unknown>) ?? {});
  // A refused statement is followed by the error the client was sent: one mark says it.
  let lastWasRefusal = false;
  for (const e of events) {
    const offset = Math.max(0, e.at - start);
    if (SILENT.has(e.type)) continue;
    if (stops[stops.length - 1] !== offset) stops.push(offset);
    const d = e.data;
    const mark = (kind: MarkKind, label: string) => marks.push({ kind, offset, seq: e.seq, label });
    if (e.type === 'statement') {
      const n = Number(d.n);
      statements.push({ n, seq: e.seq, offset, text: String(d.text ?? '') });
      const decision = d.decision as { effect?: string; rule?: string } | undefined;
      if (decision?.effect === 'deny') mark('refusal', `Statement ${n} refused${decision.rule ? ` by ${decision.rule}` : ''}`);
      if (heldForPeople(d, decisions.get(n))) {
        held.add(n);
        mark('hold', `Statement ${n} held for approval`);
      }
      lastWasRefusal = decision?.effect === 'deny';
      continue;
    }
    if (e.type === 'decision') {
      const decision = d.decision as { effect?: string } | undefined;
      if (decision?.effect === 'deny') mark('refusal', `Held statement ${String(d.n)} denied`);
      lastWasRefusal = decision?.effect === 'deny';
      continue;
    }
    if ((e.type === 'result' || e.type === 'columns') && Array.isArray(d.masked) && d.masked.length > 0) {
      const columns = (d.columns as Array<{ name: string }> | undefined) ?? [];
      const names = (d.masked as Array<{ column: number }>).map((m) => columns[m.column]?.name ?? `#${m.column + 1}`);
      mark('masked', `Masked result: ${names.join(', ')}`);
    }
    if (e.type === 'error' && !lastWasRefusal) mark('error', `Error ${String(d.code)}: ${String(d.message)}`);
    lastWasRefusal = false;
  }
  const duration = events.length ? events[events.length - 1]!.at - start : 0;
  return { start, duration, marks, statements, held, stops };
}

/**
 * Whether a statement recorded as held waited for people: a review rule's hold carries its notice.
 * Recordings made before December 2026 also marked statements that only waited for the gateway
 * (masking re-reading its catalog) as held, without a notice: for those, the decision names a
 * review or who decided when people were involved.
 */
function heldForPeople(d: Record<string, unknown>, decided: Record<string, unknown> | undefined): boolean {
  if (d.held !== true) return false;
  if ((d.decision as { effect?: string } | undefined)?.effect === 'review') return true;
  if (!decided) return false;
  const reasons = Array.isArray(decided.reasons) ? (decided.reasons as unknown[]).map(String) : [];
  return (
    reasons.some((r) => r.startsWith('review') || r.startsWith('withdrawn')) ||
    ['approvedBy', 'deniedBy', 'by', 'decidedBy'].some((k) => decided[k] !== undefined)
  );
}

/**
 * Where playback is after `elapsedMs` of wall time at `speed`; with `skipIdle` a wait longer than
 * IDLE_MS before the next event is jumped over (to just before that event).
 */
export function advance(t: Timeline, position: number, elapsedMs: number, speed: number, skipIdle: boolean): number {
  let next = position + elapsedMs * speed;
  if (skipIdle) {
    const upcoming = t.stops.find((s) => s > position);
    if (upcoming !== undefined && upcoming - position > IDLE_MS && next < upcoming) next = Math.max(next, upcoming - IDLE_MS / 4);
  }
  return Math.min(next, t.duration);
}

/** The next (or previous) event's offset from `position`; stays put at either end. */
export function step(t: Timeline, position: number, direction: 1 | -1): number {
  if (direction === 1) return t.stops.find((s) => s > position) ?? t.duration;
  for (let i = t.stops.length - 1; i >= 0; i--) if (t.stops[i]! < position) return t.stops[i]!;
  return 0;
}

/** "1:05.3" (or "1:02:05.3"): a moment of the session as people read it on a player. */
export function clock(ms: number): string {
  const tenths = Math.floor(Math.max(0, ms) / 100);
  const s = Math.floor(tenths / 10);
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const ss = `${String(s % 60).padStart(2, '0')}.${tenths % 10}`;
  return h > 0 ? `${h}:${String(m % 60).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** The `t=` value of a link to `ms` into the session: seconds, to the millisecond an event has. */
export function momentParam(ms: number): string {
  return String(Math.round(ms) / 1000);
}

/**
 * The moment a link asks for, in ms: `?t=` or `#t=`, as seconds ("12.5") or a clock ("1:05.3").
 * Undefined when there is none or it does not read as a time.
 */
export function momentOf(search: string, hash: string): number | undefined {
  const raw = new URLSearchParams(search).get('t') ?? new URLSearchParams(hash.replace(/^#/, '')).get('t');
  if (raw === null || raw.trim() === '') return undefined;
  const parts = raw.trim().split(':');
  if (parts.length > 3 || parts.some((p) => !/^\d+(\.\d+)?$/.test(p))) return undefined;
  const seconds = parts.reduce((sum, p) => sum * 60 + Number(p), 0);
  return Number.isFinite(seconds) ? Math.round(seconds * 1000) : undefined;
}
