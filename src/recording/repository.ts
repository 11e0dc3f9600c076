/**
 * The recordings index: one row per recorded session (where its recording is, its state, digest,
 * legal hold, deletion) and a trigram full-text index of its statement texts for search. It lives in
 * the gateway's SQLite database (module migrations); the session rows themselves belong to the
 * store and are only read here, to list sessions with their recordings.
 */
import type Database from 'better-sqlite3';
import { toSessionRow } from '../store/sql-store.js';
import { migrateModule, type Migration } from '../store/sqlite.js';
import { SqliteSql } from '../store/sqlite-sql.js';

export const RECORDING_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'recordings index, statement search',
    sql: `
      CREATE TABLE recordings (
        session_id     TEXT PRIMARY KEY,
        user           TEXT NOT NULL,
        connection     TEXT NOT NULL,
        started_at     INTEGER NOT NULL,
        ended_at       INTEGER,
        end_reason     TEXT,
        mode           TEXT NOT NULL,
        -- recording | complete | failed | unavailable | deleted
        state          TEXT NOT NULL,
        location       TEXT,
        events         INTEGER NOT NULL DEFAULT 0,
        digest         TEXT,
        bytes          INTEGER,
        rows_recorded  INTEGER NOT NULL DEFAULT 0,
        truncated      INTEGER NOT NULL DEFAULT 0,
        error          TEXT,
        hold_at        INTEGER,
        hold_by        TEXT,
        hold_reason    TEXT,
        deleted_at     INTEGER
      ) STRICT;
      CREATE INDEX recordings_started ON recordings (started_at DESC);
      CREATE INDEX recordings_live ON recordings (state) WHERE state = 'recording';
      CREATE INDEX recordings_expiring ON recordings (ended_at) WHERE deleted_at IS NULL AND hold_at IS NULL;
      CREATE INDEX recordings_unlinking ON recordings (deleted_at) WHERE deleted_at IS NOT NULL AND location IS NOT NULL;
      -- Trigram tokens make LIKE '%text%' an index lookup for 3+ characters.
      CREATE VIRTUAL TABLE recording_statements USING fts5(session_id UNINDEXED, n UNINDEXED, text, tokenize = 'trigram');
    `,
  },
  {
    version: 2,
    name: 'recordings cut by a write error',
    // Set when a write error (a full disk) stopped the recording: the events written whole before
    // it; `digest` is then that prefix's last hash, and a verifier checks the prefix.
    sql: `ALTER TABLE recordings ADD COLUMN write_error_at INTEGER;`,
  },
];

export type RecordingState = 'recording' | 'complete' | 'failed' | 'unavailable' | 'deleted';

export interface RecordingRow {
  sessionId: string;
  user: string;
  connection: string;
  startedAt: number;
  endedAt: number | null;
  endReason: string | null;
  mode: string;
  state: RecordingState;
  location: string | null;
  events: number;
  digest: string | null;
  bytes: number | null;
  rowsRecorded: number;
  truncated: boolean;
  error: string | null;
  hold: { at: number; by: string; reason: string } | null;
  deletedAt: number | null;
  /** A write error stopped the recording after this many events (null: it did not). */
  writeErrorAt: number | null;
}

/** A session (from the store) with its recording, if it has one. */
export interface SessionListing {
  id: string;
  user: string;
  connection: string;
  protocol: string;
  clientAddress: string;
  applicationName: string | null;
  startedAt: number;
  endedAt: number | null;
  endReason: string | null;
  bytesFromClient: number;
  bytesToClient: number;
  statements: number;
  /** The gateway instance serving (or that served) the session; null for sessions from before instances. */
  instanceId: string | null;
  recording: RecordingRow | null;
}

export interface SessionSearch {
  /** One session by its full id. */
  id?: string;
  user?: string;
  connection?: string;
  /** Sessions active at some time in [since, until]. */
  since?: number;
  until?: number;
  status?: 'live' | 'ended';
  /** Substring of a statement text (case-insensitive). */
  statement?: string;
  limit?: number;
}

/** Whose recordings left open to recover: those of lost instances, and/or those nobody owns. */
export interface OrphanScope {
  instances?: readonly string[];
  unowned?: boolean;
}

type Row = Record<string, unknown>;

export class RecordingRepository {
  private readonly stmts;

  constructor(private readonly db: Database.Database) {
    migrateModule(db, 'recording', RECORDING_MIGRATIONS);
    this.stmts = {
      insert: db.prepare(
        `INSERT INTO recordings (session_id, user, connection, started_at, mode, state, location, error)
         VALUES (@sessionId, @user, @connection, @startedAt, @mode, @state, @location, @error)`,
      ),
      finish: db.prepare(
        `UPDATE recordings SET ended_at = @endedAt, end_reason = @endReason, state = @state, events = @events, digest = @digest,
           bytes = @bytes, rows_recorded = @rowsRecorded, truncated = @truncated, error = coalesce(@error, error),
           write_error_at = @writeErrorAt
         WHERE session_id = @sessionId`,
      ),
      fail: db.prepare(`UPDATE recordings SET state = 'failed', error = ? WHERE session_id = ? AND state = 'recording'`),
      get: db.prepare(`SELECT * FROM recordings WHERE session_id = ?`),
      sessionIds: db.prepare(`SELECT id FROM sessions WHERE id LIKE ? ESCAPE '\\' ORDER BY id LIMIT 2`),
      userSessionIds: db.prepare(`SELECT id FROM sessions WHERE id LIKE ? ESCAPE '\\' AND user = ? ORDER BY id LIMIT 2`),
      // The session's instance, not the recording, says whose it is: rows from before instances
      // (no instance) and those of an instance without a row (stopped, or already swept) are unowned.
      live: db.prepare(
        `SELECT r.* FROM recordings r LEFT JOIN sessions s ON s.id = r.session_id
         WHERE r.state = 'recording' AND (s.instance_id IN (SELECT value FROM json_each(@instances))
           OR (@unowned = 1 AND (s.instance_id IS NULL OR s.instance_id NOT IN (SELECT id FROM instances))))`,
      ),
      index: db.prepare(`INSERT INTO recording_statements (session_id, n, text) VALUES (?, ?, ?)`),
      unindex: db.prepare(`DELETE FROM recording_statements WHERE session_id = ?`),
      hold: db.prepare(`UPDATE recordings SET hold_at = ?, hold_by = ?, hold_reason = ? WHERE session_id = ?`),
      unhold: db.prepare(`UPDATE recordings SET hold_at = NULL, hold_by = NULL, hold_reason = NULL WHERE session_id = ?`),
      unlinking: db.prepare(`SELECT * FROM recordings WHERE deleted_at IS NOT NULL AND location IS NOT NULL ORDER BY deleted_at LIMIT ?`),
      unlinked: db.prepare(`UPDATE recordings SET location = NULL WHERE session_id = ? AND deleted_at IS NOT NULL`),
      markDeleted: db.prepare(
        `UPDATE recordings SET state = 'deleted', deleted_at = ? WHERE session_id = ? AND deleted_at IS NULL AND hold_at IS NULL`,
      ),
    };
  }

  /**
   * Runs `work` as one transaction on this connection's SqlDatabase, so an audit entry appended
   * within it is part of it (this repository's own calls are still synchronous ones on the same
   * connection, which a transaction in progress takes in).
   */
  transaction<T>(work: () => Promise<T>): Promise<T> {
    return SqliteSql.of(this.db).transaction(work);
  }

  insert(row: {
    sessionId: string;
    user: string;
    connection: string;
    startedAt: number;
    mode: string;
    state: RecordingState;
    location: string | null;
    error: string | null;
  }): void {
    this.stmts.insert.run(row);
  }

  finish(row: {
    sessionId: string;
    endedAt: number;
    endReason: string;
    state: RecordingState;
    events: number;
    digest: string | null;
    bytes: number | null;
    rowsRecorded: number;
    truncated: boolean;
    error?: string | null;
    /** A write error stopped the recording after this many events. */
    writeErrorAt?: number | null;
  }): void {
    this.stmts.finish.run({ ...row, truncated: row.truncated ? 1 : 0, error: row.error ?? null, writeErrorAt: row.writeErrorAt ?? null });
  }

  markFailed(sessionId: string, error: string): void {
    this.stmts.fail.run(error, sessionId);
  }

  get(sessionId: string): RecordingRow | undefined {
    const r = this.stmts.get.get(sessionId) as Row | undefined;
    return r && toRecordingRow(r);
  }

  /**
   * A full id, or a unique prefix of one (as the CLI accepts); undefined when none or ambiguous.
   * With `user`, only that user's sessions count (a prefix must not tell others what exists).
   */
  resolveId(idOrPrefix: string, user?: string): { id?: string; ambiguous: boolean } {
    const escaped = idOrPrefix.replace(/[\\%_]/g, (c) => `\\${c}`);
    const rows = (
      user === undefined ? this.stmts.sessionIds.all(`${escaped}%`) : this.stmts.userSessionIds.all(`${escaped}%`, user)
    ) as Row[];
    const exact = rows.find((r) => r.id === idOrPrefix);
    if (exact || rows.length === 1) return { id: (exact ?? rows[0]!).id as string, ambiguous: false };
    return { ambiguous: rows.length > 1 };
  }

  /**
   * Recordings still marked as being written (after a crash: the ones to recover) of sessions that
   * `instances` served, and with `unowned` of sessions no instance row owns.
   */
  live(scope: OrphanScope): RecordingRow[] {
    const params = { instances: JSON.stringify(scope.instances ?? []), unowned: scope.unowned ? 1 : 0 };
    return (this.stmts.live.all(params) as Row[]).map(toRecordingRow);
  }

  /**
   * Sessions started since `since` and the statements they ran, per connection (a session still
   * open has 0 here until it ends: its running count is the recording service's); `user` narrows to
   * one user. Reads the started_at index.
   */
  activityByConnection(since: number, user?: string): Array<{ connection: string; sessions: number; statements: number }> {
    return this.db
      .prepare(
        `SELECT connection, count(*) AS sessions, coalesce(sum(statements), 0) AS statements FROM sessions
         WHERE started_at >= ? AND (? IS NULL OR user = ?) GROUP BY connection ORDER BY connection LIMIT 200`,
      )
      .all(since, user ?? null, user ?? null) as Array<{ connection: string; sessions: number; statements: number }>;
  }

  indexStatements(rows: Array<{ sessionId: string; n: number; text: string }>): void {
    if (rows.length === 0) return;
    this.db.transaction(() => {
      for (const r of rows) this.stmts.index.run(r.sessionId, r.n, r.text);
    })();
  }

  setHold(sessionId: string, hold: { at: number; by: string; reason: string }): void {
    this.stmts.hold.run(hold.at, hold.by, hold.reason, sessionId);
  }

  clearHold(sessionId: string): void {
    this.stmts.unhold.run(sessionId);
  }

  /**
   * Not deleted, not on hold, ended at or before `endedBefore`, of one connection (or of every
   * connection but `except`); oldest first.
   */
  expiring(endedBefore: number, limit: number, which: { connection: string } | { except: string[] }): RecordingRow[] {
    const byConnection = 'connection' in which;
    // Rows without a file (recording unavailable) hold no content: nothing to expire.
    const sql = `SELECT * FROM recordings WHERE deleted_at IS NULL AND hold_at IS NULL AND ended_at IS NOT NULL AND ended_at <= ? AND location IS NOT NULL
       AND ${byConnection ? 'connection = ?' : `connection NOT IN (SELECT value FROM json_each(?))`}
       ORDER BY ended_at LIMIT ?`;
    const rows = this.db.prepare(sql).all(endedBefore, byConnection ? which.connection : JSON.stringify(which.except), limit) as Row[];
    return rows.map(toRecordingRow);
  }

  /**
   * Marks a recording deleted and drops its statement index (the texts must not outlive the
   * recording). False when it is on hold or already deleted (checked under the write lock).
   */
  markDeleted(sessionId: string, at: number): boolean {
    const changed = this.stmts.markDeleted.run(at, sessionId).changes > 0;
    if (changed) this.stmts.unindex.run(sessionId);
    return changed;
  }

  /** Deleted recordings whose file is still to be removed (the file goes after the row is marked). */
  unlinking(limit: number): RecordingRow[] {
    return (this.stmts.unlinking.all(limit) as Row[]).map(toRecordingRow);
  }

  /** The file of a deleted recording is gone. */
  markUnlinked(sessionId: string): void {
    this.stmts.unlinked.run(sessionId);
  }

  /** Sessions (newest first) with their recordings, filtered. */
  search(filter: SessionSearch): SessionListing[] {
    const where: string[] = [];
    const params: Record<string, unknown> = {};
    if (filter.id !== undefined) {
      where.push('s.id = @id');
      params.id = filter.id;
    }
    if (filter.user !== undefined) {
      where.push('s.user = @user');
      params.user = filter.user;
    }
    if (filter.connection !== undefined) {
      where.push('s.connection = @connection');
      params.connection = filter.connection;
    }
    if (filter.until !== undefined) {
      where.push('s.started_at <= @until');
      params.until = filter.until;
    }
    if (filter.since !== undefined) {
      where.push('(s.ended_at IS NULL OR s.ended_at >= @since)');
      params.since = filter.since;
    }
    if (filter.status === 'live') where.push('s.ended_at IS NULL');
    if (filter.status === 'ended') where.push('s.ended_at IS NOT NULL');
    if (filter.statement !== undefined && filter.statement !== '') {
      params.statement = `%${filter.statement.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      // Trigram search needs 3+ characters; shorter needles fall back to a scan of the same table.
      where.push(`s.id IN (SELECT session_id FROM recording_statements WHERE text LIKE @statement ESCAPE '\\')`);
    }
    params.limit = filter.limit === undefined ? -1 : Math.max(0, Math.floor(filter.limit));
    const sql = `SELECT s.*, r.session_id AS r_session_id, r.started_at AS r_started_at, r.ended_at AS r_ended_at,
        r.end_reason AS r_end_reason, r.mode, r.state, r.location, r.events, r.digest, r.bytes, r.rows_recorded, r.truncated,
        r.error, r.hold_at, r.hold_by, r.hold_reason, r.deleted_at, r.write_error_at
      FROM sessions s LEFT JOIN recordings r ON r.session_id = s.id
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY s.started_at DESC, s.rowid DESC
      LIMIT @limit`;
    return (this.db.prepare(sql).all(params) as Row[]).map((r) => ({
      ...toSessionRow(r),
      recording:
        r.r_session_id === null || r.r_session_id === undefined
          ? null
          : toRecordingRow({
              ...r,
              session_id: r.r_session_id,
              started_at: r.r_started_at,
              ended_at: r.r_ended_at,
              end_reason: r.r_end_reason,
            }),
    }));
  }

  /** One session (from the store) with its recording. */
  session(sessionId: string): SessionListing | undefined {
    return this.search({ id: sessionId })[0];
  }
}

function toRecordingRow(r: Row): RecordingRow {
  return {
    sessionId: r.session_id as string,
    user: r.user as string,
    connection: r.connection as string,
    startedAt: r.started_at as number,
    endedAt: (r.ended_at as number | null) ?? null,
    endReason: (r.end_reason as string | null) ?? null,
    mode: r.mode as string,
    state: r.state as RecordingState,
    location: (r.location as string | null) ?? null,
    events: r.events as number,
    digest: (r.digest as string | null) ?? null,
    bytes: (r.bytes as number | null) ?? null,
    rowsRecorded: r.rows_recorded as number,
    truncated: r.truncated === 1,
    error: (r.error as string | null) ?? null,
    hold:
      r.hold_at === null || r.hold_at === undefined
        ? null
        : { at: r.hold_at as number, by: r.hold_by as string, reason: r.hold_reason as string },
    deletedAt: (r.deleted_at as number | null) ?? null,
    writeErrorAt: (r.write_error_at as number | null) ?? null,
  };
}
