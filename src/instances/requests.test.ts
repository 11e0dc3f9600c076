/**
 * What instances ask of each other through the store (kills, cancels), on two connections to one
 * SQLite file as two gateways have: only an open session of the instance named can be asked for,
 * requests are taken once, and a cancel key belongs to one instance at a time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../store/sqlite.js';

const dir = mkdtempSync(join(tmpdir(), 'jitgate-requests-'));
const path = join(dir, 'store.db');
const a = openSqliteStore(path);
const b = openSqliteStore(path);
afterAll(() => {
  a.close();
  b.close();
  rmSync(dir, { recursive: true, force: true });
});

const session = (id: string, instanceId: string) => ({
  id,
  user: 'alice',
  connection: 'app',
  protocol: 'postgres',
  clientAddress: '127.0.0.1:1',
  applicationName: null,
  startedAt: 1,
  instanceId,
});

describe('kill requests', () => {
  it('are filed only for an open session of the instance named, and taken once by it', () => {
    a.startSession(session('s-open', 'A'));
    a.startSession(session('s-ended', 'A'));
    a.endSession('s-ended', 2, 'client_quit', { bytesFromClient: 0, bytesToClient: 0, statements: 0 });
    const ask = (sessionId: string, instanceId: string) =>
      b.instances.requestKill({ sessionId, instanceId, by: 'dave', reason: 'r', requestedAt: 3 });
    expect(ask('s-open', 'B')).toBe(false);
    expect(ask('s-ended', 'A')).toBe(false);
    expect(ask('s-missing', 'A')).toBe(false);
    expect(ask('s-open', 'A')).toBe(true);
    // Asked twice before it was taken: one kill.
    expect(ask('s-open', 'A')).toBe(false);
    expect(b.instances.takeKills('B')).toEqual([]);
    expect(a.instances.takeKills('A')).toEqual([{ sessionId: 's-open', instanceId: 'A', by: 'dave', reason: 'r', requestedAt: 3 }]);
    expect(a.instances.takeKills('A')).toEqual([]);
  });
});

describe('cancel keys', () => {
  it('belong to one instance at a time; a cancel goes to the instance holding the key, once', () => {
    expect(a.instances.claimCancelKey({ protocol: 'postgres', pid: 42, instanceId: 'A', sessionId: 's1' })).toBe(true);
    expect(b.instances.claimCancelKey({ protocol: 'postgres', pid: 42, instanceId: 'B', sessionId: 's2' })).toBe(false);
    // Another protocol's pid 42 is another key.
    expect(b.instances.claimCancelKey({ protocol: 'mysql', pid: 42, instanceId: 'B', sessionId: 's3' })).toBe(true);

    expect(b.instances.requestCancel({ protocol: 'postgres', pid: 7, secret: 1, requestedAt: 1 })).toBe(false);
    expect(b.instances.requestCancel({ protocol: 'postgres', pid: 42, secret: 99, requestedAt: 1 })).toBe(true);
    expect(b.instances.takeCancels('B')).toEqual([]);
    expect(a.instances.takeCancels('A')).toEqual([{ protocol: 'postgres', pid: 42, secret: 99 }]);
    expect(a.instances.takeCancels('A')).toEqual([]);

    // Released by its holder only; then another instance may hand it out.
    b.instances.releaseCancelKey('postgres', 42, 'B');
    expect(b.instances.claimCancelKey({ protocol: 'postgres', pid: 42, instanceId: 'B', sessionId: 's2' })).toBe(false);
    a.instances.releaseCancelKey('postgres', 42, 'A');
    expect(b.instances.claimCancelKey({ protocol: 'postgres', pid: 42, instanceId: 'B', sessionId: 's2' })).toBe(true);

    // A lost instance's keys go with it, and the cancels and kills it never took.
    b.instances.requestCancel({ protocol: 'postgres', pid: 42, secret: 5, requestedAt: 1 });
    b.startSession(session('s-on-b', 'B'));
    a.instances.requestKill({ sessionId: 's-on-b', instanceId: 'B', by: 'dave', reason: 'r', requestedAt: 1 });
    a.instances.forgetRequestsOf('B');
    expect(b.instances.takeCancels('B')).toEqual([]);
    expect(b.instances.takeKills('B')).toEqual([]);
    expect(b.instances.requestCancel({ protocol: 'postgres', pid: 42, secret: 1, requestedAt: 1 })).toBe(false);
    expect(b.instances.requestCancel({ protocol: 'mysql', pid: 42, secret: 1, requestedAt: 1 })).toBe(false);
  });
});

describe('MySQL connection ids', () => {
  it('are claimed at the greeting, then name their session, whose owner another instance can see', () => {
    expect(a.instances.claimCancelKey({ protocol: 'mysql', pid: 1001, instanceId: 'A', sessionId: '' })).toBe(true);
    // During the handshake no session holds it: a KILL through another instance finds nothing yet.
    expect(b.instances.cancelKeyHolder('mysql', 1001)).toEqual({ instanceId: 'A', sessionId: '', user: null });
    a.startSession({ ...session('s-my', 'A'), protocol: 'mysql' });
    // The holder naming its session again is no conflict; another instance still cannot take the id.
    expect(a.instances.claimCancelKey({ protocol: 'mysql', pid: 1001, instanceId: 'A', sessionId: 's-my' })).toBe(true);
    expect(b.instances.claimCancelKey({ protocol: 'mysql', pid: 1001, instanceId: 'B', sessionId: 's-b' })).toBe(false);
    expect(b.instances.cancelKeyHolder('mysql', 1001)).toEqual({ instanceId: 'A', sessionId: 's-my', user: 'alice' });
    a.endSession('s-my', 2, 'client_quit', { bytesFromClient: 0, bytesToClient: 0, statements: 0 });
    expect(b.instances.cancelKeyHolder('mysql', 1001)?.user).toBeNull();
    expect(b.instances.cancelKeyHolder('mysql', 1002)).toBeUndefined();
  });
});
