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
    [
      'SELECT a FROM t1 JOIN db.t2 ON t1.id = t2.id WHERE x IN (SELECT y FROM t3)',
      { kind: 'select', tablesRead: ['t1', 'db.t2', 't3'], readOnly: true },
    ],
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
    expect(plainSelect("SELECT CONCAT(c.email, '') AS e, name FROM customers c")).toEqual({
      tables: ['customers'],
      outputs: [['c.email'], ['name']],
    });
    expect(plainSelect('SELECT * FROM customers')).toEqual({ tables: ['customers'] });
    expect(plainSelect('SELECT x FROM (SELECT email AS x FROM customers) t')).toBeUndefined();
    expect(plainSelect('WITH w AS (SELECT 1 AS y) SELECT y FROM w')).toBeUndefined();
    expect(plainSelect('SELECT a FROM t UNION SELECT b FROM u')).toBeUndefined();
  });
});

const MARIADB = { mariadb: true, version: 101106, noBackslashEscapes: false };

describe('MySQL statements as the server reads them', () => {
  it('expands executable comments as MariaDB runs them (version-gated by the backend version)', () => {
    const kinds = (sql: string, d = MARIADB) => {
      const r = analyseMysql(sql, d);
      return r.ok ? r.statements.map((s) => s.text) : r.error;
    };
    expect(kinds('/*!DROP TABLE victim*/')).toEqual(['DROP TABLE victim']);
    expect(kinds('/*M!DELETE FROM notes*/')).toEqual(['DELETE FROM notes']);
    expect(kinds('SELECT 1 /*!40101 , 2 */')).toEqual(['SELECT 1   , 2']);
    expect(kinds('SELECT 1 /*M!100101 , 2 */')).toEqual(['SELECT 1   , 2']);
    // Future versions, and MySQL 5.7+ gates MariaDB ignores, are comments.
    expect(kinds('SELECT 1 /*!999999 , 2 */')).toEqual(['SELECT 1']);
    expect(kinds('SELECT 1 /*!80000 , 2 */')).toEqual(['SELECT 1']);
    expect(kinds('SELECT 1 /*M!80000 , 2 */')).toEqual(['SELECT 1   , 2']);
    // MySQL runs /*!80000 */ but knows no /*M!.
    expect(kinds('SELECT 1 /*!80000 , 2 */', { mariadb: false, version: 80036, noBackslashEscapes: false })).toEqual(['SELECT 1   , 2']);
    expect(kinds('SELECT 1 /*M! , 2 */', { mariadb: false, version: 80036, noBackslashEscapes: false })).toEqual(['SELECT 1']);
    // Without a known server every reading counts.
    const unknown = analyseMysql('SELECT 1 /*!100500 , 2 */');
    expect(unknown.ok && unknown.statements.map((s) => s.text)).toEqual(expect.arrayContaining(['SELECT 1', 'SELECT 1   , 2']));
    // A comment inside an executable one is not guessed at.
    expect(analyseMysql('SELECT 1 /*! , 2 /* x */ */', MARIADB).ok).toBe(false);
  });

  it('reads comments, dashes and string escapes as the server does', () => {
    const r = analyseMysql('SELECT 0--card FROM customers', MARIADB);
    expect(r.ok && r.statements[0]!.columns).toEqual(['card']);
    const s = analyseMysql("SELECT 'it\\'s', email FROM customers # note\n", MARIADB);
    expect(s.ok && s.statements[0]!.columns).toEqual(['email']);
    // NO_BACKSLASH_ESCAPES: the same text is an unterminated string.
    expect(analyseMysql("SELECT 'it\\'s', email FROM customers", { ...MARIADB, noBackslashEscapes: true }).ok).toBe(false);
    // A text that changes sql_mode is read both ways.
    expect(analyseMysql("SET sql_mode = 'NO_BACKSLASH_ESCAPES'; SELECT 'a\\', email FROM t", MARIADB).ok).toBe(false);
  });

  it('follows quoting: double quotes are strings unless ANSI_QUOTES, which a session may not turn on', () => {
    const d = { ...MARIADB, ansiQuotes: false };
    const r = analyseMysql('SELECT "password_hash" FROM t', d);
    expect(r.ok && r.statements.map((x) => x.columns)).toEqual([[]]);
    expect(analyseMysql("SET sql_mode = 'ANSI_QUOTES'", d).ok).toBe(false);
    expect(analyseMysql("SET SESSION sql_mode = 'ANSI'", d).ok).toBe(false);
    expect(analyseMysql('SET @@sql_mode = @saved', d).ok).toBe(false);
    expect(analyseMysql("SET sql_mode = 'STRICT_TRANS_TABLES'", d).ok).toBe(true);
    // Character sets whose characters can end in a quote or backslash byte are not followed.
    for (const sql of [
      'SET NAMES gbk',
      'SET CHARACTER SET sjis',
      "SET character_set_client = 'big5'",
      'SET NAMES cp932 COLLATE cp932_bin',
    ]) {
      expect(analyseMysql(sql, d).ok, sql).toBe(false);
    }
    expect(analyseMysql('SET NAMES latin1', d).ok).toBe(true);
  });

  it('analyses prepared texts as the statements they are, and refuses texts it cannot see', () => {
    const r = analyseMysql("PREPARE s FROM 'SELECT CONCAT(password_hash, \\'\\') FROM customers'", MARIADB);
    // One statement, reported as the one it prepares (a DROP prepared is DDL; no second statement).
    expect(r.ok && r.statements.map((x) => [x.kind, x.prepares, x.columns])).toEqual([['select', 's', ['password_hash']]]);
    const ddl = analyseMysql("PREPARE d FROM 'DROP TABLE x'", MARIADB);
    expect(ddl.ok && ddl.statements.map((x) => x.kind)).toEqual(['ddl']);
    expect(analyseMysql('PREPARE s FROM @q', MARIADB).ok).toBe(false);
    expect(analyseMysql("EXECUTE IMMEDIATE CONCAT('DROP ', 'TABLE x')", MARIADB).ok).toBe(false);
    const e = analyseMysql('EXECUTE s USING @a, 1', MARIADB);
    expect(e.ok && e.statements[0]!.executes).toBe('s');
    expect(analyseMysql('EXECUTE s USING (SELECT password_hash FROM customers)', MARIADB).ok).toBe(false);
  });

  it('knows statements the grammar lacks, routines, variables and what reveals credentials', () => {
    const one = (sql: string) => {
      const r = analyseMysql(sql, MARIADB);
      if (!r.ok) throw new Error(r.error);
      return r.statements[0]!;
    };
    expect(one('SHOW WARNINGS')).toMatchObject({ kind: 'show', showsWarnings: true });
    expect(one("SHOW VARIABLES LIKE 'char%'")).toMatchObject({ kind: 'show', readOnly: true });
    expect(one('SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci')).toMatchObject({ kind: 'set', settings: ['names'] });
    expect(one('KILL QUERY 12')).toMatchObject({ kind: 'other' });
    expect(one("SHOW FULL COLUMNS FROM `customers` FROM `app` LIKE '%'")).toMatchObject({ kind: 'show', tablesRead: ['app.customers'] });
    expect(one('SELECT HEX(email_of(3))')).toMatchObject({ routines: ['email_of'] });
    expect(one('SELECT app.hash_of(1)')).toMatchObject({ routines: ['app.hash_of'] });
    expect(one('CALL get_hash(2)')).toMatchObject({ kind: 'call', routines: ['get_hash'] });
    expect(one('SELECT @x := password_hash FROM customers')).toMatchObject({ assignsVariables: true });
    expect(one('SET @y = (SELECT password_hash FROM customers)')).toMatchObject({ assignsVariables: true });
    expect(one('SELECT email FROM customers INTO @e')).toMatchObject({ assignsVariables: true });
    expect(one('SELECT UPPER(name) FROM customers')).toMatchObject({ assignsVariables: false, routines: [] });
    for (const sql of [
      'SHOW PROCESSLIST',
      'SHOW FULL PROCESSLIST',
      'SHOW GRANTS',
      "SHOW GRANTS FOR 'gw'@'%'",
      "SHOW CREATE USER 'gw'",
      'SHOW ENGINE INNODB STATUS',
      'SELECT authentication_string FROM mysql.user',
      'SELECT * FROM mysql.global_priv',
      'SELECT info FROM information_schema.PROCESSLIST',
      'SELECT * FROM performance_schema.events_statements_current',
      'USE mysql',
    ]) {
      expect(one(sql).sensitive, sql).toBeTruthy();
    }
  });

  it('a star over CTEs of clear columns refers to no masked column; COUNT shows no value', () => {
    const r = analyseMysql('WITH c AS (SELECT id, name FROM customers) SELECT * FROM c', MARIADB);
    expect(r.ok && r.statements[0]!.columns).toEqual(['id', 'name']);
    expect(plainSelect('SELECT COUNT(email), id FROM customers')).toEqual({ tables: ['customers'], outputs: [[], ['id']] });
  });
});
