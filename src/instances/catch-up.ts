/**
 * What other gateway instances changed in the shared store and this one must act on: a grant
 * revoked through another instance ends this one's sessions on it, a statement held here and
 * decided through another is released or refused, a session killed through another ends here, a
 * cancel that reached another instance cancels the query running here. State lives in the store's
 * tables; every CATCH_UP_EVERY_MS each reader looks at the rows that concern what this instance is
 * doing now (its live grants, held statements, sessions, cancel keys). A
 * notification between instances, when there is one, would only make a reader look earlier.
 */
import type { Logger } from '../obs/log.js';

/** How often an instance reads what others changed: what "within a second" rests on. */
export const CATCH_UP_EVERY_MS = 500;

/** One kind of change another instance can make. */
export interface CatchUpReader {
  readonly name: string;
  /** Reads the store and acts on what changed; cheap when there is nothing to look at. */
  catchUp(): void | Promise<void>;
}

/**
 * Reads on a wall-clock interval, not on the gateway's Clock: how often to look at the store is a
 * matter of real time (what users wait), not of the time grants and reviews are measured in, which
 * tests move by hours at once.
 */
export class StoreCatchUp {
  private timer: NodeJS.Timeout | undefined;
  private readonly failingNow = new Set<string>();
  /** The round under way: a slow store delays the next round instead of stacking them up. */
  private running: Promise<void> | undefined;

  constructor(private readonly o: { log: Logger; readers: readonly CatchUpReader[]; everyMs?: number }) {}

  start(): void {
    this.timer ??= setInterval(() => {
      if (!this.running) void this.runOnce();
    }, this.o.everyMs ?? CATCH_UP_EVERY_MS);
    // Never what keeps the process alive.
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Every reader, once, now (the timer does this on its own); joins a round already under way. */
  runOnce(): Promise<void> {
    this.running ??= this.readAll().finally(() => (this.running = undefined));
    return this.running;
  }

  private async readAll(): Promise<void> {
    for (const reader of this.o.readers) {
      try {
        await reader.catchUp();
        this.failingNow.delete(reader.name);
      } catch (err) {
        // The store unreachable for a moment: the next round reads again; nothing is lost.
        this.failingNow.add(reader.name);
        this.o.log.warn({ err, reader: reader.name }, 'cannot read what other gateway instances changed');
      }
    }
  }

  /**
   * Readers whose last round failed. /readyz is not ready while any is: an instance that cannot
   * see revocations made elsewhere must not take new sessions (fail closed).
   */
  get failing(): string[] {
    return [...this.failingNow];
  }
}
