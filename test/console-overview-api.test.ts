/**
 * The API behind the console's Overview and Connections pages, against a real gateway and a real
 * PostgreSQL used through the real client: alice asks for access, bob approves, alice's session runs
 * a refused TRUNCATE and a held UPDATE bob approves. Then:
 *   - GET /api/stats counts that session and its statements for the connection, the refusal under
 *     its guardrail, the hold under its review rule and both approvals' waits; approvers see
 *     everyone's activity and what waits now, anyone else only their own;
 *   - GET /api/catalog lists the connections a person can see with their access to each and every
 *     rule in words, marked where it applies to them, and no address or secret reference.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoIdentities } from '../src/demo/demo-identities.js';
import { DEMO_USERS } from '../src/demo/embedded.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';

let server: PgServer;
let gw: TestGateway;
type User = 'alice' | 'bob' | 'carol' | 'dave' | 'erin';
const bearer = {} as Record<User, string>;

beforeAll(async () => {
  server = await startPostgres();
  await server.query(`create table customers (id int primary key, name text, email text);
    insert into customers values (1, 'Ada', 'ada@example.com');
    grant select, update, truncate on customers to public`);
  gw = await startTestGateway(server, {
    extraYaml: `policies:
  - name: app-engineers
    connections: [app]
    groups: [engineering]
    access: { approvers: [approvers], maxDuration: 4h, requireReason: true }
guardrails:
  - name: no-truncate
    connections: [app]
    deny: { kinds: [truncate] }
    reason: emptying a table needs a migration
reviews:
  - name: customer-updates
    connections: [app]
    match: { kinds: [update] }
    approval: { approvers: [approvers], timeout: 5m }
masking:
  rules:
    - name: pii
      connections: [app]
      except: [admins]
      columns: { customers.email: email }
audit:
  auditors: [auditors]
`,
    configure: (config) => {
      config.identities = demoIdentities(DEMO_USERS);
    },
  });
  for (const u of DEMO_USERS) {
    bearer[u.user as User] = gw.gateway.identity.sessions.issue({
      issuer: 'dev',
      subject: u.user,
      user: u.user,
      groups: [...u.groups],
    }).accessToken;
  }
});

afterAll(async () => {
  await gw?.close();
  await server?.cleanup();
});

async function call<T = Record<string, unknown>>(
  who: User,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T; text: string }> {
  const res = await fetch(gw.httpUrl + path, {
    method,
    headers: { authorization: `Bearer ${bearer[who]}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as T, text };
}

/** Polls `read` until `done` holds (at most 100 tries, 100 ms apart). */
async function until<T>(read: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  let v = await read();
  for (let i = 0; i < 100 && !done(v); i++) {
    await new Promise((r) => setTimeout(r, 100));
    v = await read();
  }
  return v;
}

interface Waits {
  count: number;
  medianMs: number | null;
  p90Ms: number | null;
  buckets: Array<{ label: string; count: number }>;
}
interface Stats {
  window: string;
  scope: 'everyone' | 'mine';
  connections: Array<{ connection: string; sessions: number; statements: number }>;
  refusals: Array<{ rule: string; count: number }>;
  holds: Array<{ rule: string; count: number }>;
  approvals: { requests: Waits; statements: Waits };
  waiting: { requests: Array<{ connection: string; count: number }>; statements: Array<{ connection: string; count: number }> } | null;
}
interface Described {
  name: string;
  who: string;
  what: string[];
  reason: string | null;
  appliesToYou: boolean;
}
interface Catalog {
  connections: Array<{
    name: string;
    type: string;
    access: { state: string; until?: string };
    policy: string | null;
    rules: { policies: Described[]; guardrails: Described[]; reviews: Described[]; masking: Described[] };
  }>;
}

describe('overview statistics', () => {
  it(
    "count a day's session, its refusal, its hold and both approvals; approvers see everyone's, others their own",
    { timeout: 60_000 },
    async () => {
      const asked = await call<{ request: { id: string } }>('alice', 'POST', '/api/requests', {
        connection: 'app',
        duration: '1h',
        reason: 'INC-9',
      });
      expect(asked.status).toBe(201);

      // While it waits, an approver sees it among what waits now; alice sees only her own activity.
      const waitingNow = await call<Stats>('bob', 'GET', '/api/stats');
      expect(waitingNow.body.scope).toBe('everyone');
      expect(waitingNow.body.waiting?.requests).toEqual([{ connection: 'app', count: 1 }]);
      const hers = await call<Stats>('alice', 'GET', '/api/stats');
      expect(hers.body).toMatchObject({ scope: 'mine', waiting: null, connections: [] });

      expect((await call('bob', 'POST', `/api/requests/${asked.body.request.id}/approve`, { comment: 'ok' })).status).toBe(200);
      const { token } = (await call<{ token: string }>('alice', 'POST', '/api/tokens', { connection: 'app' })).body;

      const client = new pg.Client({ host: gw.host, port: gw.port, user: 'alice', database: 'app', password: token });
      await client.connect();
      try {
        expect((await client.query('select email from customers')).rows).toHaveLength(1);
        // An open session counts with the statements it has run so far.
        const open = await until(
          () => call<Stats>('bob', 'GET', '/api/stats'),
          (r) => (r.body.connections[0]?.statements ?? 0) >= 1,
        );
        expect(open.body.connections).toEqual([{ connection: 'app', sessions: 1, statements: 1 }]);
        await expect(client.query('truncate customers')).rejects.toThrow(/no-truncate|emptying a table/);
        const update = client.query(`update customers set name = 'Ada L.' where id = 1`);
        const held = await until(
          () => call<{ reviews: Array<{ id: string }> }>('bob', 'GET', '/api/reviews?state=pending'),
          (r) => r.body.reviews.length > 0,
        );
        expect(held.body.reviews).toHaveLength(1);
        expect((await call('bob', 'POST', `/api/reviews/${held.body.reviews[0]!.id}/approve`, {})).status).toBe(200);
        expect((await update).rowCount).toBe(1);
      } finally {
        await client.end();
      }

      // The session's end is written in a batch: wait for it to be stored as ended.
      const ended = await until(
        () => call<{ sessions: unknown[] }>('carol', 'GET', '/api/sessions?status=ended'),
        (r) => r.body.sessions.length > 0,
      );
      expect(ended.body.sessions).toHaveLength(1);
      const day = await call<Stats>('bob', 'GET', '/api/stats?window=24h');
      expect(day.status).toBe(200);
      expect(day.body.window).toBe('24h');
      expect(day.body.connections).toEqual([{ connection: 'app', sessions: 1, statements: 3 }]);
      expect(day.body.refusals).toEqual([{ rule: 'no-truncate', count: 1 }]);
      expect(day.body.holds).toEqual([{ rule: 'customer-updates', count: 1 }]);
      expect(day.body.approvals.requests.count).toBe(1);
      expect(day.body.approvals.statements.count).toBe(1);
      expect(day.body.approvals.requests.buckets.map((b) => b.label)).toEqual([
        'under 1 min',
        '1–5 min',
        '5–15 min',
        '15–60 min',
        'over 1 h',
      ]);
      expect(day.body.approvals.requests.buckets[0]!.count).toBe(1);
      expect(day.body.approvals.requests.medianMs).toBeGreaterThanOrEqual(0);
      expect(day.body.waiting).toEqual({ requests: [], statements: [] });

      const week = await call<Stats>('carol', 'GET', '/api/stats?window=7d');
      expect(week.body).toMatchObject({
        window: '7d',
        scope: 'everyone',
        connections: [{ connection: 'app', sessions: 1, statements: 3 }],
      });

      // alice sees her own numbers; erin, who did nothing, sees none of alice's.
      const alice = await call<Stats>('alice', 'GET', '/api/stats');
      expect(alice.body).toMatchObject({
        scope: 'mine',
        refusals: [{ rule: 'no-truncate', count: 1 }],
        holds: [{ rule: 'customer-updates', count: 1 }],
      });
      const erin = await call<Stats>('erin', 'GET', '/api/stats');
      expect(erin.body).toMatchObject({ scope: 'mine', connections: [], refusals: [], holds: [] });
      expect(erin.body.approvals.requests.count).toBe(0);

      const bad = await call('bob', 'GET', '/api/stats?window=1y');
      expect(bad.status).toBe(400);
      expect(bad.text).toContain('24h, 7d');
    },
  );
});

describe('connection inventory', () => {
  it('describes every rule of a connection in words, marked where it applies to the reader', async () => {
    const alice = await call<Catalog>('alice', 'GET', '/api/catalog');
    expect(alice.status).toBe(200);
    expect(alice.body.connections.map((c) => c.name)).toEqual(['app']);
    const app = alice.body.connections[0]!;
    expect(app).toMatchObject({ name: 'app', type: 'postgres', policy: 'app-engineers', access: { state: 'granted' } });
    expect(app.rules.policies).toEqual([
      {
        name: 'app-engineers',
        who: 'group engineering',
        what: [
          'access needs 1 approval from approvers; a request waits 1 hour at most',
          'grants last up to 4 hours',
          'a request must say why',
        ],
        reason: null,
        appliesToYou: true,
      },
    ]);
    expect(app.rules.guardrails).toEqual([
      {
        name: 'no-truncate',
        who: 'everyone',
        what: ['refuses TRUNCATE statements'],
        reason: 'emptying a table needs a migration',
        appliesToYou: true,
      },
    ]);
    expect(app.rules.reviews[0]).toMatchObject({
      name: 'customer-updates',
      what: ['holds UPDATE statements', 'until 1 approval from approvers (refused if undecided after 5 minutes)'],
    });
    expect(app.rules.masking).toEqual([
      {
        name: 'pii',
        who: 'everyone except admins',
        what: ['column customers.email: shown as a masked email address'],
        reason: null,
        appliesToYou: true,
      },
    ]);

    // An admin sees every connection; the masking rule does not apply to admins.
    const dave = await call<Catalog>('dave', 'GET', '/api/catalog');
    expect(dave.body.connections.map((c) => c.name)).toEqual(expect.arrayContaining(['app', 'app-md5', 'app-tls']));
    const daveApp = dave.body.connections.find((c) => c.name === 'app')!;
    expect(daveApp.access.state).toBe('none');
    expect(daveApp.rules.masking[0]!.appliesToYou).toBe(false);
    // Nothing about where the backend is or how the gateway logs in.
    expect(dave.text).not.toContain(String(server.port));
    expect(dave.text).not.toMatch(/PG_SCRAM|env:/);

    // Carol (security, auditors) is in no policy: she sees no connection to ask for.
    const carol = await call<Catalog>('carol', 'GET', '/api/catalog');
    expect(carol.body.connections).toEqual([]);
  });
});
