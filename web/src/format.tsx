/** Small display helpers: times, durations, SQL with highlighting (as text nodes, never HTML). */
import type { ReactNode } from 'react';

export function when(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

export function duration(ms: number): string {
  if (ms > 0 && ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}

const KEYWORDS = new Set(
  'select from where and or not insert into values update set delete drop table create alter truncate grant revoke join left right inner outer on group by order having limit offset as with returning union all distinct case when then else end is null in like begin commit rollback index view function primary key default cascade exists between'.split(
    ' ',
  ),
);

// Control and invisible formatting characters (C0 but newline and tab, DEL, C1, bidi marks,
// embeddings, overrides and isolates, zero-width characters, separators, BOM): a statement, reason
// or value must read as what it is, so these are shown as escapes (\r, \x1b, \u202e), as psql and
// the CLI show them. The same set as the gateway's core/printable.ts.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

function escapeOf(c: string): string {
  if (c === '\r') return '\\r';
  const code = c.charCodeAt(0);
  return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** Untrusted text as a plain string with its control characters (and newlines, tabs) as escapes: for places that take text only (an <option>). */
export function escapedLine(text: string): string {
  return text.replace(new RegExp(`${CONTROL.source}|[\n\t]`, 'g'), (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : escapeOf(c)));
}

/**
 * Untrusted text with its control characters rendered as visible escapes (marked, with the code point
 * in the title); `oneLine` also shows newlines and tabs as \n and \t (table cells, one-line fields).
 */
export function Visible({ text, oneLine = false }: { text: string; oneLine?: boolean }) {
  const re = oneLine ? new RegExp(`${CONTROL.source}|[\n\t]`, 'g') : new RegExp(CONTROL.source, 'g');
  const out: ReactNode[] = [];
  let last = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    if (m.index > last) out.push(text.slice(last, m.index));
    const c = m[0];
    const shown = c === '\n' ? '\\n' : c === '\t' ? '\\t' : escapeOf(c);
    out.push(
      <span key={m.index} className="ctl" title={`control character U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`}>
        {shown}
      </span>,
    );
    last = m.index + c.length;
  }
  if (out.length === 0) return <>{text}</>;
  if (last < text.length) out.push(text.slice(last));
  return <>{out}</>;
}

/** SQL split into tokens wrapped in spans by kind; React escapes the text, so nothing is HTML. */
export function Sql({ text }: { text: string }) {
  const out: ReactNode[] = [];
  const re = /('(?:[^']|'')*'?)|("(?:[^"]|"")*"?)|(--[^\n]*)|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)|(\s+)|(.)/g;
  let m: RegExpExecArray | null;
  let i = 0;
  while ((m = re.exec(text)) !== null) {
    const [t] = m;
    const kind = m[1] ? 'str' : m[2] ? 'ident' : m[3] ? 'comment' : m[4] ? 'num' : m[5] && KEYWORDS.has(t.toLowerCase()) ? 'kw' : undefined;
    const shown = <Visible text={t} />;
    out.push(
      kind ? (
        <span key={i++} className={`sql-${kind}`}>
          {shown}
        </span>
      ) : (
        <span key={i++}>{shown}</span>
      ),
    );
  }
  return (
    <pre className="sql">
      <code>{out}</code>
    </pre>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}

export function ErrorNote({ error }: { error: string | undefined }) {
  return error ? (
    <p className="error" role="alert">
      {error}
    </p>
  ) : null;
}
