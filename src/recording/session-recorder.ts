/**
 * Records one session: wraps its SessionPipeline so every statement, decision (immediate or held),
 * bound parameter set, result, error and notice becomes an event in the session's recording, and
 * checkpoints at every statement boundary (ReadyForQuery) and before a hold.
 *
 * Bounded by construction: row values are recorded up to a cap per result and per session (rows
 * past it are only counted, and the result is marked truncated), values and statement texts are cut
 * to a size limit (marked), rows are written in batches, and nothing is decoded for a session whose
 * recording has stopped.
 *
 * Fail closed: when the recording cannot be written (at the start or later), a `required` session
 * has its statements refused with reason `recording_unavailable`; a `best-effort` one continues
 * unrecorded. Either way the failure is reported once through `onFailure`.
 */
import type { RecordingLimits, RecordingMode } from '../config/recording.js';
import { relayHolds } from '../core/pending-decision.js';
import type {
  BoundParameters,
  Decision,
  PendingDecision,
  ResultEvent,
  ResultObserver,
  SessionCounters,
  SessionEndReason,
  SessionPipeline,
  Statement,
} from '../core/types.js';
import type { BindData, ColumnsData, DecisionData, ReadyData, RowsData, StatementData } from './events.js';
import type { RecordedEvent } from './file-recorder.js';
import { redactStatement } from './redact.js';
import type { RecordingWriter } from './sink.js';

export const RECORDING_UNAVAILABLE = 'recording_unavailable';

/**
 * Least time between two snapshots of the session's byte counters in the recording (folded into a
 * `ready` event): what a crash can make the recovered byte counts lag by, for one comparison per
 * statement boundary.
 */
const COUNTERS_EVERY_MS = 1000;

/** Rows per `rows` event, and the most characters one batch holds before it is written anyway. */
const ROW_BATCH = 100;
const ROW_BATCH_CHARS = 256 * 1024;

export interface RecorderHooks {
  /** A statement was recorded (for the search index). */
  onStatement?(n: number, text: string): void;
  /** A statement was refused or held, or a held one decided (for the audit log). */
  onDecision?(n: number, text: string, decision: Decision, how: 'immediate' | 'held' | 'decided', waitedMs?: number): void;
  /** The recording stopped working (reported once). */
  onFailure?(err: Error): void;
  /** Statements were refused because the recording cannot be written (reported once per session). */
  onRefusing?(): void;
}

export interface SessionRecorderOptions {
  sessionId: string;
  /** null: the recording could not be created. */
  writer: RecordingWriter | null;
  mode: RecordingMode;
  limits: RecordingLimits;
  now: () => number;
  hooks?: RecorderHooks;
}

export interface RecorderResult {
  reason: SessionEndReason;
  /** Final digest (the last event's chain hash), or null when nothing could be recorded. */
  digest: string | null;
  events: number;
  rowsRecorded: number;
  truncated: boolean;
  /** Why the recording is incomplete, if it is. */
  error: string | null;
  /**
   * A write error stopped the recording: `digest` and `events` then describe the prefix written
   * whole (what a verifier must find), not the events appended in memory after it.
   */
  writeError: boolean;
}

interface ResultState {
  /** DataRows the client was sent for the current result. */
  seen: number;
  recorded: number;
  truncated: 'statement' | 'session' | null;
}

export class SessionRecorder {
  private readonly writer: RecordingWriter | null;
  private active: boolean;
  private refusing: boolean;
  private refusalReported = false;
  private failure: Error | null = null;
  private n = 0;
  /** Prepared statement name -> the statement number that prepared it (to label Binds). */
  private readonly prepared = new Map<string, number>();
  private result: ResultState = freshResult();
  private batch: Array<Array<string | null>> = [];
  private batchCut: Array<[number, number, number]> = [];
  private batchChars = 0;
  private copyLines: string[] = [];
  /** Columns of the result in progress, not written yet (they go with its rows). */
  private columns: Array<{ name: string; type: number }> | null = null;
  /** Which of them the gateway masked (rule, reason), recorded with them. */
  private maskedColumns: ColumnsData['masked'];
  /** The event held back for a ReadyForQuery to be folded in. */
  private pending: { type: string; data: Record<string, unknown> } | null = null;
  private copyCut: Array<[number, number]> = [];
  private sessionRows = 0;
  private anyTruncated = false;
  /** When the first statement since the last ReadyForQuery arrived. */
  private roundTripStart: number | undefined;
  private readonly listeners = new Set<(event: RecordedEvent) => void>();
  /** The relay's live counters (when it hands them over), and when they were last snapshotted. */
  private liveCounters: Readonly<SessionCounters> | undefined;
  private countersAt = -Infinity;
  private ended = false;
  private readonly hooks: RecorderHooks;

  constructor(private readonly o: SessionRecorderOptions) {
    this.writer = o.writer;
    this.active = o.writer !== null;
    this.refusing = o.writer === null && o.mode === 'required';
    this.hooks = o.hooks ?? {};
  }

  /** Whether events are being recorded. */
  get recording(): boolean {
    return this.active;
  }

  /** Live tail: `fn` gets every event appended from now on; returns the unsubscribe function. */
  subscribe(fn: (event: RecordedEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Makes everything recorded so far durable (before a reader opens the file). */
  async flush(): Promise<void> {
    if (!this.writer || !this.active) return;
    try {
      await this.writer.checkpoint();
    } catch (err) {
      this.fail(err);
    }
  }

  /** The session start event (identity, grant, connection). */
  start(data: Record<string, unknown>): void {
    this.append('session_start', data);
    this.checkpoint();
  }

  /** An administrator is ending the session; recorded before the FATAL reaches the client. */
  noteKill(by: string, reason: string): void {
    this.append('kill', { by, reason });
    this.checkpoint();
  }

  /** The pipeline the protocol engine uses: `inner` decides, this records around it. */
  wrap(inner: SessionPipeline, onEnd: (result: Promise<RecorderResult>) => void): SessionPipeline {
    const observer = this.active ? this.observer(inner.observer) : inner.observer;
    return {
      id: inner.id,
      decide: (statement) => this.decide(statement, inner),
      checkpoint: () => this.checkpoint(),
      end: (reason, counters) => {
        inner.end(reason, counters);
        onEnd(this.end(reason, counters));
      },
      watchCounters: (counters) => {
        this.liveCounters = counters;
        inner.watchCounters?.(counters);
      },
      ...(observer ? { observer } : {}),
    };
  }

  // -------------------------------------------------------------------------------------------
  // statements and decisions

  private decide(statement: Statement, inner: SessionPipeline): Decision | PendingDecision {
    if (this.refusing) {
      if (!this.refusalReported) {
        this.refusalReported = true;
        this.hooks.onRefusing?.();
      }
      return {
        effect: 'deny',
        reasons: [RECORDING_UNAVAILABLE],
        message: 'jitgate cannot record this session, and this connection requires recording: statement refused; try again later',
      };
    }
    const n = ++this.n;
    this.roundTripStart ??= this.o.now();
    const data = this.statementData(n, statement);
    if (statement.source === 'parse') this.prepared.set(statement.name ?? '', n);
    // Only what is recorded is searchable (an unrecorded best-effort session has nothing to find).
    if (this.active) this.hooks.onStatement?.(n, data.text);
    const decision = inner.decide(statement);
    if (!(decision instanceof Promise)) {
      data.decision = decisionData(decision);
      this.append('statement', data as unknown as Record<string, unknown>);
      if (decision.effect !== 'allow') this.hooks.onDecision?.(n, data.text, decision, 'immediate');
      return decision;
    }
    // The statement waits. If it comes to wait for a person (a review), it is recorded as held at
    // that moment, and its decision later with how long it waited; if the gateway alone decides it
    // (masking validating its catalog first), it is recorded once, like an immediate decision. The
    // relay waits either way, so nothing else of this session happens in between.
    let heldAt: number | undefined;
    decision.onHold((hold) => {
      heldAt = this.o.now();
      this.append('statement', { ...data, held: true, decision: decisionData(hold.notice) });
      this.hooks.onDecision?.(n, data.text, hold.notice, 'held');
      // The statement waits for a person: make it durable now, not at the next boundary.
      this.checkpoint();
    });
    const settle = (d: Decision): void => {
      if (heldAt === undefined) {
        data.decision = decisionData(d);
        this.append('statement', data as unknown as Record<string, unknown>);
        if (d.effect !== 'allow') this.hooks.onDecision?.(n, data.text, d, 'immediate');
        return;
      }
      const waitedMs = this.o.now() - heldAt;
      this.append('decision', { n, decision: decisionData(d), waitedMs });
      this.hooks.onDecision?.(n, data.text, d, 'decided', waitedMs);
      this.checkpoint();
    };
    const recorded = decision.then(
      (d) => {
        settle(d);
        return d;
      },
      (err: unknown) => {
        settle({ effect: 'deny', reasons: ['decision_failed'] });
        throw err;
      },
    );
    // The protocol engine still needs to hear of the hold (its notice, and withdraw on client cancel).
    return relayHolds(decision, recorded);
  }

  private statementData(n: number, statement: Statement): StatementData {
    const limit = this.o.limits.statementBytes;
    let text = statement.text;
    let textBytes: number | undefined;
    if (text.length > limit / 3) {
      const bytes = Buffer.byteLength(text);
      if (bytes > limit) {
        text = cutUtf8(text, limit);
        textBytes = bytes;
      }
    }
    const r = redactStatement(text);
    // Members set one by one, in the order they are recorded (no spread of a fresh object per statement).
    const data: StatementData = statement.name
      ? { n, source: statement.source, name: statement.name, text: r.text }
      : { n, source: statement.source, text: r.text };
    if (textBytes !== undefined) data.textBytes = textBytes;
    if (r.redacted) data.redacted = true;
    return data;
  }

  // -------------------------------------------------------------------------------------------
  // what the client is sent

  private observer(next: ResultObserver | undefined): ResultObserver {
    // Another observer on the same session (e.g. masking later) sees everything too.
    return {
      wantsRows: () => {
        const mine = this.wantsRows();
        return next ? next.wantsRows() || mine : mine;
      },
      onResult: (event) => {
        this.onResult(event);
        next?.onResult(event);
      },
      onBind: (bind) => {
        this.onBind(bind);
        next?.onBind?.(bind);
      },
    };
  }

  private wantsRows(): boolean {
    const r = this.result;
    r.seen++;
    if (!this.active) return false;
    if (r.recorded >= this.o.limits.rowsPerStatement) {
      r.truncated ??= 'statement';
      return false;
    }
    if (this.sessionRows >= this.o.limits.rowsPerSession) {
      r.truncated ??= 'session';
      return false;
    }
    return true;
  }

  /*
   * Few events per statement, because each costs a hash and a line: a result that fits in one batch
   * becomes a single `result` event (columns, rows, tag) at its CommandComplete, and the
   * ReadyForQuery boundary is folded into the event before it (`ready`). A bigger result streams as
   * `columns`, `rows`... and `complete`. The last result/complete/error event is held back until
   * the next event (or the boundary) so the boundary can be folded in; order is never changed.
   */
  private onResult(event: ResultEvent): void {
    if (!this.active) return;
    switch (event.kind) {
      case 'row':
        return this.addRow(event.values);
      case 'copy':
        return this.addCopy(event.data);
      case 'columns':
        this.flushRows();
        this.flushPending();
        this.result = freshResult();
        this.columns = event.columns;
        this.maskedColumns = event.masked;
        return;
      case 'complete': {
        const r = this.result;
        const done: Record<string, unknown> = { tag: event.tag };
        if (r.truncated) {
          done.truncated = { cap: r.truncated, recorded: r.recorded };
          this.anyTruncated = true;
        }
        if (this.columns && this.copyLines.length === 0) {
          // The whole result is still in hand: one event.
          // Members in the order recorded: columns, masked, rows, tag, truncated, count, cut.
          const data: Record<string, unknown> = this.maskedColumns
            ? { columns: this.columns, masked: this.maskedColumns, rows: this.batch, tag: event.tag }
            : { columns: this.columns, rows: this.batch, tag: event.tag };
          if (done.truncated) data.truncated = done.truncated;
          data.count = r.seen;
          if (this.batchCut.length) data.cut = this.batchCut;
          this.columns = null;
          this.resetBatch();
          this.hold('result', data);
        } else {
          this.flushRows();
          this.hold('complete', { ...done, rows: r.seen });
        }
        this.result = freshResult();
        return;
      }
      case 'error':
      case 'notice': {
        this.flushRows();
        const r = this.result;
        const data: Record<string, unknown> = { severity: event.severity, code: event.code, message: event.message };
        if (event.kind === 'notice') return this.append('notice', data);
        // An error ends the result in flight: say how far it got.
        if (r.seen > 0) data.rows = r.seen;
        if (r.truncated) {
          data.truncated = { cap: r.truncated, recorded: r.recorded };
          this.anyTruncated = true;
        }
        this.result = freshResult();
        this.hold('error', data);
        return;
      }
      case 'ready': {
        this.flushRows();
        const start = this.roundTripStart;
        this.roundTripStart = undefined;
        const now = this.o.now();
        const ready: ReadyData = start === undefined ? {} : { ms: now - start };
        // Now and then the byte counters, so crash recovery finds them (statements it counts itself).
        const counters = this.liveCounters;
        if (counters && now - this.countersAt >= COUNTERS_EVERY_MS) {
          this.countersAt = now;
          ready.bytes = [counters.bytesFromClient, counters.bytesToClient];
        }
        if (this.pending) {
          this.pending.data.ready = ready;
          this.flushPending();
        } else {
          this.append('ready', ready as Record<string, unknown>);
        }
        this.checkpoint();
        return;
      }
    }
  }

  /** Holds an event back so a ReadyForQuery that follows can be folded into it. */
  private hold(type: string, data: Record<string, unknown>): void {
    this.flushPending();
    this.pending = { type, data };
  }

  private flushPending(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    this.write(p.type, p.data);
  }

  private addRow(values: Array<string | null>): void {
    const r = this.result;
    r.recorded++;
    this.sessionRows++;
    const limit = this.o.limits.valueBytes;
    const row = this.batch.length;
    let chars = 0;
    for (let c = 0; c < values.length; c++) {
      const v = values[c];
      if (v === null || v === undefined) continue;
      chars += v.length;
      if (v.length > limit / 3) {
        const bytes = Buffer.byteLength(v);
        if (bytes > limit) {
          values[c] = cutUtf8(v, limit);
          this.batchCut.push([row, c, bytes]);
        }
      }
    }
    this.batch.push(values);
    this.batchChars += chars;
    if (this.batch.length >= ROW_BATCH || this.batchChars >= ROW_BATCH_CHARS) this.flushRows();
  }

  /** A line of COPY TO STDOUT output: counted and capped like a row, written as `copy` events. */
  private addCopy(data: string): void {
    this.result.recorded++;
    this.sessionRows++;
    const limit = this.o.limits.valueBytes;
    let line = data;
    if (data.length > limit / 3) {
      const bytes = Buffer.byteLength(data);
      if (bytes > limit) {
        line = cutUtf8(data, limit);
        this.copyCut.push([this.copyLines.length, bytes]);
      }
    }
    this.copyLines.push(line);
    this.batchChars += line.length;
    if (this.copyLines.length >= ROW_BATCH || this.batchChars >= ROW_BATCH_CHARS) this.flushRows();
  }

  private resetBatch(): void {
    this.batch = [];
    this.batchCut = [];
    this.batchChars = 0;
  }

  /** Writes out what is held of the result in progress (columns first, then rows or COPY lines). */
  private flushRows(): void {
    if (this.columns) {
      const columns = this.columns;
      this.columns = null;
      this.append('columns', this.maskedColumns ? { columns, masked: this.maskedColumns } : { columns });
    }
    if (this.copyLines.length > 0) {
      const data: Record<string, unknown> = { data: this.copyLines };
      if (this.copyCut.length) data.cut = this.copyCut;
      this.copyLines = [];
      this.copyCut = [];
      this.batchChars = 0;
      this.append('copy', data);
    }
    if (this.batch.length === 0) return;
    const data: RowsData = { rows: this.batch };
    if (this.batchCut.length) data.cut = this.batchCut;
    this.resetBatch();
    this.append('rows', data as unknown as Record<string, unknown>);
  }

  private onBind(bind: BoundParameters): void {
    if (!this.active) return;
    const limit = this.o.limits.valueBytes;
    let cut: Array<[number, number]> | undefined;
    // Copied only when a value is cut (another observer may see the same values).
    let params = bind.values;
    for (let i = 0; i < params.length; i++) {
      const v = params[i];
      if (v === null || v === undefined) continue;
      const size = bind.sizes[i] ?? -1;
      if (size > limit || (bind.cut.length > 0 && bind.cut.includes(i))) {
        (cut ??= []).push([i, size]);
        if (params === bind.values) params = params.slice();
        params[i] = v.startsWith('b64:') ? v.slice(0, limit) : cutUtf8(v, limit);
      }
    }
    const n = this.prepared.get(bind.statement);
    const data: BindData =
      n !== undefined
        ? { n, statement: bind.statement, portal: bind.portal, params }
        : { statement: bind.statement, portal: bind.portal, params };
    if (cut) data.cut = cut;
    this.append('bind', data as unknown as Record<string, unknown>);
  }

  // -------------------------------------------------------------------------------------------
  // writing

  /** Appends an event after whatever is held back (order is the order things happened). */
  private append(type: string, data: Record<string, unknown>): void {
    this.flushPending();
    this.write(type, data);
  }

  private write(type: string, data: Record<string, unknown>): void {
    if (!this.active || !this.writer) return;
    let event: RecordedEvent;
    try {
      event = this.writer.append(type, data);
    } catch (err) {
      this.fail(err);
      return;
    }
    for (const fn of this.listeners) {
      try {
        fn(event);
      } catch {
        // a broken tail (closed HTTP stream) must not stop the recording
      }
    }
  }

  private checkpoint(): void {
    if (!this.active || !this.writer) return;
    // Checkpoints waiting for the same fsync share one promise: watch it once, not once per statement.
    const durable = this.writer.checkpoint();
    if (durable === this.watched) return;
    this.watched = durable;
    durable.catch((err: unknown) => this.fail(err));
  }

  private watched: Promise<void> | undefined;

  private fail(err: unknown): void {
    if (this.failure) return;
    this.failure = err instanceof Error ? err : new Error(String(err));
    this.active = false;
    if (this.o.mode === 'required') this.refusing = true;
    this.batch = [];
    this.copyLines = [];
    this.columns = null;
    this.pending = null;
    this.hooks.onFailure?.(this.failure);
  }

  private async end(reason: SessionEndReason, counters: SessionCounters): Promise<RecorderResult> {
    if (this.ended) throw new Error('session already ended');
    this.ended = true;
    this.flushRows();
    this.append('session_end', {
      reason,
      bytesFromClient: counters.bytesFromClient,
      bytesToClient: counters.bytesToClient,
      statements: counters.statements,
      rowsRecorded: this.sessionRows,
    });
    const writer = this.writer;
    let digest: string | null = null;
    if (writer) {
      try {
        // Even after a failure the file holds a verifiable prefix; close it properly if we can.
        digest = await writer.close();
      } catch (err) {
        this.fail(err);
      }
    }
    this.listeners.clear();
    // After a write error only what reached the file counts: the digest of the last event written
    // whole, so the tamper check finds a prefix instead of a mismatch.
    const writeError = writer !== null && this.failure !== null;
    const written = writer?.written;
    return {
      reason,
      digest: writeError ? (written?.digest ?? null) : writer && writer.events > 0 ? digest : null,
      events: writeError ? (written?.events ?? 0) : (writer?.events ?? 0),
      rowsRecorded: this.sessionRows,
      truncated: this.anyTruncated,
      error: this.failure ? this.failure.message : writer ? null : 'the recording could not be created',
      writeError,
    };
  }
}

const PLAIN_ALLOW: DecisionData = Object.freeze({ effect: 'allow', reasons: Object.freeze([]) as unknown as string[] }) as DecisionData;

function freshResult(): ResultState {
  return { seen: 0, recorded: 0, truncated: null };
}

/** The decision as recorded: its fields, plus any extra serializable ones (who approved, ...). */
export function decisionData(d: Decision): DecisionData {
  // The common case, a plain allow, without walking the object.
  if (d.effect === 'allow' && d.reasons.length === 0 && Object.keys(d).length === 2) return PLAIN_ALLOW;
  const out: DecisionData = { effect: d.effect, reasons: [...d.reasons] };
  for (const [k, v] of Object.entries(d)) {
    if (k === 'effect' || k === 'reasons' || v === undefined || typeof v === 'function') continue;
    out[k] = v;
  }
  return out;
}

/** The longest prefix of `text` that fits in `bytes` of UTF-8, never splitting a character. */
export function cutUtf8(text: string, bytes: number): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= bytes) return text;
  let end = bytes;
  // Step back over continuation bytes (10xxxxxx) to the start of the character that does not fit.
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.toString('utf8', 0, end);
}
