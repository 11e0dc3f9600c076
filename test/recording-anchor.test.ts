/**
 * The audit log's tail against its anchor outside the data directory: someone with write access
 * to the data directory deletes the last entries, signed checkpoints included. The chain that is
 * left still verifies on its own; `jitgate audit verify` fails because the anchor holds a later
 * checkpoint. Entries after the last checkpoint verify with a warning that nothing vouches for
 * them yet. Real SQLite store, the real CLI, the gateway's audit module (no backend needed).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { readAnchor } from '../src/audit/anchor.js';
import { loadConfig } from '../src/config/load.js';
import { systemClock } from '../src/core/clock.js';
import { createLogger } from '../src/obs/log.js';
import { startAudit } from '../src/audit/wire.js';
import { SharedKeys } from '../src/credentials/shared-keys.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { cli } from './support/recording.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A configuration whose audit head is anchored in a directory apart from the data directory. */
async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'jitgate-anchor-'));
  dirs.push(dir);
  const anchorFile = join(dir, 'elsewhere', 'audit-head.json');
  const configPath = join(dir, 'jitgate.yaml');
  writeFileSync(
    configPath,
    `development: true
dataDir: ${dir}/data
listeners:
  http: { host: 127.0.0.1, port: 0 }
log: { level: silent }
audit:
  checkpointEvery: 5
  anchor: { file: ${anchorFile} }
`,
  );
  const config = await loadConfig(configPath);
  const store = openSqliteStore(config.store.path);
  const audit = await startAudit({
    config,
    sql: store.sql,
    clock: systemClock,
    log: createLogger({ level: 'silent' }),
    keys: SharedKeys.local(),
  });
  const append = async (n: number) => {
    for (let i = 0; i < n; i++) await audit.log.append({ type: 'login.failed', actor: `user${i}`, data: { i } });
  };
  return { config, configPath, anchorFile, store, audit, append };
}

/** Lets the checkpoint the job schedules right after an append run. */
const settle = () => new Promise((r) => setImmediate(r));

describe('the audit anchor', () => {
  it('signs every N entries and anchors each checkpoint outside the data directory', async () => {
    const { anchorFile, store, audit, append } = await setup();
    await append(5);
    await settle();
    const first = (await audit.log.lastCheckpoint())!;
    expect(first).toMatchObject({ seq: 6, data: { upTo: 5 } });
    expect(readAnchor(anchorFile)).toMatchObject({ seq: 6, hash: first.hash, upTo: 5 });
    await append(5);
    await settle();
    expect(readAnchor(anchorFile)).toMatchObject({ seq: 12, upTo: 11 });
    await audit.stop();
    void store.close();
  });

  it('fails verification when the tail is cut, checkpoints included, and keeps the anchor as evidence', async () => {
    const { configPath, config, anchorFile, store, audit, append } = await setup();
    for (const n of [5, 5, 2]) {
      await append(n);
      await settle();
    }
    // Checkpoints at #6 and #12; the one at shutdown (#15) signs #13 and #14.
    await audit.stop();
    void store.close();
    const anchored = readAnchor(anchorFile)!;
    expect(anchored.seq).toBe(15);

    const clean = await cli(['audit', 'verify', '--config', configPath]);
    expect(clean.err).toBe('');
    expect(clean.code).toBe(0);
    expect(clean.out).toMatch(
      /^audit log verified: 15 entries \(#1\.\.#15\), 3 signed checkpoints, signed up to #14 by the trusted key\n$/,
    );

    // Someone with the data directory removes the last entries, both checkpoints among them.
    const db = new Database(config.store.path);
    db.exec('DROP TRIGGER audit_log_no_delete');
    db.prepare('DELETE FROM audit_log WHERE seq > 4').run();
    db.close();
    const cut = await cli(['audit', 'verify', '--config', configPath]);
    expect(cut.code).toBe(1);
    expect(cut.out).toContain('audit log verified: 4 entries (#1..#4), 0 signed checkpoints\n');
    expect(cut.out).toContain(
      `audit log does NOT verify against its anchor (${anchorFile}): the log ends at #4, but the anchor kept outside the data directory holds checkpoint #15`,
    );
    expect(cut.err).toMatch(/does not reach the checkpoint anchored outside the data directory/);
    // The next gateway keeps the anchor as evidence instead of moving it back.
    const again = openSqliteStore(config.store.path);
    const restarted = await startAudit({
      config,
      sql: again.sql,
      clock: systemClock,
      log: createLogger({ level: 'silent' }),
      keys: SharedKeys.local(),
    });
    await restarted.stop();
    void again.close();
    expect(readAnchor(anchorFile)).toEqual(anchored);
  });

  it('verifies entries after the last checkpoint with a warning', async () => {
    const { configPath, store, audit, append } = await setup();
    await append(5);
    await settle();
    await append(2);
    // Entries 7 and 8 are not signed yet when the process is gone (no stop, no final checkpoint).
    void store.close();
    void audit;
    const r = await cli(['audit', 'verify', '--config', configPath]);
    expect(r.code).toBe(0);
    expect(r.out).toBe(
      'audit log verified: 8 entries (#1..#8), 1 signed checkpoint, signed up to #5 by the trusted key\n' +
        'warning: #7..#8 are not signed yet: whoever can write the data directory could remove them without a trace until the next checkpoint\n',
    );
  });
});
