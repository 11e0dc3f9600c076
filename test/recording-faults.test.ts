/**
 * Recording on a disk that fills up, with a real PostgreSQL and a real client: the recordings
 * directory is a tiny tmpfs (needs root to mount; skipped elsewhere, the unit tests in
 * src/recording/file-recorder.test.ts inject the same fault). A recording cut by ENOSPC ends with
 * the digest of the last event written whole and verifies as a prefix; a session that could write
 * nothing has no digest. Neither reads as tampered.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRecording } from '../src/recording/file-recorder.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { cli, settledSession } from './support/recording.js';

function mountTmpfs(dir: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Whether this process may mount a tmpfs (root); tried once on a scratch directory. */
const canMount = (() => {
  const probe = mkdtempSync(join(tmpdir(), 'jitgate-mount-probe-'));
  const ok = mountTmpfs(probe);
  if (ok) execFileSync('umount', [probe]);
  rmSync(probe, { recursive: true, force: true });
  return ok;
})();

/** Takes every free byte of the tmpfs (bounded by its size). */
function fillDisk(mountPoint: string): void {
  const fd = openSync(join(mountPoint, 'filler'), 'a');
  const chunk = Buffer.alloc(4096, 0x61);
  try {
    for (let i = 0; i < 1024; i++) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

// Outside CI a developer without root skips this suite; in CI a suite never skips for a missing
// capability, so the same condition fails there instead.
describe.skipIf(!canMount && !process.env.CI)('recording on a full disk', () => {
  let server: PgServer;
  let gw: TestGateway;
  let mountPoint: string | undefined;
  beforeAll(async () => {
    if (!canMount) throw new Error('this suite needs to mount a tmpfs (run as root); CI does not skip it');
    server = await startPostgres();
    // The default recordings directory (where the CLI looks, given --data-dir) is the tiny disk.
    gw = await startTestGateway(server, {
      extraYaml: 'recording:\n  fsyncInterval: 0\n',
      beforeStart: (dataDir) => {
        const dir = join(dataDir, 'recordings');
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        if (!mountTmpfs(dir)) throw new Error(`cannot mount a tmpfs on ${dir}`);
        mountPoint = dir;
      },
    });
  });
  afterAll(async () => {
    // Stop the gateway, then unmount, then remove its data directory.
    await gw?.gateway.close();
    if (mountPoint) execFileSync('umount', [mountPoint]);
    await gw?.close();
    await server?.cleanup();
  });

  const connect = async (app: string) => {
    const c = new pg.Client({
      host: gw.host,
      port: gw.port,
      user: 'alice',
      database: 'app',
      password: await gw.token(),
      application_name: app,
    });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  };

  it('verifies recordings cut by ENOSPC as prefixes, and says where each was cut', async () => {
    const cut = await connect('cut');
    expect((await cut.query('select 1 as n')).rows).toEqual([{ n: 1 }]);
    fillDisk(mountPoint!);
    // This statement runs, but its result cannot be written: the recording stops here.
    await cut.query("select repeat('x', 8000) as big");
    await expect(cut.query('select 2')).rejects.toThrow(/cannot record this session/);
    await cut.end();
    const cutSession = await settledSession(gw, { applicationName: 'cut' });

    // A session that starts on the full disk writes nothing at all.
    const none = await connect('none');
    await expect(none.query('select 3')).rejects.toThrow(/cannot record this session/);
    await none.end();
    const noneSession = await settledSession(gw, { applicationName: 'none' });

    const file = (s: typeof cutSession) => join(gw.gateway.recording.config.dir, s.recording.location!.replace(/\.gz$/, ''));
    const written = readRecording(file(cutSession));
    expect(written.intact).toBe(true);
    expect(written.events.map((e) => e.type)).toEqual(['session_start', 'statement', 'result']);
    expect(cutSession.recording).toMatchObject({ state: 'failed', writeErrorAt: 3, events: 3, digest: written.events[2]!.h });
    expect(noneSession.recording).toMatchObject({ state: 'failed', writeErrorAt: 0, events: 0, digest: null });
    expect(readRecording(file(noneSession)).events).toEqual([]);

    const verify = await cli(['audit', 'verify', '--recordings', '--data-dir', gw.dataDir]);
    expect(verify.err).toBe('');
    expect(verify.code).toBe(0);
    expect(verify.out).toContain('recordings verified: 2, each chain intact');
    expect(verify.out).toContain(`recording of session ${cutSession.id} verifies as a prefix: truncated by write error at event 3`);
    expect(verify.out).toContain(`recording of session ${noneSession.id} verifies as a prefix: truncated by write error at event 0`);
  });
});
