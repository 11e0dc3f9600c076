/**
 * Single-session tokens (`auth.tokenUse: session`) end to end with real clients: psql and pg on
 * PostgreSQL, the mariadb CLI and mysql2 on MariaDB, redis-cli and ioredis on Redis. A token opens one
 * session; a second login with it (while the first runs, after it ended, or racing it) is refused
 * with the protocol's own authentication error and audited as `token.reused`; the end of the session
 * revokes the token. A connection that keeps `tokenUse: grant` still lets a token log in again.
 */
import pg from 'pg';
import mysql from 'mysql2/promise';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminToken } from './support/admin-token.js';
import { TOKEN_REUSED_MESSAGE } from '../src/access/session-tokens.js';
import type { Gateway } from '../src/main.js';
import type { GatewayConfig } from '../src/config/types.js';
import type { SqliteStore } from '../src/store/sqlite.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { psql } from './support/psql.js';
import { startMariadb, type MariadbServer } from './support/mysql-server.js';
import { mysqlCli, startMysqlTestGateway, type MysqlTestGateway } from './support/mysql-gateway.js';
import { startRedis, type RedisServer } from './support/redis-server.js';
import { redisCli, startRedisGateway, type RedisTestGateway } from './support/redis-gateway.js';

/** As `jitgate token` does: a token whose use is what the gateway's config says for the connection. */
async function configuredToken(gateway: Gateway, config: GatewayConfig, connection: string): Promise<{ token: string; id: string }> {
  const use = config.connections.find((c) => c.name === connection)?.tokenUse ?? config.auth.tokenUse;
  const minted = await adminToken(gateway, { connection, tokenUse: use });
  return { token: minted.token, id: minted.id };
}

async function reusedEntries(gateway: Gateway, tokenId: string): Promise<number> {
  return (await gateway.audit.about(tokenId)).filter((e) => e.type === 'token.reused').length;
}

function isRevoked(gateway: Gateway, tokenId: string): boolean {
  const row = (gateway.store as SqliteStore).database.prepare('SELECT revoked_at FROM tokens WHERE id = ?').get(tokenId) as {
    revoked_at: number | null;
  };
  return row.revoked_at !== null;
}

describe('PostgreSQL', () => {
  let server: PgServer;
  let gw: TestGateway;

  beforeAll(async () => {
    server = await startPostgres();
    gw = await startTestGateway(server, {
      extraYaml: 'auth: { tokenUse: session }\n',
      configure: (config) => {
        config.connections.find((c) => c.name === 'app-trust')!.tokenUse = 'grant';
      },
    });
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
    await server?.cleanup();
  });

  const client = (token: string, connection = 'app') =>
    new pg.Client({ host: gw.host, port: gw.port, user: 'alice', database: connection, password: token });

  it('psql: the first session runs, its end revokes the token, a second psql gets 28P01', async () => {
    const { token, id } = await configuredToken(gw.gateway, gw.config, 'app');
    const first = await psql(gw.dsn({}), token, ['-At', '-c', 'SELECT 41 + 1']);
    expect(first.stderr).toBe('');
    expect(first.stdout.trim()).toBe('42');
    await expect.poll(() => isRevoked(gw.gateway, id), { message: 'the single-session token to be revoked' }).toBe(true);

    const second = await psql(gw.dsn({}), token, ['-At', '-c', 'SELECT 1']);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(TOKEN_REUSED_MESSAGE);
    const third = client(token);
    await expect(third.connect()).rejects.toMatchObject({ code: '28P01' });
    expect(await reusedEntries(gw.gateway, id)).toBe(2);
  });

  it("psql's \\c with the same token is refused while the first session still runs", async () => {
    const { token, id } = await configuredToken(gw.gateway, gw.config, 'app');
    const r = await psql(gw.dsn({}), token, ['-At'], { input: 'SELECT 1;\n\\c\nSELECT 2;\n' });
    expect(r.stdout.trim()).toBe('1');
    expect(r.stderr).toContain(TOKEN_REUSED_MESSAGE);
    expect(await reusedEntries(gw.gateway, id)).toBe(1);
  });

  it('two logins racing with one token: exactly one opens a session', async () => {
    const { token, id } = await configuredToken(gw.gateway, gw.config, 'app');
    const clients = Array.from({ length: 4 }, () => client(token));
    const results = await Promise.allSettled(clients.map((c) => c.connect()));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost.map((r) => (r.reason as { code?: string }).code)).toEqual(['28P01', '28P01', '28P01']);
    expect(await reusedEntries(gw.gateway, id)).toBe(3);
    const winner = clients[results.findIndex((r) => r.status === 'fulfilled')]!;
    expect((await winner.query('SELECT 7 AS n')).rows).toEqual([{ n: 7 }]);
    expect(isRevoked(gw.gateway, id)).toBe(false);
    await winner.end();
    await expect.poll(() => isRevoked(gw.gateway, id), { message: 'the single-session token to be revoked' }).toBe(true);
    for (const c of clients) await c.end().catch(() => undefined);
  });

  it('a connection with tokenUse: grant lets the token log in again', async () => {
    const { token, id } = await configuredToken(gw.gateway, gw.config, 'app-trust');
    for (const n of [1, 2]) {
      const r = await psql(gw.dsn({ connection: 'app-trust' }), token, ['-At', '-c', `SELECT ${n}`]);
      expect(r.stdout.trim()).toBe(String(n));
    }
    expect(isRevoked(gw.gateway, id)).toBe(false);
    expect(await reusedEntries(gw.gateway, id)).toBe(0);
  });
});

describe('MariaDB', () => {
  let my: MariadbServer;
  let gw: MysqlTestGateway;

  beforeAll(async () => {
    my = await startMariadb();
    gw = await startMysqlTestGateway(my, { extraYaml: 'auth: { tokenUse: session }\n' });
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
    await my?.cleanup();
  });

  it('mariadb CLI: one session, then 1045 for the same token, and the token is revoked', async () => {
    const { token, id } = await configuredToken(gw.gateway, gw.config, 'app');
    const first = await mysqlCli(gw, { token, sql: 'SELECT 40 + 2', args: ['--ssl', '--skip-ssl-verify-server-cert'] });
    expect(first.stderr).toBe('');
    expect(first.stdout).toContain('42');
    await expect.poll(() => isRevoked(gw.gateway, id), { message: 'the single-session token to be revoked' }).toBe(true);
    const second = await mysqlCli(gw, { token, sql: 'SELECT 1', args: ['--ssl', '--skip-ssl-verify-server-cert'] });
    expect(second.code).not.toBe(0);
    expect(second.stderr).toContain('ERROR 1045');
    expect(await reusedEntries(gw.gateway, id)).toBe(1);
  });

  it('mysql2: a second connection while the first is open is refused with ER_ACCESS_DENIED_ERROR', async () => {
    const { token, id } = await configuredToken(gw.gateway, gw.config, 'app');
    const options = { host: gw.host, port: gw.port, user: 'alice', password: token, database: 'app', ssl: { rejectUnauthorized: false } };
    const first = await mysql.createConnection(options);
    await expect(mysql.createConnection(options)).rejects.toMatchObject({ errno: 1045 });
    expect(await reusedEntries(gw.gateway, id)).toBe(1);
    await first.end();
    await expect.poll(() => isRevoked(gw.gateway, id), { message: 'the single-session token to be revoked' }).toBe(true);
  });
});

describe('Redis', () => {
  let redis: RedisServer;
  let gw: RedisTestGateway;

  beforeAll(async () => {
    redis = await startRedis();
    gw = await startRedisGateway(redis, { extraYaml: 'auth: { tokenUse: session }\n' });
  }, 60_000);

  afterAll(async () => {
    await gw?.close();
    await redis?.stop();
  });

  const cli = (token: string, ...command: string[]) =>
    redisCli(['-h', gw.host, '-p', String(gw.port), '--user', 'alice@cache', '--pass', token, '--no-auth-warning', ...command]);

  it('redis-cli: one session, then WRONGPASS for the same token, and the token is revoked', async () => {
    const { token, id } = await configuredToken(gw.gateway, gw.config, 'cache');
    const first = await cli(token, 'PING');
    expect(first.stdout.trim()).toBe('PONG');
    await expect.poll(() => isRevoked(gw.gateway, id), { message: 'the single-session token to be revoked' }).toBe(true);
    const second = await cli(token, 'PING');
    expect(second.stdout + second.stderr).toContain('WRONGPASS');
    expect(await reusedEntries(gw.gateway, id)).toBe(1);
  });

  it('ioredis: AUTH again inside the session still works; a second connection (redis-cli) is refused', async () => {
    const { token, id } = await configuredToken(gw.gateway, gw.config, 'cache');
    const first = new Redis({
      host: gw.host,
      port: gw.port,
      username: 'alice@cache',
      password: token,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    await first.connect();
    expect(await first.call('AUTH', 'alice@cache', token)).toBe('OK');
    const second = await cli(token, 'PING');
    expect(second.stdout + second.stderr).toContain('WRONGPASS');
    expect(await first.get('missing')).toBeNull();
    expect(await reusedEntries(gw.gateway, id)).toBe(1);
    first.disconnect();
    await expect.poll(() => isRevoked(gw.gateway, id), { message: 'the single-session token to be revoked' }).toBe(true);
  });
});
