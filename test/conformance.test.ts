/**
 * One conformance suite for every protocol the gateway speaks: the same behaviour, checked the
 * same way, with real servers (private PostgreSQL, MariaDB and Redis) and the clients people use
 * (pg, mysql2, ioredis). Each protocol answers in its own format (SQLSTATE, MySQL errno and
 * SQLSTATE, a Redis error prefix); the table below says which, and every test asserts it.
 *
 * Covered: login; a wrong, expired and revoked token; kill; a guardrail refusal; a statement held
 * for review and approved, denied or cancelled by its client; masked results; the recording; and
 * drain (graceful shutdown lets the statement in flight finish and refuses new sessions).
 */
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayWith, type GatewayWith } from './support/gateway-with.js';
import { startMariadb, type MariadbServer } from './support/mysql-server.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { blockedClients } from './support/redis-gateway.js';
import { startRedis, type RedisServer } from './support/redis-server.js';
import { waitUntil, within } from './support/wait.js';

/** What a client was answered: rows (or a Redis reply), or an error in the protocol's format. */
type Answer = { rows: unknown } | { error: { code: string; message: string } };

interface Client {
  run(statement: string): Promise<Answer>;
  /** Cancels the statement in flight as the protocol's clients do (Redis has no cancel: the client leaves). */
  cancel(): Promise<void>;
  close(): void;
}

interface Engine {
  name: 'postgres' | 'mysql' | 'redis';
  connection: string;
  login(token: string, user: string): Promise<Client>;
  /** The error a login is refused with (the login must fail). */
  refusal(token: string, user: string): Promise<{ code: string; message: string }>;
  ok: [statement: string, answer: unknown];
  guardrail: [statement: string, code: string, message: RegExp];
  /** The error codes of: a bad or expired token, a revoked grant, a killed session. */
  codes: { badToken: string; revoked: string; killed: string };
  /** A write a review rule holds, setting a marker; and the marker as the backend has it now. */
  held(marker: string): string;
  marker(): Promise<string | null>;
  /** The error code of a held statement a reviewer denied, or its client cancelled. */
  heldCodes: { denied: string; cancelled: string | null };
  masked: [statement: string, answer: unknown];
  /** A statement that runs until ended, and whether the backend is running it. */
  slow: string;
  running(): Promise<boolean>;
  /** A statement that takes a moment and then answers (for drain), and its answer. */
  brief: [statement: string, answer: unknown];
  briefRunning(): Promise<boolean>;
}

let pgServer: PgServer;
let myServer: MariadbServer;
let redisServer: RedisServer;
let direct: Redis;
let myAdmin: mysql.Connection;
let gw: GatewayWith;
const dba = { user: 'dora', groups: ['dba'], kind: 'human' as const, via: 'test' };

function connections(): string[] {
  return [
    `{ name: pg, host: 127.0.0.1, port: ${pgServer.port}, database: app, user: ${pgServer.users.scram.user}, password: env:PG_SCRAM, tls: { mode: disable } }`,
    `{ name: my, type: mysql, host: 127.0.0.1, port: ${myServer.port}, database: app, user: ${myServer.users.native.user}, password: env:MY_NATIVE, tls: { mode: disable } }`,
    `{ name: cache, type: redis, host: 127.0.0.1, port: ${redisServer.port}, user: ${redisServer.users.gateway.user}, password: env:REDIS_GW, tls: { mode: disable } }`,
  ];
}

const EXTRA = `
guardrails:
  - name: no-ddl
    connections: [pg, my]
    deny: { kinds: [ddl, truncate] }
  - name: no-flush
    connections: [cache]
    deny: { commands: [flushall] }
reviews:
  - name: held-writes
    connections: [pg, my, cache]
    match: { writes: true }
    approval: { approvers: [dba] }
masking:
  rules:
    - name: payloads
      connections: [pg]
      columns: { items.payload: redact }
    - name: mail
      connections: [my]
      columns: { customers.email: email }
    - name: cache-mail
      connections: [cache]
      keys: { "user:*:email": email }
`;

function startConformanceGateway(): Promise<GatewayWith> {
  return startGatewayWith({
    listeners: '  postgres: { host: 127.0.0.1, port: 0 }\n  mysql: { host: 127.0.0.1, port: 0 }\n  redis: { host: 127.0.0.1, port: 0 }',
    connections: connections(),
    extraYaml: EXTRA,
    env: {
      PG_SCRAM: pgServer.users.scram.password,
      MY_NATIVE: myServer.users.native.password,
      REDIS_GW: redisServer.users.gateway.password,
    },
  });
}

beforeAll(async () => {
  [pgServer, myServer, redisServer] = await Promise.all([startPostgres(), startMariadb(), startRedis()]);
  direct = new Redis({
    host: '127.0.0.1',
    port: redisServer.port,
    username: redisServer.users.gateway.user,
    password: redisServer.users.gateway.password,
  });
  await direct.set('user:1:email', 'jane.doe@example.com');
  myAdmin = await mysql.createConnection({
    host: '127.0.0.1',
    port: myServer.port,
    user: myServer.users.admin.user,
    password: myServer.users.admin.password,
  });
  gw = await startConformanceGateway();
}, 60_000);

afterAll(async () => {
  direct?.disconnect();
  await myAdmin?.end();
  await gw?.close();
  await Promise.all([pgServer?.cleanup(), myServer?.cleanup(), redisServer?.stop()]);
});

// ---------------------------------------------------------------------------------------------
// the three protocols, through their clients

function postgresEngine(g: () => GatewayWith): Engine {
  const activity = async (query: string) =>
    (await pgServer.query('select 1 from pg_stat_activity where query = $1 and state = $2', [query, 'active'])).rowCount === 1;
  const answer = async (c: pg.Client, statement: string): Promise<Answer> => {
    try {
      return { rows: (await c.query(statement)).rows };
    } catch (e) {
      const err = e as { code?: string; message: string };
      return { error: { code: err.code ?? 'none', message: err.message } };
    }
  };
  const connect = async (token: string, user: string) => {
    const { host, port } = g().address('postgres');
    const c = new pg.Client({ host, port, user, database: 'pg', password: token });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  };
  return {
    name: 'postgres',
    connection: 'pg',
    login: async (token, user) => {
      const c = await connect(token, user);
      let running: pg.Query | undefined;
      return {
        run: (statement) => {
          const p = answer(c, statement);
          running = (c as unknown as { activeQuery?: pg.Query }).activeQuery ?? running;
          return p;
        },
        // A real CancelRequest, as pg's own cancel (and psql's Ctrl-C) sends it.
        cancel: async () => {
          const { host, port } = g().address('postgres');
          const canceller = new pg.Client({ host, port, user, database: 'pg' });
          (canceller as unknown as { cancel(c: pg.Client, q: pg.Query | undefined): void }).cancel(c, running);
        },
        close: () => void c.end().catch(() => undefined),
      };
    },
    refusal: async (token, user) => {
      const c = await connect(token, user).then(
        (c) => (void c.end(), undefined),
        (e: { code?: string; message: string }) => ({ code: e.code ?? 'none', message: e.message }),
      );
      if (!c) throw new Error('the login was not refused');
      return c;
    },
    ok: ['select 1 as one', [{ one: 1 }]],
    guardrail: ['drop table items', '42501', /^jitgate: statement refused by guardrail "no-ddl": DROP/],
    codes: { badToken: '28P01', revoked: '28000', killed: '57P01' },
    held: (marker) => `update items set payload = '${marker}' where id = 1`,
    marker: async () => (await pgServer.query<{ payload: string | null }>('select payload from items where id = 1')).rows[0]!.payload,
    heldCodes: { denied: '42501', cancelled: '57014' },
    masked: [
      'select id, name, payload from items where id in (2, 5) order by id',
      [
        { id: 2, name: 'beta', payload: '[redacted]' },
        { id: 5, name: 'epsilon', payload: '[redacted]' },
      ],
    ],
    slow: 'select pg_sleep(30)',
    running: () => activity('select pg_sleep(30)'),
    brief: ['select pg_sleep(0.5), 7 as answer', [{ pg_sleep: '', answer: 7 }]],
    briefRunning: () => activity('select pg_sleep(0.5), 7 as answer'),
  };
}

function mysqlEngine(g: () => GatewayWith): Engine {
  // Asked of the server directly (PROCESS privilege), fast enough to catch a half-second statement.
  const processlist = async (info: string) => {
    const [rows] = await myAdmin.query('SELECT COUNT(*) AS n FROM information_schema.processlist WHERE info = ?', [info]);
    return (rows as Array<{ n: number }>)[0]!.n === 1;
  };
  const toError = (e: unknown) => {
    const err = e as { errno?: number; sqlState?: string; message: string };
    return { code: `${err.errno ?? 'none'} (${err.sqlState ?? '?'})`, message: err.message };
  };
  const connect = (token: string, user: string) => {
    const { host, port } = g().address('mysql');
    return mysql.createConnection({ host, port, user, password: token, database: 'my' });
  };
  return {
    name: 'mysql',
    connection: 'my',
    login: async (token, user) => {
      const c = await connect(token, user);
      c.on('error', () => undefined);
      return {
        run: async (statement) => {
          try {
            return { rows: (await c.query(statement))[0] };
          } catch (e) {
            return { error: toError(e) };
          }
        },
        // KILL QUERY from another session of the same person, as the mysql CLI's Ctrl-C does.
        cancel: async () => {
          const killer = await connect(await g().token('my', { user }), user);
          await killer.query(`KILL QUERY ${c.threadId}`);
          await killer.end();
        },
        close: () => void c.end().catch(() => undefined),
      };
    },
    refusal: async (token, user) => {
      const r = await connect(token, user).then(
        (c) => (void c.end(), undefined),
        (e: unknown) => toError(e),
      );
      if (!r) throw new Error('the login was not refused');
      return r;
    },
    ok: ['SELECT 1 AS one', [{ one: 1 }]],
    guardrail: ['DROP TABLE items', '1142 (42000)', /^jitgate: statement refused by guardrail "no-ddl": DROP/],
    codes: { badToken: '1045 (28000)', revoked: '1045 (28000)', killed: '1927 (70100)' },
    held: (marker) => `UPDATE items SET name = '${marker}' WHERE id = 1`,
    marker: async () => myServer.root('SELECT name FROM app.items WHERE id = 1').trim(),
    heldCodes: { denied: '1142 (42000)', cancelled: '1317 (70100)' },
    masked: [
      'SELECT id, email FROM customers ORDER BY id',
      [
        { id: 1, email: 'j*******@example.com' },
        { id: 2, email: 'j***@example.org' },
      ],
    ],
    slow: 'SELECT SLEEP(30)',
    running: () => processlist('SELECT SLEEP(30)'),
    brief: ['SELECT SLEEP(0.5) AS s, 7 AS answer', [{ s: 0, answer: 7 }]],
    briefRunning: () => processlist('SELECT SLEEP(0.5) AS s, 7 AS answer'),
  };
}

function redisEngine(g: () => GatewayWith): Engine {
  const toError = (e: unknown) => {
    const message = (e as Error).message;
    const space = message.indexOf(' ');
    return { code: message.slice(0, space), message: message.slice(space + 1) };
  };
  const connect = async (token: string, user: string) => {
    const { host, port } = g().address('redis');
    const c = new Redis({
      host,
      port,
      username: `${user}@cache`,
      password: token,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableOfflineQueue: false,
    });
    // ioredis reports the server's answer to AUTH as an 'error' event; connect() only says it closed.
    const replies: Error[] = [];
    c.on('error', (err: Error) => err.name === 'ReplyError' && replies.push(err));
    try {
      await c.connect();
    } catch (e) {
      c.disconnect();
      throw replies[0] ?? e;
    }
    return c;
  };
  return {
    name: 'redis',
    connection: 'cache',
    login: async (token, user) => {
      const c = await connect(token, user);
      return {
        run: async (statement) => {
          const [command, ...args] = statement.split(' ');
          try {
            return { rows: await c.call(command!, ...args) };
          } catch (e) {
            return { error: toError(e) };
          }
        },
        // RESP has no cancel: the client leaves, and what it had held is withdrawn.
        cancel: async () => c.disconnect(),
        close: () => c.disconnect(),
      };
    },
    refusal: async (token, user) => {
      const r = await connect(token, user).then(
        (c) => (c.disconnect(), undefined),
        (e: unknown) => toError(e),
      );
      if (!r) throw new Error('the login was not refused');
      return r;
    },
    ok: ['PING', 'PONG'],
    guardrail: ['FLUSHALL', 'NOPERM', /^jitgate: command refused by guardrail "no-flush": FLUSHALL/],
    codes: { badToken: 'WRONGPASS', revoked: 'NOPERM', killed: 'ERR' },
    held: (marker) => `SET held ${marker}`,
    marker: () => direct.get('held'),
    heldCodes: { denied: 'NOPERM', cancelled: null },
    masked: ['GET user:1:email', 'j*******@example.com'],
    // Blocking reads (a blocking pop would be a write, which the review rule holds).
    slow: 'XREAD BLOCK 30000 STREAMS conformance:never $',
    running: async () => (await blockedClients(redisServer)) >= 1,
    brief: ['XREAD BLOCK 500 STREAMS conformance:drain $', null],
    briefRunning: async () => (await blockedClients(redisServer)) >= 1,
  };
}

const ENGINES: Engine[] = [postgresEngine(() => gw), mysqlEngine(() => gw), redisEngine(() => gw)];

/** The pending review of `user`'s held statement, once it is held. */
function pendingReview(user: string): Promise<{ id: string }> {
  return waitUntil(`a pending review of ${user}`, () => gw.gateway.reviews.list(dba, { state: 'pending' }).find((r) => r.user === user));
}

/** The live session of `user` (one at a time per user in this suite). */
function liveSession(user: string): Promise<{ id: string }> {
  return waitUntil(`a live session of ${user}`, async () =>
    (await gw.gateway.store.listSessions({ active: true })).find((s) => s.user === user),
  );
}

describe.each(ENGINES)('$name', (e) => {
  // One user per protocol and test, so that sessions, reviews and recordings are told apart.
  const user = (what: string) => `${what}-${e.name}`;

  it('logs in with a token and runs a statement', async () => {
    const c = await e.login(await gw.token(e.connection, { user: user('ok') }), user('ok'));
    expect(await c.run(e.ok[0])).toEqual({ rows: e.ok[1] });
    c.close();
  });

  it('refuses a wrong, an expired and a revoked token, in its own error format', async () => {
    expect(await e.refusal('jg_not-a-token', 'alice')).toMatchObject({ code: e.codes.badToken });
    // Issued a minute ago for a second: expired, with no wait.
    const expired = await gw.token(e.connection, { ttlMs: 1000, now: Date.now() - 60_000 });
    expect(await e.refusal(expired, 'alice')).toMatchObject({ code: e.codes.badToken });
    const who = user('revoked');
    const { token, grantId } = await gw.issue(e.connection, { user: who });
    await gw.gateway.access.revoke({ user: who, groups: [], kind: 'human', via: 'test' }, grantId, 'done for today');
    const refused = await e.refusal(token, who);
    expect(refused.code).toBe(e.codes.revoked);
    expect(refused.message).toMatch(new RegExp(`access grant [0-9a-f]{8} was revoked by ${who}: done for today`));
  });

  it('kill ends the session: the statement in flight is answered with who ended it and why', async () => {
    const c = await e.login(await gw.token(e.connection, { user: user('killed') }), user('killed'));
    const running = c.run(e.slow);
    await waitUntil(`${e.slow} to run on the backend`, e.running);
    expect(gw.gateway.recording.kill((await liveSession(user('killed'))).id, 'dave', 'incident 7')).toBe('killed');
    const answer = await within('the statement in flight to be answered', running);
    expect(answer).toEqual({ error: { code: e.codes.killed, message: expect.stringContaining('session ended by dave: incident 7') } });
    await waitUntil(
      'the session to end as killed',
      async () => (await gw.gateway.store.listSessions({ user: user('killed') }))[0]?.endReason === 'killed',
    );
    c.close();
  });

  it('refuses what a guardrail forbids, naming the rule, and goes on', async () => {
    const c = await e.login(await gw.token(e.connection, { user: user('guarded') }), user('guarded'));
    const refused = await c.run(e.guardrail[0]);
    expect(refused).toEqual({ error: { code: e.guardrail[1], message: expect.stringMatching(e.guardrail[2]) } });
    expect(await c.run(e.ok[0])).toEqual({ rows: e.ok[1] });
    c.close();
  });

  it.each(['approved', 'denied', 'cancelled'] as const)('holds a write for review: %s', async (outcome) => {
    const who = user(`held-${outcome}`);
    const c = await e.login(await gw.token(e.connection, { user: who }), who);
    const marker = `${outcome}-${e.name}`;
    const answer = c.run(e.held(marker));
    const review = await pendingReview(who);
    // Held: not run while it waits.
    expect(await e.marker()).not.toBe(marker);
    if (outcome === 'approved') gw.gateway.reviews.approve(dba, review.id, 'fine');
    if (outcome === 'denied') gw.gateway.reviews.deny(dba, review.id, 'not now');
    if (outcome === 'cancelled') await c.cancel();
    const got = await within('the held statement to be answered', answer);
    if (outcome === 'approved') {
      expect(got).not.toHaveProperty('error');
      expect(await e.marker()).toBe(marker);
    } else {
      const code = outcome === 'denied' ? e.heldCodes.denied : e.heldCodes.cancelled;
      // Redis has no cancel: its client left, so nobody is answered.
      if (code !== null) expect(got).toMatchObject({ error: { code } });
      if (outcome === 'denied') expect(got).toMatchObject({ error: { message: expect.stringContaining('not now') } });
      expect(await e.marker()).not.toBe(marker);
      await waitUntil(
        `the review to be ${outcome === 'denied' ? 'denied' : 'withdrawn'}`,
        () => gw.gateway.reviews.get(dba, review.id).state === (outcome === 'denied' ? 'denied' : 'withdrawn'),
      );
    }
    c.close();
  });

  it('answers with masked values: the rows come back, masked', async () => {
    const c = await e.login(await gw.token(e.connection, { user: user('masked') }), user('masked'));
    expect(await c.run(e.masked[0])).toEqual({ rows: e.masked[1] });
    c.close();
  });

  it('records the session: its statements are in the recording', async () => {
    const who = user('recorded');
    const c = await e.login(await gw.token(e.connection, { user: who }), who);
    await c.run(e.ok[0]);
    await c.run(e.masked[0]);
    c.close();
    const session = await waitUntil('the recording to be closed', () =>
      gw.gateway.recording.repo
        .search({ user: who, limit: 5 })
        .find((s) => s.endedAt !== null && s.recording && s.recording.state !== 'recording'),
    );
    const recorded = (await gw.gateway.recording.read(session.id))!.result.events
      .filter((ev) => ev.type === 'statement')
      .map((ev) => ev.data.text);
    // Last, after whatever the client library sends on its own at connect (ioredis: CLIENT SETINFO, INFO).
    expect(recorded.slice(-2)).toEqual([e.ok[0], e.masked[0]]);
  });

  it('drains: the statement in flight finishes, new sessions are refused', async () => {
    const own = await startConformanceGateway();
    const mine = e.name === 'postgres' ? postgresEngine(() => own) : e.name === 'mysql' ? mysqlEngine(() => own) : redisEngine(() => own);
    const c = await mine.login(await own.token(e.connection), 'alice');
    const late = await own.token(e.connection);
    const running = c.run(e.brief[0]);
    await waitUntil(`${e.brief[0]} to run on the backend`, e.briefRunning);
    const closing = own.close();
    // The listener stops taking sessions at once; the one in flight is answered in full.
    await expect(mine.login(late, 'alice')).rejects.toThrow();
    expect(await within('the statement in flight to be answered', running)).toEqual({ rows: e.brief[1] });
    await closing;
    c.close();
  });
});
