/** Sessions, live and past, with filters; auditors and admins see everyone's. */
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, errorText, type Me, type SessionSummary } from '../api';
import { Empty, ErrorNote, Visible, when } from '../format';
import { Link } from '../router';

const REFRESH_MS = 5000;

export function SessionsPage({ me }: { me: Me }) {
  const everyone = me.roles.includes('auditor') || me.roles.includes('admin');
  const [filters, setFilters] = useState({ user: '', connection: '', status: '', statement: '' });
  const [applied, setApplied] = useState(filters);
  const [sessions, setSessions] = useState<SessionSummary[]>();
  const [error, setError] = useState<string>();

  const load = useCallback(() => {
    const q = new URLSearchParams({ limit: '200' });
    for (const [k, v] of Object.entries(applied)) if (v) q.set(k, v);
    api<{ sessions: SessionSummary[] }>(`/api/sessions?${q.toString()}`)
      .then((r) => {
        setSessions(r.sessions);
        setError(undefined);
      })
      .catch((err: unknown) => setError(errorText(err)));
  }, [applied]);
  useEffect(() => {
    load();
    const t = setInterval(load, REFRESH_MS);
    return () => clearInterval(t);
  }, [load]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setApplied(filters);
  };
  const set = (k: keyof typeof filters) => (e: { target: { value: string } }) => setFilters({ ...filters, [k]: e.target.value });

  return (
    <section>
      <h1>Sessions</h1>
      <form className="filters" onSubmit={submit} aria-label="Filter sessions">
        {everyone && (
          <label>
            User <input value={filters.user} onChange={set('user')} />
          </label>
        )}
        <label>
          Connection <input value={filters.connection} onChange={set('connection')} />
        </label>
        <label>
          Status
          <select value={filters.status} onChange={set('status')}>
            <option value="">any</option>
            <option value="live">live</option>
            <option value="ended">ended</option>
          </select>
        </label>
        <label>
          Statement contains <input value={filters.statement} onChange={set('statement')} />
        </label>
        <button type="submit">Filter</button>
      </form>
      <ErrorNote error={error} />
      {sessions === undefined && !error && <p>Loading…</p>}
      {sessions?.length === 0 && <Empty>No sessions match.</Empty>}
      {sessions && sessions.length > 0 && (
        <div className="scroll" tabIndex={0} role="group" aria-label="Sessions">
          <table className="stack">
            <thead>
              <tr>
                <th scope="col">Session</th>
                <th scope="col">User</th>
                <th scope="col">Connection</th>
                <th scope="col">Started</th>
                <th scope="col">Status</th>
                <th scope="col">Instance</th>
                <th scope="col">Statements</th>
                <th scope="col">Client</th>
              </tr>
            </thead>
            <tbody>
              {sessions.map((s) => (
                <tr key={s.id}>
                  <td data-label="Session">
                    <Link to={`/sessions/${encodeURIComponent(s.id)}`} title={s.id}>
                      {/* As short as the CLI prints it (8 characters); the whole id is the link's title. */}
                      {s.id.slice(0, 8)}
                    </Link>
                  </td>
                  <td data-label="User">
                    <Visible text={s.user} oneLine />
                  </td>
                  <td data-label="Connection">{s.connection}</td>
                  <td data-label="Started">{when(s.startedAt)}</td>
                  <td data-label="Status">
                    <span className={`badge ${s.status}`}>{s.status}</span> {s.endReason ?? ''}
                  </td>
                  <td data-label="Instance">
                    {/* The gateway instance serving it, as short as the CLI prints it. */}
                    {s.instance === null ? '—' : <span title={s.instance}>{s.instance.slice(0, 8)}</span>}
                  </td>
                  <td data-label="Statements">{s.statements}</td>
                  <td data-label="Client">
                    <Visible text={s.applicationName ?? s.clientAddress} oneLine />
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
