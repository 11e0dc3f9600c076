/**
 * Changes made through one gateway instance reach the sessions another serves: two instances on one
 * store (one data directory, SQLite in WAL mode), a real PostgreSQL and the pg driver, the HTTP API
 * of instance B acting on sessions of instance A:
 *
 *  - a grant revoked through B ends A's session on it;
 *  - a statement held on A is run when approved through B, and refused when denied through B;
 *  - a kill through B ends A's session, audited once with the killer;
 *  - a CancelRequest sent to B cancels the query running on A, when its secret is right.
 *
 * State lives in the store; each instance reads what concerns it every CATCH_UP_EVERY_MS.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../src/core/clock.js';
import type { Identity } from '../src/core/types.js';
import { startGateway, type Gateway } from '../src/main.js';
import { createLogger } from '../src/obs/log.js';
import type { SqliteStore } from '../src/store/sqlite.js';
import { PEOPLE, startAccessGateway, type AccessGateway, type Person } from './support/access.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { sendCancelRequest } from './support/raw-client.js';
import { waitUntil } from './support/wait.js';

let server: PgServer;
let a: AccessGateway;
let b: Gateway;
const clients: pg.Client[] = [];

beforeAll(async () => {
  server = await startPostgres();
  await server.query('create table notes (n int); grant all on notes to public');
  a = await startAccessGateway(server, {
    clock: systemClock,
    extraYaml: `reviews:
  - name: notes
    connections: [app]
    match: { tables: [notes] }
    approval: { approvers: [approvers], timeout: 10m }
agents:
  limits:
    - { groups: [bots], statementsPerMinute: 3 }
`,
  });
  // Instance B: the same configuration, so the same store, in the same process.
  b = await startGateway(a.gw.config, {
    env: {
      PG_SCRAM: server.users.scram.password,
      PG_MD5: server.users.md5.password,
      PG_PLAIN: server.users.plain.password,
      PG_TLS: server.users.tls.password,
    },
    logger: createLogger({ level: 'silent' }),
  });
  b.router.setAuthenticator((req) => {
    const m = /^Bearer test:(\w+)$/.exec(req.headers.authorization ?? '');
    return m ? ((PEOPLE as Record<string, Identity>)[m[1]!] ?? null) : null;
  });
  b.access.setAdminCheck((i) => i.groups.includes('admins'));
});

afterAll(async () => {
  for (const c of clients) await c.end().catch(() => undefined);
  await b?.close();
  await a?.gw.close();
  await server?.cleanup();
});

/** The HTTP API of instance B, as `who`. */
async function onB<T = Record<string, unknown>>(
  who: Person,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await fetch(b.addresses.http + path, {
    method,
    headers: { authorization: `Bearer ${a.bearer(who)}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** alice's pg client on instance A, under a fresh grant; with how it ended once it does. */
async function aliceOnA(name: string) {
  const c = new pg.Client({
    host: a.gw.host,
    port: a.gw.port,
    user: 'alice',
    database: 'app',
    password: await a.gw.token(),
    application_name: name,
  });
  let ended: Error | undefined;
  c.on('error', (err) => (ended ??= err)); // the first: what the gateway said (then the socket closes)
  await c.connect();
  clients.push(c);
  expect((await c.query('select 1 as n')).rows).toEqual([{ n: 1 }]);
  const session = (await a.gw.gateway.store.listSessions({ active: true })).find((s) => s.applicationName === name)!;
  return { c, session, ended: () => ended };
}

describe('instances acting on each other sessions through the store', () => {
  it('a grant revoked through B ends the session A serves on it', async () => {
    const { session, ended } = await aliceOnA('revoked-through-b');
    const revoked = await onB('dave', 'POST', `/api/grants/${await grantOf(session.id)}/revoke`, { reason: 'incident 42' });
    expect(revoked.status).toBe(200);
    const err = await waitUntil('A to end the session', ended, { timeoutMs: 5_000 });
    expect(err.message).toMatch(/revoked by dave: incident 42/);
    await waitUntil('the session to be closed in the store', async () =>
      (await a.gw.gateway.store.listSessions()).find((s) => s.id === session.id && s.endReason === 'revoked'),
    );
  });

  it('a statement held on A runs when approved through B, and is refused when denied through B', async () => {
    const { c } = await aliceOnA('held-on-a');
    const approved = c.query('insert into notes values (1) returning n');
    const first = await waitUntil('a review held on A', () => b.reviews.list(PEOPLE.carol, { state: 'pending' })[0]);
    expect((await onB('carol', 'POST', `/api/reviews/${first.id}/approve`, { comment: 'fine' })).status).toBe(200);
    expect((await approved).rows).toEqual([{ n: 1 }]);

    const denied = c.query('insert into notes values (2)').then(
      () => undefined,
      (err: Error & { code?: string }) => err,
    );
    const second = await waitUntil('another review held on A', () => b.reviews.list(PEOPLE.carol, { state: 'pending' })[0]);
    expect((await onB('carol', 'POST', `/api/reviews/${second.id}/deny`, { comment: 'not today' })).status).toBe(200);
    const refusal = await denied;
    expect(refusal).toMatchObject({ code: '42501' });
    expect(refusal!.message).toBe(`jitgate: statement denied by carol (review ${second.id.slice(0, 8)}, rule "notes"): not today`);
    expect((await server.query('select n from notes order by n')).rows).toEqual([{ n: 1 }]);
    // The session goes on.
    expect((await c.query('select 2 as n')).rows).toEqual([{ n: 2 }]);
  });

  it('a kill through B ends the session A serves, audited once with the killer', async () => {
    const { session, ended } = await aliceOnA('killed-through-b');
    const killed = await onB<{ killed: boolean; instance?: string }>('dave', 'POST', `/api/sessions/${session.id}/kill`, {
      reason: 'leaving',
    });
    expect(killed).toMatchObject({ status: 202, body: { killed: true, instance: session.instanceId } });
    const err = await waitUntil('A to end the session', ended, { timeoutMs: 5_000 });
    expect(err.message).toMatch(/session ended by dave: leaving/);
    await waitUntil('the session to be closed in the store', async () =>
      (await a.gw.gateway.store.listSessions()).find((s) => s.id === session.id && s.endReason === 'killed'),
    );
    const audited = (await a.gw.gateway.audit.about(session.id)).filter((e) => e.type === 'session.killed');
    expect(audited).toMatchObject([{ actor: 'dave', data: { reason: 'leaving' } }]);
    // Killing it again: it is not live anywhere.
    expect((await onB('dave', 'POST', `/api/sessions/${session.id}/kill`, { reason: 'again' })).status).toBe(409);
  });
});

/** A browser's /api/events stream on `http`, as `who`. */
async function listen(http: string, who: Person) {
  const ac = new AbortController();
  const res = await fetch(`${http}/api/events`, { headers: { authorization: `Bearer ${a.bearer(who)}` }, signal: ac.signal });
  const reader = res.body!.getReader();
  let text = '';
  const stream = {
    text: () => text,
    async until(pattern: RegExp, timeoutMs = 5_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(text)) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no ${pattern} on the stream; got:\n${text}`);
        const next = await Promise.race([reader.read(), new Promise<undefined>((r) => setTimeout(() => r(undefined), left))]);
        if (next?.done) throw new Error(`stream ended before ${pattern}`);
        if (next?.value) text += new TextDecoder().decode(next.value);
      }
    },
    stop: () => ac.abort(),
  };
  await stream.until(/event: hello/);
  return stream;
}

type Stream = Awaited<ReturnType<typeof listen>>;

/**
 * Waits until `stream` (a browser on the other instance) hears of a request alice makes through
 * `through`, then has it denied. The instance behind `stream` has then run a whole catch-up round
 * that began after everything written before the request: its usage and events readers both
 * saw it (they run in that order within a round).
 */
async function roundAfter(through: 'A' | 'B', stream: Stream): Promise<void> {
  const call = through === 'A' ? a.api.bind(a) : onB;
  const made = await call<{ request: { id: string } }>('alice', 'POST', '/api/requests', {
    connection: 'app-md5',
    duration: '15m',
    reason: 'marker',
  });
  expect(made.status).toBe(201);
  const id = made.body.request.id;
  await stream.until(new RegExp(`event: request.created\ndata: .*"${id}"`));
  expect((await call('carol', 'POST', `/api/requests/${id}/deny`, { reason: 'marker' })).status).toBe(200);
}

describe('console live events across instances', () => {
  it('a browser on B hears of a request made and a statement held through A; A’s own hear them once', async () => {
    const onBStream = await listen(b.addresses.http, 'carol');
    const onAStream = await listen(a.gw.httpUrl, 'carol');
    try {
      const asked = await a.api<{ request: { id: string } }>('alice', 'POST', '/api/requests', {
        connection: 'app',
        duration: '15m',
        reason: 'seen from B',
      });
      expect(asked.status).toBe(201);
      const id = asked.body.request.id;
      await onBStream.until(new RegExp(`event: request.created\ndata: .*"${id}"`));

      const { c } = await aliceOnA('held-for-live');
      const held = c.query('insert into notes values (5)').then(
        () => undefined,
        (err: Error) => err,
      );
      const review = await waitUntil('a review held on A', () => a.gw.gateway.reviews.list(PEOPLE.carol, { state: 'pending' })[0]);
      await onBStream.until(new RegExp(`event: review.created\ndata: .*"${review.id}"`));
      expect((await a.api('carol', 'POST', `/api/reviews/${review.id}/deny`, { comment: 'no' })).status).toBe(200);
      await onBStream.until(new RegExp(`event: review.denied\ndata: .*"${review.id}"`));
      expect(await held).toMatchObject({ code: '42501' });

      // A's browser heard its own events as they happened, and the log does not repeat them once A has read past them.
      await onAStream.until(new RegExp(`event: review.denied\ndata: .*"${review.id}"`));
      await roundAfter('B', onAStream);
      const count = (text: string, type: string, ofId: string) =>
        text.split('\n').filter((l, i, all) => l === `event: ${type}` && all[i + 1]!.includes(`"${ofId}"`)).length;
      expect(count(onAStream.text(), 'request.created', id)).toBe(1);
      expect(count(onAStream.text(), 'review.created', review.id)).toBe(1);
      expect(count(onBStream.text(), 'request.created', id)).toBe(1);
    } finally {
      onBStream.stop();
      onAStream.stop();
    }
  });
});

describe('limits counted across instances', () => {
  it('an agent’s statements per minute count on every instance it connects to', async () => {
    const connect = async (port: number) => {
      const c = new pg.Client({
        host: a.gw.host,
        port,
        user: 'robot',
        database: 'app',
        password: await a.gw.token({ user: 'robot', groups: ['bots'] }),
      });
      await c.connect();
      clients.push(c);
      return c;
    };
    const onA = await connect(a.gw.port);
    const onBPort = Number(b.addresses.postgres!.slice(b.addresses.postgres!.lastIndexOf(':') + 1));
    const onB = await connect(onBPort);
    const counted = () =>
      (a.gw.gateway.store as SqliteStore).database
        .prepare(`select coalesce(sum(count), 0) from usage_counts where key = 'robot'`)
        .pluck()
        .get();
    const onAStream = await listen(a.gw.httpUrl, 'carol');
    const onBStream = await listen(b.addresses.http, 'carol');
    try {
      await onA.query('select 1');
      await onA.query('select 2');
      // A writes its count at its next catch-up round, and B reads it at its next.
      await waitUntil('A to write its count', () => counted() === 2 || undefined);
      await roundAfter('A', onBStream);
      await onB.query('select 3');
      await expect(onB.query('select 4')).rejects.toThrow(/rate limit reached: 3 statements per minute/);
      // And B's reaches A.
      await waitUntil('B to write its count', () => counted() === 3 || undefined);
      await roundAfter('B', onAStream);
      await expect(onA.query('select 5')).rejects.toThrow(/rate limit reached/);
    } finally {
      onAStream.stop();
      onBStream.stop();
    }
  });
});

describe('cancel keys shared by instances', () => {
  it('a CancelRequest that reaches B cancels the query A runs, if its secret is right', async () => {
    const { c } = await aliceOnA('cancelled-through-b');
    const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
    /** A query as it ends: its rows, or the error that ended it; `settled` says whether it has. */
    const run = (sql: string) => {
      const q = { settled: false, outcome: undefined as unknown as Promise<{ rows?: unknown[]; code?: string }> };
      q.outcome = c.query(sql).then(
        (r) => ((q.settled = true), { rows: r.rows }),
        (err: Error & { code?: string }) => ((q.settled = true), { code: err.code }),
      );
      return q;
    };
    const running = (sql: string) =>
      waitUntil(`${sql} to run on the backend`, async () => {
        const r = await server.query(`select count(*)::int n from pg_stat_activity where query = $1 and state = 'active'`, [sql]);
        return r.rows[0]!.n === 1 || undefined;
      });
    const pending = () => (a.gw.gateway.store as SqliteStore).database.prepare('select count(*) from cancel_requests').pluck().get();

    // A wrong secret is passed on and A ignores it, as PostgreSQL would: the query runs to its end.
    const short = run('select pg_sleep(1.5) as slept');
    await running('select pg_sleep(1.5) as slept');
    await sendCancelRequest(portOf(b.addresses.postgres!), processID, (secretKey + 1) | 0);
    await waitUntil('A to take the cancel', () => pending() === 0 || undefined);
    // Taken while the query still ran (else this part would prove nothing).
    expect(short.settled).toBe(false);
    expect(await short.outcome).toEqual({ rows: [{ slept: '' }] });

    // The right one cancels the query; the session goes on.
    const long = run('select pg_sleep(60)');
    await running('select pg_sleep(60)');
    await sendCancelRequest(portOf(b.addresses.postgres!), processID, secretKey);
    expect(await long.outcome).toEqual({ code: '57014' });
    expect((await c.query('select 3 as n')).rows).toEqual([{ n: 3 }]);
  });
});

/** The grant a session rests on, from the store's audit of its start. */
async function grantOf(sessionId: string): Promise<string | undefined> {
  const started = (await a.gw.gateway.audit.about(sessionId)).find((e) => e.type === 'session.started');
  return (started?.data as { grant?: { id: string } } | undefined)?.grant?.id;
}

const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));
