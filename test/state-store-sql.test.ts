/**
 * The SQL client both state stores stand on: the same statements, values, transactions and
 * migrations behave alike on the embedded SQLite file and on a real PostgreSQL.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { numberPlaceholders } from '../src/store/postgres-sql.js';
import type { SqlMigration } from '../src/store/sql.js';
import { stateStoreEngines } from './support/state-store.js';

const COUNTER: SqlMigration[] = [
  {
    version: 1,
    name: 'counter',
    sqlite: `CREATE TABLE counter (name TEXT PRIMARY KEY, n INTEGER NOT NULL, at INTEGER NOT NULL, blob BLOB) STRICT;`,
    postgres: `CREATE TABLE counter (name TEXT PRIMARY KEY, n INTEGER NOT NULL, at BIGINT NOT NULL, blob BYTEA);`,
  },
];

describe.each(stateStoreEngines())('the SQL client on $name', (engine) => {
  afterAll(() => engine.cleanup());

  it('round-trips text, epoch-ms integers, bytes and nulls, with ? parameters', async () => {
    const db = await engine.open();
    await db.migrate('t', COUNTER);
    const at = 1_790_000_000_123;
    const blob = Buffer.from([0, 1, 254, 255]);
    expect(await db.run(`INSERT INTO counter (name, n, at, blob) VALUES (?, ?, ?, ?)`, ["it's ?", 7, at, blob])).toEqual({ changes: 1 });
    await db.run(`INSERT INTO counter (name, n, at, blob) VALUES (?, ?, ?, ?)`, ['b', 1, at, null]);
    const row = await db.get<{ name: string; n: number; at: number; blob: Buffer }>(
      `SELECT name, n, at, blob FROM counter WHERE name = ? AND '?' = '?'`,
      ["it's ?"],
    );
    expect(row).toEqual({ name: "it's ?", n: 7, at, blob });
    expect(typeof row!.at).toBe('number');
    expect(await db.get(`SELECT count(*) AS c, sum(at) AS s FROM counter`)).toEqual({ c: 2, s: 2 * at });
    expect(await db.get(`SELECT * FROM counter WHERE name = ?`, ['none'])).toBeUndefined();
    expect(await db.run(`UPDATE counter SET n = n + 1 WHERE n >= ?`, [1])).toEqual({ changes: 2 });
    expect(await db.all(`SELECT name FROM counter ORDER BY name`)).toEqual([{ name: 'b' }, { name: "it's ?" }]);
    expect(await db.ping()).toBe(true);
  });

  it('commits a transaction whole or not at all', async () => {
    const db = await engine.open();
    await db.migrate('t', COUNTER);
    await db.transaction(async (tx) => {
      await tx.run(`INSERT INTO counter (name, n, at) VALUES ('a', 1, 0)`);
      await tx.run(`INSERT INTO counter (name, n, at) VALUES ('b', 1, 0)`);
    });
    await expect(
      db.transaction(async (tx) => {
        await tx.run(`INSERT INTO counter (name, n, at) VALUES ('c', 1, 0)`);
        await tx.run(`INSERT INTO counter (name, n, at) VALUES ('a', 1, 0)`);
      }),
    ).rejects.toThrow();
    expect((await db.all<{ name: string }>(`SELECT name FROM counter ORDER BY name`)).map((r) => r.name)).toEqual(['a', 'b']);
  });

  it('joins calls made within a transaction to it, whichever handle they use, and keeps others out', async () => {
    const db = await engine.open();
    await db.migrate('t', COUNTER);
    const add = (name: string) => db.run(`INSERT INTO counter (name, n, at) VALUES (?, 1, 0)`, [name]);
    // A call begun outside (here, by a caller that was waiting) while the transaction runs.
    let release!: () => void;
    const outside = new Promise<void>((resolve) => (release = resolve)).then(() => add('outside'));
    await expect(
      db.transaction(async () => {
        await add('inner');
        await db.transaction(async () => add('nested'));
        release();
        await new Promise((resolve) => setTimeout(resolve, 20));
        await add('inner');
      }),
    ).rejects.toThrow();
    await outside;
    expect((await db.all<{ name: string }>(`SELECT name FROM counter ORDER BY name`)).map((r) => r.name)).toEqual(['outside']);
  });

  it('serialises read-modify-write transactions from two connections under one lock', async () => {
    const first = await engine.open();
    await first.migrate('t', COUNTER);
    const second = await engine.reopen();
    await first.run(`INSERT INTO counter (name, n, at) VALUES ('hits', 0, 0)`);
    const bump = (db: typeof first) =>
      db.transaction(
        async (tx) => {
          const row = await tx.get<{ n: number }>(`SELECT n FROM counter WHERE name = 'hits'`);
          await tx.run(`UPDATE counter SET n = ? WHERE name = 'hits'`, [row!.n + 1]);
        },
        { lock: 'counter' },
      );
    await Promise.all(Array.from({ length: 60 }, (_, i) => bump(i % 2 ? first : second)));
    expect(await first.get(`SELECT n FROM counter WHERE name = 'hits'`)).toEqual({ n: 60 });
  });

  it('applies each migration once when two connections start together, and refuses a newer schema', async () => {
    const first = await engine.open();
    const second = await engine.reopen();
    const more: SqlMigration[] = [
      ...COUNTER,
      {
        version: 2,
        name: 'seed',
        sqlite: `INSERT INTO counter (name, n, at) VALUES ('seed', 1, 0)`,
        postgres: `INSERT INTO counter (name, n, at) VALUES ('seed', 1, 0)`,
      },
    ];
    await Promise.all([first.migrate('t', more), second.migrate('t', more), first.migrate('t', more)]);
    expect(await first.get(`SELECT count(*) AS c FROM counter`)).toEqual({ c: 1 });
    await expect(second.migrate('t', COUNTER)).rejects.toThrow(/version 2, newer than this jitgate understands \(1\)/);
  });
});

describe('numbering ? for PostgreSQL', () => {
  it('numbers parameters and leaves quoted text and comments alone', () => {
    expect(numberPlaceholders(`SELECT '?', "a?" FROM t WHERE a = ? -- why?\n AND b = ?`)).toBe(
      `SELECT '?', "a?" FROM t WHERE a = $1 -- why?\n AND b = $2`,
    );
  });
});
