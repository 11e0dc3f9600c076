import { beforeAll, describe, expect, it } from 'vitest';
import { analysePostgres, loadPostgresParser, type StatementInfo } from './postgres.js';

beforeAll(() => loadPostgresParser());

function one(sql: string): StatementInfo {
  const r = analysePostgres(sql);
  if (!r.ok) throw new Error(r.error);
  expect(r.statements).toHaveLength(1);
  return r.statements[0]!;
}

describe('analysePostgres: kinds', () => {
  it.each([
    ['select 1', 'select', undefined, true],
    ['insert into t values (1)', 'insert', undefined, false],
    ['update t set a = 1 where id = 2', 'update', undefined, false],
    ['delete from t where id = 2', 'delete', undefined, false],
    ['merge into t using s on t.a = s.a when matched then delete', 'merge', undefined, false],
    ['copy t to stdout', 'copy', undefined, true],
    ['copy t from stdin', 'copy', undefined, false],
    ['create table x (a int)', 'ddl', 'create table', false],
    ['drop table x', 'ddl', 'drop table', false],
    ['alter table t add column c int', 'ddl', 'alter table', false],
    ['create index on t (a)', 'ddl', 'create index', false],
    ['create view v as select 1', 'ddl', 'create view', false],
    ['create extension dblink', 'ddl', 'create extension', false],
    ['select 1 into y', 'ddl', 'create table', false],
    ['create table x as select * from t', 'ddl', 'create table', false],
    ['grant select on t to bob', 'grant', undefined, false],
    ['revoke select on t from bob', 'revoke', undefined, false],
    ['set role admin', 'set', undefined, false],
    ['show search_path', 'show', undefined, true],
    ['begin', 'transaction', undefined, true],
    ['call p(1)', 'call', undefined, false],
    ['do $$ begin perform 1; end $$', 'do', undefined, false],
    ['listen ch', 'listen', undefined, true],
    ['notify ch', 'notify', undefined, false],
    ['explain select * from t', 'explain', undefined, true],
    ['explain analyze delete from t where a = 1', 'delete', undefined, false],
    ['truncate a, b', 'truncate', undefined, false],
    ['vacuum t', 'maintenance', undefined, false],
  ] as const)('%s → %s', (sql, kind, ddl, readOnly) => {
    const s = one(sql);
    expect(s.kind).toBe(kind);
    expect(s.ddl).toBe(ddl);
    expect(s.readOnly).toBe(readOnly);
  });
});

describe('analysePostgres: what a statement touches', () => {
  it('finds tables in joins, subqueries, lateral and CTEs, schema-qualified as written', () => {
    const s = one(
      'with recent as (select * from sales.orders) select c.email from public.customers c join recent r on r.cid = c.id where exists (select 1 from audit.log l)',
    );
    expect(s.tablesRead).toEqual(expect.arrayContaining(['sales.orders', 'public.customers', 'audit.log']));
    expect(s.columns).toEqual(expect.arrayContaining(['c.email', 'r.cid', 'c.id']));
    expect(s.tablesWritten).toEqual([]);
  });

  it('sees data-modifying CTEs as writes, and WHERE-less ones as unbounded', () => {
    const s = one('with d as (delete from customers returning *) select * from d');
    expect(s.kind).toBe('select');
    expect(s.tablesWritten).toEqual(['customers']);
    expect(s.unboundedWrites).toEqual(['customers']);
    expect(s.readOnly).toBe(false);
  });

  it('flags UPDATE/DELETE without WHERE and not with one', () => {
    expect(one('update t set a = 1').unboundedWrites).toEqual(['t']);
    expect(one('delete from s.t').unboundedWrites).toEqual(['s.t']);
    expect(one('update t set a = 1 where true').unboundedWrites).toEqual(['t']);
    expect(one('update t set a = 1 where id = 2').unboundedWrites).toEqual([]);
  });

  it('lists functions, schema-qualified when written so', () => {
    const s = one("select pg_catalog.pg_read_file('/etc/passwd'), lower(name), count(*) from t");
    expect(s.functions).toEqual(expect.arrayContaining(['pg_catalog.pg_read_file', 'lower', 'count']));
  });

  it('finds functions and tables inside PREPARE, EXPLAIN and CALL', () => {
    expect(one("prepare p as select lo_export(1, '/tmp/x') from t").functions).toContain('lo_export');
    expect(one('explain select * from secret_table').tablesRead).toContain('secret_table');
    expect(one('call refresh_all()').functions).toContain('refresh_all');
  });

  it('reports whole-row references and stars as columns', () => {
    const s = one('select t.*, row_to_json(t), * from t');
    expect(s.columns).toEqual(expect.arrayContaining(['t.*', 't', '*']));
    expect(s.functions).toContain('row_to_json');
  });

  it("splits multi-statement strings, keeping each statement's text", () => {
    const r = analysePostgres('select 1; delete from t; ');
    expect(r.ok && r.statements.map((s) => [s.kind, s.text])).toEqual([
      ['select', 'select 1'],
      ['delete', 'delete from t'],
    ]);
  });

  it('reports what does not parse instead of guessing', () => {
    const r = analysePostgres('selec * fron t');
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/syntax error/);
  });
});

describe('analysePostgres: bounds of writes', () => {
  it.each([
    'delete from t',
    'delete from t where true',
    'delete from t where 1 = 1',
    "delete from t where 'a' = 'a'",
    'delete from t where id = id',
    'delete from t where t.id = t.id',
    'delete from t where not false',
    'delete from t where x or true',
    'delete from t where id is not null or true',
    'delete from t where $1',
    'delete from t where exists (select 1)',
    'delete from t where (id = id) is true',
    'update t set a = 1 where coalesce(a, 0) = coalesce(a, 0)',
    'update t set a = 1 from s where t.id = s.id',
    'delete from t using t t2 where t.id = t2.id',
    'delete from t using s where s.flag',
    'merge into o using o s on o.id = s.id when matched then delete',
    'merge into o using s on o.id = s.id when matched and s.x > 0 then update set a = 1',
    'with d as (delete from t where true returning 1) select * from d',
    'prepare p as delete from t where 1 = 1',
    "select query_to_xml('delete from t where true returning 1', true, true, '')",
  ])('%s is unbounded', (sql) => {
    const s = one(sql);
    expect(s.unboundedWrites.length, sql).toBeGreaterThan(0);
  });

  it.each([
    'delete from t where id = 3',
    'delete from t where id = $1',
    'delete from t where deleted_at is not null',
    'delete from t where id in (select id from s where s.x = 1)',
    'update t set a = 1 from s where t.id = s.id and s.x = 5',
    'update t set a = 1 where id = 1 or id = 2',
    'delete from t where current of c',
    'merge into o using (values (1)) s(id) on o.id = s.id when matched then delete',
    'merge into o using s on o.id = s.id when matched and o.a > 1 then delete when not matched then insert values (1)',
    'delete from t where active',
  ])('%s is bounded', (sql) => {
    expect(one(sql).unboundedWrites).toEqual([]);
  });

  it('names the real statement kind of an unbounded write, also behind PREPARE', () => {
    expect(one('prepare p as delete from items').unboundedNotes).toEqual(['DELETE without WHERE on items']);
    expect(one('update t set a = 1 where true').unboundedNotes).toEqual(['UPDATE whose WHERE bounds nothing on t']);
  });
});

describe('analysePostgres: code the gateway cannot see', () => {
  it.each([
    ["do $$ declare t text := 'acc.orders'; begin execute 'drop table ' || t; end $$", 'DO block that runs SQL text built at run time'],
    ['do language plperl $$ 1 $$', 'DO block in language plperl'],
    ['do $$ begin perform f(; end $$', 'DO block whose code jitgate cannot read'],
    ['call p(1)', 'function p()'],
    ['select public.f(1)', 'function public.f()'],
    ['select dblink_exec($$x$$, $$drop table t$$)', 'function dblink_exec()'],
    ['select * from my_srf() x', 'function my_srf()'],
    ['select 1 operator(public.===) 2', 'operator public.==='],
    ["select query_to_xml('select ' || 'pg_read_file(1)', true, true, '')", 'query_to_xml() over a query jitgate cannot read'],
    ['select ts_stat($1)', 'ts_stat() over a query jitgate cannot read'],
    ["select schema_to_xml('hr', true, true, '')", 'schema_to_xml() (reads every table it can)'],
    ['create function f() returns int language sql as $$select 1$$', 'CREATE FUNCTION or PROCEDURE (code that runs later)'],
    ['create trigger tr before insert on t for each row execute function f()', 'CREATE TRIGGER (code that runs later)'],
    ['create rule r as on insert to t do also delete from s', 'CREATE RULE (statements that run later)'],
  ])('%s → %s', (sql, opaque) => {
    expect(one(sql).opaque).toContain(opaque);
  });

  it('sees built-ins (also pg_catalog-qualified and special syntax) as visible', () => {
    for (const sql of [
      'select lower(x), count(*), now(), pg_catalog.upper(x), extract(year from now()), substring(x from 2), trim(x) from t',
      'select 1 + 2 * 3, a || b, j ->> 0, x ~~ y from t',
      'copy t to stdout',
    ]) {
      expect(one(sql).opaque, sql).toEqual([]);
    }
  });

  it('analyses SQL passed as literal text as part of the statement', () => {
    const s = one("select query_to_xml('select pg_read_file(''/etc/hostname'') as f from payroll', true, true, '')");
    expect(s.functions).toEqual(expect.arrayContaining(['query_to_xml', 'pg_read_file']));
    expect(s.tablesRead).toContain('payroll');
    expect(one("select ts_stat('select to_tsvector(pg_read_file(''/etc/hostname''))')").functions).toContain('pg_read_file');
    expect(one("select ts_rewrite('a'::tsquery, 'select q, r from hr.rules')").tablesRead).toContain('hr.rules');
    expect(one("select table_to_xml('Payroll'::regclass, true, true, '')").tablesRead).toContain('payroll');
  });
});

describe('analysePostgres: code bodies (DO, CREATE FUNCTION)', () => {
  it('reads what a DO block runs: statements, expressions, EXECUTE of a literal', () => {
    const s = one(`do $$
      declare n int := (select count(*) from hr.salaries);
      begin
        execute 'drop table acc.orders';
        perform pg_read_file('/etc/hostname');
        if exists (select 1 from pg_stat_activity) then raise notice '%', n; end if;
        delete from t where true;
      end $$`);
    expect(s.kind).toBe('do');
    expect(s.innerKinds).toEqual(expect.arrayContaining(['ddl', 'delete']));
    expect(s.tablesRead).toEqual(expect.arrayContaining(['hr.salaries', 'pg_stat_activity']));
    expect(s.tablesWritten).toEqual(expect.arrayContaining(['acc.orders', 't']));
    expect(s.functions).toContain('pg_read_file');
    expect(s.unboundedWrites).toEqual(['t']);
    expect(s.opaque).toEqual([]);
  });

  it('reads SQL and PL/pgSQL function bodies', () => {
    const sql = one('create function f() returns setof text language sql as $$ select query from pg_stat_activity $$');
    expect(sql.tablesRead).toContain('pg_stat_activity');
    const pl = one("create function g() returns void language plpgsql as $$ begin execute 'select 1 from pg_' || 'authid'; end $$");
    expect(pl.opaque).toEqual(expect.arrayContaining(['function that runs SQL text built at run time']));
  });

  it('sees the kinds run inside: CTEs and PREPARE', () => {
    expect(one('with d as (delete from t where id = 1 returning 1) select * from d').innerKinds).toEqual(['delete']);
    expect(one('prepare p as delete from t where id = 1').innerKinds).toEqual(['delete']);
  });
});

describe('analysePostgres: settings, COPY ends, signals, cursors', () => {
  it.each([
    ['set role admin', ['role']],
    ['set local role admin', ['role']],
    ['reset role', ['role']],
    ['set session authorization bob', ['session_authorization']],
    ['reset session authorization', ['session_authorization']],
    ['SET Search_Path = x', ['search_path']],
    ['reset all', ['*']],
    ['discard all', ['*']],
    ["select set_config('Role', 'x', false)", ['role']],
    ['select set_config($1, $2, false)', ['*']],
    ['alter role bob set search_path = x', ['search_path']],
    ["set time zone 'utc'", ['timezone']],
  ] as const)('%s changes %j', (sql, settings) => {
    const s = one(sql);
    expect(s.settings).toEqual(settings);
    expect(s.readOnly).toBe(false);
  });

  it.each([
    ["copy t to program 'cat'", 'program'],
    ["copy t from program 'cat'", 'program'],
    ["copy t from '/etc/passwd'", 'file'],
    ["copy (select 1) to '/tmp/x'", 'file'],
    ['copy t to stdout', 'stdout'],
    ['copy t from stdin', 'stdin'],
  ] as const)('%s → %s', (sql, end) => {
    expect(one(sql).copyTargets).toEqual([end]);
  });

  it('reads the pid a backend signal names', () => {
    expect(one('select pg_terminate_backend(123)').backendSignals).toEqual([123]);
    expect(one('select pg_cancel_backend(pg_backend_pid())').backendSignals).toEqual(['self']);
    expect(one('select pg_terminate_backend(pid) from pg_stat_activity').backendSignals).toEqual(['unknown']);
  });

  it('reads a cursor over a SELECT as a read', () => {
    for (const sql of ['declare c cursor with hold for select * from t', 'fetch 10 from c', 'close c']) {
      expect(one(sql).readOnly, sql).toBe(true);
    }
    expect(one('declare c cursor for select * from t').kind).toBe('select');
  });
});
