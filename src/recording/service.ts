/**
 * Session recording for the whole gateway: opens a recording for every data session (wrapping the
 * session's pipeline, see ./session-recorder.ts), keeps the recordings index and the statement
 * search index, writes session start/end (with the recording's final digest), refusals, holds and
 * recording failures to the audit log, knows which sessions are live (for kill and live tails), and
 * recovers recordings left open by a crash.
 */
import { createHash } from 'node:crypto';
import type { AuditAppender } from '../audit/log.js';
import { policyFor, type RecordingConfig } from '../config/recording.js';
import type { Clock } from '../core/clock.js';
import type { Decision, Grant, SessionCounters, SessionEndReason, SessionPipeline } from '../core/types.js';
import type { Logger } from '../obs/log.js';
import type { SessionEndData, SessionStartData } from './events.js';
import type { ReadResult, RecordedEvent } from './file-recorder.js';
import type { OrphanScope, RecordingRepository, RecordingRow } from './repository.js';
import { SessionRecorder, type RecorderResult } from './session-recorder.js';
import type { MaybePromise, RecordingSink } from './sink.js';
import { StoreRetryQueue } from '../store/retry-queue.js';

/** What the protocol listener knows about a session when it opens. */
export interface RecordedSessionInfo {
  protocol: string;
  user: string;
  connection: string;
  clientAddress: string;
  applicationName: string | null;
  tokenId: string;
  authMethod?: string;
  encrypted?: boolean;
}

/** The grant behind a session's token, with the audit trail's extras when the access module has them. */
export type SessionGrant = Grant & { policy?: string | null; issuedBy?: string | null };

export interface RecordingServiceOptions {
  config: RecordingConfig;
  sink: RecordingSink;
  repo: RecordingRepository;
  audit: AuditAppender;
  clock: Clock;
  log: Logger;
  /** Finds the grant a session rests on (for the session start event). */
  grants?: { grantForToken(tokenId: string): Promise<SessionGrant | undefined> };
  /** Corrects the store's row of a session whose end it missed, from what its recording holds. */
  sessions?: { reconcile(sessionId: string, endedAt: number, reason: SessionEndReason, counters: SessionCounters): Promise<void> };
  /** Ends a live session (the protocol listeners' kill); without it no session is live to kill. */
  kill?: SessionKiller;
}

/** Ends a live session (the protocol listener's kill). */
export type SessionKiller = (sessionId: string, reason: 'killed', message: string) => boolean;

interface LiveSession {
  info: RecordedSessionInfo;
  recorder: SessionRecorder | null;
  /** The relay's running counters (statements, bytes), once it hands them over. */
  counters?: Readonly<SessionCounters>;
}

/** Most statements indexed for search per session (distinct texts), and the longest text indexed. */
const INDEX_STATEMENTS_PER_SESSION = 1000;
const INDEX_TEXT_CHARS = 4096;
const INDEX_FLUSH_MS = 1000;

export class RecordingService {
  private readonly live = new Map<string, LiveSession>();
  private readonly ending = new Set<Promise<void>>();
  private indexBuffer: Array<{ sessionId: string; n: number; text: string }> = [];
  private indexTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Recordings index rows and audit entries the store could not take right away, retried in order. */
  private readonly storeWrites: StoreRetryQueue;

  constructor(private readonly o: RecordingServiceOptions) {
    this.storeWrites = new StoreRetryQueue({
      clock: o.clock,
      log: o.log,
      what: 'recording rows and audit entries',
      // Many sessions ending together: one commit per chunk, not one per row and entry.
      transaction: (writes) => o.repo.transaction(writes),
    });
  }

  /** Store writes (index rows, audit entries) still waiting for the store. */
  get pendingStoreWrites(): number {
    return this.storeWrites.size;
  }

  get config(): RecordingConfig {
    return this.o.config;
  }

  get sink(): RecordingSink {
    return this.o.sink;
  }

  get repo(): RecordingRepository {
    return this.o.repo;
  }

  /**
   * Opens the session with `openInner` (store row, grant checks, metrics) and records it. A session
   * the inner service refuses is audited as refused; the error goes on to the client.
   */
  async open(info: RecordedSessionInfo, openInner: () => Promise<SessionPipeline>): Promise<SessionPipeline> {
    let inner: SessionPipeline;
    try {
      inner = await openInner();
    } catch (err) {
      this.auditSafely({
        type: 'session.refused',
        actor: info.user,
        data: {
          connection: info.connection,
          clientAddress: info.clientAddress,
          applicationName: info.applicationName,
          why: (err as Error).message,
        },
      });
      throw err;
    }
    return this.wrap(inner, info, await this.grantOf(info.tokenId));
  }

  /** Records a session whose pipeline is already open. */
  private wrap(inner: SessionPipeline, info: RecordedSessionInfo, grant: SessionGrant | undefined): SessionPipeline {
    const id = inner.id;
    const now = this.o.clock.now();
    const startData: Omit<SessionStartData, 'recording'> = {
      session: id,
      protocol: info.protocol,
      user: info.user,
      groups: grant?.groups ?? [],
      connection: info.connection,
      clientAddress: info.clientAddress,
      applicationName: info.applicationName,
      authMethod: info.authMethod ?? null,
      encrypted: info.encrypted ?? null,
      tokenId: info.tokenId,
      grant: grant
        ? {
            id: grant.id,
            reason: grant.reason,
            requestId: grant.requestId,
            approvedBy: grant.approvedBy,
            breakGlass: grant.breakGlass,
            policy: grant.policy ?? null,
            issuedBy: grant.issuedBy ?? null,
            createdAt: grant.createdAt,
            expiresAt: grant.expiresAt,
          }
        : null,
    };
    const auditStart = (recording: Record<string, unknown>) =>
      this.auditSafely({
        type: 'session.started',
        actor: info.user,
        subject: id,
        data: { ...startData, session: undefined, recording },
      });

    if (!this.o.config.enabled) {
      auditStart({ state: 'disabled' });
      this.live.set(id, { info, recorder: null });
      return this.withLiveCounters(this.unrecorded(inner, info));
    }

    const policy = policyFor(this.o.config, info.connection);
    let writer = null;
    let location: string | null = null;
    let openError: Error | null = null;
    try {
      ({ writer, location } = this.o.sink.create(id, now, () => this.o.clock.now()));
    } catch (err) {
      openError = err as Error;
    }
    try {
      this.o.repo.insert({
        sessionId: id,
        user: info.user,
        connection: info.connection,
        startedAt: now,
        mode: policy.mode,
        state: writer ? 'recording' : 'unavailable',
        location,
        error: openError ? openError.message : null,
      });
    } catch (err) {
      // Without an index row nobody could find the recording: treat it as unwritable.
      this.o.log.error({ err, session: id }, 'cannot index the recording of a session');
      openError ??= err as Error;
      void writer?.close().catch(() => undefined);
      writer = null;
    }
    if (openError) {
      this.o.log.error({ session: id, connection: info.connection, mode: policy.mode, err: openError.message }, 'cannot record session');
      this.auditSafely({
        type: 'recording.unavailable',
        actor: 'gateway',
        subject: id,
        data: { connection: info.connection, mode: policy.mode, error: openError.message },
      });
    }
    auditStart({ state: writer ? 'recording' : 'unavailable', mode: policy.mode, location });

    const recorder = new SessionRecorder({
      sessionId: id,
      writer,
      mode: policy.mode,
      limits: this.o.config.limits,
      now: () => this.o.clock.now(),
      hooks: {
        onStatement: (n, text) => this.index(id, n, text),
        onDecision: (n, text, decision, how, waitedMs) => this.auditDecision(id, info, n, text, decision, how, waitedMs),
        onFailure: (err) => {
          this.o.log.error(
            { session: id, err: err.message, mode: policy.mode },
            policy.mode === 'required'
              ? "recording failed: refusing the session's statements"
              : 'recording failed: the session continues unrecorded (best-effort)',
          );
          try {
            this.o.repo.markFailed(id, err.message);
          } catch {
            // the end of the session tries again
          }
          this.auditSafely({
            type: 'recording.failed',
            actor: 'gateway',
            subject: id,
            data: { connection: info.connection, mode: policy.mode, error: err.message },
          });
        },
        onRefusing: () =>
          this.o.log.warn({ session: id, connection: info.connection }, 'refusing statements: the session cannot be recorded'),
      },
    });
    recorder.start({ ...startData, recording: { mode: policy.mode, limits: { ...this.o.config.limits } } });
    this.live.set(id, { info, recorder });
    return this.withLiveCounters(recorder.wrap(inner, (result) => this.track(this.finish(id, info, result))));
  }

  /**
   * Keeps the relay's counters beside the live session: the store's row only gets them when the
   * session ends, and a live session should not read "0 statements" meanwhile.
   */
  private withLiveCounters(pipeline: SessionPipeline): SessionPipeline {
    return {
      ...pipeline,
      watchCounters: (counters) => {
        const session = this.live.get(pipeline.id);
        if (session) session.counters = counters;
        pipeline.watchCounters?.(counters);
      },
    };
  }

  /** Recording switched off: the session is still tracked (kill) and its start and end audited. */
  private unrecorded(inner: SessionPipeline, info: RecordedSessionInfo): SessionPipeline {
    return {
      ...inner,
      decide: (s) => inner.decide(s),
      end: (reason, counters) => {
        inner.end(reason, counters);
        this.live.delete(inner.id);
        this.auditSafely({
          type: 'session.ended',
          actor: info.user,
          subject: inner.id,
          data: { reason, ...counters, recording: { state: 'disabled' } },
        });
      },
    };
  }

  private async finish(id: string, info: RecordedSessionInfo, pending: Promise<RecorderResult>): Promise<void> {
    let result: RecorderResult;
    try {
      result = await pending;
    } catch (err) {
      result = {
        reason: 'client_error',
        digest: null,
        events: 0,
        rowsRecorded: 0,
        truncated: false,
        error: (err as Error).message,
        writeError: false,
      };
    }
    this.live.delete(id);
    this.indexed.delete(id);
    const endedAt = this.o.clock.now();
    const row = this.safeGet(id);
    const bytes = row?.location ? ((await settled(() => this.o.sink.size(row.location!))) ?? null) : null;
    const state = row?.state === 'unavailable' ? 'unavailable' : result.error ? 'failed' : 'complete';
    const reason = result.reason;
    this.flushIndex();
    const finished = {
      sessionId: id,
      endedAt,
      endReason: reason,
      state,
      events: result.events,
      digest: result.digest,
      bytes,
      rowsRecorded: result.rowsRecorded,
      truncated: result.truncated,
      error: result.error,
      writeErrorAt: result.writeError ? result.events : null,
    } as const;
    // Retried while the store cannot take it: a recording must not stay "recording" forever.
    this.storeWrites.run(`recording row of session ${id}`, () => this.o.repo.finish(finished));
    if (row?.location && state !== 'unavailable') this.o.sink.archive(row.location, result.digest);
    this.auditEnd({
      type: 'session.ended',
      actor: info.user,
      subject: id,
      data: {
        connection: info.connection,
        reason,
        recording: {
          state,
          digest: result.digest,
          events: result.events,
          rowsRecorded: result.rowsRecorded,
          truncated: result.truncated,
          error: result.error,
          ...(result.writeError ? { writeErrorAt: result.events } : {}),
        },
      },
    });
  }

  private track(p: Promise<void>): void {
    this.ending.add(p);
    void p.finally(() => this.ending.delete(p));
  }

  // -------------------------------------------------------------------------------------------
  // live sessions

  isLive(sessionId: string): boolean {
    return this.live.has(sessionId);
  }

  /** A live session's running counters (statements so far, bytes); undefined when not live here. */
  liveCounters(sessionId: string): Readonly<SessionCounters> | undefined {
    return this.live.get(sessionId)?.counters;
  }

  /** Follow a live session's events from now on; undefined when it is not live (here) or not recorded. */
  subscribe(sessionId: string, fn: (event: RecordedEvent) => void): (() => void) | undefined {
    return this.live.get(sessionId)?.recorder?.subscribe(fn);
  }

  /** Makes a live session's events durable so a reader of its file sees all of them. */
  async flush(sessionId: string): Promise<void> {
    await this.live.get(sessionId)?.recorder?.flush();
  }

  /** Ends a live session on an administrator's (or its own user's) behalf; recorded and audited. */
  kill(sessionId: string, by: string, reason: string): 'killed' | 'not_live' {
    const session = this.live.get(sessionId);
    const killer = this.o.kill;
    if (!session || !killer) return 'not_live';
    session.recorder?.noteKill(by, reason);
    this.auditSafely({
      type: 'session.killed',
      actor: by,
      subject: sessionId,
      data: { user: session.info.user, connection: session.info.connection, reason },
    });
    const message = `terminating connection: session ended by ${by}: ${reason}`;
    return killer(sessionId, 'killed', message) ? 'killed' : 'not_live';
  }

  // -------------------------------------------------------------------------------------------
  // reading

  /** The recording of a session as stored (the durable part of a live one). */
  async read(sessionId: string): Promise<{ row: RecordingRow; result: ReadResult } | undefined> {
    const row = this.o.repo.get(sessionId);
    if (!row?.location || row.state === 'deleted') return undefined;
    await this.flush(sessionId);
    return { row, result: await this.o.sink.read(row.location) };
  }

  // -------------------------------------------------------------------------------------------
  // start and stop

  /**
   * Recordings the index still shows as being written, though no session here writes them: left
   * open by a crash (kill -9, power loss), or ended while the store could not take their end row
   * and the process stopped before a retry got it in. Their files hold every checkpointed event.
   *
   * A recording that ends with its `session_end` event ended properly: its session gets that
   * event's reason, time and counters. Otherwise the session ends as `crashed` (`gateway_crashed`;
   * `instance_lost` when a surviving instance closes a lost one's) when its
   * last event happened, with the statements its recording holds and the bytes of its last counter
   * snapshot (not as a clean stop at restart time with nothing done). Either way the index row
   * gets the digest of the last intact event, and the end is audited.
   *
   * Only the recordings of `scope` are touched: another live instance's are its own business.
   *
   * Recordings on this host's disk are read synchronously, so for them the whole recovery happens
   * in the caller's turn of the event loop (a lost instance's sessions are closed and given their
   * recorded end at once); one only in object storage is awaited, and no other call recovers it
   * meanwhile.
   */
  async recoverOrphans(scope: OrphanScope, crashed: 'gateway_crashed' | 'instance_lost' = 'gateway_crashed'): Promise<number> {
    let recovered = 0;
    const rows = this.o.repo.live(scope).filter((r) => !this.live.has(r.sessionId) && !this.recovering.has(r.sessionId));
    for (const row of rows) this.recovering.add(row.sessionId);
    try {
      for (const row of rows) {
        const pending = this.recoverOne(row, crashed);
        if (pending) await pending;
        recovered++;
      }
    } finally {
      for (const row of rows) this.recovering.delete(row.sessionId);
    }
    if (recovered > 0) this.o.log.warn({ recordings: recovered }, 'closed recordings left open by an earlier gateway process');
    return recovered;
  }

  /** Sessions whose recording a recoverOrphans call is closing now. */
  private readonly recovering = new Set<string>();

  /** Resolves at once (no turn of the event loop) when the sink answered synchronously. */
  private recoverOne(row: RecordingRow, crashed: 'gateway_crashed' | 'instance_lost'): void | Promise<void> {
    let read: MaybePromise<ReadResult | undefined>;
    try {
      read = row.location ? this.o.sink.read(row.location) : undefined;
    } catch (err) {
      read = Promise.reject(err);
    }
    const size = row.location ? settled(() => this.o.sink.size(row.location!)) : undefined;
    if (read instanceof Promise || size instanceof Promise)
      return Promise.all([Promise.resolve(read).catch((err: unknown) => this.cannotRead(row, err)), Promise.resolve(size)]).then(
        ([r, bytes]) => this.closeOrphan(row, crashed, r, bytes),
      );
    this.closeOrphan(row, crashed, read, size);
  }

  private cannotRead(row: RecordingRow, err: unknown): undefined {
    this.o.log.warn({ session: row.sessionId, err: (err as Error).message }, 'cannot read a recording left open');
    return undefined;
  }

  private closeOrphan(
    row: RecordingRow,
    crashed: 'gateway_crashed' | 'instance_lost',
    read: ReadResult | undefined,
    bytes: number | undefined,
  ): void {
    const intact = read ? (read.intact ? read.events : read.events.slice(0, read.brokenAt)) : [];
    const last = intact.at(-1);
    const found = countersFrom(intact);
    const endedAt = last?.at ?? row.startedAt;
    const endEvent = last?.type === 'session_end' ? (last.data as unknown as SessionEndData) : undefined;
    const reason = (endEvent?.reason as SessionEndReason | undefined) ?? crashed;
    const counters: SessionCounters = endEvent
      ? { statements: endEvent.statements, bytesFromClient: endEvent.bytesFromClient, bytesToClient: endEvent.bytesToClient }
      : found.counters;
    const state = endEvent && read?.intact ? 'complete' : 'failed';
    const error = endEvent
      ? null
      : crashed === 'instance_lost'
        ? 'the gateway instance writing this recording was lost (no heartbeat); events up to the last checkpoint are kept'
        : 'the gateway stopped without closing this recording (crash); events up to the last checkpoint are kept';
    this.o.repo.finish({
      sessionId: row.sessionId,
      endedAt,
      endReason: reason,
      state,
      events: intact.length,
      digest: last?.h ?? null,
      bytes: bytes ?? null,
      rowsRecorded: found.rowsRecorded,
      truncated: found.truncated,
      error,
    });
    this.o.sessions
      ?.reconcile(row.sessionId, endedAt, reason, counters)
      .catch((err: unknown) =>
        this.o.log.warn({ session: row.sessionId, err: (err as Error).message }, 'cannot restore the end of a session from its recording'),
      );
    this.auditSafely({
      type: 'session.ended',
      actor: row.user,
      subject: row.sessionId,
      data: {
        connection: row.connection,
        reason,
        recovered: true,
        ...counters,
        recording: { state, digest: last?.h ?? null, events: intact.length, lastEventAt: last?.at ?? null, error },
      },
    });
    // Compress what was left in plain text (off the start path; readers take either form), then
    // keep it where finished recordings go.
    const location = row.location;
    if (location)
      void this.o.sink.seal(location).then(
        () => this.o.sink.archive(location, last?.h ?? null),
        (err: unknown) => this.o.log.warn({ session: row.sessionId, err: (err as Error).message }, 'cannot compress a recording left open'),
      );
  }

  /** Waits for ending sessions to close their recordings, then writes the search index and what is queued. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.ending.size > 0) await Promise.allSettled([...this.ending]);
    if (this.indexTimer) clearTimeout(this.indexTimer);
    this.flushIndex();
    await this.storeWrites.close();
  }

  // -------------------------------------------------------------------------------------------
  // helpers

  private async grantOf(tokenId: string): Promise<SessionGrant | undefined> {
    try {
      return await this.o.grants?.grantForToken(tokenId);
    } catch (err) {
      this.o.log.warn({ err }, 'cannot look up the grant of a session for its recording');
      return undefined;
    }
  }

  private readonly indexed = new Map<string, Set<string>>();

  /** Buffers statement texts for search (written in batches: one transaction a second, not per statement). */
  private index(sessionId: string, n: number, text: string): void {
    let seen = this.indexed.get(sessionId);
    if (!seen) this.indexed.set(sessionId, (seen = new Set()));
    if (seen.size >= INDEX_STATEMENTS_PER_SESSION) return;
    const clipped = text.length > INDEX_TEXT_CHARS ? text.slice(0, INDEX_TEXT_CHARS) : text;
    // Remember long texts by a digest: a thousand of them must not hold megabytes per session.
    const key = clipped.length > 64 ? createHash('sha1').update(clipped).digest('base64') : clipped;
    if (seen.has(key)) return;
    seen.add(key);
    this.indexBuffer.push({ sessionId, n, text: clipped });
    if (!this.indexTimer && !this.closed) {
      this.indexTimer = setTimeout(() => {
        this.indexTimer = undefined;
        this.flushIndex();
      }, INDEX_FLUSH_MS);
      this.indexTimer.unref();
    }
  }

  private flushIndex(): void {
    const rows = this.indexBuffer;
    this.indexBuffer = [];
    if (rows.length === 0) return;
    try {
      this.o.repo.indexStatements(rows);
    } catch (err) {
      this.o.log.warn({ err, statements: rows.length }, 'cannot write the statement search index (the recordings themselves are complete)');
    }
  }

  private auditDecision(
    id: string,
    info: RecordedSessionInfo,
    n: number,
    text: string,
    decision: Decision,
    how: 'immediate' | 'held' | 'decided',
    waitedMs?: number,
  ): void {
    const type = how === 'held' ? 'statement.held' : how === 'decided' ? 'statement.decided' : 'statement.denied';
    this.auditSafely({
      type,
      actor: info.user,
      subject: id,
      data: {
        connection: info.connection,
        n,
        statement: text.length > 1024 ? `${text.slice(0, 1024)}...` : text,
        ...(how === 'held'
          ? {}
          : { effect: decision.effect, reasons: decision.reasons, ...(decision.rule ? { rule: decision.rule } : {}) }),
        ...(waitedMs !== undefined ? { waitedMs } : {}),
      },
    });
  }

  /** Appends to the audit log now, or (the store unavailable) queues the entry and retries it in order. */
  private auditSafely(event: Parameters<AuditAppender['append']>[0]): void {
    // Never rejects: a write the store refuses is queued and retried.
    void this.storeWrites.runNow(`audit ${event.type}`, async () => void (await this.o.audit.append(event)));
  }

  /** The end of a session: its index row and audit entry, batched with other sessions' ends. */
  private auditEnd(event: Parameters<AuditAppender['append']>[0]): void {
    this.storeWrites.run(`audit ${event.type}`, async () => void (await this.o.audit.append(event)));
  }

  private safeGet(id: string): RecordingRow | undefined {
    try {
      return this.o.repo.get(id);
    } catch {
      return undefined;
    }
  }
}

/**
 * What a crashed session's recording says about it: statements (one event each), the last byte
 * counter snapshot (see COUNTERS_EVERY_MS in ./session-recorder.ts), rows recorded and truncation.
 */
export function countersFrom(events: readonly RecordedEvent[]): { counters: SessionCounters; rowsRecorded: number; truncated: boolean } {
  let statements = 0;
  let rowsRecorded = 0;
  let truncated = false;
  let bytes: [number, number] | undefined;
  for (const e of events) {
    const d = e.data;
    if (e.type === 'statement') statements++;
    else if (e.type === 'rows' || e.type === 'result') rowsRecorded += Array.isArray(d.rows) ? d.rows.length : 0;
    else if (e.type === 'copy') rowsRecorded += Array.isArray(d.data) ? d.data.length : 0;
    if (d.truncated !== undefined && (e.type === 'complete' || e.type === 'result' || e.type === 'error')) truncated = true;
    const snapshot = e.type === 'ready' ? d.bytes : (d.ready as { bytes?: unknown } | undefined)?.bytes;
    if (Array.isArray(snapshot) && typeof snapshot[0] === 'number' && typeof snapshot[1] === 'number') bytes = [snapshot[0], snapshot[1]];
  }
  return { counters: { statements, bytesFromClient: bytes?.[0] ?? 0, bytesToClient: bytes?.[1] ?? 0 }, rowsRecorded, truncated };
}

/** `fn()`'s value, or undefined when it throws or rejects; synchronous when `fn` is. */
function settled<T>(fn: () => MaybePromise<T | undefined>): MaybePromise<T | undefined> {
  try {
    const v = fn();
    return v instanceof Promise ? v.catch(() => undefined) : v;
  } catch {
    return undefined;
  }
}
