/**
 * Ways around MySQL masking and guardrails, each a class, against a real MariaDB with the mariadb
 * CLI and mysql2 (text and binary protocol): executable comments (slash-star-bang, MariaDB's
 * slash-star-M-bang) the grammar took for comments, `--` that is not a comment, stored routines, user variables, error and warning
 * texts that quote values, SQL-level prepared statements, and statements that reveal the gateway's
 * backend credential or other sessions' statements. Next to them, the over-masking checks: what
 * cannot show masked data passes and comes back intact (CTEs, counts, SHOW WARNINGS, SET NAMES...).
 */
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariadb, type MariadbServer } from './support/mysql-server.js';
import { mysqlCli, startMysqlTestGateway, type MysqlTestGateway } from './support/mysql-gateway.js';

let my: MariadbServer;
let gw: MysqlTestGateway;

const HASH = '$2b$12$Qm9vb3RzdHJhcHBlZHNlY3JldGhhc2g';
const EMAIL = 'ann.secret@example.com';
const PIN = '48213';
const secrets = [HASH, HASH.slice(0, 20), EMAIL, PIN, Buffer.from(EMAIL).toString('hex').toUpperCase()];

beforeAll(async () => {
  my = await startMariadb();
  my.root(`
    CREATE TABLE app.accounts (id INT PRIMARY KEY, name VARCHAR(50), password_hash VARCHAR(100), email VARCHAR(100), pin VARCHAR(10), created DATE);
    INSERT INTO app.accounts VALUES (1, 'ann', '${HASH}', '${EMAIL}', '${PIN}', '2026-03-04'), (2, 'bob', '$2b$12$other', 'bob@example.com', '90210', '2026-05-06');
    CREATE TABLE app.victim (id INT);
    CREATE TABLE app.notes (id INT, t TEXT);
    INSERT INTO app.notes VALUES (1, 'keep');
    CREATE FUNCTION app.hash_of(i INT) RETURNS VARCHAR(100) READS SQL DATA RETURN (SELECT password_hash FROM app.accounts WHERE id = i);
    CREATE FUNCTION app.email_of(i INT) RETURNS VARCHAR(100) READS SQL DATA RETURN (SELECT email FROM app.accounts WHERE id = i);
    CREATE PROCEDURE app.get_hash(i INT) SELECT password_hash FROM app.accounts WHERE id = i;`);
  gw = await startMysqlTestGateway(my, {
    extraConnections: [
      `{ name: masked, type: mysql, host: 127.0.0.1, port: ${my.port}, database: app, user: ${my.users.native.user}, password: env:MY_NATIVE, tls: { mode: disable } }`,
    ],
    extraYaml: `
masking:
  rules:
    - name: secrets
      connections: [app, masked]
      columns:
        accounts.password_hash: redact
        accounts.email: email
        accounts.pin: redact
guardrails:
  - name: no-ddl
    connections: [app]
    deny:
      kinds: [ddl, truncate]
      functions: [load_file, into_outfile, into_dumpfile]
      unboundedWrites: true
`,
  });
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await my?.cleanup();
});

async function connect(connection = 'masked', extra: mysql.ConnectionOptions = {}): Promise<mysql.Connection> {
  return mysql.createConnection({
    host: gw.host,
    port: gw.port,
    user: 'alice',
    password: await gw.token({ connection }),
    database: connection,
    multipleStatements: true,
    ...extra,
  });
}

/** Everything a query gives the client: rows, or the error message. */
async function outcome(c: mysql.Connection, sql: string, binary = false): Promise<string> {
  try {
    const [rows] = binary ? await c.execute(sql) : await c.query(sql);
    return JSON.stringify(rows);
  } catch (err) {
    return `ERROR ${(err as { errno?: number }).errno}: ${(err as Error).message}`;
  }
}

function expectNoSecret(text: string, sql: string): void {
  for (const s of secrets) expect(text, `${sql} → ${text}`).not.toContain(s);
}

describe('executable comments run as the server runs them', () => {
  it('guardrails see DDL, writes and functions inside /*! */ and /*M! */', async () => {
    const c = await connect('app');
    try {
      for (const sql of [
        '/*!DROP TABLE victim*/',
        '/*!50001 DROP TABLE victim */',
        '/*M!DROP TABLE victim*/',
        '/*M!100101 DROP TABLE victim */',
        'SELECT 1; /*!DROP TABLE victim*/',
        '/*!DELETE FROM notes*/',
        "SELECT 1 /*!, LOAD_FILE('/etc/hostname') */",
        // SQL the grammar cannot see into: compound blocks, SET STATEMENT, prepared and immediate texts.
        'BEGIN NOT ATOMIC DROP TABLE victim; END',
        'SET STATEMENT max_statement_time = 10 FOR DROP TABLE victim',
        "EXECUTE IMMEDIATE 'DROP TABLE victim'",
        "PREPARE d FROM '/*!DROP TABLE victim*/'",
        "SET @d = 'DROP TABLE victim'; PREPARE d FROM @d",
      ]) {
        expect(await outcome(c, sql), sql).toMatch(/^ERROR 1142: jitgate/);
      }
      expect(my.root("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'victim'").trim()).toBe(
        '1',
      );
      expect(my.root('SELECT COUNT(*) FROM app.notes').trim()).toBe('1');
      // A comment for a version the server does not have stays a comment, as on the server.
      expect(await outcome(c, 'SELECT 1 AS x /*!999999 , 2 */')).toBe('[{"x":1}]');
    } finally {
      await c.end();
    }
  });

  it('masking sees masked columns inside executable comments (text and binary protocol, mariadb CLI)', async () => {
    const c = await connect();
    try {
      const hash = "CONCAT(password_hash,'')";
      // Answered with the rows, masked (a refusal would leak nothing either, and is not what runs).
      for (const [sql, rows] of [
        [
          "SELECT name /*!, CONCAT(password_hash,''), HEX(email) */ FROM accounts",
          [
            { name: 'ann', [hash]: '[redacted]', 'HEX(email)': '[redacted]' },
            { name: 'bob', [hash]: '[redacted]', 'HEX(email)': '[redacted]' },
          ],
        ],
        [
          "SELECT name /*M!, CONCAT(password_hash,'') */ FROM accounts",
          [
            { name: 'ann', [hash]: '[redacted]' },
            { name: 'bob', [hash]: '[redacted]' },
          ],
        ],
        [
          "SELECT name /*!40101 , CONCAT(password_hash,'') */ FROM accounts",
          [
            { name: 'ann', [hash]: '[redacted]' },
            { name: 'bob', [hash]: '[redacted]' },
          ],
        ],
        [
          "SELECT name /*M!100100 , CONCAT(password_hash,'') */ FROM accounts",
          [
            { name: 'ann', [hash]: '[redacted]' },
            { name: 'bob', [hash]: '[redacted]' },
          ],
        ],
        // 0 - (-pin) is the pin: a numeric expression over a masked column, masked to NULL.
        ['SELECT 0--pin AS p FROM accounts', [{ p: null }, { p: null }]],
        [
          "SELECT CONCAT('', name) AS n /*!, REVERSE(REVERSE(password_hash)) AS r*/ FROM accounts",
          [
            { n: 'ann', r: '[redacted]' },
            { n: 'bob', r: '[redacted]' },
          ],
        ],
      ] as const) {
        expect(await outcome(c, sql), sql).toBe(JSON.stringify(rows));
        expect(await outcome(c, sql, true), `${sql} (binary)`).toBe(JSON.stringify(rows));
      }
      const cli = await mysqlCli(gw, {
        token: await gw.token({ connection: 'masked' }),
        database: 'masked',
        sql: "SELECT name /*!, CONCAT(password_hash,'') */ FROM accounts",
      });
      expectNoSecret(cli.stdout + cli.stderr, 'cli');
      expect(cli.stdout).toContain('ann');
    } finally {
      await c.end();
    }
  });

  it('string quoting follows the session sql_mode (NO_BACKSLASH_ESCAPES, ANSI_QUOTES)', async () => {
    const c = await connect();
    try {
      await c.query("SET sql_mode = 'NO_BACKSLASH_ESCAPES'");
      // Read with backslash escapes, this is one string and a # comment; the server reads a column.
      const sql = "SELECT 'x\\' , CONCAT(password_hash, 0) AS h, '#' AS z FROM accounts";
      expectNoSecret(await outcome(c, sql), sql);
      // ANSI_QUOTES would make "password_hash" a column: turning it on is not followed, so refused.
      expect(await outcome(c, "SET sql_mode = 'ANSI_QUOTES'")).toMatch(/^ERROR 1142: .*masking_unprovable/);
      expect(await outcome(c, "SET sql_mode = 'ANSI'; SELECT 1")).toMatch(/^ERROR 1142/);
      const ansi = 'SELECT CONCAT("password_hash", \'\') AS h FROM accounts';
      expectNoSecret(await outcome(c, ansi), ansi);
      expectNoSecret(
        await outcome(c, "SET sql_mode = 'NO_BACKSLASH_ESCAPES'; SELECT 'x\\' , CONCAT(email, 0) AS h, '#' AS z FROM accounts"),
        'multi',
      );
    } finally {
      await c.end();
    }
  });

  it('client character sets whose characters can hide a quote byte are not relayed', async () => {
    // In GBK, 0xbf 0x5c is one character: the server would read the quote after it as a quote.
    await expect(connect('masked', { charset: 'GBK_CHINESE_CI' })).rejects.toThrow(/utf8mb4/);
    const c = await connect();
    try {
      expect(await outcome(c, 'SET NAMES gbk')).toMatch(/^ERROR 1142: .*masking_unprovable/);
      expect(await outcome(c, "SET character_set_client = 'sjis'")).toMatch(/^ERROR 1142/);
    } finally {
      await c.end();
    }
  });

  it('INTO OUTFILE inside an executable comment is refused, no file written', async () => {
    const c = await connect();
    const file = join(tmpdir(), `jitgate-outfile-${process.pid}-${Date.now()}`);
    try {
      expect(await outcome(c, `SELECT password_hash FROM accounts /*!INTO OUTFILE '${file}'*/`)).toMatch(/^ERROR 1142: .*masking_copy/);
      expect(existsSync(file)).toBe(false);
    } finally {
      await c.end();
    }
  });
});

describe('masked values do not travel through routines, variables, prepared texts or messages', () => {
  it('stored functions and procedures are unprovable under masking', async () => {
    const c = await connect();
    try {
      for (const sql of [
        'SELECT hash_of(1)',
        'SELECT HEX(email_of(1))',
        'SELECT app.hash_of(1) AS h',
        'CALL get_hash(1)',
        'SELECT name FROM accounts WHERE hash_of(id) IS NOT NULL',
      ]) {
        const text = await outcome(c, sql);
        expect(text, sql).toMatch(/^ERROR 1142: .*masking_unprovable/);
        expectNoSecret(text, sql);
      }
    } finally {
      await c.end();
    }
  });

  it('assigning a masked value to a variable is a copy', async () => {
    const c = await connect();
    try {
      for (const sql of [
        'SELECT @x := password_hash FROM accounts WHERE id = 1',
        'SET @y = (SELECT password_hash FROM accounts WHERE id = 1)',
        'SELECT email FROM accounts WHERE id = 1 INTO @z',
        "SELECT name FROM accounts WHERE (@w := CONCAT(password_hash, '')) IS NOT NULL",
        'DO @w := (SELECT password_hash FROM accounts WHERE id = 1)',
      ]) {
        expect(await outcome(c, sql), sql).toMatch(/^ERROR 1142: .*masking_(copy|unprovable)/);
      }
      // Read back: answered, and none of them holds anything.
      expect(await outcome(c, 'SELECT @x, @y, @z, @w')).toBe(JSON.stringify([{ '@x': null, '@y': null, '@z': null, '@w': null }]));
      // Sent as one multi-statement string, too.
      const both = await outcome(c, 'SELECT @v := password_hash FROM accounts WHERE id = 1; SELECT @v');
      expect(both).toMatch(/^ERROR 1142: .*masking_copy/);
      expectNoSecret(both, 'multi');
    } finally {
      await c.end();
    }
  });

  it('errors and warnings do not quote values of masked columns, wherever the statement reads them', async () => {
    const c = await connect();
    try {
      for (const sql of [
        'SELECT EXTRACTVALUE(1, CONCAT(0x7e, (SELECT SUBSTRING(password_hash, 1, 30) FROM accounts WHERE id = 1)))',
        'SELECT UPDATEXML(1, CONCAT(0x7e, (SELECT password_hash FROM accounts WHERE id = 1)), 1)',
        'SELECT id FROM accounts WHERE EXTRACTVALUE(1, CONCAT(0x7e, email)) IS NOT NULL',
      ]) {
        const text = await outcome(c, sql);
        expect(text, sql).toMatch(/^ERROR/);
        expectNoSecret(text, sql);
      }
      const [rows] = await c.query('SELECT CAST(email AS INT) AS n FROM accounts WHERE id = 1; SHOW WARNINGS');
      expectNoSecret(JSON.stringify(rows), 'SHOW WARNINGS');
      expect(JSON.stringify(rows)).toContain('Truncated incorrect');
      const cli = await mysqlCli(gw, {
        token: await gw.token({ connection: 'masked' }),
        database: 'masked',
        args: ['--show-warnings'],
        sql: 'SELECT CAST(pin AS DATE) AS d FROM accounts WHERE id = 1',
      });
      expect(cli.code, cli.stderr).toBe(0);
      expectNoSecret(cli.stdout + cli.stderr, 'cli --show-warnings');
    } finally {
      await c.end();
    }
  });

  it('SQL-level prepared statements are analysed as the statements they prepare', async () => {
    const c = await connect();
    try {
      expect(await outcome(c, "PREPARE s FROM 'SELECT CONCAT(password_hash, \\'\\') AS h, name FROM accounts WHERE id = 1'")).not.toMatch(
        /^ERROR/,
      );
      const executed = await outcome(c, 'EXECUTE s');
      expectNoSecret(executed, 'EXECUTE s');
      expect(executed).toContain('ann');
      // A name prepared again: every text prepared under it counts.
      await c.query("PREPARE s FROM 'SELECT 1 AS one'");
      expect(await outcome(c, "SET @q = 'SELECT password_hash FROM accounts'; PREPARE t FROM @q")).toMatch(
        /^ERROR 1142: .*masking_unprovable/,
      );
      expect(await outcome(c, "EXECUTE IMMEDIATE 'SELECT CONCAT(email, \\'\\') AS e FROM accounts'")).toBe(
        JSON.stringify([{ e: '[redacted]' }, { e: '[redacted]' }]),
      );
      expect(await outcome(c, "PREPARE u FROM 'INSERT INTO notes SELECT id, password_hash FROM accounts'")).toMatch(
        /^ERROR 1142: .*masking_copy/,
      );
      expect(my.root('SELECT COUNT(*) FROM app.notes').trim()).toBe('1');
    } finally {
      await c.end();
    }
  });
});

describe('no session reads the gateway credential or other sessions statements', () => {
  it('refuses mysql.user, grants, CREATE USER and process lists even without rules', async () => {
    const c = await connect('app-plain');
    try {
      for (const sql of [
        'SELECT user, authentication_string FROM mysql.user',
        'SELECT * FROM mysql.global_priv',
        'SELECT/**/authentication_string/**/FROM/**/mysql.user',
        '/*!SELECT authentication_string FROM mysql.user*/',
        'SHOW GRANTS',
        `SHOW GRANTS FOR '${my.users.native.user}'@'%'`,
        `SHOW CREATE USER '${my.users.native.user}'@'%'`,
        'SHOW PROCESSLIST',
        'SHOW FULL PROCESSLIST',
        'SELECT INFO FROM information_schema.PROCESSLIST',
        'USE mysql',
      ]) {
        const text = await outcome(c, sql);
        expect(text, sql).toMatch(/^ERROR 1142: .*gateway_protected/);
      }
      await expect(c.changeUser({ database: 'mysql' })).rejects.toThrow();
    } finally {
      await c.end().catch(() => undefined);
    }
  });
});

describe('what cannot show masked data passes, intact (over-masking)', () => {
  it('CTEs over clear columns, counts, dates, joins on ids come back as they are', async () => {
    const c = await connect();
    try {
      const [cte] = await c.query('WITH c AS (SELECT id, name FROM accounts) SELECT * FROM c ORDER BY id');
      expect(cte).toEqual([
        { id: 1, name: 'ann' },
        { id: 2, name: 'bob' },
      ]);
      const [counts] = await c.query('SELECT COUNT(email) AS n, COUNT(DISTINCT pin) AS p FROM accounts');
      expect(counts).toEqual([{ n: 2, p: 2 }]);
      const [bin] = await c.execute('SELECT COUNT(email) AS n FROM accounts WHERE id > ?', [0]);
      expect(bin).toEqual([{ n: 2 }]);
      // A number derived from a masked column is masked with a number-typed value (NULL), never a string.
      const [len] = await c.query('SELECT LENGTH(email) AS l FROM accounts WHERE id = 1');
      expect(len).toEqual([{ l: null }]);
      const [dates] = await c.query(
        "SELECT DATE_FORMAT(a.created, '%Y-%m') AS m, a.id FROM accounts a JOIN accounts b ON a.id = b.id ORDER BY a.id",
      );
      expect(dates).toEqual([
        { m: '2026-03', id: 1 },
        { m: '2026-05', id: 2 },
      ]);
    } finally {
      await c.end();
    }
  });

  it('session statements, metadata and warnings pass under masking', async () => {
    const c = await connect();
    try {
      const [vars] = await c.query("SHOW VARIABLES LIKE 'character_set_client'");
      expect(vars).toHaveLength(1);
      await c.query('SET NAMES utf8mb4');
      const [cs] = await c.query('SELECT @@character_set_client AS cs, @@character_set_results AS r');
      expect(cs).toEqual([{ cs: 'utf8mb4', r: 'utf8mb4' }]);
      const [cols] = await c.query("SHOW FULL COLUMNS FROM `accounts` FROM `app` LIKE '%'");
      expect((cols as Array<{ Field: string }>).map((r) => r.Field)).toEqual(['id', 'name', 'password_hash', 'email', 'pin', 'created']);
      const [info] = await c.query(
        "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'accounts' ORDER BY ORDINAL_POSITION",
      );
      expect((info as Array<{ COLUMN_NAME: string }>)[2]).toEqual({ COLUMN_NAME: 'password_hash', DATA_TYPE: 'varchar' });
      await c.query("PREPARE p FROM 'SELECT name FROM accounts WHERE id = ?'");
      await c.query('SET @i = 2');
      const [exec] = await c.query('EXECUTE p USING @i');
      expect(exec).toEqual([{ name: 'bob' }]);
      await c.query('DEALLOCATE PREPARE p');
      const [warnings] = await c.query('SHOW WARNINGS');
      expect(warnings).toEqual([]);
      const [[{ id }]] = (await c.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];
      await c.query(`KILL QUERY ${id}`);
      const cli = await mysqlCli(gw, {
        token: await gw.token({ connection: 'masked' }),
        database: 'masked',
        args: ['--show-warnings'],
        sql: "SELECT CAST('12abc' AS INT) AS n",
      });
      expect(cli.code, cli.stderr).toBe(0);
      expect(cli.stdout).toContain("Truncated incorrect INTEGER value: '12abc'".replace("'12abc'", "'[redacted]'"));
    } finally {
      await c.end();
    }
  });
});
