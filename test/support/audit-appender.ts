/**
 * One process appending to the audit log of a shared store, as a gateway instance does:
 *
 *   node --import tsx test/support/audit-appender.ts STORE LABEL COUNT
 *
 * Waits for "go" on stdin so that several start appending at once, appends COUNT entries (actor
 * LABEL), prints "done" and exits.
 */
import { AuditLog } from '../../src/audit/log.js';
import { openSqliteStore } from '../../src/store/sqlite.js';

const [path, label, count] = process.argv.slice(2);
if (!path || !label || !count) {
  process.stderr.write('usage: audit-appender.ts STORE LABEL COUNT\n');
  process.exit(2);
}
const store = openSqliteStore(path);
const audit = new AuditLog(store.database);
process.stdout.write('ready\n');
process.stdin.once('data', () => {
  for (let i = 0; i < Number(count); i++) audit.append({ type: 'test.append', actor: label, data: { i } });
  store.close();
  process.stdout.write('done\n');
  process.exit(0);
});
