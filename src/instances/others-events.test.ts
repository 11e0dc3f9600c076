/**
 * Every access and review event another instance writes to the audit log (through the same code
 * that writes it there) comes back out of EventsFromOthers as the event it was, and this instance's
 * own entries do not.
 */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { accessAuditEntry } from '../access/audit.js';
import type { AccessEvent } from '../access/events.js';
import type { AccessRequest, GrantRecord } from '../access/repository.js';
import { AuditLog } from '../audit/log.js';
import { createLogger } from '../obs/log.js';
import { auditReviewEvents } from '../review/audit.js';
import { ReviewEvents, type ReviewEvent } from '../review/events.js';
import type { Review } from '../review/repository.js';
import { EventsFromOthers } from './others-events.js';
import { SqliteSql } from '../store/sqlite-sql.js';

const request = { id: 'req-1', user: 'alice', connection: 'app', reason: 'why', durationMs: 60_000, state: 'pending' } as AccessRequest;
const grant = {
  id: 'grant-1',
  user: 'alice',
  connection: 'app',
  requestId: 'req-1',
  approvedBy: ['bob'],
  issuedBy: null,
} as unknown as GrantRecord;
const review = {
  id: 'rev-1',
  sessionId: 's-1',
  user: 'alice',
  connection: 'app',
  statement: 'drop table t',
  approverGroups: ['dba'],
  approvals: [],
} as unknown as Review;

const accessEvents: AccessEvent[] = [
  { type: 'request.created', at: 1, request },
  { type: 'request.approved', at: 2, request, approver: 'bob', comment: 'ok', final: true },
  { type: 'request.denied', at: 3, request, by: 'carol', reason: 'no' },
  { type: 'request.withdrawn', at: 4, request, reason: 'not needed' },
  { type: 'request.expired', at: 5, request },
  { type: 'request.escalated', at: 6, request, to: ['dba'], waitedMs: 900_000 },
  { type: 'grant.created', at: 7, grant, request },
  { type: 'grant.revoked', at: 8, grant, by: 'dave', reason: 'incident' },
  { type: 'break_glass.used', at: 9, request, grant },
];
const reviewEvents: ReviewEvent[] = [
  { type: 'review.created', at: 1, review },
  { type: 'review.approved', at: 2, review, approver: 'bob', comment: null, final: false },
  { type: 'review.denied', at: 3, review, by: 'carol', comment: 'too risky' },
  { type: 'review.expired', at: 4, review },
  { type: 'review.escalated', at: 5, review, to: ['admins'], waitedMs: 60_000 },
  { type: 'review.withdrawn', at: 6, review, by: null, reason: 'session ended' },
  { type: 'review.withdrawn', at: 7, review, by: 'alice', reason: 'cancelled' },
];

/** This instance's reader and an "other instance" appending to the same log (one database). */
async function setup() {
  const db = new Database(':memory:');
  let t = 0;
  const here = await AuditLog.open(SqliteSql.of(db), () => ++t);
  const elsewhere = await AuditLog.open(SqliteSql.of(db), () => ++t);
  const reader = await EventsFromOthers.open(here, {
    request: async (id) => (id === request.id ? request : undefined),
    grant: async (id) => (id === grant.id ? grant : undefined),
    review: (id) => (id === review.id ? review : undefined),
  });
  const heard: Array<AccessEvent | ReviewEvent> = [];
  reader.access.on((e) => heard.push(e));
  reader.reviews.on((e) => heard.push(e));
  return { here, elsewhere, reader, heard };
}

/** The fields that carry meaning, without the entry time (the reader reports when it was logged). */
const meaning = (e: AccessEvent | ReviewEvent) => ({ ...e, at: undefined });

describe('events made through other instances', () => {
  it('come back as the access events they were', async () => {
    const { elsewhere, reader, heard } = await setup();
    for (const e of accessEvents) await elsewhere.append(accessAuditEntry(e));
    await reader.catchUp();
    expect(heard.map(meaning)).toEqual(accessEvents.map(meaning));
  });

  it('come back as the review events they were', async () => {
    const { elsewhere, reader, heard } = await setup();
    const bus = new ReviewEvents();
    auditReviewEvents(bus, elsewhere, createLogger({ level: 'silent' }));
    for (const e of reviewEvents) bus.emit(e);
    // The listener appends in the background; rounds read what has landed.
    await expect
      .poll(async () => {
        await reader.catchUp();
        return heard.map(meaning);
      })
      .toEqual(reviewEvents.map(meaning));
  });

  it('skip this instance’s own entries and entries of other kinds, and are read once', async () => {
    const { here, elsewhere, reader, heard } = await setup();
    await here.append(accessAuditEntry(accessEvents[0]!));
    await elsewhere.append({ type: 'session.started', actor: 'alice', subject: 's-1' });
    await elsewhere.append(accessAuditEntry(accessEvents[1]!));
    await reader.catchUp();
    await reader.catchUp();
    expect(heard.map((e) => e.type)).toEqual(['request.approved']);
  });
});
