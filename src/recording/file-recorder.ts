/**
 * Session recordings as append-only, hash-chained files of JSON lines, one event per line.
 *
 * Format 2 (written since issue 15): events are chained per block, not per event. A block is what
 * one write puts in the file (everything appended since the previous checkpoint) and ends with a
 * seal line carrying the block's chain hash:
 *
 *     [0,1733300000000,"session_start",{...}]
 *     [1,1733300000003,"statement",{...}]
 *     {"h":"<64 hex>"}
 *
 * An event line is the JSON array `[seq, at, type, data]`; the seal's `h` is the SHA-256 of the
 * previous seal's `h` (64 zeros for the first block) followed by the block's bytes exactly as
 * written: its event lines, each with its newline, without the seal line itself. Editing,
 * removing or reordering any event breaks its block's hash; removing or reordering a block breaks
 * the chain; the final digest (the last seal's `h`) goes to the audit log when the session ends,
 * which also catches a recording cut short. Hashing per block costs one SHA-256 per statement
 * boundary instead of one per event, and an event is one JSON.stringify of its data and no more.
 * Events read back carry the `h` of the block they were sealed in, so the last event of a
 * recording carries its final digest, as in format 1. Events after the last seal (a write torn by
 * a full disk whose cut-back failed) are not verifiable and are dropped as a cut tail.
 *
 * Format 1 (recordings written before): every line is `{"seq":N,"at":MS,"type":"...","data":{...},
 * "h":"<64 hex>"}` and `h` is the SHA-256 of the previous event's `h` followed by the line's bytes
 * without the `,"h":"..."` member. It is still read and verified (`readRecording`, `RecordingTail`):
 * the first line of a file says which format it is in.
 *
 * Life of a file, and why:
 *  - While the session lives, lines go to `<name>.jsonl` in plain text. At every checkpoint
 *    (statement boundary) the block is written with one synchronous write into the page cache (a
 *    few microseconds): a crash of the gateway process, even kill -9, loses nothing written, so at
 *    most the statement in flight. Compressing per checkpoint would cost ~20x more per statement.
 *  - fsync (durability against a machine crash) runs off the event loop and is group-committed: one
 *    at a time, and at most one per `fsyncIntervalMs` per recording (0: at every checkpoint). An
 *    interactive session gets one per statement; a busy one pays for a few per second, not thousands.
 *  - When the session ends, the file is compressed into `<name>.jsonl.gz` (written to a temporary
 *    name, fsynced, renamed atomically), and the plain file is removed. Readers prefer the `.gz`
 *    and fall back to the plain file (live, or left by a crash).
 */
import crypto, { createHash } from 'node:crypto';
import {
  close as closeFd,
  createReadStream,
  createWriteStream,
  existsSync,
  fsync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  writeSync,
} from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import zlib from 'node:zlib';

export interface RecordedEvent {
  /** 0, 1, 2, ... within the session. */
  seq: number;
  /** Epoch ms. */
  at: number;
  type: string;
  data: Record<string, unknown>;
  /**
   * Chain hash (hex): in format 2 that of the block the event was sealed in (so a recording's last
   * event carries its final digest), in format 1 the event's own. Empty in an event handed to live
   * subscribers before it is written.
   */
  h: string;
}

export const GENESIS = '0'.repeat(64);

/** The recording formats this module reads (see the header); it writes the last one. */
export type RecordingFormat = 1 | 2;

/** Format 1: the text an event's hash covers, its JSON without `h`, members in the order written. */
export function eventBody(event: Omit<RecordedEvent, 'h'>): string {
  return JSON.stringify({ seq: event.seq, at: event.at, type: event.type, data: event.data });
}

/** Format 1: an event's chain hash. */
export function chainHash(previous: string, event: Omit<RecordedEvent, 'h'>): string {
  return hashBody(previous, eventBody(event));
}

function hashBody(previous: string, body: string): string {
  return sha256hex(previous + body);
}

/** One-shot hashing (Node >= 20.12) costs half of a Hash object per event; older Nodes fall back. */
const sha256hex: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'hex')
    : (text) => createHash('sha256').update(text).digest('hex');

/** Format 1: `,"h":"` + 64 hex digits + `}`, how every line ends. */
const H_SUFFIX_LENGTH = 6 + 64 + 2;

/** Format 2: a block's seal line is `{"h":"` + 64 hex digits + `"}`. */
const SEAL_PREFIX = '{"h":"';
const SEAL_LENGTH = SEAL_PREFIX.length + 64 + 2;

/** Format 2: the chain hash of a block (its event lines as written) after the previous block's. */
export function blockHash(previous: string, block: string): string {
  return hashBody(previous, block);
}

/** Where the plain file of a recording lives while it is written (`x.jsonl.gz` -> `x.jsonl`). */
export function livePathOf(path: string): string {
  if (!path.endsWith('.gz')) throw new Error(`a recording's path ends with .gz: ${path}`);
  return path.slice(0, -3);
}

/**
 * The file operations a recorder uses. The real ones by default; tests inject faults (a full disk,
 * an fsync that completes late) to make races and partial writes deterministic.
 */
export interface RecorderFileOps {
  /** Writes text (UTF-8) at the current position; returns how many bytes were written (may be fewer). */
  writeText(fd: number, text: string): number;
  /** Writes bytes at the current position; returns how many were written (may be fewer). */
  write(fd: number, bytes: Buffer, offset: number, length: number): number;
  fsync(fd: number): Promise<void>;
  close(fd: number): Promise<void>;
  /** Cuts the file back to `length` bytes (drops a torn line left by a failed write). */
  truncate(fd: number, length: number): void;
}

export const REAL_FILE_OPS: RecorderFileOps = {
  writeText: (fd, text) => writeSync(fd, text),
  write: (fd, bytes, offset, length) => writeSync(fd, bytes, offset, length),
  fsync: promisify(fsync),
  close: promisify(closeFd),
  truncate: (fd, length) => ftruncateSync(fd, length),
};

export interface FileRecorderOptions {
  /** Least time between two fsyncs of this recording; 0 = one at every checkpoint (default 0). */
  fsyncIntervalMs?: number;
  /** File operations (tests inject faults); default the real ones. */
  fileOps?: RecorderFileOps;
}

/** What the file holds for certain: the events written whole, and the chain hash of the last one. */
export interface WrittenPrefix {
  events: number;
  /** null when no event was written. */
  digest: string | null;
}

/**
 * Writes one recording (format 2). `append` is synchronous and cheap (one JSON line into a
 * buffer); `checkpoint` hashes the buffered block, writes it with its seal in one write, and
 * resolves when it is fsynced.
 */
export class FileRecorder {
  readonly livePath: string;
  private readonly fd: number;
  private readonly fsyncIntervalMs: number;
  private readonly ops: RecorderFileOps;
  /** Event lines appended since the last write: the block the next write seals. */
  private lines: string[] = [];
  private linesChars = 0;
  private seq = 0;
  /** Events written to the file (everything below this seq), and fsynced. */
  private writtenUpTo = 0;
  private synced = 0;
  /** Bytes written whole (where a failed write's torn tail is cut back to), and the last written hash. */
  private writtenBytes = 0;
  private writtenDigest: string | null = null;
  private lastSyncAt = 0;
  private syncing: Promise<void> | null = null;
  /** The next fsync, shared by every checkpoint waiting for it. */
  private nextSync: Promise<void> | null = null;
  private last = GENESIS;
  /** The final write + fsync + close of the file descriptor, once close() began; no fsync starts after it. */
  private finalSync: Promise<void> | null = null;
  private closing: Promise<string> | null = null;
  private failure: Error | null = null;

  constructor(
    /** The final (compressed) path; the plain file is written next to it without `.gz`. */
    readonly path: string,
    private readonly now: () => number = Date.now,
    options: FileRecorderOptions = {},
  ) {
    this.livePath = livePathOf(path);
    this.fsyncIntervalMs = Math.max(0, options.fsyncIntervalMs ?? 0);
    this.ops = options.fileOps ?? REAL_FILE_OPS;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // A recording is never overwritten, in either of its forms.
    if (existsSync(path)) throw Object.assign(new Error(`EEXIST: recording already exists, open '${path}'`), { code: 'EEXIST' });
    this.fd = openSync(this.livePath, 'wx', 0o600);
  }

  /** Chain hash of the last block written (the final digest once closed). */
  get digest(): string {
    return this.last;
  }

  get events(): number {
    return this.seq;
  }

  /** The prefix the file holds whole: after a write error, what the recording's digest must be. */
  get written(): WrittenPrefix {
    return { events: this.writtenUpTo, digest: this.writtenDigest };
  }

  /** The write error that stopped this recording, if one did. */
  get failed(): Error | null {
    return this.failure;
  }

  /** Adds an event (written at the next checkpoint). Throws once closed or failed. */
  append(type: string, data: Record<string, unknown>): RecordedEvent {
    if (this.closing) throw new Error('recording is closed');
    if (this.failure) throw this.failure;
    const seq = this.seq++;
    const at = this.now();
    const line = `[${seq},${at},${quotedType(type)},${JSON.stringify(data)}]\n`;
    this.lines.push(line);
    this.linesChars += line.length;
    // Bounded memory between statement boundaries (a long COPY, a chatty NOTICE loop).
    if (this.linesChars > MAX_BUFFERED_CHARS) this.write();
    return { seq, at, type, data, h: '' };
  }

  /**
   * Writes everything appended so far to the file now (a process crash no longer loses it), and
   * resolves once it is fsynced. Throws, or rejects, with the write error if that failed (every
   * later call fails too).
   */
  checkpoint(): Promise<void> {
    try {
      this.write();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.sync();
  }

  /**
   * Writes, fsyncs and closes the plain file, then compresses it; returns the final chain digest.
   * An fsync already running is waited for before the file descriptor closes, and none starts once
   * closing began (a checkpoint waiting for one shares the final fsync instead): an fsync can never
   * meet a closed (or reused) descriptor.
   */
  close(): Promise<string> {
    if (!this.closing) {
      this.finalSync = this.closeFile();
      this.closing = this.finalSync.then(async () => {
        await sealRecording(this.path);
        return this.last;
      });
    }
    return this.closing;
  }

  private async closeFile(): Promise<void> {
    try {
      this.write();
      await this.syncing?.catch(() => undefined);
      await this.ops.fsync(this.fd);
      this.synced = this.writtenUpTo;
    } catch (err) {
      this.failure ??= asError(err);
    } finally {
      await this.ops.close(this.fd).catch(() => undefined);
    }
    if (this.failure) throw this.failure;
  }

  private write(): void {
    if (this.failure) throw this.failure;
    if (this.lines.length === 0) return;
    const block = this.lines.length === 1 ? this.lines[0]! : this.lines.join('');
    const upTo = this.seq;
    const digest = blockHash(this.last, block);
    const text = `${block}${SEAL_PREFIX}${digest}"}\n`;
    this.lines = [];
    this.linesChars = 0;
    let offset = 0;
    let length: number;
    try {
      // Usually one call; a short write (rare, e.g. a signal or a disk filling up) continues with the rest.
      offset = this.ops.writeText(this.fd, text);
      length = Buffer.byteLength(text);
      if (offset < length) {
        const bytes = Buffer.from(text, 'utf8');
        while (offset < length) offset += this.ops.write(this.fd, bytes, offset, length - offset);
      }
    } catch (err) {
      this.failure = asError(err);
      // A full disk takes part of the batch: cut the torn tail so the file ends on the last whole
      // event, the one whose hash the recording's digest will be. If even that fails, readers
      // still stop at the last whole line.
      if (offset > 0) {
        try {
          this.ops.truncate(this.fd, this.writtenBytes);
        } catch {
          // the reader tolerates a torn last line
        }
      }
      throw this.failure;
    }
    this.writtenBytes += length;
    this.writtenUpTo = upTo;
    this.writtenDigest = digest;
    this.last = digest;
  }

  private sync(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.synced >= this.writtenUpTo) return RESOLVED;
    if (this.finalSync) return this.finalSync;
    this.nextSync ??= this.runSync();
    return this.nextSync;
  }

  private async runSync(): Promise<void> {
    // Yield first, so the caller has stored this promise as `nextSync` before it is handed over below.
    await RESOLVED;
    if (this.syncing) await this.syncing.catch(() => undefined);
    const wait = this.lastSyncAt + this.fsyncIntervalMs - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    // From here on, new checkpoints wait for the fsync after this one.
    this.nextSync = null;
    // Closing began: its own fsync covers everything, and the descriptor must not be synced after it closes.
    if (this.finalSync) return this.finalSync;
    if (this.failure) throw this.failure;
    const target = this.writtenUpTo;
    this.syncing = this.ops.fsync(this.fd).then(
      () => {
        this.synced = Math.max(this.synced, target);
        this.lastSyncAt = Date.now();
      },
      (err: unknown) => {
        this.failure ??= asError(err);
        throw this.failure;
      },
    );
    try {
      await this.syncing;
    } finally {
      this.syncing = null;
    }
  }
}

const RESOLVED = Promise.resolve();

/** Event types are a handful of fixed names: quote each once. */
const quotedTypes = new Map<string, string>();
function quotedType(type: string): string {
  let q = quotedTypes.get(type);
  if (q === undefined) {
    q = JSON.stringify(type);
    if (quotedTypes.size < 64) quotedTypes.set(type, q);
  }
  return q;
}

/** Past this many buffered characters the buffer is written without waiting for a boundary. */
const MAX_BUFFERED_CHARS = 256 * 1024;

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * Compressions running at once. Each holds stream buffers and a zlib context; a thousand sessions
 * ending together would otherwise start a thousand at the same moment, and the allocations and
 * garbage collection alone stall the event loop for a second. A few at a time keep the thread pool
 * busy all the same.
 */
const SEALS_AT_ONCE = 8;
let sealsRunning = 0;
const sealsWaiting: Array<() => void> = [];

async function oneSealAtATime<T>(work: () => Promise<T>): Promise<T> {
  if (sealsRunning >= SEALS_AT_ONCE) await new Promise<void>((resolve) => sealsWaiting.push(resolve));
  else sealsRunning++;
  try {
    return await work();
  } finally {
    // Hand the slot straight to the next waiter (the count stays), or free it.
    const next = sealsWaiting.shift();
    if (next) next();
    else sealsRunning--;
  }
}

/**
 * Compresses a finished recording's plain file into its final `.gz` form (temporary name, fsync,
 * atomic rename, then the plain file goes). Idempotent: nothing to do when only the `.gz` exists.
 */
export function sealRecording(path: string): Promise<void> {
  return oneSealAtATime(() => seal(path));
}

async function seal(path: string): Promise<void> {
  const live = livePathOf(path);
  if (!existsSync(live)) return;
  if (!existsSync(path)) {
    const tmp = `${path}.tmp`;
    await pipeline(createReadStream(live), zlib.createGzip(), createWriteStream(tmp, { mode: 0o600 }));
    const handle = await open(tmp, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  }
  // Off the event loop: removing a big file can take milliseconds, and every other session waits.
  await unlink(live).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

export interface ReadResult {
  events: RecordedEvent[];
  /** The chain verified from the first event to the last one read. */
  intact: boolean;
  /** Where the chain first failed (index of the first event that does not verify), if it did. */
  brokenAt?: number;
  /** The file ended in the middle of an event or of the compressed stream (crash, or still being written). */
  truncated: boolean;
}

const GZIP_MAGIC = 0x1f8b;

/**
 * Reads every complete event of a recording file (compressed or plain), verifying the chain;
 * tolerates a file cut anywhere.
 */
export function readRecording(path: string): ReadResult {
  return parseRecording(readFileSync(path));
}

/** The same, from a recording's bytes wherever they were kept (a local file, an object store). */
export function parseRecording(bytes: Buffer): ReadResult {
  if (bytes.length < 2 || bytes.readUInt16BE(0) !== GZIP_MAGIC) {
    const r = verifyLines(bytes.toString('utf8'));
    return { ...stripCut(r), truncated: r.cut };
  }
  let text: string;
  let truncated = false;
  try {
    text = zlib.gunzipSync(bytes).toString('utf8');
  } catch {
    truncated = true;
    try {
      text = zlib.gunzipSync(bytes, { finishFlush: zlib.constants.Z_SYNC_FLUSH }).toString('utf8');
    } catch {
      // Not a cut but damage inside the compressed stream: nothing after it can be trusted.
      const prefix = verifyLines(inflatePrefix(bytes));
      return { events: prefix.events, intact: false, truncated: true, brokenAt: prefix.brokenAt ?? prefix.events.length };
    }
  }
  const r = verifyLines(text);
  return { ...stripCut(r), truncated: truncated || r.cut };
}

function stripCut(r: ReadResult & { cut: boolean }): ReadResult {
  return { events: r.events, intact: r.intact, truncated: r.truncated, ...(r.brokenAt !== undefined ? { brokenAt: r.brokenAt } : {}) };
}

/** Which format a recording's text is in (from its first line); undefined while it is empty. */
export function formatOf(text: string): RecordingFormat | undefined {
  if (text.length === 0) return undefined;
  return text.charCodeAt(0) === 0x5b /* [ */ ? 2 : 1;
}

export type VerifiedText = ReadResult & {
  cut: boolean;
  /** Characters of `text` that hold whole, verified-or-not units (lines in format 1, sealed blocks in format 2). */
  consumed: number;
};

/**
 * Parses and verifies a recording's text (either format; `format` when the text does not start at
 * the beginning of the file). A last line without its newline is an event cut in half; in format 2
 * events after the last seal are a block cut short. Either way the rest is returned as `truncated`.
 */
export function verifyLines(text: string, previous = GENESIS, firstSeq = 0, format = formatOf(text)): VerifiedText {
  return format === 2 ? verifyBlocks(text, previous, firstSeq) : verifyEventLines(text, previous, firstSeq);
}

function verifyEventLines(text: string, previous: string, firstSeq: number): VerifiedText {
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
    if (brokenAt === undefined) {
      const body = line.slice(0, -H_SUFFIX_LENGTH) + '}';
      const suffixOk = typeof event.h === 'string' && event.h.length === 64 && line.endsWith(`,"h":"${event.h}"}`);
      if (!suffixOk || event.seq !== firstSeq + events.length || hashBody(previous, body) !== event.h) brokenAt = events.length;
    }
    previous = event.h;
    events.push(event);
  }
  const consumed = text.lastIndexOf('\n') + 1;
  return { events, intact: brokenAt === undefined, brokenAt, truncated: cut, cut, consumed };
}

/** Format 2: event lines in blocks, each closed by its seal. A broken block is reported at its first event. */
function verifyBlocks(text: string, previous: string, firstSeq: number): VerifiedText {
  const events: RecordedEvent[] = [];
  let brokenAt: number | undefined;
  let block: RecordedEvent[] = [];
  let blockOk = true;
  let blockStart = 0;
  let consumed = 0;
  let pos = 0;
  let stopped = false;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    if (nl < 0) break;
    if (text.startsWith(SEAL_PREFIX, pos)) {
      const h = text.slice(pos + SEAL_PREFIX.length, nl - 2);
      const sealOk = nl - pos === SEAL_LENGTH && text.startsWith('"}', nl - 2) && /^[0-9a-f]{64}$/.test(h);
      if (brokenAt === undefined && !(blockOk && sealOk && block.length > 0 && blockHash(previous, text.slice(blockStart, pos)) === h))
        brokenAt = events.length;
      for (const e of block) {
        e.h = h;
        events.push(e);
      }
      previous = h;
      block = [];
      blockOk = true;
      blockStart = consumed = pos = nl + 1;
      continue;
    }
    const event = parseEventLine(text.slice(pos, nl));
    if (!event) {
      brokenAt ??= events.length;
      stopped = true;
      break;
    }
    if (event.seq !== firstSeq + events.length + block.length) blockOk = false;
    block.push(event);
    pos = nl + 1;
  }
  // Unsealed events (a block cut short) cannot be verified: they are left out, like a torn line.
  const cut = !stopped && consumed < text.length;
  return { events, intact: brokenAt === undefined, brokenAt, truncated: cut, cut, consumed };
}

function parseEventLine(line: string): RecordedEvent | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== 4) return undefined;
  const [seq, at, type, data] = parsed as [unknown, unknown, unknown, unknown];
  if (typeof seq !== 'number' || typeof at !== 'number' || typeof type !== 'string' || typeof data !== 'object' || data === null)
    return undefined;
  return { seq, at, type, data: data as Record<string, unknown>, h: '' };
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
 * Follows a recording that may still be written: each `poll()` returns the new complete events,
 * verifying the chain across polls. It reads the plain file incrementally while it exists; once the
 * recording is sealed (compressed at the session's end) it reads the sealed form once for the rest:
 * the `.gz` next to it, or wherever `readSealed` finds it (object storage, after the upload).
 */
export class RecordingTail {
  private offset = 0;
  private previous = GENESIS;
  private nextSeq = 0;
  private sealedRead = false;
  /** Known from the first bytes read. */
  private format: RecordingFormat | undefined;
  broken = false;

  constructor(
    private readonly path: string,
    private readonly readSealed: () => Promise<ReadResult | undefined> = async () => (existsSync(path) ? readRecording(path) : undefined),
  ) {}

  async poll(): Promise<RecordedEvent[]> {
    if (this.broken || this.sealedRead) return [];
    const fresh = await this.readPlain();
    if (fresh === undefined) return this.restFromSealed();
    if (!fresh) return [];
    this.format ??= formatOf(fresh);
    const r = verifyLines(fresh, this.previous, this.nextSeq, this.format);
    // Only whole blocks move the position on: the rest is read again when its seal is there.
    this.offset += r.consumed === fresh.length ? Buffer.byteLength(fresh) : Buffer.byteLength(fresh.slice(0, r.consumed));
    return this.accept(r);
  }

  /** Nothing is held open between polls; here for the follower interface. */
  close(): void {}

  /** New whole lines of the plain file (the position is moved on by the caller), or undefined when it is gone (sealed, or never existed). */
  private async readPlain(): Promise<string | undefined> {
    let handle;
    try {
      handle = await open(livePathOf(this.path), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      const { size } = await handle.stat();
      if (size <= this.offset) return '';
      const buf = Buffer.alloc(size - this.offset);
      const { bytesRead } = await handle.read(buf, 0, buf.length, this.offset);
      // Only whole lines: an event still being written (or cut by a crash) waits for the next poll.
      const end = buf.lastIndexOf(0x0a, bytesRead - 1) + 1;
      return buf.toString('utf8', 0, end);
    } finally {
      await handle.close();
    }
  }

  private async restFromSealed(): Promise<RecordedEvent[]> {
    const r = await this.readSealed();
    if (!r) return [];
    this.sealedRead = true;
    if (!r.intact) {
      this.broken = true;
      return r.events.slice(this.nextSeq, r.brokenAt);
    }
    const rest = r.events.filter((e) => e.seq >= this.nextSeq);
    // The sealed file must continue the chain the plain file started.
    if (rest.length && this.nextSeq > 0 && r.events[this.nextSeq - 1]?.h !== this.previous) {
      this.broken = true;
      return [];
    }
    return rest;
  }

  private accept(r: ReadResult): RecordedEvent[] {
    if (!r.intact) this.broken = true;
    const events = r.intact ? r.events : r.events.slice(0, r.brokenAt);
    const last = events.at(-1);
    if (last) {
      this.previous = last.h;
      this.nextSeq = last.seq + 1;
    }
    return events;
  }
}
