/**
 * Ordinary client behaviour that must work through the gateway as it works directly, rules or not
 * (issue 12, "Masking that real clients can live with"): settings a driver sends in the startup
 * packet, and a client that gives up before its connection is up. Found by running node-postgres's
 * own integration suite through the gateway; these are our own tests of the same behaviour, with the
 * real `pg` driver against a real PostgreSQL 15, each compared with what the server does directly.
 */
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { settledSession } from './support/recording.js';

let server: PgServer;
let gw: TestGateway;

beforeAll(async () => {
  server = await startPostgres();
  const backend = (name: string) =>
    `{ name: ${name}, host: 127.0.0.1, port: ${server.port}, database: app, user: ${server.users.scram.user}, password: env:PG_SCRAM, tls: { mode: disable } }`;
  gw = await startTestGateway(server, {
    extraConnections: [backend('app-masked'), backend('app-guarded'), backend('app-reviewed')],
    extraYaml: `
masking:
  rules:
    - { name: pii, connections: [app-masked], columns: { "crm.customers.email": email } }
guardrails:
  - name: fixed-timeouts
    connections: [app-guarded]
    deny: { kinds: [truncate], unboundedWrites: true, settings: [lock_timeout] }
reviews:
  - name: reviewed-changes
    connections: [app-reviewed]
    match: { writes: true }
    approval: { approvers: [approvers], timeout: 10m }
`,
  });
});

afterAll(async () => {
  await gw?.close();
  await server?.cleanup();
});

type PgError = Error & { code?: string };

/** node-postgres sends these three as startup parameters of their own (not in `options`). */
const timeouts = { statement_timeout: 3000, lock_timeout: 2000, idle_in_transaction_session_timeout: 4000 };

async function shownTimeouts(config: pg.ClientConfig): Promise<string[]> {
  const c = new pg.Client({ ...config, ...timeouts });
  await c.connect();
  try {
    const r = await c.query(
      "select current_setting('statement_timeout') s, current_setting('lock_timeout') l, current_setting('idle_in_transaction_session_timeout') i",
    );
    return [r.rows[0].s, r.rows[0].l, r.rows[0].i];
  } finally {
    await c.end();
  }
}

describe('settings a driver sends at login', () => {
  it.each(['app', 'app-masked'])('take effect on %s as they do directly', async (connection) => {
    const direct = await shownTimeouts({
      host: '127.0.0.1',
      port: server.port,
      database: 'app',
      user: server.users.scram.user,
      password: server.users.scram.password,
    });
    expect(direct).toEqual(['3s', '2s', '4s']);
    const through = await shownTimeouts({
      host: gw.host,
      port: gw.port,
      database: connection,
      user: 'alice',
      password: await gw.token({ connection }),
    });
    expect(through).toEqual(direct);
  });

  it('are recorded as the SETs they amount to', async () => {
    const c = new pg.Client({
      host: gw.host,
      port: gw.port,
      database: 'app',
      user: 'alice',
      password: await gw.token(),
      application_name: 'compat-recorded',
      ...timeouts,
    });
    await c.connect();
    await c.end();
    const session = await settledSession(gw, { applicationName: 'compat-recorded' });
    const read = await gw.gateway.recording.read(session.id);
    const statements = read!.result.events.filter((e) => e.type === 'statement').map((e) => (e.data as { text?: string }).text);
    expect(statements).toEqual([
      "SET statement_timeout = '3000'",
      "SET lock_timeout = '2000'",
      "SET idle_in_transaction_session_timeout = '4000'",
    ]);
  });

  it('refuse the login, naming the setting, where a guardrail denies changing it', async () => {
    const err = await new pg.Client({
      host: gw.host,
      port: gw.port,
      database: 'app-guarded',
      user: 'alice',
      password: await gw.token({ connection: 'app-guarded' }),
      ...timeouts,
    })
      .connect()
      .then(
        () => undefined,
        (e: PgError) => e,
      );
    expect(err?.message).toContain('changes lock_timeout (setting_denied)');
    // Without the denied one, the same login works and keeps the others.
    const { lock_timeout: _denied, ...allowed } = timeouts;
    const c = new pg.Client({
      host: gw.host,
      port: gw.port,
      database: 'app-guarded',
      user: 'alice',
      password: await gw.token({ connection: 'app-guarded' }),
      ...allowed,
    });
    await c.connect();
    try {
      expect((await c.query('show statement_timeout')).rows[0].statement_timeout).toBe('3s');
    } finally {
      await c.end();
    }
  });
});

describe('settings at login under a review rule', () => {
  it('refuse the login naming the rule, and open no review nobody could wait for', async () => {
    const err = await new pg.Client({
      host: gw.host,
      port: gw.port,
      database: 'app-reviewed',
      user: 'alice',
      password: await gw.token({ connection: 'app-reviewed' }),
      ...timeouts,
    })
      .connect()
      .then(
        () => undefined,
        (e: PgError) => e,
      );
    expect(err?.message).toContain('needs approval (review rule "reviewed-changes"), which a login cannot wait for');
    const alice = { user: 'alice', groups: [], kind: 'human' as const, via: 'test' };
    expect(gw.gateway.reviews.list(alice, { connection: 'app-reviewed' })).toEqual([]);
    // Without startup settings the same login works; a SET in the session is held as usual.
    const c = new pg.Client({
      host: gw.host,
      port: gw.port,
      database: 'app-reviewed',
      user: 'alice',
      password: await gw.token({ connection: 'app-reviewed' }),
    });
    await c.connect();
    try {
      expect((await c.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
  });
});

describe('an empty query', () => {
  /** What pg reports for an empty query string, by the simple and the extended protocol. */
  async function emptyQueries(config: pg.ClientConfig): Promise<unknown[]> {
    const c = new pg.Client(config);
    await c.connect();
    try {
      const simple = await c.query('');
      const extended = await c.query({ text: '', values: [] });
      const named = await c.query({ name: 'nothing', text: '', values: [] });
      return [simple, extended, named].map((r) => ({ command: r.command, rowCount: r.rowCount, rows: r.rows }));
    } finally {
      await c.end();
    }
  }

  it.each(['app', 'app-masked', 'app-guarded'])('is answered on %s as PostgreSQL answers it', async (connection) => {
    const direct = await emptyQueries({
      host: '127.0.0.1',
      port: server.port,
      database: 'app',
      user: server.users.scram.user,
      password: server.users.scram.password,
    });
    expect(
      await emptyQueries({ host: gw.host, port: gw.port, database: connection, user: 'alice', password: await gw.token({ connection }) }),
    ).toEqual(direct);
  });
});

describe('several statements in one extended-protocol query', () => {
  async function refusal(config: pg.ClientConfig): Promise<Pick<PgError, 'code' | 'message'> | undefined> {
    const c = new pg.Client(config);
    await c.connect();
    try {
      return await c.query({ name: 'two-statements', text: 'select 1; select 2' }).then(
        () => undefined,
        (e: PgError) => ({ code: e.code, message: e.message }),
      );
    } finally {
      await c.end();
    }
  }

  it.each(['app', 'app-masked', 'app-guarded'])("are refused on %s with the server's own message", async (connection) => {
    const direct = await refusal({
      host: '127.0.0.1',
      port: server.port,
      database: 'app',
      user: server.users.scram.user,
      password: server.users.scram.password,
    });
    expect(direct).toEqual({ code: '42601', message: 'cannot insert multiple commands into a prepared statement' });
    expect(
      await refusal({ host: gw.host, port: gw.port, database: connection, user: 'alice', password: await gw.token({ connection }) }),
    ).toEqual(direct);
  });
});

describe('a client that ends before its connection is up', () => {
  /** pg's end() right after connect(): its Terminate goes out before the SSLRequest. */
  async function connectThenEnd(config: pg.ClientConfig): Promise<string[]> {
    const errors: string[] = [];
    const c = new pg.Client({ ...config, ssl: { rejectUnauthorized: false } });
    c.on('error', (e: Error) => errors.push(`error event: ${e.message}`));
    c.connect((e: Error | undefined) => {
      if (e) errors.push(`connect: ${e.message}`);
    });
    // end() resolves once the socket has closed, so whatever the server answered has been read.
    await c.end();
    return errors;
  }

  it.each(['app', 'app-masked', 'app-guarded'])('sees %s close as PostgreSQL closes it, without an error', async (connection) => {
    const direct = await connectThenEnd({
      host: '127.0.0.1',
      port: server.port,
      database: 'app',
      user: server.users.scram.user,
      password: server.users.scram.password,
    });
    expect(direct).toEqual([]);
    expect(
      await connectThenEnd({ host: gw.host, port: gw.port, database: connection, user: 'alice', password: await gw.token({ connection }) }),
    ).toEqual(direct);
  });

  /** What a server answers to bytes that cannot be a startup packet, until it closes the connection. */
  function answerTo(port: number, bytes: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const s = net.connect(port, '127.0.0.1', () => s.end(bytes));
      s.setTimeout(10_000, () => s.destroy(new Error('no close within 10s')));
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('error', reject);
      s.on('close', () => resolve(Buffer.concat(chunks)));
    });
  }

  it.each([
    ['a Terminate message', Buffer.from([0x58, 0, 0, 0, 4])],
    ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\n\r\n')],
  ])('gets no answer to %s in place of a startup packet, as PostgreSQL gives none', async (_what, bytes) => {
    expect((await answerTo(server.port, bytes)).length).toBe(0);
    expect((await answerTo(gw.port, bytes)).toString('latin1')).toBe('');
  });
});
