import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { decideStatement, rulesFor } from './guardrails.js';
import { analysePostgres, loadPostgresParser } from '../sql/postgres.js';
import { matchReview, type ReviewRule } from './review-rules.js';

beforeAll(() => loadPostgresParser());

function rule(
  name: string,
  match: Partial<ReviewRule['match']>,
  scope: Partial<Pick<ReviewRule, 'connections' | 'groups' | 'except'>> = {},
): ReviewRule {
  return {
    name,
    connections: scope.connections ?? ['*'],
    groups: scope.groups ?? ['*'],
    except: scope.except ?? [],
    match: { kinds: [], writes: false, tables: [], functions: [], unboundedWrites: false, multiStatement: false, ...match },
    approval: { approvers: ['dba'], approvals: 1, timeoutMs: 600_000 },
  };
}

const RULES = [
  rule('prod-writes', { writes: true }, { connections: ['prod-*'] }),
  rule('any-ddl', { kinds: ['ddl'] }),
  rule('payroll', { tables: ['payroll', 'hr.*'] }),
  rule('kill-backends', { functions: ['pg_terminate_backend'] }),
  rule('batches', { multiStatement: true }, { connections: ['staging'] }),
];

describe('review rules: statement in, held-by out', () => {
  // connection, statement -> rule, reasons, what (undefined: runs without review)
  const table: Array<[string, string, [string, string[], string] | undefined]> = [
    ['prod-eu', 'select * from items', undefined],
    ['prod-eu', "update items set name = 'x' where id = 1", ['prod-writes', ['write_statement'], 'UPDATE changes data or settings']],
    [
      'prod-eu',
      'with d as (delete from items where id = 2 returning *) select * from d',
      ['prod-writes', ['write_statement'], 'SELECT changes data or settings'],
    ],
    ['prod-eu', 'copy items from stdin', ['prod-writes', ['write_statement'], 'COPY changes data or settings']],
    // A cursor over a SELECT reads: declaring, fetching and closing it is not a write.
    ['prod-eu', 'declare c cursor with hold for select * from items', undefined],
    ['prod-eu', 'fetch 10 from c', undefined],
    ['prod-eu', 'close c', undefined],
    ['dev', "update items set name = 'x' where id = 1", undefined],
    ['dev', 'create table t (a int)', ['any-ddl', ['kind_matched'], 'CREATE TABLE']],
    ['dev', 'alter table items add column c int', ['any-ddl', ['kind_matched'], 'ALTER TABLE']],
    ['dev', 'select * from public.payroll', ['payroll', ['table_matched'], 'SELECT touches public.payroll']],
    ['dev', 'select * from items join hr.salaries s on true', ['payroll', ['table_matched'], 'SELECT touches hr.salaries']],
    [
      'dev',
      'select pg_catalog.pg_terminate_backend(42)',
      ['kill-backends', ['function_matched'], 'SELECT calls pg_catalog.pg_terminate_backend()'],
    ],
    ['staging', 'select 1; select 2', ['batches', ['multi_statement'], '2 statements in one query string']],
    ['dev', 'select 1; select 2', undefined],
    // First rule in file order wins: a DDL on production is held as a write.
    ['prod-eu', 'drop table items', ['prod-writes', ['write_statement'], 'DROP TABLE changes data or settings']],
  ];
  for (const [connection, sql, expected] of table) {
    it(`${connection}: ${sql}`, () => {
      const m = matchReview(rulesFor(RULES, connection, ['engineering']), analysePostgres(sql));
      expect(m && [m.rule.name, m.reasons, m.what]).toEqual(expected);
    });
  }

  it('holds an unparsable statement for a person to look at, under the first applicable rule', () => {
    const m = matchReview(rulesFor(RULES, 'prod-eu', []), analysePostgres('updat items set'));
    expect(m?.rule.name).toBe('prod-writes');
    expect(m?.reasons).toEqual(['unparsable_statement']);
  });

  it('applies rules by group, and exempt groups skip them', () => {
    const scoped = [rule('eng-ddl', { kinds: ['ddl'] }, { groups: ['engineering'], except: ['dba'] })];
    const ddl = analysePostgres('create index on items (name)');
    expect(matchReview(rulesFor(scoped, 'x', ['engineering']), ddl)?.rule.name).toBe('eng-ddl');
    expect(matchReview(rulesFor(scoped, 'x', ['engineering', 'dba']), ddl)).toBeUndefined();
    expect(matchReview(rulesFor(scoped, 'x', ['marketing']), ddl)).toBeUndefined();
  });

  it('reads statements exactly as guardrails do (the same matcher)', () => {
    const sql = 'delete from items';
    const guard = decideStatement(
      [
        {
          name: 'g',
          connections: ['*'],
          groups: ['*'],
          except: [],
          deny: { kinds: [], tables: [], functions: [], unboundedWrites: false, multiStatement: false, readOnly: true },
        },
      ],
      analysePostgres(sql),
    );
    expect(guard.reasons).toEqual(['read_only']);
    expect(matchReview([rule('w', { writes: true })], analysePostgres(sql))?.reasons).toEqual(['write_statement']);
  });
});

describe('reviews: configuration', () => {
  const base = 'development: true\nconnections: [{ name: app, host: 127.0.0.1, database: app, user: u, tls: { mode: disable } }]\n';

  it('builds rules with defaults (every connection, everyone, 1 approval, 10m)', () => {
    const c = parseConfig(
      `${base}reviews:\n  - name: w\n    match: { writes: true }\n    approval: { approvers: [dba] }\n`,
      'x.yaml',
      '/tmp',
    );
    expect(c.reviews).toEqual([
      {
        name: 'w',
        connections: ['*'],
        groups: ['*'],
        except: [],
        match: { kinds: [], writes: true, tables: [], functions: [], unboundedWrites: false, multiStatement: false },
        approval: { approvers: ['dba'], approvals: 1, timeoutMs: 600_000 },
      },
    ]);
  });

  it('reports a rule without approvers, one that matches nothing, and bad values, with positions', () => {
    const yaml = `${base}reviews:\n  - name: a\n    match: {}\n    approval: { approvals: 0, timeout: 5 }\n  - name: b\n    match: { kinds: [drop] }\n    approval: { approvers: [] }\n`;
    let message = '';
    try {
      parseConfig(yaml, 'x.yaml', '/tmp');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/x\.yaml:\d+:\d+: reviews\[0\]\.match: a review rule must match something/);
    expect(message).toMatch(/reviews\[0\]\.approval\.approvers: required/);
    expect(message).toMatch(/reviews\[0\]\.approval\.approvals: expected an integer from 1 to 10, got 0/);
    expect(message).toMatch(/reviews\[0\]\.approval\.timeout: .*add a unit/);
    expect(message).toMatch(/reviews\[1\]\.match\.kinds: item 0: expected one of select/);
    expect(message).toMatch(/reviews\[1\]\.approval\.approvers: expected a non-empty list of approver group names/);
  });
});
