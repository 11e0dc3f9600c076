import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { createLogger } from '../obs/log.js';
import { StoreRetryQueue } from './retry-queue.js';

const log = createLogger({ level: 'silent' });
const tick = () => new Promise((r) => setImmediate(r));

describe('StoreRetryQueue', () => {
  it('writes after the current tick, in chunks of one transaction each, yielding to the event loop between chunks', async () => {
    const clock = new ManualClock(0);
    const transactions: number[] = [];
    let inTransaction = 0;
    const q = new StoreRetryQueue({
      clock,
      log,
      what: 'test',
      chunk: 100,
      transaction: async (writes) => {
        inTransaction = 0;
        await writes();
        transactions.push(inTransaction);
      },
    });
    const written: number[] = [];
    // 250 sessions end in the same tick.
    for (let i = 0; i < 250; i++) {
      q.run(`end ${i}`, () => {
        inTransaction++;
        written.push(i);
      });
    }
    expect(written).toEqual([]);
    // Other work gets a turn between chunks: each turn of the loop writes at most one chunk.
    const seen: number[] = [];
    for (let turn = 0; turn < 10 && q.size > 0; turn++) {
      await tick();
      seen.push(written.length);
    }
    expect(transactions).toEqual([100, 100, 50]);
    expect(seen).toEqual([100, 200, 250]);
    expect(written).toEqual(Array.from({ length: 250 }, (_, i) => i));
    expect(q.chunksWritten).toBe(3);
  });

  it('retries a chunk the store refused, with backoff, keeping later writes in order behind it', async () => {
    const clock = new ManualClock(0);
    const q = new StoreRetryQueue({ clock, log, what: 'test', firstDelayMs: 100, maxDelayMs: 400 });
    let storeUp = false;
    const written: string[] = [];
    const write = (what: string) => () => {
      if (!storeUp) throw new Error('SQLITE_FULL: database or disk is full');
      written.push(what);
    };
    q.run('a', write('a'));
    await tick();
    expect(q.size).toBe(1);
    // The store is back, but b must not overtake a (nor be tried before a's retry is due).
    storeUp = true;
    q.run('b', write('b'));
    await tick();
    expect(written).toEqual([]);
    storeUp = false;
    await clock.advanceSettled(100);
    expect(q.size).toBe(2);
    storeUp = true;
    await clock.advanceSettled(199);
    expect(written).toEqual([]);
    await clock.advanceSettled(1);
    expect(written).toEqual(['a', 'b']);
    expect(q.size).toBe(0);
    // Nothing queued: the next write goes out after the current tick again.
    q.run('c', write('c'));
    await tick();
    expect(written).toEqual(['a', 'b', 'c']);
  });

  it('keeps a bounded number of writes, dropping the oldest', async () => {
    const q = new StoreRetryQueue({ clock: new ManualClock(0), log, what: 'test', maxQueued: 2 });
    for (const label of ['1', '2', '3']) q.run(label, () => undefined);
    expect(q.size).toBe(2);
    await q.close();
    expect(q.size).toBe(0);
  });
});
