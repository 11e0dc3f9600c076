/**
 * MySQL sessions are recorded through the same pipeline as PostgreSQL ones, and `jitgate replay`
 * prints them the way the mysql client did: prompts, bordered tables, row counts, Query OK lines,
 * ERROR lines, bound values of prepared statements.
 */
import { readFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestGateway } from './support/gateway.js';
import { startMariadb, type MariadbServer } from './support/mysql-server.js';
import { mysqlCli, startMysqlTestGateway, type MysqlTestGateway } from './support/mysql-gateway.js';
import { cli, filesUnder, decompressed, settledSession } from './support/recording.js';

let my: MariadbServer;
let gw: MysqlTestGateway;

beforeAll(async () => {
  my = await startMariadb();
  gw = await startMysqlTestGateway(my);
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await my?.cleanup();
});

describe('recording and replay', () => {
  it('replays a mysql2 session as a mysql client transcript', async () => {
    const token = await gw.token({ user: 'rec' });
    const c = await mysql.createConnection({
      host: gw.host,
      port: gw.port,
      user: 'rec',
      password: token,
      database: 'app',
      ssl: { rejectUnauthorized: false },
      multipleStatements: true,
      connectAttributes: { program_name: 'rec-test' },
    });
    await c.query('SELECT id, name, price FROM items ORDER BY id');
    await c.query("SELECT 1 AS one; UPDATE items SET name = 'apple' WHERE id = 1");
    await c.query('SELECT * FROM nowhere').catch(() => undefined);
    await c.execute('SELECT name, created FROM items WHERE id = ?', [2]);
    await c.end();
    const s = await settledSession(gw as unknown as TestGateway, { user: 'rec' });
    const replay = await cli(['replay', s.id.slice(0, 8), '--data-dir', gw.dataDir]);
    expect(replay.err).toBe('');
    const lines = replay.out.split('\n').filter((l) => !l.startsWith('-- access'));
    expect(lines[0]).toMatch(/^-- session [0-9a-f-]+: rec on app with rec-test from 127\.0\.0\.1:\d+, /);
    expect(lines.slice(1)).toEqual([
      'mysql [app]> SELECT id, name, price FROM items ORDER BY id',
      '+----+--------+-------+',
      '| id | name   | price |',
      '+----+--------+-------+',
      '|  1 | apple  |  1.50 |',
      '|  2 | banana |  0.25 |',
      '|  3 | cherry | 12.00 |',
      '+----+--------+-------+',
      '3 rows in set',
      '',
      "mysql [app]> SELECT 1 AS one; UPDATE items SET name = 'apple' WHERE id = 1",
      '+-----+',
      '| one |',
      '+-----+',
      '|   1 |',
      '+-----+',
      '1 row in set',
      '',
      'Query OK, 1 row affected',
      '',
      'mysql [app]> SELECT * FROM nowhere',
      "ERROR 1146 (42S02): Table 'app.nowhere' doesn't exist",
      'mysql [app]> SELECT name, created FROM items WHERE id = ?',
      '-- PREPARE 1',
      "-- bind prepared statement 1: $1 = '2'",
      '+--------+---------------------+',
      '| name   | created             |',
      '+--------+---------------------+',
      '| banana | 2026-02-03 04:05:06 |',
      '+--------+---------------------+',
      '1 row in set',
      '',
      expect.stringMatching(/^-- session ended .*\(client_quit\): 4 statements/),
      '',
    ]);
  });

  it('records a mariadb CLI session without the token or the backend password anywhere on disk', async () => {
    const token = await gw.token({ user: 'cli-rec' });
    const r = await mysqlCli(gw, { user: 'cli-rec', token, sql: "SELECT name FROM items WHERE id = 3; SELECT 'x' AS y", args: ['--ssl'] });
    expect(r.stderr).toBe('');
    const s = await settledSession(gw as unknown as TestGateway, { user: 'cli-rec' });
    const replay = await cli(['replay', s.id.slice(0, 8), '--data-dir', gw.dataDir]);
    // The CLI sends the two statements one by one, as its transcript shows them.
    expect(replay.out).toContain(
      [
        'mysql [app]> SELECT name FROM items WHERE id = 3',
        '+--------+',
        '| name   |',
        '+--------+',
        '| cherry |',
        '+--------+',
        '1 row in set',
        '',
        "mysql [app]> SELECT 'x' AS y",
        '+---+',
        '| y |',
        '+---+',
        '| x |',
        '+---+',
        '1 row in set',
        '',
      ].join('\n'),
    );
    for (const file of filesUnder(gw.dataDir)) {
      const text = file.endsWith('.gz') ? decompressed(file) : readFileSync(file).toString('latin1');
      expect(text.includes(token), file).toBe(false);
      expect(text.includes(my.users.native.password), file).toBe(false);
    }
  });
});
