/**
 * Recording across a crash and over time, with a real PostgreSQL and real clients:
 *
 *  - the gateway is killed with SIGKILL while a statement is in flight: the recording keeps every
 *    statement before it (with its results), the next gateway closes the recording with the digest
 *    of its last intact event and audits that, ends the session as `gateway_crashed` at its last
 *    event with the counters its recording holds, and both chains verify;
 *  - retention on the gateway's clock deletes expired recordings (and audits each deletion) while
 *    a legal hold placed with `jitgate sessions hold` protects one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { ManualClock } from '../src/core/clock.js';
import { startGateway } from '../src/main.js';
import { createLogger } from '../src/obs/log.js';
import { readRecording } from '../src/recording/file-recorder.js';
import { startTestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { psql } from './support/psql.js';
import { cli, filesUnder, settledSession, until } from './support/recording.js';
import { waitUntil } from './support/wait.js';
import { collect } from './support/collect.js';

let server: PgServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(() => server?.cleanup());

describe('a gateway crash mid-session', () => {
  let dir: string;
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('loses at most the statement in flight; the next gateway closes the recording and audits its digest', async () => {
    dir = mkdtempSync(join(tmpdir(), 'jitgate-crash-'));
    const configPath = join(dir, 'jitgate.yaml');
    writeFileSync(
      configPath,
      `development: true
dataDir: ${dir}/data
listeners:
  http: { host: 127.0.0.1, port: 0 }
  postgres: { host: 127.0.0.1, port: 0 }
log: { level: silent }
connections:
  - { name: app, host: 127.0.0.1, port: ${server.port}, database: app, user: ${server.users.scram.user}, password: env:PG_SCRAM, tls: { mode: disable } }
`,
    );
    const env = { ...process.env, PG_SCRAM: server.users.scram.password };
    child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'support/gateway-child.ts'), configPath, 'alice', 'app'],
      {
        env,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const first = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child!.stdout! }).once('line', resolve);
      child!.once('exit', (code) => reject(new Error(`gateway child exited early (${code})`)));
    });
    const { postgres, token } = JSON.parse(first) as { postgres: string; token: string };
    const c = new pg.Client({
      host: '127.0.0.1',
      port: Number(postgres.slice(postgres.lastIndexOf(':') + 1)),
      user: 'alice',
      database: 'app',
      password: token,
    });
    c.on('error', () => undefined);
    await c.connect();
    // At least three statements, and until the recording holds a snapshot of the byte counters past
    // the first round trip (it takes one a second at most): bounded in count.
    const recorded = () => filesUnder(join(dir, 'data', 'recordings'))[0];
    const snapshotted = () => {
      const f = recorded();
      return (
        f !== undefined && readRecording(f).events.some((e) => ((e.data.ready as { bytes?: number[] } | undefined)?.bytes?.[1] ?? 0) > 0)
      );
    };
    let n = 0;
    const statement = async () => {
      n++;
      expect((await c.query(`select ${n} as n, repeat('x', 10) as pad`)).rows[0].n).toBe(n);
    };
    while (n < 3) await statement();
    // The snapshot is taken at a statement boundary: each check that finds none runs one more.
    await waitUntil('a byte counter snapshot in the recording', async () => snapshotted() || (await statement(), false), {
      intervalMs: 20,
    });
    const done = Array.from({ length: n }, (_, i) => i + 1);
    const inFlight = c.query('select pg_sleep(30)').catch((e: Error) => e);
    await waitUntil(
      'the backend to run pg_sleep(30)',
      async () =>
        (await server.query("select 1 from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'")).rowCount === 1,
    );

    // No shutdown, no session end, no close: the process is simply gone.
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    child = undefined;
    expect(await inFlight).toBeInstanceOf(Error);
    await c.end().catch(() => undefined);

    // What the crash left: the plain file written at every statement boundary (not yet compressed).
    const [file] = filesUnder(join(dir, 'data', 'recordings'));
    expect(file).toMatch(/\.jsonl$/);
    const left = readRecording(file!);
    expect(left.intact).toBe(true);
    const statements = left.events.filter((e) => e.type === 'statement').map((e) => e.data.text);
    expect(statements.slice(0, n)).toEqual(done.map((i) => `select ${i} as n, repeat('x', 10) as pad`));
    expect(statements.length).toBeLessThanOrEqual(n + 1); // at most the one in flight besides
    // Every statement before the one in flight is there with its result and its boundary.
    const results = left.events.filter((e) => e.type === 'result');
    expect(results.map((e) => [e.data.tag, e.data.rows, e.data.ready !== undefined])).toEqual(
      done.map((i) => ['SELECT 1', [[String(i), 'xxxxxxxxxx']], true]),
    );

    const config = await loadConfig(configPath);
    const next = await startGateway(config, { env, logger: createLogger({ level: 'silent' }) });
    try {
      const [session] = next.recording.repo.search({});
      const lastAt = left.events.at(-1)!.at;
      expect(session!.recording).toMatchObject({
        state: 'failed',
        endReason: 'gateway_crashed',
        endedAt: lastAt,
        events: left.events.length,
        digest: left.events.at(-1)!.h,
      });
      // The session itself: ended by the crash when its last event happened (not at the restart, not
      // as a clean stop), with the statements its recording holds and the bytes of its last snapshot.
      const [row] = await next.store.listSessions();
      expect(row).toMatchObject({ endReason: 'gateway_crashed', endedAt: lastAt, statements: statements.length });
      expect(row!.bytesFromClient).toBeGreaterThan(0);
      expect(row!.bytesToClient).toBeGreaterThan(0);
      // The dead instance (same host, its pid gone) is closed at once, as a crash, and audited.
      const lost = (await collect(next.audit.entries())).filter((e) => e.type === 'instance.lost');
      expect(lost).toMatchObject([{ data: { reason: 'gateway_crashed', sessions: [session!.id] } }]);
      const ended = (await next.audit.about(session!.id)).find((e) => e.type === 'session.ended')!;
      expect(ended.data).toMatchObject({
        reason: 'gateway_crashed',
        recovered: true,
        statements: statements.length,
        recording: { digest: left.events.at(-1)!.h, events: left.events.length },
      });

      const replay = await cli(['replay', session!.id, '--config', configPath]);
      expect(replay.code).toBe(0);
      expect(replay.out).toContain(
        "app=> select 3 as n, repeat('x', 10) as pad\n n |    pad     \n---+------------\n 3 | xxxxxxxxxx\n(1 row)\n",
      );
      const verify = await cli(['audit', 'verify', '--recordings', '--config', configPath]);
      expect(verify.err).toBe('');
      expect(verify.code).toBe(0);
      // The admin-issued grant, the session start, the killed instance found lost, its session's end as recovered.
      expect(verify.out).toMatch(/^audit log verified: 4 entries .*\nrecordings verified: 1, each chain intact/s);
    } finally {
      await next.close();
    }
  });
});

describe('retention', () => {
  const DAY = 86_400_000;

  it('deletes expired recordings on the clock and audits each deletion; a legal hold protects', async () => {
    const clock = new ManualClock(Date.now());
    const gw = await startTestGateway(server, {
      clock,
      extraYaml: `recording:
  retention: 30d
  retentionCheck: 1h
  connections:
    app-md5: { retention: 1d }
`,
    });
    try {
      const run = async (connection: string, app: string) => {
        const r = await psql(gw.dsn({ connection, extra: `application_name=${app}` }), await gw.token({ connection }), [], {
          input: 'select 1;\n',
        });
        expect(r.code).toBe(0);
        return settledSession(gw, { applicationName: app });
      };
      const shortLived = await run('app-md5', 'a');
      const held = await run('app-md5', 'b');
      const longLived = await run('app', 'c');
      const path = (s: { recording: { location: string | null } }) => join(gw.gateway.recording.config.dir, s.recording.location!);
      expect([shortLived, held, longLived].every((s) => existsSync(path(s)))).toBe(true);

      const hold = await cli(['sessions', 'hold', held.id, '--reason', 'case 2026-17', '--data-dir', gw.dataDir]);
      expect(hold.err).toBe('');
      expect(hold.out).toMatch(/^legal hold on the recording of session \S+ \(alice on app-md5\): retention will not delete it\n$/);

      clock.advance(DAY + 2 * 3_600_000);
      await until(() => gw.gateway.recording.repo.get(shortLived.id)?.deletedAt !== null || undefined, 5_000, 'the retention job');
      await until(() => !existsSync(path(shortLived)) || undefined, 5_000, 'the file to go');
      expect(existsSync(path(held))).toBe(true);
      expect(existsSync(path(longLived))).toBe(true);
      const deleted = (await collect(gw.gateway.audit.entries())).filter((e) => e.type === 'recording.deleted');
      expect(deleted.map((e) => [e.subject, e.data.connection, e.data.retentionMs])).toEqual([[shortLived.id, 'app-md5', DAY]]);

      const replay = await cli(['replay', shortLived.id, '--data-dir', gw.dataDir]);
      expect(replay.code).toBe(1);
      expect(replay.err).toMatch(/was deleted by retention at/);
      const listed = await cli(['sessions', '--json', '--data-dir', gw.dataDir]);
      const states = Object.fromEntries(
        (JSON.parse(listed.out) as Array<{ id: string; recording: { state: string } }>).map((s) => [s.id, s.recording.state]),
      );
      expect(states).toEqual({ [shortLived.id]: 'deleted', [held.id]: 'complete', [longLived.id]: 'complete' });

      // Released, the held recording goes at the next run; the 30-day one stays until its time.
      expect((await cli(['sessions', 'unhold', held.id, '--reason', 'case closed', '--data-dir', gw.dataDir])).code).toBe(0);
      clock.advance(3_600_000);
      await until(() => !existsSync(path(held)) || undefined, 5_000, 'the released recording to go');
      expect(existsSync(path(longLived))).toBe(true);
      clock.advance(30 * DAY);
      await until(() => !existsSync(path(longLived)) || undefined, 5_000, 'the 30-day recording to go');
      const types = (await collect(gw.gateway.audit.entries()))
        .map((e) => e.type)
        .filter((t) => t.startsWith('legal_hold') || t === 'recording.deleted');
      expect(types).toEqual(['legal_hold.set', 'recording.deleted', 'legal_hold.released', 'recording.deleted', 'recording.deleted']);
      expect((await cli(['audit', 'verify', '--data-dir', gw.dataDir])).code).toBe(0);
    } finally {
      await gw.close();
    }
  });
});
