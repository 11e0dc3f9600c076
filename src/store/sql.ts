/**
 * The one way repositories reach a database: an async SQL client with two implementations, the
 * embedded SQLite file (./sqlite-sql.ts) and a shared PostgreSQL (./postgres-sql.ts). A repository
 * writes its SQL once, in the subset both engines run alike:
 *
 *  - positional `?` parameters (PostgreSQL's `$n` are numbered for it);
 *  - integers for times (epoch ms) and flags, TEXT for text and JSON, BLOB/BYTEA for bytes; every
 *    integer comes back as a JS number on both (PostgreSQL's int8 would otherwise be a string);
 *  - identifiers that PostgreSQL reserves (`user`) double-quoted;
 *  - `INSERT ... ON CONFLICT`, `RETURNING`, partial indexes: both have them.
 *
 * Where the engines differ (DDL, JSON functions, locking) a repository asks `dialect` and says why.
 * Migrations carry one text per engine.
 */

export type SqlDialect = 'sqlite' | 'postgres';
export type SqlValue = string | number | bigint | Buffer | null;
export type SqlRow = Record<string, unknown>;

export interface SqlExecutor {
  readonly dialect: SqlDialect;
  all<T = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  get<T = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  /** Runs a write; `changes` counts the rows it inserted, updated or deleted. */
  run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }>;
}

/** Numbered schema changes of one module; append only, never edit one that has shipped. */
export interface SqlMigration {
  version: number;
  name: string;
  sqlite: string;
  postgres: string;
}

export interface SqlDatabase extends SqlExecutor {
  /**
   * Runs `work` as one transaction that holds the write lock from its start (SQLite: BEGIN
   * IMMEDIATE; PostgreSQL: `lock` names an advisory lock held to the commit, for work that must be
   * serialised across instances, such as appending to the audit chain).
   *
   * Every call on this database made from within `work` (awaited, in its async context) joins the
   * transaction, so repositories compose: `db.transaction(async () => { await grants.add(g);
   * await audit.append(e); })` commits both or neither. A transaction begun inside another joins it.
   * Work may be run again when PostgreSQL reports a serialisation failure or a deadlock, so it
   * must not have effects outside the database.
   */
  transaction<T>(work: (tx: SqlExecutor) => Promise<T>, options?: { lock?: string }): Promise<T>;
  /** True in the async context of a transaction on this database (a call now would join it). */
  inTransaction(): boolean;
  /** Applies a module's pending migrations once, whatever other instances start at the same moment. */
  migrate(module: string, migrations: readonly SqlMigration[]): Promise<void>;
  /** A cheap round trip, for /readyz. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** Advisory lock keys are 64-bit integers; named locks hash to one (collisions only over-serialise). */
export function advisoryLockKey(name: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(name, 'utf8')) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return BigInt.asIntN(64, h);
}
