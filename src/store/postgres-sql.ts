/**
 * SqlDatabase over a shared PostgreSQL (13 or later), for several gateway instances on one state.
 * A bounded pool; every query is parameterised; a transaction takes one pooled connection for its
 * whole run and is run again when PostgreSQL reports a serialisation failure or a deadlock.
 * Statements a repository writes with `?` are numbered `$1..$n` once and cached.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { advisoryLockKey, type SqlDatabase, type SqlExecutor, type SqlMigration, type SqlRow, type SqlValue } from './sql.js';

export interface PostgresSqlOptions {
  url: string;
  /** Most connections the pool holds (default 10). */
  maxConnections?: number;
  /** How long to wait for a connection before failing the call (default 5 s). */
  connectTimeoutMs?: number;
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;
/** Transactions run again at most this often on serialisation failures and deadlocks. */
const MAX_ATTEMPTS = 5;
const RETRYABLE = new Set(['40001', '40P01']);

/** Integers come back as numbers, as from SQLite; one that a double cannot hold exactly is an error. */
function exactNumber(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new Error(`the state store returned ${text}, which is not an integer jitgate can hold exactly`);
  return n;
}

const typeParsers = {
  getTypeParser(oid: number, format?: string) {
    if (oid === INT8_OID || oid === NUMERIC_OID) return exactNumber;
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

export class PostgresSql implements SqlDatabase {
  readonly dialect = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly numbered = new Map<string, string>();
  /** The connection of the transaction whose async context a call is made in. */
  private readonly inside = new AsyncLocalStorage<pg.PoolClient>();
  private readonly pooled: SqlExecutor;

  constructor(options: PostgresSqlOptions) {
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.maxConnections ?? 10,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      idleTimeoutMillis: 30_000,
      application_name: 'jitgate',
      types: typeParsers,
    });
    // An idle pooled connection that drops (a PostgreSQL restart) must not crash the gateway; the
    // pool replaces it and the next call that needs it fails or succeeds on its own.
    this.pool.on('error', () => {});
    this.pooled = this.executor(this.pool);
  }

  all<T = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    return this.current().all<T>(sql, params);
  }

  get<T = SqlRow>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> {
    return this.current().get<T>(sql, params);
  }

  run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }> {
    return this.current().run(sql, params);
  }

  async transaction<T>(work: (tx: SqlExecutor) => Promise<T>, options: { lock?: string } = {}): Promise<T> {
    const joined = this.inside.getStore();
    if (joined) {
      if (options.lock) await joined.query('SELECT pg_advisory_xact_lock($1)', [advisoryLockKey(options.lock).toString()]);
      return work(this.executor(joined));
    }
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        if (options.lock) await client.query('SELECT pg_advisory_xact_lock($1)', [advisoryLockKey(options.lock).toString()]);
        const result = await this.inside.run(client, () => work(this.executor(client)));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackErr) {
          broken = rollbackErr as Error;
        }
        if (attempt < MAX_ATTEMPTS && RETRYABLE.has((err as { code?: string }).code ?? '')) continue;
        throw err;
      } finally {
        client.release(broken);
      }
    }
  }

  inTransaction(): boolean {
    return this.inside.getStore() !== undefined;
  }

  async migrate(module: string, migrations: readonly SqlMigration[]): Promise<void> {
    // One instance at a time: the lock is taken before the bookkeeping table exists, so two
    // instances starting on an empty database do not both create it.
    await this.transaction(
      async (tx) => {
        await tx.run(`CREATE TABLE IF NOT EXISTS module_migrations (
          module     TEXT NOT NULL,
          version    INTEGER NOT NULL,
          name       TEXT NOT NULL,
          applied_at BIGINT NOT NULL,
          PRIMARY KEY (module, version)
        )`);
        const row = await tx.get<{ version: number }>(
          `SELECT coalesce(max(version), 0) AS version FROM module_migrations WHERE module = ?`,
          [module],
        );
        const found = row?.version ?? 0;
        const latest = migrations[migrations.length - 1]?.version ?? 0;
        if (found > latest) {
          throw new Error(
            `the state store's ${module} schema is version ${found}, newer than this jitgate understands (${latest}); upgrade jitgate`,
          );
        }
        for (const m of migrations) {
          if (m.version <= found) continue;
          await tx.run(m.postgres);
          await tx.run(`INSERT INTO module_migrations (module, version, name, applied_at) VALUES (?, ?, ?, ?)`, [
            module,
            m.version,
            m.name,
            Date.now(),
          ]);
        }
      },
      { lock: 'jitgate.migrations' },
    );
  }

  async ping(): Promise<boolean> {
    return (await this.get<{ ok: number }>('SELECT 1 AS ok'))?.ok === 1;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private current(): SqlExecutor {
    const client = this.inside.getStore();
    return client ? this.executor(client) : this.pooled;
  }

  private executor(target: pg.Pool | pg.PoolClient): SqlExecutor {
    const query = async (sql: string, params: readonly SqlValue[] = []) => {
      // Without parameters the simple protocol runs it, so a migration may hold several statements.
      if (params.length === 0) return target.query(sql);
      return target.query(this.number(sql), params as SqlValue[]);
    };
    return {
      dialect: 'postgres',
      all: async <T>(sql: string, params?: readonly SqlValue[]) => (await query(sql, params)).rows as T[],
      get: async <T>(sql: string, params?: readonly SqlValue[]) => (await query(sql, params)).rows[0] as T | undefined,
      run: async (sql: string, params?: readonly SqlValue[]) => ({ changes: (await query(sql, params)).rowCount ?? 0 }),
    };
  }

  private number(sql: string): string {
    let out = this.numbered.get(sql);
    if (out === undefined) {
      out = numberPlaceholders(sql);
      this.numbered.set(sql, out);
    }
    return out;
  }
}

/** `?` → `$1, $2, ...`, leaving quoted strings, quoted identifiers and comments alone. */
export function numberPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (c === "'" || c === '"') {
      const end = sql.indexOf(c, i + 1);
      const stop = end < 0 ? sql.length : end;
      out += sql.slice(i, stop + 1);
      i = stop;
    } else if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      const stop = end < 0 ? sql.length : end;
      out += sql.slice(i, stop);
      i = stop - 1;
    } else if (c === '?') {
      out += `$${++n}`;
    } else {
      out += c;
    }
  }
  return out;
}
