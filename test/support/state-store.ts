/**
 * State stores for tests that must hold on both engines: the embedded SQLite file and a fresh
 * PostgreSQL database on the machine's server (127.0.0.1:5432, trust auth), dropped afterwards.
 *
 *   const engines = stateStoreEngines();
 *   describe.each(engines)('on %s', (engine) => { ... const db = await engine.open(); ... });
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import { PostgresSql } from '../../src/store/postgres-sql.js';
import { SqliteSql } from '../../src/store/sqlite-sql.js';
import type { SqlDatabase } from '../../src/store/sql.js';

export const STATE_STORE_SERVER = process.env.JITGATE_TEST_STORE_URL ?? 'postgres://postgres@127.0.0.1:5432';

export interface StoreEngine {
  name: 'sqlite' | 'postgres';
  /** A new, empty database; every open of one engine is a separate database. */
  open(): Promise<SqlDatabase>;
  /**
   * Another handle on the database the last open() made, as a second instance would have: a
   * PostgreSQL pool of its own; for SQLite the same connection, since one process holds one
   * connection to its file (a second one in the same thread would wait on the first's lock while
   * blocking the thread that must release it).
   */
  reopen(): Promise<SqlDatabase>;
  /** The URL (postgres) or file path (sqlite) of the last open(). */
  location(): string;
  /** Closes what was opened and drops the databases. */
  cleanup(): Promise<void>;
}

export function sqliteEngine(): StoreEngine {
  const dir = mkdtempSync(join(tmpdir(), 'jitgate-store-'));
  const opened: SqlDatabase[] = [];
  let file = '';
  let n = 0;
  let last: SqlDatabase | undefined;
  const connect = (path: string) => {
    const raw = new Database(path);
    raw.pragma('journal_mode = WAL');
    raw.pragma('busy_timeout = 5000');
    const db = new SqliteSql(raw, true);
    opened.push(db);
    return (last = db);
  };
  return {
    name: 'sqlite',
    open: async () => connect((file = join(dir, `state-${++n}.db`))),
    reopen: async () => last!,
    location: () => file,
    cleanup: async () => {
      for (const db of opened) await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function postgresEngine(): StoreEngine {
  const databases: string[] = [];
  const opened: SqlDatabase[] = [];
  let url = '';
  const connect = (target: string) => {
    const db = new PostgresSql({ url: target, maxConnections: 4 });
    opened.push(db);
    return db;
  };
  return {
    name: 'postgres',
    open: async () => {
      const name = `jitgate_test_${randomBytes(6).toString('hex')}`;
      const admin = new pg.Client({ connectionString: `${STATE_STORE_SERVER}/postgres` });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      databases.push(name);
      url = `${STATE_STORE_SERVER}/${name}`;
      return connect(url);
    },
    reopen: async () => connect(url),
    location: () => url,
    cleanup: async () => {
      for (const db of opened) await db.close();
      const admin = new pg.Client({ connectionString: `${STATE_STORE_SERVER}/postgres` });
      await admin.connect();
      try {
        for (const name of databases) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await admin.end();
      }
    },
  };
}

/** Both engines, for describe.each. */
export function stateStoreEngines(): StoreEngine[] {
  return [sqliteEngine(), postgresEngine()];
}
