/**
 * The approvals inbox: access requests and held statements waiting for me, newest first, updated
 * live; each shows who, what and why, and takes a decision with a comment. Decided items stay, with
 * who decided.
 */
import { useCallback, useEffect, useState } from 'react';
import { api, ApiError, errorText, type AccessRequest, type Me, type Review } from '../api';
import { ConfirmDialog } from '../dialog';
import { duration, Empty, ErrorNote, Sql, Visible, when } from '../format';
import { useLiveEvents } from '../live';
import { Link } from '../router';

type Item = { kind: 'request'; at: string; request: AccessRequest } | { kind: 'review'; at: string; review: Review };

const REVIEW_STATES = ['pending', 'approved', 'denied', 'expired', 'withdrawn'];
/** Held statements are re-read this often too, in case their live events are not wired. */
const REVIEW_POLL_MS = 3000;

function reviewsOf(answer: unknown): Review[] {
  if (Array.isArray(answer)) return answer as Review[];
  const r = (answer ?? {}) as { reviews?: Review[]; items?: Review[] };
  return r.reviews ?? r.items ?? [];
}

export function ApprovalsPage({ me }: { me: Me }) {
  const [requests, setRequests] = useState<AccessRequest[]>();
  const [reviews, setReviews] = useState<Review[]>();
  const [mine, setMine] = useState<Review[]>([]);
  const [reviewsUnavailable, setReviewsUnavailable] = useState(false);
  const [error, setError] = useState<string>();

  const loadRequests = useCallback(async () => {
    try {
      const lists = await Promise.all(
        ['pending', 'granted', 'denied', 'expired'].map((s) => api<{ approvable: AccessRequest[] }>(`/api/requests?state=${s}`)),
      );
      setRequests(lists.flatMap((l) => l.approvable));
      setError(undefined);
    } catch (err) {
      setError(errorText(err));
    }
  }, []);
  const loadReviews = useCallback(async () => {
    try {
      const lists = await Promise.all(REVIEW_STATES.map((s) => api<unknown>(`/api/reviews?state=${s}`)));
      const byId = new Map<string, Review>();
      const own = new Map<string, Review>();
      for (const r of lists.flatMap(reviewsOf)) {
        if (r.user !== me.user || r.state !== 'pending') byId.set(r.id, r);
        else own.set(r.id, r);
      }
      setReviews([...byId.values()]);
      setMine([...own.values()].sort((a, b) => (b.createdAt ?? '').localeCompare(a.createdAt ?? '')));
      setReviewsUnavailable(false);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 404 || err.status === 405)) setReviewsUnavailable(true);
      else setError(errorText(err));
    }
  }, [me.user]);

  useEffect(() => {
    void loadRequests();
    void loadReviews();
    const t = setInterval(() => void loadReviews(), REVIEW_POLL_MS);
    return () => clearInterval(t);
  }, [loadRequests, loadReviews]);
  useLiveEvents(['request.', 'grant.'], () => void loadRequests());
  useLiveEvents(['review.'], () => void loadReviews());

  const items: Item[] = [
    ...(requests ?? []).map((r): Item => ({ kind: 'request', at: r.createdAt, request: r })),
    ...(reviews ?? []).map((r): Item => ({ kind: 'review', at: r.createdAt ?? '', review: r })),
  ].sort((a, b) => {
    const pa = state(a) === 'pending' ? 0 : 1;
    const pb = state(b) === 'pending' ? 0 : 1;
    return pa - pb || b.at.localeCompare(a.at);
  });
  const pending = items.filter((i) => state(i) === 'pending');
  const decided = items.filter((i) => state(i) !== 'pending');

  return (
    <section>
      <h1>Approvals</h1>
      <ErrorNote error={error} />
      {reviewsUnavailable && <p className="muted">Statement reviews are not enabled on this gateway.</p>}
      {mine.length > 0 && (
        <>
          <h2>Your statements waiting for approval ({mine.length})</h2>
          <ul className="cards" aria-label="Your statements waiting for approval" data-testid="my-held-items">
            {mine.map((r) => (
              <li key={`mine-${r.id}`} className="card">
                <ReviewItem r={r} me={me} onDone={() => void loadReviews()} />
              </li>
            ))}
          </ul>
        </>
      )}
      <h2>Waiting for a decision ({pending.length})</h2>
      {requests === undefined && !error && <p>Loading…</p>}
      {requests !== undefined && pending.length === 0 && (
        <Empty>Nothing is waiting for you. New requests appear here as they arrive.</Empty>
      )}
      <ul className="cards" aria-label="Waiting for a decision" data-testid="pending-items">
        {pending.map((i) => (
          <li key={`${i.kind}-${id(i)}`} className="card">
            {i.kind === 'request' ? (
              <RequestItem r={i.request} onDone={() => void loadRequests()} />
            ) : (
              <ReviewItem r={i.review} me={me} onDone={() => void loadReviews()} />
            )}
          </li>
        ))}
      </ul>
      <h2>Decided</h2>
      {decided.length === 0 && <Empty>No decisions yet.</Empty>}
      <ul className="cards" aria-label="Decided" data-testid="decided-items">
        {decided.map((i) => (
          <li key={`${i.kind}-${id(i)}`} className="card decided">
            {i.kind === 'request' ? (
              <RequestItem r={i.request} onDone={() => void loadRequests()} />
            ) : (
              <ReviewItem r={i.review} me={me} onDone={() => void loadReviews()} />
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}

function state(i: Item): string {
  return i.kind === 'request' ? i.request.state : i.review.state;
}
function id(i: Item): string {
  return i.kind === 'request' ? i.request.id : i.review.id;
}

function Decide({ label, onDecide }: { label: string; onDecide: (approve: boolean, comment: string) => Promise<void> }) {
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const decide = async (approve: boolean) => {
    setBusy(true);
    setError(undefined);
    try {
      await onDecide(approve, comment);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="stack">
      <label>
        Comment
        <input value={comment} onChange={(e) => setComment(e.target.value)} aria-label={`Comment on ${label}`} />
      </label>
      <div className="row">
        <button type="button" className="primary" disabled={busy} onClick={() => void decide(true)} aria-label={`Approve ${label}`}>
          Approve
        </button>
        <button type="button" className="danger" disabled={busy} onClick={() => void decide(false)} aria-label={`Deny ${label}`}>
          Deny
        </button>
      </div>
      <ErrorNote error={error} />
    </div>
  );
}

function RequestItem({ r, onDone }: { r: AccessRequest; onDone: () => void }) {
  return (
    <article aria-label={`Access request ${r.id}`} data-testid={`request-${r.id}`}>
      <h3>
        Access to {r.connection} for {duration(r.durationMs)} {r.breakGlass && <span className="badge danger">break-glass</span>}{' '}
        {r.escalatedAt && r.state === 'pending' && (
          <span className="badge" title={`escalated ${when(r.escalatedAt)}`}>
            escalated
          </span>
        )}
      </h3>
      <p>
        <strong>{r.user}</strong> <span className="muted">({r.groups.join(', ')})</span> asked {when(r.createdAt)}
      </p>
      <p>
        Why: <q>{r.reason ? <Visible text={r.reason} oneLine /> : 'no reason given'}</q>
      </p>
      <p className="muted">
        Policy {r.policy ?? '—'}; needs {r.approvalsRequired} approval(s) from {r.approverGroups.join(' or ')}
        {r.approvals.length > 0 && `; approved so far by ${r.approvals.map((a) => a.approver).join(', ')}`}
      </p>
      {r.state === 'pending' ? (
        <Decide
          label={`request ${r.id}`}
          onDecide={async (approve, comment) => {
            await api(`/api/requests/${encodeURIComponent(r.id)}/${approve ? 'approve' : 'deny'}`, {
              method: 'POST',
              body: approve ? { comment } : { reason: comment },
            });
            onDone();
          }}
        />
      ) : (
        <p className="decision" data-testid="decision">
          <span className={`badge ${r.state}`}>{r.state}</span> {r.decidedBy ? `by ${r.decidedBy}` : ''}{' '}
          {r.decidedAt ? when(r.decidedAt) : ''}
          {r.decisionReason ? (
            <>
              {' — '}
              <Visible text={r.decisionReason} oneLine />
            </>
          ) : (
            ''
          )}
          {r.approvals
            .filter((a) => a.comment && a.comment !== r.decisionReason)
            .map((a, i) => (
              <span key={i}>
                {` — ${a.approver}: “`}
                <Visible text={a.comment ?? ''} oneLine />”
              </span>
            ))}
        </p>
      )}
    </article>
  );
}

export function ReviewItem({ r, me, onDone }: { r: Review; me: Me; onDone: () => void }) {
  const statement = r.statement ?? r.sql ?? r.text ?? '';
  const why = r.ruleReason ?? r.reason ?? r.reasons?.join(', ') ?? '';
  const session = r.sessionId ?? r.session;
  const decidedBy = r.decidedBy ?? r.decision?.by;
  const comment = r.comment ?? r.decision?.comment;
  return (
    <article aria-label={`Held statement ${r.id}`} data-testid={`review-${r.id}`}>
      <h3>
        Held statement on {r.connection ?? '?'} {r.rule && <span className="badge">{r.rule}</span>}
      </h3>
      <p>
        <strong>{r.user ?? '?'}</strong> ran, {when(r.createdAt)}
        {session && (
          <>
            {' '}
            in <Link to={`/sessions/${encodeURIComponent(session)}`}>session {session.slice(0, 12)}</Link>
          </>
        )}
        :
      </p>
      <Sql text={statement} />
      {why && (
        <p>
          Why it was held: <Visible text={why} oneLine />
        </p>
      )}
      {r.approvals && r.approvals.length > 0 && <p className="muted">Approved so far by {r.approvals.map((a) => a.approver).join(', ')}</p>}
      {r.state === 'pending' && r.user === me.user ? (
        <Withdraw r={r} onDone={onDone} />
      ) : r.state === 'pending' && r.canApprove === false ? (
        <p className="muted">Waiting for {r.approverGroups?.join(' or ') ?? 'an approver'}.</p>
      ) : r.state === 'pending' ? (
        <Decide
          label={`statement ${r.id}`}
          onDecide={async (approve, c) => {
            await api(`/api/reviews/${encodeURIComponent(r.id)}/${approve ? 'approve' : 'deny'}`, {
              method: 'POST',
              body: c ? { comment: c } : {},
            });
            onDone();
          }}
        />
      ) : (
        <p className="decision" data-testid="decision">
          <span className={`badge ${r.state}`}>{r.state}</span> {decidedBy ? `by ${decidedBy}` : ''} {r.decidedAt ? when(r.decidedAt) : ''}
          {comment ? (
            <>
              {' — “'}
              <Visible text={comment} oneLine />”
            </>
          ) : (
            ''
          )}
          {r.approvals?.filter((a) => a.comment && a.comment !== comment).map((a) => ` — ${a.approver}: “${a.comment}”`)}
        </p>
      )}
    </article>
  );
}

/** The author of a held statement may withdraw it (the review API's deny, by its author), after confirming. */
function Withdraw({ r, onDone }: { r: Review; onDone: () => void }) {
  const [asking, setAsking] = useState(false);
  const [done, setDone] = useState<string>();
  return (
    <div className="stack">
      <p className="muted" data-testid="waiting">
        Waiting for {r.approvalsRequired && r.approvalsRequired > 1 ? `${r.approvalsRequired} approvals from ` : ''}
        {r.approverGroups?.join(' or ') ?? 'an approver'}. Your session is held until then.
      </p>
      <div className="row">
        <button type="button" onClick={() => setAsking(true)} aria-haspopup="dialog" aria-label={`Withdraw statement ${r.id}`}>
          Withdraw
        </button>
      </div>
      {done && (
        <p className="notice" role="status">
          {done}
        </p>
      )}
      {asking && (
        <ConfirmDialog
          title="Withdraw this statement?"
          confirmLabel="Withdraw statement"
          cancelLabel="Keep waiting"
          danger
          reason={{ label: 'Note', required: false, hint: 'Recorded with the review and returned to your client with the error.' }}
          onConfirm={async (note) => {
            await api(`/api/reviews/${encodeURIComponent(r.id)}/deny`, { method: 'POST', body: note ? { comment: note } : {} });
            setDone('Statement withdrawn: it did not run.');
            onDone();
          }}
          onClose={() => setAsking(false)}
        >
          <p>
            The statement will not run: your client on {r.connection ?? 'the connection'} gets an error at once, and the approvers no longer
            see it as waiting.
          </p>
        </ConfirmDialog>
      )}
    </div>
  );
}
