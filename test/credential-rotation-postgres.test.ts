/**
 * The gateway rotates its own PostgreSQL password (issue 17, "a backend secret no person knows"),
 * against a private PostgreSQL with scram-sha-256 auth that logs every statement: `jitgate
 * credentials rotate` while pgbench reconnects through the gateway for every transaction, with none
 * failing; the old password refused by the server afterwards; the new one in the secret store and
 * nowhere in the server log; audit and metrics; a refused rotation that leaves the old password
 * working; env: passwords refused with the reason; `credentials status`; and the schedule on a
 * manual clock across a restart.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { ManualClock } from '../src/core/clock.js';
import { SecretStore } from '../src/credentials/secret-store.js';
import { openSqliteStore } from '../src/store/sqlite.js';
import { MASTER_KEY, startRotationGateway, type RotationGateway } from './support/rotation.js';
import { startPostgres, type PgServer } from './support/pg-server.js';

const DAY = 86_400_000;
let server: PgServer;
const SCHED = { user: 'sched_user', password: 'sched-secret-7' };
const STUCK = { user: 'stuck_user', password: 'stuck-secret-8' };
const SHARED = { user: 'shared_user', password: 'shared-secret-5' };
/** Creates a role per session (ephemeral credentials), so it has CREATEROLE. */
const EPH = { user: 'eph_admin', password: 'eph-secret-9' };

beforeAll(async () => {
  server = await startPostgres({ conf: { log_statement: 'all' } });
  await server.query(`CREATE ROLE ${SCHED.user} LOGIN PASSWORD '${SCHED.password}'`);
  // A role whose transactions are read-only cannot run ALTER ROLE: its rotation is refused.
  await server.query(`CREATE ROLE ${STUCK.user} LOGIN PASSWORD '${STUCK.password}'`);
  await server.query(`ALTER ROLE ${STUCK.user} SET default_transaction_read_only = on`);
  await server.query(`CREATE ROLE ${EPH.user} LOGIN CREATEROLE PASSWORD '${EPH.password}'`);
  await server.query(`CREATE ROLE ${SHARED.user} LOGIN PASSWORD '${SHARED.password}'`);
  await server.query('CREATE ROLE eph_reader NOLOGIN');
  await server.query(`GRANT CONNECT ON DATABASE app TO ${SCHED.user}, ${SHARED.user}, ${STUCK.user}, ${EPH.user}, eph_reader`);
  const { user, password } = server.users.scram;
  const init = await run('pgbench', ['-i', '-q', '-s', '1', '-h', server.host, '-p', String(server.port), '-U', user, 'app'], {
    PGPASSWORD: password,
  });
  expect(init.code, init.err).toBe(0);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await server?.cleanup();
});

/** Logs in directly to the backend with a password: the SQLSTATE of a refusal, or 'ok'. */
async function directLogin(user: string, password: string): Promise<string> {
  const client = new pg.Client({ host: server.host, port: server.port, database: 'app', user, password });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function run(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 120_000,
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { PATH: process.env.PATH ?? '', ...env } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

const sessionsOpened = async (gw: RotationGateway) =>
  (await gw.gateway.metrics.sessionsTotal.get()).values.reduce((n, v) => n + v.value, 0);

describe('jitgate credentials rotate on PostgreSQL', () => {
  let gw: RotationGateway;
  const scram = () => server.users.scram;

  beforeAll(async () => {
    gw = await startRotationGateway({
      listeners: ['postgres'],
      secrets: { 'app-pg': scram().password, 'stuck-pg': STUCK.password, 'eph-pg': EPH.password },
      env: { SUPER_PG: server.password },
      connections: [
        `{ name: app, host: 127.0.0.1, port: ${server.port}, database: app, user: ${scram().user}, password: secret:app-pg, tls: { mode: disable } }`,
        `{ name: stuck, host: 127.0.0.1, port: ${server.port}, database: app, user: ${STUCK.user}, password: secret:stuck-pg, tls: { mode: disable } }`,
        `{ name: super, host: 127.0.0.1, port: ${server.port}, database: app, user: ${server.superuser}, password: env:SUPER_PG, tls: { mode: disable } }`,
        `{ name: eph, host: 127.0.0.1, port: ${server.port}, database: app, user: ${EPH.user}, password: secret:eph-pg, tls: { mode: disable }, credentials: { mode: ephemeral, roles: [eph_reader] } }`,
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
  });

  it('rotates while pgbench reconnects for every transaction through the gateway, with none failing', async () => {
    const old = scram().password;
    // A session opened before the rotation keeps its backend connection across it.
    const { host, port } = gw.listener('postgres');
    const early = new pg.Client({ host, port, database: 'app', user: 'alice', password: await gw.token('app') });
    await early.connect();
    await early.query('SELECT 1');

    const before = await sessionsOpened(gw);
    const bench = run('pgbench', ['-n', '-C', '-c', '4', '-t', '60', '-h', host, '-p', String(port), '-U', 'alice', 'app'], {
      PGPASSWORD: await gw.token('app'),
      PGSSLMODE: 'disable',
    });
    // Rotate once pgbench is well under way (each of its transactions is a new gateway session).
    await vi.waitFor(async () => expect(await sessionsOpened(gw)).toBeGreaterThan(before + 30), { timeout: 60_000, interval: 20 });
    const rotated = await gw.cli('dave', ['credentials', 'rotate', 'app']);
    expect(rotated.err).toBe('');
    expect(rotated.code).toBe(0);
    expect(rotated.out).toMatch(/^rotated the gateway's backend password on app at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n$/);
    const afterRotation = await sessionsOpened(gw);
    const result = await bench;
    expect(result.err).not.toMatch(/error|FATAL/i);
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/number of transactions actually processed: 240\/240/);
    expect(result.out).toMatch(/number of failed transactions: 0 \(0\.000%\)/);
    // Sessions kept opening after the switch, too.
    expect(await sessionsOpened(gw)).toBeGreaterThan(afterRotation);

    expect((await early.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await early.end();

    // The backend refuses the old password; the one now in the secret store is what logs in.
    expect(await directLogin(scram().user, old)).toBe('28P01');
    const stored = (await new SecretStore(gw.gateway.store, { masterKey: Buffer.from(MASTER_KEY, 'hex') }).get('app-pg'))!;
    expect(stored).not.toBe(old);
    expect(stored).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await directLogin(scram().user, stored)).toBe('ok');
    // The server was told a SCRAM verifier, never the password: its statement log holds no cleartext.
    const log = server.logText();
    expect(log).toContain('ALTER ROLE CURRENT_USER PASSWORD');
    expect(log).toContain('SCRAM-SHA-256$4096:');
    expect(log).not.toContain(stored);

    const audited = await gw.audited('credentials.rotated', 'app');
    expect(audited).toEqual([
      {
        actor: 'dave',
        data: { connection: 'app', protocol: 'postgres', backendUser: scram().user, secret: 'secret:app-pg', scheduled: false },
      },
    ]);
    expect(JSON.stringify(audited)).not.toContain(stored);
    expect(await gw.gateway.metrics.registry.getSingleMetricAsString('jitgate_credential_rotations_total')).toContain(
      'jitgate_credential_rotations_total{connection="app",outcome="rotated"} 1',
    );

    // A later session through the gateway logs in with the new password.
    const late = new pg.Client({ host, port, database: 'app', user: 'alice', password: await gw.token('app') });
    await late.connect();
    expect((await late.query<{ u: string }>('SELECT current_user AS u')).rows).toEqual([{ u: scram().user }]);
    await late.end();
  }, 120_000);

  it('a rotation the backend refuses leaves the old password working, audited and counted', async () => {
    const r = await gw.cli('dave', ['credentials', 'rotate', 'stuck']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('cannot execute ALTER ROLE in a read-only transaction');
    expect(await directLogin(STUCK.user, STUCK.password)).toBe('ok');
    expect(await new SecretStore(gw.gateway.store, { masterKey: Buffer.from(MASTER_KEY, 'hex') }).get('stuck-pg')).toBe(STUCK.password);
    const { host, port } = gw.listener('postgres');
    const c = new pg.Client({ host, port, database: 'stuck', user: 'alice', password: await gw.token('stuck') });
    await c.connect();
    expect((await c.query<{ u: string }>('SELECT current_user AS u')).rows).toEqual([{ u: STUCK.user }]);
    await c.end();
    const failed = await gw.audited('credentials.rotate.failed', 'stuck');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.actor).toBe('dave');
    expect(failed[0]!.data).toMatchObject({ connection: 'stuck', stillValid: 'old', scheduled: false });
    expect(String(failed[0]!.data.reason)).toContain('read-only transaction');
    expect(await gw.gateway.metrics.registry.getSingleMetricAsString('jitgate_credential_rotations_total')).toContain(
      'jitgate_credential_rotations_total{connection="stuck",outcome="failed"} 1',
    );
  });

  it('refuses what it cannot rotate, and people who are not admins', async () => {
    const env = await gw.api('dave', 'POST', '/api/admin/credentials/super/rotate');
    expect(env.status).toBe(409);
    expect(env.body.message).toBe(
      'connection "super": the password comes from an environment variable (env:), which the gateway cannot write; put it in the secret store (jitgate secrets set NAME) and reference it as secret:NAME',
    );
    expect((await gw.api('dave', 'POST', '/api/admin/credentials/nope/rotate')).status).toBe(404);
    expect((await gw.api('alice', 'POST', '/api/admin/credentials/app/rotate')).status).toBe(403);
    expect((await gw.api('alice', 'GET', '/api/admin/credentials')).status).toBe(403);
  });

  it('credentials status says how the gateway logs in, when it rotated and what privilege is too much', async () => {
    const r = await gw.cli('dave', ['credentials', 'status']);
    expect(r.code, r.err).toBe(0);
    const blocks = r.out.split('\n\n');
    expect(blocks[0]).toMatch(
      new RegExp(
        `^app \\(postgres, backend user ${scram().user}\\)\\n` +
          `  logs in       as ${scram().user} with the stored password; every session shares this backend user\\n` +
          `  password      secret:app-pg, in the gateway's secret store\\n` +
          `  rotation      last rotated \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d; no schedule \\(jitgate credentials rotate app, or credentials.rotate.every\\)\\n` +
          `  privileges    nothing beyond what its sessions need was found$`,
      ),
    );
    expect(blocks[1]).toContain('  last failure  ');
    expect(blocks[1]).toContain('rotation      never rotated (a person may know this password)');
    expect(blocks[2]).toContain(`super (postgres, backend user ${server.superuser})`);
    expect(blocks[2]).toContain('  password      env:SUPER_PG, an environment variable of the gateway');
    expect(blocks[2]).toContain('  rotation      not possible: the password comes from an environment variable');
    expect(blocks[2]).toContain(
      `  warning       ${server.superuser} is a superuser: it can read server files and every role's password verifier`,
    );
    expect(blocks[2]).toContain(`  warning       ${server.superuser} has CREATEROLE, which sessions sharing it do not need`);
    // CREATEROLE is what per-session roles need: no warning for it there.
    expect(blocks[3]).toContain(
      `  logs in       as ${EPH.user}, which creates a role per session (granted eph_reader) and drops it when the session ends`,
    );
    expect(blocks[3]).toContain('  privileges    nothing beyond what its sessions need was found');
  });

  it('rotates the password of the user that creates per-session roles, which it then creates with the new one', async () => {
    const r = await gw.cli('dave', ['credentials', 'rotate', 'eph']);
    expect(r.code, r.err).toBe(0);
    expect(await directLogin(EPH.user, EPH.password)).toBe('28P01');
    const { host, port } = gw.listener('postgres');
    const c = new pg.Client({ host, port, database: 'eph', user: 'alice', password: await gw.token('eph') });
    await c.connect();
    const [{ u }] = (await c.query<{ u: string }>('SELECT current_user AS u')).rows as [{ u: string }];
    expect(u).toMatch(/^jitgate_/);
    await c.end();
  });
});

describe('a rotation a crash interrupted', () => {
  it('is settled at start: the staged password wins when the backend has it, and is dropped when it does not', async () => {
    const took = { user: 'crash_took', old: 'crash-old-1', staged: 'crash-new-1' };
    const lost = { user: 'crash_lost', old: 'crash-old-2', staged: 'crash-new-2' };
    // As if the gateway died right after ALTER ROLE (took) or right before it (lost).
    await server.query(`CREATE ROLE ${took.user} LOGIN PASSWORD '${took.staged}'`);
    await server.query(`CREATE ROLE ${lost.user} LOGIN PASSWORD '${lost.old}'`);
    await server.query(`GRANT CONNECT ON DATABASE app TO ${took.user}, ${lost.user}`);
    const dataDir = mkdtempSync(join(tmpdir(), 'jitgate-rotation-crash-'));
    const conns = [took, lost].map(
      (r) =>
        `{ name: ${r.user}, host: 127.0.0.1, port: ${server.port}, database: app, user: ${r.user}, password: secret:${r.user}, tls: { mode: disable } }`,
    );
    const config = parseConfig(`dataDir: ${dataDir}\nconnections:\n${conns.map((c) => `  - ${c}\n`).join('')}`, 'x.yaml', dataDir);
    const store = openSqliteStore(config.store.path);
    const secrets = new SecretStore(store, { masterKey: Buffer.from(MASTER_KEY, 'hex') });
    for (const r of [took, lost]) {
      await secrets.set(r.user, r.old);
      await secrets.stage(r.user, r.staged);
    }
    void store.close();
    const gw = await startRotationGateway({ listeners: ['postgres'], connections: conns, dataDir });
    try {
      await vi.waitFor(async () => expect(await gw.audited('credentials.rotated', took.user)).toHaveLength(1), {
        timeout: 20_000,
        interval: 20,
      });
      expect((await gw.audited('credentials.rotated', took.user))[0]).toMatchObject({ actor: 'gateway', data: { recovered: true } });
      const stored = new SecretStore(gw.gateway.store, { masterKey: Buffer.from(MASTER_KEY, 'hex') });
      await vi.waitFor(async () => expect(await stored.staged(lost.user)).toBeUndefined(), { timeout: 20_000, interval: 20 });
      expect(await stored.get(took.user)).toBe(took.staged);
      expect(await stored.staged(took.user)).toBeUndefined();
      expect(await stored.get(lost.user)).toBe(lost.old);
      const { host, port } = gw.listener('postgres');
      for (const r of [took, lost]) {
        const c = new pg.Client({ host, port, database: r.user, user: 'alice', password: await gw.token(r.user) });
        await c.connect();
        expect((await c.query<{ u: string }>('SELECT current_user AS u')).rows).toEqual([{ u: r.user }]);
        await c.end();
      }
    } finally {
      await gw.close();
    }
  }, 60_000);
});

describe('two gateway instances on one state store', () => {
  /** `current_user` of a new session through `gw`: the backend login that instance makes now. */
  async function loginThrough(gw: RotationGateway): Promise<string> {
    const { host, port } = gw.listener('postgres');
    const c = new pg.Client({ host, port, database: 'shared', user: 'alice', password: await gw.token('shared') });
    await c.connect();
    try {
      return (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
    } finally {
      await c.end();
    }
  }

  it('one rotates on schedule, the other neither rotates again nor loses its backend logins', async () => {
    const clock = new ManualClock(Date.UTC(2026, 7, 1));
    const conn = `{ name: shared, host: 127.0.0.1, port: ${server.port}, database: app, user: ${SHARED.user}, password: secret:shared-pg, tls: { mode: disable }, credentials: { rotate: { every: 1d } } }`;
    const a = await startRotationGateway({
      listeners: ['postgres'],
      secrets: { 'shared-pg': SHARED.password },
      connections: [conn],
      clock,
    });
    const b = await startRotationGateway({ listeners: ['postgres'], connections: [conn], clock, dataDir: a.dataDir });
    const rotations = async () => (await a.audited('credentials.rotated', 'shared')).length;
    try {
      // Both read the password before either rotates.
      expect(await loginThrough(a)).toBe(SHARED.user);
      expect(await loginThrough(b)).toBe(SHARED.user);
      clock.advance(0);
      await vi.waitFor(async () => expect(await rotations()).toBe(1), { timeout: 20_000, interval: 20 });
      // The one that found the rotation busy looks again a minute later and finds it done.
      clock.advance(2 * 60_000);
      await new Promise((r) => setTimeout(r, 300));
      expect(await rotations()).toBe(1);
      expect(await directLogin(SHARED.user, SHARED.password)).toBe('28P01');

      // Whichever rotated, the other still held the old password: its next login picks up the new one.
      expect(await loginThrough(a)).toBe(SHARED.user);
      expect(await loginThrough(b)).toBe(SHARED.user);

      // A rotation asked of one instance, and the other's sessions keep opening.
      const rotated = await b.cli('dave', ['credentials', 'rotate', 'shared']);
      expect(rotated.err).toBe('');
      expect(await rotations()).toBe(2);
      expect(await loginThrough(a)).toBe(SHARED.user);
      expect(await loginThrough(b)).toBe(SHARED.user);
    } finally {
      await b.close(true);
      await a.close();
    }
  }, 60_000);
});

describe('credentials.rotate.every on PostgreSQL, on a manual clock', () => {
  it('rotates a never-rotated password at start, then every interval, and a restart neither rotates early nor forgets', async () => {
    const clock = new ManualClock(Date.UTC(2026, 5, 1));
    const conn = `{ name: sched, host: 127.0.0.1, port: ${server.port}, database: app, user: ${SCHED.user}, password: secret:sched-pg, tls: { mode: disable }, credentials: { rotate: { every: 1d } } }`;
    let gw = await startRotationGateway({ listeners: ['postgres'], secrets: { 'sched-pg': SCHED.password }, connections: [conn], clock });
    const rotations = async () => (await gw.audited('credentials.rotated', 'sched')).length;
    try {
      clock.advance(0);
      await vi.waitFor(async () => expect(await rotations()).toBe(1), { timeout: 20_000, interval: 20 });
      expect((await gw.audited('credentials.rotated', 'sched'))[0]).toEqual({
        actor: 'gateway',
        data: { connection: 'sched', protocol: 'postgres', backendUser: SCHED.user, secret: 'secret:sched-pg', scheduled: true },
      });
      expect(await directLogin(SCHED.user, SCHED.password)).toBe('28P01');
      const status = await gw.api<{ connections: Array<{ lastRotatedAt: string; nextRotationAt: string; rotateEveryMs: number }> }>(
        'dave',
        'GET',
        '/api/admin/credentials',
      );
      expect(status.body.connections[0]).toMatchObject({
        rotateEveryMs: DAY,
        lastRotatedAt: new Date(Date.UTC(2026, 5, 1)).toISOString(),
        nextRotationAt: new Date(Date.UTC(2026, 5, 2)).toISOString(),
      });

      clock.advance(DAY - 60_000);
      await new Promise((r) => setTimeout(r, 300));
      expect(await rotations()).toBe(1);
      clock.advance(60_000);
      await vi.waitFor(async () => expect(await rotations()).toBe(2), { timeout: 20_000, interval: 20 });

      // Restart half a day later on the same store: nothing is due yet.
      await gw.close(true);
      const restartedAt = clock.now() + DAY / 2;
      const later = new ManualClock(restartedAt);
      gw = await startRotationGateway({ listeners: ['postgres'], connections: [conn], clock: later, dataDir: gw.dataDir });
      later.advance(0);
      await new Promise((r) => setTimeout(r, 300));
      expect(await rotations()).toBe(2);
      const r = await gw.cli('dave', ['credentials', 'status']);
      expect(r.out).toMatch(/rotation {6}every 1d; last rotated .*; next \d{4}-/);
      later.advance(DAY / 2);
      await vi.waitFor(async () => expect(await rotations()).toBe(3), { timeout: 20_000, interval: 20 });

      // Sessions still log in with whatever the gateway now holds.
      const { host, port } = gw.listener('postgres');
      const c = new pg.Client({ host, port, database: 'sched', user: 'alice', password: await gw.token('sched') });
      await c.connect();
      expect((await c.query<{ u: string }>('SELECT current_user AS u')).rows).toEqual([{ u: SCHED.user }]);
      await c.end();
    } finally {
      await gw.close();
    }
  }, 60_000);

  it('a scheduled rotation the backend refuses is audited and tried again ten minutes later, the old password still in use', async () => {
    const clock = new ManualClock(Date.UTC(2026, 6, 1));
    const gw = await startRotationGateway({
      listeners: ['postgres'],
      secrets: { 'stuck-pg': STUCK.password },
      connections: [
        `{ name: stuck, host: 127.0.0.1, port: ${server.port}, database: app, user: ${STUCK.user}, password: secret:stuck-pg, tls: { mode: disable }, credentials: { rotate: { every: 1d } } }`,
      ],
      clock,
    });
    const failures = () => gw.audited('credentials.rotate.failed', 'stuck');
    try {
      clock.advance(0);
      await vi.waitFor(async () => expect(await failures()).toHaveLength(1), { timeout: 20_000, interval: 20 });
      expect((await failures())[0]).toMatchObject({ actor: 'gateway', data: { scheduled: true, stillValid: 'old' } });
      const status = await gw.cli('dave', ['credentials', 'status']);
      expect(status.out).toMatch(
        / {2}last failure {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: .*cannot execute ALTER ROLE in a read-only transaction/,
      );
      clock.advance(9 * 60_000);
      await new Promise((r) => setTimeout(r, 300));
      expect(await failures()).toHaveLength(1);
      clock.advance(60_000);
      await vi.waitFor(async () => expect(await failures()).toHaveLength(2), { timeout: 20_000, interval: 20 });
      expect(await directLogin(STUCK.user, STUCK.password)).toBe('ok');
      expect(await gw.audited('credentials.rotated', 'stuck')).toEqual([]);
    } finally {
      await gw.close();
    }
  }, 60_000);
});
