/**
 * A rolling restart of three gateway instances on one store while `pgbench -C` runs through a
 * load balancer: each instance in turn is taken out of the balancer's rotation, sent SIGTERM half a
 * second later (it drains what it serves), started again and put back. pgbench, opening a new connection for every
 * transaction, loses none of them; every instance's sessions end cleanly and the audit chain
 * verifies. The balancer is the simplest TCP one, as HAProxy with a health check would behave.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { verifyEntriesAsync } from '../src/audit/chain.js';
import { AuditLog } from '../src/audit/log.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { pgBin, startPostgres, type PgServer } from './support/pg-server.js';
import { writeProcessConfig } from './support/process-config.js';
import { waitUntil } from './support/wait.js';

const ROOT = resolve(import.meta.dirname, '..');
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
const CHILD = join(ROOT, 'test/support/gateway-child.ts');

let server: PgServer;
let dir: string;
let configPath: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  server = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'jitgate-rolling-'));
  configPath = writeProcessConfig(dir, server, { drainTimeout: '5s' });
  await run(pgBin('pgbench'), ['-i', '-q', '-s', '1', '-h', '127.0.0.1', '-p', String(server.port), '-U', server.superuser, 'app'], {
    PGPASSWORD: server.password,
  });
  await server.query('grant all on all tables in schema public to public');
}, 60_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await server?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function run(file: string, args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(file, args, { env: { ...process.env, ...env }, timeout: 120_000 }, (err, stdout, stderr) =>
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** One gateway instance as a child process; resolves once it listens. */
async function startInstance(): Promise<{ child: ChildProcess; port: number; token: string }> {
  const child = spawn(process.execPath, ['--import', TSX, CHILD, configPath, 'alice', 'app'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const line = await waitUntil(
    'the instance to listen',
    () => out.split('\n').find((l) => l.startsWith('{')) || (child.exitCode !== null ? 'exit' : undefined),
    {
      timeoutMs: 60_000,
    },
  );
  if (line === 'exit') throw new Error(`the instance did not start: ${err}`);
  const ready = JSON.parse(line) as { postgres: string; token: string };
  return { child, port: Number(ready.postgres.slice(ready.postgres.lastIndexOf(':') + 1)), token: ready.token };
}

/** A TCP balancer over the ports in `rotation`, in turn; a port taken out gets no new connections. */
async function balancer(rotation: number[]): Promise<{ port: number; close(): Promise<void> }> {
  let next = 0;
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((client) => {
    sockets.add(client);
    const port = rotation[next++ % rotation.length]!;
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(upstream);
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

it('a rolling restart under pgbench -C loses no transaction', async () => {
  const instances = [await startInstance(), await startInstance(), await startInstance()];
  const rotation = instances.map((i) => i.port);
  const lb = await balancer(rotation);
  try {
    const bench = run(
      pgBin('pgbench'),
      ['-C', '-n', '-c', '4', '-T', '40', '-h', '127.0.0.1', '-p', String(lb.port), '-U', 'alice', 'app'],
      { PGPASSWORD: instances[0]!.token, PGSSLMODE: 'disable' },
    );
    for (let i = 0; i < instances.length; i++) {
      await new Promise((r) => setTimeout(r, 2_000));
      const old = instances[i]!;
      // Out of rotation first (the balancer's health check failing), then, once the balancer has
      // stopped sending it connections, drained: a transaction it is in the middle of runs to its end.
      rotation.splice(rotation.indexOf(old.port), 1);
      await new Promise((r) => setTimeout(r, 500));
      const exited = new Promise<number | null>((r) => old.child.once('exit', (code) => r(code)));
      old.child.kill('SIGTERM');
      expect(await exited).toBe(0);
      instances[i] = await startInstance();
      rotation.push(instances[i]!.port);
    }
    // pgbench runs long enough (40 s) for the last restarted instance to serve as well, even on a loaded machine.
    const result = await bench;
    expect(result.stderr).not.toMatch(/error|abort/i);
    expect(result.code).toBe(0);
    const processed = Number(/number of transactions actually processed: (\d+)/.exec(result.stdout)?.[1]);
    expect(processed).toBeGreaterThan(20);
    expect(result.stdout).toMatch(/number of failed transactions: 0 /);
  } finally {
    await lb.close();
    // pgbench has exited and closed its connections; the instances may not have read those closes
    // yet. Stopping them now would drain such sessions as gateway_shutdown, a race of this test's
    // teardown, not a session the rolling restart lost.
    await waitUntil('the instances to see every pgbench connection closed', async () => {
      const store = openSqliteStore(join(dir, 'data', 'jitgate.db'));
      try {
        return (await store.listSessions({ active: true })).length === 0;
      } finally {
        void store.close();
      }
    });
    for (const i of instances) {
      const exited = new Promise((r) => i.child.once('exit', r));
      i.child.kill('SIGTERM');
      await exited;
    }
  }
  // Every session ended cleanly (none lost or crashed), and the one audit chain verifies.
  const store = openSqliteStore(join(dir, 'data', 'jitgate.db'));
  try {
    const sessions = await store.listSessions({ limit: 100_000 });
    expect(sessions.length).toBeGreaterThan(20);
    expect(new Set(sessions.map((s) => s.endReason))).toEqual(new Set(['client_quit']));
    expect(new Set(sessions.map((s) => s.instanceId)).size).toBe(6);
    expect(await verifyEntriesAsync((await AuditLog.open(store.sql)).entries())).toMatchObject({ ok: true });
  } finally {
    void store.close();
  }
}, 120_000);
