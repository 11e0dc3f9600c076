/**
 * One process appending to the audit log of a shared store, as a gateway instance does:
 *
 *   node --import tsx test/support/audit-appender.ts STORE LABEL COUNT
 *
 * STORE is a SQLite file or a postgres:// URL. Waits for "go" on stdin so that several start
 * appending at once, appends COUNT entries (actor LABEL), prints "done" and exits.
 */
import { AuditLog } from '../../src/audit/log.js';
import { PostgresSql } from '../../src/store/postgres-sql.js';
import type { SqlDatabase } from '../../src/store/sql.js';
import { openSqliteStore } from '../../src/store/sqlite.js';

const [location, label, count] = process.argv.slice(2);
if (!location || !label || !count) {
  process.stderr.write('usage: audit-appender.ts STORE LABEL COUNT\n');
  process.exit(2);
}
let sql: SqlDatabase;
let close: () => Promise<void> | void;
if (location.startsWith('postgres://')) {
  const pg = new PostgresSql({ url: location, maxConnections: 4 });
  sql = pg;
  close = () => pg.close();
} else {
  const store = openSqliteStore(location);
  sql = store.sql;
  close = () => store.close();
}
const audit = await AuditLog.open(sql);
process.stdout.write('ready\n');
process.stdin.once('data', () => {
  void (async () => {
    for (let i = 0; i < Number(count); i++) await audit.append({ type: 'test.append', actor: label, data: { i } });
    await close();
    process.stdout.write('done\n');
    process.exit(0);
  })();
});
