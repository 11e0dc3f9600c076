import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { createLogger } from '../obs/log.js';
import { StoreRetryQueue } from './retry-queue.js';

const log = createLogger({ level: 'silent' });

describe('StoreRetryQueue', () => {
  it('retries a failed write with backoff until the store takes it, keeping later writes in order behind it', () => {
    const clock = new ManualClock(0);
    const q = new StoreRetryQueue({ clock, log, what: 'test', firstDelayMs: 100, maxDelayMs: 400 });
    let storeUp = false;
    const written: string[] = [];
    const write = (what: string) => () => {
      if (!storeUp) throw new Error('SQLITE_FULL: database or disk is full');
      written.push(what);
    };
    expect(q.run('a', write('a'))).toBe(false);
    // The store is back, but b must not overtake a.
    storeUp = true;
    expect(q.run('b', write('b'))).toBe(false);
    expect(written).toEqual([]);
    expect(q.size).toBe(2);
    storeUp = false;
    clock.advance(100);
    expect(q.size).toBe(2);
    storeUp = true;
    clock.advance(199);
    expect(written).toEqual([]);
    clock.advance(1);
    expect(written).toEqual(['a', 'b']);
    expect(q.size).toBe(0);
    // Nothing queued: writes go straight through again.
    expect(q.run('c', write('c'))).toBe(true);
    expect(written).toEqual(['a', 'b', 'c']);
  });

  it('keeps a bounded number of writes, dropping the oldest', () => {
    const clock = new ManualClock(0);
    const q = new StoreRetryQueue({ clock, log, what: 'test', maxQueued: 2 });
    const fail = () => {
      throw new Error('down');
    };
    q.run('1', fail);
    q.run('2', fail);
    q.run('3', fail);
    expect(q.size).toBe(2);
    q.close();
  });
});
