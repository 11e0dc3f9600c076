import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { LoginThrottle, type FailureSummary } from './login-throttle.js';

function setup(options = {}) {
  const clock = new ManualClock(1_000_000);
  const summaries: FailureSummary[] = [];
  const throttle = new LoginThrottle(clock, (s) => summaries.push(s), {
    sourceThreshold: 3,
    userThreshold: 5,
    baseDelayMs: 100,
    maxDelayMs: 1000,
    ...options,
  });
  const fail = (user: string, clientAddress = '10.0.0.1') =>
    throttle.failed({ protocol: 'postgres', user, connection: 'app', clientAddress, reason: 'bad_token' });
  return { clock, summaries, throttle, fail };
}

describe('LoginThrottle', () => {
  it('throttles a source past its threshold with exponential backoff, capped', () => {
    const { fail } = setup();
    const verdicts = Array.from({ length: 9 }, (_, i) => fail(`u${i}`));
    expect(verdicts.map((v) => v.throttled)).toEqual([false, false, false, true, true, true, true, true, true]);
    expect(verdicts.map((v) => v.delayMs)).toEqual([0, 0, 0, 100, 200, 400, 800, 1000, 1000]);
    expect(verdicts.map((v) => v.auditEach)).toEqual([true, true, true, false, false, false, false, false, false]);
    // Another address is not slowed by this one.
    expect(fail('v', '10.0.0.2').throttled).toBe(false);
  });

  it('throttles a user guessed at from many addresses, and a success starts afresh', () => {
    const { fail, throttle } = setup();
    const verdicts = Array.from({ length: 7 }, (_, i) => fail('alice', `10.1.0.${i}`));
    expect(verdicts.map((v) => v.throttled)).toEqual([false, false, false, false, false, true, true]);
    throttle.succeeded('10.9.9.9', 'alice'); // alice signs in with her valid token
    expect(fail('alice', '10.1.1.1').throttled).toBe(false);
  });

  it('forgets a count some time after its last failure', () => {
    const { fail, clock } = setup({ forgetAfterMs: 60_000 });
    for (let i = 0; i < 4; i++) fail('x');
    expect(fail('x').throttled).toBe(true);
    clock.advance(60_001);
    expect(fail('x').throttled).toBe(false);
  });

  it('summarises throttled failures once per window per source, names capped and escaped', () => {
    const { fail, clock, summaries, throttle } = setup({ windowMs: 60_000 });
    for (let i = 0; i < 3; i++) fail(`u${i}`);
    for (let i = 0; i < 20; i++) fail(i === 0 ? 'evil\r\x1b[2K' + 'a'.repeat(100) : `name${i % 12}`);
    expect(summaries).toEqual([]);
    clock.advance(60_000);
    expect(summaries).toHaveLength(1);
    const s = summaries[0]!;
    expect(s).toMatchObject({
      clientAddress: '10.0.0.1',
      count: 20,
      protocols: ['postgres'],
      reasons: ['bad_token'],
      connections: ['app'],
    });
    expect(s.users).toHaveLength(10);
    expect(s.users[0]).toBe(`evil\\r\\x1b[2K${'a'.repeat(55)}…(109 characters)`);
    expect(s.moreUsers).toBe(3);
    // The next window starts with the next throttled failure; close() writes what is open.
    fail('again');
    throttle.close();
    expect(summaries).toHaveLength(2);
    expect(summaries[1]).toMatchObject({ count: 1, users: ['again'] });
  });
});
