/**
 * The embedded default Store: one SQLite file through better-sqlite3 (synchronous; every call is a
 * short indexed statement). WAL mode so the admin CLI can read and write while the gateway runs,
 * a busy timeout so they wait for each other instead of failing, foreign keys on.
 *
 * Errors are never swallowed: SQLITE_FULL, SQLITE_IOERR, SQLITE_BUSY after the timeout and the like
 * are thrown to the caller, which refuses the session (fail closed).
 *
 * Schema changes are numbered migrations recorded in `schema_migrations`; each runs in its own
 * IMMEDIATE transaction that re-checks the version, so two processes opening a fresh file at once
 * cannot apply one twice.
 */
import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { SessionCounters, SessionEndReason } from '../core/types.js';
import { newSalt } from '../crypto/scram.js';
import { CORE_MIGRATIONS } from './core-schema.js';
import { SqlInstances } from './sql-instances.js';
import { SqliteSql } from './sqlite-sql.js';
import {
  RECOVERABLE_END_REASONS,
  type AuthFailureRow,
  type SecretRow,
  type SessionFilter,
  type SessionRow,
  type Store,
  type TokenRow,
} from './store.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export interface SqliteStoreOptions {
  /** Wait this long for another process's write lock before failing (default 5000 ms). */
  busyTimeoutMs?: number;
  /**
   * Cap the database size (rounded down to whole pages). Writes past it fail with SQLITE_FULL, just as
   * on a full disk; meant for quotas and for fault-injection tests.
   */
  maxSizeBytes?: number;
}

export type Row = Record<string, unknown>;

export class SqliteStore implements Store {
  readonly path: string;
  private readonly db: Database.Database;

  /**
   * The underlying handle, for modules that own their tables (identity, access, ...): each keeps its
   * own repository and migrations (see migrateModule) instead of growing this class.
   */
  get database(): Database.Database {
    return this.db;
  }
  private closed = false;
  private readonly stmts;
  readonly instances: SqlInstances;
  /**
   * The one SqlDatabase on this file's connection, for every repository on SqlDatabase: one, so
   * that a transaction one of them opens makes the others' calls wait or join, never slip in.
   */
  readonly sql: SqliteSql;

  constructor(path: string, options: SqliteStoreOptions = {}) {
    this.path = path;
    const memory = path === ':memory:' || path === '';
    if (!memory) prepareFile(path);
    this.db = new Database(path);
    try {
      this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
      if (!memory) this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      if (options.maxSizeBytes !== undefined) {
        const pageSize = Number(this.db.pragma('page_size', { simple: true }));
        this.db.pragma(`max_page_count = ${Math.max(1, Math.floor(options.maxSizeBytes / pageSize))}`);
      }
      migrate(this.db);
    } catch (err) {
      this.db.close();
      throw err;
    }
    const db = this.db;
    this.sql = SqliteSql.of(db);
    this.instances = new SqlInstances(this.sql);
    this.stmts = {
      startSession: db.prepare(
        `INSERT INTO sessions (id, user, connection, protocol, client_address, application_name, started_at, instance_id)
         VALUES (@id, @user, @connection, @protocol, @clientAddress, @applicationName, @startedAt, @instanceId)`,
      ),
      endSession: db.prepare(
        `UPDATE sessions SET ended_at = @endedAt, end_reason = @reason, bytes_from_client = @bytesFromClient,
           bytes_to_client = @bytesToClient, statements = @statements
         WHERE id = @id AND ended_at IS NULL`,
      ),
      reconcile: db.prepare(
        `UPDATE sessions SET ended_at = @endedAt, end_reason = @reason, bytes_from_client = @bytesFromClient,
           bytes_to_client = @bytesToClient, statements = @statements
         WHERE id = @id AND (ended_at IS NULL OR end_reason IN (SELECT value FROM json_each(@recoverable)))`,
      ),
      listSessions: db.prepare(
        `SELECT * FROM sessions
         WHERE (@user IS NULL OR user = @user)
           AND (@connection IS NULL OR connection = @connection)
           AND (@active IS NULL OR (@active = 1 AND ended_at IS NULL) OR (@active = 0 AND ended_at IS NOT NULL))
         ORDER BY started_at DESC, rowid DESC
         LIMIT @limit`,
      ),
      insertSalt: db.prepare(
        `INSERT INTO scram_salts (user, connection, salt, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (user, connection) DO NOTHING`,
      ),
      getSalt: db.prepare(`SELECT salt FROM scram_salts WHERE user = ? AND connection = ?`).pluck(),
      insertToken: db.prepare(
        `INSERT INTO tokens (id, user, connection, salt, iterations, stored_key, server_key, created_at, expires_at, revoked_at)
         VALUES (@id, @user, @connection, @salt, @iterations, @storedKey, @serverKey, @createdAt, @expiresAt, @revokedAt)`,
      ),
      activeTokens: db.prepare(
        `SELECT * FROM tokens WHERE user = ? AND connection = ? AND expires_at > ? AND revoked_at IS NULL
         ORDER BY created_at, rowid`,
      ),
      revokeToken: db.prepare(`UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`),
      insertAuthFailure: db.prepare(
        `INSERT INTO auth_failures (at, user, connection, client_address, reason)
         VALUES (@at, @user, @connection, @clientAddress, @reason)`,
      ),
      listAuthFailures: db.prepare(`SELECT * FROM auth_failures ORDER BY at DESC, id DESC LIMIT ?`),
      putSecret: db.prepare(
        `INSERT INTO secrets (name, iv, tag, ciphertext, updated_at) VALUES (@name, @iv, @tag, @ciphertext, @updatedAt)
         ON CONFLICT (name) DO UPDATE SET iv = excluded.iv, tag = excluded.tag, ciphertext = excluded.ciphertext,
           updated_at = excluded.updated_at`,
      ),
      addSecret: db.prepare(
        `INSERT INTO secrets (name, iv, tag, ciphertext, updated_at) VALUES (@name, @iv, @tag, @ciphertext, @updatedAt)
         ON CONFLICT (name) DO NOTHING`,
      ),
      replaceSecret: db.prepare(
        `UPDATE secrets SET iv = @iv, tag = @tag, ciphertext = @ciphertext, updated_at = @updatedAt WHERE name = @name AND iv = @expectedIv`,
      ),
      getSecret: db.prepare(`SELECT * FROM secrets WHERE name = ?`),
      listSecrets: db.prepare(`SELECT name, updated_at FROM secrets ORDER BY name`),
      deleteSecret: db.prepare(`DELETE FROM secrets WHERE name = ?`),
      ping: db.prepare(`SELECT 1`).pluck(),
    };
  }

  startSession(
    row: Omit<SessionRow, 'endedAt' | 'endReason' | 'bytesFromClient' | 'bytesToClient' | 'statements' | 'instanceId'> & {
      instanceId?: string | null;
    },
  ): void {
    this.stmts.startSession.run({
      id: row.id,
      user: row.user,
      connection: row.connection,
      protocol: row.protocol,
      clientAddress: row.clientAddress,
      applicationName: row.applicationName,
      startedAt: row.startedAt,
      instanceId: row.instanceId ?? null,
    });
  }

  endSession(id: string, endedAt: number, reason: SessionEndReason, counters: SessionCounters): void {
    this.stmts.endSession.run({
      id,
      endedAt,
      reason,
      bytesFromClient: counters.bytesFromClient,
      bytesToClient: counters.bytesToClient,
      statements: counters.statements,
    });
  }

  reconcileSession(id: string, endedAt: number, reason: SessionEndReason, counters: SessionCounters): void {
    this.stmts.reconcile.run({ id, endedAt, reason, ...counters, recoverable: JSON.stringify(RECOVERABLE_END_REASONS) });
  }

  batch(writes: () => Promise<void>): Promise<void> {
    // Through the shared SqlDatabase, so repositories on it wait for this batch or join it.
    return this.sql.transaction(writes);
  }

  listSessions(filter: SessionFilter = {}): SessionRow[] {
    const rows = this.stmts.listSessions.all({
      user: filter.user ?? null,
      connection: filter.connection ?? null,
      active: filter.active === undefined ? null : filter.active ? 1 : 0,
      limit: filter.limit === undefined ? -1 : Math.max(0, Math.floor(filter.limit)),
    }) as Row[];
    return rows.map(toSessionRow);
  }

  scramSalt(user: string, connection: string): Buffer {
    this.stmts.insertSalt.run(user, connection, newSalt(), Date.now());
    return this.stmts.getSalt.get(user, connection) as Buffer;
  }

  insertToken(row: TokenRow): void {
    this.stmts.insertToken.run({ ...row });
  }

  activeTokens(user: string, connection: string, now: number): TokenRow[] {
    return (this.stmts.activeTokens.all(user, connection, now) as Row[]).map(toTokenRow);
  }

  revokeToken(id: string, at: number): boolean {
    return this.stmts.revokeToken.run(at, id).changes > 0;
  }

  recordAuthFailure(row: AuthFailureRow): void {
    this.stmts.insertAuthFailure.run({ ...row });
  }

  listAuthFailures(limit = 100): AuthFailureRow[] {
    return (this.stmts.listAuthFailures.all(Math.max(0, Math.floor(limit))) as Row[]).map((r) => ({
      at: r.at as number,
      user: r.user as string,
      connection: r.connection as string,
      clientAddress: r.client_address as string,
      reason: r.reason as string,
    }));
  }

  putSecret(row: SecretRow): void {
    this.stmts.putSecret.run({ ...row });
  }

  addSecret(row: SecretRow): boolean {
    return this.stmts.addSecret.run({ ...row }).changes > 0;
  }

  replaceSecret(row: SecretRow, expectedIv: Buffer): boolean {
    return this.stmts.replaceSecret.run({ ...row, expectedIv }).changes > 0;
  }

  getSecret(name: string): SecretRow | undefined {
    const r = this.stmts.getSecret.get(name) as Row | undefined;
    if (!r) return undefined;
    return {
      name: r.name as string,
      iv: r.iv as Buffer,
      tag: r.tag as Buffer,
      ciphertext: r.ciphertext as Buffer,
      updatedAt: r.updated_at as number,
    };
  }

  listSecrets(): { name: string; updatedAt: number }[] {
    return (this.stmts.listSecrets.all() as Row[]).map((r) => ({ name: r.name as string, updatedAt: r.updated_at as number }));
  }

  deleteSecret(name: string): boolean {
    return this.stmts.deleteSecret.run(name).changes > 0;
  }

  ping(): boolean {
    try {
      return !this.closed && this.stmts.ping.get() === 1;
    } catch {
      return false;
    }
  }

  /** The applied schema version (for diagnostics and tests). */
  schemaVersion(): number {
    return currentVersion(this.db);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}

/** Open (creating if needed) the SQLite store at `path`, applying pending migrations. */
export function openSqliteStore(path: string, options?: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(path, options);
}

/** Parent directory 0700 when we create it; the database file 0600 (SQLite gives -wal/-shm the same mode). */
function prepareFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const fd = openSync(path, 'a', 0o600);
  closeSync(fd);
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    try {
      chmodSync(path, 0o600);
    } catch {
      // Not our file to change (e.g. owned by another user); SQLite still opens it.
    }
  }
}

function currentVersion(db: Database.Database): number {
  const v = db.prepare(`SELECT coalesce(max(version), 0) FROM schema_migrations`).pluck().get();
  return Number(v);
}

/**
 * Applies a module's own numbered migrations (recorded per module in `module_migrations`), with the
 * same once-only guarantee as the core schema. Modules call it when their repository is created.
 */
export function migrateModule(db: Database.Database, module: string, migrations: readonly Migration[]): void {
  db.exec(`CREATE TABLE IF NOT EXISTS module_migrations (
    module     TEXT NOT NULL,
    version    INTEGER NOT NULL,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL,
    PRIMARY KEY (module, version)
  )`);
  const version = () =>
    db.prepare(`SELECT coalesce(max(version), 0) FROM module_migrations WHERE module = ?`).pluck().get(module) as number;
  const latest = migrations[migrations.length - 1]?.version ?? 0;
  if (version() > latest) {
    throw new Error(
      `the state store's ${module} schema is version ${version()}, newer than this jitgate understands (${latest}); upgrade jitgate`,
    );
  }
  for (const m of migrations) {
    if (m.version <= version()) continue;
    db.transaction(() => {
      if (version() >= m.version) return;
      db.exec(m.sql);
      db.prepare(`INSERT INTO module_migrations (module, version, name, applied_at) VALUES (?, ?, ?, ?)`).run(
        module,
        m.version,
        m.name,
        Date.now(),
      );
    }).immediate();
  }
}

function migrate(db: Database.Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )`);
  const latest = CORE_MIGRATIONS[CORE_MIGRATIONS.length - 1]?.version ?? 0;
  const found = currentVersion(db);
  if (found > latest) {
    throw new Error(`the state store's schema is version ${found}, newer than this jitgate understands (${latest}); upgrade jitgate`);
  }
  for (const m of CORE_MIGRATIONS) {
    if (m.version <= found) continue;
    db.transaction(() => {
      // Re-check inside the write lock: another process may have applied it meanwhile.
      if (currentVersion(db) >= m.version) return;
      db.exec(m.sqlite);
      db.prepare(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`).run(m.version, m.name, Date.now());
    }).immediate();
  }
}

/** Maps a `sessions` row (also used by modules that join it). */
export function toSessionRow(r: Row): SessionRow {
  return {
    id: r.id as string,
    user: r.user as string,
    connection: r.connection as string,
    protocol: r.protocol as string,
    clientAddress: r.client_address as string,
    applicationName: (r.application_name as string | null) ?? null,
    startedAt: r.started_at as number,
    endedAt: (r.ended_at as number | null) ?? null,
    endReason: (r.end_reason as SessionEndReason | null) ?? null,
    bytesFromClient: r.bytes_from_client as number,
    bytesToClient: r.bytes_to_client as number,
    statements: r.statements as number,
    instanceId: (r.instance_id as string | null | undefined) ?? null,
  };
}

/** Maps a `tokens` row (also used by modules that join it). */
export function toTokenRow(r: Row): TokenRow {
  return {
    id: r.id as string,
    user: r.user as string,
    connection: r.connection as string,
    salt: r.salt as Buffer,
    iterations: r.iterations as number,
    storedKey: r.stored_key as Buffer,
    serverKey: r.server_key as Buffer,
    createdAt: r.created_at as number,
    expiresAt: r.expires_at as number,
    revokedAt: (r.revoked_at as number | null) ?? null,
  };
}
