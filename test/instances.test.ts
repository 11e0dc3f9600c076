/**
 * Several gateways on one store (one data directory, one SQLite file in WAL mode), with a real
 * PostgreSQL and the pg driver:
 *
 *  - instance B starting does not close instance A's live session, which goes on working;
 *  - A killed with SIGKILL (a child process, no cleanup at all): B closes A's session as
 *    `instance_lost` within the lost timeout, audits `instance.lost` once with that session, and
 *    recovers its recording; B's own session is untouched;
 *  - another instance starting afterwards leaves B's live session alone;
 *  - a statement A holds for approval stays pending while A lives (B starting does not withdraw
 *    it) and is withdrawn by B once A is found lost.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminToken } from './support/admin-token.js';
import { loadConfig } from '../src/config/load.js';
import { HEARTBEAT_EVERY_MS, LOST_AFTER_MS } from '../src/instances/registry.js';
import { startGateway, type Gateway } from '../src/main.js';
import { createLogger } from '../src/obs/log.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { waitUntil } from './support/wait.js';
import { collect } from './support/collect.js';

let server: PgServer;
beforeAll(async () => {
  server = await startPostgres();
  await server.query('create table notes (n int); grant all on notes to public');
});
afterAll(() => server?.cleanup());

const port = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));

async function client(address: string, password: string, application_name = 'instances-test'): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: port(address), user: 'alice', database: 'app', password, application_name });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function tokenFor(gateway: Gateway): Promise<string> {
  return (await adminToken(gateway, { connection: 'app' })).token;
}

describe('gateway instances sharing one store', () => {
  let dir: string;
  let child: ChildProcess | undefined;
  const gateways: Gateway[] = [];
  const clients: pg.Client[] = [];
  afterAll(async () => {
    child?.kill('SIGKILL');
    for (const c of clients) await c.end().catch(() => undefined);
    for (const g of gateways) await g.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('leave each other live sessions alone; a killed one is closed as instance_lost by a survivor, once', async () => {
    dir = mkdtempSync(join(tmpdir(), 'jitgate-instances-'));
    const configPath = join(dir, 'jitgate.yaml');
    writeFileSync(
      configPath,
      `development: true
dataDir: ${dir}/data
listeners:
  http: { host: 127.0.0.1, port: 0 }
  postgres: { host: 127.0.0.1, port: 0 }
log: { level: silent }
shutdown: { drainTimeout: 1s }
connections:
  - { name: app, host: 127.0.0.1, port: ${server.port}, database: app, user: ${server.users.scram.user}, password: env:PG_SCRAM, tls: { mode: disable } }
reviews:
  - name: notes
    connections: [app]
    match: { tables: [notes] }
    approval: { approvers: [approvers], timeout: 10m }
`,
    );
    const env = { ...process.env, PG_SCRAM: server.users.scram.password };
    // Instance A: its own process, so that it can die without any cleanup.
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
    const a = JSON.parse(first) as { postgres: string; token: string };
    const onA = await client(a.postgres, a.token);
    clients.push(onA);
    expect((await onA.query('select 1 as n')).rows).toEqual([{ n: 1 }]);
    // A holds a statement for approval (on a connection of its own: the first one goes on).
    const heldOnA = await client(a.postgres, a.token, 'held-on-a');
    clients.push(heldOnA);
    const held = heldOnA.query('insert into notes values (1)').then(
      () => 'ran',
      (err: Error) => err.message,
    );
    const reviews = new Database(join(dir, 'data', 'jitgate.db'), { readonly: true });
    const reviewStates = () => reviews.prepare('select state, outcome from statement_reviews').all();
    await waitUntil('A to hold the insert for approval', () => reviewStates().length === 1 || undefined);

    // Instance B starts on the same store: A's session stays open and keeps working.
    const config = await loadConfig(configPath);
    const b = await startGateway(config, { env, logger: createLogger({ level: 'silent' }) });
    gateways.push(b);
    const aSession = (await b.store.listSessions({ active: true })).find((s) => s.applicationName === 'instances-test');
    const heldSession = (await b.store.listSessions({ active: true })).find((s) => s.applicationName === 'held-on-a')!;
    expect(aSession).toMatchObject({ endedAt: null, endReason: null });
    expect(heldSession.instanceId).toBe(aSession!.instanceId);
    expect(aSession!.instanceId).toMatch(/^[0-9a-f-]{36}$/);
    expect((await onA.query('select 2 as n')).rows).toEqual([{ n: 2 }]);
    expect(reviewStates()).toEqual([{ state: 'pending', outcome: '[]' }]);

    // /readyz names the instance, and says it reads what other instances change (and still checks the store).
    const ready = (await (await fetch(`${b.addresses.http}/readyz`)).json()) as {
      status: string;
      details: { instance: string; catchUp: { failing: string[] } };
    };
    expect(ready.status).toBe('ready');
    expect(ready.details.catchUp).toEqual({ failing: [] });
    expect(ready.details.instance).toMatch(/^[0-9a-f-]{36}$/);
    expect(ready.details.instance).not.toBe(aSession!.instanceId);

    const onB = await client(b.addresses.postgres!, await tokenFor(b));
    clients.push(onB);
    expect((await onB.query('select 3 as n')).rows).toEqual([{ n: 3 }]);
    const bSession = (await b.store.listSessions({ active: true })).find((s) => s.instanceId !== aSession!.instanceId)!;
    expect(bSession.instanceId).toBe(ready.details.instance);
    // The CLI and the console's API show each session's instance.
    const listed = b.recording.repo.search({}).map((s) => [s.id, s.instanceId]);
    expect(listed).toEqual([
      [bSession.id, ready.details.instance],
      [heldSession.id, aSession!.instanceId],
      [aSession!.id, aSession!.instanceId],
    ]);

    // A dies: no shutdown, no session end, no heartbeat any more.
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    child = undefined;
    const lost = await waitUntil(
      "B to close A's session as instance_lost",
      async () => (await b.store.listSessions()).find((s) => s.id === aSession!.id && s.endReason === 'instance_lost'),
      { timeoutMs: LOST_AFTER_MS + 2 * HEARTBEAT_EVERY_MS, seen: async () => await b.store.listSessions() },
    );
    // Its end comes from its recording (the last event written), not from the time B noticed.
    expect(lost.statements).toBe(2);
    const audited = async () => (await collect(b.audit.entries())).filter((e) => e.type === 'instance.lost');
    expect(await audited()).toHaveLength(1);
    expect((await audited())[0]).toMatchObject({
      actor: 'gateway',
      subject: aSession!.instanceId,
      data: { instance: aSession!.instanceId, reason: 'instance_lost', by: ready.details.instance },
    });
    expect(((await audited())[0]!.data as { sessions: string[] }).sessions.sort()).toEqual([aSession!.id, heldSession.id].sort());
    expect(b.recording.repo.get(aSession!.id)).toMatchObject({ state: 'failed', endReason: 'instance_lost' });
    const ended = (await b.audit.about(aSession!.id)).find((e) => e.type === 'session.ended');
    expect(ended?.data).toMatchObject({ reason: 'instance_lost', recovered: true });
    // What A held for approval is withdrawn: nobody waits for it any more.
    expect(reviewStates()).toEqual([{ state: 'withdrawn', outcome: JSON.stringify(['session_ended']) }]);
    expect(await held).not.toBe('ran');
    reviews.close();

    // B's own session is untouched, and another instance starting now leaves it alone too.
    const c = await startGateway(config, { env, logger: createLogger({ level: 'silent' }) });
    gateways.push(c);
    expect((await onB.query('select 4 as n')).rows).toEqual([{ n: 4 }]);
    expect((await c.store.listSessions({ active: true })).map((s) => s.id)).toEqual([bSession.id]);
    expect(await audited()).toHaveLength(1);
  });
});
