import { describe, expect, it } from 'vitest';
import { analyseMysql, plainSelect } from './mysql.js';

function one(sql: string) {
  const r = analyseMysql(sql);
  if (!r.ok) throw new Error(r.error);
  expect(r.statements).toHaveLength(1);
  return r.statements[0]!;
}

describe('MySQL statement analysis', () => {
  it.each([
    ['SELECT a FROM t1 JOIN db.t2 ON t1.id = t2.id WHERE x IN (SELECT y FROM t3)', { kind: 'select', tablesRead: ['t1', 'db.t2', 't3'], readOnly: true }],
    ['DELETE FROM t', { kind: 'delete', tablesWritten: ['t'], unboundedWrites: ['t'], readOnly: false }],
    ['UPDATE t SET a = 1 WHERE b = 2', { kind: 'update', unboundedWrites: [], readOnly: false }],
    ['REPLACE INTO t VALUES (1)', { kind: 'insert', tablesWritten: ['t'] }],
    ['DROP TABLE x', { kind: 'ddl', ddl: 'drop table', tablesWritten: ['x'] }],
    ['TRUNCATE TABLE x', { kind: 'truncate' }],
    ["SELECT * FROM t INTO OUTFILE '/tmp/x'", { kind: 'copy', functions: ['into_outfile'], readOnly: false }],
    ["SELECT 1 INTO DUMPFILE '/tmp/x'", { kind: 'copy', functions: ['into_dumpfile'] }],
    ["LOAD DATA LOCAL INFILE '/x' INTO TABLE t", { kind: 'copy', functions: ['load_data'], tablesWritten: ['t'] }],
    ["SELECT LOAD_FILE('/etc/passwd')", { functions: ['load_file'] }],
    ['SHOW TABLES', { kind: 'show', readOnly: true }],
    ['USE app', { kind: 'other', readOnly: true }],
    ["GRANT SELECT ON x.* TO 'u'", { kind: 'grant', readOnly: false }],
  ])('%s', (sql, expected) => {
    expect(one(sql)).toMatchObject(expected);
  });

  it('splits multi-statements and refuses to guess at what does not parse', () => {
    const r = analyseMysql('SELECT 1; DELETE FROM t');
    expect(r.ok && r.statements.map((s) => s.kind)).toEqual(['select', 'delete']);
    expect(analyseMysql('SELEKT 1').ok).toBe(false);
  });

  it('attributes output columns only for plain SELECTs over base tables', () => {
    expect(plainSelect("SELECT CONCAT(c.email, '') AS e, name FROM customers c")).toEqual({ tables: ['customers'], outputs: [['c.email'], ['name']] });
    expect(plainSelect('SELECT * FROM customers')).toEqual({ tables: ['customers'] });
    expect(plainSelect('SELECT x FROM (SELECT email AS x FROM customers) t')).toBeUndefined();
    expect(plainSelect('WITH w AS (SELECT 1 AS y) SELECT y FROM w')).toBeUndefined();
    expect(plainSelect('SELECT a FROM t UNION SELECT b FROM u')).toBeUndefined();
  });
});
