/**
 * My access: each connection with its state, a request form, and for a granted connection the psql
 * command plus a button that fetches a fresh token straight into the clipboard (the token is shown
 * only if the clipboard refuses, and only after the user asked for it).
 */
import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { api, errorText, type ConnectionAccess, type Me } from '../api';
import { Empty, ErrorNote, when } from '../format';
import { useLiveEvents } from '../live';
import { MyGrants } from './Grants';

const DURATIONS = ['15m', '30m', '1h', '2h', '4h', '8h'];

export function MyAccessPage({ me }: { me: Me }) {
  const [connections, setConnections] = useState<ConnectionAccess[]>();
  const [error, setError] = useState<string>();
  const load = useCallback(() => {
    api<{ connections: ConnectionAccess[] }>('/api/connections')
      .then((r) => {
        setConnections(r.connections);
        setError(undefined);
      })
      .catch((err: unknown) => setError(errorText(err)));
  }, []);
  useEffect(load, [load]);
  useLiveEvents(['request.', 'grant.'], load);

  return (
    <section>
      <h1>My access</h1>
      <ErrorNote error={error} />
      {connections === undefined && !error && <p>Loading…</p>}
      {connections?.length === 0 && (
        <Empty>No connection is open to you: no access policy names your groups ({me.groups.join(', ') || 'none'}).</Empty>
      )}
      <ul className="cards">
        {connections?.map((c) => (
          <li key={c.name} className="card" data-testid={`connection-${c.name}`}>
            <ConnectionCard c={c} me={me} onChange={load} />
          </li>
        ))}
      </ul>
      <MyGrants />
    </section>
  );
}

function ConnectionCard({ c, me, onChange }: { c: ConnectionAccess; me: Me; onChange: () => void }) {
  const a = c.access;
  return (
    <>
      <h2>
        {c.name} <span className="muted">{c.type}</span>
      </h2>
      <p className="state" data-testid="access-state">
        {a.state === 'none' && <span className="badge">No access</span>}
        {a.state === 'pending' && (
          <span className="badge pending">
            Pending approval (request {a.requestId}, expires {when(a.expiresAt)})
          </span>
        )}
        {a.state === 'granted' && <span className="badge granted">Granted until {when(a.until)}</span>}
      </p>
      {c.policy && (
        <p className="muted">
          Policy {c.policy.name}: {c.policy.approval === 'auto' ? 'granted at once' : `approved by ${c.policy.approvers.join(' or ')}`}
        </p>
      )}
      {a.state === 'none' && <RequestForm connection={c.name} onDone={onChange} />}
      {a.state === 'granted' && <ConnectHelp connection={c.name} me={me} />}
    </>
  );
}

function RequestForm({ connection, onDone }: { connection: string; onDone: () => void }) {
  const [duration, setDuration] = useState('1h');
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<string>();
  const [error, setError] = useState<string>();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const r = await api<{ message: string }>('/api/requests', { method: 'POST', body: { connection, duration, reason } });
      setMessage(r.message);
      onDone();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  const id = `req-${connection}`;
  return (
    <form onSubmit={(e) => void submit(e)} className="stack" aria-label={`Request access to ${connection}`}>
      <label htmlFor={`${id}-duration`}>Duration</label>
      <select id={`${id}-duration`} value={duration} onChange={(e) => setDuration(e.target.value)}>
        {DURATIONS.map((d) => (
          <option key={d}>{d}</option>
        ))}
      </select>
      <label htmlFor={`${id}-reason`}>Reason</label>
      <textarea
        id={`${id}-reason`}
        value={reason}
        onChange={(e) => setReason(e.target.value)}
        rows={2}
        placeholder="What you need it for (ticket, incident)"
      />
      <button type="submit" className="primary" disabled={busy}>
        Request access
      </button>
      {message && <p role="status">{message}</p>}
      <ErrorNote error={error} />
    </form>
  );
}

function ConnectHelp({ connection, me }: { connection: string; me: Me }) {
  const pg = me.listeners.postgres;
  const [copied, setCopied] = useState<string>();
  const [fallback, setFallback] = useState<string>();
  const [error, setError] = useState<string>();
  const verifiable = useGeneratedCertificate();
  if (!pg) return <p className="muted">This gateway has no PostgreSQL listener.</p>;
  const host = pg.host === '0.0.0.0' || pg.host === '::' ? location.hostname : pg.host;
  // A certificate the gateway generated is its own trust anchor: psql can verify the gateway with it.
  const tls = verifiable ? 'sslmode=verify-full sslrootcert=jitgate-ca.pem' : `sslmode=${pg.sslmode}`;
  const command = `psql "host=${host} port=${pg.port} dbname=${connection} user=${me.user} ${tls}"`;
  const copyToken = async () => {
    setError(undefined);
    setFallback(undefined);
    try {
      const t = await api<{ token: string; expiresAt: string }>('/api/tokens', { method: 'POST', body: { connection } });
      try {
        await navigator.clipboard.writeText(t.token);
        setCopied(`A fresh token is in your clipboard (valid until ${when(t.expiresAt)}): paste it at psql's password prompt.`);
      } catch {
        // The clipboard refused: show the token the user asked for, briefly.
        setFallback(t.token);
        setCopied(undefined);
        setTimeout(() => setFallback(undefined), 60_000);
      }
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <div className="stack">
      <p>Connect with psql; the password is a short-lived token:</p>
      {verifiable && (
        <p data-testid="ca-hint">
          First save the gateway&apos;s certificate next to where you run psql:{' '}
          <a href="/api/tls/ca.pem" download="jitgate-ca.pem">
            jitgate-ca.pem
          </a>{' '}
          (or <code>jitgate ca &gt; jitgate-ca.pem</code>), so psql checks it is talking to this gateway.
        </p>
      )}
      <pre className="command" data-testid="psql-command" aria-busy={verifiable === undefined}>
        {verifiable === undefined ? '…' : command}
      </pre>
      <div className="row">
        <button type="button" disabled={verifiable === undefined} onClick={() => void navigator.clipboard?.writeText(command)}>
          Copy command
        </button>
        <button type="button" className="primary" onClick={() => void copyToken()}>
          Copy a fresh token
        </button>
      </div>
      {copied && <p role="status">{copied}</p>}
      {fallback && (
        <p role="status">
          Copy this token now (hidden again in a minute):{' '}
          <input readOnly value={fallback} aria-label="access token" onFocus={(e) => e.target.select()} />
        </p>
      )}
      <ErrorNote error={error} />
    </div>
  );
}

/**
 * Whether the listeners present a certificate the gateway generated (one psql can be pointed at);
 * undefined until known, so the command shown is never one that changes under the reader's cursor.
 */
function useGeneratedCertificate(): boolean | undefined {
  const [generated, setGenerated] = useState<boolean>();
  useEffect(() => {
    api<{ generated: boolean }>('/api/tls/ca')
      .then((r) => setGenerated(r.generated))
      // Unknown: fall back to the listener's own sslmode.
      .catch(() => setGenerated(false));
  }, []);
  return generated;
}
