/**
 * Store writes at the end of a session (its end row, its recording's final row, the audit entry
 * with its digest), batched and retried.
 *
 * Batched: writes are queued and run right after the current tick, up to `chunk` of them in one
 * transaction, yielding to the event loop between chunks. A thousand sessions ending together
 * (a backend restart drops every client) then cost a few transactions spread over many turns of the
 * event loop, instead of a thousand commits in one stall.
 *
 * Retried: when the store cannot take a chunk (a full disk, a read-only remount, a lock held too
 * long) it stays queued, in order, and is retried with backoff until it succeeds; later writes wait
 * behind it so their order holds. A session must not stay "active" forever because its end row
 * came at a bad moment.
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
  /** Runs a chunk of writes as one transaction (default: each write on its own); their calls join it. */
  transaction?: (writes: () => Promise<void>) => Promise<void>;
  /** Most writes per transaction before yielding to the event loop (default 100). */
  chunk?: number;
  /** After a failure, first retry after this long, doubling up to maxDelayMs (defaults 500 ms and 30 s). */
  firstDelayMs?: number;
  maxDelayMs?: number;
  /** Most writes kept; past it the oldest is dropped, and said so (default 100,000). */
  maxQueued?: number;
}

interface Pending {
  label: string;
  write: () => void | Promise<void>;
}

export class StoreRetryQueue {
  private readonly queue: Pending[] = [];
  /** A flush is scheduled: right after this tick (`soon`) or after a backoff (`cancelRetry`). */
  private soon: NodeJS.Immediate | undefined;
  private cancelRetry: (() => void) | undefined;
  /** The chunk being written: one at a time, so order holds across the awaits. */
  private writing: Promise<boolean> | undefined;
  private delayMs: number;
  private failing = false;
  private dropped = 0;
  /** Chunks written (for tests and benchmarks: how the work was spread). */
  chunksWritten = 0;

  constructor(private readonly o: RetryQueueOptions) {
    this.delayMs = o.firstDelayMs ?? 500;
  }

  /** Writes waiting for the store. */
  get size(): number {
    return this.queue.length;
  }

  /** Queues a write; it runs after the current tick (or, the store failing, when it recovers). */
  run(label: string, write: () => void | Promise<void>): void {
    const max = this.o.maxQueued ?? 100_000;
    if (this.queue.length >= max) {
      this.queue.shift();
      this.dropped++;
      this.o.log.error(
        { dropped: this.dropped, what: this.o.what },
        'store write queue full: dropped the oldest write (the next start reconciles it)',
      );
    }
    this.queue.push({ label, write });
    if (!this.soon && !this.cancelRetry) this.soon = setImmediate(() => void this.flushChunks());
  }

  /**
   * Writes now, when the store is not known to be failing (a lone write: nothing to batch, and its
   * caller may read it back at once); when it fails, or the store is failing, it is queued.
   */
  async runNow(label: string, write: () => void | Promise<void>): Promise<void> {
    if (!this.failing) {
      try {
        await write();
        return;
      } catch (err) {
        this.failing = true;
        this.o.log.error({ err: (err as Error).message, write: label }, `cannot write to the store; will retry (${this.o.what})`);
      }
    }
    this.run(label, write);
  }

  /** Writes everything queued now, chunk by chunk; stops at a chunk that fails. */
  async flush(): Promise<void> {
    this.unschedule();
    while (this.queue.length > 0) if (!(await this.writeChunk())) return this.retryLater();
  }

  /** A last flush (at shutdown); what is left is reconciled at the next start. */
  async close(): Promise<void> {
    await this.flush();
    this.unschedule();
    if (this.queue.length > 0)
      this.o.log.error(
        { queued: this.queue.length, what: this.o.what },
        'store writes still pending at shutdown; the next start reconciles them',
      );
  }

  /** One chunk per turn of the event loop, so other sessions are served in between. */
  private async flushChunks(): Promise<void> {
    this.soon = undefined;
    if (this.queue.length === 0) return;
    if (!(await this.writeChunk())) return this.retryLater();
    if (this.queue.length > 0 && !this.soon && !this.cancelRetry) this.soon = setImmediate(() => void this.flushChunks());
  }

  /** Writes the next chunk in one transaction; false (and nothing dequeued) when the store fails. */
  private writeChunk(): Promise<boolean> {
    // A flush at shutdown waits for a chunk already under way, then writes what is left.
    const next = (this.writing ?? Promise.resolve(true)).then(() => this.writeNextChunk());
    this.writing = next;
    void next.finally(() => {
      if (this.writing === next) this.writing = undefined;
    });
    return next;
  }

  private async writeNextChunk(): Promise<boolean> {
    const chunk = this.queue.slice(0, Math.max(1, this.o.chunk ?? 100));
    if (chunk.length === 0) return true;
    const writeAll = async () => {
      for (const p of chunk) await p.write();
    };
    try {
      if (this.o.transaction) await this.o.transaction(writeAll);
      else await writeAll();
    } catch (err) {
      this.o.log[this.failing ? 'warn' : 'error'](
        { err: (err as Error).message, queued: this.queue.length, first: chunk[0]?.label, retryInMs: this.delayMs },
        `cannot write to the store; will retry (${this.o.what})`,
      );
      this.failing = true;
      return false;
    }
    this.queue.splice(0, chunk.length);
    this.chunksWritten++;
    if (this.failing) {
      this.failing = false;
      this.delayMs = this.o.firstDelayMs ?? 500;
      this.o.log.info({ what: this.o.what }, 'the store takes writes again');
    }
    return true;
  }

  private retryLater(): void {
    this.unschedule();
    const delay = this.delayMs;
    this.delayMs = Math.min(this.delayMs * 2, this.o.maxDelayMs ?? 30_000);
    this.cancelRetry = this.o.clock.at(this.o.clock.now() + delay, () => {
      this.cancelRetry = undefined;
      void this.flushChunks();
    });
  }

  private unschedule(): void {
    if (this.soon) clearImmediate(this.soon);
    this.soon = undefined;
    this.cancelRetry?.();
    this.cancelRetry = undefined;
  }
}
