/**
 * HTTP API of sessions and their recordings: a thin adapter over RecordingService for the web UI
 * and `jitgate kill`. Who may do what:
 *   - read (list, get, events, live tail): auditors (audit.auditors groups), admins, and a
 *     session's own user for that session; others get 404 for a session that is not theirs;
 *   - kill: admins and the session's own user;
 *   - legal hold / release: auditors and admins.
 *
 *   GET  /api/sessions?user=&connection=&since=&until=&status=live|ended&statement=&limit=
 *   GET  /api/sessions/:id                 the session and its recording's state
 *   GET  /api/sessions/:id/events?after=N  recorded events (seq > N) and the chain's verification
 *   GET  /api/sessions/:id/events/stream   server-sent events: what is recorded so far, then live
 *                                          (resumes after `Last-Event-ID`; `event: end` at the end)
 *   POST /api/sessions/:id/kill            {reason}  -> 202 {killed: true}
 *   POST /api/sessions/:id/hold            {reason}
 *   POST /api/sessions/:id/unhold          {reason?}
 */
import type { ServerResponse } from 'node:http';
import type { AuditLog } from '../audit/log.js';
import type { Identity, SessionCounters } from '../core/types.js';
import type { RecordedEvent } from '../recording/file-recorder.js';
import { HoldError, placeHold, releaseHold } from '../recording/holds.js';
import type { RecordingRow, SessionListing, SessionSearch } from '../recording/repository.js';
import type { RecordingService } from '../recording/service.js';
import { parseTimeFilter, TIME_HINT } from '../recording/time-filter.js';
import { checkRecording } from '../recording/verify.js';
import { HttpError, type RouteContext, type Router } from './router.js';

export interface RecordingRoutesOptions {
  recording: RecordingService;
  audit: AuditLog;
  isAdmin: (identity: Identity) => boolean;
  /** Groups whose members may read every session's recording. */
  auditors: readonly string[];
  now: () => number;
  /** Server-sent-event keepalive period (default 15 s). */
  keepaliveMs?: number;
  /** Ends a live session here, or asks the gateway instance serving it to (instances/kills.ts). */
  kill(session: { id: string; instanceId: string | null }, by: string, reason: string): Promise<'killed' | 'requested' | 'not_live'>;
}

export interface RecordingRoutes {
  /** Ends every open live tail (shutdown). */
  stop(): void;
}

const MAX_LIMIT = 1000;
const MAX_REASON = 500;
/** Unsent bytes a live tail may hold for its reader before the stream is ended. */
const MAX_STREAM_BUFFER = 8 * 1024 * 1024;

export function registerRecordingRoutes(router: Router, o: RecordingRoutesOptions): RecordingRoutes {
  const { recording } = o;
  const repo = recording.repo;
  const streams = new Set<() => void>();
  const auditors = new Set(o.auditors);
  const isAuditor = (who: Identity) => who.groups.some((g) => auditors.has(g));
  const mayReadAll = (who: Identity) => o.isAdmin(who) || isAuditor(who);

  /** The session if the caller may see it; a session that is not theirs is as good as absent. */
  const readable = (ctx: RouteContext): SessionListing => {
    const who = ctx.identity!;
    const resolved = repo.resolveId(ctx.params.id!, mayReadAll(who) ? undefined : who.user);
    if (resolved.ambiguous)
      throw new HttpError(400, 'ambiguous_id', `more than one session starts with ${ctx.params.id}; give more of the id`);
    const session = resolved.id ? repo.session(resolved.id) : undefined;
    if (!session || (!mayReadAll(who) && session.user !== who.user)) throw new HttpError(404, 'not_found', `no session ${ctx.params.id}`);
    return session;
  };

  router.add(
    'GET',
    '/api/sessions',
    (ctx) => {
      const who = ctx.identity!;
      const q = ctx.query;
      const filter: SessionSearch = { limit: limitOf(q.get('limit')) };
      const user = q.get('user') ?? undefined;
      if (!mayReadAll(who)) {
        if (user !== undefined && user !== who.user)
          throw new HttpError(403, 'forbidden', "only auditors and admins may list other users' sessions");
        filter.user = who.user;
      } else if (user !== undefined) {
        filter.user = user;
      }
      const connection = q.get('connection');
      if (connection) filter.connection = connection;
      for (const key of ['since', 'until'] as const) {
        const v = q.get(key);
        if (v === null) continue;
        const t = parseTimeFilter(v, o.now());
        if (t === undefined) throw new HttpError(400, 'invalid_time', `${key}: expected ${TIME_HINT}`);
        filter[key] = t;
      }
      const status = q.get('status');
      if (status !== null) {
        if (status !== 'live' && status !== 'ended') throw new HttpError(400, 'invalid_status', 'status must be live or ended');
        filter.status = status;
      }
      const statement = q.get('statement');
      if (statement) filter.statement = statement;
      return { sessions: repo.search(filter).map((s) => sessionJson(s, recording.isLive(s.id), recording.liveCounters(s.id))) };
    },
    {
      doc: {
        summary: "Sessions, newest first: my own, or everyone's for auditors and admins",
        roles: ['owner', 'auditor', 'admin'],
        query: {
          user: 'string?',
          connection: 'string?',
          since: 'string?',
          until: 'string?',
          status: 'string? - live or ended',
          statement: 'string? - text a statement contains',
          limit: 'integer?',
        },
      },
    },
  );

  router.add(
    'GET',
    '/api/sessions/:id',
    (ctx) => {
      const s = readable(ctx);
      return { session: sessionJson(s, recording.isLive(s.id), recording.liveCounters(s.id)) };
    },
    { doc: { summary: 'One session and its recording', roles: ['owner', 'auditor', 'admin'] } },
  );

  router.add(
    'GET',
    '/api/sessions/:id/events',
    async (ctx) => {
      const s = readable(ctx);
      const after = Number(ctx.query.get('after') ?? -1);
      const read = await recording.read(s.id);
      if (!read) throw new HttpError(404, 'no_recording', recordingGone(s.recording));
      const check = checkRecording(read.row, read.result, await o.audit.about(s.id));
      const events = read.result.events.filter((e) => e.seq > after).slice(0, limitOf(ctx.query.get('limit'), 100_000));
      return {
        session: sessionJson(s, recording.isLive(s.id), recording.liveCounters(s.id)),
        verification: { ok: check.ok, problems: check.problems, open: check.open, truncatedFile: read.result.truncated },
        events,
      };
    },
    {
      doc: {
        summary: "A session's recorded events and the recording's verification",
        roles: ['owner', 'auditor', 'admin'],
        query: { after: 'integer? - events after this sequence number', limit: 'integer?' },
      },
    },
  );

  router.add(
    'GET',
    '/api/sessions/:id/events/stream',
    async (ctx) => {
      const s = readable(ctx);
      const lastId = ctx.query.get('after') ?? headerOf(ctx, 'last-event-id');
      await liveTail(ctx.res, s, lastId === undefined ? -1 : Number(lastId));
      return undefined;
    },
    {
      doc: {
        summary: 'Follow a session: its recorded events, then live ones (server-sent events)',
        roles: ['owner', 'auditor', 'admin'],
        query: { after: 'integer?' },
        produces: 'text/event-stream',
      },
    },
  );

  router.add(
    'POST',
    '/api/sessions/:id/kill',
    async (ctx) => {
      const who = ctx.identity!;
      const s = readable(ctx);
      if (!o.isAdmin(who) && s.user !== who.user)
        throw new HttpError(403, 'forbidden', "only admins and the session's own user may end it");
      const reason = reasonOf(ctx.body, true)!;
      if (s.endedAt !== null && !recording.isLive(s.id))
        throw new HttpError(409, 'not_live', `session ${s.id} already ended (${s.endReason ?? 'ended'})`);
      const outcome = await o.kill(s, who.user, reason);
      if (outcome === 'not_live') throw new HttpError(409, 'not_live', `session ${s.id} is not live on any gateway instance`);
      // Served by another instance: it ends the session within a second (202: accepted).
      return { killed: true, session: s.id, ...(outcome === 'requested' ? { instance: s.instanceId } : {}) };
    },
    {
      status: 202,
      doc: { summary: 'End a live session now (admins, or its own user)', roles: ['owner', 'admin'], body: { reason: 'string' } },
    },
  );

  router.add(
    'POST',
    '/api/sessions/:id/hold',
    (ctx) => {
      const who = ctx.identity!;
      const s = readable(ctx);
      if (!mayReadAll(who)) throw new HttpError(403, 'forbidden', 'only auditors and admins may place a legal hold');
      return holdCall(async () => ({
        recording: recordingJson(
          await placeHold(repo, o.audit, { sessionId: s.id, by: who.user, reason: reasonOf(ctx.body, true)!, at: o.now() }),
        ),
      }));
    },
    { doc: { summary: "Put a session's recording on legal hold", roles: ['auditor', 'admin'], body: { reason: 'string' } } },
  );

  router.add(
    'POST',
    '/api/sessions/:id/unhold',
    (ctx) => {
      const who = ctx.identity!;
      const s = readable(ctx);
      if (!mayReadAll(who)) throw new HttpError(403, 'forbidden', 'only auditors and admins may release a legal hold');
      const reason = reasonOf(ctx.body, false);
      return holdCall(async () => ({
        recording: recordingJson(await releaseHold(repo, o.audit, { sessionId: s.id, by: who.user, ...(reason ? { reason } : {}) })),
      }));
    },
    { doc: { summary: 'Release a legal hold', roles: ['auditor', 'admin'], body: { reason: 'string?' } } },
  );

  /** What is recorded so far, then live events, as server-sent events. */
  async function liveTail(res: ServerResponse, s: SessionListing, after: number): Promise<void> {
    if (!s.recording?.location || s.recording.state === 'deleted') throw new HttpError(404, 'no_recording', recordingGone(s.recording));
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-content-type-options': 'nosniff',
      'x-accel-buffering': 'no',
    });
    let lastSent = Number.isFinite(after) ? after : -1;
    let replaying = true;
    const held: RecordedEvent[] = [];
    let done = false;
    const finish = (why: string) => {
      if (done) return;
      done = true;
      cleanup();
      if (!res.writableEnded) res.end(`event: end\ndata: ${JSON.stringify({ why })}\n\n`);
    };
    const emit = (e: RecordedEvent) => {
      if (done || e.seq <= lastSent) return;
      // A reader that does not keep up must not make the gateway buffer without bound: end its
      // stream (it resumes where it was with Last-Event-ID).
      if (res.writableLength > MAX_STREAM_BUFFER) return finish(`the reader fell behind; resume after event ${lastSent}`);
      lastSent = e.seq;
      res.write(`id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
      if (e.type === 'session_end') finish('session ended');
    };
    // Subscribe before reading the file, so nothing falls between what was read and what follows.
    const unsubscribe = recording.subscribe(s.id, (e) => (replaying ? held.push(e) : emit(e)));
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), o.keepaliveMs ?? 15_000);
    keepalive.unref();
    const stop = () => finish('gateway shutting down');
    streams.add(stop);
    function cleanup() {
      unsubscribe?.();
      clearInterval(keepalive);
      streams.delete(stop);
    }
    res.on('close', () => {
      done = true;
      cleanup();
    });
    const read = await recording.read(s.id);
    for (const e of read?.result.events ?? []) emit(e);
    replaying = false;
    for (const e of held) emit(e);
    if (!unsubscribe) finish(read ? 'session not live' : 'no recording');
  }

  return {
    stop: () => {
      for (const stop of [...streams]) stop();
    },
  };
}

function headerOf(ctx: RouteContext, name: string): string | undefined {
  const v = ctx.req.headers[name];
  return typeof v === 'string' ? v : undefined;
}

function limitOf(text: string | null, max = MAX_LIMIT): number {
  if (text === null) return Math.min(100, max);
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new HttpError(400, 'invalid_limit', 'limit must be a positive integer');
  return Math.min(n, max);
}

function reasonOf(body: unknown, required: boolean): string | undefined {
  const reason = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).reason : undefined;
  if (reason !== undefined && typeof reason !== 'string') throw new HttpError(400, 'invalid_reason', 'reason must be a string');
  const trimmed = reason?.trim();
  if (required && !trimmed) throw new HttpError(400, 'reason_required', 'say why (reason); it is recorded and audited');
  if (trimmed && trimmed.length > MAX_REASON) throw new HttpError(400, 'invalid_reason', `reason is longer than ${MAX_REASON} characters`);
  return trimmed || undefined;
}

async function holdCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof HoldError)
      throw new HttpError(err.kind === 'not_found' ? 404 : err.kind === 'conflict' ? 409 : 400, err.kind, err.message);
    throw err;
  }
}

function recordingGone(r: RecordingRow | null): string {
  if (!r) return 'this session has no recording';
  if (r.state === 'deleted') return `its recording was deleted (retention) at ${new Date(r.deletedAt ?? 0).toISOString()}`;
  return `this session's recording is ${r.state}${r.error ? `: ${r.error}` : ''}`;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function recordingJson(r: RecordingRow) {
  return {
    state: r.state,
    mode: r.mode,
    events: r.events,
    digest: r.digest,
    bytes: r.bytes,
    rowsRecorded: r.rowsRecorded,
    truncated: r.truncated,
    error: r.error,
    hold: r.hold ? { at: iso(r.hold.at), by: r.hold.by, reason: r.hold.reason } : null,
    deletedAt: iso(r.deletedAt),
  };
}

/** `counters`: a live session's running counters (the stored row has them only from its end). */
export function sessionJson(s: SessionListing, live: boolean, counters?: Readonly<SessionCounters>) {
  return {
    id: s.id,
    user: s.user,
    connection: s.connection,
    protocol: s.protocol,
    clientAddress: s.clientAddress,
    applicationName: s.applicationName,
    startedAt: iso(s.startedAt),
    endedAt: iso(s.endedAt),
    endReason: s.endReason,
    status: s.endedAt === null ? 'live' : 'ended',
    // Live on this gateway process (a session from a crashed process is not killable).
    attached: live,
    // The gateway instance serving it (null: a session from before instances).
    instance: s.instanceId,
    bytesFromClient: counters?.bytesFromClient ?? s.bytesFromClient,
    bytesToClient: counters?.bytesToClient ?? s.bytesToClient,
    statements: counters?.statements ?? s.statements,
    recording: s.recording ? recordingJson(s.recording) : null,
  };
}
