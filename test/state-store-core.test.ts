/**
 * The core store (store/sql-store.ts: sessions, tokens, salts, auth failures, secrets) on both
 * state stores: the same cases on a SQLite file and on a real PostgreSQL. What is the SQLite file's
 * own (file modes, its migrations table, a full disk) is src/store/sqlite.test.ts.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { CORE_MIGRATIONS } from '../src/store/core-schema.js';
import { openPostgresStore } from '../src/store/postgres-store.js';
import { SqlStore } from '../src/store/sql-store.js';
import type { TokenRow } from '../src/store/store.js';
import { postgresEngine, stateStoreEngines } from './support/state-store.js';

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

describe.each(stateStoreEngines())('the core store on $name', (engine) => {
  afterAll(() => engine.cleanup());

  async function fresh(): Promise<SqlStore> {
    const db = await engine.open();
    await db.migrate('core', CORE_MIGRATIONS);
    return new SqlStore(db);
  }

  describe('sessions', () => {
    it('records start and end with counters', async () => {
      const store = await fresh();
      await store.startSession(session('s1', 'alice', 'prod', 100));
      expect((await store.listSessions())[0]).toEqual({
        ...session('s1', 'alice', 'prod', 100),
        endedAt: null,
        endReason: null,
        bytesFromClient: 0,
        bytesToClient: 0,
        statements: 0,
        instanceId: null,
      });
      await store.endSession('s1', 200, 'client_quit', { bytesFromClient: 10, bytesToClient: 5_000_000_000, statements: 3 });
      expect((await store.listSessions())[0]).toMatchObject({
        endedAt: 200,
        endReason: 'client_quit',
        bytesToClient: 5_000_000_000,
        statements: 3,
      });
      // a second end does not overwrite the first
      await store.endSession('s1', 300, 'killed', { bytesFromClient: 0, bytesToClient: 0, statements: 0 });
      expect((await store.listSessions())[0]).toMatchObject({ endedAt: 200, endReason: 'client_quit' });
    });

    it('filters by user, connection and liveness, newest first, with a limit', async () => {
      const store = await fresh();
      await store.startSession(session('a1', 'alice', 'prod', 1));
      await store.startSession(session('a2', 'alice', 'staging', 2));
      await store.startSession(session('b1', 'bob', 'prod', 3));
      await store.startSession(session('b2', 'bob', 'prod', 4));
      await store.endSession('a1', 10, 'client_quit', { bytesFromClient: 0, bytesToClient: 0, statements: 0 });
      await store.endSession('b2', 10, 'killed', { bytesFromClient: 0, bytesToClient: 0, statements: 0 });
      const ids = async (f?: Parameters<SqlStore['listSessions']>[0]) => (await store.listSessions(f)).map((s) => s.id);
      expect(await ids()).toEqual(['b2', 'b1', 'a2', 'a1']);
      expect(await ids({ user: 'alice' })).toEqual(['a2', 'a1']);
      expect(await ids({ connection: 'prod' })).toEqual(['b2', 'b1', 'a1']);
      expect(await ids({ active: true })).toEqual(['b1', 'a2']);
      expect(await ids({ active: false })).toEqual(['b2', 'a1']);
      expect(await ids({ user: 'bob', connection: 'prod', active: true })).toEqual(['b1']);
      expect(await ids({ limit: 2 })).toEqual(['b2', 'b1']);
    });

    it('lets crash recovery correct a session closed as lost from its recording', async () => {
      const store = await fresh();
      await store.instances.register({ id: 'i-a', hostname: 'h', pid: 1, pidNamespace: null, startedAt: 1, heartbeatAt: 1 });
      await store.startSession({ ...session('a1', 'alice', 'prod', 1), instanceId: 'i-a' });
      await store.startSession(session('b1', 'alice', 'prod', 2));
      await store.instances.claimLost((await store.instances.list())[0]!, 'i-b', 30, 'instance_lost');
      await store.endSession('b1', 20, 'client_quit', { bytesFromClient: 1, bytesToClient: 2, statements: 3 });
      const counters = { bytesFromClient: 7, bytesToClient: 8, statements: 9 };
      await store.reconcileSession('a1', 12, 'instance_lost', counters);
      await store.reconcileSession('b1', 12, 'gateway_crashed', counters);
      expect((await store.listSessions()).map((s) => [s.id, s.endedAt, s.endReason, s.statements])).toEqual([
        ['b1', 20, 'client_quit', 3],
        ['a1', 12, 'instance_lost', 9],
      ]);
    });

    it('throws on a duplicate session id instead of ignoring it', async () => {
      const store = await fresh();
      await store.startSession(session('a', 'alice', 'prod', 1));
      await expect(store.startSession(session('a', 'bob', 'prod', 2))).rejects.toThrow(/UNIQUE|duplicate key/);
    });
  });

  describe('tokens', () => {
    it('keeps one salt per user and connection', async () => {
      const store = await fresh();
      const s1 = await store.scramSalt('alice', 'prod');
      expect(s1).toHaveLength(16);
      expect((await store.scramSalt('alice', 'prod')).equals(s1)).toBe(true);
      expect((await store.scramSalt('alice', 'staging')).equals(s1)).toBe(false);
      expect((await store.scramSalt('bob', 'prod')).equals(s1)).toBe(false);
    });

    it('lists only tokens neither expired nor revoked at the injected time', async () => {
      const store = await fresh();
      await store.insertToken(token('t1', { expiresAt: 10_000 }));
      await store.insertToken(token('t2', { expiresAt: 20_000, createdAt: 2_000 }));
      await store.insertToken(token('t3', { connection: 'staging' }));
      const ids = async (now: number) => (await store.activeTokens('alice', 'prod', now)).map((t) => t.id);
      expect(await ids(5_000)).toEqual(['t1', 't2']);
      expect(await ids(10_000)).toEqual(['t2']); // expiresAt is exclusive
      expect(await ids(20_000)).toEqual([]);
      expect(await store.revokeToken('t2', 6_000)).toBe(true);
      expect(await store.revokeToken('t2', 7_000)).toBe(false);
      expect(await store.revokeToken('nope', 7_000)).toBe(false);
      expect(await ids(5_000)).toEqual(['t1']);
      expect((await store.activeTokens('alice', 'prod', 5_000))[0]).toEqual(token('t1'));
    });
  });

  describe('auth failures and secrets', () => {
    it('records failed logins newest first', async () => {
      const store = await fresh();
      await store.recordAuthFailure({ at: 1, user: 'a', connection: 'prod', clientAddress: '1.2.3.4:5', reason: 'bad_token' });
      await store.recordAuthFailure({ at: 2, user: 'b', connection: 'prod', clientAddress: '1.2.3.4:6', reason: 'expired' });
      expect((await store.listAuthFailures()).map((f) => f.user)).toEqual(['b', 'a']);
      expect(await store.listAuthFailures(1)).toEqual([
        { at: 2, user: 'b', connection: 'prod', clientAddress: '1.2.3.4:6', reason: 'expired' },
      ]);
    });

    it('stores, replaces, lists and deletes secret rows', async () => {
      const store = await fresh();
      const row = { name: 'pg', iv: Buffer.alloc(12, 1), tag: Buffer.alloc(16, 2), ciphertext: Buffer.from('xyz'), updatedAt: 5 };
      await store.putSecret(row);
      expect(await store.getSecret('pg')).toEqual(row);
      await store.putSecret({ ...row, ciphertext: Buffer.from('abc'), updatedAt: 6 });
      expect((await store.getSecret('pg'))?.ciphertext.toString()).toBe('abc');
      await store.putSecret({ ...row, name: 'another' });
      expect(await store.listSecrets()).toEqual([
        { name: 'another', updatedAt: 5 },
        { name: 'pg', updatedAt: 6 },
      ]);
      expect(await store.deleteSecret('pg')).toBe(true);
      expect(await store.deleteSecret('pg')).toBe(false);
      expect(await store.getSecret('pg')).toBeUndefined();
    });
  });
});

describe('openPostgresStore', () => {
  const engine = postgresEngine();
  afterAll(() => engine.cleanup());

  it('migrates the core schema once when two instances open one database together, and both serve it', async () => {
    await engine.open();
    const [a, b] = await Promise.all([openPostgresStore({ url: engine.location() }), openPostgresStore({ url: engine.location() })]);
    try {
      await a.startSession(session('s1', 'alice', 'prod', 1));
      expect((await b.listSessions()).map((s) => s.id)).toEqual(['s1']);
      expect(await a.ping()).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('refuses to open a server it cannot reach, with the reason', async () => {
    await expect(openPostgresStore({ url: 'postgres://postgres@127.0.0.1:1/none', connectTimeoutMs: 2000 })).rejects.toThrow(
      /ECONNREFUSED|connect/,
    );
  });
});
