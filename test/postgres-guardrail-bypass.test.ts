/**
 * Guardrail bypass suite (issue 12, items 5-8): the red team's evasions through psql and the pg
 * driver against a real PostgreSQL, each kept as a permanent case. Every case ran on the backend
 * before the fix; here each must be refused with 42501 naming the rule, and the backend must show
 * that nothing happened. One connection's backend role is a superuser, as in the red-team setup,
 * so that what the rule denies would really run if it got through.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { psql } from './support/psql.js';
import { BackendRefusal, connectBackend } from '../src/protocols/postgres/backend.js';

let server: PgServer;
let gw: TestGateway;

beforeAll(async () => {
  server = await startPostgres();
  const owner = server.users.scram.user;
  await server.query(`alter role ${server.users.trust.user} superuser`);
  await server.query(`create schema acc authorization ${owner}`);
  await server.query(`create table acc.orders (id int primary key, note text); alter table acc.orders owner to ${owner}`);
  await server.query(
    `create function acc.wipe() returns void language sql as $$ delete from acc.orders $$; alter function acc.wipe() owner to ${owner}`,
  );
  await server.query(
    `create procedure acc.wipe_all() language sql as $$ delete from acc.orders $$; alter procedure acc.wipe_all() owner to ${owner}`,
  );
  await server.query(`create role orders_owner; grant orders_owner to ${owner}`);
  await server.query('grant usage on schema acc to public; grant all on acc.orders to public');
  gw = await startTestGateway(server, {
    extraYaml: `
guardrails:
  - name: red-team
    connections: [app, app-trust]
    deny:
      kinds: [ddl, truncate]
      functions: [pg_read_file, pg_ls_dir, lo_export]
      unboundedWrites: true
      settings: [role, session_authorization]
      copy: [program, file]
  - name: trusted-procs
    connections: [app-md5]
    deny: { kinds: [truncate] }
    allow: { functions: ["acc.wipe*"] }
`,
  });
});

afterAll(async () => {
  await gw?.close();
  await server?.cleanup();
});

/** Five rows again; the table itself is made again if a case got through and dropped it. */
async function resetOrders(): Promise<void> {
  await server.query('create table if not exists acc.orders (id int primary key, note text)');
  await server.query(`alter table acc.orders owner to ${server.users.scram.user}; grant all on acc.orders to public`);
  await server.query("delete from acc.orders; insert into acc.orders select g, 'n' || g from generate_series(1, 5) g");
}

async function orderCount(): Promise<number> {
  return (await server.query('select count(*)::int n from acc.orders')).rows[0]!.n;
}

/** Runs one statement through the gateway with the pg driver; the error it got, if any. */
async function run(sql: string, connection = 'app'): Promise<(Error & { code?: string; detail?: string }) | undefined> {
  const c = new pg.Client({ host: gw.host, port: gw.port, user: 'alice', database: connection, password: await gw.token({ connection }) });
  await c.connect();
  try {
    await c.query(sql);
    return undefined;
  } catch (err) {
    return err as Error & { code?: string };
  } finally {
    await c.end();
  }
}

describe('code the parser cannot see (item 5)', () => {
  it.each([
    // A DO block's code is read: what it runs is checked like any statement.
    ["DO $$ BEGIN EXECUTE 'DROP TABLE acc.orders'; END $$", 'DO runs DDL, which is not allowed (kind_denied)'],
    ["do $$ begin execute 'delete from acc.orders'; end $$", 'DELETE without WHERE on acc.orders (unbounded_write)'],
    // What it builds at run time cannot be read, and is refused.
    [
      "do $$ begin execute 'drop ' || 'table acc.orders'; end $$",
      'runs code jitgate cannot check: DO block that runs SQL text built at run time',
    ],
    [
      "do $$ declare t text := 'acc.orders'; begin execute format('delete from %s', t); end $$",
      'runs code jitgate cannot check: DO block that runs SQL text built at run time',
    ],
    ['call acc.wipe_all()', 'runs code jitgate cannot check: function acc.wipe_all()'],
    ['select acc.wipe()', 'runs code jitgate cannot check: function acc.wipe()'],
    ["select query_to_xml('delete from acc.orders returning 1', true, true, '')", 'DELETE without WHERE on acc.orders (unbounded_write)'],
  ])('refuses %s and the table keeps its rows', async (sql, what) => {
    await resetOrders();
    const err = await run(sql);
    expect(err?.code).toBe('42501');
    expect(err?.message).toContain('guardrail "red-team"');
    expect(err?.message).toContain(what);
    expect(await orderCount()).toBe(5);
  });

  it('runs a DO block whose code it can read and that does nothing the rule denies', async () => {
    await resetOrders();
    expect(
      await run(
        "do $$ declare n int; begin select count(*) into n from acc.orders; update acc.orders set note = 'seen' where id = n; end $$",
      ),
    ).toBeUndefined();
    expect((await server.query('select note from acc.orders where id = 5')).rows[0]!.note).toBe('seen');
  });

  it('lets a rule allow named functions and procedures', async () => {
    await resetOrders();
    expect(await run('call acc.wipe_all()', 'app-md5')).toBeUndefined();
    expect(await orderCount()).toBe(0);
  });
});

describe('SQL passed as text (item 6)', () => {
  it.each([
    "SELECT query_to_xml('select pg_read_file(''/etc/hostname'') as f', true, true, '')",
    "select * from ts_stat('select to_tsvector(pg_read_file(''/etc/hostname''))')",
    "select query_to_xml_and_xmlschema(E'select pg_read_file(\\'/etc/hostname\\')', true, true, '')",
    "select query_to_xml('select pg_' || 'read_file(''/etc/hostname'')', true, true, '')",
  ])('refuses %s on a superuser backend', async (sql) => {
    const err = await run(sql, 'app-trust');
    expect(err?.code).toBe('42501');
    expect(err?.message).toMatch(
      /guardrail "red-team": SELECT (calls pg_read_file\(\) \(function_denied\)|runs code jitgate cannot check)/,
    );
  });

  it('still runs SQL text that the rule allows', async () => {
    await resetOrders();
    expect(await run("select query_to_xml('select id from acc.orders where id = 1', true, true, '')")).toBeUndefined();
  });
});

describe('writes without a real bound (item 7)', () => {
  it.each([
    'MERGE INTO acc.orders o USING acc.orders s ON o.id = s.id WHEN MATCHED THEN DELETE',
    "merge into acc.orders o using acc.orders s on o.id = s.id when matched then update set note = 'x'",
    'delete from acc.orders where true',
    'delete from acc.orders where 1 = 1',
    "delete from acc.orders where 'a' = 'a'",
    'delete from acc.orders where id = id',
    'delete from acc.orders where not false',
    'delete from acc.orders where note is null or true',
    'delete from acc.orders where id is not null or true',
    "update acc.orders set note = 'x' where true",
    "update acc.orders o set note = 'x' from acc.orders s where o.id = s.id",
    'delete from acc.orders o using acc.orders s where o.id = s.id',
    'with d as (delete from acc.orders where true returning 1) select count(*) from d',
  ])('refuses %s and no row changes', async (sql) => {
    await resetOrders();
    const err = await run(sql);
    expect(err?.code).toBe('42501');
    expect(err?.detail).toBe('reason: unbounded_write');
    expect(await orderCount()).toBe(5);
    expect((await server.query("select count(*)::int n from acc.orders where note = 'x'")).rows[0]!.n).toBe(0);
  });

  it('names the real statement kind of a write reached through PREPARE, and bounded writes run', async () => {
    await resetOrders();
    const r = await psql(gw.dsn({}), await gw.token(), ['-v', 'ON_ERROR_STOP=0', '-At'], {
      input: [
        'prepare p as delete from acc.orders;',
        'prepare q as delete from acc.orders where 1 = 1;',
        'execute p;',
        'delete from acc.orders where id = 1;',
      ].join('\n'),
    });
    expect(r.stderr).toContain('guardrail "red-team": DELETE without WHERE on acc.orders (unbounded_write)');
    expect(r.stderr).toContain('guardrail "red-team": DELETE whose WHERE bounds nothing on acc.orders (unbounded_write)');
    expect(r.stderr).not.toContain('SELECT without WHERE');
    expect(await orderCount()).toBe(4);
  });
});

describe('settings and COPY ends by name (item 8)', () => {
  it('refuses SET ROLE and friends but not SET search_path; COPY to a program but not to STDOUT', async () => {
    const r = await psql(gw.dsn({}), await gw.token(), ['-v', 'ON_ERROR_STOP=0', '-At'], {
      input: [
        'set role orders_owner;',
        'SET LOCAL ROLE orders_owner;',
        'set session authorization orders_owner;',
        "select set_config('role', 'orders_owner', false);",
        'set search_path = acc, public;',
        'show search_path;',
        'select current_user;',
        "copy acc.orders to program 'cat > /dev/null';",
        "copy acc.orders from '/etc/hostname';",
        '\\copy (select 42) to stdout',
      ].join('\n'),
    });
    expect(r.stderr.match(/\(setting_denied\)/g)).toHaveLength(4);
    expect(r.stderr).toContain('guardrail "red-team": SET changes role (setting_denied)');
    expect(r.stderr).toContain('guardrail "red-team": COPY to or from a program is not allowed (copy_denied)');
    expect(r.stderr).toContain('guardrail "red-team": COPY to or from a server file is not allowed (copy_denied)');
    const out = r.stdout.trim().split('\n');
    expect(out).toEqual(['SET', 'acc, public', server.users.scram.user, '42']);
  });

  it('refuses a denied setting passed as a startup parameter of its own, as it refuses SET', async () => {
    const refusal = await connectBackend(
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
      new Map(Object.entries({ statement_timeout: '5s', role: 'orders_owner' })),
    ).then(
      (session) => {
        session.socket.destroy();
        return undefined;
      },
      (e: BackendRefusal) => e,
    );
    // The gateway's FATAL as the client got it.
    expect(refusal?.fields.get('M')).toContain('guardrail "red-team": SET changes role (setting_denied)');
  });

  it('refuses a denied setting passed in options (PGOPTIONS) at login, and passes an allowed one', async () => {
    const refused = await psql(gw.dsn({ extra: "options='-c role=orders_owner'" }), await gw.token(), ['-At', '-c', 'select current_user']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('guardrail "red-team": SET changes role (setting_denied)');
    const allowed = await psql(gw.dsn({ extra: "options='-c search_path=acc'" }), await gw.token(), [
      '-At',
      '-c',
      "select current_setting('search_path')",
    ]);
    expect(allowed.stderr).toBe('');
    expect(allowed.stdout.trim()).toBe('acc');
  });
});
