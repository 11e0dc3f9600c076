import { useEffect, useState } from 'react';
import { ErrorNote } from '../format';

/** Sign in through the gateway's identity provider(s); the gateway runs the OAuth flow. */
export function SignInPage({ error }: { error?: string }) {
  const [issuers, setIssuers] = useState<string[]>();
  const [loadError, setLoadError] = useState<string>();
  const query = new URLSearchParams(location.search);
  const shownError = query.get('error') ?? error;
  const returnTo = location.pathname === '/signin' ? (query.get('returnTo') ?? '/') : location.pathname + location.search;

  useEffect(() => {
    fetch('/api/auth/browser/issuers', { credentials: 'same-origin' })
      .then(async (r) => {
        if (!r.ok) throw new Error(`cannot list identity providers (HTTP ${r.status})`);
        setIssuers(((await r.json()) as { issuers: string[] }).issuers);
      })
      .catch((err: unknown) => setLoadError(err instanceof Error ? err.message : String(err)));
  }, []);

  return (
    <main className="signin" id="main">
      <h1>jitgate</h1>
      <p>Just-in-time access to databases: request access, approve, connect, review.</p>
      <ErrorNote error={shownError ?? loadError} />
      {issuers === undefined && !loadError && <p>Loading…</p>}
      {issuers?.length === 0 && <p className="empty">This gateway has no identity provider configured; use an API key with the CLI.</p>}
      {issuers?.map((name) => (
        <p key={name}>
          <a
            className="button primary"
            href={`/api/auth/browser/login?issuer=${encodeURIComponent(name)}&returnTo=${encodeURIComponent(returnTo)}`}
          >
            Sign in{issuers.length > 1 ? ` with ${name}` : ''}
          </a>
        </p>
      ))}
    </main>
  );
}
