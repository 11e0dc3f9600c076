/**
 * What a client sends while its session cannot go on (a statement held for a person, or a command
 * still running where the protocol answers one at a time) waits here, in arrival order, bounded the
 * same way for every protocol: by bytes and by messages. When either bound is reached the relay
 * stops reading the client (TCP backpressure does the rest) and reads again once the queue is back
 * under both. Reading goes on below the bounds on purpose: a client that quits while it waits is
 * seen at once, and its session (with whatever it held for review) ends.
 */

/** Per session: enough for any pipeline a driver sends, small enough for thousands of sessions. */
export const HOLD_QUEUE_LIMITS = { bytes: 1024 * 1024, messages: 1024 } as const;

export interface HoldQueueLimits {
  bytes: number;
  messages: number;
}

export class HoldQueue<T> {
  private items: T[] = [];
  private sizes: number[] = [];
  private head = 0;
  private bytes = 0;
  private full = false;

  /** `onFull(true)` when a bound is reached (stop reading the client), `onFull(false)` when back under both. */
  constructor(
    private readonly onFull: (full: boolean) => void,
    private readonly limits: HoldQueueLimits = HOLD_QUEUE_LIMITS,
  ) {}

  get length(): number {
    return this.items.length - this.head;
  }

  /** Whether a bound is reached (the client is not being read). */
  get isFull(): boolean {
    return this.full;
  }

  push(item: T, bytes: number): void {
    this.items.push(item);
    this.sizes.push(bytes);
    this.bytes += bytes;
    this.update();
  }

  /**
   * Hands the queued items to `handle` in order while `proceed()` allows; an item `handle` holds
   * again stops the loop (through `proceed`) and the rest stays queued, still counted.
   */
  drain(handle: (item: T) => void, proceed: () => boolean): void {
    while (this.head < this.items.length && proceed()) {
      const item = this.items[this.head]!;
      this.bytes -= this.sizes[this.head]!;
      this.head++;
      handle(item);
    }
    this.compact();
    this.update();
  }

  /** The session ended: nothing queued will run. */
  clear(): void {
    this.items = [];
    this.sizes = [];
    this.head = 0;
    this.bytes = 0;
    this.full = false;
  }

  private update(): void {
    const full = this.length >= this.limits.messages || this.bytes >= this.limits.bytes;
    if (full === this.full) return;
    this.full = full;
    this.onFull(full);
  }

  /** Drops what was handed out, so a long-lived session's queue does not grow without end. */
  private compact(): void {
    if (this.head === 0) return;
    if (this.head === this.items.length) {
      this.items = [];
      this.sizes = [];
    } else {
      this.items = this.items.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
    }
    this.head = 0;
  }
}
