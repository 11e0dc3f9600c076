/** Access policy decisions as tables: policies + identity + ask in, effect + reason codes out. */
import { describe, expect, it } from 'vitest';
import {
  accessPolicyFor,
  approverGroupsFor,
  decideApproval,
  decideDeny,
  decideRequest,
  decideRevoke,
  globMatch,
  type AccessRules,
  type PendingRequestFacts,
  type PolicyRule,
} from './access.js';

const H = 3_600_000;
const rules = (r: Partial<AccessRules> = {}): AccessRules => ({
  approval: 'required',
  approvers: ['approvers'],
  approvals: 1,
  maxDurationMs: 4 * H,
  breakGlass: false,
  pendingExpiryMs: H,
  requireReason: true,
  ...r,
});

const POLICIES: PolicyRule[] = [
  {
    name: 'sre-auto',
    connections: ['prod-*'],
    groups: ['sre'],
    users: [],
    access: rules({ approval: 'auto', approvers: [], maxDurationMs: 8 * H, requireReason: false }),
  },
  {
    name: 'eng-prod',
    connections: ['prod-*'],
    groups: ['engineering'],
    users: [],
    access: rules({ approvers: ['approvers', 'dba'], approvals: 2, breakGlass: true }),
  },
  { name: 'oncall-billing', connections: ['billing'], groups: [], users: ['olivia'], access: rules({ approvers: ['finance'] }) },
  {
    name: 'everyone-staging',
    connections: ['staging', 'staging-?'],
    groups: ['*'],
    users: [],
    access: rules({ approval: 'auto', approvers: [], requireReason: false, maxDurationMs: 24 * H }),
  },
  { name: 'masking-only', connections: ['*'], groups: ['*'], users: [] }, // no access section: never decides access
];
const CONNECTIONS = ['prod-orders', 'prod-users', 'billing', 'staging', 'staging-2', 'analytics'];

const alice = { user: 'alice', groups: ['engineering'] };
const sam = { user: 'sam', groups: ['sre', 'engineering'] };
const olivia = { user: 'olivia', groups: [] };
const mallory = { user: 'mallory', groups: ['marketing'] };

describe('globMatch', () => {
  it.each([
    ['prod-*', 'prod-orders', true],
    ['prod-*', 'prod-', true],
    ['prod-*', 'production', false],
    ['staging-?', 'staging-2', true],
    ['staging-?', 'staging-22', false],
    ['a.b', 'a.b', true],
    ['a.b', 'axb', false], // dots are literal
    ['*', 'anything', true],
    ['orders', 'orders', true],
    ['orders', 'orders2', false],
  ])('%s ~ %s -> %s', (pattern, name, expected) => {
    expect(globMatch(pattern, name)).toBe(expected);
  });
});

describe('decideRequest', () => {
  const ask = (
    who: { user: string; groups: readonly string[] },
    connection: string,
    o: { h?: number; reason?: string; breakGlass?: boolean } = {},
  ) =>
    decideRequest({
      policies: POLICIES,
      connections: CONNECTIONS,
      who,
      connection,
      durationMs: (o.h ?? 1) * H,
      reason: o.reason ?? 'ticket 42',
      breakGlass: o.breakGlass ?? false,
    });

  it.each([
    // who, connection, options, effect, reasons, policy
    ['sre: first matching policy grants at once', sam, 'prod-orders', {}, 'grant', ['auto_approved'], 'sre-auto'],
    ['engineer: needs approval', alice, 'prod-orders', {}, 'pending', ['approval_required'], 'eng-prod'],
    ['engineer: over the maximum', alice, 'prod-users', { h: 5 }, 'deny', ['duration_exceeds_max'], 'eng-prod'],
    ['engineer: no reason', alice, 'prod-users', { reason: '  ' }, 'deny', ['reason_required'], 'eng-prod'],
    ['engineer: break-glass with a reason', alice, 'prod-users', { breakGlass: true }, 'grant', ['break_glass'], 'eng-prod'],
    [
      'engineer: break-glass without a reason',
      alice,
      'prod-users',
      { breakGlass: true, reason: '' },
      'deny',
      ['break_glass_reason_required'],
      'eng-prod',
    ],
    ['listed user', olivia, 'billing', {}, 'pending', ['approval_required'], 'oncall-billing'],
    [
      'listed user: break-glass not allowed there',
      olivia,
      'billing',
      { breakGlass: true },
      'deny',
      ['break_glass_not_allowed'],
      'oncall-billing',
    ],
    ['engineer on billing: no policy applies', alice, 'billing', {}, 'deny', ['no_matching_policy'], undefined],
    ['anyone on staging (groups: *)', mallory, 'staging-2', { reason: '' }, 'grant', ['auto_approved'], 'everyone-staging'],
    ['a policy without access section never grants', mallory, 'analytics', {}, 'deny', ['no_matching_policy'], undefined],
    ['unknown connection (fail closed)', sam, 'prod-nope', {}, 'deny', ['unknown_connection'], undefined],
    ['zero duration', alice, 'prod-orders', { h: 0 }, 'deny', ['duration_invalid'], 'eng-prod'],
  ] as const)('%s', (_name, who, connection, o, effect, reasons, policy) => {
    const d = ask(who, connection, o);
    expect(d.effect).toBe(effect);
    expect(d.reasons).toEqual(reasons);
    expect(d.policy).toBe(policy);
    expect(d.message.length).toBeGreaterThan(0);
  });

  it('says what the limit is when a request is too long', () => {
    expect(ask(alice, 'prod-users', { h: 5 }).message).toBe('policy "eng-prod" allows at most 4h on "prod-users" (asked for 5h)');
  });

  it('carries the approval rules of the deciding policy', () => {
    const d = ask(alice, 'prod-orders');
    expect(d.effect === 'pending' && d.rules).toMatchObject({ approvers: ['approvers', 'dba'], approvals: 2, breakGlass: true });
  });

  it('no policies at all: nothing is granted', () => {
    expect(
      decideRequest({
        policies: [],
        connections: CONNECTIONS,
        who: sam,
        connection: 'staging',
        durationMs: H,
        reason: 'x',
        breakGlass: false,
      }),
    ).toMatchObject({
      effect: 'deny',
      reasons: ['no_matching_policy'],
    });
  });
});

describe('decideApproval', () => {
  const now = 1_000_000;
  const request = (r: Partial<PendingRequestFacts> = {}): PendingRequestFacts => ({
    user: 'alice',
    state: 'pending',
    expiresAt: now + H,
    approverGroups: ['approvers', 'dba'],
    approvalsRequired: 2,
    breakGlassAllowed: false,
    approvedBy: [],
    ...r,
  });
  const bob = { user: 'bob', groups: ['approvers'] };
  const dora = { user: 'dora', groups: ['dba'] };

  it.each([
    ['first of two approvals', request(), bob, {}, 'approve', ['approval_recorded'], false],
    ['second distinct approval completes it', request({ approvedBy: ['bob'] }), dora, {}, 'approve', ['approved'], true],
    ['the same approver twice', request({ approvedBy: ['bob'] }), bob, {}, 'refuse', ['already_approved'], false],
    ['nobody approves their own request', request(), { user: 'alice', groups: ['approvers'] }, {}, 'refuse', ['self_approval'], false],
    ['approver outside the groups', request(), { user: 'mallory', groups: ['marketing'] }, {}, 'refuse', ['not_an_approver'], false],
    ['not pending', request({ state: 'denied' }), bob, {}, 'refuse', ['request_not_pending'], false],
    ['expired by time', request({ expiresAt: now }), bob, {}, 'refuse', ['request_expired'], false],
    [
      'break-glass self-approval where allowed',
      request({ breakGlassAllowed: true }),
      { user: 'alice', groups: [] },
      { breakGlass: true, comment: 'db down' },
      'approve',
      ['break_glass'],
      true,
    ],
    [
      'break-glass self-approval needs a reason',
      request({ breakGlassAllowed: true }),
      { user: 'alice', groups: [] },
      { breakGlass: true, comment: ' ' },
      'refuse',
      ['break_glass_reason_required'],
      false,
    ],
    [
      'break-glass self-approval where not allowed',
      request(),
      { user: 'alice', groups: [] },
      { breakGlass: true, comment: 'db down' },
      'refuse',
      ['self_approval', 'break_glass_not_allowed'],
      false,
    ],
    ['one approval needed', request({ approvalsRequired: 1 }), dora, {}, 'approve', ['approved'], true],
  ] as const)('%s', (_name, req, approver, o, effect, reasons, final) => {
    const d = decideApproval({ request: req, approver: approver, now, ...o });
    expect([d.effect, d.reasons, d.final]).toEqual([effect, reasons, final]);
  });
});

describe('decideDeny', () => {
  const now = 5;
  const request: PendingRequestFacts = {
    user: 'alice',
    state: 'pending',
    expiresAt: 10,
    approverGroups: ['approvers'],
    approvalsRequired: 1,
    breakGlassAllowed: false,
    approvedBy: [],
  };
  it.each([
    ['an approver denies', { user: 'bob', groups: ['approvers'] }, false, 'no', 'deny', ['denied_by_approver']],
    ['an admin denies', { user: 'dave', groups: ['admins'] }, true, 'no', 'deny', ['denied_by_approver']],
    ['the requester withdraws', { user: 'alice', groups: [] }, false, 'not needed', 'withdraw', ['withdrawn_by_requester']],
    ['a stranger may not', { user: 'mallory', groups: [] }, false, 'no', 'refuse', ['not_allowed_to_deny']],
    ['a reason is mandatory', { user: 'bob', groups: ['approvers'] }, false, '', 'refuse', ['deny_reason_required']],
  ] as const)('%s', (_n, actor, isAdmin, reason, effect, reasons) => {
    const d = decideDeny({ request, actor: actor, isAdmin, reason, now });
    expect([d.effect, d.reasons]).toEqual([effect, reasons]);
  });
});

describe('decideRevoke', () => {
  const now = 100;
  const active = { user: 'alice', expiresAt: 200, revokedAt: null };
  it.each([
    ['the grantee', active, { user: 'alice', groups: [] }, false, 'revoke', ['revoked_by_grantee']],
    ['an approver of the connection', active, { user: 'bob', groups: ['approvers'] }, false, 'revoke', ['revoked_by_approver']],
    ['an admin', active, { user: 'dave', groups: [] }, true, 'revoke', ['revoked_by_admin']],
    ['anyone else', active, { user: 'mallory', groups: ['marketing'] }, false, 'refuse', ['not_allowed_to_revoke']],
    ['an expired grant', { ...active, expiresAt: 100 }, { user: 'dave', groups: [] }, true, 'refuse', ['grant_not_active']],
    ['a revoked grant', { ...active, revokedAt: 50 }, { user: 'alice', groups: [] }, false, 'refuse', ['grant_not_active']],
  ] as const)('%s', (_n, grant, actor, isAdmin, effect, reasons) => {
    const d = decideRevoke({ grant, actor: actor, isAdmin, approverGroups: ['approvers'], now });
    expect([d.effect, d.reasons]).toEqual([effect, reasons]);
  });
});

describe('matching helpers', () => {
  it('first applicable access policy wins, in file order', () => {
    expect(accessPolicyFor(POLICIES, sam, 'prod-users')?.name).toBe('sre-auto');
    expect(accessPolicyFor(POLICIES, alice, 'prod-users')?.name).toBe('eng-prod');
  });
  it('approver groups of a connection across policies', () => {
    expect(approverGroupsFor(POLICIES, 'prod-orders').sort()).toEqual(['approvers', 'dba']);
    expect(approverGroupsFor(POLICIES, 'billing')).toEqual(['finance']);
    expect(approverGroupsFor(POLICIES, 'analytics')).toEqual([]);
  });
});
