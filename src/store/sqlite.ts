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
import { CORE_MIGRATIONS } from './core-schema.js';
import { SqlStore } from './sql-store.js';
import { SqliteSql } from './sqlite-sql.js';

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

export class SqliteStore extends SqlStore {
  readonly path: string;
  private readonly db: Database.Database;
  private closed = false;

  /**
   * The underlying handle, for modules not yet on SqlDatabase (identity, recordings, ...): each
   * keeps its own repository and migrations (see migrateModule) on this one connection.
   */
  get database(): Database.Database {
    return this.db;
  }

  constructor(path: string, options: SqliteStoreOptions = {}) {
    const memory = path === ':memory:' || path === '';
    if (!memory) prepareFile(path);
    const db = new Database(path);
    try {
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
      if (!memory) db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
      if (options.maxSizeBytes !== undefined) {
        const pageSize = Number(db.pragma('page_size', { simple: true }));
        db.pragma(`max_page_count = ${Math.max(1, Math.floor(options.maxSizeBytes / pageSize))}`);
      }
      migrate(db);
    } catch (err) {
      db.close();
      throw err;
    }
    // The connection's one SqlDatabase, shared by every repository on it (see SqliteSql.of).
    super(SqliteSql.of(db));
    this.path = path;
    this.db = db;
  }

  schemaVersion(): number {
    return currentVersion(this.db);
  }

  /** Closes the file at once (the promise is the Store interface's). */
  override async close(): Promise<void> {
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
