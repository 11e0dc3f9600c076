/**
 * One audit chain under concurrent appends from several gateway processes on one store: three
 * processes append 1,000 entries each at once; the log is one chain, in one order, that verifies,
 * with every entry of every process in it. On the SQLite file (processes on one host) and on a
 * shared PostgreSQL (instances anywhere).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { verifyEntriesAsync } from '../src/audit/chain.js';
import { AuditLog } from '../src/audit/log.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import type { SqlDatabase } from '../src/store/sql.js';
import { collect } from './support/collect.js';
import { postgresEngine } from './support/state-store.js';
import { waitUntil } from './support/wait.js';

const ROOT = resolve(import.meta.dirname, '..');
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const APPENDER = join(ROOT, 'test/support/audit-appender.ts');
const dir = mkdtempSync(join(tmpdir(), 'jitgate-audit-procs-'));
const postgres = postgresEngine();
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await postgres.cleanup();
});

/** A store the appenders reach at `location`, existing (and migrated) before they open it, as a first instance leaves it. */
async function sharedStore(engine: 'sqlite' | 'postgres'): Promise<{ location: string; sql: SqlDatabase; close(): Promise<void> | void }> {
  if (engine === 'postgres') {
    const sql = await postgres.open();
    return { location: postgres.location(), sql, close: () => undefined };
  }
  const location = join(dir, 'jitgate.db');
  const store = openSqliteStore(location);
  return { location, sql: store.sql, close: () => store.close() };
}

it.each(['sqlite', 'postgres'] as const)(
  '3 processes × 1,000 concurrent appends give one chain that verifies (%s)',
  async (engine) => {
    const store = await sharedStore(engine);
    const audit = await AuditLog.open(store.sql);
    const procs = ['A', 'B', 'C'].map((label) => {
      const p = spawn(process.execPath, ['--import', TSX, APPENDER, store.location, label, '1000'], { stdio: ['pipe', 'pipe', 'pipe'] });
      const seen = { out: '', err: '' };
      p.stdout.on('data', (d: Buffer) => (seen.out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (seen.err += d.toString()));
      const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
      return { p, seen, exited };
    });
    try {
      await waitUntil('every appender to be ready', () => procs.every((x) => x.seen.out.includes('ready')) || undefined, {
        timeoutMs: 30_000,
      });
      for (const x of procs) x.p.stdin.write('go\n');
      const codes = await Promise.all(procs.map((x) => x.exited));
      expect(codes, procs.map((x) => x.seen.err).join('\n')).toEqual([0, 0, 0]);

      const entries = await collect(audit.entries());
      expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
      for (const label of ['A', 'B', 'C']) expect(entries.filter((e) => e.actor === label)).toHaveLength(1000);
      // Interleaved, not one process after another: the appends really were concurrent.
      const switches = entries.filter((e, i) => i > 0 && e.actor !== entries[i - 1]!.actor).length;
      expect(switches).toBeGreaterThan(2);
      expect(await verifyEntriesAsync(audit.entries())).toMatchObject({ ok: true, entries: 3000 });
    } finally {
      for (const x of procs) if (x.p.exitCode === null) x.p.kill('SIGKILL');
      await store.close();
    }
  },
  120_000,
);
