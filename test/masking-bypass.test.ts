/**
 * The bypass suite: every way found to get a masked value out through the gateway stays here as a
 * test. Each attempt runs against a real PostgreSQL through the gateway; whatever comes back (rows,
 * notices, errors, COPY output) must not contain a clear masked value, and nothing may be left
 * behind in the database where it could be read unmasked later. New attempts are appended; none is
 * ever removed.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { psql } from './support/psql.js';
import { client, cstr, int16, int32, MASKING_SETUP, MASKING_YAML, msg } from './support/masking.js';
import { rawLogin } from './support/raw-client.js';

/** Clear values of masked columns: none may ever reach the client. */
const SECRETS = ['alice@example.com', 'bob@example.com', '123-45-6789', '987-65-4321', '4111 1111 1111 1111', '5500 0000 0000 0004', 'hush'];
/** The same in the hex, base64 and escaped spellings an encoding function would produce. */
const ENCODED = SECRETS.flatMap((s) => [Buffer.from(s).toString('hex'), Buffer.from(s).toString('base64'), s.replace('@', '\\100')]);

let server: PgServer;
let gw: TestGateway;
let c: pg.Client;

beforeAll(async () => {
  server = await startPostgres();
  await server.query(MASKING_SETUP);
  await server.query('analyze users');
  gw = await startTestGateway(server, { extraYaml: MASKING_YAML });
  c = await client(gw);
});

afterAll(async () => {
  await c?.end().catch(() => undefined);
  await gw?.close();
  await server?.cleanup();
});

/** Everything the client saw for one attempt, as text: rows, error fields, notices. */
async function attempt(sql: string): Promise<{ seen: string; error?: { code?: string; message: string; detail?: string } }> {
  const notices: string[] = [];
  const onNotice = (n: { message?: string; detail?: string }) => notices.push(`${n.message ?? ''} ${n.detail ?? ''}`);
  c.on('notice', onNotice);
  try {
    const r = await c.query(sql);
    const results = Array.isArray(r) ? r : [r];
    return { seen: JSON.stringify(results.map((x) => x.rows)) + notices.join('\n') };
  } catch (e) {
    const err = e as { code?: string; message: string; detail?: string; where?: string };
    // Leave no aborted transaction behind for the next attempt.
    await c.query('rollback').catch(() => undefined);
    return { seen: `${err.message} ${err.detail ?? ''} ${err.where ?? ''}` + notices.join('\n'), error: { code: err.code, message: err.message, detail: err.detail } };
  } finally {
    c.off('notice', onNotice);
  }
}

function expectNoSecret(text: string): void {
  for (const s of [...SECRETS, ...ENCODED]) expect(text, `leaked ${s}`).not.toContain(s);
}

/** Tables whose contents must never hold a copied clear value after any attempt. */
async function expectNothingCopied(): Promise<void> {
  const r = await server.query(`
    select string_agg(t::text, ' ') as dump from (
      select n::text as t from notes n
      union all select c.relname::text from pg_class c where c.relname in ('stolen', 'stolen2', 'v_leak', 'tv', 'mv')
    ) x`);
  expectNoSecret(String(r.rows[0]?.dump ?? ''));
  expect(String(r.rows[0]?.dump ?? '')).not.toMatch(/stolen|v_leak|\btv\b|\bmv\b/);
}

/** Attempts answered with masked values (the statement runs). */
const MASKED: string[] = [
  'select email from users',
  'select * from users',
  'table users',
  'select * from only users',
  'select "email" from "public"."users"',
  'SELECT EMAIL FROM USERS',
  'select public.users.email from public.users',
  'select u from users u',
  'select u.* from users u',
  'select (u).email from users u',
  'select row_to_json(u) from users u',
  'select row_to_json(u)::text from users u',
  'select to_jsonb(u)::text from users u',
  'select json_agg(u)::text from users u',
  'select to_json(array_agg(u))::text from users u',
  'select array_agg(email)::text from users',
  "select string_agg(email, ',') from users",
  "select email || '' from users",
  "select concat(email, '') from users",
  "select format('%s', email) from users",
  'select substr(email, 1, 100) from users',
  'select left(email, 3), right(ssn, 11) from users',
  'select upper(email), lower(email), reverse(reverse(email)) from users',
  "select encode(convert_to(email, 'UTF8'), 'hex') from users",
  "select encode(convert_to(email, 'UTF8'), 'base64') from users",
  'select email::bytea::text from users',
  'select email::bytea from users',
  'select email::name from users',
  'select email::char(40) from users',
  'select email collate "C" from users',
  "select coalesce(email, '') from users",
  "select case when true then email end from users",
  'select nullif(email, null) from users',
  'select greatest(email, ssn) from users',
  'select array[email] from users',
  'select (array[email])[1] from users',
  "select jsonb_build_object('e', email)::text from users",
  "select json_build_array(email, card)::text from users",
  'select xmlelement(name e, email)::text from users',
  'select row(email, ssn)::text from users',
  'select (select email from users limit 1)',
  'select (select string_agg(email, \',\') from users)',
  'select x from (select email as x from users) s',
  'select * from (select * from users) s',
  'with c as (select email from users) select * from c',
  'with c(a) as (select email from users) select a from c',
  'with recursive r(v, n) as (select email, 1 from users union all select v || \'\', n + 1 from r where n < 2) select * from r',
  "select email from users union select 'x'",
  "select 'x' union all select email from users",
  'select email from users intersect select email from users',
  'select ssn from users except select null',
  'select * from contacts',
  'select contact from contacts',
  'select e from users, lateral (select email as e) l',
  'select e from users, lateral unnest(array[email]) e',
  'select * from users, unnest(array[email]) e',
  'select * from json_populate_record(null::users, (select row_to_json(u) from users u limit 1))',
  'select (json_populate_record(null::users, row_to_json(u))).email from users u',
  'select * from jsonb_each_text((select to_jsonb(u) from users u limit 1))',
  'values ((select email from users limit 1))',
  'select * from (values (1)) v(x), users',
  'select * from users natural join (select 1 as id) x',
  'select * from users join notes using (id)',
  'select distinct on (email) email from users',
  'select email from users order by email limit 1 offset 0',
  'select email from users for update',
  'select pg_catalog.textin(pg_catalog.textout(email)) from users',
  'select lower(email) from users tablesample system (100)',
  'select email, lower(email) from accounts_low',
  'select * from accounts_low',
  'select email, ssn, upper(email) from users_archive',
  'select email from accounts',
  'select u.email from users as u tablesample bernoulli (100)',
  'select lag(email) over (order by id), first_value(ssn) over () from users',
  'select email::text::varchar::text from users',
  'select md5(email) from users',
  'select most_common_vals::text, histogram_bounds::text from pg_stats where tablename = \'users\'',
  'select * from pg_stats where tablename = \'users\'',
  'select 1; select email from users',
  'prepare p1 as select email, upper(ssn) from users; execute p1; deallocate p1',
  'begin; declare c1 cursor for select email, card from users; fetch all from c1; commit',
  'begin; declare c2 binary cursor for select email from users; fetch all from c2; commit',
  'begin; declare c3 cursor with hold for select lower(email) from users; commit; fetch all from c3; close c3',
  'begin; update users set id = id where id = 1 returning email, ssn; rollback',
  'begin; delete from users where id = 2 returning *; rollback',
  "begin; insert into users (id, email) values (50, 'x@y.z') returning (select email from users where id = 1); rollback",
  'explain (analyze, verbose, costs off) select email from users',
  "begin; declare c4 cursor for select * from pg_stats where tablename = 'users'; fetch all from c4; commit",
  'begin; declare c5 cursor for select * from users, unnest(array[email]) x; fetch all from c5; commit',
  "select email from users where email like 'a%'",
];

/** Attempts that must be refused, and by which reason code. */
const REFUSED: Array<[string, string]> = [
  ['insert into notes select id, email from users', 'masking_copy'],
  ['insert into notes values (1, (select email from users limit 1))', 'masking_copy'],
  ["insert into notes select id, format('%s', u) from users u", 'masking_copy'],
  ['update notes set body = (select email from users limit 1)', 'masking_copy'],
  ['update notes set body = u.email from users u where u.id = notes.id', 'masking_copy'],
  ['update users set bio = email', 'masking_copy'],
  ["insert into users (id, email) values (1, 'z') on conflict (id) do update set bio = users.email", 'masking_copy'],
  ['merge into notes n using users u on n.id = u.id when matched then update set body = u.email', 'masking_copy'],
  ['with x as (insert into notes select id, email from users returning 1) select count(*) from x', 'masking_copy'],
  ['create table stolen as select * from users', 'masking_copy'],
  ['create temp table stolen as select email from users', 'masking_copy'],
  ['select * into stolen2 from users', 'masking_copy'],
  ['create view v_leak as select email from users', 'masking_copy'],
  ['create temp view tv as select email from users', 'masking_copy'],
  ['create materialized view mv as select email from users', 'masking_copy'],
  ["copy (select email from users) to '/tmp/jitgate-leak.txt'", 'masking_copy'],
  ["copy users to program 'cat > /tmp/jitgate-leak.txt'", 'masking_copy'],
  ["select set_config('leak.v', email, false) from users", 'masking_copy'],
  ["select pg_notify('leak', email) from users", 'masking_copy'],
  ["select lo_from_bytea(0, convert_to(email, 'UTF8')) from users", 'masking_copy'],
  ['alter table users rename column email to contact_address', 'masking_copy'],
  ['alter table users rename to people', 'masking_copy'],
  ['alter table users set schema other', 'masking_copy'],
  ['alter schema public rename to elsewhere', 'masking_copy'],
  ['alter table users_archive no inherit users', 'masking_copy'],
  ['alter table accounts detach partition accounts_low', 'masking_copy'],
  ['create publication leak for table users', 'masking_unprovable'],
  ['alter table users alter column email type bytea using convert_to(email, \'UTF8\')', 'masking_copy'],
  ['explain analyze insert into notes select id, email from users', 'masking_copy'],
  ["do $$ begin raise notice '%', (select email from users limit 1); end $$", 'masking_unprovable'],
  ["create function leak() returns setof text language sql as 'select email from users'", 'masking_unprovable'],
  ['create rule r as on insert to notes do also select email from users', 'masking_unprovable'],
  ["select query_to_xml('select email from users', true, false, '')::text", 'masking_unprovable'],
  ["select table_to_xml('users', true, false, '')::text", 'masking_unprovable'],
  ["select ts_stat('select to_tsvector(email) from users')", 'masking_unprovable'],
  ['call some_procedure()', 'masking_unprovable'],
  ["select data from pg_logical_slot_get_changes('s', null, null)", 'masking_unprovable'],
  ["select pg_read_binary_file('base/1/1259')", 'masking_unprovable'],
  ["copy notes from program 'psql -c \"select email from users\"'", 'masking_unprovable'],
  ["create foreign table ft (email text) server loopback options (table_name 'users')", 'masking_unprovable'],
  ['selec email from users', 'masking_unprovable'],
];

describe('the suite itself', () => {
  it('sees a leak when there is one: the same table on a connection without masking rules', async () => {
    const other = await client(gw, gw.token({ connection: 'app-trust' }), 'alice', 'app-trust');
    try {
      const r = await other.query('select email from users where id = 1');
      expect(() => expectNoSecret(JSON.stringify(r.rows))).toThrow(/leaked alice@example.com/);
    } finally {
      await other.end();
    }
  });
});

describe('bypass attempts answered with masked values', () => {
  it.each(MASKED)('%s', async (sql) => {
    const r = await attempt(sql);
    expectNoSecret(r.seen);
  });
});

describe('bypass attempts refused', () => {
  it.each(REFUSED)('%s', async (sql, reason) => {
    const r = await attempt(sql);
    expect(r.error?.code).toBe('42501');
    expect(r.error?.detail).toBe(`reason: ${reason}`);
    expectNoSecret(r.seen);
    await expectNothingCopied();
  });
});

describe('bypass attempts through error and notice texts', () => {
  const ERRORS = [
    'select email::int from users',
    'select ssn::date from users',
    'select card::numeric from users',
    "select 1 / 0 from users where email::int > 0",
    "insert into users (id, email) values (99, 'alice@example.com')",
    "select jsonb_path_query(to_jsonb(email), 'strict $.x') from users",
    'select email::uuid from users',
    "select to_number(email, '999') from users",
    "select (email || 'x')::inet from users",
  ];
  it.each(ERRORS)('%s', async (sql) => {
    const r = await attempt(sql);
    expect(r.error).toBeDefined();
    expectNoSecret(r.seen);
  });
});

describe('bypass attempts through COPY and psql', () => {
  const COPIES = [
    'copy users to stdout',
    'copy users (email, ssn) to stdout',
    "copy users to stdout with (format csv, header, force_quote *)",
    "copy users to stdout with (format csv, quote '|', escape '\\\\', delimiter ';')",
    "copy (select email, row_to_json(u) from users u) to stdout with csv",
    'copy users to stdout with (format binary)',
    '\\copy users to stdout',
    "\\copy (select lower(email) from users) to stdout csv",
    'select email from users \\gset\n\\echo :email',
    'select email from users \\gx',
  ];
  it.each(COPIES)('%s', async (input) => {
    const r = await psql(gw.dsn({}), gw.token(), ['-v', 'ON_ERROR_STOP=0', '-At'], { input: input + (input.includes('\\') && !input.startsWith('copy') ? '\n' : ';\n') });
    expectNoSecret(r.stdout + r.stderr);
    expect(r.stdout.length + r.stderr.length).toBeGreaterThan(0);
  });
});

describe('bypass attempts by defining a name again', () => {
  it('SQL PREPARE and DECLARE of an existing name do not swap the plan of what runs', async () => {
    await attempt('prepare dup as select lower(email) from users');
    expect((await attempt("prepare dup as select 'x'::text")).error).toBeDefined();
    expectNoSecret((await attempt('execute dup')).seen);
    await attempt('begin');
    await attempt('declare dupc cursor for select lower(email) from users');
    expect((await attempt("declare dupc cursor for select 'x'::text")).error).toBeDefined();
    await attempt('begin');
    await attempt('declare dupc cursor for select lower(email) from users');
    await attempt("declare dupc2 cursor for select 'x'::text");
    expectNoSecret((await attempt('fetch all from dupc')).seen);
    await attempt('commit');
  });

  it('extended protocol: a duplicate or a failed Parse of a name does not swap its plan', async () => {
    const raw = await rawLogin({ host: gw.host, port: gw.port, user: 'alice', connection: 'app', token: gw.token() });
    try {
      const parse = (name: string, sql: string) => msg('P', cstr(name), cstr(sql), int16(0));
      const run = async (name: string) => {
        raw.socket.write(Buffer.concat([msg('B', cstr(''), cstr(name), int16(0), int16(0), int16(0)), msg('E', cstr(''), int32(0)), msg('S')]));
        return (await raw.until('Z')).map((m) => m.body.toString('latin1')).join('|');
      };
      // Duplicate: the backend keeps the first (lower(email)), refusing the clean second.
      raw.socket.write(Buffer.concat([parse('d1', 'select lower(email) from users'), msg('S')]));
      await raw.until('Z');
      raw.socket.write(Buffer.concat([parse('d1', "select 'x'::text"), msg('S')]));
      await raw.until('Z');
      const first = await run('d1');
      expect(first).toContain('[redacted]');
      expectNoSecret(first);
      // Failed first: a clean statement the backend rejects, then the real one under the same name.
      raw.socket.write(Buffer.concat([parse('d2', "select 1 + 'x'::int"), msg('S')]));
      await raw.until('Z');
      raw.socket.write(Buffer.concat([parse('d2', 'select lower(email) from users'), msg('S')]));
      await raw.until('Z');
      const second = await run('d2');
      expect(second).toContain('[redacted]');
      expectNoSecret(second);
    } finally {
      raw.socket.destroy();
    }
  });
});

/**
 * Errors and notices of statements that read a masked column anywhere (WHERE, a function argument,
 * a cast) but select nothing masked: the server quotes the value it choked on. Each case names the
 * clear text (or the part of it) the error would quote.
 */
describe('bypass attempts through errors of values only read', () => {
  // `secret` holds plain words ('top', 'hush') that no content detector recognises: what a
  // detector happens to catch proves nothing here.
  const CASES: Array<[string, string[]]> = [
    ['select id from users where secret::regclass is not null', ['top', 'hush']],
    ['select id from users where secret::regnamespace is not null', ['top', 'hush']],
    ['select id from users where secret::regrole is not null', ['top', 'hush']],
    ['select id from users where secret::regproc is not null', ['top', 'hush']],
    ['select id from users where secret::regprocedure is not null', ['top', 'hush']],
    ['select id from users where secret::regtype is not null', ['top', 'hush']],
    ['select id from users where secret::regcollation is not null', ['top', 'hush']],
    ['select id from users where secret::regconfig is not null', ['top', 'hush']],
    ['select id from users where secret::regdictionary is not null', ['top', 'hush']],
    ['select id from users where secret::regoper is null', ['top', 'hush']],
    ['select id from users where email::regclass is not null', ['alice@example.com']],
    ['select id from users where current_setting(secret) is not null', ['top', 'hush']],
    ["select id from users where has_table_privilege(secret, 'select')", ['top', 'hush']],
    ["select id from users where has_schema_privilege(secret, 'usage')", ['top', 'hush']],
    ["select id from users where has_function_privilege(secret, 'execute')", ['top', 'hush']],
    ["select id from users where has_column_privilege('users', secret, 'select')", ['top', 'hush']],
    ['select id from users where pg_total_relation_size(secret::regclass) > 0', ['top', 'hush']],
    ['select id from users where pg_relation_size(secret::regclass) > 0', ['top', 'hush']],
    ['select id from users where nextval(secret) > 0', ['top', 'hush']],
    ["select chr(substr(replace(card, ' ', ''), 1, 9)::int) is null from users", ['411111111']],
    ["select id from users where get_byte('\\x00'::bytea, substr(replace(card, ' ', ''), 1, 9)::int) > 0", ['411111111']],
    ["select id from users where set_byte('\\x00'::bytea, substr(replace(card, ' ', ''), 1, 9)::int, 1) is null", ['411111111']],
    ["select id from users where make_date(substr(replace(card, ' ', ''), 1, 9)::int, 1, 1) is null", ['411111111']],
    ["select id from users where replace(card, ' ', '')::int > 0", ['4111111111111111']],
    ['select id from users where secret::int > 0', ['top', 'hush']],
    ["select id from users where ('x' || ssn)::int > 0", ['123-45-6789']],
    ["select id from users where to_date(secret, 'YYYY') is null", ['top', 'hush']],
    ["select id from users where to_number(secret, 'FM9') is null", ['top', 'hush']],
    ['select id from users where secret::jsonb is null', ['top', 'hush']],
    ["select id from users where jsonb_path_query_first('{}', secret::jsonpath) is null", ['top', 'hush']],
    ["select id from users where xmlparse(document secret || '<') is null", ['top', 'hush']],
    ["select id from users where to_tsquery(secret || ' & & ') is null", ['top', 'hush']],
    ['select id from users where secret::uuid is null', ['top', 'hush']],
    ['select id from users where secret::interval is null', ['top', 'hush']],
    ['select id from users where secret::boolean', ['top', 'hush']],
    ["select id from users where 1 / (length(secret) - length(secret)) > 0 and secret::int > 0", ['top', 'hush']],
    ["select id from users where secret::timestamptz is null", ['top', 'hush']],
    ["select id from users where to_char(now(), secret)::int > 0", ['top', 'hush']],
    ["begin; update users set bio = 'trigger-test' where id = 1; rollback", ['alice@example.com']],
  ];
  it.each(CASES)('%s', async (sql, clear) => {
    const r = await attempt(sql);
    expectNoSecret(r.seen);
    for (const s of clear) expect(r.seen, `leaked ${s}`).not.toMatch(new RegExp(`\\b${s}\\b`));
  });

  it('the extended protocol (a bound parameter) hides the same', async () => {
    const e = await c.query('select id from users where secret::regclass is not null and id = $1', [1]).catch((err: Error) => err);
    expect(e).toBeInstanceOf(Error);
    expect((e as { code?: string }).code).toBe('42P01');
    expect(`${(e as Error).message} ${(e as { detail?: string }).detail ?? ''}`).not.toMatch(/\btop\b/);
  });

  it('keeps the SQLSTATE, and messages that quote only what the client wrote', async () => {
    const hidden = await attempt('select id from users where secret::regclass is not null');
    expect(hidden.error?.code).toBe('42P01');
    expect(hidden.error?.message).toMatch(/jitgate: message hidden/);
    const typo = await attempt('select id from users where emial is not null');
    expect(typo.error?.code).toBe('42703');
    expect(typo.error?.message).toBe('column "emial" does not exist');
    const zero = await attempt('select 1 / 0 from users where email is not null');
    expect(zero.error?.message).toBe('division by zero');
  });
});
