import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../core/clock.js';
import { Janitor } from './janitor.js';

function target(connection: string, fail = false) {
  const t = {
    connection,
    runs: 0,
    sweep: async () => {
      t.runs++;
      if (fail) throw new Error('backend down');
    },
  };
  return t;
}

describe('Janitor', () => {
  it('sweeps at start and then every interval on the injected clock', async () => {
    const clock = new ManualClock();
    const a = target('a');
    const b = target('b');
    const janitor = new Janitor([a, b], clock, { warn: () => undefined }, 60_000);
    await janitor.start();
    expect([a.runs, b.runs]).toEqual([1, 1]);
    clock.advance(59_999);
    await janitor.lastPass;
    expect(a.runs).toBe(1);
    clock.advance(1);
    await janitor.lastPass;
    expect([a.runs, b.runs]).toEqual([2, 2]);
    clock.advance(60_000);
    await janitor.lastPass;
    expect(a.runs).toBe(3);
    janitor.stop();
    clock.advance(600_000);
    await janitor.lastPass;
    expect(a.runs).toBe(3);
  });

  it('logs a failing sweep and keeps the schedule (and the other connections)', async () => {
    const clock = new ManualClock();
    const bad = target('bad', true);
    const good = target('good');
    const warnings: unknown[] = [];
    const janitor = new Janitor([bad, good], clock, { warn: (obj: unknown) => void warnings.push(obj) }, 1_000);
    await janitor.start();
    clock.advance(1_000);
    await janitor.lastPass;
    expect([bad.runs, good.runs]).toEqual([2, 2]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatchObject({ connection: 'bad' });
    janitor.stop();
  });
});
