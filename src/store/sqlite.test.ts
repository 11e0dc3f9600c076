import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CORE_MIGRATIONS } from './core-schema.js';
import { openSqliteStore, type SqliteStore } from './sqlite.js';
import type { TokenRow } from './store.js';

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
  for (const s of open.splice(0)) s.close();
});

function session(id: string, user: string, connection: string, startedAt: number) {
  return { id, user, connection, protocol: 'postgres', clientAddress: '127.0.0.1:5000', applicationName: 'psql', startedAt };
}

function token(id: string, over: Partial<TokenRow> = {}): TokenRow {
  return {
    id,
    user: 'alice',
    connection: 'prod',
    salt: Buffer.alloc(16, 1),
    iterations: 4096,
    storedKey: Buffer.alloc(32, 2),
    serverKey: Buffer.alloc(32, 3),
    createdAt: 1_000,
    expiresAt: 10_000,
    revokedAt: null,
    ...over,
  };
}

describe('openSqliteStore', () => {
  it('creates the directory 0700 and the file 0600, in WAL mode', () => {
    const { store, path } = fresh();
    expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(store.ping()).toBe(true);
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('applies migrations once and reopens idempotently without losing data', () => {
    const { store, path } = fresh();
    expect(store.schemaVersion()).toBe(CORE_MIGRATIONS.length);
    store.startSession(session('s1', 'alice', 'prod', 1));
    store.close();
    const again = openSqliteStore(path);
    open.push(again);
    expect(again.schemaVersion()).toBe(CORE_MIGRATIONS.length);
    expect(again.listSessions().map((s) => s.id)).toEqual(['s1']);
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT version, name FROM schema_migrations ORDER BY version').all()).toEqual(
      CORE_MIGRATIONS.map((m) => ({ version: m.version, name: m.name })),
    );
    db.close();
  });

  it('refuses a store written by a newer jitgate', () => {
    const { store, path } = fresh();
    store.close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, ?, 0)').run('future');
    db.close();
    expect(() => openSqliteStore(path)).toThrow(/schema is version 999, newer than this jitgate understands/);
  });
});

describe('sessions', () => {
  it('records start and end with counters', () => {
    const { store } = fresh();
    store.startSession(session('s1', 'alice', 'prod', 100));
    expect(store.listSessions()[0]).toEqual({
      ...session('s1', 'alice', 'prod', 100),
      endedAt: null,
      endReason: null,
      bytesFromClient: 0,
      bytesToClient: 0,
      statements: 0,
      instanceId: null,
    });
    store.endSession('s1', 200, 'client_quit', { bytesFromClient: 10, bytesToClient: 5_000_000_000, statements: 3 });
    expect(store.listSessions()[0]).toMatchObject({ endedAt: 200, endReason: 'client_quit', bytesToClient: 5_000_000_000, statements: 3 });
    // a second end does not overwrite the first
    store.endSession('s1', 300, 'killed', { bytesFromClient: 0, bytesToClient: 0, statements: 0 });
    expect(store.listSessions()[0]).toMatchObject({ endedAt: 200, endReason: 'client_quit' });
  });

  it('filters by user, connection and liveness, newest first, with a limit', () => {
    const { store } = fresh();
    store.startSession(session('a1', 'alice', 'prod', 1));
    store.startSession(session('a2', 'alice', 'staging', 2));
    store.startSession(session('b1', 'bob', 'prod', 3));
    store.startSession(session('b2', 'bob', 'prod', 4));
    store.endSession('a1', 10, 'client_quit', { bytesFromClient: 0, bytesToClient: 0, statements: 0 });
    store.endSession('b2', 10, 'killed', { bytesFromClient: 0, bytesToClient: 0, statements: 0 });
    const ids = (f?: Parameters<SqliteStore['listSessions']>[0]) => store.listSessions(f).map((s) => s.id);
    expect(ids()).toEqual(['b2', 'b1', 'a2', 'a1']);
    expect(ids({ user: 'alice' })).toEqual(['a2', 'a1']);
    expect(ids({ connection: 'prod' })).toEqual(['b2', 'b1', 'a1']);
    expect(ids({ active: true })).toEqual(['b1', 'a2']);
    expect(ids({ active: false })).toEqual(['b2', 'a1']);
    expect(ids({ user: 'bob', connection: 'prod', active: true })).toEqual(['b1']);
    expect(ids({ limit: 2 })).toEqual(['b2', 'b1']);
  });

  it('lets crash recovery correct a session closed as lost from its recording', async () => {
    const { store } = fresh();
    await store.instances.register({ id: 'i-a', hostname: 'h', pid: 1, pidNamespace: null, startedAt: 1, heartbeatAt: 1 });
    store.startSession({ ...session('a1', 'alice', 'prod', 1), instanceId: 'i-a' });
    store.startSession(session('b1', 'alice', 'prod', 2));
    await store.instances.claimLost((await store.instances.list())[0]!, 'i-b', 30, 'instance_lost');
    store.endSession('b1', 20, 'client_quit', { bytesFromClient: 1, bytesToClient: 2, statements: 3 });
    const counters = { bytesFromClient: 7, bytesToClient: 8, statements: 9 };
    store.reconcileSession('a1', 12, 'instance_lost', counters);
    store.reconcileSession('b1', 12, 'gateway_crashed', counters);
    expect(store.listSessions().map((s) => [s.id, s.endedAt, s.endReason, s.statements])).toEqual([
      ['b1', 20, 'client_quit', 3],
      ['a1', 12, 'instance_lost', 9],
    ]);
  });

  it('throws on a duplicate session id instead of ignoring it', () => {
    const { store } = fresh();
    store.startSession(session('a', 'alice', 'prod', 1));
    expect(() => store.startSession(session('a', 'bob', 'prod', 2))).toThrow(/UNIQUE/);
  });
});

describe('tokens', () => {
  it('keeps one salt per user and connection', () => {
    const { store } = fresh();
    const s1 = store.scramSalt('alice', 'prod');
    expect(s1).toHaveLength(16);
    expect(store.scramSalt('alice', 'prod').equals(s1)).toBe(true);
    expect(store.scramSalt('alice', 'staging').equals(s1)).toBe(false);
    expect(store.scramSalt('bob', 'prod').equals(s1)).toBe(false);
  });

  it('lists only tokens neither expired nor revoked at the injected time', () => {
    const { store } = fresh();
    store.insertToken(token('t1', { expiresAt: 10_000 }));
    store.insertToken(token('t2', { expiresAt: 20_000, createdAt: 2_000 }));
    store.insertToken(token('t3', { connection: 'staging' }));
    const ids = (now: number) => store.activeTokens('alice', 'prod', now).map((t) => t.id);
    expect(ids(5_000)).toEqual(['t1', 't2']);
    expect(ids(10_000)).toEqual(['t2']); // expiresAt is exclusive
    expect(ids(20_000)).toEqual([]);
    expect(store.revokeToken('t2', 6_000)).toBe(true);
    expect(store.revokeToken('t2', 7_000)).toBe(false);
    expect(store.revokeToken('nope', 7_000)).toBe(false);
    expect(ids(5_000)).toEqual(['t1']);
    expect(store.activeTokens('alice', 'prod', 5_000)[0]).toEqual(token('t1'));
  });
});

describe('auth failures and secrets', () => {
  it('records failed logins newest first', () => {
    const { store } = fresh();
    store.recordAuthFailure({ at: 1, user: 'a', connection: 'prod', clientAddress: '1.2.3.4:5', reason: 'bad_token' });
    store.recordAuthFailure({ at: 2, user: 'b', connection: 'prod', clientAddress: '1.2.3.4:6', reason: 'expired' });
    expect(store.listAuthFailures().map((f) => f.user)).toEqual(['b', 'a']);
    expect(store.listAuthFailures(1)).toEqual([{ at: 2, user: 'b', connection: 'prod', clientAddress: '1.2.3.4:6', reason: 'expired' }]);
  });

  it('stores, replaces, lists and deletes secret rows', () => {
    const { store } = fresh();
    const row = { name: 'pg', iv: Buffer.alloc(12, 1), tag: Buffer.alloc(16, 2), ciphertext: Buffer.from('xyz'), updatedAt: 5 };
    store.putSecret(row);
    expect(store.getSecret('pg')).toEqual(row);
    store.putSecret({ ...row, ciphertext: Buffer.from('abc'), updatedAt: 6 });
    expect(store.getSecret('pg')?.ciphertext.toString()).toBe('abc');
    store.putSecret({ ...row, name: 'another' });
    expect(store.listSecrets()).toEqual([
      { name: 'another', updatedAt: 5 },
      { name: 'pg', updatedAt: 6 },
    ]);
    expect(store.deleteSecret('pg')).toBe(true);
    expect(store.deleteSecret('pg')).toBe(false);
    expect(store.getSecret('pg')).toBeUndefined();
  });
});

describe('faults', () => {
  it('surfaces a full database as a thrown SQLITE_FULL and keeps what was written', () => {
    const { store } = fresh({ maxSizeBytes: 128 * 1024 });
    store.startSession(session('first', 'alice', 'prod', 1));
    let error: unknown;
    try {
      for (let i = 0; i < 10_000; i++) {
        store.recordAuthFailure({ at: i, user: 'u'.repeat(200), connection: 'c', clientAddress: 'x', reason: 'r'.repeat(200) });
      }
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: 'SQLITE_FULL' });
    expect(() => store.startSession(session('later', 'b'.repeat(20_000), 'prod', 2))).toThrow(/full/);
    expect(store.listSessions().map((s) => s.id)).toContain('first');
    expect(store.ping()).toBe(true);
  });

  it('ping is false after close, and close is idempotent', () => {
    const { store } = fresh();
    store.close();
    expect(store.ping()).toBe(false);
    expect(() => store.close()).not.toThrow();
  });
});
