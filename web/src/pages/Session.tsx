/**
 * One session replayed as a timeline: statements with their decisions, held statements and who
 * approved them, results as tables (values as the gateway recorded them, i.e. already masked),
 * errors. A live session is followed as it happens; admins and the session's user may end it.
 */
import { useCallback, useEffect, useState } from 'react';
import { api, errorText, type Me, type RecordedEvent, type SessionSummary } from '../api';
import { ConfirmDialog } from '../dialog';
import { Empty, ErrorNote, Sql, Visible, when } from '../format';

interface Verification {
  ok: boolean;
  problems: string[];
  open: boolean;
}

export function SessionPage({ id, me }: { id: string; me: Me }) {
  const [session, setSession] = useState<SessionSummary>();
  const [events, setEvents] = useState<RecordedEvent[]>([]);
  const [verification, setVerification] = useState<Verification>();
  const [following, setFollowing] = useState(false);
  const [error, setError] = useState<string>();

  const load = useCallback(async () => {
    try {
      const r = await api<{ session: SessionSummary; events: RecordedEvent[]; verification: Verification }>(`/api/sessions/${encodeURIComponent(id)}/events`);
      setSession(r.session);
      setEvents(r.events);
      setVerification(r.verification);
      setError(undefined);
      return r;
    } catch (err) {
      setError(errorText(err));
      return undefined;
    }
  }, [id]);

  useEffect(() => {
    let stream: EventSource | undefined;
    let cancelled = false;
    void load().then((r) => {
      if (cancelled || !r || r.session.status !== 'live') return;
      const last = r.events.length ? r.events[r.events.length - 1]!.seq : -1;
      stream = new EventSource(`/api/sessions/${encodeURIComponent(r.session.id)}/events/stream?after=${last}`);
      setFollowing(true);
      const add = (e: MessageEvent<string>) => {
        const ev = JSON.parse(e.data) as RecordedEvent;
        setEvents((prev) => (prev.some((p) => p.seq === ev.seq) ? prev : [...prev, ev]));
      };
      for (const t of ['session_start', 'statement', 'decision', 'bind', 'columns', 'rows', 'copy', 'result', 'complete', 'error', 'notice', 'ready', 'kill', 'session_end', 'recorder_note']) {
        stream.addEventListener(t, add);
      }
      stream.addEventListener('end', () => {
        stream?.close();
        setFollowing(false);
        void load();
      });
    });
    return () => {
      cancelled = true;
      stream?.close();
    };
  }, [load]);

  const mayKill = session && session.status === 'live' && session.attached && (me.roles.includes('admin') || session.user === me.user);
  const [asking, setAsking] = useState(false);
  const [ended, setEnded] = useState<string>();
  const kill = async (reason: string) => {
    await api(`/api/sessions/${encodeURIComponent(id)}/kill`, { method: 'POST', body: { reason } });
    setEnded(`Session ended: ${reason}`);
    void load();
  };

  return (
    <section>
      {/* The whole id: it is what `jitgate replay` and `jitgate kill` are given when pasted. */}
      <h1>Session {session ? session.id : id}</h1>
      <ErrorNote error={error} />
      {session && (
        <dl className="facts">
          <dt>User</dt>
          <dd>{session.user}</dd>
          <dt>Connection</dt>
          <dd>{session.connection}</dd>
          <dt>Started</dt>
          <dd>{when(session.startedAt)}</dd>
          <dt>Status</dt>
          <dd>
            <span className={`badge ${session.status}`}>{session.status}</span> {session.endReason ?? ''} {following && <span className="badge live">following live</span>}
          </dd>
          <dt>Recording</dt>
          <dd>
            {verification ? (verification.ok ? 'intact (hash chain verified)' : `does NOT verify: ${verification.problems.join('; ')}`) : '—'}
          </dd>
        </dl>
      )}
      {mayKill && (
        <button type="button" className="danger" onClick={() => setAsking(true)} aria-haspopup="dialog">
          End session now
        </button>
      )}
      {ended && (
        <p className="notice" role="status">
          {ended}
        </p>
      )}
      {asking && (
        <ConfirmDialog
          title="End this session?"
          confirmLabel="End session"
          danger
          reason={{ label: 'Reason', required: true, hint: 'Recorded with the session and in the audit log.' }}
          onConfirm={kill}
          onClose={() => setAsking(false)}
        >
          <p>
            {session?.user}&rsquo;s connection to {session?.connection} is closed at once. This cannot be undone.
          </p>
        </ConfirmDialog>
      )}
      <h2>Timeline</h2>
      {session && events.length === 0 && <Empty>Nothing recorded yet.</Empty>}
      <ol className="timeline" data-testid="timeline">
        {events.map((e) => (
          <TimelineEvent key={e.seq} e={e} />
        ))}
      </ol>
    </section>
  );
}

function decisionText(d: Record<string, unknown> | undefined): string {
  if (!d) return '';
  const reasons = Array.isArray(d.reasons) ? (d.reasons as string[]).join(', ') : '';
  const who = d.approvedBy ?? d.deniedBy ?? d.by ?? d.decidedBy;
  const by = Array.isArray(who) ? who.join(', ') : typeof who === 'string' ? who : '';
  const comment = typeof d.comment === 'string' ? `“${d.comment}”` : '';
  return [String(d.effect ?? ''), d.rule ? `rule ${String(d.rule)}` : '', reasons, typeof d.message === 'string' ? d.message : '', by ? `by ${by}` : '', comment]
    .filter(Boolean)
    .join(' — ');
}

function TimelineEvent({ e }: { e: RecordedEvent }) {
  const d = e.data;
  const at = <time className="muted">{new Date(e.at).toLocaleTimeString()}</time>;
  switch (e.type) {
    case 'session_start':
      return (
        <li className="ev start">
          {at} Session started by <strong>{String(d.user)}</strong> from {String(d.clientAddress)} ({String(d.applicationName ?? 'unknown client')})
        </li>
      );
    case 'statement': {
      const decision = d.decision as Record<string, unknown> | undefined;
      return (
        <li className={`ev statement ${decision?.effect === 'deny' ? 'denied' : ''}`}>
          {at} Statement {String(d.n)} {d.held === true && <span className="badge pending">held for approval</span>}
          <Sql text={String(d.text ?? '')} />
          {decision && decision.effect !== 'allow' && (
            <p className="decision">
              Decision: <Visible text={decisionText(decision)} oneLine />
            </p>
          )}
        </li>
      );
    }
    case 'decision':
      return (
        <li className="ev decision">
          {at} Held statement {String(d.n)} decided: <Visible text={decisionText(d.decision as Record<string, unknown>)} oneLine /> (waited {Math.round(Number(d.waitedMs ?? 0) / 1000)} s)
        </li>
      );
    case 'result':
      return (
        <li className="ev result">
          {at} {String(d.tag)} ({String(d.count)} {Number(d.count) === 1 ? 'row' : 'rows'})
          <ResultTable columns={(d.columns as Array<{ name: string }>) ?? []} rows={(d.rows as Array<Array<string | null>>) ?? []} />
        </li>
      );
    case 'columns':
      return (
        <li className="ev result">
          {at} Columns: {((d.columns as Array<{ name: string }>) ?? []).map((c) => c.name).join(', ')}
        </li>
      );
    case 'rows':
      return (
        <li className="ev result">
          <ResultTable columns={[]} rows={(d.rows as Array<Array<string | null>>) ?? []} />
        </li>
      );
    case 'complete':
      return (
        <li className="ev complete">
          {at} {String(d.tag)}
        </li>
      );
    case 'error':
      return (
        <li className="ev error" role="note">
          {at} Error {String(d.code)}: <Visible text={String(d.message)} />
        </li>
      );
    case 'notice':
      return (
        <li className="ev notice">
          {at} Notice: <Visible text={String(d.message)} />
        </li>
      );
    case 'kill':
      return (
        <li className="ev error">
          {at} Ended by {String(d.by)}: <Visible text={String(d.reason)} oneLine />
        </li>
      );
    case 'session_end':
      return (
        <li className="ev end">
          {at} Session ended ({String(d.reason)}), {String(d.statements)} statement(s)
        </li>
      );
    case 'ready':
    case 'bind':
      return null;
    default:
      return (
        <li className="ev">
          {at} {e.type}
        </li>
      );
  }
}

function ResultTable({ columns, rows }: { columns: Array<{ name: string }>; rows: Array<Array<string | null>> }) {
  if (rows.length === 0 && columns.length === 0) return null;
  return (
    <div className="scroll">
      <table className="result">
        {columns.length > 0 && (
          <thead>
            <tr>
              {columns.map((c, i) => (
                <th key={i} scope="col">
                  {c.name}
                </th>
              ))}
            </tr>
          </thead>
        )}
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              {r.map((v, j) => (
                <td key={j}>{v === null ? <span className="muted">NULL</span> : <Visible text={String(v)} oneLine />}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
