/**
 * Limits that count across instances: two instances on one SQLite file (two connections, as two
 * gateway processes have), each with its own quotas and sign-in limiter over SharedUsage, a catch-up
 * round run by hand where the gateway runs one every 500 ms.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RateLimiter } from '../api/rate-limit.js';
import type { Identity } from '../core/types.js';
import { AgentQuotas, QuotaExceeded } from '../mcp/quota.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite.js';
import { SharedUsage } from './usage.js';

const dir = mkdtempSync(join(tmpdir(), 'jitgate-usage-'));
const stores: SqliteStore[] = [];
afterAll(() => {
  for (const s of stores) void s.close();
  rmSync(dir, { recursive: true, force: true });
});

let file = 0;
/** Two instances on a fresh store file, sharing one clock. */
function twoInstances() {
  const path = join(dir, `store-${++file}.db`);
  const clock = { t: 10_000_000, now: () => clock.t };
  const instance = (self: string) => {
    const store = openSqliteStore(path);
    stores.push(store);
    return { store, usage: new SharedUsage({ repo: store.instances, self, clock }) };
  };
  const a = instance('A');
  const b = instance('B');
  // A round on each: A reads before B writes, so A reads once more (as its next round would).
  const round = async () => {
    await a.usage.catchUp();
    await b.usage.catchUp();
    await a.usage.catchUp();
  };
  return { a, b, clock, round };
}

const bot: Identity = { user: 'bot', groups: ['agents'], kind: 'service', via: 'apikey' };

describe('usage counted across instances', () => {
  it('an agent’s statements per minute count on every instance, as of the last round', async () => {
    const { a, b, clock, round } = twoInstances();
    const limits = [{ groups: ['agents'], statementsPerMinute: 3 }];
    const onA = new AgentQuotas(limits, clock.now, a.usage).statementGate('bot', ['agents'])!;
    const onB = new AgentQuotas(limits, clock.now, b.usage).statementGate('bot', ['agents'])!;
    expect(onA()).toBeUndefined();
    expect(onA()).toBeUndefined();
    await round();
    expect(onB()).toBeUndefined();
    const refused = onB();
    expect(refused).toMatchObject({ effect: 'deny', reasons: ['statement_rate'] });
    // The oldest statement counted (on A, in its one-second bucket) leaves the window in a minute.
    expect(refused?.message).toBe('jitgate: rate limit reached: 3 statements per minute; retry in 60 s');
    await round();
    expect(onA()).toMatchObject({ effect: 'deny' });
    clock.t += 61_000;
    await round();
    expect(onA()).toBeUndefined();
    expect(onB()).toBeUndefined();
  });

  it('an agent’s rows per hour count on every instance', async () => {
    const { a, b, clock, round } = twoInstances();
    const limits = [{ groups: ['*'], rowsPerHour: 100 }];
    const qa = new AgentQuotas(limits, clock.now, a.usage);
    const qb = new AgentQuotas(limits, clock.now, b.usage);
    qa.countRows(bot, 70);
    await round();
    expect(qb.rowsLeft(bot)).toBe(30);
    qb.countRows(bot, 30);
    await round();
    expect(() => qa.admitRows(bot)).toThrow(QuotaExceeded);
    expect(() => qb.admitRows(bot)).toThrow(/100 of 100 rows/);
    clock.t += 3_600_000 + 60_000;
    await round();
    expect(qa.rowsLeft(bot)).toBe(100);
  });

  it('sign-in attempts let through by one instance drain the other’s bucket for that address', async () => {
    const { a, b, clock, round } = twoInstances();
    const limiterA = new RateLimiter({ burst: 4, perMinute: 4, now: clock.now, elsewhere: a.usage });
    const limiterB = new RateLimiter({ burst: 4, perMinute: 4, now: clock.now, elsewhere: b.usage });
    expect([1, 2, 3].map(() => limiterA.take('203.0.113.9').ok)).toEqual([true, true, true]);
    await round();
    expect(limiterB.take('203.0.113.9').ok).toBe(true);
    expect(limiterB.take('203.0.113.9')).toEqual({ ok: false, retryAfterS: 15 });
    // Another address is untouched; a later round does not charge the same attempts twice.
    expect(limiterB.take('198.51.100.7').ok).toBe(true);
    await round();
    await round();
    expect(limiterA.take('203.0.113.9').ok).toBe(false);
    clock.t += 15_000;
    expect(limiterA.take('203.0.113.9').ok).toBe(true);
  });

  it('keeps what it counted when the store cannot take it, and writes it at the next round', async () => {
    const { a, b, round } = twoInstances();
    const realAdd = a.store.instances.addUsage.bind(a.store.instances);
    a.store.instances.addUsage = () => Promise.reject(new Error('disk full'));
    a.usage.add('statements', 'bot', 2);
    await expect(a.usage.catchUp()).rejects.toThrow('disk full');
    a.store.instances.addUsage = realAdd;
    await round();
    expect(b.usage.countOthers('statements', 'bot', 0).count).toBe(2);
  });
});
