/**
 * Escalation of waiting access requests across a restart, on a ManualClock and a real SQLite store:
 * a request whose escalation time passed while the gateway was down is escalated at the next start,
 * once; one whose time has not come is escalated on time by the new process.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import type { Identity } from '../core/types.js';
import { createLogger } from '../obs/log.js';
import type { PolicyRule } from '../policy/access.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite.js';
import type { AccessEvent } from './events.js';
import { AccessRepository } from './repository.js';
import { AccessService } from './service.js';

const M = 60_000;
const POLICY: PolicyRule = {
  name: 'prod',
  connections: ['prod'],
  groups: ['eng'],
  users: [],
  access: {
    approval: 'required',
    approvers: ['leads'],
    approvals: 1,
    maxDurationMs: 3_600_000,
    breakGlass: false,
    pendingExpiryMs: 60 * M,
    requireReason: false,
    escalate: { afterMs: 10 * M, to: ['oncall'] },
  },
};
const who = (user: string, ...groups: string[]): Identity => ({ user, groups, kind: 'human', via: 'test' });

let store: SqliteStore;
let clock: ManualClock;
let events: AccessEvent[];
let services: AccessService[];

async function start(): Promise<AccessService> {
  const s = new AccessService({
    repo: await AccessRepository.open(store.sql),
    store,
    policies: [POLICY],
    connections: ['prod'],
    clock,
    log: createLogger({ level: 'silent' }),
    tokenTtlMs: 15 * M,
  });
  s.events.on((e) => events.push(e));
  await s.start();
  services.push(s);
  return s;
}

beforeEach(() => {
  store = openSqliteStore(':memory:');
  clock = new ManualClock();
  events = [];
  services = [];
});

afterEach(() => {
  for (const s of services) s.close();
  void store.close();
});

const escalated = () => events.filter((e) => e.type === 'request.escalated');

it('escalates at the next start what came due while the gateway was down, once', async () => {
  const first = await start();
  const { request } = await first.requestAccess(who('alice', 'eng'), { connection: 'prod', durationMs: 3_600_000, reason: '' });
  first.close();
  await clock.advanceSettled(15 * M);
  expect(escalated()).toHaveLength(0);

  await start();
  await clock.advanceSettled(0);
  expect(escalated()).toHaveLength(1);
  expect(escalated()[0]).toMatchObject({
    to: ['oncall'],
    waitedMs: 15 * M,
    request: { id: request.id, approverGroups: ['leads', 'oncall'] },
  });
  // A second instance on the same store does not escalate it again.
  const third = await start();
  await clock.advanceSettled(M);
  expect(escalated()).toHaveLength(1);
  // The escalation group may now approve.
  expect((await third.approve(who('olga', 'oncall'), request.id)).grant).not.toBeNull();
});

it('a new process escalates on time what was not yet due, and not after a decision', async () => {
  const first = await start();
  const asked = await first.requestAccess(who('alice', 'eng'), { connection: 'prod', durationMs: 3_600_000, reason: '' });
  first.close();
  await clock.advanceSettled(5 * M);
  const second = await start();
  await clock.advanceSettled(4 * M);
  expect(escalated()).toHaveLength(0);
  await clock.advanceSettled(M);
  expect(escalated().map((e) => (e.type === 'request.escalated' ? e.request.id : ''))).toEqual([asked.request.id]);

  const other = await second.requestAccess(who('bob', 'eng'), { connection: 'prod', durationMs: 3_600_000, reason: '' });
  await second.approve(who('lee', 'leads'), other.request.id);
  await clock.advanceSettled(30 * M);
  expect(escalated()).toHaveLength(1);
});
