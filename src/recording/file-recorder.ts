/**
 * Session recordings as append-only, compressed, hash-chained files: one gzip file per session,
 * one JSON line per event. The writer flushes (Z_SYNC_FLUSH) and fsyncs at checkpoints, typically
 * statement boundaries, so a crash loses at most the events since the last one, and the reader
 * recovers every complete event from a file cut anywhere. Each event carries `h`, the SHA-256 of the
 * previous event's `h` and this event's canonical JSON, so removing, reordering or editing an event
 * breaks the chain; the final digest goes to the audit log when the session ends.
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import zlib from 'node:zlib';

export interface RecordedEvent {
  /** 0, 1, 2, ... within the session. */
  seq: number;
  /** Epoch ms. */
  at: number;
  type: string;
  data: Record<string, unknown>;
  /** Chain hash (hex) of this event. */
  h: string;
}

export const GENESIS = '0'.repeat(64);

export function chainHash(previous: string, event: Omit<RecordedEvent, 'h'>): string {
  return createHash('sha256').update(previous).update(canonicalJson(event)).digest('hex');
}

/** JSON with object keys sorted, so the same event always hashes the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

export class FileRecorder {
  private readonly fd: number;
  private readonly gzip = zlib.createGzip();
  private pending: Buffer[] = [];
  private seq = 0;
  private last = GENESIS;
  private closed = false;

  constructor(
    readonly path: string,
    private readonly now: () => number = Date.now,
  ) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // 'wx': a recording is never overwritten.
    this.fd = openSync(path, 'wx', 0o600);
    this.gzip.on('data', (chunk: Buffer) => this.pending.push(chunk));
  }

  get digest(): string {
    return this.last;
  }

  get events(): number {
    return this.seq;
  }

  /** Adds an event (buffered until the next checkpoint). Throws once closed. */
  append(type: string, data: Record<string, unknown>): RecordedEvent {
    if (this.closed) throw new Error('recording is closed');
    const base = { seq: this.seq++, at: this.now(), type, data };
    const event: RecordedEvent = { ...base, h: chainHash(this.last, base) };
    this.last = event.h;
    this.gzip.write(JSON.stringify(event) + '\n');
    return event;
  }

  /** Makes everything appended so far durable: sync-flush the compressor, write, fsync. */
  async checkpoint(): Promise<void> {
    await new Promise<void>((resolve) => this.gzip.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve()));
    this.writePending();
    fsyncSync(this.fd);
  }

  /** Ends the gzip stream properly and closes the file; returns the final chain digest. */
  async close(): Promise<string> {
    if (this.closed) return this.last;
    this.closed = true;
    await new Promise<void>((resolve) => {
      this.gzip.once('end', () => resolve());
      this.gzip.end();
      this.gzip.resume();
    });
    this.writePending();
    fsyncSync(this.fd);
    closeSync(this.fd);
    return this.last;
  }

  private writePending(): void {
    for (const chunk of this.pending) writeSync(this.fd, chunk);
    this.pending = [];
  }
}

export interface ReadResult {
  events: RecordedEvent[];
  /** The chain verified from the first event to the last one read. */
  intact: boolean;
  /** Where the chain first failed, if it did. */
  brokenAt?: number;
  /** The file ended without a complete gzip trailer (crash or still being written). */
  truncated: boolean;
}

/** Reads every complete event, verifying the chain; tolerates a file cut anywhere. */
export function readRecording(path: string): ReadResult {
  const compressed = readFileSync(path);
  let text: string;
  let truncated = false;
  try {
    text = zlib.gunzipSync(compressed).toString('utf8');
  } catch {
    truncated = true;
    text = zlib.gunzipSync(compressed, { finishFlush: zlib.constants.Z_SYNC_FLUSH }).toString('utf8');
  }
  const lines = text.split('\n');
  // A last line without its newline is an event cut in half: not part of the record.
  if (lines[lines.length - 1] !== '') truncated = true;
  const events: RecordedEvent[] = [];
  let previous = GENESIS;
  let brokenAt: number | undefined;
  for (const line of lines.slice(0, -1)) {
    const event = JSON.parse(line) as RecordedEvent;
    const { h, ...base } = event;
    if (brokenAt === undefined && (event.seq !== events.length || chainHash(previous, base) !== h)) brokenAt = events.length;
    previous = h;
    events.push(event);
  }
  return { events, intact: brokenAt === undefined, brokenAt, truncated };
}
