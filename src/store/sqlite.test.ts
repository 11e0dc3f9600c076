import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CORE_MIGRATIONS } from './core-schema.js';
import { openSqliteStore, type SqliteStore } from './sqlite.js';

const dir = mkdtempSync(join(tmpdir(), 'jitgate-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const open: SqliteStore[] = [];
function fresh(options?: Parameters<typeof openSqliteStore>[1]): { store: SqliteStore; path: string } {
  const path = join(dir, `s${n++}`, 'nested', 'jitgate.db');
  const store = openSqliteStore(path, options);
  open.push(store);
  return { store, path };
}
afterEach(() => {
  for (const s of open.splice(0)) void s.close();
});

function session(id: string, user: string, connection: string, startedAt: number) {
  return { id, user, connection, protocol: 'postgres', clientAddress: '127.0.0.1:5000', applicationName: 'psql', startedAt };
}

describe('openSqliteStore', () => {
  it('creates the directory 0700 and the file 0600, in WAL mode', async () => {
    const { store, path } = fresh();
    expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await store.ping()).toBe(true);
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('applies migrations once and reopens idempotently without losing data', async () => {
    const { store, path } = fresh();
    expect(store.schemaVersion()).toBe(CORE_MIGRATIONS.length);
    await store.startSession(session('s1', 'alice', 'prod', 1));
    void store.close();
    const again = openSqliteStore(path);
    open.push(again);
    expect(again.schemaVersion()).toBe(CORE_MIGRATIONS.length);
    expect((await again.listSessions()).map((s) => s.id)).toEqual(['s1']);
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all()).toEqual(
      CORE_MIGRATIONS.map((m) => ({ version: m.version, name: m.name })),
    );
    db.close();
  });

  it('refuses a store written by a newer jitgate', async () => {
    const { store, path } = fresh();
    void store.close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, ?, 0)').run('future');
    db.close();
    expect(() => openSqliteStore(path)).toThrow(/schema is version 999, newer than this jitgate understands/);
  });
});

describe('faults', () => {
  it('surfaces a full database as a thrown SQLITE_FULL and keeps what was written', async () => {
    const { store } = fresh({ maxSizeBytes: 128 * 1024 });
    await store.startSession(session('first', 'alice', 'prod', 1));
    let error: unknown;
    try {
      for (let i = 0; i < 10_000; i++) {
        await store.recordAuthFailure({ at: i, user: 'u'.repeat(200), connection: 'c', clientAddress: 'x', reason: 'r'.repeat(200) });
      }
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: 'SQLITE_FULL' });
    await expect(store.startSession(session('later', 'b'.repeat(20_000), 'prod', 2))).rejects.toThrow(/full/);
    expect((await store.listSessions()).map((s) => s.id)).toContain('first');
    expect(await store.ping()).toBe(true);
  });

  it('ping is false after close, and close is idempotent', async () => {
    const { store } = fresh();
    void store.close();
    expect(await store.ping()).toBe(false);
    expect(() => store.close()).not.toThrow();
  });
});
