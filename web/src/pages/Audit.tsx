/**
 * The audit log for auditors and admins: each entry as a sentence (who did what to whom) with links
 * to what it is about, filters (actor, kind, target, time range), times in the viewer's zone as
 * "3 min ago" with the exact time on hover, export of the filtered entries (CSV, JSON, or JSON lines
 * with the chain fields), and the chain's verification.
 */
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, errorText, type AuditEntry, type AuditReport } from '../api';
import { relative } from '../ago';
import { Empty, ErrorNote, Visible, when } from '../format';
import { navigate, useLocation } from '../router';
import { auditSentence } from './AuditSentence';

/** Kinds of action, as the API's type prefixes. */
const KINDS: Array<[string, string]> = [
  ['', 'Any action'],
  ['access.request', 'Access requests'],
  ['access.grant', 'Grants'],
  ['access.break_glass', 'Break-glass'],
  ['session', 'Sessions'],
  ['statement', 'Statements (refused, held)'],
  ['review', 'Statement reviews'],
  ['legal_hold', 'Legal holds'],
  ['recording', 'Recordings'],
  ['login', 'Failed sign-ins'],
  ['apikey', 'API keys'],
  ['credentials', 'Backend credentials'],
  ['audit', 'Audit checkpoints'],
];

const RANGES: Array<[string, string]> = [
  ['', 'Any time'],
  ['1h', 'Last hour'],
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
  ['30d', 'Last 30 days'],
  ['custom', 'Between…'],
];

interface Filters {
  actor: string;
  type: string;
  target: string;
  range: string;
  /** datetime-local values (the viewer's zone) when range is custom. */
  from: string;
  to: string;
}

const EMPTY: Filters = { actor: '', type: '', target: '', range: '', from: '', to: '' };

/** The filters a link asks for (/audit?target=… from another entry's link). */
function filtersOf(query: URLSearchParams): Filters {
  const since = query.get('since') ?? '';
  return {
    actor: query.get('actor') ?? '',
    type: query.get('type') ?? '',
    target: query.get('target') ?? query.get('subject') ?? '',
    range: since && RANGES.some(([v]) => v === since) ? since : query.get('from') || query.get('to') ? 'custom' : '',
    from: query.get('from') ?? '',
    to: query.get('to') ?? '',
  };
}

/** The API's query for the filters: times as ISO instants, so the viewer's zone is what they typed in. */
function apiQuery(f: Filters): URLSearchParams {
  const q = new URLSearchParams();
  if (f.actor.trim()) q.set('actor', f.actor.trim());
  if (f.type) q.set('type', f.type);
  if (f.target.trim()) q.set('target', f.target.trim());
  if (f.range === 'custom') {
    if (f.from) q.set('since', new Date(f.from).toISOString());
    if (f.to) q.set('until', new Date(f.to).toISOString());
  } else if (f.range) {
    q.set('since', f.range);
  }
  return q;
}

/** The page's own address for the filters (shareable; the custom range as typed). */
function pageQuery(f: Filters): string {
  const q = new URLSearchParams();
  if (f.actor.trim()) q.set('actor', f.actor.trim());
  if (f.type) q.set('type', f.type);
  if (f.target.trim()) q.set('target', f.target.trim());
  if (f.range && f.range !== 'custom') q.set('since', f.range);
  if (f.range === 'custom') {
    if (f.from) q.set('from', f.from);
    if (f.to) q.set('to', f.to);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export function AuditPage() {
  const { query } = useLocation();
  const search = query.toString();
  const applied = filtersOf(new URLSearchParams(search));
  const [filters, setFilters] = useState<Filters>(applied);
  const [entries, setEntries] = useState<AuditEntry[]>();
  const [matched, setMatched] = useState(0);
  const [report, setReport] = useState<AuditReport>();
  const [error, setError] = useState<string>();
  const [now, setNow] = useState(() => Date.now());
  const [invalid, setInvalid] = useState<string>();

  // Following a link to another filter (an entry's "request" link) updates the form too.
  useEffect(() => setFilters(filtersOf(new URLSearchParams(search))), [search]);
  const load = useCallback(() => {
    const q = apiQuery(filtersOf(new URLSearchParams(search)));
    q.set('limit', '300');
    api<{ entries: AuditEntry[]; matched: number }>(`/api/audit?${q.toString()}`)
      .then((r) => {
        setEntries(r.entries);
        setMatched(r.matched);
        setNow(Date.now());
        setError(undefined);
      })
      .catch((err: unknown) => setError(errorText(err)));
  }, [search]);
  const [verifyError, setVerifyError] = useState<string>();
  const verify = useCallback(() => {
    setReport(undefined);
    setVerifyError(undefined);
    api<AuditReport>('/api/audit/verify')
      .then(setReport)
      .catch((err: unknown) => setVerifyError(errorText(err)));
  }, []);
  useEffect(load, [load]);
  useEffect(verify, [verify]);
  // "3 min ago" stays true while the page is open.
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 30_000);
    return () => clearInterval(t);
  }, []);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (filters.range === 'custom' && filters.from && filters.to && new Date(filters.from) > new Date(filters.to)) {
      setInvalid('“From” is after “to”.');
      return;
    }
    setInvalid(undefined);
    navigate(`/audit${pageQuery(filters)}`);
  };
  const clear = () => {
    setFilters(EMPTY);
    navigate('/audit');
  };
  const set = (k: keyof Filters) => (e: { target: { value: string } }) => setFilters({ ...filters, [k]: e.target.value });
  const exportQuery = apiQuery(applied);
  const exportHref = (format: string) => {
    const q = new URLSearchParams(exportQuery);
    q.set('format', format);
    return `/api/audit/export?${q.toString()}`;
  };
  const filtered = exportQuery.toString() !== '';
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;

  return (
    <section>
      <h1>Audit log</h1>
      <div className="row" data-testid="chain-status" role="status">
        {verifyError !== undefined ? (
          <span className="badge danger">Cannot verify the chain: {verifyError}</span>
        ) : report === undefined ? (
          <span>Verifying the chain…</span>
        ) : report.ok ? (
          <span className="badge granted">
            Chain intact: {report.entries} entries,{' '}
            {report.lastSignedSeq === null
              ? 'no signed checkpoint yet'
              : `signed up to #${report.lastSignedSeq}${report.keyTrusted ? ' with the gateway key' : ''}`}
          </span>
        ) : (
          <span className="badge danger">
            Chain broken at entry #{report.broken?.seq}: {report.broken?.why}
          </span>
        )}
        <button type="button" onClick={verify}>
          Verify again
        </button>
      </div>
      <form className="filters" onSubmit={submit} aria-label="Filter the audit log">
        <label>
          Actor <input value={filters.actor} onChange={set('actor')} placeholder="who did it" />
        </label>
        <label>
          Action
          <select value={filters.type} onChange={set('type')}>
            {KINDS.map(([v, label]) => (
              <option key={v} value={v}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Target <input value={filters.target} onChange={set('target')} placeholder="user, connection or id" />
        </label>
        <label>
          Time
          <select value={filters.range} onChange={set('range')}>
            {RANGES.map(([v, label]) => (
              <option key={v} value={v}>
                {label}
              </option>
            ))}
          </select>
        </label>
        {filters.range === 'custom' && (
          <>
            <label>
              From <input type="datetime-local" value={filters.from} onChange={set('from')} />
            </label>
            <label>
              To <input type="datetime-local" value={filters.to} onChange={set('to')} />
            </label>
          </>
        )}
        <button type="submit" className="primary">
          Filter
        </button>
        {filtered && (
          <button type="button" onClick={clear}>
            Clear filters
          </button>
        )}
      </form>
      {invalid && (
        <p className="error" role="alert">
          {invalid}
        </p>
      )}
      <ErrorNote error={error} />
      {entries && (
        <div className="row" data-testid="audit-summary">
          <span>
            {matched === entries.length
              ? `${matched} ${matched === 1 ? 'entry' : 'entries'}`
              : `Newest ${entries.length} of ${matched} entries`}
            {filtered ? ' match the filters' : ''}. Times in {zone}.
          </span>
          <span className="row">
            Export {filtered ? 'these' : 'all'}:
            <a className="button" href={exportHref('csv')} download data-testid="export-csv">
              CSV
            </a>
            <a className="button" href={exportHref('json')} download data-testid="export-json">
              JSON
            </a>
            <a
              className="button"
              href={exportHref('jsonl')}
              download
              title="With the chain fields: `jitgate audit verify --file` checks an unfiltered export"
            >
              JSON lines
            </a>
          </span>
        </div>
      )}
      {entries?.length === 0 && <Empty>No entries match.</Empty>}
      {entries && entries.length > 0 && (
        <ol className="audit-list" data-testid="audit-entries">
          {entries.map((e) => (
            <AuditRow key={e.seq} e={e} now={now} />
          ))}
        </ol>
      )}
    </section>
  );
}

function AuditRow({ e, now }: { e: AuditEntry; now: number }) {
  const { text, links } = auditSentence(e);
  return (
    <li className="audit-entry" data-type={e.type} data-testid={`audit-${e.seq}`}>
      <div className="audit-head">
        <time dateTime={e.at} title={when(e.at)}>
          {relative(e.at, now)}
        </time>
        <span className="tag">{e.type}</span>
        <span className="muted small">#{e.seq}</span>
      </div>
      <p className="audit-text">{text}</p>
      {links.length > 0 && <p className="audit-links small">{links.map((l, i) => [i > 0 ? ' · ' : '', l])}</p>}
      <details className="audit-fields">
        <summary>All fields</summary>
        <dl className="facts small">
          <dt>When</dt>
          <dd>{when(e.at)}</dd>
          <dt>Actor</dt>
          <dd>
            <Visible text={e.actor} oneLine />
          </dd>
          {e.subject && (
            <>
              <dt>Subject</dt>
              <dd className="mono">{e.subject}</dd>
            </>
          )}
          {Object.entries(e.data).map(([k, v]) => (
            <FieldRow key={k} name={k} value={v} />
          ))}
          <dt>Hash</dt>
          <dd className="mono">{e.hash}</dd>
        </dl>
      </details>
    </li>
  );
}

/** One data field in words: text as text, lists joined, times as times, nested objects as key: value. */
function FieldRow({ name, value }: { name: string; value: unknown }) {
  if (value === undefined) return null;
  return (
    <>
      <dt>{name}</dt>
      <dd>
        <Visible text={fieldText(name, value)} oneLine />
      </dd>
    </>
  );
}

function fieldText(name: string, v: unknown): string {
  if (v === null) return '—';
  if (typeof v === 'number' && /At$|^at$|Since$/.test(name) && v > 1e12) return when(v);
  if (typeof v === 'number' && /Ms$/.test(name)) return `${Math.round(v / 1000)} s`;
  if (Array.isArray(v)) return v.length ? v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ') : '—';
  if (typeof v === 'object') {
    return Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${k}: ${typeof x === 'object' && x !== null ? JSON.stringify(x) : String(x)}`)
      .join('; ');
  }
  return String(v);
}
