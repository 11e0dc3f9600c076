import { describe, expect, it } from 'vitest';
import { HoldQueue } from './hold-queue.js';

function queue(limits = { bytes: 100, messages: 3 }) {
  const flow: boolean[] = [];
  const q = new HoldQueue<string>((full) => flow.push(full), limits);
  return { q, flow };
}

describe('HoldQueue', () => {
  it('hands items out in arrival order', () => {
    const { q } = queue({ bytes: 1000, messages: 10 });
    for (const x of ['a', 'b', 'c']) q.push(x, 1);
    const out: string[] = [];
    q.drain(
      (x) => out.push(x),
      () => true,
    );
    expect(out).toEqual(['a', 'b', 'c']);
    expect(q.length).toBe(0);
  });

  it('stops reading at the message bound and reads again once under it', () => {
    const { q, flow } = queue({ bytes: 1000, messages: 3 });
    q.push('a', 1);
    q.push('b', 1);
    expect(flow).toEqual([]);
    q.push('c', 1);
    expect(flow).toEqual([true]);
    expect(q.isFull).toBe(true);
    let n = 0;
    q.drain(
      () => n++,
      () => n < 1,
    );
    expect(flow).toEqual([true, false]);
    expect(q.length).toBe(2);
  });

  it('stops reading at the byte bound whatever the message count', () => {
    const { q, flow } = queue({ bytes: 100, messages: 1000 });
    q.push('small', 10);
    q.push('big', 95);
    expect(flow).toEqual([true]);
    q.drain(
      () => undefined,
      () => true,
    );
    expect(flow).toEqual([true, false]);
  });

  it('keeps what follows an item that holds again, still counted against the bounds', () => {
    const { q, flow } = queue({ bytes: 100, messages: 1000 });
    q.push('a', 10);
    q.push('held again', 10);
    q.push('c', 60);
    q.push('d', 30);
    expect(flow).toEqual([true]);
    let holding = false;
    const out: string[] = [];
    q.drain(
      (x) => {
        out.push(x);
        if (x === 'held again') holding = true;
      },
      () => !holding,
    );
    expect(out).toEqual(['a', 'held again']);
    expect(q.length).toBe(2);
    // 90 bytes still queued: under the bound, so the client is read again.
    expect(flow).toEqual([true, false]);
    q.push('e', 10);
    expect(flow).toEqual([true, false, true]);
    holding = false;
    q.drain(
      (x) => out.push(x),
      () => !holding,
    );
    expect(out).toEqual(['a', 'held again', 'c', 'd', 'e']);
  });

  it('forgets everything when the session ends', () => {
    const { q } = queue();
    q.push('a', 1);
    q.push('b', 1);
    q.clear();
    expect(q.length).toBe(0);
    expect(q.isFull).toBe(false);
    const out: string[] = [];
    q.drain(
      (x) => out.push(x),
      () => true,
    );
    expect(out).toEqual([]);
  });
});
