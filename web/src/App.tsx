/** The console's frame: who is signed in, navigation by role, and the page for the current path. */
import { useCallback, useEffect, useState } from 'react';
import { api, errorText, setSignedOutHandler, type Me } from './api';
import { closeLive, useLiveConnection, useLiveStatus } from './live';
import { AdminPage } from './pages/Admin';
import { ApprovalsPage } from './pages/Approvals';
import { AuditPage } from './pages/Audit';
import { ConnectionsPage } from './pages/Connections';
import { GrantsPage } from './pages/Grants';
import { MyAccessPage } from './pages/MyAccess';
import { OverviewPage } from './pages/Overview';
import { ReviewPage } from './pages/Review';
import { SessionPage } from './pages/Session';
import { SessionsPage } from './pages/Sessions';
import { SignInPage } from './pages/SignIn';
import { Link, navigate, useLocation } from './router';

export function App() {
  const { path } = useLocation();
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [error, setError] = useState<string>();

  const load = useCallback(() => {
    api<Me>('/api/me')
      .then((m) => setMe(m))
      .catch((err: unknown) => {
        setMe(null);
        if (!(err instanceof Error && err.message === 'signed out')) setError(errorText(err));
      });
  }, []);

  useEffect(() => {
    setSignedOutHandler(() => {
      closeLive();
      setMe(null);
    });
    if (path !== '/signin') load();
    else setMe(null);
    // Only on first load: sign-in comes back through a full page load.
  }, [load]);

  if (path === '/signin' || me === null) return <SignInPage error={error} />;
  if (me === undefined) return <p className="loading">Loading…</p>;

  const signOut = async () => {
    try {
      await api('/api/auth/browser/logout', { method: 'POST' });
    } finally {
      closeLive();
      setMe(null);
      navigate('/signin');
    }
  };
  const has = (r: Me['roles'][number]) => me.roles.includes(r);
  // Approvers, auditors and admins land on the Overview; everyone else on My access.
  const overseer = landsOnOverview(me);
  const nav: Array<[string, string, boolean]> = [
    ['/', 'Overview', overseer],
    [overseer ? '/access' : '/', 'My access', true],
    ['/connections', 'Connections', true],
    ['/grants', 'Grants', has('approver') || has('admin')],
    ['/approvals', 'Approvals', true],
    ['/sessions', 'Sessions', true],
    ['/audit', 'Audit', has('auditor') || has('admin')],
    ['/admin', 'Configuration', has('admin')],
  ];
  const current = (to: string) => (to === '/' ? path === '/' : path.startsWith(to));

  return (
    <div className="app">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">jitgate</span>
        <nav aria-label="Main">
          {nav
            .filter(([, , show]) => show)
            .map(([to, label]) => (
              <Link key={to} to={to} aria-current={current(to) ? 'page' : undefined}>
                {label}
              </Link>
            ))}
        </nav>
        <span className="who">
          <LiveDot /> <span data-testid="signed-in-user">{me.user}</span> <span className="roles">({me.roles.join(', ')})</span>
          <button type="button" className="link" onClick={() => void signOut()}>
            Sign out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        <Page path={path} me={me} />
      </main>
    </div>
  );
}

function LiveDot() {
  useLiveConnection();
  const up = useLiveStatus();
  // role=img: a bare span may not carry a name (axe: aria-prohibited-attr), an image may.
  return (
    <span
      role="img"
      className={`dot ${up ? 'up' : 'down'}`}
      title={up ? 'live updates connected' : 'live updates not connected'}
      aria-label={up ? 'live' : 'offline'}
    />
  );
}

/** Whether the landing page is the Overview (people who decide, audit or administer) rather than My access. */
function landsOnOverview(me: Me): boolean {
  return me.roles.some((r) => r === 'approver' || r === 'auditor' || r === 'admin');
}

function Page({ path, me }: { path: string; me: Me }) {
  if (path === '/') return landsOnOverview(me) ? <OverviewPage me={me} /> : <MyAccessPage me={me} />;
  if (path === '/overview') return <OverviewPage me={me} />;
  if (path === '/access') return <MyAccessPage me={me} />;
  if (path === '/connections') return <ConnectionsPage me={me} />;
  if (path === '/grants') return <GrantsPage me={me} />;
  if (path === '/approvals') return <ApprovalsPage me={me} />;
  if (path === '/sessions') return <SessionsPage me={me} />;
  const m = /^\/sessions\/([^/]+)$/.exec(path);
  if (m) return <SessionPage id={decodeURIComponent(m[1]!)} me={me} />;
  const review = /^\/reviews\/([^/]+)$/.exec(path);
  if (review) return <ReviewPage id={decodeURIComponent(review[1]!)} me={me} />;
  if (path === '/audit') return <AuditPage />;
  if (path === '/admin') return <AdminPage />;
  return (
    <section>
      <h1>Not found</h1>
      <p>
        There is no page at {path}. <Link to="/">Go to My access</Link>.
      </p>
    </section>
  );
}
