/**
 * What clients and tools notice about the MySQL listener besides statements: the version the
 * greeting announces (the backend's own, so tools pick MariaDB's dialect), CONNECTION_ID() and KILL
 * naming the same session, a masked session taking one backend connection at login, a full backend
 * answering with its own 1040 Too many connections.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariadb, type MariadbServer } from './support/mysql-server.js';
import { mysqlCli, startMysqlTestGateway, type MysqlTestGateway } from './support/mysql-gateway.js';
import { waitUntil } from './support/wait.js';

let my: MariadbServer;
let gw: MysqlTestGateway;

beforeAll(async () => {
  my = await startMariadb();
  gw = await startMysqlTestGateway(my, {
    extraYaml: `
masking:
  rules:
    - name: pii
      connections: [app-plain]
      columns:
        customers.email: email
`,
  });
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await my?.cleanup();
});

async function connect(connection = 'app'): Promise<mysql.Connection> {
  return mysql.createConnection({
    host: gw.host,
    port: gw.port,
    user: 'alice',
    password: await gw.token({ connection }),
    database: connection,
    ssl: { rejectUnauthorized: false },
  });
}

/** The server version of a greeting (protocol 10: version string after the first byte). */
function greetingVersion(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('data', (d) => {
      s.destroy();
      resolve(d.toString('latin1', 5, d.indexOf(0, 5)));
    });
    s.once('error', reject);
  });
}

function globalStatus(name: string): number {
  return Number(my.root(`SHOW GLOBAL STATUS LIKE '${name}'`).trim().split('\t')[1]);
}

describe('the MySQL listener as tools see it', () => {
  it("announces the backend's own version with a jitgate suffix", async () => {
    const backend = await greetingVersion(my.port);
    expect(backend).toMatch(/MariaDB/);
    expect(await greetingVersion(gw.port)).toBe(`${backend}-jitgate`);
    const cli = await mysqlCli(gw, { token: await gw.token(), sql: 'status', args: ['--ssl'] });
    expect(cli.stdout).toMatch(/Server:\s+MariaDB/);
  });

  it('KILL accepts the id CONNECTION_ID() returns, for the own sessions only', async () => {
    const victim = await connect();
    const killer = await connect();
    try {
      const [[{ id }]] = (await victim.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];
      const running = victim.query('SELECT SLEEP(30) AS s').then(
        () => 'finished',
        (err: Error) => err.message,
      );
      await expect
        .poll(() => my.root(`SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ${id} AND INFO LIKE 'SELECT SLEEP%'`).trim(), {
          timeout: 10_000,
          message: 'SLEEP to run on the backend',
        })
        .toBe('1');
      await killer.query(`KILL QUERY ${id}`);
      expect(await running).toMatch(/interrupted/);
      await killer.query(`KILL CONNECTION ${id}`);
      await expect(victim.query('SELECT 1')).rejects.toThrow();
    } finally {
      victim.destroy();
      await killer.end();
    }
  });

  it("a login without a database opens the user's only MySQL connection (mysqlslap), and stays refused with several", async () => {
    const token = await gw.token({ user: 'solo', connection: 'app' });
    const cli = await mysqlCli(gw, { user: 'solo', token, database: '', sql: 'SELECT DATABASE() AS db', args: ['--ssl'] });
    expect(cli.stderr).toBe('');
    expect(cli.stdout).toContain('app');
    const slap = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(
        'mysqlslap',
        [
          '--no-defaults',
          `--host=${gw.host}`,
          `--port=${gw.port}`,
          '--user=solo',
          '--ssl',
          '--concurrency=2',
          '--iterations=1',
          '--query=SELECT 1',
          '--create-schema=app',
        ],
        { env: { ...process.env, MYSQL_PWD: token }, timeout: 60_000 },
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout + stderr }),
      );
    });
    expect(slap.out).toContain('Benchmark');
    expect(slap.code).toBe(0);
    const other = await gw.token({ user: 'duo', connection: 'app' });
    await gw.token({ user: 'duo', connection: 'app-plain' });
    const two = await mysqlCli(gw, { user: 'duo', token: other, database: '', sql: 'SELECT 1', args: ['--ssl'] });
    expect(two.stderr).toContain('No database selected');
  });

  it('a masked session takes one backend connection at login (its views are read over it)', async () => {
    const before = globalStatus('Connections');
    const sessions = await Promise.all(Array.from({ length: 8 }, () => connect('app-plain')));
    const opened = globalStatus('Connections') - before;
    await Promise.all(sessions.map((s) => s.end()));
    // Plus one: the root connection that reads the counter again.
    expect(opened).toBe(8 + 1);
  });

  it("a full backend answers with MySQL's own 1040, not an error that blames masking", async () => {
    // MariaDB's smallest limit is 10 (root on the socket keeps its extra connection).
    my.root('SET GLOBAL max_connections = 10');
    const held: mysql.Connection[] = [];
    try {
      let refusal: { errno?: number; message: string } | undefined;
      for (let i = 0; i < 14 && !refusal; i++) {
        try {
          held.push(await connect(i % 2 === 0 ? 'app' : 'app-plain'));
        } catch (err) {
          refusal = err as { errno?: number; message: string };
        }
      }
      expect(refusal?.errno).toBe(1040);
      expect(refusal?.message).toMatch(/Too many connections/);
      expect(refusal?.message).not.toMatch(/masking|catalog/);
    } finally {
      await Promise.all(held.map((c) => c.end()));
      // The sessions' backend connections close as the gateway notices the clients leave.
      await expect
        .poll(
          () => {
            try {
              my.root('SET GLOBAL max_connections = 151');
              return true;
            } catch {
              return false;
            }
          },
          { timeout: 10_000, message: 'the backend connections to close (max_connections settable again)' },
        )
        .toBe(true);
    }
  });
});

describe('graceful shutdown', () => {
  it('ends an idle session at once, and lets one inside a transaction commit it first', async () => {
    my.root('CREATE TABLE app.drained (n INT); GRANT ALL ON app.drained TO PUBLIC');
    const own = await startMysqlTestGateway(my);
    const open = async (user: string) =>
      mysql.createConnection({
        host: own.host,
        port: own.port,
        user,
        password: await own.token({ user }),
        database: 'app',
        ssl: { rejectUnauthorized: false },
      });
    const idle = await open('alice');
    const inTransaction = await open('bob');
    const errors = new Map<mysql.Connection, Error>();
    for (const c of [idle, inTransaction]) c.on('error', (err: Error) => errors.set(c, err));
    await inTransaction.query('BEGIN');
    await inTransaction.query('INSERT INTO drained VALUES (1)');
    const closing = own.close();
    // mysql2 reports a connection closed while idle as lost (the ERR 1053 before it has no command to go to).
    const idleEnded = await waitUntil('the idle session to end', () => errors.get(idle));
    expect(idleEnded.message).toMatch(/Server shutdown in progress|server closed the connection/);
    // The one in a transaction is still there: its COMMIT goes through.
    expect(errors.has(inTransaction)).toBe(false);
    await inTransaction.query('COMMIT');
    await closing;
    expect(my.root('SELECT COUNT(*) FROM app.drained').trim()).toBe('1');
    await Promise.all([idle, inTransaction].map((c) => c.end().catch(() => undefined)));
  }, 30_000);
});
