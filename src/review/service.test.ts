import Database from 'better-sqlite3';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import type { Decision, HoldInfo, Identity, PendingDecision } from '../core/types.js';
import { createLogger } from '../obs/log.js';
import { analysePostgres, loadPostgresParser } from '../sql/postgres.js';
import type { ReviewEvent } from './events.js';
import { ReviewRepository } from './repository.js';
import { matchReview, type ReviewRule } from '../policy/review-rules.js';
import { ReviewError, ReviewService } from './service.js';

const person = (user: string, ...groups: string[]): Identity => ({ user, groups, kind: 'human', via: 'test' });
const carol = person('carol', 'dba');
const dan = person('dan', 'dba');

const RULE: ReviewRule = {
  name: 'writes',
  connections: ['*'],
  groups: ['*'],
  except: [],
  match: { kinds: [], writes: true, tables: [], functions: [], unboundedWrites: false, multiStatement: false },
  approval: { approvers: ['dba'], approvals: 2, timeoutMs: 60_000 },
};

let db: Database.Database;
let clock: ManualClock;
const log = createLogger({ level: 'silent' });

beforeAll(() => loadPostgresParser());
beforeEach(() => {
  db = new Database(':memory:');
  clock = new ManualClock();
});
afterEach(() => db.close());

function service(consoleBase?: string): { svc: ReviewService; events: ReviewEvent[] } {
  const svc = new ReviewService({ repo: new ReviewRepository(db), clock, log, consoleBase: () => consoleBase });
  const events: ReviewEvent[] = [];
  svc.events.on((e) => events.push(e));
  return { svc, events };
}

function hold(svc: ReviewService, sql = 'update t set a = 1 where id = 1', sessionId = 's1') {
  const match = matchReview([RULE], analysePostgres(sql))!;
  return svc.hold({
    sessionId,
    user: 'alice',
    groups: ['engineering'],
    connection: 'prod',
    statement: { source: 'simple', text: sql },
    match,
  });
}

/** The hold a pending decision has announced (a review announces it as it is created). */
function holdOf(pending: PendingDecision): HoldInfo | undefined {
  let hold: HoldInfo | undefined;
  pending.onHold((h) => (hold = h));
  return hold;
}

function idOf(events: ReviewEvent[]): string {
  return events.find((e) => e.type === 'review.created')!.review.id;
}

describe('ReviewService', () => {
  it('releases the statement after N distinct approvals, not before', async () => {
    const { svc, events } = service();
    let decided: Decision | undefined;
    void hold(svc).then((d) => (decided = d));
    const id = idOf(events);
    expect(svc.approve(carol, id, 'ok').reasons).toEqual(['approval_recorded']);
    await Promise.resolve();
    expect(decided).toBeUndefined();
    expect(() => svc.approve(carol, id)).toThrow(/already approved/);
    expect(svc.approve(dan, id.slice(0, 8)).reasons).toEqual(['approved']);
    await Promise.resolve();
    expect(decided).toMatchObject({
      effect: 'allow',
      reasons: ['review_approved'],
      rule: 'writes',
      reviewId: id,
      approvedBy: ['carol', 'dan'],
    });
    expect(events.map((e) => e.type)).toEqual(['review.created', 'review.approved', 'review.approved']);
  });

  it('times out on the clock: refused with 57014 and review_timeout, record expired', async () => {
    const { svc, events } = service();
    const pending = hold(svc);
    const id = idOf(events);
    clock.advance(59_999);
    clock.advance(1);
    const d = await pending;
    expect(d).toMatchObject({ effect: 'deny', reasons: ['review_timeout'], code: 'cancelled' });
    expect(svc.get(carol, id)).toMatchObject({ state: 'expired', outcome: ['review_timeout'] });
    expect(() => svc.approve(carol, id)).toThrow(ReviewError);
  });

  it('the hold can be withdrawn (client cancel): refused with the cancel text, record withdrawn', async () => {
    const { svc, events } = service();
    const pending = hold(svc);
    expect(holdOf(pending)?.notice).toMatchObject({ effect: 'review', rule: 'writes', reasons: ['write_statement'] });
    holdOf(pending)!.withdraw();
    expect(await pending).toMatchObject({ effect: 'deny', code: 'cancelled', message: 'canceling statement due to user request' });
    expect(svc.get(carol, idOf(events))).toMatchObject({ state: 'withdrawn', decidedBy: 'alice', outcome: ['cancelled_by_client'] });
  });

  it('a session that ends withdraws only its own held statements', async () => {
    const { svc, events } = service();
    const mine = hold(svc, 'update t set a = 1 where id = 1', 's1');
    void hold(svc, 'update t set a = 2 where id = 2', 's2');
    svc.endSession('s1');
    expect(await mine).toMatchObject({ effect: 'deny', reasons: ['session_ended'] });
    const states = events.filter((e) => e.type === 'review.created').map((e) => svc.get(carol, e.review.id).state);
    expect(states).toEqual(['withdrawn', 'pending']);
  });

  it("closes what a gone process left pending (expired if its time is up, else withdrawn), never a live session's", () => {
    const first = service();
    void hold(first.svc, 'update t set a = 1 where id = 1', 'old-1');
    clock.advance(30_000);
    void hold(first.svc, 'update t set a = 2 where id = 2', 'old-2');
    void hold(first.svc, 'update t set a = 3 where id = 3', 'live-elsewhere');
    const [a, b, c] = first.events.map((e) => e.review.id);
    first.svc.close(); // that process is gone: its timers with it, its records still pending
    clock.advance(40_000); // the first one's time is up, the others' is not

    const second = service();
    expect(second.svc.closeOrphans(new Set(['live-elsewhere']))).toBe(2);
    expect(second.svc.get(carol, a!)).toMatchObject({ state: 'expired', outcome: ['review_timeout'] });
    expect(second.svc.get(carol, b!)).toMatchObject({ state: 'withdrawn', outcome: ['session_ended'] });
    // Its session is open in the store: another live instance holds the statement.
    expect(second.svc.get(carol, c!)).toMatchObject({ state: 'pending' });
    expect(second.events.map((e) => e.type)).toEqual([]);
    // Its own held statements are never orphans, whatever the store says of their sessions.
    const own = hold(second.svc, 'update t set a = 4 where id = 4', 'mine');
    expect(second.svc.closeOrphans(new Set())).toBe(1);
    expect(second.svc.get(carol, idOf(second.events))).toMatchObject({ state: 'pending' });
    void own;
  });

  it('only the author, approvers and admins see a review; ids cannot be probed', () => {
    const { svc, events } = service();
    void hold(svc);
    const id = idOf(events);
    expect(svc.get(person('alice'), id).user).toBe('alice');
    expect(() => svc.get(person('mallory', 'marketing'), id)).toThrow(/no review/);
    expect(svc.list(person('mallory', 'marketing'))).toEqual([]);
    svc.setAdminCheck((w) => w.groups.includes('admins'));
    expect(svc.list(person('dave', 'admins'))).toHaveLength(1);
    expect(() => svc.deny(person('mallory', 'marketing'), id)).toThrow(/no review/);
  });

  it('stores the statement without password literals (the session still runs the original)', () => {
    const { svc, events } = service();
    void hold(svc, "alter role app password 'hunter2'");
    expect(svc.get(carol, idOf(events)).statement).toBe("alter role app password '[redacted]'");
  });
});

describe('where to approve', () => {
  it('names the console page on the gateway host, never the wildcard listen address', () => {
    const { svc } = service('http://0.0.0.0:8080/');
    const hint = holdOf(hold(svc))?.hint;
    expect(hint).toMatch(
      /^waiting up to 1m for 2 approvals from dba; approve with jitgate approve [0-9a-f]{8} or http:\/\/[^/]+:8080\/reviews\/[0-9a-f-]{36} \(Ctrl-C withdraws it\)$/,
    );
    expect(hint).not.toContain('0.0.0.0');
  });
});
