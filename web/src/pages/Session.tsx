/**
 * One session replayed as a timeline you can watch: statements with their decisions, held
 * statements and who approved them, results as tables (values as the gateway recorded them, i.e.
 * already masked), errors. The player (./ReplayControls.tsx) moves a cursor over the session's
 * time; the timeline shows what had happened by then. A link with ?t= (or #t=) opens at that
 * moment; without one everything is shown (and a live session is followed as it happens).
 * Admins and the session's user may end a live session.
 */
import { useCallback, useEffect, useMemo, useRef, useState, type KeyboardEvent, type MouseEvent, type ReactNode, type Ref } from 'react';
import { api, errorText, type Me, type RecordedEvent, type SessionSummary } from '../api';
import { ConfirmDialog } from '../dialog';
import { Empty, ErrorNote, Sql, Visible, when } from '../format';
import { advance, clock, momentOf, momentParam, step, timelineOf } from '../replay';
import { ReplayControls, type ReplayActions } from './ReplayControls';

/** Playback redraws this often (wall time). */
const TICK_MS = 100;
/** The cursor: milliseconds into the session, or the end (everything, following a live session). */
type Cursor = number | 'end';

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
      const r = await api<{ session: SessionSummary; events: RecordedEvent[]; verification: Verification }>(
        `/api/sessions/${encodeURIComponent(id)}/events`,
      );
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
      for (const t of [
        'session_start',
        'statement',
        'decision',
        'bind',
        'columns',
        'rows',
        'copy',
        'result',
        'complete',
        'error',
        'notice',
        'ready',
        'kill',
        'session_end',
        'recorder_note',
      ]) {
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

  const timeline = useMemo(() => timelineOf(events), [events]);
  const [cursor, setCursor] = useState<Cursor>(() => momentOf(location.search, location.hash) ?? 'end');
  const [playing, setPlaying] = useState(false);
  const [speed, setSpeed] = useState(1);
  const [skipIdle, setSkipIdle] = useState(false);
  const position = cursor === 'end' ? timeline.duration : Math.min(cursor, timeline.duration);

  useEffect(() => {
    if (!playing) return;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      const elapsed = now - last;
      last = now;
      setCursor((c) => {
        const from = c === 'end' ? timeline.duration : c;
        const next = advance(timeline, from, elapsed, speed, skipIdle);
        return next >= timeline.duration ? 'end' : next;
      });
    }, TICK_MS);
    return () => clearInterval(timer);
  }, [playing, speed, skipIdle, timeline]);
  // Playback stops at the end (where a live session is followed).
  useEffect(() => {
    if (playing && cursor === 'end') setPlaying(false);
  }, [playing, cursor]);
  // The address says the moment shown while paused, so it can be copied from the address bar too.
  useEffect(() => {
    if (playing || events.length === 0) return;
    const url = new URL(location.href);
    url.hash = '';
    if (cursor === 'end') url.searchParams.delete('t');
    else url.searchParams.set('t', momentParam(position));
    if (url.href !== location.href) history.replaceState(history.state, '', url.href);
  }, [cursor, playing, position, events.length]);

  const actions: ReplayActions = {
    toggle: () => {
      if (!playing && (cursor === 'end' || position >= timeline.duration)) setCursor(0);
      setPlaying(!playing);
    },
    seek: (ms) => setCursor(ms >= timeline.duration ? 'end' : Math.max(0, ms)),
    step: (direction) => {
      const to = step(timeline, position, direction);
      setCursor(to >= timeline.duration ? 'end' : to);
    },
    setSpeed,
    setSkipIdle,
  };
  const actionsRef = useRef(actions);
  actionsRef.current = actions;
  // The keys also work before anything in the replay has focus (nothing else on the page uses them).
  useEffect(() => {
    const onKey = (e: globalThis.KeyboardEvent) => {
      if (document.activeElement !== document.body && document.activeElement?.id !== 'main') return;
      if (replayKey(e.key, actionsRef.current)) e.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  const onReplayKey = (e: KeyboardEvent<HTMLElement>) => {
    const el = e.target as HTMLElement;
    // Typing and choosing keep their keys; a focused button keeps Space (it presses the button).
    if (el.tagName === 'SELECT' || el.tagName === 'TEXTAREA' || (el.tagName === 'INPUT' && (el as HTMLInputElement).type !== 'range'))
      return;
    if (e.key === ' ' && el.tagName === 'BUTTON') return;
    if (replayKey(e.key, actions)) e.preventDefault();
  };
  const openMoment = (ms: number) => (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    setPlaying(false);
    setCursor(ms);
  };
  const shown = cursor === 'end' ? events : events.filter((e) => e.at - timeline.start <= position);
  const later = events.length - shown.length;
  const lastShown = [...shown].reverse().find((e) => e.type !== 'ready' && e.type !== 'bind');
  const currentRef = useRef<HTMLLIElement>(null);
  useEffect(() => {
    if (playing) currentRef.current?.scrollIntoView({ block: 'nearest' });
  }, [playing, lastShown?.seq]);
  const statementCount = Math.max(session?.statements ?? 0, timeline.statements.length);

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
          <dt>Statements</dt>
          <dd data-testid="statement-count">{statementCount}</dd>
          <dt>Status</dt>
          <dd>
            <span className={`badge ${session.status}`}>{session.status}</span> {session.endReason ?? ''}{' '}
            {following && <span className="badge live">following live</span>}
          </dd>
          <dt>Recording</dt>
          <dd>
            {verification
              ? verification.ok
                ? 'intact (hash chain verified)'
                : `does NOT verify: ${verification.problems.join('; ')}`
              : '—'}
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
      <h2 id="replay-heading">Replay</h2>
      {session && events.length === 0 && <Empty>Nothing recorded yet.</Empty>}
      <div className="replay" role="region" aria-labelledby="replay-heading" onKeyDown={onReplayKey}>
        {events.length > 0 && <ReplayControls timeline={timeline} state={{ position, playing, speed, skipIdle }} actions={actions} />}
        <ol className="timeline" data-testid="timeline" aria-live={playing ? 'off' : undefined}>
          {shown.map((e) => (
            <TimelineEvent
              key={e.seq}
              e={e}
              offset={e.at - timeline.start}
              current={cursor !== 'end' && e.seq === lastShown?.seq}
              itemRef={e.seq === lastShown?.seq ? currentRef : undefined}
              openMoment={openMoment}
              heldForPeople={timeline.held.has(Number(e.data.n))}
            />
          ))}
        </ol>
        {later > 0 && (
          <p className="muted small" data-testid="replay-later">
            {later} more {later === 1 ? 'event' : 'events'} after {clock(position)}: press Play, or move the position.
          </p>
        )}
      </div>
    </section>
  );
}

function decisionText(d: Record<string, unknown> | undefined): string {
  if (!d) return '';
  const reasons = Array.isArray(d.reasons) ? (d.reasons as string[]).join(', ') : '';
  const who = d.approvedBy ?? d.deniedBy ?? d.by ?? d.decidedBy;
  const by = Array.isArray(who) ? who.join(', ') : typeof who === 'string' ? who : '';
  const comment = typeof d.comment === 'string' ? `“${d.comment}”` : '';
  return [
    String(d.effect ?? ''),
    d.rule ? `rule ${String(d.rule)}` : '',
    reasons,
    typeof d.message === 'string' ? d.message : '',
    by ? `by ${by}` : '',
    comment,
  ]
    .filter(Boolean)
    .join(' — ');
}

/** Space plays or pauses, arrows step, Home/End go to either end; whether the key was one of these. */
function replayKey(key: string, a: ReplayActions): boolean {
  if (key === ' ') a.toggle();
  else if (key === 'ArrowRight') a.step(1);
  else if (key === 'ArrowLeft') a.step(-1);
  else if (key === 'Home') a.seek(0);
  else if (key === 'End') a.seek(Number.MAX_SAFE_INTEGER);
  else return false;
  return true;
}

interface TimelineEventProps {
  e: RecordedEvent;
  /** Milliseconds into the session. */
  offset: number;
  /** The last event shown at the player's position. */
  current: boolean;
  itemRef: Ref<HTMLLIElement> | undefined;
  openMoment: (ms: number) => (e: MouseEvent<HTMLAnchorElement>) => void;
  /** A statement (or the decision of one) held for approval, not just waiting for the gateway. */
  heldForPeople: boolean;
}

function TimelineEvent({ e, offset, current, itemRef, openMoment, heldForPeople }: TimelineEventProps) {
  const d = e.data;
  const at = (
    <time className="muted" dateTime={new Date(e.at).toISOString()} title={new Date(e.at).toLocaleString()}>
      {clock(offset)}
    </time>
  );
  const [className, body] = eventBody(e, d, at, offset, openMoment, heldForPeople);
  if (!className) return null;
  return (
    <li className={`${className}${current ? ' current' : ''}`} ref={itemRef} aria-current={current ? 'step' : undefined} data-seq={e.seq}>
      {body}
    </li>
  );
}

/** The class and content of one event's line in the timeline; no class for events that show nothing. */
function eventBody(
  e: RecordedEvent,
  d: Record<string, unknown>,
  at: ReactNode,
  offset: number,
  openMoment: TimelineEventProps['openMoment'],
  heldForPeople: boolean,
): [string, ReactNode] {
  switch (e.type) {
    case 'session_start':
      return [
        'ev start',
        <>
          {at} Session started by <strong>{String(d.user)}</strong> from {String(d.clientAddress)} (
          {String(d.applicationName ?? 'unknown client')})
        </>,
      ];
    case 'statement': {
      const decision = d.decision as Record<string, unknown> | undefined;
      return [
        `ev statement ${decision?.effect === 'deny' ? 'denied' : ''}`,
        <>
          {at} Statement {String(d.n)}{' '}
          {heldForPeople ? (
            <span className="badge pending">held for approval</span>
          ) : (
            d.held === true && <span className="badge">waited for the gateway</span>
          )}{' '}
          {decision?.effect === 'deny' && <span className="badge denied">refused</span>}{' '}
          <a
            className="small"
            href={`?t=${momentParam(offset)}`}
            onClick={openMoment(offset)}
            aria-label={`Link to statement ${String(d.n)} at ${clock(offset)}`}
          >
            link
          </a>
          <Sql text={String(d.text ?? '')} />
          {decision && decision.effect !== 'allow' && (
            <p className="decision">
              Decision: <Visible text={decisionText(decision)} oneLine />
            </p>
          )}
        </>,
      ];
    }
    case 'decision':
      // Waited only for the gateway (masking re-read its catalog): not a decision anyone made.
      if (!heldForPeople && (d.decision as { effect?: string } | undefined)?.effect === 'allow') {
        return [
          'ev decision',
          <>
            {at} Statement {String(d.n)} went ahead once the gateway had checked it
          </>,
        ];
      }
      return [
        'ev decision',
        <>
          {at} Held statement {String(d.n)} decided: <Visible text={decisionText(d.decision as Record<string, unknown>)} oneLine /> (waited{' '}
          {Math.round(Number(d.waitedMs ?? 0) / 1000)} s)
        </>,
      ];
    case 'result':
      return [
        `ev result${maskedOf(d) ? ' masked' : ''}`,
        <>
          {at} {String(d.tag)} ({String(d.count)} {Number(d.count) === 1 ? 'row' : 'rows'})
          <MaskedNote d={d} />
          <ResultTable columns={(d.columns as Array<{ name: string }>) ?? []} rows={(d.rows as Array<Array<string | null>>) ?? []} />
        </>,
      ];
    case 'columns':
      return [
        `ev result${maskedOf(d) ? ' masked' : ''}`,
        <>
          {at} Columns: {((d.columns as Array<{ name: string }>) ?? []).map((c) => c.name).join(', ')}
          <MaskedNote d={d} />
        </>,
      ];
    case 'rows':
      return ['ev result', <ResultTable columns={[]} rows={(d.rows as Array<Array<string | null>>) ?? []} />];
    case 'complete':
      return [
        'ev complete',
        <>
          {at} {String(d.tag)}
        </>,
      ];
    case 'error':
      return [
        'ev error',
        <>
          {at} Error {String(d.code)}: <Visible text={String(d.message)} />
        </>,
      ];
    case 'notice':
      return [
        'ev notice',
        <>
          {at} Notice: <Visible text={String(d.message)} />
        </>,
      ];
    case 'kill':
      return [
        'ev error',
        <>
          {at} Ended by {String(d.by)}: <Visible text={String(d.reason)} oneLine />
        </>,
      ];
    case 'session_end':
      return [
        'ev end',
        <>
          {at} Session ended ({String(d.reason)}), {String(d.statements)} {Number(d.statements) === 1 ? 'statement' : 'statements'}
        </>,
      ];
    case 'ready':
    case 'bind':
      return ['', null];
    default:
      return [
        'ev',
        <>
          {at} {e.type}
        </>,
      ];
  }
}

/** The columns of a result the gateway masked (name, rule), or undefined when none were. */
function maskedOf(d: Record<string, unknown>): string | undefined {
  if (!Array.isArray(d.masked) || d.masked.length === 0) return undefined;
  const columns = (d.columns as Array<{ name: string }> | undefined) ?? [];
  return (d.masked as Array<{ column: number; rule: string }>)
    .map((m) => `${columns[m.column]?.name ?? `#${m.column + 1}`} (rule ${m.rule})`)
    .join(', ');
}

function MaskedNote({ d }: { d: Record<string, unknown> }) {
  const masked = maskedOf(d);
  return masked ? (
    <p className="small masked-note">
      <span aria-hidden="true">◆ </span>Masked by the gateway: <Visible text={masked} oneLine />
    </p>
  ) : null;
}

function ResultTable({ columns, rows }: { columns: Array<{ name: string }>; rows: Array<Array<string | null>> }) {
  if (rows.length === 0 && columns.length === 0) return null;
  return (
    <div className="scroll" tabIndex={0} role="group" aria-label="Result rows">
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
