/**
 * SqlDatabase over the embedded SQLite file. better-sqlite3 is synchronous, so each call runs at
 * once and returns a settled promise; what this class adds is ordering: a transaction holds the
 * one connection across its awaits, so calls from outside it wait until it commits instead of
 * slipping into it (and being rolled back with it), while calls from within it (its async context)
 * run at once, as part of it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type Database from 'better-sqlite3';
import { migrateModule } from './sqlite.js';
import type { SqlDatabase, SqlExecutor, SqlMigration, SqlRow, SqlValue } from './sql.js';

/** One per connection: see SqliteSql.of. */
const byConnection = new WeakMap<Database.Database, SqliteSql>();

export class SqliteSql implements SqlDatabase {
  readonly dialect = 'sqlite' as const;
  private readonly statements = new Map<string, Database.Statement>();
  /** Settles when the last queued transaction has finished. */
  private tail: Promise<void> = Promise.resolve();
  private transactions = 0;
  /** Set in the async context of the transaction being run. */
  private readonly inside = new AsyncLocalStorage<true>();
  private readonly direct: SqlExecutor;

  /**
   * The SqlDatabase of a connection, made on first use: one per connection, so that a transaction
   * any repository opens makes every other's calls wait or join (two would let calls slip into
   * each other's transactions). Its opener closes the connection.
   */
  static of(db: Database.Database): SqliteSql {
    let sql = byConnection.get(db);
    if (!sql) byConnection.set(db, (sql = new SqliteSql(db)));
    return sql;
  }

  /** `owned`: close() closes the handle (otherwise its opener does). Prefer SqliteSql.of. */
  constructor(
    private readonly db: Database.Database,
    private readonly owned = false,
  ) {
    this.direct = {
      dialect: 'sqlite',
      all: async <T>(sql: string, params: readonly SqlValue[] = []) => this.statement(sql).all(...params) as T[],
      get: async <T>(sql: string, params: readonly SqlValue[] = []) => this.statement(sql).get(...params) as T | undefined,
      run: async (sql: string, params: readonly SqlValue[] = []) => ({ changes: this.statement(sql).run(...params).changes }),
    };
  }

  async all<T = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    await this.idle();
    return this.direct.all<T>(sql, params);
  }

  async get<T = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> {
    await this.idle();
    return this.direct.get<T>(sql, params);
  }

  async run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }> {
    await this.idle();
    return this.direct.run(sql, params);
  }

  async transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    if (this.inside.getStore()) return work(this.direct);
    const previous = this.tail;
    let finished!: () => void;
    this.tail = new Promise<void>((resolve) => (finished = resolve));
    this.transactions++;
    try {
      await previous;
      // IMMEDIATE: take the write lock first, so another process cannot make this one's reads stale.
      this.statement('BEGIN IMMEDIATE').run();
      try {
        const result = await this.inside.run(true, () => work(this.direct));
        this.statement('COMMIT').run();
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.statement('ROLLBACK').run();
        throw err;
      }
    } finally {
      this.transactions--;
      finished();
    }
  }

  inTransaction(): boolean {
    return this.inside.getStore() === true;
  }

  async migrate(module: string, migrations: readonly SqlMigration[]): Promise<void> {
    await this.idle();
    migrateModule(
      this.db,
      module,
      migrations.map((m) => ({ version: m.version, name: m.name, sql: m.sqlite })),
    );
  }

  async ping(): Promise<boolean> {
    await this.idle();
    return (await this.direct.get<{ ok: number }>('SELECT 1 AS ok'))?.ok === 1;
  }

  async close(): Promise<void> {
    await this.idle();
    this.statements.clear();
    if (this.owned && this.db.open) this.db.close();
  }

  private async idle(): Promise<void> {
    if (this.inside.getStore()) return;
    while (this.transactions > 0) await this.tail;
  }

  private statement(sql: string): Database.Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }
}
