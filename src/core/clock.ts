/**
 * Time, injected: grants, tokens and expiry use a Clock so tests advance time instead of sleeping.
 */
export interface Clock {
  now(): number;
  /** Runs `fn` once when the clock reaches `at` (epoch ms); returns a cancel function. */
  at(at: number, fn: () => void): () => void;
}

/** Node's setTimeout caps at about 24.8 days; longer waits are re-armed in steps. */
const MAX_TIMER_MS = 0x7fffffff;

export const systemClock: Clock = {
  now: () => Date.now(),
  at(at, fn) {
    let timer: NodeJS.Timeout;
    const arm = () => {
      const wait = at - Date.now();
      timer = setTimeout(wait > MAX_TIMER_MS ? arm : fn, Math.max(0, Math.min(wait, MAX_TIMER_MS)));
      timer.unref();
    };
    arm();
    return () => clearTimeout(timer);
  },
};

/**
 * A clock that reads `now` (a test's notion of the time) and runs timers in real time, offset to it:
 * `at(t)` fires when `now()` would reach `t` if both moved at the same pace.
 */
export function clockReading(now: () => number): Clock {
  return { now, at: (at, fn) => systemClock.at(Date.now() + (at - now()), fn) };
}

/** A clock for tests: time moves only when `advance` or `set` is called, firing due timers in order. */
export class ManualClock implements Clock {
  private timers: Array<{ at: number; fn: () => void; id: number }> = [];
  private nextId = 0;

  constructor(private current = Date.UTC(2026, 0, 1)) {}

  now(): number {
    return this.current;
  }

  at(at: number, fn: () => void): () => void {
    const id = this.nextId++;
    this.timers.push({ at, fn, id });
    return () => {
      this.timers = this.timers.filter((t) => t.id !== id);
    };
  }

  advance(ms: number): void {
    this.set(this.current + ms);
  }

  set(to: number): void {
    while (this.fireNext(to));
    this.current = to;
  }

  /** advance(), letting the async work each timer starts (store calls) settle before the next fires. */
  async advanceSettled(ms: number): Promise<void> {
    await this.setSettled(this.current + ms);
  }

  async setSettled(to: number): Promise<void> {
    do await new Promise((resolve) => setImmediate(resolve));
    while (this.fireNext(to));
    this.current = to;
  }

  /** Fires the earliest timer due by `to`; false when none is. */
  private fireNext(to: number): boolean {
    const due = this.timers.filter((t) => t.at <= to).sort((a, b) => a.at - b.at)[0];
    if (!due) return false;
    this.timers = this.timers.filter((t) => t !== due);
    this.current = Math.max(this.current, due.at);
    due.fn();
    return true;
  }
}
