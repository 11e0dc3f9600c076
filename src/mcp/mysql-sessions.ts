/**
 * An agent's MySQL sessions: like data-sessions.ts for PostgreSQL, SQL from an MCP call goes through
 * the gateway's own MySQL listener (TLS pinned to the gateway's certificate, user = agent, database
 * = connection, a token minted under the agent's grant as password). MySQL has no notices, so a
 * statement held for review is recognised by its pending review of this agent on this connection.
 */
import mysql from 'mysql2';
import type { Identity } from '../core/types.js';
import type { PostgresEndpoint, QueryLimits, QueryOutcome } from './data-sessions.js';

export interface MysqlSessionsOptions {
  endpoint: () => PostgresEndpoint | undefined;
  mintToken: (who: Identity, connection: string) => string;
  /** The id of the agent's newest pending review on the connection, if a statement is held. */
  pendingReview: (who: Identity, connection: string) => string | undefined;
  idleMs: number;
}

interface Session {
  conn: mysql.Connection;
  busy: boolean;
  broken: boolean;
  idleTimer?: NodeJS.Timeout;
}

interface Held {
  reviewId: string;
  user: string;
  outcome: Promise<QueryOutcome>;
  settled?: QueryOutcome;
}

export class MysqlSessions {
  private readonly sessions = new Map<string, Promise<Session>>();
  private readonly held = new Map<string, Held>();
  private shutDown = false;

  constructor(private readonly o: MysqlSessionsOptions) {}

  async query(who: Identity, connection: string, sql: string, limits: QueryLimits): Promise<QueryOutcome> {
    const key = `${who.user}\u0000${connection}`;
    let session: Session;
    try {
      session = await this.session(key, who, connection);
    } catch (err) {
      return failure(err);
    }
    if (session.busy) return { status: 'error', code: 'session_busy', message: `a statement on "${connection}" is still running or waiting for approval` };
    session.busy = true;
    clearTimeout(session.idleTimer);
    const run = runCapped(session.conn, sql, limits.maxRows).finally(() => {
      session.busy = false;
      this.touch(key, session);
    });
    // Poll for a review while the statement waits; a statement that simply runs long is awaited.
    const deadline = Date.now() + limits.holdWaitMs;
    for (;;) {
      const done = await Promise.race([run, delay(Math.min(100, Math.max(0, deadline - Date.now()))).then(() => undefined)]);
      if (done) return done;
      if (Date.now() < deadline) continue;
      const reviewId = this.o.pendingReview(who, connection);
      if (!reviewId) return run;
      const held: Held = { reviewId, user: who.user, outcome: run };
      void run.then((o) => (held.settled = o));
      this.held.set(reviewId, held);
      return { status: 'waiting_for_approval', reviewId, message: `jitgate: statement held for approval: review ${reviewId.slice(0, 8)}` };
    }
  }

  /** As DataSessions.heldResult, for statements held on MySQL connections. */
  async heldResult(who: Identity, reviewId: string, waitMs: number): Promise<QueryOutcome | undefined> {
    const held = [...this.held.values()].find((h) => h.user === who.user && (h.reviewId === reviewId || h.reviewId.startsWith(reviewId)));
    if (!held) return undefined;
    const outcome = held.settled ?? (await Promise.race([held.outcome, delay(waitMs).then(() => undefined)]));
    if (!outcome) return { status: 'waiting_for_approval', reviewId: held.reviewId, message: 'the statement is still waiting for approval' };
    this.held.delete(held.reviewId);
    return outcome;
  }

  async close(): Promise<void> {
    this.shutDown = true;
    const all = [...this.sessions.values()];
    this.sessions.clear();
    this.held.clear();
    for (const p of all) {
      const s = await p.catch(() => undefined);
      if (!s) continue;
      clearTimeout(s.idleTimer);
      s.conn.destroy();
    }
  }

  private async session(key: string, who: Identity, connection: string): Promise<Session> {
    if (this.shutDown) throw new Error('the gateway is shutting down');
    let existing = this.sessions.get(key);
    if (existing && (await existing.catch(() => undefined))?.broken !== false) {
      this.sessions.delete(key);
      existing = undefined;
    }
    if (!existing) {
      existing = this.open(who, connection);
      this.sessions.set(key, existing);
      existing.catch(() => this.sessions.delete(key));
    }
    return existing;
  }

  private async open(who: Identity, connection: string): Promise<Session> {
    const endpoint = this.o.endpoint();
    if (!endpoint) throw new Error('this gateway has no MySQL listener');
    const conn = mysql.createConnection({
      host: endpoint.host,
      port: endpoint.port,
      user: who.user,
      password: this.o.mintToken(who, connection),
      database: connection,
      // Pinned to the gateway's own certificate (its names include the loopback addresses).
      ssl: { ca: endpoint.certificate, rejectUnauthorized: true },
      connectAttributes: { program_name: 'jitgate-mcp' },
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
    });
    const session: Session = { conn, busy: false, broken: false };
    conn.on('error', () => (session.broken = true));
    conn.on('end', () => (session.broken = true));
    await new Promise<void>((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve())));
    return session;
  }

  private touch(key: string, session: Session): void {
    clearTimeout(session.idleTimer);
    session.idleTimer = setTimeout(() => {
      this.sessions.delete(key);
      session.conn.destroy();
    }, this.o.idleMs);
    session.idleTimer.unref();
  }
}

/** Streams the result, keeping at most `maxRows` rows (the rest is read and dropped, memory stays bounded). */
function runCapped(conn: mysql.Connection, sql: string, maxRows: number): Promise<QueryOutcome> {
  return new Promise((resolve) => {
    const rows: unknown[][] = [];
    let columns: Array<{ name: string; typeOid: number }> = [];
    let truncated = false;
    let command = '';
    let affected: number | null = null;
    const q = conn.query({ sql, rowsAsArray: true });
    q.on('fields', (fields: Array<{ name: string; columnType?: number }> | undefined) => {
      columns = (fields ?? []).map((f) => ({ name: f.name, typeOid: f.columnType ?? 0 }));
      command = 'SELECT';
    });
    q.on('result', (row: unknown) => {
      if (Array.isArray(row)) {
        if (rows.length < maxRows) rows.push(row.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v)));
        else truncated = true;
      } else {
        const ok = row as { affectedRows?: number };
        command = 'OK';
        affected = ok.affectedRows ?? null;
      }
    });
    q.on('error', (err) => resolve(failure(err)));
    q.on('end', () => resolve({ status: 'ok', command, rowCount: truncated ? null : (affected ?? rows.length), columns, rows, truncated }));
  });
}

function failure(err: unknown): QueryOutcome {
  const e = err as { code?: string; errno?: number; sqlMessage?: string; message?: string };
  // 1142 is how the gateway refuses on MySQL (guardrails, denied reviews, masking refusals).
  const refused = e.errno === 1142 || e.errno === 1227;
  return { status: refused ? 'refused' : 'error', code: e.errno !== undefined ? String(e.errno) : (e.code ?? 'connection_failed'), message: e.sqlMessage ?? e.message ?? String(err) };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
