/**
 * What every PostgreSQL session gets without any rule (issue 11, items 2-4): the gateway's backend
 * credential never leaves, sessions of different people sharing one backend role cannot read or
 * stop each other, and startup parameters cannot change the session unseen. Real psql and pg
 * against a real PostgreSQL 15; one connection's backend role is a superuser, so that each refused
 * read would really answer if it got through.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { psql } from './support/psql.js';
import { connectBackend } from '../src/protocols/postgres/backend.js';
import { build } from '../src/protocols/postgres/codec.js';
import { errorOf, wrap } from './support/raw-client.js';

let server: PgServer;
let gw: TestGateway;

beforeAll(async () => {
  server = await startPostgres();
  await server.query(`alter role ${server.users.trust.user} superuser`);
  await server.query(`create role orders_owner; grant orders_owner to ${server.users.scram.user}`);
  await server.query(`alter role ${server.users.scram.user} createrole; create role app_reader nologin`);
  gw = await startTestGateway(server, {
    extraConnections: [
      `{ name: app-eph, host: 127.0.0.1, port: ${server.port}, database: app, user: ${server.users.scram.user}, password: env:PG_SCRAM, ` +
        'tls: { mode: disable }, credentials: { mode: ephemeral, roles: [app_reader] } }',
    ],
  });
});

afterAll(async () => {
  await gw?.close();
  await server?.cleanup();
});

type PgError = Error & { code?: string; detail?: string };

async function connect(user: string, connection = 'app', extra: pg.ClientConfig = {}): Promise<pg.Client> {
  const c = new pg.Client({
    host: gw.host,
    port: gw.port,
    user,
    database: connection,
    password: await gw.token({ user, connection }),
    ...extra,
  });
  await c.connect();
  return c;
}

async function failure(c: pg.Client, sql: string): Promise<PgError | undefined> {
  return c.query(sql).then(
    () => undefined,
    (e: PgError) => e,
  );
}

describe("the gateway's backend credential", () => {
  it.each([
    'select rolname, rolpassword from pg_authid',
    'select passwd from pg_catalog.pg_shadow',
    'select umoptions from pg_user_mapping',
    'select * from pg_user_mappings',
    'select * from information_schema.user_mapping_options',
    'select * from pg_hba_file_rules',
    "select query_to_xml('select rolpassword from pg_authid', true, true, '')",
    'select * from "pg_authid"',
    "select query_to_xml('select rolpassword from pg_' || 'authid', true, true, '')",
    "select * from ts_stat(concat('select rolpassword::tsvector from pg_', 'authid'))",
    "select table_to_xml(concat('pg_', 'authid')::regclass, true, true, '')",
    "select database_to_xml(true, true, '')",
    'select * from U&"pg_\\0061uthid"',
    "select pg_read_file('/etc/hostname')",
    "select pg_read_binary_file('pg_hba.conf')",
    "copy (select 1) to program 'cat > /dev/null'",
    "copy (select 1) to '/tmp/jitgate-copy-test'",
  ])('%s is refused even on a superuser backend', async (sql) => {
    const c = await connect('alice', 'app-trust');
    try {
      const err = await failure(c, sql);
      expect(err?.code).toBe('42501');
      expect(err?.message).toMatch(/^jitgate: /);
      expect(err?.detail).toMatch(/^reason: (credential_catalog|server_files|unreadable_sql_text)$/);
      // the session goes on
      expect((await c.query('select 1 as one')).rows[0].one).toBe(1);
    } finally {
      await c.end();
    }
  });
});

describe("other people's sessions on a shared backend role", () => {
  it("alice can neither read bob's statement in pg_stat_activity nor end or cancel his backend", async () => {
    const bob = await connect('bob');
    const alice = await connect('alice');
    try {
      const bobPid = (await bob.query('select pg_backend_pid() as pid')).rows[0].pid as number;
      const alicePid = (await alice.query('select pg_backend_pid() as pid')).rows[0].pid as number;
      const running = bob.query("select 'bob-secret-text', pg_sleep(30)").catch((e: PgError) => e);
      await expect
        .poll(
          async () =>
            (
              await server.query(
                "select count(*)::int n from pg_stat_activity where query like '%bob-secret-text%' and state = 'active' and pid <> pg_backend_pid()",
              )
            ).rows[0]!.n,
          { timeout: 10_000 },
        )
        .toBe(1);
      for (const sql of [
        'select query from pg_stat_activity',
        'select * from pg_catalog.pg_stat_activity where pid <> pg_backend_pid()',
        'select pg_stat_get_backend_activity(s) from pg_stat_get_backend_idset() s',
        'select * from pg_stat_get_activity(null)',
        'select * from pg_locks',
        `select pg_terminate_backend(${bobPid})`,
        `select pg_cancel_backend(${bobPid})`,
        'select pg_terminate_backend(pid) from pg_stat_activity',
        `select query_to_xml('select pg_cancel_backend(${bobPid})', true, true, '')`,
        "do $$ begin raise notice '%', (select string_agg(query, ',') from pg_stat_activity); end $$",
        `do $$ begin perform pg_terminate_backend(${bobPid}); end $$`,
        "do $$ declare q text; begin execute 'select string_agg(query, '','') from pg_' || 'stat_activity' into q; raise notice '%', q; end $$",
        'create function spy() returns setof text language sql as $q$ select query from pg_stat_activity $q$',
      ]) {
        const err = await failure(alice, sql);
        expect(err?.code, sql).toBe('42501');
        expect(err?.detail, sql).toMatch(/^reason: (other_sessions|unreadable_code)$/);
      }
      // Alice may still signal her own backend.
      expect(
        (await alice.query(`select pg_terminate_backend(${alicePid}, 0) is not null as ok from (select 1) x where false`)).rowCount,
      ).toBe(0);
      await server.query(`select pg_cancel_backend(${bobPid})`);
      const outcome = await running;
      expect((outcome as PgError).code).toBe('57014'); // cancelled by the test, not by alice
    } finally {
      await Promise.all([alice.end(), bob.end()]);
    }
  });
});

describe('the function-call protocol on a shared role', () => {
  /** A FunctionCall message with text arguments. */
  function functionCall(oid: number, args: string[]): Buffer {
    const parts: Buffer[] = [int(oid, 4), int(0, 2), int(args.length, 2)];
    for (const a of args) parts.push(int(Buffer.byteLength(a), 4), Buffer.from(a));
    parts.push(int(0, 2));
    const body = Buffer.concat(parts);
    return Buffer.concat([Buffer.from('F'), int(body.length + 4, 4), body]);
  }

  function int(n: number, size: 2 | 4): Buffer {
    const b = Buffer.alloc(size);
    if (size === 2) b.writeInt16BE(n);
    else b.writeInt32BE(n);
    return b;
  }

  it("cannot call pg_terminate_backend on another session's backend by OID", async () => {
    const bob = await connect('bob');
    try {
      const bobPid = (await bob.query('select pg_backend_pid() as pid')).rows[0].pid as number;
      const session = await connectBackend(
        {
          connection: 'app',
          protocol: 'postgres',
          host: gw.host,
          port: gw.port,
          database: 'app',
          user: 'alice',
          password: await gw.token(),
          tls: { mode: 'disable' },
          connectTimeoutMs: 10_000,
        },
        new Map(),
      );
      const s = wrap(session.socket, session.leftover);
      s.socket.write(functionCall(2096 /* pg_terminate_backend(int4, int8) */, [String(bobPid), '0']));
      const reply = await s.until('Z');
      const err = reply.find((m) => m.type === 'E');
      expect(err && errorOf(err).code).toBe('42501');
      s.socket.end(build.terminate());
      expect((await bob.query('select 1 as one')).rows[0].one).toBe(1);
    } finally {
      await bob.end();
    }
  });

  it("still serves libpq's large-object calls (psql \\lo_import)", async () => {
    const r = await psql(gw.dsn({}), await gw.token(), ['-At', '-c', '\\lo_import /etc/hostname']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^lo_import \d+/);
  });
});

describe('sessions with a backend role of their own (ephemeral credentials)', () => {
  it("may read pg_stat_activity: PostgreSQL itself hides the other sessions' statements", async () => {
    const bob = await connect('bob', 'app-eph');
    const alice = await connect('alice', 'app-eph');
    try {
      const running = bob.query("select 'bob-ephemeral-secret', pg_sleep(30)").catch((e: PgError) => e);
      await expect
        .poll(
          async () =>
            (
              await server.query(
                "select count(*)::int n from pg_stat_activity where query like '%bob-ephemeral-secret%' and state = 'active' and pid <> pg_backend_pid()",
              )
            ).rows[0]!.n,
          { timeout: 10_000 },
        )
        .toBe(1);
      const seen = await alice.query('select query from pg_stat_activity');
      expect(seen.rows.map((r) => r.query as string | null).some((q) => q?.includes('bob-ephemeral-secret'))).toBe(false);
      expect(seen.rows.some((r) => (r.query as string | null)?.includes('select query from pg_stat_activity'))).toBe(true);
      await server.query(
        "select pg_cancel_backend(pid) from pg_stat_activity where query like '%bob-ephemeral-secret%' and pid <> pg_backend_pid()",
      );
      expect(((await running) as PgError).code).toBe('57014');
    } finally {
      await Promise.all([alice.end(), bob.end()]);
    }
  });
});

describe('startup parameters', () => {
  it('decides role, search_path and other settings from the startup packet as SETs, and passes them as PostgreSQL would apply them', async () => {
    // No rule on "app" denies them, so they take effect exactly as they do directly (where drivers
    // such as node-postgres send statement_timeout this way); test/postgres-guardrail-bypass.test.ts
    // shows a guardrail refusing one at login.
    const session = await connectBackend(
      {
        connection: 'app',
        protocol: 'postgres',
        host: gw.host,
        port: gw.port,
        database: 'app',
        user: 'alice',
        password: await gw.token(),
        tls: { mode: 'disable' },
        connectTimeoutMs: 10_000,
      },
      new Map(
        Object.entries({
          role: 'orders_owner',
          search_path: 'evil',
          statement_timeout: '1min',
          default_transaction_read_only: 'on',
          application_name: 'kept',
        }),
      ),
    );
    const notices = session.startupFrames.filter((f) => f[0] === 0x4e);
    expect(notices).toEqual([]);
    const s = wrap(session.socket, session.leftover);
    s.socket.write(
      build.query(
        "select current_user, current_setting('search_path'), current_setting('statement_timeout'), current_setting('default_transaction_read_only'), current_setting('application_name')",
      ),
    );
    const reply = await s.until('Z');
    const row = reply.find((m) => m.type === 'D')!;
    expect(dataRow(row.body)).toEqual(['orders_owner', 'evil', '1min', 'on', 'kept']);
    s.socket.end(build.terminate());
  });

  it('passes settings from options (PGOPTIONS) as if SET, parsed as PostgreSQL parses them', async () => {
    // The same options straight to PostgreSQL give the same three values.
    const r = await psql(
      gw.dsn({ extra: `options='-c search_path="a\\\\ b",public --statement-timeout=5s -cwork_mem=8MB'` }),
      await gw.token(),
      ['-At', '-c', "select current_setting('search_path'), current_setting('statement_timeout'), current_setting('work_mem')"],
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('"a b",public|5s|8MB');
  });

  it('refuses options it cannot read instead of dropping them', async () => {
    const err = await new pg.Client({
      host: gw.host,
      port: gw.port,
      user: 'alice',
      database: 'app',
      password: await gw.token(),
      options: '-B 100',
    })
      .connect()
      .then(
        () => undefined,
        (e: PgError) => e,
      );
    expect(err?.code).toBe('08P01');
    expect(err?.message).toContain('only -c name=value and --name=value are accepted in options');
  });
});

/** The text values of a DataRow body. */
function dataRow(body: Buffer): Array<string | null> {
  const n = body.readInt16BE(0);
  const out: Array<string | null> = [];
  let at = 2;
  for (let i = 0; i < n; i++) {
    const len = body.readInt32BE(at);
    at += 4;
    out.push(len < 0 ? null : body.toString('utf8', at, at + len));
    if (len > 0) at += len;
  }
  return out;
}

describe('string literals are read as the server reads them', () => {
  // With standard_conforming_strings off, 'a\'' ends after a\' and what follows is code; the parser
  // (which reads it on) would see one harmless string and let pg_authid be read.
  const smuggled = "select 'a\\'' || (select rolpassword from pg_authid limit 1) || ''";

  it.each([
    'set standard_conforming_strings = off',
    "select set_config('standard_conforming_strings', 'off', false)",
    'alter role current_user set standard_conforming_strings = off',
    "do $$ begin perform set_config('standard_conforming_strings', 'off', false); end $$",
    // In these encodings a character's second byte can be a backslash the UTF-8 reading never sees.
    "set client_encoding to 'SJIS'",
    "set names 'big5'",
    "select set_config('client_encoding', 'GBK', false)",
    "select set_config('client_encoding', $$gb$$ || '18030', false)",
  ])('refuses %s', async (sql) => {
    const c = await connect('alice', 'app-trust');
    try {
      const err = await failure(c, sql);
      expect(err?.code).toBe('42501');
      expect(err?.detail).toBe('reason: parser_setting');
      expect((await c.query('show standard_conforming_strings')).rows[0].standard_conforming_strings).toBe('on');
      expect((await c.query('show client_encoding')).rows[0].client_encoding).toBe('UTF8');
    } finally {
      await c.end();
    }
  });

  it('refuses it in options at login', async () => {
    const r = await psql(
      gw.dsn({ connection: 'app-trust', extra: "options='-c standard_conforming_strings=off'" }),
      await gw.token({ connection: 'app-trust' }),
      ['-At', '-c', smuggled],
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('standard_conforming_strings may not be changed through jitgate');
    expect(r.stdout).not.toMatch(/SCRAM|md5/);
  });

  it('lets single-byte and UTF-8 client encodings be set, and refuses a login asking for SJIS', async () => {
    const c = await connect('alice');
    try {
      await c.query("set client_encoding to 'LATIN1'");
      expect((await c.query('show client_encoding')).rows[0].client_encoding).toBe('LATIN1');
      await c.query("set client_encoding to 'UTF8'");
    } finally {
      await c.end();
    }
    const r = await psql(gw.dsn({ extra: 'client_encoding=SJIS' }), await gw.token(), ['-At', '-c', 'select 1']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('client encoding jitgate cannot read');
  });

  it('refuses a session whose backend starts with it off', async () => {
    await server.query(`alter role ${server.users.trust.user} set standard_conforming_strings = off`);
    try {
      const r = await psql(gw.dsn({ connection: 'app-trust' }), await gw.token({ connection: 'app-trust' }), ['-At', '-c', smuggled]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('standard_conforming_strings off');
      expect(r.stdout).not.toMatch(/SCRAM|md5/);
    } finally {
      await server.query(`alter role ${server.users.trust.user} reset standard_conforming_strings`);
    }
  });

  it('ends a session whose backend turns it off mid-session by a way no parse sees', async () => {
    await server.query(
      "create or replace function public.literal_switch() returns text language sql as $$ select set_config('standard_conforming_strings', 'off', false) $$",
    );
    const c = await connect('alice', 'app-trust');
    c.on('error', () => undefined);
    try {
      const err = await failure(c, 'select public.literal_switch()');
      expect(err?.message).toContain('standard_conforming_strings was turned off');
      expect(await failure(c, smuggled)).toBeDefined();
    } finally {
      await c.end().catch(() => undefined);
    }
  });
});
