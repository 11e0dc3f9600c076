/**
 * The access repository (access/repository.ts) on both state stores: the same cases on a SQLite
 * file and on a real PostgreSQL, including decisions made through two instances at once.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { AccessRepository, AmbiguousIdError, type AccessRequest, type GrantRecord } from '../src/access/repository.js';
import { CORE_MIGRATIONS } from '../src/store/core-schema.js';
import type { SqlDatabase } from '../src/store/sql.js';
import { stateStoreEngines } from './support/state-store.js';

const T = 1_790_000_000_000;

function request(
  id: string,
  over: Partial<AccessRequest> = {},
): Omit<AccessRequest, 'approvals' | 'decidedAt' | 'decidedBy' | 'decisionReason' | 'grantId' | 'escalation'> {
  return {
    id,
    user: 'alice',
    groups: ['eng'],
    connection: 'prod',
    reason: 'INC-1',
    durationMs: 3_600_000,
    breakGlass: false,
    state: 'pending',
    policy: 'prod',
    approverGroups: ['leads'],
    approvalsRequired: 2,
    breakGlassAllowed: true,
    reasons: [],
    createdAt: T,
    expiresAt: T + 1_800_000,
    ...over,
  };
}

function grant(id: string, over: Partial<GrantRecord> = {}): GrantRecord {
  return {
    id,
    user: 'alice',
    groups: ['eng'],
    connection: 'prod',
    reason: 'INC-1',
    requestId: null,
    approvedBy: ['bob'],
    breakGlass: false,
    policy: 'prod',
    issuedBy: null,
    createdAt: T,
    expiresAt: T + 3_600_000,
    revokedAt: null,
    revokedBy: null,
    revokeReason: null,
    ...over,
  };
}

/** A token row as the core store writes it (that store is not on SqlDatabase yet). */
async function token(db: SqlDatabase, id: string, o: { createdAt?: number; expiresAt: number; revokedAt?: number }): Promise<void> {
  await db.run(
    `INSERT INTO tokens (id, "user", connection, salt, iterations, stored_key, server_key, created_at, expires_at, revoked_at)
     VALUES (?, 'alice', 'prod', ?, 4096, ?, ?, ?, ?, ?)`,
    [id, Buffer.alloc(16, 1), Buffer.alloc(32, 2), Buffer.alloc(32, 3), o.createdAt ?? T, o.expiresAt, o.revokedAt ?? null],
  );
}

describe.each(stateStoreEngines())('access on $name', (engine) => {
  afterAll(() => engine.cleanup());

  async function fresh(): Promise<{ db: SqlDatabase; repo: AccessRepository; other: AccessRepository }> {
    const db = await engine.open();
    await db.migrate('core', CORE_MIGRATIONS);
    const repo = await AccessRepository.open(db);
    return { db, repo, other: await AccessRepository.open(await engine.reopen()) };
  }

  it('keeps requests with their approvals in order, decides each once, and finds them by unique prefix', async () => {
    const { repo } = await fresh();
    await repo.insertRequest(request('aaaa1111-0000-0000-0000-000000000001'));
    await repo.insertRequest(request('aaaa2222-0000-0000-0000-000000000002', { user: 'bob', connection: 'staging' }));
    await repo.insertApproval('aaaa1111-0000-0000-0000-000000000001', { approver: 'lee', comment: null, at: T + 5, breakGlass: false });
    await repo.insertApproval('aaaa1111-0000-0000-0000-000000000001', { approver: 'kim', comment: 'ok', at: T + 5, breakGlass: true });
    const r = await repo.getRequest('aaaa1111-0000-0000-0000-000000000001');
    expect(r).toMatchObject({ groups: ['eng'], breakGlass: false, breakGlassAllowed: true, escalation: null, decidedAt: null });
    expect(r!.approvals).toEqual([
      { approver: 'lee', comment: null, at: T + 5, breakGlass: false },
      { approver: 'kim', comment: 'ok', at: T + 5, breakGlass: true },
    ]);
    expect((await repo.listRequests({ state: 'pending' })).map((x) => x.user)).toEqual(['bob', 'alice']);
    expect((await repo.listRequests({ user: 'alice' })).map((x) => x.approvals.length)).toEqual([2]);
    expect(await repo.pendingByConnection()).toEqual([
      { connection: 'prod', count: 1 },
      { connection: 'staging', count: 1 },
    ]);
    await expect(repo.findRequest('aaaa')).rejects.toThrow(AmbiguousIdError);
    expect((await repo.findRequest('AAAA2222'))?.user).toBe('bob');
    expect(await repo.findRequest('not an id')).toBeUndefined();
    const decision = {
      state: 'granted' as const,
      decidedAt: T + 60_000,
      decidedBy: 'kim',
      decisionReason: null,
      grantId: null,
      reasons: ['ok'],
    };
    expect(await repo.decideRequest('aaaa1111-0000-0000-0000-000000000001', decision)).toBe(true);
    expect(await repo.decideRequest('aaaa1111-0000-0000-0000-000000000001', { ...decision, state: 'denied' })).toBe(false);
    expect(await repo.approvalWaits(T)).toEqual([{ policy: 'prod', waitedMs: 60_000 }]);
    expect(await repo.approvalWaits(T, { user: 'bob' })).toEqual([]);
    await repo.setEscalation('aaaa2222-0000-0000-0000-000000000002', T + 10, ['oncall']);
    expect(await repo.markEscalated('aaaa2222-0000-0000-0000-000000000002', T + 11, ['leads', 'oncall'])).toBe(true);
    expect(await repo.markEscalated('aaaa2222-0000-0000-0000-000000000002', T + 12, ['x'])).toBe(false);
    expect((await repo.getRequest('aaaa2222-0000-0000-0000-000000000002'))?.escalation).toEqual({
      at: T + 10,
      to: ['oncall'],
      escalatedAt: T + 11,
    });
  });

  it('lists active grants newest first and revokes each once', async () => {
    const { repo } = await fresh();
    await repo.insertGrant(grant('g1'));
    await repo.insertGrant(grant('g2', { createdAt: T + 1, expiresAt: T + 10 }));
    await repo.insertGrant(grant('g3', { createdAt: T + 2, user: 'bob' }));
    expect((await repo.listGrants()).map((g) => g.id)).toEqual(['g3', 'g2', 'g1']);
    expect((await repo.listGrants({ user: 'alice', activeAt: T + 10 })).map((g) => g.id)).toEqual(['g1']);
    expect(await repo.revokeGrant('g1', T + 20, 'lee', 'done')).toBe(true);
    expect(await repo.revokeGrant('g1', T + 21, 'kim', 'again')).toBe(false);
    expect(await repo.getGrant('g1')).toMatchObject({ revokedAt: T + 20, revokedBy: 'lee', revokeReason: 'done', approvedBy: ['bob'] });
    expect(await repo.listGrants({ activeAt: T + 5 })).toHaveLength(2);
  });

  it('lets exactly one of two logins through two instances claim a single-session token', async () => {
    const { db, repo, other } = await fresh();
    await repo.insertGrant(grant('g1'));
    await token(db, 't1', { expiresAt: T + 900_000 });
    await repo.linkToken('t1', 'g1', T + 900_000, 'session');
    expect(await repo.tokenUse('t1')).toBe('session');
    expect(await repo.tokenUse('nope')).toBeUndefined();
    const claims = await Promise.all([repo.claimToken('t1', T + 1), other.claimToken('t1', T + 1)]);
    expect(claims.filter(Boolean)).toHaveLength(1);
    await repo.setClaimSession('t1', 's1');
    expect(await other.claimOf('t1')).toEqual({ claimedAt: T + 1, sessionId: 's1' });
    // Given back only while no session took it.
    await repo.unclaimToken('t1');
    expect(await other.claimOf('t1')).toEqual({ claimedAt: T + 1, sessionId: 's1' });
    expect((await other.grantForToken('t1'))?.id).toBe('g1');
  });

  it('finds the tokens cut short by their grant’s end and the spent single-session ones', async () => {
    const { db, repo } = await fresh();
    await repo.insertGrant(grant('ended', { expiresAt: T + 100 }));
    await token(db, 'cut', { expiresAt: T + 100 });
    await repo.linkToken('cut', 'ended', T + 900_000);
    await repo.insertGrant(grant('live'));
    await token(db, 'spent', { createdAt: T + 1, expiresAt: T + 900_000, revokedAt: T + 50 });
    await repo.linkToken('spent', 'live', T + 900_000, 'session');
    await repo.claimToken('spent', T + 10);
    expect((await repo.endedGrantTokens('alice', 'prod', T + 200)).map((t) => t.id)).toEqual(['cut']);
    expect((await repo.endedGrantTokens('alice', 'prod', T + 50)).map((t) => t.id)).toEqual([]);
    expect(await repo.spentSessionTokens('alice', 'prod', T + 200)).toMatchObject([{ id: 'spent', iterations: 4096, revokedAt: T + 50 }]);
    expect(await repo.spentSessionTokens('bob', 'prod', T + 200)).toEqual([]);
  });

  it('serialises decisions made through two instances: of two final approvals one grants', async () => {
    const { repo, other } = await fresh();
    await repo.insertRequest(request('r1', { approvalsRequired: 1 }));
    const approve = (through: AccessRepository, approver: string, grantId: string) =>
      through.transaction(async () => {
        const r = await through.getRequest('r1');
        if (r!.state !== 'pending') return false;
        // Time for the other instance to read the same pending row, were nothing serialising them.
        await new Promise((resolve) => setTimeout(resolve, 30));
        await through.insertApproval('r1', { approver, comment: null, at: T, breakGlass: false });
        await through.insertGrant(grant(grantId, { requestId: 'r1' }));
        return through.decideRequest('r1', {
          state: 'granted',
          decidedAt: T,
          decidedBy: approver,
          decisionReason: null,
          grantId,
          reasons: [],
        });
      });
    const results = await Promise.all([approve(repo, 'lee', 'g-lee'), approve(other, 'kim', 'g-kim')]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await repo.listGrants()).toHaveLength(1);
    expect((await repo.getRequest('r1'))?.approvals).toHaveLength(1);
  });
});
