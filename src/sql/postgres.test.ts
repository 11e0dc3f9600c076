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
    const s = one('with recent as (select * from sales.orders) select c.email from public.customers c join recent r on r.cid = c.id where exists (select 1 from audit.log l)');
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
    expect(one('update t set a = 1 where true').unboundedWrites).toEqual([]);
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

  it('splits multi-statement strings, keeping each statement\'s text', () => {
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
