/**
 * Policy review on the Configuration page: the "Policy check" form (what the gateway would do with
 * a statement, without running it: POST /api/policy/test) and the masking report (what masking did
 * over a period, from the recordings: GET /api/masking/report).
 */
import { useId, useState, type FormEvent } from 'react';
import { api, errorText } from '../api';
import { duration, Empty, ErrorNote, Sql, when } from '../format';

interface ColumnMask {
  rule: string;
  reason: string;
  strategy: string;
}
interface ColumnExplanation {
  index: number;
  name?: string;
  sources: string[];
  derived: boolean;
  mask?: ColumnMask;
}
interface StatementExplanation {
  columns: ColumnExplanation[] | 'unknown' | null;
  fallback?: ColumnMask;
  reads: Array<{ source: string; rule: string }>;
}
interface PolicyTestResult {
  connection: string;
  protocol: string;
  user: string;
  groups: string[];
  groupsFrom: { kind: 'stated' } | { kind: 'sign-in'; at: number; issuer: string } | { kind: 'directory'; issuer: string };
  outcome: 'allowed' | 'refused' | 'held';
  refused?: { by: string; rule: string | null; reasons: string[]; message: string };
  held?: {
    rule: string;
    reasons: string[];
    what: string;
    approvers: string[];
    approvals: number;
    timeoutMs: number;
    reason: string | null;
  };
  masking: {
    rules: string[];
    detectors: string[];
    statements?: StatementExplanation[];
    keys?: Array<{ key: string; rule: string; strategy: string }>;
  } | null;
  notes: string[];
}

export function PolicyCheck({ connections }: { connections: string[] }) {
  const id = useId();
  const [connection, setConnection] = useState(connections[0] ?? '');
  const [user, setUser] = useState('');
  const [groups, setGroups] = useState('');
  const [statement, setStatement] = useState('');
  const [result, setResult] = useState<PolicyTestResult>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    setResult(undefined);
    const list = groups
      .split(',')
      .map((g) => g.trim())
      .filter((g) => g !== '');
    try {
      setResult(
        await api<PolicyTestResult>('/api/policy/test', {
          method: 'POST',
          body: { connection, user, statement, ...(list.length ? { groups: list } : {}) },
        }),
      );
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <p className="muted">
        What the gateway would do with a statement — allowed, refused, held for review, and which result columns it would mask — without
        running it.
      </p>
      <form onSubmit={(e) => void submit(e)} className="stack" aria-label="Policy check">
        <label htmlFor={`${id}-connection`}>Connection</label>
        <select id={`${id}-connection`} value={connection} onChange={(e) => setConnection(e.target.value)}>
          {connections.map((c) => (
            <option key={c} value={c}>
              {c}
            </option>
          ))}
        </select>
        <label htmlFor={`${id}-user`}>User</label>
        <input id={`${id}-user`} value={user} onChange={(e) => setUser(e.target.value)} required autoComplete="off" />
        <label htmlFor={`${id}-groups`}>Groups</label>
        <input
          id={`${id}-groups`}
          value={groups}
          onChange={(e) => setGroups(e.target.value)}
          placeholder="comma-separated; empty: those of the user's last sign-in"
          autoComplete="off"
        />
        <label htmlFor={`${id}-statement`}>Statement</label>
        <textarea
          id={`${id}-statement`}
          value={statement}
          onChange={(e) => setStatement(e.target.value)}
          rows={4}
          required
          placeholder="SQL, or a Redis command line"
          className="mono"
        />
        <button type="submit" className="primary" disabled={busy}>
          Check
        </button>
      </form>
      <ErrorNote error={error} />
      {result && <PolicyTestAnswer r={result} />}
    </>
  );
}

function PolicyTestAnswer({ r }: { r: PolicyTestResult }) {
  const from =
    r.groupsFrom.kind === 'stated'
      ? 'as given'
      : r.groupsFrom.kind === 'directory'
        ? `from the ${r.groupsFrom.issuer}`
        : `from their sign-in ${when(r.groupsFrom.at)} via ${r.groupsFrom.issuer}`;
  return (
    <div className="policy-answer" data-testid="policy-answer" aria-live="polite">
      <p className="small">
        {r.user} on {r.connection} ({r.protocol}), groups {r.groups.length ? r.groups.join(', ') : 'none'}{' '}
        <span className="muted">({from})</span>
      </p>
      {r.outcome === 'refused' && r.refused && (
        <>
          <p className="verdict refused">
            <strong>Refused</strong> by{' '}
            {r.refused.by === 'guardrail'
              ? `guardrail “${r.refused.rule}”`
              : r.refused.by === 'masking'
                ? 'masking'
                : 'a built-in protection'}{' '}
            ({r.refused.reasons.join(', ')})
          </p>
          <p className="small">
            The client would get: <span className="mono">{r.refused.message}</span>
          </p>
        </>
      )}
      {r.outcome === 'held' && r.held && (
        <p className="verdict held">
          <strong>Held for review</strong> by rule “{r.held.rule}” ({r.held.reasons.join(', ')}): {r.held.what}
          {r.held.reason ? ` — ${r.held.reason}` : ''}. {r.held.approvals} approval{r.held.approvals === 1 ? '' : 's'} from{' '}
          {r.held.approvers.join(', ')}, within {duration(r.held.timeoutMs)}.
        </p>
      )}
      {r.outcome === 'allowed' && (
        <p className="verdict allowed">
          <strong>Allowed</strong>
        </p>
      )}
      <MaskingAnswer m={r.masking} />
      {r.notes.length > 0 && (
        <ul className="small muted">
          {r.notes.map((n) => (
            <li key={n}>{n}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

function MaskingAnswer({ m }: { m: PolicyTestResult['masking'] }) {
  if (!m) return <p className="small">No masking rule or detector applies to this user on this connection.</p>;
  return (
    <>
      <p className="small">
        Masking rules: {m.rules.length ? m.rules.join(', ') : 'none'}; detectors: {m.detectors.length ? m.detectors.join(', ') : 'none'}
      </p>
      {(m.keys ?? []).map((k) => (
        <p key={k.key} className="small">
          Key <span className="mono">{k.key}</span>: masked by rule “{k.rule}” ({k.strategy})
        </p>
      ))}
      {(m.statements ?? []).map((s, i) =>
        Array.isArray(s.columns) ? (
          <table key={i} aria-label="Result columns">
            <thead>
              <tr>
                <th scope="col">Column</th>
                <th scope="col">Mask</th>
                <th scope="col">From</th>
              </tr>
            </thead>
            <tbody>
              {s.columns.map((c) => (
                <tr key={c.index}>
                  <th scope="row">{c.name ?? `#${c.index + 1}`}</th>
                  <td>{c.mask ? `rule ${c.mask.rule} (${c.mask.reason}, ${c.mask.strategy})` : 'clear'}</td>
                  <td className="mono">
                    {c.derived ? 'computed from ' : ''}
                    {c.sources.join(', ') || '—'}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p key={i} className="small">
            {s.columns === null
              ? 'No rows come back.'
              : 'Result columns cannot be predicted: each is masked by the origin the server reports.'}
          </p>
        ),
      )}
    </>
  );
}

interface MaskingReport {
  sessions: { read: number; unreadable: number; limited: boolean };
  columns: Array<{ connection: string; rule: string; reason: string; column: string; results: number; rows: number }>;
  refusals: Array<{ connection: string; reason: string; statement: string; count: number; lastAt: number }>;
  detectorOnly: Array<{ connection: string; column: string; detectors: string[]; results: number; rows: number }>;
}

export function MaskingReportView() {
  const [since, setSince] = useState('7d');
  const [report, setReport] = useState<MaskingReport>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const id = useId();

  async function load(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      setReport(await api<MaskingReport>(`/api/masking/report?since=${encodeURIComponent(since)}`));
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <p className="muted">
        What masking did, from the session recordings. Content detectors are a safety net, not masking: a column only they masked is a
        candidate for a rule.
      </p>
      <form onSubmit={(e) => void load(e)} className="inline" aria-label="Masking report">
        <label htmlFor={`${id}-since`}>Since</label>
        <input id={`${id}-since`} value={since} onChange={(e) => setSince(e.target.value)} size={12} />
        <button type="submit" disabled={busy}>
          Show report
        </button>
      </form>
      <ErrorNote error={error} />
      {report && (
        <div data-testid="masking-report">
          <p className="small">
            {report.sessions.read} session recording{report.sessions.read === 1 ? '' : 's'} read
            {report.sessions.limited ? ' (the newest only)' : ''}.
          </p>
          <h3>Masked columns</h3>
          {report.columns.length === 0 ? (
            <Empty>Nothing was masked by a rule.</Empty>
          ) : (
            <table aria-label="Masked columns">
              <thead>
                <tr>
                  {['Rule', 'Reason', 'Connection', 'Column', 'Results', 'Rows'].map((h) => (
                    <th key={h} scope="col">
                      {h}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {report.columns.map((c) => (
                  <tr key={`${c.connection}/${c.rule}/${c.reason}/${c.column}`}>
                    <th scope="row">{c.rule}</th>
                    <td>{c.reason}</td>
                    <td>{c.connection}</td>
                    <td>{c.column}</td>
                    <td>{c.results}</td>
                    <td>{c.rows}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h3>Statements refused by masking</h3>
          {report.refusals.length === 0 ? (
            <Empty>No statement was refused by masking.</Empty>
          ) : (
            <ul>
              {report.refusals.map((s) => (
                <li key={`${s.connection}/${s.reason}/${s.statement}`}>
                  {s.count}× {s.reason} on {s.connection}: <Sql text={s.statement} />
                </li>
              ))}
            </ul>
          )}
          <h3>Columns only detectors masked</h3>
          {report.detectorOnly.length === 0 ? (
            <Empty>None.</Empty>
          ) : (
            <ul>
              {report.detectorOnly.map((c) => (
                <li key={`${c.connection}/${c.column}`}>
                  {c.connection}: <span className="mono">{c.column}</span> ({c.detectors.join(', ')}) in {c.rows} recorded row
                  {c.rows === 1 ? '' : 's'}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </>
  );
}
