/**
 * Guardrails on MySQL connections: statements are read with the MySQL grammar and refused with an
 * ERR packet (1142, SQLSTATE 42000) naming the rule; the session goes on. What does not parse is
 * refused where a rule applies. Also: malformed packets and wrong sequence ids get the protocol's
 * error and never disturb another session (bounded fuzz).
 */
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
guardrails:
  - name: no-destructive
    connections: [app]
    deny:
      kinds: [ddl, truncate, grant, revoke]
      functions: [load_file, into_outfile, into_dumpfile, sleep]
      tables: [customers]
      unboundedWrites: true
    reason: ask the DBA on call
reviews:
  - name: item-inserts
    connections: [app-plain]
    match: { kinds: [insert] }
    approval: { approvers: [dba], timeout: 1m }
`,
  });
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await my?.cleanup();
});

async function connect(extra: mysql.ConnectionOptions = {}): Promise<mysql.Connection> {
  return mysql.createConnection({
    host: gw.host,
    port: gw.port,
    user: 'alice',
    password: await gw.token(),
    database: 'app',
    ssl: { rejectUnauthorized: false },
    multipleStatements: true,
    ...extra,
  });
}

describe('guardrails with the MySQL grammar', () => {
  it('refuses what the rules name with 1142/42000 and the rule, and the session goes on', async () => {
    const c = await connect();
    const refused: Array<[string, string]> = [
      ['DELETE FROM items', 'DELETE without WHERE on items (unbounded_write)'],
      ['UPDATE items SET price = 0', 'UPDATE without WHERE on items (unbounded_write)'],
      ['DROP TABLE items', 'DROP TABLE is not allowed (kind_denied)'],
      ["SELECT LOAD_FILE('/etc/passwd')", 'SELECT calls load_file() (function_denied)'],
      ["SELECT * FROM items INTO OUTFILE '/tmp/jitgate-out'", 'COPY calls into_outfile() (function_denied)'],
      ['SELECT email FROM app.customers', 'SELECT touches app.customers (table_denied)'],
      ['SELECT 1; DELETE FROM items', 'DELETE without WHERE on items (unbounded_write)'],
      ['SELEKT nonsense', 'the statement could not be parsed'],
    ];
    for (const [sql, why] of refused) {
      const err = await c.query(sql).then(
        () => undefined,
        (e: { errno: number; sqlState: string; message: string }) => e,
      );
      expect(err, sql).toMatchObject({ errno: 1142, sqlState: '42000' });
      expect(err!.message, sql).toContain('jitgate: statement refused by guardrail "no-destructive": ');
      expect(err!.message, sql).toContain(why);
    }
    expect(my.root('SELECT COUNT(*) FROM app.items').trim()).toBe('3');
    // Prepared statements are checked at PREPARE.
    await expect(c.execute('DELETE FROM items')).rejects.toMatchObject({ errno: 1142 });
    const [ok] = await c.query('DELETE FROM items WHERE id = 999');
    expect((ok as mysql.ResultSetHeader).affectedRows).toBe(0);
    const [rows] = await c.execute('SELECT name FROM items WHERE id = ?', [1]);
    expect(rows).toEqual([{ name: 'apple' }]);
    await c.end();
  });

  it('shows the refusal in the mariadb CLI and leaves other connections alone', async () => {
    const r = await mysqlCli(gw, { token: await gw.token(), sql: 'TRUNCATE TABLE items', args: ['--ssl'] });
    expect(r.stderr).toContain(
      'ERROR 1142 (42000) at line 1: jitgate: statement refused by guardrail "no-destructive": TRUNCATE is not allowed (kind_denied) — ask the DBA on call',
    );
    const other = await mysqlCli(gw, {
      token: await gw.token({ connection: 'app-plain' }),
      database: 'app-plain',
      sql: 'SELECT COUNT(*) FROM customers',
      args: ['--ssl'],
    });
    expect(other.stderr).toBe('');
    expect(other.stdout).toBe('COUNT(*)\n2\n');
  });
});

describe('holds', () => {
  const dave = { user: 'dave', groups: ['dba'], kind: 'human' as const, via: 'test' };

  async function pendingReview(): Promise<string> {
    const found = await waitUntil('a pending review', () => gw.gateway.reviews.list(dave, { state: 'pending' })[0], {
      seen: () => gw.gateway.reviews.list(dave, {}),
    });
    return found.id;
  }

  it(
    'keeps the client waiting until a reviewer decides: approval runs it, denial is an ERR naming the rule',
    { timeout: 20_000 },
    async () => {
      const c = await mysql.createConnection({
        host: gw.host,
        port: gw.port,
        user: 'alice',
        password: await gw.token({ connection: 'app-plain' }),
        database: 'app-plain',
      });
      const insert = c.query("INSERT INTO items (id, name) VALUES (70, 'held')");
      gw.gateway.reviews.approve(dave, await pendingReview());
      const [done] = await insert;
      expect((done as mysql.ResultSetHeader).affectedRows).toBe(1);

      const second = c.query("INSERT INTO items (id, name) VALUES (71, 'denied')").then(
        () => undefined,
        (e: { errno: number; message: string }) => e,
      );
      gw.gateway.reviews.deny(dave, await pendingReview(), 'not now');
      const err = await second;
      expect(err).toMatchObject({ errno: 1142 });
      expect(err!.message).toMatch(/^jitgate: statement denied by dave \(review [0-9a-f]{8}, rule "item-inserts"\): not now$/);
      expect(my.root('SELECT GROUP_CONCAT(id) FROM app.items WHERE id >= 70').trim()).toBe('70');
      const [after] = await c.query('SELECT COUNT(*) AS n FROM items');
      expect(after).toEqual([{ n: 4 }]);
      await c.query('DELETE FROM items WHERE id = 70');

      // KILL QUERY from another connection of the same person withdraws a held statement.
      const killer = await mysql.createConnection({
        host: gw.host,
        port: gw.port,
        user: 'alice',
        password: await gw.token({ connection: 'app-plain' }),
        database: 'app-plain',
      });
      const third = c.query("INSERT INTO items (id, name) VALUES (72, 'withdrawn')").then(
        () => undefined,
        (e: { errno: number; message: string }) => e,
      );
      const id = await pendingReview();
      await killer.query(`KILL QUERY ${c.threadId}`);
      expect(await third).toMatchObject({
        errno: 1317,
        message: 'Query execution was interrupted (canceling statement due to user request)',
      });
      expect(gw.gateway.reviews.get(dave, id).state).toBe('withdrawn');
      const [still] = await c.query('SELECT 1 AS one');
      expect(still).toEqual([{ one: 1 }]);
      await killer.end();
      await c.end();
    },
  );
});

/** A logged-in raw socket: mysql2 does the handshake, then the test writes bytes of its own. */
async function rawSession(): Promise<{ socket: net.Socket; read(): Promise<Buffer>; conn: mysql.Connection }> {
  const conn = await mysql.createConnection({ host: gw.host, port: gw.port, user: 'alice', password: await gw.token(), database: 'app' });
  const socket = (conn as unknown as { connection: { stream: net.Socket } }).connection.stream;
  socket.removeAllListeners('data');
  const chunks: Buffer[] = [];
  let wake: (() => void) | null = null;
  let closed = false;
  socket.on('data', (d: Buffer) => {
    chunks.push(d);
    wake?.();
  });
  socket.on('close', () => {
    closed = true;
    wake?.();
  });
  return {
    socket,
    conn,
    read: async () => {
      for (let i = 0; i < 100 && chunks.length === 0 && !closed; i++) await new Promise<void>((r) => ((wake = r), setTimeout(r, 50)));
      return Buffer.concat(chunks.splice(0));
    },
  };
}

function packetOf(payload: Buffer, seq: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUIntLE(payload.length, 0, 3);
  h[3] = seq;
  return Buffer.concat([h, payload]);
}

describe('bad input', () => {
  it('answers a command with a wrong sequence id with 1156 (08S01) and ends only that session', async () => {
    const bystander = await connect();
    const s = await rawSession();
    s.socket.write(packetOf(Buffer.from('\x03SELECT 1'), 3));
    const reply = await s.read();
    expect(reply[4]).toBe(0xff);
    expect(reply.readUInt16LE(5)).toBe(1156);
    expect(reply.toString('latin1', 8, 13)).toBe('08S01');
    expect(reply.toString('utf8', 13)).toContain('Got packets out of order');
    const [rows] = await bystander.query('SELECT 5 AS five');
    expect(rows).toEqual([{ five: 5 }]);
    await bystander.end();
  });

  it('refuses an oversize packet before login with an ERR packet instead of buffering it', async () => {
    const sock = net.connect({ host: gw.host, port: gw.port });
    const received: Buffer[] = [];
    await new Promise<void>((resolve) => {
      sock.once('data', () => {
        // A handshake response that claims 8 MB.
        const header = Buffer.from([0, 0, 0x80, 1]);
        sock.write(Buffer.concat([header, Buffer.alloc(1024)]));
        sock.on('data', (d: Buffer) => received.push(d));
      });
      sock.on('close', () => resolve());
      setTimeout(() => {
        sock.destroy();
        resolve();
      }, 5000);
    });
    const reply = Buffer.concat(received);
    expect(reply[4]).toBe(0xff);
    expect(reply.readUInt16LE(5)).toBe(1156);
    expect(reply.toString('utf8', 13)).toBe('Got a packet bigger than allowed');
  });

  it('answers COM_FIELD_LIST with the columns of a table, checked like a read of it', async () => {
    const s = await rawSession();
    s.socket.write(packetOf(Buffer.from('\x04items\0'), 0));
    const reply = await s.read();
    expect(reply.includes(Buffer.from('price'))).toBe(true);
    const firstBytes: number[] = [];
    for (let pos = 0; pos + 4 <= reply.length; pos += 4 + reply.readUIntLE(pos, 3)) firstBytes.push(reply[pos + 4]!);
    // One column definition per column (each starts with the catalog "def"), then the closing EOF/OK.
    expect(firstBytes).toEqual([3, 3, 3, 3, 0xfe]);
    s.socket.write(packetOf(Buffer.from('\x04customers\0'), 0));
    const refused = await s.read();
    expect(refused.readUInt16LE(5)).toBe(1142);
    expect(refused.toString('utf8', 13)).toContain('touches customers (table_denied)');
    s.socket.destroy();
  });

  it('refuses unsupported commands with 1227 and keeps the session', async () => {
    const s = await rawSession();
    s.socket.write(packetOf(Buffer.from([0x12, 0, 0, 0, 0]), 0)); // COM_BINLOG_DUMP
    const reply = await s.read();
    expect(reply.readUInt16LE(5)).toBe(1227);
    expect(reply.toString('utf8', 13)).toContain('COM_BINLOG_DUMP');
    s.socket.write(packetOf(Buffer.from([0x0e]), 0)); // COM_PING
    const pong = await s.read();
    expect(pong[4]).toBe(0x00);
    s.socket.destroy();
  });

  it('survives random bytes before and after login (bounded fuzz) while another session runs', async () => {
    const bystander = await connect();
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 30; i++) {
      const junk = Buffer.alloc(1 + rand(300));
      for (let j = 0; j < junk.length; j++) junk[j] = rand(256);
      if (i % 2 === 0) {
        // Before login: as the handshake response.
        const sock = net.connect({ host: gw.host, port: gw.port });
        await new Promise<void>((resolve) => {
          let sent = false;
          sock.on('data', () => {
            if (!sent) {
              sent = true;
              sock.write(packetOf(junk, 1));
            }
          });
          sock.on('close', () => resolve());
          sock.on('error', () => resolve());
          setTimeout(() => {
            sock.destroy();
            resolve();
          }, 3000);
        });
      } else {
        const s = await rawSession();
        s.socket.write(Buffer.concat([packetOf(junk, 0), junk]));
        await s.read();
        s.socket.destroy();
      }
      const [rows] = await bystander.query('SELECT ? AS i', [i]);
      expect(rows).toEqual([{ i }]);
    }
    await bystander.end();
  }, 60_000);
});
