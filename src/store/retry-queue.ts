/**
 * Store writes that must not be lost when the store is briefly unavailable (a full disk, a
 * read-only remount, a lock held too long): the end of a session, its recording's final row, the
 * audit entry with its digest. A write that fails is queued and retried in order, with backoff,
 * until it succeeds; while anything is queued, later writes queue behind it so their order holds.
 *
 * Durable enough: the queue lives in memory. If the process dies with writes still queued, the
 * next start reconciles from what is on disk (open sessions are closed, recordings left open are
 * finished from their files, including a `session_end` event written before the store failed;
 * see RecordingService.recoverOrphans).
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../obs/log.js';

export interface RetryQueueOptions {
  clock: Clock;
  log: Logger;
  /** What the queued writes are, for the log (e.g. "session end rows"). */
  what: string;
  /** First retry after this long, doubling up to maxDelayMs (defaults 500 ms and 30 s). */
  firstDelayMs?: number;
  maxDelayMs?: number;
  /** Most writes kept; past it the oldest is dropped, and said so (default 10,000). */
  maxQueued?: number;
}

interface Pending {
  label: string;
  write: () => void;
}

export class StoreRetryQueue {
  private readonly queue: Pending[] = [];
  private cancelTimer: (() => void) | undefined;
  private delayMs: number;
  private dropped = 0;

  constructor(private readonly o: RetryQueueOptions) {
    this.delayMs = o.firstDelayMs ?? 500;
  }

  /** Writes waiting for the store. */
  get size(): number {
    return this.queue.length;
  }

  /**
   * Runs `write` now (or after what is already queued); if it throws, keeps it for a retry.
   * Returns whether it was written now. Never throws.
   */
  run(label: string, write: () => void): boolean {
    if (this.queue.length === 0) {
      try {
        write();
        return true;
      } catch (err) {
        this.o.log.error({ err, write: label }, `cannot write to the store; will retry (${this.o.what})`);
      }
    }
    this.enqueue({ label, write });
    return false;
  }

  /** Tries every queued write once, in order, stopping at the first that still fails. */
  flush(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      try {
        next.write();
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message, queued: this.queue.length, retryInMs: this.delayMs }, `the store is still unavailable (${this.o.what})`);
        this.arm();
        return;
      }
      this.queue.shift();
    }
    this.o.log.info({ what: this.o.what }, 'queued store writes done');
    this.delayMs = this.o.firstDelayMs ?? 500;
  }

  /** Stops retrying (at shutdown, after a last flush); what is left is reconciled at the next start. */
  close(): void {
    this.flush();
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    if (this.queue.length > 0) this.o.log.error({ queued: this.queue.length, what: this.o.what }, 'store writes still pending at shutdown; the next start reconciles them');
  }

  private enqueue(p: Pending): void {
    const max = this.o.maxQueued ?? 10_000;
    if (this.queue.length >= max) {
      this.queue.shift();
      this.dropped++;
      this.o.log.error({ dropped: this.dropped, what: this.o.what }, 'store retry queue full: dropped the oldest write (the next start reconciles it)');
    }
    this.queue.push(p);
    if (!this.cancelTimer) this.arm();
  }

  private arm(): void {
    const delay = this.delayMs;
    this.delayMs = Math.min(this.delayMs * 2, this.o.maxDelayMs ?? 30_000);
    this.cancelTimer = this.o.clock.at(this.o.clock.now() + delay, () => {
      this.cancelTimer = undefined;
      this.flush();
    });
  }
}
