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

/** SQL split into tokens wrapped in spans by kind; React escapes the text, so nothing is HTML. */
export function Sql({ text }: { text: string }) {
  const out: ReactNode[] = [];
  const re = /('(?:[^']|'')*'?)|("(?:[^"]|"")*"?)|(--[^\n]*)|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)|(\s+)|(.)/g;
  let m: RegExpExecArray | null;
  let i = 0;
  while ((m = re.exec(text)) !== null) {
    const [t] = m;
    const kind = m[1] ? 'str' : m[2] ? 'ident' : m[3] ? 'comment' : m[4] ? 'num' : m[5] && KEYWORDS.has(t.toLowerCase()) ? 'kw' : undefined;
    out.push(kind ? <span key={i++} className={`sql-${kind}`}>{t}</span> : t);
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
