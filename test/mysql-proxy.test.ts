/**
 * The MySQL listener end to end: the mariadb command-line client and the mysql2 driver through
 * jitgate to a private MariaDB. Handshake and token authentication (TLS full path, cached fast
 * path, RSA without TLS, native clients), TLS, queries, multi-results, prepared statements with
 * binary rows, packets over 16 MB, KILL QUERY, LOAD DATA LOCAL, COM_INIT_DB by connection name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, writeFileSync } from 'node:fs';
import type net from 'node:net';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariadb, type MariadbServer } from './support/mysql-server.js';
import { mysqlCli, startMysqlTestGateway, type MysqlTestGateway } from './support/mysql-gateway.js';
import { settledSession } from './support/recording.js';
import { waitUntil } from './support/wait.js';
import type { TestGateway } from './support/gateway.js';

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

/** Waits until the backend's processlist shows `n` sessions running the test's SLEEP(30). */
async function sleepRunning(n: 0 | 1): Promise<void> {
  const count = () => my.root("SELECT COUNT(*) FROM information_schema.processlist WHERE info = 'SELECT SLEEP(30) AS s'").trim();
  await waitUntil(n === 1 ? 'SLEEP(30) to run on the backend' : 'SLEEP(30) to stop on the backend', () => count() === String(n), {
    intervalMs: 25,
    seen: count,
  });
}

function connect(token: string, extra: mysql.ConnectionOptions = {}): Promise<mysql.Connection> {
  return mysql.createConnection({
    host: gw.host,
    port: gw.port,
    user: 'alice',
    password: token,
    database: 'app',
    ssl: { rejectUnauthorized: false },
    ...extra,
  });
}

async function authMethodOfLatest(user = 'alice'): Promise<string | null> {
  const s = await settledSession(gw as unknown as TestGateway, { user });
  const read = await gw.gateway.recording.read(s.id);
  const start = read!.result.events.find((e) => e.type === 'session_start');
  return (start?.data as { authMethod?: string } | undefined)?.authMethod ?? null;
}

describe('authentication', () => {
  it('takes the token over TLS on first use, then the cached fast path (mariadb CLI)', async () => {
    const token = await gw.token();
    const first = await mysqlCli(gw, { token, sql: 'SELECT id, name FROM items ORDER BY id', args: ['--ssl'] });
    expect(first.stderr).toBe('');
    expect(first.stdout).toBe('id\tname\n1\tapple\n2\tbanana\n3\tcherry\n');
    expect(await authMethodOfLatest()).toBe('caching_sha2_password (full, TLS)');
    const again = await mysqlCli(gw, { token, sql: 'SELECT DATABASE(), CURRENT_USER()', args: ['--ssl'] });
    expect(again.stdout).toContain(`app\t${my.users.native.user}@%`);
    expect(await authMethodOfLatest()).toBe('caching_sha2_password (fast)');
  });

  it('uses RSA for the first login without TLS (development mode), then the fast path', async () => {
    const token = await gw.token({ user: 'rsa-user' });
    const first = await mysql.createConnection({ host: gw.host, port: gw.port, user: 'rsa-user', password: token, database: 'app' });
    const [rows] = await first.query('SELECT 40 + 2 AS answer');
    expect(rows).toEqual([{ answer: 42 }]);
    await first.end();
    expect(await authMethodOfLatest('rsa-user')).toBe('caching_sha2_password (full, RSA)');
  });

  it('checks a mysql_native_password scramble once the token is known, and switches unknown ones to caching_sha2', async () => {
    const token = await gw.token({ user: 'native-user' });
    const native = { authPlugins: {}, ssl: { rejectUnauthorized: false } };
    // mysql2 answers the greeting with mysql_native_password; the gateway switches it to caching_sha2 (full, TLS).
    const c1 = await connect(token, { user: 'native-user', ...native });
    await c1.end();
    expect(await authMethodOfLatest('native-user')).toMatch(/^caching_sha2_password/);
    const cli = await mysqlCli(gw, {
      user: 'native-user',
      token,
      sql: 'SELECT 1',
      args: ['--ssl', '--default-auth=mysql_native_password'],
    });
    expect(cli.stderr).toBe('');
    expect(await authMethodOfLatest('native-user')).toBe('mysql_native_password');
  });

  it('refuses a wrong, an expired and a missing token with 1045, and an unknown database with 1049', async () => {
    await gw.token();
    const wrong = await mysqlCli(gw, { token: 'jg_not-a-token', sql: 'SELECT 1', args: ['--ssl'] });
    expect(wrong.stderr).toContain("ERROR 1045 (28000): Access denied for user 'alice' (using password: YES)");
    // Issued a minute ago for a millisecond: expired, with no wait.
    const expired = await gw.token({ ttlMs: 1, now: Date.now() - 60_000 });
    const late = await mysqlCli(gw, { token: expired, sql: 'SELECT 1', args: ['--ssl'] });
    expect(late.stderr).toContain('ERROR 1045 (28000)');
    const none = await mysqlCli(gw, { token: '', sql: 'SELECT 1', args: ['--ssl'] });
    expect(none.stderr).toContain('ERROR 1045 (28000)');
    const unknown = await mysqlCli(gw, {
      token: await gw.token({ connection: 'nope' }),
      database: 'nope',
      sql: 'SELECT 1',
      args: ['--ssl'],
    });
    expect(unknown.stderr).toContain("ERROR 1049 (42000): Unknown database 'nope'");
    // Without a database a login opens the user's only MySQL connection (test/mysql-faults.test.ts); alice has two.
    await gw.token({ connection: 'app-plain' });
    const noDb = await mysqlCli(gw, { token: await gw.token(), database: '', sql: 'SELECT 1', args: ['--ssl'] });
    expect(noDb.stderr).toContain('No database selected: jitgate needs database = the name of the connection');
  });

  it('logs in to a caching_sha2_password backend: full path over TLS, then the fast path; RSA without TLS', async () => {
    // The backend here is a second gateway, a real caching_sha2_password server (MariaDB has none).
    const tokenForFront = await gw.token({ user: 'front' });
    const front = await startMysqlTestGateway(my, {
      env: { CHAIN_TOKEN: tokenForFront },
      extraConnections: [
        `{ name: chained, type: mysql, host: 127.0.0.1, port: ${gw.port}, database: app, user: front, password: env:CHAIN_TOKEN, tls: { mode: require } }`,
      ],
    });
    try {
      for (const [connection, expected] of [
        ['chained', 'caching_sha2_password (full, TLS)'],
        ['chained', 'caching_sha2_password (fast)'],
      ] as const) {
        const r = await mysqlCli(front, {
          token: await front.token({ connection }),
          database: connection,
          sql: 'SELECT name FROM items WHERE id = 1',
          args: ['--ssl'],
        });
        expect(r.stderr).toBe('');
        expect(r.stdout).toBe('name\napple\n');
        expect(await authMethodOfLatest('front')).toBe(expected);
      }
      // A new token: no cached hash yet, and no TLS on this leg: the RSA exchange.
      const rsaFront = await startMysqlTestGateway(my, {
        env: { CHAIN_TOKEN: await gw.token({ user: 'front-rsa' }) },
        extraConnections: [
          `{ name: chained-rsa, type: mysql, host: 127.0.0.1, port: ${gw.port}, database: app, user: front-rsa, password: env:CHAIN_TOKEN, tls: { mode: disable } }`,
        ],
      });
      try {
        const r = await mysqlCli(rsaFront, {
          token: await rsaFront.token({ connection: 'chained-rsa' }),
          database: 'chained-rsa',
          sql: 'SELECT 1 AS one',
          args: ['--ssl'],
        });
        expect(r.stderr).toBe('');
        expect(await authMethodOfLatest('front-rsa')).toBe('caching_sha2_password (full, RSA)');
      } finally {
        await rsaFront.close();
      }
    } finally {
      await front.close();
    }
  }, 60_000);

  it('requires TLS outside development mode', async () => {
    const strict = await startMysqlTestGateway(my, { tlsRequired: true });
    try {
      const token = await strict.token();
      const plain = await mysqlCli(strict, { token, sql: 'SELECT 1', args: ['--skip-ssl'] });
      expect(plain.stderr).toContain('ERROR 3159 (HY000): Connections using insecure transport are prohibited');
      const secure = await mysqlCli(strict, { token, sql: 'SELECT @@have_ssl', args: ['--ssl'] });
      expect(secure.stderr).toBe('');
    } finally {
      await strict.close();
    }
  });
});

describe('queries', () => {
  it('relays multi-statements as multi-result sets and keeps the session usable after errors', async () => {
    const token = await gw.token();
    const r = await mysqlCli(gw, {
      token,
      sql: "SELECT 1 AS a; SELECT name FROM items WHERE id = 2; UPDATE items SET name = name WHERE id = 1; SELECT 'done' AS b",
      args: ['--ssl'],
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('a\n1\nname\nbanana\nb\ndone\n');
    const c = await connect(token, { multipleStatements: true });
    const [results] = await c.query('SELECT 1 AS x; SELECT 2 AS y');
    expect(results).toEqual([[{ x: 1 }], [{ y: 2 }]]);
    await expect(c.query('SELECT * FROM missing_table')).rejects.toThrow(/Table 'app.missing_table' doesn't exist/);
    const [after] = await c.query('SELECT COUNT(*) AS n FROM items');
    expect(after).toEqual([{ n: 3 }]);
    await c.ping();
    await c.end();
  });

  it('runs prepared statements with binary rows of every common type', async () => {
    const c = await connect(await gw.token());
    const [rows] = await c.execute(
      'SELECT id, name, price, created, CAST(id AS DOUBLE) * 1.5 AS d, NULL AS n FROM items WHERE id <= ? ORDER BY id',
      [2],
    );
    expect(rows).toEqual([
      { id: 1, name: 'apple', price: '1.50', created: new Date(2026, 0, 2, 3, 4, 5), d: 1.5, n: null },
      { id: 2, name: 'banana', price: '0.25', created: new Date(2026, 1, 3, 4, 5, 6), d: 3, n: null },
    ]);
    // Re-executing reuses the server-side statement; closing it frees it.
    const [again] = await c.execute(
      'SELECT id, name, price, created, CAST(id AS DOUBLE) * 1.5 AS d, NULL AS n FROM items WHERE id <= ? ORDER BY id',
      [1],
    );
    expect((again as unknown[]).length).toBe(1);
    c.unprepare('SELECT id, name, price, created, CAST(id AS DOUBLE) * 1.5 AS d, NULL AS n FROM items WHERE id <= ? ORDER BY id');
    const [ins] = await c.execute('INSERT INTO items (id, name, price) VALUES (?, ?, ?)', [50, 'prepared', 9.99]);
    expect((ins as mysql.ResultSetHeader).affectedRows).toBe(1);
    await c.query('DELETE FROM items WHERE id = 50');
    await c.end();
  });

  it('carries values over 16 MB both ways (split packets)', async () => {
    const c = await connect(await gw.token());
    const big = randomBytes(20 * 1024 * 1024);
    await c.execute('INSERT INTO blobs (id, data) VALUES (?, ?)', [1, big]);
    const [rows] = await c.query('SELECT LENGTH(data) AS n, MD5(data) AS h, data FROM blobs WHERE id = 1');
    const row = (rows as Array<{ n: number; h: string; data: Buffer }>)[0]!;
    expect(row.n).toBe(big.length);
    expect(row.h).toBe(createHash('md5').update(big).digest('hex'));
    expect(Buffer.compare(row.data, big)).toBe(0);
    const [bin] = await c.execute('SELECT data FROM blobs WHERE id = ?', [1]);
    expect(Buffer.compare((bin as Array<{ data: Buffer }>)[0]!.data, big)).toBe(0);
    await c.query('DELETE FROM blobs');
    await c.end();
  }, 60_000);

  it('maps KILL QUERY to the backend connection of the session with that id (own sessions only)', async () => {
    const token = await gw.token();
    const sleeper = await connect(token);
    const killer = await connect(token);
    const running = sleeper.query('SELECT SLEEP(30) AS s').then(
      ([rows]) => ({ rows }),
      (err: Error) => ({ err }),
    );
    // The statement is running on the backend once the processlist shows it.
    await sleepRunning(1);
    await killer.query(`KILL QUERY ${sleeper.threadId}`);
    const outcome = await running;
    // MariaDB ends an interrupted SLEEP early with 1 (or the query with 1317).
    if ('rows' in outcome) expect(outcome.rows).toEqual([{ s: 1 }]);
    else expect(outcome.err.message).toMatch(/interrupted/);
    const [still] = await sleeper.query('SELECT 7 AS v');
    expect(still).toEqual([{ v: 7 }]);

    const bob = await connect(await gw.token({ user: 'bob' }), { user: 'bob' });
    await expect(bob.query(`KILL QUERY ${sleeper.threadId}`)).rejects.toThrow(`You are not owner of thread ${sleeper.threadId}`);
    await expect(bob.query('KILL 4242')).rejects.toThrow('Unknown thread id: 4242');
    await bob.end();
    await killer.query(`KILL ${sleeper.threadId}`);
    await expect(sleeper.query('SELECT 1')).rejects.toThrow();
    await killer.end();
  }, 40_000);

  it('ends a session killed by an administrator: the running query gets the reason, the backend query stops', async () => {
    const c = await connect(await gw.token({ user: 'victim' }), { user: 'victim' });
    const running = c.query('SELECT SLEEP(30) AS s').then(
      () => undefined,
      (err: { errno: number; message: string }) => err,
    );
    await sleepRunning(1);
    const live = (await gw.gateway.store.listSessions({ active: true })).find((s) => s.user === 'victim')!;
    expect(gw.gateway.recording.kill(live.id, 'dave', 'incident 7')).toBe('killed');
    const err = await running;
    expect(err).toMatchObject({ errno: 1927, message: 'terminating connection: session ended by dave: incident 7' });
    await sleepRunning(0);
    c.destroy();
  }, 30_000);

  it('ends live sessions when their grant is revoked, and refuses new logins with the reason', async () => {
    const { token, grantId } = await gw.issue({ user: 'revokee' });
    const c = await connect(token, { user: 'revokee' });
    const running = c.query('SELECT SLEEP(30) AS s').then(
      () => undefined,
      (err: { errno: number; message: string }) => err,
    );
    await sleepRunning(1);
    await gw.gateway.access.revoke({ user: 'revokee', groups: [], kind: 'human', via: 'test' }, grantId, 'done for today');
    const err = await running;
    expect(err?.message).toMatch(/revoked by revokee: done for today/);
    const again = await mysqlCli(gw, { user: 'revokee', token, sql: 'SELECT 1', args: ['--ssl'] });
    expect(again.stderr).toMatch(/ERROR 1045 \(28000\).*revoked by revokee: done for today/);
    c.destroy();
  }, 30_000);

  it('refuses LOAD DATA LOCAL unless the connection allows it', async () => {
    const file = join(gw.dataDir, 'rows.tsv');
    writeFileSync(file, '90\tlocal\t1.00\t\\N\n');
    const r = await mysqlCli(gw, {
      token: await gw.token(),
      sql: `LOAD DATA LOCAL INFILE '${file}' INTO TABLE items`,
      args: ['--ssl', '--local-infile=1'],
    });
    expect(r.stderr).toContain(
      'ERROR 1148 (42000) at line 1: jitgate: LOAD DATA LOCAL is not allowed on this connection (local_infile_denied)',
    );
    expect(my.root('SELECT COUNT(*) FROM app.items WHERE id = 90').trim()).toBe('0');

    const open = await startMysqlTestGateway(my, {
      extraConnections: [
        `{ name: loader, type: mysql, host: 127.0.0.1, port: ${my.port}, database: app, user: ${my.users.native.user}, password: env:MY_NATIVE, tls: { mode: disable }, localInfile: true }`,
      ],
    });
    try {
      const ok = await mysqlCli(open, {
        token: await open.token({ connection: 'loader' }),
        database: 'loader',
        sql: `LOAD DATA LOCAL INFILE '${file}' INTO TABLE items; SELECT name FROM items WHERE id = 90`,
        args: ['--ssl', '--local-infile=1'],
      });
      expect(ok.stderr).toBe('');
      expect(ok.stdout).toContain('local');
      // mysql2 checks the sequence ids of the answer that follows the file's packets.
      writeFileSync(file, '91\tstreamed\t2.00\t\\N\n');
      const c = await mysql.createConnection({
        host: open.host,
        port: open.port,
        user: 'alice',
        password: await open.token({ connection: 'loader' }),
        database: 'loader',
        ssl: { rejectUnauthorized: false },
        flags: ['+LOCAL_FILES'],
      });
      const [loaded] = await c.query({
        sql: `LOAD DATA LOCAL INFILE '${file}' INTO TABLE items`,
        infileStreamFactory: () => createReadStream(file),
      });
      expect((loaded as mysql.ResultSetHeader).affectedRows).toBe(1);
      // On the wire: the answer after the file's packets carries the next sequence id.
      const stream = (c as unknown as { connection: { stream: net.Socket } }).connection.stream;
      stream.removeAllListeners('data');
      const got: Buffer[] = [];
      stream.on('data', (d: Buffer) => got.push(d));
      const frame = (payload: Buffer, seq: number) =>
        Buffer.concat([Buffer.from([payload.length & 0xff, (payload.length >> 8) & 0xff, payload.length >> 16, seq]), payload]);
      const waitFor = async (n: number) => {
        await waitUntil(`${n} bytes from the gateway`, () => Buffer.concat(got).length >= n, {
          seen: () => Buffer.concat(got).toString('hex'),
        });
        return Buffer.concat(got.splice(0));
      };
      stream.write(frame(Buffer.from(`\x03LOAD DATA LOCAL INFILE 'x' INTO TABLE items`), 0));
      const request = await waitFor(5);
      expect(request[3]).toBe(1);
      expect(request[4]).toBe(0xfb);
      stream.write(Buffer.concat([frame(Buffer.from('92\twire\t3.00\t\\N\n'), 2), frame(Buffer.alloc(0), 3)]));
      const answer = await waitFor(5);
      expect(answer[4]).toBe(0x00);
      expect(answer[3]).toBe(4);
      c.destroy();
    } finally {
      await open.close();
      my.root('DELETE FROM app.items WHERE id IN (90, 91, 92)');
    }
  });

  it('treats the database name as the connection: USE of this one works, another one is refused', async () => {
    const token = await gw.token();
    const r = await mysqlCli(gw, { token, sql: 'USE app; SELECT DATABASE()', args: ['--ssl'] });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('app');
    const other = await mysqlCli(gw, { token, sql: 'USE `app-plain`', args: ['--ssl'] });
    expect(other.stderr).toContain(
      'ERROR 1044 (42000) at line 1: jitgate: this session is on connection "app"; to use connection "app-plain", connect again with database "app-plain"',
    );
    const c = await connect(token);
    await c.changeUser({ database: 'app' }).catch(() => undefined);
    await c.end().catch(() => undefined);
  });
});
