/**
 * AccessService against a real SQLite store and a ManualClock: requests, approvals, denials,
 * break-glass, pending expiry (timers and the sweep on start), revocation and tokens under grants.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../audit/log.js';
import { ManualClock } from '../core/clock.js';
import type { Identity } from '../core/types.js';
import { createLogger } from '../obs/log.js';
import type { PolicyRule } from '../policy/access.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite.js';
import type { AccessEvent } from './events.js';
import { issueAdminToken } from './grant-tokens.js';
import { AccessRepository } from './repository.js';
import { AccessError, AccessService, grantEndedMessage } from './service.js';
import { TokenAuthority } from './tokens.js';
import { GrantAwareVerifier } from './verifier.js';

const H = 3_600_000;
const M = 60_000;
const POLICIES: PolicyRule[] = [
  {
    name: 'auto-staging',
    connections: ['staging'],
    groups: ['*'],
    users: [],
    access: {
      approval: 'auto',
      approvers: [],
      approvals: 1,
      maxDurationMs: 8 * H,
      breakGlass: false,
      pendingExpiryMs: H,
      requireReason: false,
    },
  },
  {
    name: 'prod-two-of-three',
    connections: ['prod'],
    groups: ['engineering'],
    users: [],
    access: {
      approval: 'required',
      approvers: ['approvers'],
      approvals: 2,
      maxDurationMs: 4 * H,
      breakGlass: true,
      pendingExpiryMs: 30 * M,
      requireReason: true,
    },
  },
  {
    name: 'billing',
    connections: ['billing'],
    groups: ['engineering'],
    users: [],
    access: {
      approval: 'required',
      approvers: ['finance'],
      approvals: 1,
      maxDurationMs: H,
      breakGlass: false,
      pendingExpiryMs: H,
      requireReason: true,
    },
  },
];

const who = (user: string, ...groups: string[]): Identity => ({ user, groups, kind: 'human', via: 'test' });
const alice = who('alice', 'engineering');
const bob = who('bob', 'engineering', 'approvers');
const carol = who('carol', 'approvers');
const dan = who('dan', 'approvers');
const mallory = who('mallory', 'marketing');
const frank = who('frank', 'finance');
const admin = who('dave', 'admins');

let store: SqliteStore;
let clock: ManualClock;
let service: AccessService;
let events: AccessEvent[];

async function makeService(): Promise<AccessService> {
  const s = new AccessService({
    repo: await AccessRepository.open(store.sql),
    store,
    policies: POLICIES,
    connections: ['staging', 'prod', 'billing'],
    clock,
    log: createLogger({ level: 'silent' }),
    tokenTtlMs: 15 * M,
    isAdmin: (i) => i.groups.includes('admins'),
  });
  s.events.on((e) => events.push(e));
  return s;
}

beforeEach(async () => {
  store = openSqliteStore(':memory:');
  clock = new ManualClock();
  events = [];
  service = await makeService();
  await service.start();
});
afterEach(() => {
  service.close();
  void store.close();
});

async function refusal(fn: () => Promise<unknown>): Promise<AccessError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AccessError);
    return err as AccessError;
  }
  throw new Error('expected an AccessError');
}

describe('requests', () => {
  it('auto policy: granted at once, for the asked duration', async () => {
    const out = await service.requestAccess(mallory, { connection: 'staging', durationMs: 2 * H, reason: '' });
    expect(out.request.state).toBe('granted');
    expect(out.grant).toMatchObject({
      user: 'mallory',
      connection: 'staging',
      approvedBy: [],
      policy: 'auto-staging',
      expiresAt: clock.now() + 2 * H,
    });
    expect(events.map((e) => e.type)).toEqual(['request.created', 'grant.created']);
  });

  it('refuses with stable reasons: unknown connection, no policy, too long', async () => {
    expect(await refusal(async () => await service.requestAccess(alice, { connection: 'nope', durationMs: H, reason: 'x' }))).toMatchObject(
      {
        kind: 'not_found',
        reasons: ['unknown_connection'],
      },
    );
    expect(
      await refusal(async () => await service.requestAccess(mallory, { connection: 'prod', durationMs: H, reason: 'x' })),
    ).toMatchObject({
      kind: 'forbidden',
      reasons: ['no_matching_policy'],
    });
    expect(
      await refusal(async () => await service.requestAccess(alice, { connection: 'prod', durationMs: 5 * H, reason: 'x' })),
    ).toMatchObject({
      kind: 'invalid',
      reasons: ['duration_exceeds_max'],
    });
    expect(events).toEqual([]);
  });

  it('2-of-3: two distinct approvers from the allowed groups make the grant', async () => {
    const { request } = await service.requestAccess(alice, { connection: 'prod', durationMs: H, reason: 'INC-1' });
    expect(request).toMatchObject({ state: 'pending', approvalsRequired: 2, approverGroups: ['approvers'] });

    await clock.advanceSettled(5 * M);
    const first = await service.approve(carol, request.id, { comment: 'ok' });
    expect(first.grant).toBeNull();
    expect(first.request.approvals.map((a) => a.approver)).toEqual(['carol']);
    expect(await refusal(async () => await service.approve(carol, request.id))).toMatchObject({
      kind: 'conflict',
      reasons: ['already_approved'],
    });

    await clock.advanceSettled(5 * M);
    const second = await service.approve(dan, request.id.slice(0, 6)); // a unique prefix works as the id
    expect(second.request.state).toBe('granted');
    expect(second.grant).toMatchObject({
      user: 'alice',
      connection: 'prod',
      approvedBy: ['carol', 'dan'],
      requestId: request.id,
      expiresAt: clock.now() + H,
      breakGlass: false,
    });
    expect(events.map((e) => e.type)).toEqual(['request.created', 'request.approved', 'request.approved', 'grant.created']);
    expect(await refusal(async () => await service.approve(bob, request.id))).toMatchObject({
      kind: 'conflict',
      reasons: ['request_not_pending'],
    });
  });

  it('nobody approves their own request, and approvers must be in the allowed groups', async () => {
    const { request } = await service.requestAccess(bob, { connection: 'prod', durationMs: H, reason: 'mine' });
    expect(await refusal(async () => await service.approve(bob, request.id))).toMatchObject({
      kind: 'forbidden',
      reasons: ['self_approval'],
    });
    const other = (await service.requestAccess(alice, { connection: 'billing', durationMs: H, reason: 'invoice' })).request;
    // bob approves prod, not billing: he cannot even see the request
    expect(await refusal(async () => await service.approve(bob, other.id))).toMatchObject({ kind: 'not_found' });
    // an admin outside the approver groups sees it but may not approve
    expect(await refusal(async () => await service.approve(admin, other.id))).toMatchObject({
      kind: 'forbidden',
      reasons: ['not_an_approver'],
    });
    expect((await service.approve(frank, other.id)).grant).not.toBeNull();
  });

  it('break-glass: granted at once where allowed, reason mandatory, announced', async () => {
    expect(
      await refusal(async () => await service.requestAccess(alice, { connection: 'prod', durationMs: H, reason: ' ', breakGlass: true })),
    ).toMatchObject({
      reasons: ['break_glass_reason_required'],
    });
    expect(
      await refusal(
        async () => await service.requestAccess(alice, { connection: 'billing', durationMs: H, reason: 'x', breakGlass: true }),
      ),
    ).toMatchObject({
      reasons: ['break_glass_not_allowed'],
    });
    const out = await service.requestAccess(alice, { connection: 'prod', durationMs: H, reason: 'prod is down', breakGlass: true });
    expect(out.grant).toMatchObject({ breakGlass: true, approvedBy: ['alice'], reason: 'prod is down' });
    expect(out.request.approvals).toEqual([{ approver: 'alice', comment: 'prod is down', at: clock.now(), breakGlass: true }]);
    expect(events.map((e) => e.type)).toEqual(['request.created', 'grant.created', 'break_glass.used']);
  });

  it('break-glass self-approval of a pending request', async () => {
    const { request } = await service.requestAccess(alice, { connection: 'prod', durationMs: H, reason: 'slow query' });
    expect(await refusal(async () => await service.approve(alice, request.id, { breakGlass: true }))).toMatchObject({
      reasons: ['break_glass_reason_required'],
    });
    const out = await service.approve(alice, request.id, { breakGlass: true, comment: 'it got worse' });
    expect(out.grant).toMatchObject({ breakGlass: true, approvedBy: ['alice'] });
    expect(events.map((e) => e.type)).toContain('break_glass.used');
  });

  it('deny needs a reason; the requester may withdraw; strangers may not deny', async () => {
    const a = (await service.requestAccess(alice, { connection: 'prod', durationMs: H, reason: 'x' })).request;
    expect(await refusal(async () => await service.deny(carol, a.id, ''))).toMatchObject({
      kind: 'invalid',
      reasons: ['deny_reason_required'],
    });
    expect(await refusal(async () => await service.deny(mallory, a.id, 'no'))).toMatchObject({ kind: 'not_found' });
    expect((await service.deny(carol, a.id, 'use staging')).request).toMatchObject({
      state: 'denied',
      decidedBy: 'carol',
      decisionReason: 'use staging',
    });
    const b = (await service.requestAccess(alice, { connection: 'prod', durationMs: H, reason: 'y' })).request;
    expect((await service.deny(alice, b.id, 'not needed')).request.state).toBe('withdrawn');
    expect(events.filter((e) => e.type === 'request.denied' || e.type === 'request.withdrawn').map((e) => e.type)).toEqual([
      'request.denied',
      'request.withdrawn',
    ]);
  });

  it('one pending request per connection at a time', async () => {
    await service.requestAccess(alice, { connection: 'prod', durationMs: H, reason: 'x' });
    expect(await refusal(async () => await service.requestAccess(alice, { connection: 'prod', durationMs: H, reason: 'x' }))).toMatchObject(
      {
        kind: 'conflict',
        reasons: ['request_pending'],
      },
    );
  });

  it('lists mine and those I can approve', async () => {
    const a = (await service.requestAccess(alice, { connection: 'prod', durationMs: H, reason: 'x' })).request;
    await service.requestAccess(alice, { connection: 'billing', durationMs: H, reason: 'x' });
    expect((await service.listRequests(alice)).mine).toHaveLength(2);
    expect((await service.listRequests(carol)).approvable.map((r) => r.id)).toEqual([a.id]);
    expect((await service.listRequests(frank)).approvable.map((r) => r.connection)).toEqual(['billing']);
    expect(await service.listRequests(mallory)).toEqual({ mine: [], approvable: [] });
  });
});

describe('pending expiry', () => {
  it('a timer on the clock expires an undecided request', async () => {
    const { request } = await service.requestAccess(alice, { connection: 'prod', durationMs: H, reason: 'x' });
    await clock.advanceSettled(30 * M - 1);
    expect((await service.getRequest(alice, request.id)).state).toBe('pending');
    await clock.advanceSettled(1);
    expect(await service.getRequest(alice, request.id)).toMatchObject({
      state: 'expired',
      reasons: ['approval_required', 'request_expired'],
    });
    expect(events.at(-1)).toMatchObject({ type: 'request.expired' });
    expect(await refusal(async () => await service.approve(carol, request.id))).toMatchObject({ reasons: ['request_not_pending'] });
  });

  it('requests that expired while the gateway was down are swept on start', async () => {
    const { request } = await service.requestAccess(alice, { connection: 'prod', durationMs: H, reason: 'x' });
    service.close(); // "gateway stops": its timers go with it
    const later = new ManualClock(clock.now() + 31 * M);
    clock = later;
    service = await makeService();
    await service.start();
    expect((await service.getRequest(alice, request.id)).state).toBe('expired');
  });

  it('a decided request is not expired afterwards', async () => {
    const { request } = await service.requestAccess(alice, { connection: 'prod', durationMs: H, reason: 'x' });
    await service.approve(carol, request.id);
    await service.approve(dan, request.id);
    await clock.advanceSettled(H);
    expect((await service.getRequest(alice, request.id)).state).toBe('granted');
    expect(events.some((e) => e.type === 'request.expired')).toBe(false);
  });
});

describe('grants, revocation and tokens', () => {
  async function grantFor(user: Identity) {
    const { request } = await service.requestAccess(user, { connection: 'prod', durationMs: H, reason: 'x' });
    await service.approve(carol, request.id);
    return (await service.approve(dan, request.id)).grant!;
  }

  it('revocation: grantee, approvers of the connection and admins may; others may not', async () => {
    const g1 = await grantFor(alice);
    expect(await refusal(async () => await service.revoke(mallory, g1.id))).toMatchObject({ kind: 'not_found' });
    expect(await refusal(async () => await service.revoke(frank, g1.id))).toMatchObject({ kind: 'not_found' });
    let heard: string | undefined;
    const off = service.onRevoked(g1.id, (g) => (heard = grantEndedMessage(g)));
    const revoked = await service.revoke(carol, g1.id, 'shift over');
    off();
    expect(revoked).toMatchObject({ revokedBy: 'carol', revokeReason: 'shift over', revokedAt: clock.now() });
    expect(heard).toBe(`jitgate: access grant ${g1.id.slice(0, 8)} was revoked by carol: shift over`);
    expect(await refusal(async () => await service.revoke(carol, g1.id))).toMatchObject({
      kind: 'conflict',
      reasons: ['grant_not_active'],
    });

    await clock.advanceSettled(M);
    const g2 = await grantFor(alice);
    expect((await service.revoke(alice, g2.id)).revokedBy).toBe('alice');
    await clock.advanceSettled(M);
    const g3 = await grantFor(alice);
    expect((await service.revoke(admin, g3.id)).revokedBy).toBe('dave');
  });

  it('tokens live min(default ttl, grant end) and are tied to their grant', async () => {
    expect(await refusal(async () => await service.mintToken(alice, 'prod'))).toMatchObject({
      kind: 'forbidden',
      reasons: ['no_active_grant'],
    });
    const grant = await grantFor(alice);
    const t1 = await service.mintToken(alice, 'prod');
    expect(t1.expiresAt).toBe(clock.now() + 15 * M);
    expect((await service.grantForToken(t1.id))?.id).toBe(grant.id);
    await clock.advanceSettled(H - 5 * M);
    const t2 = await service.mintToken(alice, 'prod');
    expect(t2.expiresAt).toBe(grant.expiresAt); // cut to the grant's end
    await clock.advanceSettled(5 * M);
    expect(await refusal(async () => await service.mintToken(alice, 'prod'))).toMatchObject({ reasons: ['no_active_grant'] });
  });

  it('a token cut short by its grant still authenticates until its own expiry (so the refusal can say why)', async () => {
    const repo = await AccessRepository.open(store.sql);
    const verifier = new GrantAwareVerifier(new TokenAuthority(store), repo, () => clock.now());
    const grant = await grantFor(alice);
    await clock.advanceSettled(H - 5 * M);
    const { token, id } = await service.mintToken(alice, 'prod'); // natural 15m, cut to 5m
    expect(await verifier.verifyCleartext('alice', 'prod', token)).toBe(id);
    await clock.advanceSettled(5 * M); // grant over: the token row expired with it
    expect(await new TokenAuthority(store).verifyCleartext('alice', 'prod', token, clock.now())).toBeUndefined();
    expect(await verifier.verifyCleartext('alice', 'prod', token)).toBe(id);
    expect((await verifier.scramCandidates('alice', 'prod')).candidates.map((c) => c.tokenId)).toEqual([id]);
    expect((await service.grantForToken(id))?.expiresAt).toBe(grant.expiresAt);
    await clock.advanceSettled(10 * M); // its own lifetime is over too: a plain wrong password from now on
    expect(await verifier.verifyCleartext('alice', 'prod', token)).toBeUndefined();
    expect((await verifier.scramCandidates('alice', 'prod')).candidates).toEqual([]);
  });

  it('admin-issued tokens rest on a recorded grant', async () => {
    const repo = await AccessRepository.open(store.sql);
    const audit = await AuditLog.open(store.sql, () => clock.now());
    const t = await issueAdminToken(store, repo, {
      user: 'alice',
      connection: 'prod',
      ttlMs: 10 * M,
      now: clock.now(),
      issuedBy: 'local-admin:root',
      groups: ['eng', 'contractors'],
      groupsFrom: { kind: 'stated' },
      audit,
    });
    expect(await repo.grantForToken(t.id)).toMatchObject({
      user: 'alice',
      groups: ['contractors', 'eng'],
      connection: 'prod',
      reason: 'issued by an administrator on the gateway host',
      issuedBy: 'local-admin:root',
      requestId: null,
      expiresAt: clock.now() + 10 * M,
    });
    expect((await service.listGrants(alice)).mine.map((g) => g.id)).toEqual([t.grantId]);
    // audited like any other grant, with the groups and where they came from
    expect(await audit.about(t.grantId)).toMatchObject([
      {
        type: 'access.grant.created',
        actor: 'local-admin:root',
        data: { user: 'alice', groups: ['contractors', 'eng'], groupsFrom: { kind: 'stated' } },
      },
    ]);
    // approvers of the connection see it (and may revoke it)
    expect((await service.listGrants(carol)).others.map((g) => g.id)).toEqual([t.grantId]);
  });

  it('connections: what each identity can see, with its access state', async () => {
    await grantFor(alice);
    await service.requestAccess(alice, { connection: 'billing', durationMs: H, reason: 'x' });
    const views = await service.connectionsFor(alice);
    expect(views.map((v) => [v.name, v.access.state])).toEqual([
      ['staging', 'none'],
      ['prod', 'granted'],
      ['billing', 'pending'],
    ]);
    expect((await service.connectionsFor(mallory)).map((v) => v.name)).toEqual(['staging']);
    expect((await service.connectionsFor(admin)).map((v) => v.name)).toEqual(['staging', 'prod', 'billing']);
  });
});
