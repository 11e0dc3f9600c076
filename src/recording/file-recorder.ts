/**
 * Session recordings as append-only, compressed, hash-chained files: one gzip file per session,
 * one JSON line per event. The writer flushes (Z_SYNC_FLUSH) and fsyncs at checkpoints, typically
 * statement boundaries, so a crash loses at most the events since the last one, and the reader
 * recovers every complete event from a file cut anywhere. Each event carries `h`, the SHA-256 of the
 * previous event's `h` and this event's canonical JSON, so removing, reordering or editing an event
 * breaks the chain; the final digest goes to the audit log when the session ends.
 */
import { createHash } from 'node:crypto';
import { close as closeFd, fsync, mkdirSync, openSync, readFileSync, write as fsWrite } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { canonicalJson } from '../core/canonical-json.js';

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

export { canonicalJson };

/**
 * Writes one recording. `append` is synchronous and cheap (hash, one JSON line into a buffer);
 * compression, writing and fsync happen in `checkpoint()`, off the event loop (zlib and fs run on
 * libuv's pool), so a slow disk delays durability, never the data path. Checkpoints are group
 * committed: while one is being written, later calls wait for the next one, which takes everything
 * appended meanwhile; a busy session therefore costs one fsync per disk round trip, not per statement.
 */
export class FileRecorder {
  private readonly fd: number;
  private readonly gzip = zlib.createGzip();
  private compressed: Buffer[] = [];
  /** JSON lines appended since the last checkpoint took them. */
  private lines: string[] = [];
  private linesBytes = 0;
  private seq = 0;
  /** Events durable on disk (everything below this seq). */
  private durable = 0;
  private last = GENESIS;
  private closed = false;
  private writing: Promise<void> | null = null;
  private failure: Error | null = null;

  constructor(
    readonly path: string,
    private readonly now: () => number = Date.now,
  ) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // 'wx': a recording is never overwritten.
    this.fd = openSync(path, 'wx', 0o600);
    this.gzip.on('data', (chunk: Buffer) => this.compressed.push(chunk));
  }

  get digest(): string {
    return this.last;
  }

  get events(): number {
    return this.seq;
  }

  /** The write error that stopped this recording, if one did. */
  get failed(): Error | null {
    return this.failure;
  }

  /** Adds an event (durable at the next checkpoint). Throws once closed or failed. */
  append(type: string, data: Record<string, unknown>): RecordedEvent {
    if (this.closed) throw new Error('recording is closed');
    if (this.failure) throw this.failure;
    const base = { seq: this.seq, at: this.now(), type, data };
    const event: RecordedEvent = { ...base, h: chainHash(this.last, base) };
    const line = JSON.stringify(event) + '\n';
    this.seq++;
    this.last = event.h;
    this.lines.push(line);
    this.linesBytes += line.length;
    // Bounded memory between checkpoints (a long COPY, a chatty NOTICE loop): write early.
    if (this.linesBytes > MAX_BUFFERED_CHARS) void this.checkpoint().catch(() => undefined);
    return event;
  }

  /**
   * Resolves once every event appended before the call is on disk (sync-flushed compressor, written,
   * fsynced); rejects with the write error if that failed (and every later call rejects too).
   */
  async checkpoint(): Promise<void> {
    const target = this.seq;
    while (this.durable < target) {
      if (this.failure) throw this.failure;
      if (!this.writing) {
        this.writing = this.writeBatch().finally(() => (this.writing = null));
      }
      await this.writing;
    }
    if (this.failure) throw this.failure;
  }

  /** Ends the gzip stream properly and closes the file; returns the final chain digest. */
  async close(): Promise<string> {
    if (this.closed) return this.last;
    try {
      await this.checkpoint();
    } finally {
      this.closed = true;
      try {
        if (!this.failure) {
          await new Promise<void>((resolve) => {
            this.gzip.once('end', () => resolve());
            this.gzip.end();
            this.gzip.resume();
          });
          await writeAll(this.fd, this.takeCompressed());
          await promisify(fsync)(this.fd);
        }
      } finally {
        await promisify(closeFd)(this.fd).catch(() => undefined);
      }
    }
    return this.last;
  }

  private async writeBatch(): Promise<void> {
    const upTo = this.seq;
    const text = this.lines.join('');
    this.lines = [];
    this.linesBytes = 0;
    try {
      if (text) this.gzip.write(text);
      await new Promise<void>((resolve) => this.gzip.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve()));
      await writeAll(this.fd, this.takeCompressed());
      await promisify(fsync)(this.fd);
      this.durable = upTo;
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
      throw this.failure;
    }
  }

  private takeCompressed(): Buffer {
    const out = Buffer.concat(this.compressed);
    this.compressed = [];
    return out;
  }
}

/** Past this many buffered characters a checkpoint starts without waiting for a statement boundary. */
const MAX_BUFFERED_CHARS = 1 << 20;

async function writeAll(fd: number, data: Buffer): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    offset += await new Promise<number>((resolve, reject) =>
      fsWrite(fd, data, offset, data.length - offset, null, (err, written) => (err ? reject(err) : resolve(written))),
    );
  }
}

export interface ReadResult {
  events: RecordedEvent[];
  /** The chain verified from the first event to the last one read. */
  intact: boolean;
  /** Where the chain first failed (index of the first event that does not verify), if it did. */
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
    try {
      text = zlib.gunzipSync(compressed, { finishFlush: zlib.constants.Z_SYNC_FLUSH }).toString('utf8');
    } catch {
      // Not a cut but damage inside the compressed stream: nothing after it can be trusted.
      const prefix = verifyLines(inflatePrefix(compressed));
      return { events: prefix.events, intact: false, truncated: true, brokenAt: prefix.brokenAt ?? prefix.events.length };
    }
  }
  const result = verifyLines(text);
  return { ...result, truncated: truncated || result.cut };
}

/** Parses and verifies JSON lines; a last line without its newline is an event cut in half. */
export function verifyLines(text: string, previous = GENESIS, firstSeq = 0): ReadResult & { cut: boolean } {
  const lines = text.split('\n');
  const cut = lines[lines.length - 1] !== '';
  const events: RecordedEvent[] = [];
  let brokenAt: number | undefined;
  for (const line of lines.slice(0, -1)) {
    let event: RecordedEvent;
    try {
      event = JSON.parse(line) as RecordedEvent;
    } catch {
      brokenAt ??= events.length;
      break;
    }
    const { h, ...base } = event;
    if (brokenAt === undefined && (event.seq !== firstSeq + events.length || chainHash(previous, base) !== h)) brokenAt = events.length;
    previous = h;
    events.push(event);
  }
  return { events, intact: brokenAt === undefined, brokenAt, truncated: cut, cut };
}

/**
 * Whatever decompresses before the damage. A prefix of the file that ends before the damaged block
 * inflates (as a cut file does), one that includes it does not: binary search for the longest.
 */
function inflatePrefix(compressed: Buffer): string {
  const attempt = (length: number): Buffer | undefined => {
    try {
      return zlib.gunzipSync(compressed.subarray(0, length), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    } catch {
      return undefined;
    }
  };
  let lo = 0;
  let hi = compressed.length;
  let best: Buffer | undefined;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    const out = attempt(mid);
    if (out) {
      best = out;
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return best ? best.toString('utf8') : '';
}

/**
 * Follows a recording that is still being written: each `poll()` reads what was appended to the
 * file since the last one, inflates it incrementally and returns the new complete events, verifying
 * the chain across polls.
 */
export class RecordingTail {
  private offset = 0;
  private readonly gunzip = zlib.createGunzip();
  private text = '';
  private previous = GENESIS;
  private nextSeq = 0;
  private chunks: Buffer[] = [];
  broken = false;

  constructor(private readonly path: string) {
    this.gunzip.on('data', (chunk: Buffer) => this.chunks.push(chunk));
    this.gunzip.on('error', () => (this.broken = true));
  }

  async poll(): Promise<RecordedEvent[]> {
    if (this.broken) return [];
    const handle = await open(this.path, 'r');
    let fresh: Buffer;
    try {
      const { size } = await handle.stat();
      if (size <= this.offset) return [];
      fresh = Buffer.alloc(size - this.offset);
      const { bytesRead } = await handle.read(fresh, 0, fresh.length, this.offset);
      fresh = fresh.subarray(0, bytesRead);
      this.offset += bytesRead;
    } finally {
      await handle.close();
    }
    await new Promise<void>((resolve) => {
      this.gunzip.write(fresh);
      this.gunzip.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve());
    });
    this.text += Buffer.concat(this.chunks).toString('utf8');
    this.chunks = [];
    const lastNewline = this.text.lastIndexOf('\n');
    if (lastNewline < 0) return [];
    const complete = this.text.slice(0, lastNewline + 1);
    this.text = this.text.slice(lastNewline + 1);
    const r = verifyLines(complete, this.previous, this.nextSeq);
    if (!r.intact) this.broken = true;
    const last = r.events.at(-1);
    if (last) {
      this.previous = last.h;
      this.nextSeq = last.seq + 1;
    }
    return r.events;
  }

  close(): void {
    this.gunzip.destroy();
  }
}
