/**
 * Configuration as the running gateway sees it (admins), as tables: connections, access policies,
 * guardrails, review rules, masking, secrets and identity providers. Secrets appear by reference
 * (`env:NAME`, `secret:NAME`, `file:PATH`) or by name only: the API never returns a value.
 */
import { useEffect, useState, type ReactNode } from 'react';
import { api, errorText } from '../api';
import { duration, Empty, ErrorNote, when } from '../format';
import { MaskingReportView, PolicyCheck } from './PolicyCheck';

type Ref = { kind: string; name: string } | null | undefined;
type Scope = { connections?: string[]; groups?: string[]; users?: string[]; except?: string[] };

interface Connection {
  name: string;
  type: string;
  host: string;
  port: number;
  database: string;
  user: string;
  password: Ref;
  tls: { mode: string; servername?: string; ca: string | null };
  credentials: { mode: string; roles?: string[]; rolePrefix?: string };
  connectTimeoutMs?: number;
}
interface Policy extends Scope {
  name: string;
  access?: {
    maxDurationMs: number;
    approval: string;
    approvers: string[];
    approvals: number;
    breakGlass: boolean;
    pendingExpiryMs: number;
    requireReason: boolean;
  };
}
type Criteria = Partial<{
  kinds: string[];
  tables: string[];
  functions: string[];
  writes: boolean;
  unboundedWrites: boolean;
  multiStatement: boolean;
  readOnly: boolean;
  commands: string[];
  categories: string[];
  keys: string[];
}>;
interface Guardrail extends Scope {
  name: string;
  deny: Criteria;
  reason?: string;
}
interface ReviewRule extends Scope {
  name: string;
  match: Criteria;
  approval: { approvers: string[]; approvals: number; timeoutMs: number };
  reason?: string;
}
interface Strategy {
  kind: string;
  keepLast?: number;
}
interface MaskRule extends Scope {
  name: string;
  columns: Array<{ pattern: string; strategy: Strategy }>;
  keys?: Array<{ pattern: string; strategy: Strategy }>;
  fields?: Array<{ pattern: string; strategy: Strategy }>;
}
interface Masking {
  rules: MaskRule[];
  detectors: Array<{ connections: string[]; detectors: string[]; except: string[] }>;
  hashKey: Ref;
}
interface Secrets {
  secrets: Array<{ name: string; updatedAt: string }>;
  references: Array<{ connection: string; password: Ref }>;
}
interface Identities {
  issuers: Array<{
    name: string;
    issuer: string;
    clientId: string;
    clientSecret: Ref;
    audience: string;
    groupsClaim: string;
    scopes: string[];
    serviceAccounts: string[];
  }>;
  samlProviders: Array<{
    name: string;
    metadata: string;
    entityId: string | null;
    userAttribute: string | null;
    groupsAttribute: string;
    groupMap: Record<string, string[]>;
    requireSigned: 'assertion' | 'response' | 'both';
    clockSkewMs: number;
    signInTtlMs: number;
  }>;
  developmentIdp: { users: Array<{ user: string; groups: string[] }> } | null;
  admins: { groups: string[] };
  session: { ttlMs?: number; refreshTtlMs?: number };
}
interface Config {
  connections: { connections: Connection[] };
  policies: { policies: Policy[] };
  guardrails: { guardrails: Guardrail[] };
  reviews: { reviews: ReviewRule[] };
  masking: Masking;
  secrets: Secrets;
  identities: Identities;
}

const SECTIONS: Array<[keyof Config, string]> = [
  ['connections', 'Connections'],
  ['policies', 'Access policies'],
  ['guardrails', 'Guardrails'],
  ['reviews', 'Review rules'],
  ['masking', 'Masking'],
  ['secrets', 'Secrets (names only)'],
  ['identities', 'Identity providers'],
];

export function AdminPage() {
  const [data, setData] = useState<Partial<Config>>({});
  const [error, setError] = useState<string>();
  useEffect(() => {
    for (const [key] of SECTIONS) {
      api<unknown>(`/api/admin/${key}`)
        .then((v) => setData((d) => ({ ...d, [key]: v })))
        .catch((err: unknown) => setError(errorText(err)));
    }
  }, []);
  // Refused (not an admin) or unreachable: say so instead of loading forever.
  if (error && Object.keys(data).length === 0) {
    return (
      <section>
        <h1>Configuration</h1>
        <ErrorNote error={error} />
      </section>
    );
  }
  return (
    <section>
      <h1>Configuration</h1>
      <p className="muted">The running gateway&rsquo;s configuration, read-only. Secrets are shown by reference or name, never by value.</p>
      <nav aria-label="Configuration sections">
        <ul className="config-toc">
          {SECTIONS.map(([key, title]) => (
            <li key={key}>
              <a href={`#config-${key}`}>{title}</a>
            </li>
          ))}
          <li>
            <a href="#config-policy-check">Policy check</a>
          </li>
          <li>
            <a href="#config-masking-report">Masking report</a>
          </li>
        </ul>
      </nav>
      <ErrorNote error={error} />
      {SECTIONS.map(([key, title]) => (
        <section key={key} id={`config-${key}`} className="config" aria-labelledby={`config-${key}-title`} data-testid={`config-${key}`}>
          <h2 id={`config-${key}-title`}>{title}</h2>
          {data[key] === undefined ? <p>Loading…</p> : <Section k={key} data={data as Config} />}
        </section>
      ))}
      <section id="config-policy-check" className="config" aria-labelledby="config-policy-check-title" data-testid="config-policy-check">
        <h2 id="config-policy-check-title">Policy check</h2>
        {data.connections === undefined ? <p>Loading…</p> : <PolicyCheck connections={data.connections.connections.map((c) => c.name)} />}
      </section>
      <section
        id="config-masking-report"
        className="config"
        aria-labelledby="config-masking-report-title"
        data-testid="config-masking-report"
      >
        <h2 id="config-masking-report-title">Masking report</h2>
        <MaskingReportView />
      </section>
    </section>
  );
}

function Section({ k, data }: { k: keyof Config; data: Config }) {
  switch (k) {
    case 'connections':
      return <Connections list={data.connections.connections} />;
    case 'policies':
      return <Policies list={data.policies.policies} />;
    case 'guardrails':
      return <Guardrails list={data.guardrails.guardrails} />;
    case 'reviews':
      return <Reviews list={data.reviews.reviews} />;
    case 'masking':
      return <MaskingTables m={data.masking} />;
    case 'secrets':
      return <SecretsTables s={data.secrets} />;
    case 'identities':
      return <IdentityTables i={data.identities} />;
  }
}

// ---- small pieces ---------------------------------------------------------------------------

function Table({ label, head, rows, empty }: { label: string; head: string[]; rows: ReactNode[][]; empty: string }) {
  if (rows.length === 0) return <Empty>{empty}</Empty>;
  return (
    <div className="scroll" tabIndex={0} role="group" aria-label={label}>
      <table aria-label={label}>
        <thead>
          <tr>
            {head.map((h) => (
              <th key={h} scope="col">
                {h}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              {r.map((c, j) =>
                j === 0 ? (
                  <th key={j} scope="row">
                    {c}
                  </th>
                ) : (
                  <td key={j}>{c}</td>
                ),
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Tags({ list, none = '—' }: { list: string[] | undefined; none?: string }) {
  if (!list || list.length === 0) return <span className="muted">{none}</span>;
  return (
    <>
      {list.map((x) => (
        <span key={x} className="tag">
          {x === '*' ? 'everyone / any' : x}
        </span>
      ))}
    </>
  );
}

function RefText({ r, none = 'none' }: { r: Ref; none?: string }) {
  if (!r) return <span className="muted">{none}</span>;
  return <span className="ref">{`${r.kind}:${r.name}`}</span>;
}

function Who({ s }: { s: Scope }) {
  const groups = s.groups ?? [];
  return (
    <>
      {groups.includes('*') ? <span className="tag">everyone</span> : <Tags list={groups} none="" />}
      {s.users && s.users.length > 0 && (
        <>
          {' '}
          users <Tags list={s.users} />
        </>
      )}
      {s.except && s.except.length > 0 && (
        <span className="muted">
          {' '}
          except <Tags list={s.except} />
        </span>
      )}
    </>
  );
}

function criteria(c: Criteria): string[] {
  const out: string[] = [];
  if (c.writes) out.push('any write (not read-only)');
  if (c.readOnly) out.push('anything but reads (read-only connection)');
  if (c.kinds?.length) out.push(`statement kinds: ${c.kinds.join(', ')}`);
  if (c.tables?.length) out.push(`tables: ${c.tables.join(', ')}`);
  if (c.functions?.length) out.push(`functions: ${c.functions.join(', ')}`);
  if (c.unboundedWrites) out.push('UPDATE/DELETE without WHERE');
  if (c.multiStatement) out.push('several statements in one query');
  if (c.commands?.length) out.push(`commands: ${c.commands.join(', ')}`);
  if (c.categories?.length) out.push(`command categories: ${c.categories.join(', ')}`);
  if (c.keys?.length) out.push(`keys: ${c.keys.join(', ')}`);
  return out;
}

function List({ items }: { items: string[] }) {
  if (items.length === 0) return <span className="muted">—</span>;
  if (items.length === 1) return <>{items[0]}</>;
  return (
    <ul>
      {items.map((x) => (
        <li key={x}>{x}</li>
      ))}
    </ul>
  );
}

function strategy(s: Strategy): string {
  return s.kind === 'partial' ? `partial (keep last ${s.keepLast ?? 4})` : s.kind;
}

// ---- sections -------------------------------------------------------------------------------

function Connections({ list }: { list: Connection[] }) {
  return (
    <Table
      label="Connections"
      empty="No connections configured."
      head={['Name', 'Type', 'Address', 'Database', 'Backend user', 'Password', 'TLS', 'Credentials']}
      rows={list.map((c) => [
        c.name,
        c.type,
        <span className="mono">{`${c.host}:${c.port}`}</span>,
        c.database || '—',
        c.user,
        <RefText r={c.password} />,
        <>
          {c.tls.mode}
          {c.tls.servername ? ` (${c.tls.servername})` : ''}
          {c.tls.ca ? <span className="muted"> CA {c.tls.ca}</span> : null}
        </>,
        c.credentials.mode === 'ephemeral' ? (
          <>
            ephemeral users <span className="mono">{c.credentials.rolePrefix}…</span> in <Tags list={c.credentials.roles} />
          </>
        ) : (
          c.credentials.mode
        ),
      ])}
    />
  );
}

function Policies({ list }: { list: Policy[] }) {
  return (
    <>
      <p className="muted small">Evaluated top-down: the first policy with access rules that applies decides a request.</p>
      <Table
        label="Access policies"
        empty="No access policies: nobody can get access."
        head={['Name', 'Connections', 'Who', 'Approval', 'Longest grant', 'Break-glass', 'Reason']}
        rows={list.map((p) => [
          p.name,
          <Tags list={p.connections} />,
          <Who s={p} />,
          !p.access ? (
            <span className="muted">no access rules</span>
          ) : p.access.approval === 'auto' ? (
            'granted at once'
          ) : (
            <>
              {p.access.approvals} approval{p.access.approvals === 1 ? '' : 's'} from <Tags list={p.access.approvers} />
              <span className="muted"> (pending expires after {duration(p.access.pendingExpiryMs)})</span>
            </>
          ),
          p.access ? duration(p.access.maxDurationMs) : '—',
          p.access ? (p.access.breakGlass ? 'allowed' : 'no') : '—',
          p.access ? (p.access.requireReason ? 'required' : 'optional') : '—',
        ])}
      />
    </>
  );
}

function Guardrails({ list }: { list: Guardrail[] }) {
  return (
    <Table
      label="Guardrails"
      empty="No guardrails configured."
      head={['Name', 'Connections', 'Applies to', 'Refuses', 'Reason']}
      rows={list.map((g) => [
        g.name,
        <Tags list={g.connections} />,
        <Who s={g} />,
        <List items={criteria(g.deny)} />,
        g.reason ?? <span className="muted">—</span>,
      ])}
    />
  );
}

function Reviews({ list }: { list: ReviewRule[] }) {
  return (
    <Table
      label="Review rules"
      empty="No review rules: no statement is held for approval."
      head={['Name', 'Connections', 'Applies to', 'Holds', 'Approval', 'Reason']}
      rows={list.map((r) => [
        r.name,
        <Tags list={r.connections} />,
        <Who s={r} />,
        <List items={criteria(r.match)} />,
        <>
          {r.approval.approvals} approval{r.approval.approvals === 1 ? '' : 's'} from <Tags list={r.approval.approvers} /> within{' '}
          {duration(r.approval.timeoutMs)}
        </>,
        r.reason ?? <span className="muted">—</span>,
      ])}
    />
  );
}

function MaskingTables({ m }: { m: Masking }) {
  const masks = (r: MaskRule) => [
    ...r.columns.map((c) => `column ${c.pattern} → ${strategy(c.strategy)}`),
    ...(r.keys ?? []).map((c) => `key ${c.pattern} → ${strategy(c.strategy)}`),
    ...(r.fields ?? []).map((c) => `hash field ${c.pattern} → ${strategy(c.strategy)}`),
  ];
  return (
    <>
      <Table
        label="Masking rules"
        empty="No masking rules: results are not masked by column."
        head={['Name', 'Connections', 'Applies to', 'Masks']}
        rows={m.rules.map((r) => [r.name, <Tags list={r.connections} />, <Who s={r} />, <List items={masks(r)} />])}
      />
      <h3>Content detectors</h3>
      <Table
        label="Content detectors"
        empty="No content detectors."
        head={['Connections', 'Detectors', 'Except']}
        rows={m.detectors.map((d) => [<Tags list={d.connections} />, <Tags list={d.detectors} />, <Tags list={d.except} />])}
      />
      <p className="small">
        Hash key: <RefText r={m.hashKey} none="generated under the data directory" />
      </p>
    </>
  );
}

function SecretsTables({ s }: { s: Secrets }) {
  return (
    <>
      <Table
        label="Stored secrets"
        empty="The gateway's secret store holds no secrets."
        head={['Name', 'Last set']}
        rows={s.secrets.map((x) => [<span className="mono">{x.name}</span>, when(x.updatedAt)])}
      />
      <h3>Where connections take their passwords</h3>
      <Table
        label="Password references"
        empty="No connection uses a password."
        head={['Connection', 'Reference']}
        rows={s.references.map((x) => [x.connection, <RefText r={x.password} />])}
      />
    </>
  );
}

function IdentityTables({ i }: { i: Identities }) {
  return (
    <>
      <Table
        label="OIDC issuers"
        empty="No OIDC issuers configured."
        head={['Name', 'Issuer', 'Client', 'Client secret', 'Audience', 'Groups claim', 'Scopes', 'Service accounts']}
        rows={i.issuers.map((x) => [
          x.name,
          <span className="mono">{x.issuer}</span>,
          x.clientId,
          <RefText r={x.clientSecret} none="public client (PKCE)" />,
          x.audience,
          x.groupsClaim,
          <Tags list={x.scopes} />,
          <Tags list={x.serviceAccounts} />,
        ])}
      />
      <Table
        label="SAML identity providers"
        empty="No SAML identity providers configured."
        head={[
          'Name',
          'IdP metadata',
          'SP metadata',
          'User',
          'Groups attribute',
          'Group map',
          'Signature required on',
          'Clock skew',
          'Sign-in lasts',
        ]}
        rows={i.samlProviders.map((x) => [
          x.name,
          <span className="mono">{x.metadata}</span>,
          <a href={`/api/auth/saml/${encodeURIComponent(x.name)}/metadata`}>{x.entityId ?? 'metadata'}</a>,
          x.userAttribute ?? 'NameID',
          x.groupsAttribute,
          <Tags list={Object.entries(x.groupMap).map(([from, to]) => `${from} → ${to.join(', ')}`)} none="as sent" />,
          x.requireSigned === 'both' ? 'response and assertion' : x.requireSigned,
          duration(x.clockSkewMs),
          duration(x.signInTtlMs),
        ])}
      />
      {i.developmentIdp && (
        <>
          <h3>Development identity provider</h3>
          <Table
            label="Development users"
            empty="No development users."
            head={['User', 'Groups']}
            rows={i.developmentIdp.users.map((u) => [u.user, <Tags list={u.groups} />])}
          />
        </>
      )}
      <dl className="facts">
        <dt>Administrator groups</dt>
        <dd>
          <Tags list={i.admins.groups} none="none" />
        </dd>
        <dt>Console session</dt>
        <dd>{i.session.ttlMs !== undefined ? duration(i.session.ttlMs) : '—'}</dd>
        <dt>Sign-in lasts</dt>
        <dd>{i.session.refreshTtlMs !== undefined ? duration(i.session.refreshTtlMs) : '—'}</dd>
      </dl>
    </>
  );
}
