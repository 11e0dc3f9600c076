/** The audit log for auditors and admins: filters, the chain's verification status, export. */
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, errorText, type AuditEntry, type AuditReport } from '../api';
import { Empty, ErrorNote, Visible, when } from '../format';

export function AuditPage() {
  const [filters, setFilters] = useState({ type: '', actor: '', subject: '', since: '' });
  const [applied, setApplied] = useState(filters);
  const [entries, setEntries] = useState<AuditEntry[]>();
  const [report, setReport] = useState<AuditReport>();
  const [error, setError] = useState<string>();

  const load = useCallback(() => {
    const q = new URLSearchParams({ limit: '300' });
    for (const [k, v] of Object.entries(applied)) if (v) q.set(k, v);
    api<{ entries: AuditEntry[] }>(`/api/audit?${q.toString()}`)
      .then((r) => {
        setEntries(r.entries);
        setError(undefined);
      })
      .catch((err: unknown) => setError(errorText(err)));
  }, [applied]);
  const verify = useCallback(() => {
    setReport(undefined);
    api<AuditReport>('/api/audit/verify')
      .then(setReport)
      .catch((err: unknown) => setError(errorText(err)));
  }, []);
  useEffect(load, [load]);
  useEffect(verify, [verify]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setApplied(filters);
  };
  const set = (k: keyof typeof filters) => (e: { target: { value: string } }) => setFilters({ ...filters, [k]: e.target.value });
  const exportHref = `/api/audit/export${applied.since ? `?since=${encodeURIComponent(applied.since)}` : ''}`;

  return (
    <section>
      <h1>Audit log</h1>
      <div className="row" data-testid="chain-status" role="status">
        {report === undefined ? (
          <span>Verifying the chain…</span>
        ) : report.ok ? (
          <span className="badge granted">
            Chain intact: {report.entries} entries,{' '}
            {report.lastSignedSeq === null ? 'no signed checkpoint yet' : `signed up to #${report.lastSignedSeq}${report.keyTrusted ? ' with the gateway key' : ''}`}
          </span>
        ) : (
          <span className="badge danger">
            Chain broken at entry #{report.broken?.seq}: {report.broken?.why}
          </span>
        )}
        <button type="button" onClick={verify}>
          Verify again
        </button>
        <a className="button" href={exportHref} download>
          Export (JSON lines)
        </a>
      </div>
      <form className="filters" onSubmit={submit} aria-label="Filter the audit log">
        <label>
          Type <input value={filters.type} onChange={set('type')} placeholder="access, session.killed" />
        </label>
        <label>
          Actor <input value={filters.actor} onChange={set('actor')} />
        </label>
        <label>
          Subject <input value={filters.subject} onChange={set('subject')} />
        </label>
        <label>
          Since <input value={filters.since} onChange={set('since')} placeholder="24h, 2026-01-31" />
        </label>
        <button type="submit">Filter</button>
      </form>
      <ErrorNote error={error} />
      {entries?.length === 0 && <Empty>No entries match.</Empty>}
      {entries && entries.length > 0 && (
        <div className="scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">When</th>
                <th scope="col">Type</th>
                <th scope="col">Actor</th>
                <th scope="col">Subject</th>
                <th scope="col">Details</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e) => (
                <tr key={e.seq}>
                  <td>{e.seq}</td>
                  <td>{when(e.at)}</td>
                  <td>{e.type}</td>
                  <td>
                    <Visible text={e.actor} oneLine />
                  </td>
                  <td className="mono">{e.subject ?? ''}</td>
                  <td className="mono details">
                    <Visible text={JSON.stringify(e.data)} oneLine />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
