/**
 * An audit entry said in words: who did what to whom, with links to what it is about (the
 * session's replay, the held statement's review, a request's or grant's whole history in the log).
 * Every field stays readable under "All fields"; values from users are shown escaped (Visible).
 */
import type { ReactNode } from 'react';
import type { AuditEntry } from '../api';
import { duration, Visible, when } from '../format';
import { Link } from '../router';

const short = (id: string) => id.slice(0, 8);
const str = (v: unknown): string => (typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v));

function Who({ name }: { name: unknown }) {
  return (
    <strong>
      <Visible text={str(name) || 'someone'} oneLine />
    </strong>
  );
}

function Quote({ text }: { text: unknown }) {
  const t = str(text);
  return t ? (
    <>
      : “<Visible text={t} oneLine />”
    </>
  ) : null;
}

function Conn({ name }: { name: unknown }) {
  return <span className="ref">{str(name)}</span>;
}

export function SessionLink({ id }: { id: unknown }) {
  const s = str(id);
  return s ? (
    <Link to={`/sessions/${encodeURIComponent(s)}`} title={s}>
      session {short(s)}
    </Link>
  ) : null;
}

/** A request's or grant's history: the audit log filtered to it. */
function HistoryLink({ id, what }: { id: unknown; what: string }) {
  const s = str(id);
  return s ? (
    <Link to={`/audit?target=${encodeURIComponent(s)}`} title={`Every entry about ${what} ${s}`}>
      {what} {short(s)}
    </Link>
  ) : null;
}

function ReviewLink({ id }: { id: unknown }) {
  const s = str(id);
  return s ? (
    <Link to={`/reviews/${encodeURIComponent(s)}`} title={s}>
      review {short(s)}
    </Link>
  ) : null;
}

const possessive = (user: unknown) => (
  <>
    <Who name={user} />
    ’s
  </>
);

/** The sentence and the links of one entry. */
export function auditSentence(e: AuditEntry): { text: ReactNode; links: ReactNode[] } {
  const d = e.data;
  const actor = <Who name={e.actor} />;
  const subject = e.subject ?? '';
  const request = (id: unknown = subject) => <HistoryLink key="request" id={id} what="request" />;
  const grant = (id: unknown = subject) => <HistoryLink key="grant" id={id} what="grant" />;
  const session = (id: unknown = subject) => <SessionLink key="session" id={id} />;
  const review = (id: unknown = subject) => <ReviewLink key="review" id={id} />;
  switch (e.type) {
    case 'access.request.created':
      return {
        text: (
          <>
            {actor} requested access to <Conn name={d.connection} /> for {duration(Number(d.durationMs))}
            {d.breakGlass === true && ' (break-glass)'}
            <Quote text={d.reason} />
          </>
        ),
        links: [request()],
      };
    case 'access.request.approved':
      return {
        text: (
          <>
            {actor} approved {possessive(d.user)} request for <Conn name={d.connection} />
            {d.final === false && ' (more approvals needed)'}
            <Quote text={d.comment} />
          </>
        ),
        links: [request()],
      };
    case 'access.request.denied':
      return {
        text: (
          <>
            {actor} denied {possessive(d.user)} request for <Conn name={d.connection} />
            <Quote text={d.reason} />
          </>
        ),
        links: [request()],
      };
    case 'access.request.withdrawn':
      return {
        text: (
          <>
            {actor} withdrew their request for <Conn name={d.connection} />
            <Quote text={d.reason} />
          </>
        ),
        links: [request()],
      };
    case 'access.request.expired':
      return {
        text: (
          <>
            {possessive(d.user)} request for <Conn name={d.connection} /> expired unanswered
          </>
        ),
        links: [request()],
      };
    case 'access.request.escalated':
      return {
        text: (
          <>
            {possessive(d.user)} request for <Conn name={d.connection} /> was escalated to{' '}
            {Array.isArray(d.to) ? d.to.join(', ') : str(d.to)}
          </>
        ),
        links: [request()],
      };
    case 'access.grant.created':
      return {
        text: (
          <>
            {actor} granted <Who name={d.user} /> access to <Conn name={d.connection} /> until {when(Number(d.expiresAt))}
            {d.policy ? ` (policy ${str(d.policy)})` : ''}
            {d.breakGlass === true && ' (break-glass)'}
          </>
        ),
        links: [grant(), ...(d.requestId ? [request(d.requestId)] : [])],
      };
    case 'access.grant.revoked':
      return {
        text: (
          <>
            {actor} revoked {possessive(d.user)} access to <Conn name={d.connection} />
            <Quote text={d.reason} />
          </>
        ),
        links: [grant(), ...(d.requestId ? [request(d.requestId)] : [])],
      };
    case 'access.break_glass.used':
      return {
        text: (
          <>
            {actor} used break-glass access to <Conn name={d.connection} />
            <Quote text={d.reason} />
          </>
        ),
        links: [grant(), ...(d.requestId ? [request(d.requestId)] : [])],
      };
    case 'session.started':
      return {
        text: (
          <>
            {actor} opened a session on <Conn name={d.connection} /> from {str(d.clientAddress)}
            {d.applicationName ? (
              <>
                {' '}
                (<Visible text={str(d.applicationName)} oneLine />)
              </>
            ) : null}
          </>
        ),
        links: [session()],
      };
    case 'session.ended':
      return {
        text: (
          <>
            {possessive(e.actor)} session on <Conn name={d.connection} /> ended ({str(d.reason)})
          </>
        ),
        links: [session()],
      };
    case 'instance.lost': {
      // Another gateway instance stopped heart-beating; this one closed its sessions.
      const ids = Array.isArray(d.sessions) ? d.sessions.map(str) : [];
      return {
        text: (
          <>
            Gateway instance {short(str(d.instance))} ({str(d.hostname)}, pid {str(d.pid)}) was lost; {ids.length} session
            {ids.length === 1 ? '' : 's'} closed ({str(d.reason)})
          </>
        ),
        links: ids.slice(0, 5).map((id) => <SessionLink key={id} id={id} />),
      };
    }
    case 'session.refused':
      return {
        text: (
          <>
            {actor} was refused a session on <Conn name={d.connection} />
            <Quote text={d.why} />
          </>
        ),
        links: [],
      };
    case 'session.killed':
      return {
        text: (
          <>
            {actor} ended {possessive(d.user)} session on <Conn name={d.connection} />
            <Quote text={d.reason} />
          </>
        ),
        links: [session()],
      };
    case 'statement.denied':
      return {
        text: (
          <>
            {possessive(e.actor)} statement {str(d.n)} on <Conn name={d.connection} /> was refused
            {d.rule ? (
              <>
                {' '}
                by <span className="ref">{str(d.rule)}</span>
              </>
            ) : null}
            <Quote text={d.statement} />
          </>
        ),
        links: [session()],
      };
    case 'statement.held':
      return {
        text: (
          <>
            {possessive(e.actor)} statement {str(d.n)} on <Conn name={d.connection} /> was held for approval
            <Quote text={d.statement} />
          </>
        ),
        links: [session()],
      };
    case 'statement.decided':
      return {
        text: (
          <>
            {possessive(e.actor)} held statement {str(d.n)} on <Conn name={d.connection} /> was{' '}
            {d.effect === 'allow' ? 'allowed' : 'refused'}
            {d.waitedMs !== undefined ? ` after ${Math.round(Number(d.waitedMs) / 1000)} s` : ''}
          </>
        ),
        links: [session()],
      };
    case 'review.created':
      return {
        text: (
          <>
            {possessive(e.actor)} statement on <Conn name={d.connection} /> waits for review
            {d.rule ? (
              <>
                {' '}
                (rule <span className="ref">{str(d.rule)}</span>)
              </>
            ) : null}
            <Quote text={d.statement} />
          </>
        ),
        links: [review(), session(d.session)],
      };
    case 'review.approved':
      return {
        text: (
          <>
            {actor} approved {possessive(d.user)} held statement on <Conn name={d.connection} />
            <Quote text={d.comment} />
          </>
        ),
        links: [review(), session(d.session)],
      };
    case 'review.denied':
      return {
        text: (
          <>
            {actor} denied {possessive(d.user)} held statement on <Conn name={d.connection} />
            <Quote text={d.comment} />
          </>
        ),
        links: [review(), session(d.session)],
      };
    case 'review.withdrawn':
      return {
        text: (
          <>
            {actor} withdrew {possessive(d.user)} held statement on <Conn name={d.connection} />
            <Quote text={d.reason} />
          </>
        ),
        links: [review(), session(d.session)],
      };
    case 'review.expired':
      return {
        text: (
          <>
            {possessive(d.user)} held statement on <Conn name={d.connection} /> expired unanswered
          </>
        ),
        links: [review(), session(d.session)],
      };
    case 'review.escalated':
      return {
        text: (
          <>
            {possessive(d.user)} held statement on <Conn name={d.connection} /> was escalated to{' '}
            {Array.isArray(d.to) ? d.to.join(', ') : str(d.to)}
          </>
        ),
        links: [review(), session(d.session)],
      };
    case 'legal_hold.set':
      return {
        text: (
          <>
            {actor} put {possessive(d.user)} session recording on legal hold
            <Quote text={d.reason} />
          </>
        ),
        links: [session()],
      };
    case 'legal_hold.released':
      return {
        text: (
          <>
            {actor} released the legal hold on a session recording
            <Quote text={d.reason} />
          </>
        ),
        links: [session()],
      };
    case 'recording.deleted':
      return { text: <>The recording of a session was deleted (retention)</>, links: [session()] };
    case 'recording.failed':
    case 'recording.unavailable':
      return {
        text: (
          <>
            The recording of a session on <Conn name={d.connection} /> {e.type === 'recording.failed' ? 'failed' : 'could not start'}
            <Quote text={d.error} />
          </>
        ),
        links: [session()],
      };
    case 'login.failed':
      return {
        text: (
          <>
            Sign-in to <Conn name={d.connection} /> failed for {actor} from {str(d.clientAddress)}
            <Quote text={d.reason} />
          </>
        ),
        links: [],
      };
    case 'credentials.rotated':
      return {
        text: (
          <>
            {actor} rotated the backend password of <Conn name={d.connection} />
          </>
        ),
        links: [],
      };
    case 'apikey.created':
      return {
        text: (
          <>
            {actor} created the API key <span className="ref">{str(d.name)}</span>
          </>
        ),
        links: [],
      };
    case 'apikey.revoked':
      return {
        text: (
          <>
            {actor} revoked the API key <span className="ref">{str(d.name)}</span>
          </>
        ),
        links: [],
      };
    case 'audit.checkpoint':
      return { text: <>The gateway signed a checkpoint of the audit log</>, links: [] };
    default:
      return {
        text: (
          <>
            {actor}: {e.type.replace(/[._]/g, ' ')}
          </>
        ),
        links: subject
          ? [
              <span key="subject" className="mono">
                {short(subject)}
              </span>,
            ]
          : [],
      };
  }
}
