/**
 * `jitgate serve --workers 2` as an operator runs it (the real entry module, a real PostgreSQL, the
 * pg driver): connections are spread over both worker processes, each a gateway instance on the
 * one store; a psql-style cancel works whichever worker it reaches; a worker killed with -9 is
 * replaced and its session closed; SIGTERM drains every worker and exits 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminToken } from './support/admin-token.js';
import { AuditLog } from '../src/audit/log.js';
import { openSqliteStore, type SqliteStore } from '../src/store/sqlite.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { sendCancelRequest } from './support/raw-client.js';
import { writeProcessConfig } from './support/process-config.js';
import { waitUntil } from './support/wait.js';

const ROOT = resolve(import.meta.dirname, '..');
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const MAIN = join(ROOT, 'src/cli/main.ts');

let server: PgServer;
let dir: string;
let proc: ChildProcess;
let stderr = '';
let port: number;
let store: SqliteStore;
const clients: pg.Client[] = [];

beforeAll(async () => {
  server = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'jitgate-workers-'));
  const configPath = writeProcessConfig(dir, server, { drainTimeout: '2s' });
  proc = spawn(process.execPath, ['--import', TSX, MAIN, 'serve', '--config', configPath, '--workers', '2'], {
    cwd: dir,
    env: { ...process.env, JITGATE_CONFIG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  proc.stdout!.resume();
  const serving = await waitUntil('both workers to listen', () => /serving with 2 workers: .*postgres 127\.0\.0\.1:(\d+)/.exec(stderr), {
    timeoutMs: 60_000,
  });
  port = Number(serving[1]);
  store = openSqliteStore(join(dir, 'data', 'jitgate.db'));
}, 90_000);

afterAll(async () => {
  for (const c of clients) await c.end().catch(() => undefined);
  if (proc && proc.exitCode === null) proc.kill('SIGKILL');
  void store?.close();
  await server?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function token(): Promise<string> {
  return (await adminToken({ store, audit: await AuditLog.open(store.sql) }, { connection: 'app' })).token;
}

async function connect(name: string): Promise<pg.Client & { ended?: Error }> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'alice', database: 'app', password: await token(), application_name: name });
  const client = c as pg.Client & { ended?: Error };
  c.on('error', (err) => (client.ended ??= err));
  await c.connect();
  clients.push(c);
  return client;
}

const sessionOf = async (name: string) => (await store.listSessions()).find((s) => s.applicationName === name);

describe('jitgate serve --workers', () => {
  it('spreads sessions over both workers, each an instance on the one store', async () => {
    for (let i = 0; i < 6; i++) {
      const c = await connect(`spread-${i}`);
      expect((await c.query('select 1 as n')).rows).toEqual([{ n: 1 }]);
    }
    const instances = new Set((await store.listSessions({ active: true })).map((s) => s.instanceId));
    expect(instances.size).toBe(2);
    expect(await store.instances.list()).toHaveLength(2);
  });

  it('a cancel reaching either worker cancels the query', async () => {
    for (let i = 0; i < 2; i++) {
      const c = await connect(`cancel-${i}`);
      const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
      const running = c.query('select pg_sleep(60)').then(
        () => undefined,
        (err: Error & { code?: string }) => err.code,
      );
      await waitUntil('pg_sleep to run', async () => {
        const r = await server.query(
          `select count(*)::int n from pg_stat_activity where query = 'select pg_sleep(60)' and state = 'active'`,
        );
        return r.rows[0]!.n === 1 || undefined;
      });
      await sendCancelRequest(port, processID, secretKey);
      expect(await running).toBe('57014');
    }
  }, 30_000);

  it('replaces a worker killed with -9 and closes the sessions it left', async () => {
    await connect('doomed');
    const doomed = (await sessionOf('doomed'))!;
    const victim = (await store.instances.list()).find((i) => i.id === doomed.instanceId)!;
    process.kill(victim.pid, 'SIGKILL');
    await waitUntil('the primary to start another worker', () => /ended \(SIGKILL\); starting another/.test(stderr) || undefined, {
      timeoutMs: 20_000,
    });
    await waitUntil(
      'the lost worker’s session to be closed',
      // By the survivor (instance_lost) or by the replacement as it starts (gateway_crashed), whichever looks first.
      async () => (['instance_lost', 'gateway_crashed'].includes((await sessionOf('doomed'))?.endReason ?? '') ? true : undefined),
      {
        timeoutMs: 40_000,
      },
    );
    const after = await connect('after-restart');
    expect((await after.query('select 2 as n')).rows).toEqual([{ n: 2 }]);
    await waitUntil(
      'two live instances again',
      async () => ((await store.instances.list()).filter((i) => i.lostAt === null).length === 2 ? true : undefined),
      {
        timeoutMs: 20_000,
      },
    );
  }, 90_000);

  it('SIGTERM drains every worker and exits 0, leaving no instance behind', async () => {
    const live = await connect('at-shutdown');
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(live.ended?.message ?? '').toMatch(/shutting down|terminat/);
    expect(await store.instances.list()).toEqual([]);
    expect(await store.listSessions({ active: true })).toEqual([]);
  }, 30_000);
});
