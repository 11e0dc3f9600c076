import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemoDatabase, type DemoDatabase } from './demo-db.js';
import { generateDemoData, luhnValid } from './seed.js';

let root: string;
let db: DemoDatabase;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'jitgate-demo-'));
  db = await startDemoDatabase(path.join(root, 'main'), { queueTimeoutMs: 1_500, handshakeTimeoutMs: 1_500 });
});

afterAll(async () => {
  await db?.close();
  await fs.rm(root, { recursive: true, force: true });
});

function client(extra: Partial<pg.ClientConfig> = {}): pg.Client {
  return new pg.Client({ host: db.host, port: db.port, user: 'alice', database: 'demo', ...extra });
}

async function withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = client();
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Open a raw TCP connection, send bytes, collect everything until the server closes or `until` holds. */
function raw(bytes: Buffer, until?: (data: Buffer) => boolean, timeoutMs = 5_000): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(db.port, db.host);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ data: Buffer.concat(chunks), closed: false });
    }, timeoutMs);
    s.on('connect', () => s.write(bytes));
    s.on('data', (c) => {
      chunks.push(c);
      const data = Buffer.concat(chunks);
      if (until?.(data)) {
        clearTimeout(timer);
        s.destroy();
        resolve({ data, closed: false });
      }
    });
    s.on('error', reject);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), closed: true });
    });
  });
}

const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const request = (code: number) => Buffer.concat([int32(8), int32(code)]);

describe('startDemoDatabase', () => {
  it('starts on loopback, seeds customers and orders, and answers the pg driver', async () => {
    expect(db.host).toBe('127.0.0.1');
    expect(db.port).toBeGreaterThan(0);
    expect(db.seeded).toBe(true);
    await withClient(async (c) => {
      const { rows } = await c.query<{ customers: number; orders: number; dangling: number }>(
        `SELECT (SELECT count(*)::int FROM customers) AS customers,
                (SELECT count(*)::int FROM orders) AS orders,
                (SELECT count(*)::int FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL) AS dangling`,
      );
      expect(rows[0]).toEqual({ customers: 200, orders: generateDemoData().orders.length, dangling: 0 });
      expect(rows[0]?.orders).toBeGreaterThan(200);
    });
  });

  it('serves extended-protocol queries with parameters and named prepared statements', async () => {
    const expected = generateDemoData().customers[41];
    await withClient(async (c) => {
      const byId = await c.query({ text: 'SELECT id, full_name, email, country FROM customers WHERE id = $1', values: [42] });
      expect(byId.rows).toEqual([{ id: 42, full_name: expected?.full_name, email: expected?.email, country: expected?.country }]);
      const named = { name: 'by_country', text: 'SELECT count(*)::int AS n FROM customers WHERE country = $1' };
      const us = await c.query({ ...named, values: ['US'] });
      const gb = await c.query({ ...named, values: ['GB'] });
      expect(us.rows[0].n + gb.rows[0].n).toBeGreaterThan(0);
      // binary-ish types survive the round trip
      const t = await c.query('SELECT $1::timestamptz AS at, $2::numeric AS amount', ['2024-05-01T10:00:00Z', '12.50']);
      expect(t.rows[0].at.toISOString()).toBe('2024-05-01T10:00:00.000Z');
      expect(t.rows[0].amount).toBe('12.50');
    });
  });

  it('holds realistic sensitive data: Luhn-valid card numbers, bcrypt-shaped hashes, unique emails', async () => {
    await withClient(async (c) => {
      const { rows } = await c.query<{ email: string; phone: string; card_number: string; password_hash: string }>(
        'SELECT email, phone, card_number, password_hash FROM customers ORDER BY id',
      );
      expect(rows).toHaveLength(200);
      for (const r of rows) {
        expect(luhnValid(r.card_number), r.card_number).toBe(true);
        expect(r.password_hash).toMatch(/^\$2[ab]\$1[02]\$[./A-Za-z0-9]{53}$/);
        expect(r.email).toMatch(/^[a-z.0-9]+@(mail\.)?example\.(com|net|org)$/);
        expect(r.phone).toMatch(/^\+\d{1,2} /);
      }
      expect(new Set(rows.map((r) => r.email)).size).toBe(200);
    });
  });

  it('serves several sessions at once, taking turns on PGlite between transactions', async () => {
    const a = client();
    const b = client();
    await Promise.all([a.connect(), b.connect()]);
    try {
      const [x, y] = await Promise.all([a.query('SELECT 1 AS one'), b.query('SELECT count(*)::int AS n FROM customers')]);
      expect(x.rows).toEqual([{ one: 1 }]);
      expect(y.rows).toEqual([{ n: 200 }]);
      // The same statement name in two sessions: each has its own.
      const [p, q] = await Promise.all([
        a.query({ name: 'same', text: 'SELECT $1::int + 1 AS v', values: [1] }),
        b.query({ name: 'same', text: "SELECT $1::text || '!' AS v", values: ['b'] }),
      ]);
      expect(p.rows).toEqual([{ v: 2 }]);
      expect(q.rows).toEqual([{ v: 'b!' }]);
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });

  it('lets a transaction hold the database for its session; the others wait and then run', async () => {
    const a = client();
    const b = client();
    await Promise.all([a.connect(), b.connect()]);
    try {
      await a.query('BEGIN');
      await a.query(`UPDATE customers SET country = country WHERE id = 1`);
      let bDone = false;
      const waiting = b.query('SELECT 2 AS two').then((r) => {
        bDone = true;
        return r;
      });
      // b cannot run inside a's transaction; a goes on undisturbed.
      expect((await a.query('SELECT 3 AS three')).rows).toEqual([{ three: 3 }]);
      expect(bDone).toBe(false);
      await a.query('COMMIT');
      expect((await waiting).rows).toEqual([{ two: 2 }]);
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });

  it('answers a request that waited too long with 55P03 saying why, and the session stays usable', async () => {
    const a = client();
    const b = client();
    await Promise.all([a.connect(), b.connect()]);
    try {
      await a.query('BEGIN');
      const t0 = Date.now();
      const err = (await b.query('SELECT 1').catch((e: unknown) => e)) as pg.DatabaseError;
      expect(err).toBeInstanceOf(Error);
      expect(err.code).toBe('55P03');
      expect(err.message).toMatch(
        /the demo database is busy: session \d+ has held it for \d+s \(in a transaction\)\. PGlite has one backend, shared by every session in turn/,
      );
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1_400);
      // extended protocol too (Parse/Bind/Execute/Sync): one error, then the session is ready again
      const ext = (await b.query('SELECT $1::int AS v', [5]).catch((e: unknown) => e)) as pg.DatabaseError;
      expect(ext.code).toBe('55P03');
      await a.query('COMMIT');
      expect((await b.query('SELECT $1::int AS v', [6])).rows).toEqual([{ v: 6 }]);
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });

  it("names a session's statements as the session named them in errors", async () => {
    const body = Buffer.from('user\0alice\0database\0demo\0\0');
    const startup = Buffer.concat([int32(8 + body.length), int32(196608), body]);
    const bindBody = Buffer.from('\0nope\0\0\0\0\0\0\0', 'latin1'); // portal "", statement "nope", no formats/params/results
    const bind = Buffer.concat([Buffer.from('B'), int32(4 + bindBody.length), bindBody]);
    const sync = Buffer.concat([Buffer.from('S'), int32(4)]);
    const { data } = await raw(
      Buffer.concat([startup, bind, sync]),
      (d) => d.toString('latin1').includes('does not exist') && d.subarray(-6).equals(Buffer.from('Z\0\0\0\x05I')),
    );
    expect(data.toString('latin1')).toContain('prepared statement "nope" does not exist');
    expect(data.toString('latin1')).not.toMatch(/jg\d+_/);
  });

  it('cleans up after a session that leaves: open transaction rolled back, its prepared statements closed', async () => {
    const a = client();
    a.on('error', () => undefined); // its socket is cut below on purpose
    await a.connect();
    await a.query({ name: 'stmt1', text: 'SELECT 1' });
    await a.query('BEGIN');
    await a.query(`INSERT INTO orders (customer_id, status, total, currency) VALUES (1, 'pending', 1, 'USD')`);
    // disconnect without COMMIT or Terminate
    (a as unknown as { connection: { stream: net.Socket } }).connection.stream.destroy();

    await withClient(async (b) => {
      const { rows } = await b.query(`SELECT count(*)::int AS n FROM orders WHERE total = 1 AND status = 'pending'`);
      expect(rows[0].n).toBe(0);
      await expect
        .poll(async () => (await b.query(`SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE '%stmt1'`)).rows[0].n, {
          message: 'the prepared statement to be deallocated',
        })
        .toBe(0);
    });
  });

  it('declines SSL and GSSAPI encryption, then serves the startup that follows', async () => {
    const startup = (() => {
      const body = Buffer.from('user\0alice\0database\0demo\0\0');
      return Buffer.concat([int32(8 + body.length), int32(196608), body]);
    })();
    const readyIdle = Buffer.from('Z\0\0\0\x05I');
    const { data } = await raw(Buffer.concat([request(80877104), request(80877103), startup]), (d) => d.includes(readyIdle));
    expect(data.subarray(0, 2).toString()).toBe('NN');
    expect(data[2]).toBe(0x52); // AuthenticationOk
    expect(data.includes(readyIdle)).toBe(true); // ReadyForQuery idle

    const withSsl = client({ ssl: { rejectUnauthorized: false } });
    await expect(withSsl.connect()).rejects.toThrow(/does not support SSL/);
  });

  it('closes a CancelRequest at once, even while another session holds the database', async () => {
    await withClient(async () => {
      const t0 = Date.now();
      const res = await raw(Buffer.concat([int32(16), int32(80877102), int32(1), int32(2)]));
      expect(res.closed).toBe(true);
      expect(Date.now() - t0).toBeLessThan(1_000);
    });
  });

  it('answers garbage and unsupported protocol versions with an ErrorResponse, and silence with a timeout', async () => {
    const garbage = await raw(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(garbage.closed).toBe(true);
    expect(garbage.data[0]).toBe(0x45);
    expect(garbage.data.toString()).toContain('C08P01');

    const v2 = await raw(Buffer.concat([int32(8), int32(0x00020000)]));
    expect(v2.data.toString()).toContain('C0A000');
    expect(v2.data.toString()).toContain('unsupported frontend protocol 2.0');

    const silent = await raw(Buffer.alloc(0));
    expect(silent.closed).toBe(true);
    expect(silent.data.toString()).toContain('no startup packet');
  });

  it('negotiates protocol 3.2 down to 3.0', async () => {
    const body = Buffer.from('user\0alice\0database\0demo\0_pq_.fancy\0on\0\0');
    const startup = Buffer.concat([int32(8 + body.length), int32(0x00030002), body]);
    const { data } = await raw(startup, (d) => d.includes(Buffer.from('Z\0\0\0\x05I')));
    expect(data[0]).toBe(0x76); // NegotiateProtocolVersion
    expect(data.readInt32BE(5)).toBe(0);
    expect(data.readInt32BE(9)).toBe(1);
    expect(data.toString()).toContain('_pq_.fancy');
    const next = 1 + data.readInt32BE(1);
    expect(data[next]).toBe(0x52); // AuthenticationOk
  });

  it('runs queries in a worker: the caller thread keeps its event loop', async () => {
    await withClient(async (c) => {
      // If PGlite ran on this thread, the sleep would block it and no timer could fire before the
      // result; from a worker, this thread stays free. (One tick is the evidence, not a rate.)
      let done = false;
      let tickedWhileRunning = false;
      const iv = setInterval(() => {
        if (!done) tickedWhileRunning = true;
      }, 20);
      await c.query('SELECT pg_sleep(0.5)');
      done = true;
      clearInterval(iv);
      expect(tickedWhileRunning).toBe(true);
    });
  });

  it('offers direct queries outside the client queue', async () => {
    const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM customers WHERE country = $1', ['GB']);
    expect(rows[0]?.n).toBeGreaterThan(0);
  });
});

describe('startDemoDatabase persistence', () => {
  // Creates and seeds a database, then opens it twice more: slow on a loaded machine.
  it('persists data, does not reseed, and refuses a second opener of the same directory', { timeout: 180_000 }, async () => {
    const dir = path.join(root, 'persist');
    const first = await startDemoDatabase(dir);
    try {
      expect(first.seeded).toBe(true);
      await expect(startDemoDatabase(dir)).rejects.toThrow(/already open in this process/);
      await first.query('DELETE FROM orders WHERE customer_id = 1');
      await first.query('DELETE FROM customers WHERE id = 1');
    } finally {
      await first.close();
    }
    await expect(fs.stat(`${path.join(dir, 'demo-pg')}.lock`)).rejects.toThrow();

    // A lock file left by a live foreign process blocks; one left by a dead process does not.
    const lock = `${path.join(dir, 'demo-pg')}.lock`;
    await fs.writeFile(lock, `${process.ppid}\n`);
    await expect(startDemoDatabase(dir)).rejects.toThrow(`is in use by process ${process.ppid}`);
    await fs.writeFile(lock, '999999999\n');

    const second = await startDemoDatabase(dir);
    try {
      expect(second.seeded).toBe(false);
      const c = new pg.Client({ host: second.host, port: second.port, user: 'postgres', database: 'postgres' });
      await c.connect();
      const { rows } = await c.query('SELECT count(*)::int AS n FROM customers');
      expect(rows[0].n).toBe(199);
      await c.end();
    } finally {
      await second.close();
    }
  });
});

describe('startDemoDatabase recovery', () => {
  it('refuses COPY FROM STDIN with a clear error, restarts PGlite, and every session carries on', async () => {
    const other = client();
    await other.connect();
    try {
      await withClient(async (c) => {
        const err = (await c.query('COPY orders FROM STDIN').catch((e: unknown) => e)) as pg.DatabaseError;
        expect(err.code).toBe('0A000');
        expect(err.message).toContain('COPY FROM STDIN is not available on the demo database');
        expect((await c.query('SELECT count(*)::int AS n FROM customers')).rows[0].n).toBe(200);
      });
      expect((await other.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await other.end();
    }
  });
});
