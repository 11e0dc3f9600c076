/**
 * Usage counted across gateway instances, for limits that must hold for a user or an address
 * wherever their requests land: agents' statements per minute and rows per hour, sign-in attempts.
 *
 * The statement path never waits on the store: each instance counts in memory, and at every
 * catch-up round (CATCH_UP_EVERY_MS) writes what it counted since, in time buckets, and reads what
 * the others counted. A limit then sees its own exact count plus the others' as of the last round,
 * so several instances together overshoot a limit by at most half a second of traffic. A whole
 * bucket counts while any of it is in the window: the others' usage is over-counted by at most one
 * bucket, never under-counted (fail closed).
 */
import type { InstanceRepository, UsageCount } from '../store/store.js';
import type { CatchUpReader } from './catch-up.js';

export type UsageKind = 'statements' | 'rows' | 'sign_in';

/** Bucket width per kind, and how far back the others' counts are read (the longest window using them). */
const KINDS: Record<UsageKind, { bucketMs: number; windowMs: number }> = {
  statements: { bucketMs: 1_000, windowMs: 60_000 },
  rows: { bucketMs: 60_000, windowMs: 3_600_000 },
  sign_in: { bucketMs: 1_000, windowMs: 60_000 },
};

/** Buckets older than this are dropped from the store, at most once a minute by each instance. */
const KEEP_MS = 2 * 3_600_000;
const DROP_EVERY_MS = 60_000;

export class SharedUsage implements CatchUpReader {
  readonly name = 'usage';
  /** Counted here since the last round, by kind, key and bucket. */
  private pending = new Map<string, UsageCount>();
  /** The others' counts as of the last round: kind + key to their buckets. */
  private others = new Map<string, Array<{ bucket: number; count: number }>>();
  /** The others' counts last read, per instance and bucket, to tell what is new (see onOthers). */
  private seen = new Map<string, number>();
  private readonly listeners = new Set<(kind: UsageKind, key: string, n: number) => void>();
  private droppedAt = -Infinity;

  constructor(
    private readonly o: {
      repo: Pick<InstanceRepository, 'addUsage' | 'usageOfOthers' | 'dropUsageBefore'>;
      self: string;
      clock: { now(): number };
    },
  ) {}

  /** Counts `n` of `kind` for `key` (a user, an address) now. */
  add(kind: UsageKind, key: string, n = 1): void {
    const { bucketMs } = KINDS[kind];
    this.keep({ kind, key, bucket: Math.floor(this.o.clock.now() / bucketMs) * bucketMs, count: n });
  }

  private keep(c: UsageCount): void {
    const id = `${c.kind}\0${c.key}\0${c.bucket}`;
    const p = this.pending.get(id);
    if (p) p.count += c.count;
    else this.pending.set(id, { ...c });
  }

  /** What the other instances counted of `kind` for `key` in buckets reaching past `since`, and the oldest such bucket. */
  countOthers(kind: UsageKind, key: string, since: number): { count: number; oldest: number | undefined } {
    let count = 0;
    let oldest: number | undefined;
    const { bucketMs } = KINDS[kind];
    for (const b of this.others.get(`${kind}\0${key}`) ?? []) {
      if (b.bucket + bucketMs <= since) continue;
      count += b.count;
      oldest = oldest === undefined ? b.bucket : Math.min(oldest, b.bucket);
    }
    return { count, oldest };
  }

  /** Calls `fn` with what the others counted since the last round (for token buckets, which take no windows). */
  onOthers(fn: (kind: UsageKind, key: string, n: number) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async catchUp(): Promise<void> {
    const now = this.o.clock.now();
    if (this.pending.size > 0) {
      // Taken first: what is counted while the write runs goes in the next round.
      const counts = [...this.pending.values()];
      this.pending = new Map();
      try {
        await this.o.repo.addUsage(this.o.self, counts);
      } catch (err) {
        // Kept for the next round: a count the store missed must not be lost.
        for (const c of counts) this.keep(c);
        throw err;
      }
    }
    const since = Object.fromEntries(Object.entries(KINDS).map(([kind, k]) => [kind, now - k.windowMs - k.bucketMs]));
    const rows = await this.o.repo.usageOfOthers(this.o.self, since);
    const others = new Map<string, Array<{ bucket: number; count: number }>>();
    const seen = new Map<string, number>();
    for (const r of rows) {
      const key = `${r.kind}\0${r.key}`;
      let list = others.get(key);
      if (!list) others.set(key, (list = []));
      list.push({ bucket: r.bucket, count: r.count });
      const id = `${r.instanceId}\0${key}\0${r.bucket}`;
      seen.set(id, r.count);
      const added = r.count - (this.seen.get(id) ?? 0);
      if (added > 0) for (const fn of this.listeners) fn(r.kind as UsageKind, r.key, added);
    }
    this.others = others;
    this.seen = seen;
    if (now - this.droppedAt >= DROP_EVERY_MS) {
      await this.o.repo.dropUsageBefore(now - KEEP_MS);
      this.droppedAt = now;
    }
  }
}
