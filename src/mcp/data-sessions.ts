/**
 * An agent's data sessions. An MCP call that runs SQL does not get a side door: it connects to the
 * gateway's own PostgreSQL listener with a token minted under the agent's grant, exactly as psql
 * would. Guardrails, reviews, masking, recording and revocation therefore apply unchanged, and the
 * recording is the agent identity's. One session per (agent, connection) is kept open between calls
 * so that a run of calls is one recorded session, and closed when idle.
 *
 * A statement held for review keeps its session busy; the call returns the review id after a short
 * bounded wait and the result is kept here until the agent asks for it (or it is dropped with the
 * session).
 */
import pg from 'pg';
import Cursor from 'pg-cursor';
import type { Identity } from '../core/types.js';
import type { Logger } from '../obs/log.js';

export interface PostgresEndpoint {
  host: string;
  port: number;
  /** The gateway's own certificate, pinned: the connection never leaves the gateway's trust. */
  certificate: string;
}

export interface DataSessionsOptions {
  endpoint: () => PostgresEndpoint | undefined;
  /** A fresh token for the caller's active grant on `connection` (throws when there is none). */
  mintToken: (who: Identity, connection: string) => string;
  /** Closes a session after this long without calls. */
  idleMs: number;
  log: Logger;
}

export interface QueryLimits {
  maxRows: number;
  /** How long a call waits for a held statement before answering with the review id. */
  holdWaitMs: number;
}

export interface ResultColumnInfo {
  name: string;
  /** PostgreSQL type OID. */
  typeOid: number;
}

export type QueryOutcome =
  | { status: 'ok'; command: string; rowCount: number | null; columns: ResultColumnInfo[]; rows: unknown[][]; truncated: boolean }
  | { status: 'refused' | 'error'; code: string; message: string; detail?: string }
  | { status: 'waiting_for_approval'; reviewId: string; message: string; detail?: string; hint?: string };

interface Held {
  reviewId: string;
  connection: string;
  user: string;
  outcome: Promise<QueryOutcome>;
  settled?: QueryOutcome;
}

interface Session {
  client: pg.Client;
  busy: boolean;
  lastUsed: number;
  idleTimer?: NodeJS.Timeout;
}

const REVIEW_NOTICE = /held for approval: review ([0-9a-f-]{6,36})/i;

export class DataSessions {
  private readonly sessions = new Map<string, Promise<Session>>();
  private readonly held = new Map<string, Held>();
  private closed = false;

  constructor(private readonly options: DataSessionsOptions) {}

  /** Runs one statement as the agent; rows beyond `maxRows` are not read from the backend. */
  async query(who: Identity, connection: string, sql: string, limits: QueryLimits): Promise<QueryOutcome> {
    const key = `${who.user}\u0000${connection}`;
    let session: Session;
    try {
      session = await this.session(key, who, connection);
    } catch (err) {
      return failure(err);
    }
    if (session.busy) {
      const pending = [...this.held.values()].find((h) => h.user === who.user && h.connection === connection && !h.settled);
      return {
        status: 'error',
        code: 'session_busy',
        message: pending
          ? `a statement on "${connection}" is waiting for approval (review ${pending.reviewId}); check it with query_result before running another`
          : `another statement is still running on "${connection}"`,
      };
    }
    session.busy = true;
    this.touch(key, session);
    let reviewSeen: (notice: { reviewId: string; message: string; detail?: string; hint?: string }) => void = () => undefined;
    const review = new Promise<{ reviewId: string; message: string; detail?: string; hint?: string }>((resolve) => (reviewSeen = resolve));
    const onNotice = (n: { message?: string; detail?: string; hint?: string }) => {
      const m = REVIEW_NOTICE.exec(n.message ?? '');
      if (m) reviewSeen({ reviewId: m[1]!, message: n.message!, ...(n.detail ? { detail: n.detail } : {}), ...(n.hint ? { hint: n.hint } : {}) });
    };
    session.client.on('notice', onNotice);
    const run = runCapped(session.client, sql, limits.maxRows).finally(() => {
      session.client.off('notice', onNotice);
      session.busy = false;
      this.touch(key, session);
    });
    const first = await Promise.race([run.then((o) => ({ done: o })), review.then((r) => ({ review: r }))]);
    if ('done' in first) return first.done;
    // Held: wait a little (short reviews answer in the same call), then hand back the review id.
    const quick = await Promise.race([run, delay(limits.holdWaitMs).then(() => undefined)]);
    if (quick) return quick;
    const held: Held = { reviewId: first.review.reviewId, connection, user: who.user, outcome: run };
    void run.then((o) => (held.settled = o));
    this.held.set(held.reviewId, held);
    return { status: 'waiting_for_approval', ...first.review };
  }

  /**
   * The outcome of a held statement: its result once decided, or still waiting. Waits up to
   * `waitMs` for a decision. Undefined when this gateway process holds no such statement of the agent.
   */
  async heldResult(who: Identity, reviewId: string, waitMs: number): Promise<QueryOutcome | undefined> {
    const held = [...this.held.values()].find((h) => h.user === who.user && (h.reviewId === reviewId || h.reviewId.startsWith(reviewId) || reviewId.startsWith(h.reviewId)));
    if (!held) return undefined;
    const outcome = held.settled ?? (await Promise.race([held.outcome, delay(waitMs).then(() => undefined)]));
    if (!outcome) return { status: 'waiting_for_approval', reviewId: held.reviewId, message: 'the statement is still waiting for approval' };
    this.held.delete(held.reviewId);
    return outcome;
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.sessions.values()];
    this.sessions.clear();
    this.held.clear();
    await Promise.all(
      all.map(async (p) => {
        const s = await p.catch(() => undefined);
        if (!s) return;
        clearTimeout(s.idleTimer);
        await s.client.end().catch(() => undefined);
      }),
    );
  }

  private async session(key: string, who: Identity, connection: string): Promise<Session> {
    if (this.closed) throw new Error('the gateway is shutting down');
    let existing = this.sessions.get(key);
    // The gateway may have ended it (grant expired or revoked, kill) before the client noticed.
    if (existing && !usable((await existing.catch(() => undefined))?.client)) {
      this.sessions.delete(key);
      existing = undefined;
    }
    if (!existing) {
      existing = this.open(key, who, connection);
      this.sessions.set(key, existing);
      existing.catch(() => this.sessions.delete(key));
    }
    return existing;
  }

  private async open(key: string, who: Identity, connection: string): Promise<Session> {
    const endpoint = this.options.endpoint();
    if (!endpoint) throw new Error('this gateway has no PostgreSQL listener');
    const token = this.options.mintToken(who, connection);
    const client = new pg.Client({
      host: endpoint.host,
      port: endpoint.port,
      user: who.user,
      database: connection,
      password: token,
      application_name: 'jitgate-mcp',
      // Pinned to the gateway's own certificate; the name check is moot for a pinned self-connection.
      ssl: { ca: endpoint.certificate, checkServerIdentity: () => undefined },
    });
    const session: Session = { client, busy: false, lastUsed: Date.now() };
    const forget = () => {
      clearTimeout(session.idleTimer);
      if (this.sessions.get(key) === promise) this.sessions.delete(key);
      for (const [id, h] of this.held) if (h.user === who.user && h.connection === connection && h.settled) this.held.delete(id);
    };
    client.on('error', (err) => {
      this.options.log.info({ user: who.user, connection, why: err.message }, 'agent data session ended');
      forget();
    });
    client.on('end', forget);
    const promise = client.connect().then(() => session);
    return promise;
  }

  private touch(key: string, session: Session): void {
    session.lastUsed = Date.now();
    clearTimeout(session.idleTimer);
    session.idleTimer = setTimeout(() => {
      if (session.busy) return this.touch(key, session);
      this.sessions.delete(key);
      void session.client.end().catch(() => undefined);
    }, this.options.idleMs);
    session.idleTimer.unref();
  }
}

/** Whether a client can still run statements (pg keeps these flags internal). */
function usable(client: pg.Client | undefined): boolean {
  const state = client as unknown as { _queryable?: boolean; _ending?: boolean } | undefined;
  return state !== undefined && state._queryable !== false && state._ending !== true;
}

/** Reads at most `maxRows` rows (one more to know whether there were more), then closes the cursor. */
async function runCapped(client: pg.Client, sql: string, maxRows: number): Promise<QueryOutcome> {
  const cursor = client.query(new Cursor(sql, undefined, { rowMode: 'array' }));
  try {
    const rows = (await cursor.read(maxRows + 1)) as unknown[][];
    const truncated = rows.length > maxRows;
    if (truncated) rows.length = maxRows;
    const internals = cursor as unknown as { _result?: { fields?: Array<{ name: string; dataTypeID: number }>; command?: string; rowCount?: number | null } };
    const result = internals._result;
    const columns = (result?.fields ?? []).map((f) => ({ name: f.name, typeOid: f.dataTypeID }));
    await cursor.close().catch(() => undefined);
    return { status: 'ok', command: result?.command ?? '', rowCount: truncated ? null : (result?.rowCount ?? rows.length), columns, rows: rows.map(plainRow), truncated };
  } catch (err) {
    await cursor.close().catch(() => undefined);
    return failure(err);
  }
}

function plainRow(row: unknown[]): unknown[] {
  return row.map((v) => (v instanceof Date ? v.toISOString() : Buffer.isBuffer(v) ? `\\x${v.toString('hex')}` : typeof v === 'bigint' ? v.toString() : v));
}

function failure(err: unknown): QueryOutcome {
  const e = err as { code?: string; message?: string; detail?: string };
  const code = e.code ?? 'connection_failed';
  // 42501 is how the gateway refuses (guardrails, reviews denied); other codes come from the database.
  return {
    status: code === '42501' ? 'refused' : 'error',
    code,
    message: e.message ?? String(err),
    ...(e.detail ? { detail: e.detail } : {}),
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
