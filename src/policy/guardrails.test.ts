import { beforeAll, describe, expect, it } from 'vitest';
import { analysePostgres, loadPostgresParser } from '../sql/postgres.js';
import { decideStatement, nameMatch, rulesFor, type GuardrailRule } from './guardrails.js';
import { protectFunctionCall, protectStatement } from './pg-session-protection.js';

beforeAll(() => loadPostgresParser());

const rule = (name: string, deny: Partial<GuardrailRule['deny']>, extra: Partial<GuardrailRule> = {}): GuardrailRule => ({
  name,
  connections: ['*'],
  groups: ['*'],
  except: [],
  deny: { kinds: [], tables: [], functions: [], unboundedWrites: false, multiStatement: false, readOnly: false, ...deny },
  ...extra,
});

const RULES = [
  rule('no-ddl', { kinds: ['ddl', 'truncate', 'grant', 'revoke'] }),
  rule('files', { functions: ['pg_read_file', 'pg_read_binary_file', 'lo_export', 'dblink*'] }),
  rule('payroll', { tables: ['payroll', 'hr.*'] }),
  rule('careful', { unboundedWrites: true, multiStatement: true }),
];

describe('decideStatement (policy table)', () => {
  it.each([
    ['select * from customers where id = 1', 'allow', undefined, undefined],
    ['drop table customers', 'deny', 'kind_denied', 'no-ddl'],
    ['truncate customers', 'deny', 'kind_denied', 'no-ddl'],
    ["select pg_read_file('/etc/passwd')", 'deny', 'function_denied', 'files'],
    ["select pg_catalog.pg_read_file('/etc/passwd')", 'deny', 'function_denied', 'files'],
    ["select * from dblink('x', 'select 1') as t(a int)", 'deny', 'function_denied', 'files'],
    ['select * from public.payroll', 'deny', 'table_denied', 'payroll'],
    ['with x as (select * from hr.salaries) select 1', 'deny', 'table_denied', 'payroll'],
    ['select (select max(amount) from payroll)', 'deny', 'table_denied', 'payroll'],
    ['delete from customers', 'deny', 'unbounded_write', 'careful'],
    ['with d as (update customers set email = null returning 1) select * from d', 'deny', 'unbounded_write', 'careful'],
    ['update customers set email = null where id = 3', 'allow', undefined, undefined],
    ['select 1; select 2', 'deny', 'multi_statement', 'careful'],
    ['selec * fron customers', 'deny', 'unparsable_statement', 'no-ddl'],
    ['/* drop table customers */ select 1', 'allow', undefined, undefined],
  ] as const)('%s → %s %s', (sql, effect, reason, ruleName) => {
    const d = decideStatement(RULES, analysePostgres(sql));
    expect(d.effect).toBe(effect);
    expect(d.reasons[0]).toBe(reason);
    expect(d.rule).toBe(ruleName);
    if (effect === 'deny') expect(d.message).toContain(`guardrail "${ruleName}"`);
  });

  it('read-only mode refuses every write, including those hidden in CTEs and COPY FROM', () => {
    const ro = [rule('read-only', { readOnly: true })];
    expect(decideStatement(ro, analysePostgres('select 1')).effect).toBe('allow');
    for (const sql of [
      'insert into t values (1)',
      'with d as (delete from t where a = 1 returning *) select * from d',
      'copy t from stdin',
      'set role admin',
      'select 1 into t2',
    ]) {
      expect(decideStatement(ro, analysePostgres(sql)).reasons, sql).toEqual(['read_only']);
    }
  });

  it('allows everything when no rule applies, without needing a parse', () => {
    expect(decideStatement([], analysePostgres('selec garbage')).effect).toBe('allow');
  });
});

describe('rulesFor', () => {
  const rules = [rule('prod', {}, { connections: ['prod-*'], groups: ['engineering'], except: ['dba'] })];
  it('matches connections by glob and groups, honouring exemptions', () => {
    expect(rulesFor(rules, 'prod-eu', ['engineering'])).toHaveLength(1);
    expect(rulesFor(rules, 'staging', ['engineering'])).toHaveLength(0);
    expect(rulesFor(rules, 'prod-eu', ['sales'])).toHaveLength(0);
    expect(rulesFor(rules, 'prod-eu', ['engineering', 'dba'])).toHaveLength(0);
  });
  it('matches qualified names by their tail only for unqualified patterns', () => {
    expect(nameMatch('payroll', 'public.payroll')).toBe(true);
    expect(nameMatch('hr.payroll', 'public.payroll')).toBe(false);
    expect(nameMatch('PAYROLL', 'payroll')).toBe(true);
  });
});

describe('code the gateway cannot see (opaque code)', () => {
  const noDdl = [rule('no-ddl', { kinds: ['ddl'] })];
  it.each([
    "do $$ begin execute format('drop table %I', 'orders'); end $$",
    'call refresh_all()',
    'select public.wipe()',
    'select * from dblink($$x$$, $$select 1$$) as t(a int)',
    "select query_to_xml('select ' || 'pg_read_file(1)', true, true, '')",
    'create trigger tr before insert on t for each row execute function f()',
  ])('refuses %s where any SQL rule applies', (sql) => {
    const d = decideStatement(noDdl, analysePostgres(sql));
    expect(d.effect).toBe('deny');
    expect(d.reasons).toEqual(sql.startsWith('create') ? ['kind_denied'] : ['opaque_code']);
  });

  it('reads a DO block instead of refusing it: what it runs is checked like any statement', () => {
    expect(decideStatement(noDdl, analysePostgres("do $$ begin execute 'drop table acc.orders'; end $$")).reasons).toEqual(['kind_denied']);
    expect(decideStatement(noDdl, analysePostgres("do $$ begin execute 'drop ' || 'table acc.orders'; end $$")).reasons).toEqual([
      'opaque_code',
    ]);
    expect(decideStatement(noDdl, analysePostgres('do $$ begin perform 1; insert into t values (1); end $$')).effect).toBe('allow');
  });

  it('lets a rule allow functions by name, DO blocks, or all opaque code', () => {
    const allowing = [rule('no-ddl', { kinds: ['ddl'] }, { allow: { functions: ['refresh_*', 'app.*'], do: true } })];
    expect(decideStatement(allowing, analysePostgres('call refresh_all()')).effect).toBe('allow');
    expect(decideStatement(allowing, analysePostgres('select app.total(1)')).effect).toBe('allow');
    expect(decideStatement(allowing, analysePostgres('do $$ begin null; end $$')).effect).toBe('allow');
    expect(decideStatement(allowing, analysePostgres('select other.f()')).reasons).toEqual(['opaque_code']);
    const trusting = [rule('trusting', { kinds: ['truncate'] }, { allow: { code: true } })];
    expect(decideStatement(trusting, analysePostgres('select other.f()')).effect).toBe('allow');
  });

  it('does not refuse opaque code for a rule that checks no SQL (Redis criteria only)', () => {
    expect(decideStatement([rule('redis', { commands: ['flushall'] })], analysePostgres('select f()')).effect).toBe('allow');
  });

  it('refuses denied functions reached through SQL passed as text', () => {
    const files = [rule('files', { functions: ['pg_read_file'] })];
    for (const sql of [
      "SELECT query_to_xml('select pg_read_file(''/etc/hostname'') as f', true, true, '')",
      "select ts_stat('select to_tsvector(pg_read_file(''/etc/hostname''))')",
      "select query_to_xml_and_xmlschema(E'select pg_read_file(\\'/etc/hostname\\')', true, true, '')",
    ]) {
      expect(decideStatement(files, analysePostgres(sql)).reasons, sql).toEqual(['function_denied']);
    }
  });
});

describe('settings and COPY ends', () => {
  const rules = [rule('finer', { settings: ['role', 'session_authorization'], copy: ['program', 'file'] })];
  it.each([
    ['set role admin', 'deny', 'setting_denied'],
    ['SET LOCAL ROLE admin', 'deny', 'setting_denied'],
    ['reset role', 'deny', 'setting_denied'],
    ['set session authorization bob', 'deny', 'setting_denied'],
    ['reset all', 'deny', 'setting_denied'],
    ["select set_config('role', 'admin', false)", 'deny', 'setting_denied'],
    ['set search_path = app', 'allow', undefined],
    ["copy t to program 'cat > /tmp/x'", 'deny', 'copy_denied'],
    ["copy t from '/etc/passwd'", 'deny', 'copy_denied'],
    ['copy t to stdout', 'allow', undefined],
    ['copy t from stdin', 'allow', undefined],
  ] as const)('%s → %s', (sql, effect, reason) => {
    const d = decideStatement(rules, analysePostgres(sql));
    expect(d.effect).toBe(effect);
    expect(d.reasons[0]).toBe(reason);
  });

  it('names the real statement kind of an unbounded write reached through PREPARE', () => {
    const d = decideStatement([rule('careful', { unboundedWrites: true })], analysePostgres('prepare p as delete from items'));
    expect(d.message).toContain('DELETE without WHERE on items (unbounded_write)');
  });
});

describe('what every PostgreSQL session gets (session protections)', () => {
  const shared = { ownBackendPid: 4242, sharedRole: true };
  it.each([
    ['select rolpassword from pg_authid', 'credential_catalog'],
    ["select query_to_xml($1, true, true, '')", 'unreadable_sql_text'],
    ["select query_to_xml('select * from pg_shadow', true, true, '')", 'credential_catalog'],
    ['select query from pg_stat_activity', 'other_sessions'],
    ['select query from pg_stat_statements', 'other_sessions'],
    ['select pg_terminate_backend(77)', 'other_sessions'],
    ['select pg_cancel_backend($1)', 'other_sessions'],
    ["do $$ begin raise notice '%', (select string_agg(query, ',') from pg_stat_activity); end $$", 'other_sessions'],
    [
      "do $$ declare q text; begin execute 'select string_agg(query, '','') from pg_' || 'stat_activity' into q; raise notice '%', q; end $$",
      'unreadable_code',
    ],
    ['create function spy() returns setof text language sql as $$ select query from pg_stat_activity $$', 'other_sessions'],
    ['do language plperl $$ 1 $$', 'unreadable_code'],
  ])('%s → %s', (sql, reason) => {
    expect(protectStatement(sql, shared)?.reasons).toEqual([reason]);
  });

  it('lets a session signal its own backend, and a session with its own role read activity', () => {
    expect(protectStatement('select pg_cancel_backend(4242)', shared)).toBeUndefined();
    expect(protectStatement('select pg_cancel_backend(pg_backend_pid())', shared)).toBeUndefined();
    expect(protectStatement('select query from pg_stat_activity', { ownBackendPid: 1, sharedRole: false })).toBeUndefined();
    expect(protectStatement('select rolpassword from pg_authid', { ownBackendPid: 1, sharedRole: false })?.reasons).toEqual([
      'credential_catalog',
    ]);
  });

  it('leaves ordinary statements alone without parsing them', () => {
    expect(protectStatement('select * from items where id = 1', shared)).toBeUndefined();
    expect(protectFunctionCall(954, shared)).toBeUndefined(); // loread
    expect(protectFunctionCall(2096, shared)?.reasons).toEqual(['function_call_protocol']); // pg_terminate_backend
  });
});
