/**
 * Ephemeral credentials end to end, against a real PostgreSQL: each session through a connection with
 * `credentials.mode: ephemeral` runs as a role of its own (member of app_readonly, nothing more),
 * which exists with VALID UNTIL while the session lives and is gone after it; leftovers from a
 * gateway killed with -9 are removed by the next gateway's janitor; a DBA's look-alike role is never
 * touched; a role that cannot be created refuses the session cleanly; and the quoting helpers hold
 * up against hostile names on the real server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminToken } from './support/admin-token.js';
import { loadConfig } from '../src/config/load.js';
import { quoteIdent, quoteLiteral } from '../src/credentials/ephemeral/quote.js';
import { formatMark } from '../src/credentials/ephemeral/role-sql.js';
import { startGateway } from '../src/main.js';
import { createLogger } from '../src/obs/log.js';
import { AdminConnection } from '../src/protocols/postgres/admin-client.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { psql } from './support/psql.js';
import { waitUntil } from './support/wait.js';

let server: PgServer;
let gw: TestGateway;

const EPHEMERAL = (name: string, roles: string) =>
  `{ name: ${name}, host: 127.0.0.1, port: ${server.port}, database: app, user: ${server.users.scram.user}, password: env:PG_SCRAM, ` +
  `tls: { mode: disable }, credentials: { mode: ephemeral, roles: ${roles} } }`;

beforeAll(async () => {
  server = await startPostgres();
  const admin = server.users.scram.user;
  // The gateway's backend user may create roles; app_readonly may read items and nothing else.
  await server.query(
    [
      `ALTER ROLE ${admin} CREATEROLE`,
      'CREATE ROLE app_readonly NOLOGIN',
      'REVOKE ALL ON items FROM PUBLIC',
      'GRANT SELECT ON items TO app_readonly',
      `CREATE TABLE payroll (who text, amount int)`,
      'REVOKE ALL ON payroll FROM PUBLIC',
    ].join(';\n'),
  );
  gw = await startTestGateway(server, {
    extraConnections: [EPHEMERAL('app-eph', '[app_readonly]'), EPHEMERAL('app-eph-bad', '[app_readonly, no_such_role]')],
  });
});

afterAll(async () => {
  await gw?.close();
  await server?.cleanup();
});

interface RoleInfo {
  rolname: string;
  rolcanlogin: boolean;
  rolvaliduntil: Date | null;
  comment: string | null;
}

async function rolesWithPrefix(prefix = 'jitgate_'): Promise<RoleInfo[]> {
  const { rows } = await server.query(
    `SELECT rolname, rolcanlogin, rolvaliduntil, shobj_description(oid, 'pg_authid') AS comment
       FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY rolname`,
    [prefix],
  );
  return rows as RoleInfo[];
}

/** Waits for an effect that happens after a session ends (the drop runs once the client is gone). */
async function eventually<T>(what: string, probe: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  let last: T | undefined;
  const found = await waitUntil(what, async () => ((last = await probe()), done(last) && { value: last }), {
    intervalMs: 50,
    seen: () => last,
  });
  return found.value;
}

async function client(connection: string, token?: string): Promise<pg.Client> {
  const c = new pg.Client({
    host: gw.host,
    port: gw.port,
    user: 'alice',
    database: connection,
    password: token ?? (await gw.token({ connection })),
  });
  c.on('error', () => undefined);
  return c;
}

describe('a session on an ephemeral connection', () => {
  it('psql runs as a jitgate_ role of its own, which is gone after the session', async () => {
    const r = await psql(gw.dsn({ connection: 'app-eph' }), await gw.token({ connection: 'app-eph' }), [
      '-At',
      '-c',
      'select current_user',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const role = r.stdout.trim();
    expect(role).toMatch(/^jitgate_[0-9a-f]{12}$/);
    const left = await eventually('the session roles to be dropped', rolesWithPrefix, (rs) => rs.length === 0);
    expect(left.map((x) => x.rolname)).not.toContain(role);
    const row = gw.gateway.credentials.repository.list().find((x) => x.name === role);
    expect(row).toMatchObject({ connection: 'app-eph', user: 'alice', lastError: null });
    expect(row?.droppedAt).not.toBeNull();
  });

  it("has the configured role's privileges and no more, and the role is marked and time-limited", async () => {
    const token = await gw.token({ connection: 'app-eph', ttlMs: 30 * 60_000 });
    const c = await client('app-eph', token);
    await c.connect();
    try {
      const me = (await c.query('select current_user as u')).rows[0].u as string;
      expect(me).toMatch(/^jitgate_[0-9a-f]{12}$/);
      expect((await c.query('select count(*)::int as n from items')).rows[0].n).toBe(5);
      await expect(c.query(`insert into items (name) values ('nope')`)).rejects.toMatchObject({ code: '42501' });
      await expect(c.query('select * from payroll')).rejects.toMatchObject({ code: '42501' });
      await expect(c.query('create role sneaky')).rejects.toMatchObject({ code: '42501' });
      const attrs = (
        await c.query(
          `select rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolconnlimit,
                  pg_has_role(current_user, 'app_readonly', 'member') as member
             from pg_roles where rolname = current_user`,
        )
      ).rows[0];
      expect(attrs).toEqual({
        rolsuper: false,
        rolcreaterole: false,
        rolcreatedb: false,
        rolreplication: false,
        rolbypassrls: false,
        rolconnlimit: 1,
        member: true,
      });

      const [role] = (await rolesWithPrefix()).filter((x) => x.rolname === me);
      expect(role?.rolcanlogin).toBe(true);
      // VALID UNTIL is the token's expiry (the session's access end), to the second.
      const expected = Date.now() + 30 * 60_000;
      expect(Math.abs(role!.rolvaliduntil!.getTime() - expected)).toBeLessThan(60_000);
      const session = (await gw.gateway.store.listSessions({ active: true, connection: 'app-eph' }))[0]!;
      expect(role?.comment).toContain(`session=${session.id}`);
      expect(role?.comment).toContain('user="alice"');
      expect(me).toBe(`jitgate_${session.id.replaceAll('-', '').slice(0, 12)}`);
      // The password is a SCRAM verifier on the server, never the plain text.
      const { rows } = await server.query(`select rolpassword from pg_authid where rolname = $1`, [me]);
      expect(rows[0]?.rolpassword).toMatch(/^SCRAM-SHA-256\$4096:/);
    } finally {
      await c.end();
    }
    expect(await eventually('the session roles to be dropped', rolesWithPrefix, (rs) => rs.length === 0)).toEqual([]);
  });

  it('drops the role even when the session created objects (they pass to the gateway user)', async () => {
    const c = await client('app-eph');
    await c.connect();
    const me = (await c.query('select current_user as u')).rows[0].u as string;
    await c.query('create table scratch_by_session (x int)');
    await c.end();
    expect(await eventually('the session roles to be dropped', rolesWithPrefix, (rs) => rs.length === 0)).toEqual([]);
    const { rows } = await server.query(`select tableowner from pg_tables where tablename = 'scratch_by_session'`);
    expect(rows[0]?.tableowner).toBe(server.users.scram.user);
    expect(gw.gateway.credentials.repository.list().find((x) => x.name === me)?.lastError).toBeNull();
  });

  it('ends the role once the session ends, even if something else still uses it', async () => {
    const c = await client('app-eph');
    await c.connect();
    const me = (await c.query('select current_user as u')).rows[0].u as string;
    await c.end();
    await eventually('the session roles to be dropped', rolesWithPrefix, (rs) => rs.length === 0);
    const { rows } = await server.query(`select count(*)::int as n from pg_stat_activity where usename = $1`, [me]);
    expect(rows[0]?.n).toBe(0);
  });
});

describe('when the role cannot be created', () => {
  it('refuses the session with a clear 28000 and leaves nothing behind', async () => {
    const c = await client('app-eph-bad');
    const err = await c.connect().then(
      () => undefined,
      (e: pg.DatabaseError) => e,
    );
    expect(err).toMatchObject({
      severity: 'FATAL',
      code: '28000',
      message: 'could not create a database user for this session on connection "app-eph-bad"',
      detail: 'a role this connection grants (credentials.roles) does not exist on the backend',
    });
    const text = `${err?.message} ${err?.detail}`;
    expect(text).not.toContain(server.users.scram.password);
    expect(text).not.toContain(server.users.scram.user);
    expect(await rolesWithPrefix()).toEqual([]);
    expect(gw.gateway.credentials.repository.pending('app-eph-bad')).toEqual([]);
    const sessions = await gw.gateway.store.listSessions({ connection: 'app-eph-bad' });
    expect(sessions[0]).toMatchObject({ endReason: 'backend_refused' });
  });

  it('leaves a role whose drop fails to the janitor, which removes it later', async () => {
    const admin = server.users.scram.user;
    const c = await client('app-eph');
    await c.connect();
    const me = (await c.query('select current_user as u')).rows[0].u as string;
    // The gateway's user loses the right to manage roles while the session runs: the drop must fail.
    await server.query(`ALTER ROLE ${admin} NOCREATEROLE`);
    try {
      await c.end();
      const row = await eventually(
        'the failed drop to be recorded',
        async () => gw.gateway.credentials.repository.get('app-eph', me),
        (r) => r?.lastError !== null,
      );
      expect(row?.droppedAt).toBeNull();
      expect(row?.lastError).toMatch(/permission denied/);
      expect((await rolesWithPrefix()).map((r) => r.rolname)).toEqual([me]);
    } finally {
      await server.query(`ALTER ROLE ${admin} CREATEROLE`);
    }
    await gw.gateway.credentials.sweep();
    expect(await rolesWithPrefix()).toEqual([]);
    expect(gw.gateway.credentials.repository.get('app-eph', me)?.droppedAt).not.toBeNull();
  });
});

describe('the janitor', () => {
  it("never touches a DBA's look-alike roles or another gateway's", async () => {
    const other = formatMark({
      gateway: '00000000-0000-4000-8000-000000000000',
      connection: 'app-eph',
      session: '11111111-2222-4333-8444-555555555555',
      user: 'mallory',
    });
    await server.query(
      [
        'CREATE ROLE jitgate_aaaaaaaaaaaa LOGIN',
        'CREATE ROLE jitgate_bbbbbbbbbbbb LOGIN',
        `COMMENT ON ROLE jitgate_bbbbbbbbbbbb IS 'jitgate ephemeral role (not really): kept by the DBA'`,
        'CREATE ROLE jitgate_cccccccccccc LOGIN',
        `COMMENT ON ROLE jitgate_cccccccccccc IS ${quoteLiteral(other)}`,
      ].join(';\n'),
    );
    try {
      await gw.gateway.credentials.sweep();
      expect((await rolesWithPrefix()).map((r) => r.rolname)).toEqual([
        'jitgate_aaaaaaaaaaaa',
        'jitgate_bbbbbbbbbbbb',
        'jitgate_cccccccccccc',
      ]);
    } finally {
      await server.query('DROP ROLE jitgate_aaaaaaaaaaaa; DROP ROLE jitgate_bbbbbbbbbbbb; DROP ROLE jitgate_cccccccccccc');
    }
  });

  it('removes the role of a gateway killed with -9 when the next gateway starts on the same store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jitgate-crash-'));
    const configPath = join(dir, 'jitgate.yaml');
    writeFileSync(
      configPath,
      `development: true
dataDir: ${dir}
listeners: { http: { host: 127.0.0.1, port: 0 }, postgres: { host: 127.0.0.1, port: 0 } }
log: { level: silent }
connections:
  - ${EPHEMERAL('crashy', '[app_readonly]')}
`,
    );
    const env = { ...process.env, PG_SCRAM: server.users.scram.password };
    const lookalike = 'jitgate_dddddddddddd';
    await server.query(`CREATE ROLE ${lookalike} NOLOGIN`);
    let child: ChildProcess | undefined;
    try {
      child = spawn(
        process.execPath,
        ['--import', 'tsx', join(import.meta.dirname, 'support/gateway-child.ts'), configPath, 'alice', 'crashy'],
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
      const [host, port] = [postgres.slice(0, postgres.lastIndexOf(':')), Number(postgres.slice(postgres.lastIndexOf(':') + 1))];
      const c = new pg.Client({ host, port, user: 'alice', database: 'crashy', password: token });
      c.on('error', () => undefined);
      await c.connect();
      const me = (await c.query('select current_user as u')).rows[0].u as string;
      expect(me).toMatch(/^jitgate_/);

      // No shutdown, no session end, no drop: the process is simply gone.
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      await c.end().catch(() => undefined);
      expect((await rolesWithPrefix()).map((r) => r.rolname)).toEqual([me, lookalike].sort());

      const config = await loadConfig(configPath);
      const next = await startGateway(config, { env, logger: createLogger({ level: 'silent' }) });
      try {
        await next.credentials.firstSweep;
        expect((await rolesWithPrefix()).map((r) => r.rolname)).toEqual([lookalike]);
        const row = next.credentials.repository.get('crashy', me);
        expect(row?.droppedAt).not.toBeNull();
        expect(next.credentials.repository.pending('crashy')).toEqual([]);

        // A graceful shutdown, by contrast, drops the roles of the sessions it ends before it returns.
        const { token: t2 } = await adminToken(next, { user: 'bob', connection: 'crashy', ttlMs: 60_000 });
        const c2 = new pg.Client({ host, port: next.listeners.get('postgres')!.port, user: 'bob', database: 'crashy', password: t2 });
        c2.on('error', () => undefined);
        await c2.connect();
        expect((await rolesWithPrefix()).map((r) => r.rolname)).toHaveLength(2);
        await next.close();
        expect((await rolesWithPrefix()).map((r) => r.rolname)).toEqual([lookalike]);
        await c2.end().catch(() => undefined);
      } finally {
        await next.close();
      }
    } finally {
      child?.kill('SIGKILL');
      await server.query(`DROP ROLE IF EXISTS ${lookalike}`);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('quoting against the real server', () => {
  const hostile = [
    'a"b',
    '"; DROP ROLE scram_user; --',
    "x' OR '1'='1",
    "Robert'); DROP TABLE items;--",
    'back\\slash\\',
    "\\'; select 1; --",
    '$$dollar$$',
    'ünï cødé 🎉',
    'UPPER lower',
    'select',
    ' leading and trailing ',
    'new\nline\ttab',
    `${'x'.repeat(60)}"""`,
  ];
  let conn: AdminConnection;
  beforeAll(async () => {
    conn = await AdminConnection.open({
      connection: 'quoting',
      protocol: 'postgres',
      host: server.host,
      port: server.port,
      database: 'app',
      user: server.users.scram.user,
      password: server.users.scram.password,
      tls: { mode: 'disable' },
      connectTimeoutMs: 5_000,
    });
  });
  afterAll(() => conn?.close());

  it('creates and finds roles with hostile names exactly as given', async () => {
    for (const name of hostile) {
      await conn.query(`CREATE ROLE ${quoteIdent(name)} NOLOGIN;\nCOMMENT ON ROLE ${quoteIdent(name)} IS ${quoteLiteral(name)}`);
      const [found] = await conn.query(
        `SELECT rolname, shobj_description(oid, 'pg_authid') AS comment FROM pg_roles WHERE rolname = ${quoteLiteral(name)}`,
      );
      expect(found?.rows).toEqual([{ rolname: name, comment: name }]);
      await conn.query(`DROP ROLE ${quoteIdent(name)}`);
    }
    const { rows } = await server.query(`select count(*)::int as n from pg_roles where rolname = 'scram_user'`);
    expect(rows[0]?.n).toBe(1);
  });

  it('reads back any string literal unchanged, whatever standard_conforming_strings says', async () => {
    for (const setting of ['on', 'off']) {
      await conn.query(`SET standard_conforming_strings = ${setting}; SET escape_string_warning = off`);
      await fc.assert(
        fc.asyncProperty(
          fc.string({ unit: 'binary', maxLength: 40 }).filter((s) => !s.includes('\0')),
          async (s) => {
            const [r] = await conn.query(`SELECT ${quoteLiteral(s)} AS v`);
            expect(r?.rows[0]?.v).toBe(s);
          },
        ),
        { numRuns: 200 },
      );
      for (const s of hostile) {
        const [r] = await conn.query(`SELECT ${quoteLiteral(s)} AS v`);
        expect(r?.rows[0]?.v).toBe(s);
      }
    }
    await conn.query('RESET standard_conforming_strings; RESET escape_string_warning');
  });

  it('reports backend errors with their SQLSTATE and keeps the connection usable', async () => {
    await expect(conn.query('SELECT 1; SELECT * FROM no_such_table; SELECT 3')).rejects.toMatchObject({
      name: 'BackendQueryError',
      sqlstate: '42P01',
    });
    // COPY FROM STDIN is refused (CopyFail) rather than left waiting for data.
    await expect(conn.query('COPY items (name) FROM STDIN')).rejects.toMatchObject({ sqlstate: '57014' });
    const results = await conn.query(`SELECT 1 AS one, NULL AS nothing; ; SELECT 'two' AS two`);
    expect(results).toEqual([
      { command: 'SELECT 1', rows: [{ one: '1', nothing: null }] },
      { command: 'SELECT 1', rows: [{ two: 'two' }] },
    ]);
  });
});
