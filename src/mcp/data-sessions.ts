/**
 * An agent's data sessions. An MCP call that runs SQL does not get a side door: it connects to the
 * gateway's own PostgreSQL listener with a token minted under the agent's grant, exactly as psql
 * would. Guardrails, reviews, masking, recording and revocation therefore apply unchanged, and the
 * recording is the agent identity's. One session per (agent, connection) is kept open between calls
 * so that a run of calls is one recorded session, and closed when idle.
 *
 * A statement held for review keeps its session busy; the call returns the review id after a short
 * bounded wait and the outcome waits in HeldStatements until the agent asks for it.
 */
import pg from 'pg';
import Cursor from 'pg-cursor';
import type { Identity } from '../core/types.js';
import type { Logger } from '../obs/log.js';
import { delay, type HeldStatements, type PooledConnection, SessionPool } from './session-pool.js';

export interface PostgresEndpoint {
  host: string;
  port: number;
  /** The gateway's own certificate, pinned: the connection never leaves the gateway's trust. */
  certificate: string;
}

export interface DataSessionsOptions {
  endpoint: () => PostgresEndpoint | undefined;
  /** A fresh token for the caller's active grant on `connection` (throws when there is none). */
  mintToken: (who: Identity, connection: string) => Promise<string>;
  /** Closes a session after this long without calls. */
  idleMs: number;
  /** Where held statements wait for their agent (shared with the MySQL sessions). */
  held: HeldStatements;
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
  | { status: 'refused' | 'error'; code: string; message: string; detail?: string; reasons?: string[] }
  | { status: 'waiting_for_approval'; reviewId: string; message: string; detail?: string; hint?: string };

interface ReviewNotice {
  reviewId: string;
  message: string;
  detail?: string;
  hint?: string;
}

class PgSession implements PooledConnection {
  busy = false;
  constructor(readonly client: pg.Client) {}
  usable(): boolean {
    return usable(this.client);
  }
  close(): void {
    void this.client.end().catch(() => undefined);
  }
}

const REVIEW_NOTICE = /held for approval: review ([0-9a-f-]{6,36})/i;

export class DataSessions {
  private readonly pool: SessionPool<PgSession>;

  constructor(private readonly options: DataSessionsOptions) {
    this.pool = new SessionPool((who, connection) => this.open(who, connection), options.idleMs);
  }

  /** Runs one statement as the agent; rows beyond `maxRows` are not read from the backend. */
  async query(who: Identity, connection: string, sql: string, limits: QueryLimits): Promise<QueryOutcome> {
    let session: PgSession;
    try {
      session = await this.pool.get(who, connection);
    } catch (err) {
      return failure(err);
    }
    if (session.busy) return busy(this.options.held.waitingOn(who, connection), connection);
    session.busy = true;
    let reviewSeen: (notice: ReviewNotice) => void = () => undefined;
    const review = new Promise<ReviewNotice>((resolve) => (reviewSeen = resolve));
    const onNotice = (n: { message?: string; detail?: string; hint?: string }) => {
      const m = REVIEW_NOTICE.exec(n.message ?? '');
      if (m)
        reviewSeen({
          reviewId: m[1]!,
          message: n.message!,
          ...(n.detail ? { detail: n.detail } : {}),
          ...(n.hint ? { hint: n.hint } : {}),
        });
    };
    session.client.on('notice', onNotice);
    const run = runCapped(session.client, sql, limits.maxRows).finally(() => {
      session.client.off('notice', onNotice);
      this.pool.release(who, connection, session);
    });
    const first = await Promise.race([run.then((o) => ({ done: o })), review.then((r) => ({ review: r }))]);
    if ('done' in first) return first.done;
    // Held: wait a little (short reviews answer in the same call), then hand back the review id.
    const quick = await Promise.race([run, delay(limits.holdWaitMs).then(() => undefined)]);
    if (quick) return quick;
    this.options.held.add(who, connection, first.review.reviewId, run);
    return { status: 'waiting_for_approval', ...first.review };
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private async open(who: Identity, connection: string): Promise<PgSession> {
    const endpoint = this.options.endpoint();
    if (!endpoint) throw new Error('this gateway has no PostgreSQL listener');
    const token = await this.options.mintToken(who, connection);
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
    // The gateway ends the session when the grant ends (or a kill): the pool then opens a new one.
    client.on('error', (err) => this.options.log.info({ user: who.user, connection, why: err.message }, 'agent data session ended'));
    await client.connect();
    return new PgSession(client);
  }
}

/** The answer while the agent's session on a connection is still busy. */
export function busy(reviewId: string | undefined, connection: string): QueryOutcome {
  return {
    status: 'error',
    code: 'session_busy',
    message: reviewId
      ? `a statement on "${connection}" is waiting for approval (review ${reviewId}); check it with query_result before running another`
      : `another statement is still running on "${connection}"`,
  };
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
    const internals = cursor as unknown as {
      _result?: { fields?: Array<{ name: string; dataTypeID: number }>; command?: string; rowCount?: number | null };
    };
    const result = internals._result;
    const columns = (result?.fields ?? []).map((f) => ({ name: f.name, typeOid: f.dataTypeID }));
    await cursor.close().catch(() => undefined);
    return {
      status: 'ok',
      command: result?.command ?? '',
      rowCount: truncated ? null : (result?.rowCount ?? rows.length),
      columns,
      rows: rows.map(plainRow),
      truncated,
    };
  } catch (err) {
    await cursor.close().catch(() => undefined);
    return failure(err);
  }
}

function plainRow(row: unknown[]): unknown[] {
  return row.map((v) =>
    v instanceof Date ? v.toISOString() : Buffer.isBuffer(v) ? `\\x${v.toString('hex')}` : typeof v === 'bigint' ? v.toString() : v,
  );
}

function failure(err: unknown): QueryOutcome {
  const e = err as { code?: string; message?: string; detail?: string };
  const code = e.code ?? 'connection_failed';
  // 42501 is how the gateway refuses (guardrails, reviews denied, rate limits), with its reason
  // codes in the detail; other codes come from the database.
  const reasons = code === '42501' ? /^reason: (.+)$/.exec(e.detail ?? '')?.[1]?.split(', ') : undefined;
  return {
    status: code === '42501' ? 'refused' : 'error',
    code,
    message: e.message ?? String(err),
    ...(e.detail ? { detail: e.detail } : {}),
    ...(reasons ? { reasons } : {}),
  };
}
