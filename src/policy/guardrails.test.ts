import { beforeAll, describe, expect, it } from 'vitest';
import { analysePostgres, loadPostgresParser } from '../sql/postgres.js';
import { decideStatement, nameMatch, rulesFor, type GuardrailRule } from './guardrails.js';

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
    for (const sql of ['insert into t values (1)', 'with d as (delete from t where a = 1 returning *) select * from d', 'copy t from stdin', 'set role admin', 'select 1 into t2']) {
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
