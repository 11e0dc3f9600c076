/**
 * An agent's MySQL sessions: like data-sessions.ts for PostgreSQL, SQL from an MCP call goes through
 * the gateway's own MySQL listener (TLS pinned to the gateway's certificate, user = agent, database
 * = connection, a token minted under the agent's grant as password). MySQL has no notices, so a
 * statement held for review is recognised by its pending review of this agent on this connection.
 */
import mysql from 'mysql2';
import type { Identity } from '../core/types.js';
import { busy, type PostgresEndpoint, type QueryLimits, type QueryOutcome } from './data-sessions.js';
import { delay, type HeldStatements, type PooledConnection, SessionPool } from './session-pool.js';

export interface MysqlSessionsOptions {
  endpoint: () => PostgresEndpoint | undefined;
  mintToken: (who: Identity, connection: string) => Promise<string>;
  /** The id of the agent's newest pending review on the connection, if a statement is held. */
  pendingReview: (who: Identity, connection: string) => string | undefined;
  idleMs: number;
  /** Where held statements wait for their agent (shared with the PostgreSQL sessions). */
  held: HeldStatements;
}

class MysqlSession implements PooledConnection {
  busy = false;
  private broken = false;
  constructor(readonly conn: mysql.Connection) {
    conn.on('error', () => (this.broken = true));
    conn.on('end', () => (this.broken = true));
  }
  usable(): boolean {
    return !this.broken;
  }
  close(): void {
    this.conn.destroy();
  }
}

export class MysqlSessions {
  private readonly pool: SessionPool<MysqlSession>;

  constructor(private readonly o: MysqlSessionsOptions) {
    this.pool = new SessionPool((who, connection) => this.open(who, connection), o.idleMs);
  }

  async query(who: Identity, connection: string, sql: string, limits: QueryLimits): Promise<QueryOutcome> {
    let session: MysqlSession;
    try {
      session = await this.pool.get(who, connection);
    } catch (err) {
      return failure(err);
    }
    if (session.busy) return busy(this.o.held.waitingOn(who, connection), connection);
    session.busy = true;
    const run = runCapped(session.conn, sql, limits.maxRows).finally(() => this.pool.release(who, connection, session));
    // Poll for a review while the statement waits; a statement that simply runs long is awaited.
    const deadline = Date.now() + limits.holdWaitMs;
    for (;;) {
      const done = await Promise.race([run, delay(Math.min(100, Math.max(0, deadline - Date.now()))).then(() => undefined)]);
      if (done) return done;
      if (Date.now() < deadline) continue;
      const reviewId = this.o.pendingReview(who, connection);
      if (!reviewId) return run;
      this.o.held.add(who, connection, reviewId, run);
      return { status: 'waiting_for_approval', reviewId, message: `jitgate: statement held for approval: review ${reviewId.slice(0, 8)}` };
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private async open(who: Identity, connection: string): Promise<MysqlSession> {
    const endpoint = this.o.endpoint();
    if (!endpoint) throw new Error('this gateway has no MySQL listener');
    const conn = mysql.createConnection({
      host: endpoint.host,
      port: endpoint.port,
      user: who.user,
      password: await this.o.mintToken(who, connection),
      database: connection,
      // Pinned to the gateway's own certificate (its names include the loopback addresses).
      ssl: { ca: endpoint.certificate, rejectUnauthorized: true },
      connectAttributes: { program_name: 'jitgate-mcp' },
      supportBigNumbers: true,
      bigNumberStrings: true,
      dateStrings: true,
    });
    const session = new MysqlSession(conn);
    await new Promise<void>((resolve, reject) => conn.connect((err) => (err ? reject(err) : resolve())));
    return session;
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
  return {
    status: refused ? 'refused' : 'error',
    code: e.errno !== undefined ? String(e.errno) : (e.code ?? 'connection_failed'),
    message: e.sqlMessage ?? e.message ?? String(err),
  };
}
