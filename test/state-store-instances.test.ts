/**
 * The instances repository (store/sql-instances.ts) on both state stores: the same cases on a
 * SQLite file and on a real PostgreSQL, including two instances racing for one lost instance.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { CORE_MIGRATIONS } from '../src/store/core-schema.js';
import { SqlInstances } from '../src/store/sql-instances.js';
import type { SqlDatabase } from '../src/store/sql.js';
import { stateStoreEngines } from './support/state-store.js';

const ROW = { hostname: 'h', pid: 1, pidNamespace: 'pid:[1]', startedAt: 1, heartbeatAt: 1 };

/** A session row as the core store writes it (that store is not on SqlDatabase yet). */
async function startSession(db: SqlDatabase, id: string, user: string, instanceId: string | null, startedAt = 1): Promise<void> {
  await db.run(
    `INSERT INTO sessions (id, "user", connection, protocol, client_address, application_name, started_at, instance_id)
     VALUES (?, ?, 'prod', 'postgres', '127.0.0.1:1', NULL, ?, ?)`,
    [id, user, startedAt, instanceId],
  );
}

async function sessionEnds(db: SqlDatabase): Promise<Array<[string, number | null, string | null]>> {
  const rows = await db.all<{ id: string; ended_at: number | null; end_reason: string | null }>(
    `SELECT id, ended_at, end_reason FROM sessions ORDER BY id`,
  );
  return rows.map((r) => [r.id, r.ended_at, r.end_reason]);
}

describe.each(stateStoreEngines())('instances on $name', (engine) => {
  afterAll(() => engine.cleanup());

  async function fresh(): Promise<{ db: SqlDatabase; repo: SqlInstances; other: SqlInstances }> {
    const db = await engine.open();
    await db.migrate('core', CORE_MIGRATIONS);
    return { db, repo: new SqlInstances(db), other: new SqlInstances(await engine.reopen()) };
  }

  it('registers, beats, lists and removes instances; a lost one learns it at its next beat', async () => {
    const { repo } = await fresh();
    await repo.register({ ...ROW, id: 'i-b', startedAt: 2 });
    await repo.register({ ...ROW, id: 'i-a' });
    expect(await repo.heartbeat('i-a', 5)).toBe(true);
    expect((await repo.list()).map((i) => [i.id, i.heartbeatAt, i.lostAt])).toEqual([
      ['i-a', 5, null],
      ['i-b', 1, null],
    ]);
    const [a] = await repo.list();
    expect(await repo.claimLost(a!, 'i-b', 40, 'instance_lost')).toEqual([]);
    expect(await repo.heartbeat('i-a', 41)).toBe(false);
    // Coming back after being declared lost re-adds the row as live.
    await repo.register({ ...ROW, id: 'i-a', heartbeatAt: 42 });
    expect((await repo.list())[0]).toMatchObject({ id: 'i-a', heartbeatAt: 42, lostAt: null, lostBy: null });
    await repo.remove('i-a');
    expect((await repo.list()).map((i) => i.id)).toEqual(['i-b']);
  });

  it("lets exactly one of two claimants close a lost instance's sessions, and only while its row is as seen", async () => {
    const { db, repo, other } = await fresh();
    await repo.register({ ...ROW, id: 'i-a' });
    await repo.register({ ...ROW, id: 'i-b' });
    await startSession(db, 'a1', 'alice', 'i-a');
    await startSession(db, 'b1', 'alice', 'i-b');
    const [seen] = await repo.list();
    // A heartbeat after it was read: the claim no longer holds.
    expect(await repo.heartbeat('i-a', 2)).toBe(true);
    expect(await repo.claimLost(seen!, 'i-c', 30, 'instance_lost')).toBeUndefined();
    const fresher = (await repo.list())[0]!;
    const claims = await Promise.all([
      repo.claimLost(fresher, 'i-b', 30, 'instance_lost'),
      other.claimLost(fresher, 'i-c', 31, 'instance_lost'),
    ]);
    expect(claims.filter((c) => c !== undefined)).toEqual([['a1']]);
    expect(await sessionEnds(db)).toEqual([
      ['a1', claims[0] ? 30 : 31, 'instance_lost'],
      ['b1', null, null],
    ]);
    // A claimant that died half-way: the row, marked lost, can be claimed again as seen.
    const marked = (await repo.list())[0]!;
    expect(marked.lostAt).not.toBeNull();
    expect(await other.claimLost(marked, 'i-d', 90, 'instance_lost')).toEqual([]);
  });

  it('closes only the open sessions no instance row owns', async () => {
    const { db, repo } = await fresh();
    await repo.register({ ...ROW, id: 'i-live' });
    await startSession(db, 'old', 'alice', null);
    await startSession(db, 'mine', 'alice', 'i-live');
    await startSession(db, 'gone', 'alice', 'i-gone');
    expect((await repo.closeUnownedSessions(9, 'gateway_crashed')).sort()).toEqual(['gone', 'old']);
    expect(await sessionEnds(db)).toEqual([
      ['gone', 9, 'gateway_crashed'],
      ['mine', null, null],
      ['old', 9, 'gateway_crashed'],
    ]);
  });

  it('passes a kill to the instance serving an open session, once, and not for an ended one', async () => {
    const { db, repo, other } = await fresh();
    await startSession(db, 's1', 'alice', 'i-a');
    const kill = { sessionId: 's1', instanceId: 'i-a', by: 'root', reason: 'enough', requestedAt: 1_790_000_000_000 };
    expect(await other.requestKill(kill)).toBe(true);
    expect(await other.requestKill({ ...kill, by: 'again' })).toBe(false);
    expect(await repo.requestKill({ ...kill, instanceId: 'i-b' })).toBe(false);
    expect(await repo.takeKills('i-b')).toEqual([]);
    expect(await repo.takeKills('i-a')).toEqual([kill]);
    expect(await repo.takeKills('i-a')).toEqual([]);
    await db.run(`UPDATE sessions SET ended_at = 5 WHERE id = 's1'`);
    expect(await other.requestKill(kill)).toBe(false);
  });

  it('shares cancel keys: one holder per pid, its session’s user, cancels passed to it, all forgotten with it', async () => {
    const { db, repo, other } = await fresh();
    await startSession(db, 's1', 'alice', 'i-a');
    // MySQL hands out the id before the session exists, then names it.
    expect(await repo.claimCancelKey({ protocol: 'mysql', pid: 4_000_000_000, instanceId: 'i-a', sessionId: '' })).toBe(true);
    expect(await other.claimCancelKey({ protocol: 'mysql', pid: 4_000_000_000, instanceId: 'i-b', sessionId: 'x' })).toBe(false);
    expect(await other.cancelKeyHolder('mysql', 4_000_000_000)).toEqual({ instanceId: 'i-a', sessionId: '', user: null });
    expect(await repo.claimCancelKey({ protocol: 'mysql', pid: 4_000_000_000, instanceId: 'i-a', sessionId: 's1' })).toBe(true);
    expect(await other.cancelKeyHolder('mysql', 4_000_000_000)).toEqual({ instanceId: 'i-a', sessionId: 's1', user: 'alice' });
    // Another protocol's pid is another key.
    expect(await other.cancelKeyHolder('postgres', 4_000_000_000)).toBeUndefined();
    expect(await other.claimCancelKey({ protocol: 'postgres', pid: 4_000_000_000, instanceId: 'i-b', sessionId: 'x' })).toBe(true);
    await other.releaseCancelKey('postgres', 4_000_000_000, 'i-b');
    expect(await other.requestCancel({ protocol: 'mysql', pid: 4_000_000_000, secret: 2_147_483_647, requestedAt: 9 })).toBe(true);
    expect(await other.requestCancel({ protocol: 'mysql', pid: 12, secret: 1, requestedAt: 9 })).toBe(false);
    expect(await repo.takeCancels('i-a')).toEqual([{ protocol: 'mysql', pid: 4_000_000_000, secret: 2_147_483_647 }]);
    expect(await repo.takeCancels('i-a')).toEqual([]);
    await other.requestCancel({ protocol: 'mysql', pid: 4_000_000_000, secret: 3, requestedAt: 10 });
    await other.requestKill({ sessionId: 's1', instanceId: 'i-a', by: 'root', reason: 'r', requestedAt: 10 });
    await other.forgetRequestsOf('i-a');
    expect(await repo.cancelKeyHolder('mysql', 4_000_000_000)).toBeUndefined();
    expect(await repo.takeCancels('i-a')).toEqual([]);
    expect(await repo.takeKills('i-a')).toEqual([]);
    // Releasing is the holder's alone.
    await repo.claimCancelKey({ protocol: 'postgres', pid: 7, instanceId: 'i-a', sessionId: 's1' });
    await other.releaseCancelKey('postgres', 7, 'i-b');
    expect(await repo.cancelKeyHolder('postgres', 7)).toMatchObject({ instanceId: 'i-a' });
    // Once its session ends the key names no user (a KILL through another instance finds no owner).
    await db.run(`UPDATE sessions SET ended_at = 5 WHERE id = 's1'`);
    expect(await other.cancelKeyHolder('postgres', 7)).toEqual({ instanceId: 'i-a', sessionId: 's1', user: null });
    await repo.releaseCancelKey('postgres', 7, 'i-a');
    expect(await repo.cancelKeyHolder('postgres', 7)).toBeUndefined();
    expect(await other.claimCancelKey({ protocol: 'postgres', pid: 7, instanceId: 'i-b', sessionId: 's2' })).toBe(true);
  });

  it('adds up usage per instance and shows each instance the others’ counts within each kind’s window', async () => {
    const { repo, other } = await fresh();
    const t = 1_790_000_000_000;
    await repo.addUsage('i-a', [
      { kind: 'statements', key: 'agent', bucket: t, count: 3 },
      { kind: 'logins', key: '10.0.0.1', bucket: t - 60_000, count: 1 },
    ]);
    await repo.addUsage('i-a', [{ kind: 'statements', key: 'agent', bucket: t, count: 2 }]);
    await other.addUsage('i-b', [{ kind: 'statements', key: 'agent', bucket: t, count: 7 }]);
    const seenByB = await other.usageOfOthers('i-b', { statements: t, logins: t - 60_000 });
    expect(seenByB.sort((x, y) => x.kind.localeCompare(y.kind))).toEqual([
      { kind: 'logins', key: '10.0.0.1', bucket: t - 60_000, instanceId: 'i-a', count: 1 },
      { kind: 'statements', key: 'agent', bucket: t, instanceId: 'i-a', count: 5 },
    ]);
    expect(await other.usageOfOthers('i-b', { statements: t + 1 })).toEqual([]);
    expect(await repo.usageOfOthers('i-a', { statements: t })).toEqual([
      { kind: 'statements', key: 'agent', bucket: t, instanceId: 'i-b', count: 7 },
    ]);
    await repo.dropUsageBefore(t);
    expect(await other.usageOfOthers('i-b', { statements: 0, logins: 0 })).toEqual([
      { kind: 'statements', key: 'agent', bucket: t, instanceId: 'i-a', count: 5 },
    ]);
  });
});
