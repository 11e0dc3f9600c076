/**
 * The shared state store on PostgreSQL: a bounded pool, the core schema migrated once whatever
 * number of instances start together (./postgres-sql.ts migrate).
 */
import { CORE_MIGRATIONS } from './core-schema.js';
import { PostgresSql, type PostgresSqlOptions } from './postgres-sql.js';
import { SqlStore } from './sql-store.js';

export async function openPostgresStore(options: PostgresSqlOptions): Promise<SqlStore> {
  const sql = new PostgresSql(options);
  try {
    await sql.migrate('core', CORE_MIGRATIONS);
  } catch (err) {
    await sql.close();
    throw err;
  }
  return new SqlStore(sql);
}
