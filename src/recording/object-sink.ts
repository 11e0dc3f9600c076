/**
 * Recordings on object storage. A session's events are written to the local disk exactly as with
 * local files (durable at statement boundaries, whatever the network does); once the recording is
 * finished and sealed it is uploaded, with its chain digest and SHA-256 as object metadata, and the
 * local file is removed. Readers look on the local disk first and then in the bucket, so a recording
 * reads the same wherever it is at that moment.
 *
 * Uploads run in the background, a few at a time. A failed one is retried with exponential backoff
 * (the local file stays until the object is there), reported in `status()` (/readyz), in metrics
 * and, on its first failure and on its recovery, in the audit log. Finished recordings still on the
 * disk at start (a crash, an outage, a stop before the upload) are found by `start()` and uploaded.
 */
import { readdir, unlink } from 'node:fs/promises';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AuditAppender } from '../audit/log.js';
import type { Logger } from '../obs/log.js';
import { parseRecording, readRecording, RecordingTail, type ReadResult } from './file-recorder.js';
import { sessionOfLocation, type LocalFileSink } from './local-sink.js';
import type { S3Objects } from './s3-objects.js';
import type { RecordingFollower, RecordingSink, RecordingWriter } from './sink.js';

export interface UploadStatus {
  /** Recordings waiting for their upload (failing ones included). */
  pending: number;
  /** Recordings whose last upload attempt failed. */
  failing: number;
  /** When the longest-failing upload first failed (ms since the epoch). */
  oldestFailureAt: number | null;
  lastError: string | null;
}

export interface ObjectStoreSinkOptions {
  local: LocalFileSink;
  objects: S3Objects;
  audit: AuditAppender;
  log: Logger;
  now?: () => number;
  registry?: Registry;
  /** Uploads at once (default 4). */
  concurrency?: number;
  /** Backoff after a failed upload: first wait, doubling up to the last (default 1 s to 5 min). */
  retry?: { firstMs: number; maxMs: number };
}

interface Upload {
  location: string;
  /** The chain digest the recordings index holds for it (object metadata); null when unknown. */
  digest: string | null;
  attempts: number;
  firstFailedAt: number | null;
  lastError: string | null;
  /** Not tried again before this time. */
  dueAt: number;
}

/** How long stop() waits for uploads under way; what is left is uploaded at the next start. */
const STOP_WAIT_MS = 10_000;

export class ObjectStoreSink implements RecordingSink {
  private readonly queue = new Map<string, Upload>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly now: () => number;
  private readonly concurrency: number;
  private readonly retry: { firstMs: number; maxMs: number };
  private readonly uploads: Counter<'outcome'> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly o: ObjectStoreSinkOptions) {
    this.now = o.now ?? Date.now;
    this.concurrency = o.concurrency ?? 4;
    this.retry = o.retry ?? { firstMs: 1_000, maxMs: 300_000 };
    if (o.registry) {
      this.uploads = new Counter({
        name: 'jitgate_recording_uploads_total',
        help: 'Uploads of finished recordings to object storage, by outcome (uploaded, failed)',
        labelNames: ['outcome'],
        registers: [o.registry],
      });
      const gauges = {
        pending: 'Finished recordings kept on the local disk until their upload succeeds',
        failing: 'Recordings whose last upload attempt failed (retried with backoff)',
      } as const;
      const status = () => this.status();
      for (const [field, help] of Object.entries(gauges) as Array<[keyof typeof gauges, string]>)
        new Gauge({
          name: `jitgate_recording_uploads_${field}`,
          help,
          registers: [o.registry],
          collect() {
            this.set(status()[field]);
          },
        });
    }
  }

  /**
   * Queues the finished recordings found on the local disk (left by a crash, an outage or a stop);
   * `digestOf` gives each one's final chain digest from the recordings index.
   */
  async start(digestOf: (location: string) => string | null = () => null): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.o.local.dir, { recursive: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    let found = 0;
    for (const name of names) {
      if (!name.endsWith('.jsonl.gz')) continue;
      const location = name.split('\\').join('/');
      this.archive(location, digestOf(location));
      found++;
    }
    if (found > 0) this.o.log.info({ recordings: found }, 'uploading finished recordings left on the local disk');
    return found;
  }

  /** Waits a bounded time for the uploads under way; the rest stay on the disk for the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled(this.inFlight.values()), new Promise((r) => (timeout = setTimeout(r, STOP_WAIT_MS).unref()))]);
    clearTimeout(timeout);
    if (this.inFlight.size > 0)
      this.o.log.warn({ uploads: this.inFlight.size }, 'stopped before uploads finished (retried at the next start)');
    this.o.objects.close();
  }

  status(): UploadStatus {
    let failing = 0;
    let oldest: number | null = null;
    let lastError: string | null = null;
    for (const u of this.queue.values()) {
      if (u.firstFailedAt === null) continue;
      failing++;
      if (oldest === null || u.firstFailedAt < oldest) {
        oldest = u.firstFailedAt;
        lastError = u.lastError;
      }
    }
    return { pending: this.queue.size, failing, oldestFailureAt: oldest, lastError };
  }

  create(sessionId: string, startedAt: number, now: () => number): { writer: RecordingWriter; location: string } {
    return this.o.local.create(sessionId, startedAt, now);
  }

  /** From the disk while the recording is there (synchronously, as local files are), else from the bucket. */
  read(location: string): ReadResult | Promise<ReadResult> {
    if (this.o.local.has(location)) {
      try {
        return this.o.local.read(location);
      } catch (err) {
        // Uploaded and removed between the look and the read: the object has it.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return this.readObject(location);
  }

  private async readObject(location: string): Promise<ReadResult> {
    const object = await this.o.objects.get(location);
    if (!object) throw new Error(`no recording at ${this.o.objects.url(location)} nor at ${this.o.local.describe(location)}`);
    return parseRecording(object.body);
  }

  follow(location: string): RecordingFollower {
    const sealedPath = this.o.local.sealedPath(location);
    return new RecordingTail(sealedPath, async () => {
      try {
        return readRecording(sealedPath);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      const object = await this.o.objects.get(location);
      return object ? parseRecording(object.body) : undefined;
    });
  }

  seal(location: string): Promise<void> {
    return this.o.local.seal(location);
  }

  archive(location: string, digest: string | null): void {
    const queued = this.queue.get(location);
    if (queued) {
      queued.digest ??= digest;
      return;
    }
    this.queue.set(location, { location, digest, attempts: 0, firstFailedAt: null, lastError: null, dueAt: 0 });
    this.pump();
  }

  /** Removes the recording from the disk and the bucket (an upload under way is let finish first). */
  async delete(location: string): Promise<boolean> {
    this.queue.delete(location);
    await this.inFlight.get(location)?.catch(() => undefined);
    const local = await this.o.local.delete(location);
    const existed = (await this.o.objects.head(location)) !== undefined;
    if (existed) await this.o.objects.delete(location);
    return local || existed;
  }

  size(location: string): number | undefined | Promise<number | undefined> {
    return this.o.local.size(location) ?? this.o.objects.head(location).then((h) => h?.size);
  }

  describe(location: string): string {
    return this.o.local.has(location) ? this.o.local.describe(location) : this.o.objects.url(location);
  }

  /** Starts the uploads that are due, up to the concurrency; arms a timer for the next one due. */
  private pump(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const now = this.now();
    let next = Infinity;
    for (const u of this.queue.values()) {
      if (this.inFlight.has(u.location)) continue;
      if (u.dueAt > now) {
        next = Math.min(next, u.dueAt);
        continue;
      }
      if (this.inFlight.size >= this.concurrency) break;
      const run = this.upload(u).finally(() => {
        this.inFlight.delete(u.location);
        this.pump();
      });
      this.inFlight.set(u.location, run);
    }
    if (next !== Infinity && this.inFlight.size < this.concurrency) this.timer = setTimeout(() => this.pump(), next - now).unref();
  }

  private async upload(u: Upload): Promise<void> {
    u.attempts++;
    try {
      // Idempotent: a recording archived by crash recovery may not be sealed yet.
      await this.o.local.seal(u.location);
      try {
        await this.o.objects.putFile(u.location, this.o.local.sealedPath(u.location), u.digest ? { 'chain-digest': u.digest } : {});
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        // Deleted meanwhile, or uploaded by another instance sharing this disk.
        this.queue.delete(u.location);
        return;
      }
      // Only what is still queued as this upload is done: a delete() meanwhile has its own say.
      if (this.queue.get(u.location) !== u) return;
      await unlink(this.o.local.sealedPath(u.location)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT')
          this.o.log.warn({ err: err.message, location: u.location }, 'uploaded, but cannot remove the local file');
      });
      // Pending until the local file is gone too, so nobody sees it counted done while it is still there.
      if (this.queue.get(u.location) === u) this.queue.delete(u.location);
      this.uploads?.inc({ outcome: 'uploaded' });
      if (u.firstFailedAt !== null) this.recovered(u);
    } catch (err) {
      this.failed(u, err as Error);
    }
  }

  private failed(u: Upload, err: Error): void {
    this.uploads?.inc({ outcome: 'failed' });
    const first = u.firstFailedAt === null;
    u.firstFailedAt ??= this.now();
    u.lastError = err.message;
    const wait = Math.min(this.retry.maxMs, this.retry.firstMs * 2 ** (u.attempts - 1));
    // Jitter, so instances that lost the store together do not come back in step.
    u.dueAt = this.now() + Math.round(wait * (0.8 + Math.random() * 0.4));
    this.o.log.warn({ location: u.location, attempts: u.attempts, err: err.message }, 'cannot upload a recording (kept on disk, retried)');
    if (first) this.auditSafely('recording.upload_failed', u, { error: err.message });
  }

  private recovered(u: Upload): void {
    this.auditSafely('recording.uploaded', u, { attempts: u.attempts, failingSince: new Date(u.firstFailedAt!).toISOString() });
    // The store answers again: what else is waiting need not sit out its backoff.
    for (const other of this.queue.values()) if (other.firstFailedAt !== null) other.dueAt = 0;
  }

  private auditSafely(type: string, u: Upload, data: Record<string, unknown>): void {
    this.o.audit
      .append({
        type,
        actor: 'gateway',
        subject: sessionOfLocation(u.location),
        data: { location: this.o.objects.url(u.location), ...data },
      })
      .catch((err: unknown) => this.o.log.error({ err, type, location: u.location }, 'cannot audit a recording upload'));
  }
}
