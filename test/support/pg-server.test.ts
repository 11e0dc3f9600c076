import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PgServer, type PgUserKey } from './pg-server.js';
import { waitUntil } from './wait.js';

type AuthSeen = 'sasl' | 'md5' | 'cleartext' | 'none';

/** Connect with `pg`, note which authentication request the server sent, run one query. */
async function connectAndQuery(config: pg.ClientConfig): Promise<{ auth: AuthSeen; ssl: boolean; user: string; items: number }> {
  const client = new pg.Client({ connectionTimeoutMillis: 10_000, ...config });
  client.on('error', () => {});
  let auth: AuthSeen = 'none';
  // pg's Connection emits one event per authentication request message.
  const conn = (client as unknown as { connection: NodeJS.EventEmitter }).connection;
  conn.on('authenticationSASL', () => (auth = 'sasl'));
  conn.on('authenticationMD5Password', () => (auth = 'md5'));
  conn.on('authenticationCleartextPassword', () => (auth = 'cleartext'));
  await client.connect();
  try {
    const { rows } = await client.query<{ u: string; ssl: boolean; n: string }>(
      'SELECT current_user AS u, (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl, (SELECT count(*) FROM items) AS n',
    );
    const row = rows[0]!;
    return { auth, ssl: row.ssl, user: row.u, items: Number(row.n) };
  } finally {
    await client.end();
  }
}

describe('test/support/pg-server: a private PostgreSQL', () => {
  let server: PgServer;

  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(async () => {
    await server?.cleanup();
  });

  it('listens on an ephemeral loopback port and runs superuser SQL', async () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.port).toBeGreaterThan(0);
    expect(server.port).not.toBe(5432);
    const { rows } = await server.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    expect(Number(rows[0]!.v.split('.')[0])).toBeGreaterThanOrEqual(15);
    const items = await server.query<{ name: string }>('SELECT name FROM items ORDER BY id');
    expect(items.rows.map((r) => r.name)).toEqual(['alpha', 'beta', 'gamma', 'delta', 'epsilon']);
    const settings = await server.query<{ name: string; setting: string }>(
      "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'ssl', 'password_encryption') ORDER BY name",
    );
    expect(Object.fromEntries(settings.rows.map((r) => [r.name, r.setting]))).toEqual({
      fsync: 'off',
      password_encryption: 'scram-sha-256',
      ssl: 'on',
    });
  });

  const cases: Array<[PgUserKey, AuthSeen]> = [
    ['scram', 'sasl'],
    ['md5', 'md5'],
    ['plain', 'cleartext'],
    ['trust', 'none'],
  ];
  for (const [who, auth] of cases) {
    it(`${who}_user authenticates with ${auth === 'none' ? 'trust' : auth} over plain TCP`, async () => {
      const r = await connectAndQuery(server.clientConfig(who));
      expect(r).toEqual({ auth, ssl: false, user: server.users[who].user, items: 5 });
    });
  }

  it('superuser authenticates with SCRAM over TCP', async () => {
    const r = await connectAndQuery(server.clientConfig('superuser'));
    expect(r.auth).toBe('sasl');
    expect(r.user).toBe('postgres');
  });

  it('tls_user needs TLS, which verifies against the harness certificate', async () => {
    const ca = readFileSync(server.caPath, 'utf8');
    const r = await connectAndQuery(server.clientConfig('tls', { ssl: { ca, servername: 'localhost' } }));
    expect(r).toEqual({ auth: 'sasl', ssl: true, user: 'tls_user', items: 5 });
    // Over TLS, other users work too.
    expect((await connectAndQuery(server.clientConfig('md5', { ssl: { ca } }))).ssl).toBe(true);
    // Without TLS, the hostssl-only user is rejected by pg_hba.conf.
    await expect(connectAndQuery(server.clientConfig('tls'))).rejects.toMatchObject({ code: '28000' });
  });

  for (const who of ['scram', 'md5', 'plain', 'superuser'] as const) {
    it(`${who} with a wrong password fails with 28P01`, async () => {
      await expect(connectAndQuery(server.clientConfig(who, { password: 'wrong-password' }))).rejects.toMatchObject({
        code: '28P01',
      });
    });
  }

  it('trust_user gets in with any password', async () => {
    expect((await connectAndQuery(server.clientConfig('trust', { password: 'whatever' }))).user).toBe('trust_user');
  });

  it('restarts on the same port, keeping data; existing sessions are cut', async () => {
    const port = server.port;
    const oldPid = server.pid;
    await server.query("INSERT INTO items (name) VALUES ('before-restart')");
    const client = new pg.Client(server.clientConfig('scram'));
    const lost = new Promise<Error>((resolve) => client.on('error', resolve));
    await client.connect();

    await server.restart({ mode: 'fast' });
    expect(server.port).toBe(port);
    expect(server.pid).not.toBe(oldPid);
    expect((await lost).message).toMatch(/terminat|shut ?down|Connection/i);
    await client.end().catch(() => {});

    const r = await connectAndQuery(server.clientConfig('scram'));
    expect(r.items).toBe(6);

    await server.stop({ mode: 'immediate' });
    expect(server.running).toBe(false);
    await expect(connectAndQuery(server.clientConfig('scram', { connectionTimeoutMillis: 2_000 }))).rejects.toThrow();
    await server.start();
    expect((await connectAndQuery(server.clientConfig('scram'))).items).toBe(6);
  });

  it('kill9Backend kills a client backend mid-query', async () => {
    const client = new pg.Client(server.clientConfig('md5', { application_name: 'victim' }));
    client.on('error', () => {});
    await client.connect();
    const running = client.query('SELECT pg_sleep(30)');
    running.catch(() => {});
    // Wait until the query is visibly running.
    await waitUntil(
      'the victim query to run',
      async () =>
        (await server.query("SELECT 1 FROM pg_stat_activity WHERE application_name = 'victim' AND state = 'active'")).rows.length > 0,
    );
    const pids = await server.kill9Backend({ applicationName: 'victim' });
    expect(pids).toHaveLength(1);
    await expect(running).rejects.toThrow();
    await client.end().catch(() => {});
    // The postmaster recovers by itself; new sessions work again.
    await waitUntil('the postmaster to accept sessions again', async () => (await connectAndQuery(server.clientConfig('scram')), true), {
      timeoutMs: 20_000,
      intervalMs: 100,
    });
  });
});

describe('startPostgres', () => {
  it('gives each server its own port and directory', async () => {
    const [a, b] = await Promise.all([startPostgres(), startPostgres()]);
    try {
      expect(a.port).not.toBe(b.port);
      expect(a.dataDir).not.toBe(b.dataDir);
      expect(a.password).not.toBe(b.password);
    } finally {
      await Promise.all([a.cleanup(), b.cleanup()]);
    }
  });

  it('fails within the bounded time, with the server log, when the server cannot start', async () => {
    const t0 = Date.now();
    await expect(startPostgres({ conf: { shared_buffers: 'not-a-size' }, startTimeoutMs: 10_000 })).rejects.toThrow(
      /PostgreSQL exited during startup[\s\S]*shared_buffers/,
    );
    expect(Date.now() - t0).toBeLessThan(20_000);
  });
});
