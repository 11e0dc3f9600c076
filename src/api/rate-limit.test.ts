import { expect, it } from 'vitest';
import { RateLimiter } from './rate-limit.js';

it('allows a burst, then refills at the sustained rate, per key; a clock stepping back does not drain it', () => {
  let now = 1_000_000;
  const limiter = new RateLimiter({ burst: 3, perMinute: 60, now: () => now });
  expect([1, 2, 3].map(() => limiter.take('a').ok)).toEqual([true, true, true]);
  const refused = limiter.take('a');
  expect(refused).toEqual({ ok: false, retryAfterS: 1 });
  expect(limiter.take('b').ok).toBe(true); // another address has its own bucket
  now += 1000; // one request per second refills
  expect(limiter.take('a').ok).toBe(true);
  expect(limiter.take('a').ok).toBe(false);
  now -= 3_600_000; // the clock is set back an hour
  expect(limiter.take('a').ok).toBe(false);
  now += 3_600_000 + 2000;
  expect(limiter.take('a').ok).toBe(true);
});

it('forgets the least recently seen address beyond its bound', () => {
  const limiter = new RateLimiter({ burst: 1, perMinute: 1, now: () => 0, maxClients: 2 });
  expect(limiter.take('a').ok).toBe(true);
  expect(limiter.take('b').ok).toBe(true);
  expect(limiter.take('c').ok).toBe(true); // 'a' is forgotten
  expect(limiter.take('a').ok).toBe(true);
  expect(limiter.take('c').ok).toBe(false);
});
