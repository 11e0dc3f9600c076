import { describe, expect, it } from 'vitest';
import { ManualClock } from './clock.js';

describe('ManualClock', () => {
  it('fires due timers in time order as it advances, never early, and honours cancel', () => {
    const clock = new ManualClock(1000);
    const fired: string[] = [];
    clock.at(3000, () => fired.push(`b@${clock.now()}`));
    clock.at(2000, () => fired.push(`a@${clock.now()}`));
    const cancel = clock.at(2500, () => fired.push('cancelled'));
    cancel();
    clock.advance(500);
    expect(fired).toEqual([]);
    clock.advance(5000);
    expect(fired).toEqual(['a@2000', 'b@3000']);
    expect(clock.now()).toBe(6500);
  });
});
