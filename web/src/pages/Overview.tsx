/**
 * Overview: the landing page for approvers, auditors and admins. First what needs the reader now
 * (access requests and held statements they may decide, oldest first, with how long each has
 * waited), then live sessions, then charts of the last 24 hours or 7 days: sessions and statements
 * per connection, refusals and holds by rule, and how long approvals took. Re-read on live events.
 */
import { lazy, Suspense, useCallback, useEffect, useState } from 'react';
import { api, errorText, type AccessRequest, type Me, type Review, type SessionSummary } from '../api';
import { span } from '../ago';
import { duration, Empty, ErrorNote, Visible } from '../format';
import { useLiveEvents } from '../live';
import { Link } from '../router';

// The charting library loads with the charts, not with the console: other pages stay light.
const Charts = lazy(() => import('./OverviewCharts'));

export interface Waits {
  count: number;
  medianMs: number | null;
  p90Ms: number | null;
  buckets: Array<{ label: string; count: number }>;
}

export interface Stats {
  window: '24h' | '7d';
  scope: 'everyone' | 'mine';
  connections: Array<{ connection: string; sessions: number; statements: number }>;
  refusals: Array<{ rule: string; count: number }>;
  holds: Array<{ rule: string; count: number }>;
  approvals: { requests: Waits; statements: Waits };
  waiting: { requests: Array<{ connection: string; count: number }>; statements: Array<{ connection: string; count: number }> } | null;
}

type Waiting = { kind: 'request'; at: string; request: AccessRequest } | { kind: 'review'; at: string; review: Review };

const WINDOWS = [
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
] as const;
/** Ages are re-rendered this often; data comes from live events (and a slow re-read as a fallback). */
const TICK_MS = 15_000;
const REFRESH_MS = 30_000;

export function OverviewPage({ me }: { me: Me }) {
  const [windowName, setWindowName] = useState<'24h' | '7d'>('24h');
  const [stats, setStats] = useState<Stats>();
  const [waiting, setWaiting] = useState<Waiting[]>();
  const [mine, setMine] = useState<Waiting[]>([]);
  const [live, setLive] = useState<SessionSummary[]>();
  const [error, setError] = useState<string>();
  const [now, setNow] = useState(Date.now());

  const loadStats = useCallback(() => {
    api<Stats>(`/api/stats?window=${windowName}`)
      .then((s) => setStats(s))
      .catch((err: unknown) => setError(errorText(err)));
  }, [windowName]);

  const loadWaiting = useCallback(async () => {
    try {
      const [requests, reviews] = await Promise.all([
        api<{ mine: AccessRequest[]; approvable: AccessRequest[] }>('/api/requests?state=pending'),
        api<{ reviews: Review[] }>('/api/reviews?state=pending'),
      ]);
      const forMe: Waiting[] = [
        ...requests.approvable.map((r): Waiting => ({ kind: 'request', at: r.createdAt, request: r })),
        ...reviews.reviews
          .filter((r) => r.canApprove && r.user !== me.user)
          .map((r): Waiting => ({ kind: 'review', at: r.createdAt ?? '', review: r })),
      ];
      const own: Waiting[] = [
        ...requests.mine.map((r): Waiting => ({ kind: 'request', at: r.createdAt, request: r })),
        ...reviews.reviews.filter((r) => r.user === me.user).map((r): Waiting => ({ kind: 'review', at: r.createdAt ?? '', review: r })),
      ];
      const oldestFirst = (a: Waiting, b: Waiting) => a.at.localeCompare(b.at);
      setWaiting(forMe.sort(oldestFirst));
      setMine(own.sort(oldestFirst));
    } catch (err) {
      setError(errorText(err));
    }
  }, [me.user]);

  const loadLive = useCallback(() => {
    api<{ sessions: SessionSummary[] }>('/api/sessions?status=live&limit=50')
      .then((r) => setLive(r.sessions))
      .catch((err: unknown) => setError(errorText(err)));
  }, []);

  useEffect(loadStats, [loadStats]);
  useEffect(() => {
    void loadWaiting();
    loadLive();
    const refresh = setInterval(() => {
      void loadWaiting();
      loadLive();
      loadStats();
    }, REFRESH_MS);
    const tick = setInterval(() => setNow(Date.now()), TICK_MS);
    return () => {
      clearInterval(refresh);
      clearInterval(tick);
    };
  }, [loadWaiting, loadLive, loadStats]);
  useLiveEvents(['request.', 'review.', 'grant.'], () => {
    setNow(Date.now());
    void loadWaiting();
    loadStats();
  });

  // Sessions are everyone's for auditors and admins; anyone else sees their own (GET /api/sessions).
  const allSessions = me.roles.includes('auditor') || me.roles.includes('admin');
  return (
    <section className="overview">
      <h1>Overview</h1>
      <ErrorNote error={error} />

      <section aria-labelledby="needs-you">
        <h2 id="needs-you">Needs you now</h2>
        {waiting === undefined && !error && <p>Loading…</p>}
        {waiting?.length === 0 && <Empty>Nothing is waiting for you. New requests and held statements appear here as they arrive.</Empty>}
        {waiting && waiting.length > 0 && <WaitingList items={waiting} now={now} testId="needs-you" />}
        {mine.length > 0 && (
          <>
            <h3>Yours, waiting for approvers</h3>
            <WaitingList items={mine} now={now} testId="mine-waiting" />
          </>
        )}
        {stats?.waiting && (
          <p className="small muted" data-testid="waiting-totals">
            Waiting across the gateway: {count(sum(stats.waiting.requests), 'access request')} and{' '}
            {count(sum(stats.waiting.statements), 'held statement')}.
          </p>
        )}
      </section>

      <section aria-labelledby="live-sessions">
        <h2 id="live-sessions">{allSessions ? 'Live sessions' : 'Your live sessions'}</h2>
        {live === undefined && !error && <p>Loading…</p>}
        {live?.length === 0 && <Empty>{allSessions ? 'No session is open right now.' : 'You have no open session.'}</Empty>}
        {live && live.length > 0 && (
          <ul className="tiles" data-testid="live-sessions">
            {live.map((s) => (
              <li key={s.id} className="tile">
                <Link to={`/sessions/${encodeURIComponent(s.id)}`} title={s.id}>
                  <strong>
                    <Visible text={s.user} oneLine />
                  </strong>{' '}
                  on {s.connection}
                </Link>
                <span className="muted small">
                  {' '}
                  <Visible text={s.applicationName ?? s.clientAddress} oneLine />, for {span(now - new Date(s.startedAt).getTime())}
                </span>
              </li>
            ))}
          </ul>
        )}
      </section>

      <section aria-labelledby="activity">
        <div className="heading-row">
          <h2 id="activity">Activity{stats?.scope === 'mine' ? ' (yours)' : ''}</h2>
          <div className="segmented" role="group" aria-label="Time window">
            {WINDOWS.map(([w, label]) => (
              <button key={w} type="button" aria-pressed={windowName === w} onClick={() => setWindowName(w)}>
                {label}
              </button>
            ))}
          </div>
        </div>
        {stats === undefined && !error && <p>Loading…</p>}
        {stats && (
          <Suspense fallback={<p>Loading charts…</p>}>
            <Charts stats={stats} />
          </Suspense>
        )}
      </section>
    </section>
  );
}

function WaitingList({ items, now, testId }: { items: Waiting[]; now: number; testId: string }) {
  return (
    <ol className="waiting" data-testid={testId}>
      {items.map((i) => {
        const age = span(now - new Date(i.at).getTime());
        return i.kind === 'request' ? (
          <li key={`r-${i.request.id}`} className="tile" data-testid={`waiting-request-${i.request.id}`}>
            <span className="badge pending">access request</span>{' '}
            <Link to="/approvals">
              <Visible text={i.request.user} oneLine /> asks for {i.request.connection} for {duration(i.request.durationMs)}
            </Link>
            {i.request.reason && (
              <span className="muted">
                {' '}
                — <Visible text={i.request.reason} oneLine />
              </span>
            )}
            <span className="age" title={i.at}>
              waiting {age}
            </span>
          </li>
        ) : (
          <li key={`s-${i.review.id}`} className="tile" data-testid={`waiting-review-${i.review.id}`}>
            <span className="badge pending">held statement</span>{' '}
            <Link to={`/reviews/${encodeURIComponent(i.review.id)}`}>
              <Visible text={i.review.user ?? '?'} oneLine /> on {i.review.connection ?? '?'}:{' '}
              <code className="clip">
                <Visible text={i.review.statement ?? i.review.sql ?? ''} oneLine />
              </code>
            </Link>
            {i.review.rule && <span className="muted small"> (rule {i.review.rule})</span>}
            <span className="age" title={i.at}>
              waiting {age}
            </span>
          </li>
        );
      })}
    </ol>
  );
}

function sum(list: Array<{ count: number }>): number {
  return list.reduce((n, x) => n + x.count, 0);
}

function count(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
