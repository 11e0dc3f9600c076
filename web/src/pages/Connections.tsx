/**
 * Connections: the inventory of what the reader can reach, searchable and filtered by type and by
 * their access to it, each with its access policies, guardrails, review and masking rules in words
 * (from GET /api/catalog), marked where they apply to the reader. Filters live in the URL, so a
 * filtered view can be shared.
 */
import { useCallback, useEffect, useMemo, useState } from 'react';
import { api, errorText, type Me } from '../api';
import { relative } from '../ago';
import { Empty, ErrorNote } from '../format';
import { useLiveEvents } from '../live';
import { Link, useLocation } from '../router';

interface Described {
  name: string;
  who: string;
  what: string[];
  reason: string | null;
  appliesToYou: boolean;
}

interface CatalogEntry {
  name: string;
  type: string;
  access:
    { state: 'none' } | { state: 'pending'; requestId: string; expiresAt: string } | { state: 'granted'; grantId: string; until: string };
  policy: string | null;
  rules: { policies: Described[]; guardrails: Described[]; reviews: Described[]; masking: Described[] };
}

const ACCESS_STATES: Array<[string, string]> = [
  ['', 'any'],
  ['granted', 'I have access'],
  ['pending', 'waiting for approval'],
  ['none', 'no access'],
];

const SECTIONS: Array<[keyof CatalogEntry['rules'], string, string]> = [
  ['policies', 'Access', 'No access policy: only admins can reach it.'],
  ['guardrails', 'Guardrails', 'No guardrail: no statement is refused by rule.'],
  ['reviews', 'Review rules', 'No review rule: no statement is held for approval.'],
  ['masking', 'Masking', 'No masking: results come back as stored.'],
];

export function ConnectionsPage({ me }: { me: Me }) {
  const { query } = useLocation();
  const [entries, setEntries] = useState<CatalogEntry[]>();
  const [error, setError] = useState<string>();
  const [q, setQ] = useState(query.get('q') ?? '');
  const [type, setType] = useState(query.get('type') ?? '');
  const [access, setAccess] = useState(query.get('access') ?? '');
  const now = Date.now();

  const load = useCallback(() => {
    api<{ connections: CatalogEntry[] }>('/api/catalog')
      .then((r) => {
        setEntries(r.connections);
        setError(undefined);
      })
      .catch((err: unknown) => setError(errorText(err)));
  }, []);
  useEffect(load, [load]);
  useLiveEvents(['request.', 'grant.'], load);

  // The filters in the address bar (replaced, not pushed: Back leaves the page, not each keystroke).
  useEffect(() => {
    const p = new URLSearchParams();
    if (q) p.set('q', q);
    if (type) p.set('type', type);
    if (access) p.set('access', access);
    const next = `${location.pathname}${p.size ? `?${p.toString()}` : ''}`;
    if (next !== location.pathname + location.search) history.replaceState(null, '', next);
  }, [q, type, access]);

  const types = useMemo(() => [...new Set((entries ?? []).map((e) => e.type))].sort(), [entries]);
  const shown = useMemo(() => {
    const needle = q.trim().toLowerCase();
    return (entries ?? []).filter(
      (e) =>
        (!type || e.type === type) &&
        (!access || e.access.state === access) &&
        (!needle ||
          e.name.toLowerCase().includes(needle) ||
          Object.values(e.rules).some((list) =>
            list.some((r) => [r.name, r.who, r.reason ?? '', ...r.what].some((t) => t.toLowerCase().includes(needle))),
          )),
    );
  }, [entries, q, type, access]);

  return (
    <section>
      <h1>Connections</h1>
      <p className="muted">
        What you can reach through the gateway, and the rules on each: who may get access and how, what is refused, what waits for an
        approver, what is masked.
      </p>
      <form className="filters" role="search" aria-label="Find connections" onSubmit={(e) => e.preventDefault()}>
        <label>
          Search <input type="search" value={q} onChange={(e) => setQ(e.target.value)} placeholder="name, table, rule…" />
        </label>
        <label>
          Type
          <select value={type} onChange={(e) => setType(e.target.value)}>
            <option value="">any</option>
            {types.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <label>
          My access
          <select value={access} onChange={(e) => setAccess(e.target.value)}>
            {ACCESS_STATES.map(([v, label]) => (
              <option key={v} value={v}>
                {label}
              </option>
            ))}
          </select>
        </label>
        {(q || type || access) && (
          <button
            type="button"
            onClick={() => {
              setQ('');
              setType('');
              setAccess('');
            }}
          >
            Clear
          </button>
        )}
      </form>
      <ErrorNote error={error} />
      {entries === undefined && !error && <p>Loading…</p>}
      {entries && (
        <p role="status" className="small muted" data-testid="connections-count">
          {shown.length === entries.length
            ? `${entries.length} connection${entries.length === 1 ? '' : 's'}`
            : `${shown.length} of ${entries.length} connections match`}
        </p>
      )}
      {entries?.length === 0 && (
        <Empty>No connection is open to you: no access policy names your groups ({me.groups.join(', ') || 'none'}).</Empty>
      )}
      {entries && entries.length > 0 && shown.length === 0 && <Empty>No connection matches these filters.</Empty>}
      <ul className="inventory">
        {shown.map((e) => (
          <li key={e.name} className="card" data-testid={`inventory-${e.name}`}>
            <div className="heading-row">
              <h2>
                {e.name} <span className="tag">{e.type}</span>
              </h2>
              <AccessBadge e={e} now={now} />
            </div>
            <div className="rule-grid">
              {SECTIONS.map(([key, title, none]) => (
                <RuleSection key={key} title={title} rules={e.rules[key]} none={none} />
              ))}
            </div>
          </li>
        ))}
      </ul>
    </section>
  );
}

function AccessBadge({ e, now }: { e: CatalogEntry; now: number }) {
  const a = e.access;
  if (a.state === 'granted')
    return (
      <span className="badge granted" data-testid="inventory-access">
        access until {new Date(a.until).toLocaleTimeString()} ({relative(a.until, now)})
      </span>
    );
  if (a.state === 'pending')
    return (
      <span className="badge pending" data-testid="inventory-access">
        waiting for approval
      </span>
    );
  return (
    <span data-testid="inventory-access">
      <span className="badge">no access</span> {e.policy && <Link to="/access">Request access</Link>}
    </span>
  );
}

function RuleSection({ title, rules, none }: { title: string; rules: Described[]; none: string }) {
  return (
    <section className="rules">
      <h3>{title}</h3>
      {rules.length === 0 ? (
        <p className="muted small">{none}</p>
      ) : (
        <ul>
          {rules.map((r) => (
            <li key={`${r.name}-${r.who}`}>
              <strong>{r.name}</strong> <span className="muted small">for {r.who}</span>{' '}
              {r.appliesToYou ? <span className="badge live">applies to you</span> : <span className="badge withdrawn">not you</span>}
              <ul className="what">
                {r.what.map((w) => (
                  <li key={w}>{w}</li>
                ))}
              </ul>
              {r.reason && <p className="small muted">Why: {r.reason}</p>}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
