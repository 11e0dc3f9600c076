import { describe, expect, it } from 'vitest';
import type { Identity } from '../core/types.js';
import { AgentQuotas, QuotaExceeded } from './quota.js';

const bot: Identity = { user: 'bot', groups: ['agents'], kind: 'service', via: 'apikey' };

describe('agent quotas', () => {
  it('gates statements per minute over a sliding window, per agent, only for matching groups', () => {
    let now = 1_000_000;
    const q = new AgentQuotas([{ groups: ['agents'], statementsPerMinute: 2 }], () => now);
    expect(q.statementGate('alice', ['engineering'])).toBeUndefined();
    const gate = q.statementGate('bot', ['agents'])!;
    expect(gate()).toBeUndefined();
    now += 30_000;
    expect(gate()).toBeUndefined();
    const refused = gate();
    expect(refused).toMatchObject({ effect: 'deny', reasons: ['statement_rate'] });
    expect(refused?.message).toBe('jitgate: rate limit reached: 2 statements per minute; retry in 30 s');
    // Another session of the same agent shares the budget.
    expect(q.statementGate('bot', ['agents'])!()).toMatchObject({ effect: 'deny' });
    now += 30_001;
    expect(gate()).toBeUndefined();
  });

  it('counts rows per hour and refuses once the quota is used, with when to retry', () => {
    let now = 5_000_000;
    const q = new AgentQuotas([{ groups: ['*'], rowsPerHour: 100 }], () => now);
    q.countRows(bot, 60);
    expect(q.rowsLeft(bot)).toBe(40);
    now += 10 * 60_000;
    q.countRows(bot, 40);
    expect(() => q.admitRows(bot)).toThrow(QuotaExceeded);
    try {
      q.admitRows(bot);
    } catch (err) {
      expect((err as QuotaExceeded).message).toBe('row quota reached: 100 of 100 rows in the last hour');
      expect((err as QuotaExceeded).retryAfterMs).toBe(50 * 60_000);
    }
    now += 50 * 60_000;
    expect(q.rowsLeft(bot)).toBe(60);
    expect(() => q.admitRows(bot)).not.toThrow();
  });
});
