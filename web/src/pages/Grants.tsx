/**
 * Grants: who has access to what until when. Approvers see the grants of the policies they approve
 * for, admins every grant; both may revoke one, giving a reason (asked in an in-page dialog). The
 * reader's own grants are listed too (and on My access, through MyGrants), where they may end them
 * early. Re-read on live grant events.
 */
import { useCallback, useEffect, useMemo, useState } from 'react';
import { api, errorText, type Me } from '../api';
import { relative } from '../ago';
import { ConfirmDialog } from '../dialog';
import { Empty, ErrorNote, Visible, when } from '../format';
import { useLiveEvents } from '../live';

export interface Grant {
  id: string;
  user: string;
  connection: string;
  reason: string;
  requestId: string | null;
  /** Who approved it (empty for grants issued on the gateway host or granted at once by policy). */
  approvedBy: string[];
  breakGlass: boolean;
  policy: string | null;
  issuedBy: string | null;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
  revokedBy: string | null;
  revokeReason: string | null;
}

function useGrants() {
  const [grants, setGrants] = useState<{ mine: Grant[]; others: Grant[] }>();
  const [error, setError] = useState<string>();
  const load = useCallback(() => {
    api<{ mine: Grant[]; others: Grant[] }>('/api/grants')
      .then((g) => {
        setGrants(g);
        setError(undefined);
      })
      .catch((err: unknown) => setError(errorText(err)));
  }, []);
  useEffect(load, [load]);
  useLiveEvents(['grant.', 'request.approved', 'break_glass.'], load);
  return { grants, error, load };
}

/** A clock for relative times that moves on its own (every 30 s). */
function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 30_000);
    return () => clearInterval(t);
  }, []);
  return now;
}

export function GrantsPage({ me }: { me: Me }) {
  const { grants, error, load } = useGrants();
  const [query, setQuery] = useState('');
  const now = useNow();
  const mayRevoke = me.roles.includes('approver') || me.roles.includes('admin');
  const shown = useMemo(() => {
    const q = query.trim().toLowerCase();
    const all = [...(grants?.others ?? [])].sort((a, b) => a.expiresAt.localeCompare(b.expiresAt));
    return q
      ? all.filter((g) =>
          [g.user, g.connection, g.reason, ...g.approvedBy, g.issuedBy ?? '', g.policy ?? ''].some((f) => f.toLowerCase().includes(q)),
        )
      : all;
  }, [grants, query]);

  return (
    <section>
      <h1>Grants</h1>
      <p className="muted">
        Who has access to what, and until when.{' '}
        {me.roles.includes('admin') ? 'As an admin you see every active grant.' : 'You see the grants of the policies you approve for.'}{' '}
        Revoking a grant ends its tokens at once; open sessions under it end too.
      </p>
      <ErrorNote error={error} />
      <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <label>
          Search grants{' '}
          <input type="search" value={query} onChange={(e) => setQuery(e.target.value)} placeholder="user, connection, reason" />
        </label>
      </form>
      {grants === undefined && !error && <p>Loading…</p>}
      {grants && (
        <>
          <p role="status" className="small muted">
            {shown.length === grants.others.length
              ? `${grants.others.length} active grant${grants.others.length === 1 ? '' : 's'}`
              : `${shown.length} of ${grants.others.length} grants match`}
          </p>
          {grants.others.length === 0 ? (
            <Empty>No one else holds an active grant you can see.</Empty>
          ) : shown.length === 0 ? (
            <Empty>No grant matches “{query}”.</Empty>
          ) : (
            <GrantTable grants={shown} now={now} showUser canRevoke={mayRevoke} onRevoked={load} testId="grants-others" />
          )}
          <h2>Yours</h2>
          {grants.mine.length === 0 ? (
            <Empty>You hold no active grant.</Empty>
          ) : (
            <GrantTable grants={grants.mine} now={now} canRevoke onRevoked={load} own testId="grants-mine" />
          )}
        </>
      )}
    </section>
  );
}

/** The reader's own active grants, for My access: what they hold, until when, and a way to end it early. */
export function MyGrants() {
  const { grants, error, load } = useGrants();
  const now = useNow();
  if (!grants && !error) return null;
  return (
    <section aria-labelledby="my-grants">
      <h2 id="my-grants">My grants</h2>
      <ErrorNote error={error} />
      {grants && grants.mine.length === 0 && <Empty>You hold no active grant. Ask for access to a connection above.</Empty>}
      {grants && grants.mine.length > 0 && <GrantTable grants={grants.mine} now={now} canRevoke onRevoked={load} own testId="my-grants" />}
    </section>
  );
}

function GrantTable({
  grants,
  now,
  showUser = false,
  canRevoke,
  own = false,
  onRevoked,
  testId,
}: {
  grants: Grant[];
  now: number;
  showUser?: boolean;
  canRevoke: boolean;
  own?: boolean;
  onRevoked: () => void;
  testId: string;
}) {
  const [revoking, setRevoking] = useState<Grant>();
  return (
    <>
      <table className="list-table" data-testid={testId}>
        <thead>
          <tr>
            {showUser && <th scope="col">User</th>}
            <th scope="col">Connection</th>
            <th scope="col">Until</th>
            <th scope="col">Granted</th>
            <th scope="col">Reason</th>
            {canRevoke && (
              <th scope="col">
                <span className="sr-only">Action</span>
              </th>
            )}
          </tr>
        </thead>
        <tbody>
          {grants.map((g) => (
            <tr key={g.id} data-testid={`grant-${g.id}`}>
              {showUser && (
                <td data-label="User">
                  <strong>
                    <Visible text={g.user} oneLine />
                  </strong>
                </td>
              )}
              <td data-label="Connection">{g.connection}</td>
              <td data-label="Until">
                <time dateTime={g.expiresAt} title={when(g.expiresAt)}>
                  {relative(g.expiresAt, now)}
                </time>{' '}
                <span className="muted small">({when(g.expiresAt)})</span>
              </td>
              <td data-label="Granted">
                {g.breakGlass && <span className="badge danger">break-glass</span>} {grantedHow(g)}
                {g.policy && <span className="muted small"> under {g.policy}</span>}
              </td>
              <td data-label="Reason">{g.reason ? <Visible text={g.reason} oneLine /> : <span className="muted">—</span>}</td>
              {canRevoke && (
                <td data-label="">
                  <button
                    type="button"
                    className="danger"
                    onClick={() => setRevoking(g)}
                    aria-label={own ? `End now: my grant on ${g.connection}` : `Revoke ${g.user}'s grant on ${g.connection}`}
                  >
                    {own ? 'End now' : 'Revoke'}
                  </button>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {revoking && (
        <ConfirmDialog
          title={own ? 'End your grant?' : 'Revoke this grant?'}
          confirmLabel={own ? 'End grant' : 'Revoke grant'}
          danger
          reason={{ label: 'Reason', required: true, hint: 'Recorded in the audit log and sent to the holder’s notifications.' }}
          onConfirm={async (reason) => {
            await api(`/api/grants/${encodeURIComponent(revoking.id)}/revoke`, { method: 'POST', body: { reason } });
            onRevoked();
          }}
          onClose={() => setRevoking(undefined)}
        >
          <p>
            {own ? (
              'You'
            ) : (
              <strong>
                <Visible text={revoking.user} oneLine />
              </strong>
            )}{' '}
            will lose access to <strong>{revoking.connection}</strong> now, instead of {relative(revoking.expiresAt, now)}. Tokens issued
            under this grant stop working and open sessions under it end.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}

function grantedHow(g: Grant): string {
  if (g.issuedBy) return `issued by ${g.issuedBy}`;
  if (g.breakGlass && g.approvedBy.length === 0) return 'self-approved in an emergency';
  return g.approvedBy.length > 0 ? `approved by ${g.approvedBy.join(', ')}` : 'granted at once by policy';
}
