/**
 * Failed logins on the data listeners, throttled and summarised, with real servers and real clients:
 * one gateway in front of a private PostgreSQL, MariaDB and Redis; the pg driver, mysql2 and ioredis
 * guessing tokens in bounded loops. No timing is asserted: only what the clients are answered and
 * how many audit entries the attempts leave. The backoff is shortened for the test (StartOptions);
 * the gateway's clock is a ManualClock, so the summary window closes when the test says.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminToken } from './support/admin-token.js';
import { parseConfig } from '../src/config/load.js';
import { ManualClock } from '../src/core/clock.js';
import { startGateway, type Gateway } from '../src/main.js';
import { createLogger } from '../src/obs/log.js';
import { startMariadb, type MariadbServer } from './support/mysql-server.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { startRedis, type RedisServer } from './support/redis-server.js';
import { collect } from './support/collect.js';

const THRESHOLD = 4;
const clock = new ManualClock(Date.now());
let pgServer: PgServer;
let maria: MariadbServer;
let redis: RedisServer;
let gateway: Gateway;
let dataDir: string;

beforeAll(async () => {
  [pgServer, maria, redis] = await Promise.all([startPostgres(), startMariadb(), startRedis()]);
  dataDir = mkdtempSync(join(tmpdir(), 'jitgate-throttle-'));
  const yaml = `
development: true
dataDir: ${dataDir}
listeners:
  http: { host: 127.0.0.1, port: 0 }
  postgres: { host: 127.0.0.1, port: 0 }
  mysql: { host: 127.0.0.1, port: 0 }
  redis: { host: 127.0.0.1, port: 0 }
log: { level: ${process.env.JITGATE_TEST_LOG ?? 'silent'} }
connections:
  - { name: app, host: 127.0.0.1, port: ${pgServer.port}, database: app, user: ${pgServer.users.scram.user}, password: env:PG_PW, tls: { mode: disable } }
  - { name: shop, type: mysql, host: 127.0.0.1, port: ${maria.port}, database: app, user: ${maria.users.native.user}, password: env:MY_PW, tls: { mode: disable } }
  - { name: cache, type: redis, host: 127.0.0.1, port: ${redis.port}, user: ${redis.users.gateway.user}, password: env:REDIS_PW, tls: { mode: disable } }
`;
  gateway = await startGateway(parseConfig(yaml, 'test.yaml', dataDir), {
    env: { PG_PW: pgServer.users.scram.password, MY_PW: maria.users.native.password, REDIS_PW: redis.users.gateway.password },
    logger: createLogger({ level: (process.env.JITGATE_TEST_LOG as 'info' | undefined) ?? 'silent' }),
    clock,
    loginThrottle: { sourceThreshold: THRESHOLD, userThreshold: THRESHOLD, baseDelayMs: 1, maxDelayMs: 20, windowMs: 60_000 },
  });
}, 180_000);

afterAll(async () => {
  await gateway?.close();
  await Promise.all([pgServer?.cleanup(), maria?.cleanup(), redis?.stop()]);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function token(user: string, connection: string): Promise<string> {
  return (await adminToken(gateway, { user, connection, now: clock.now() })).token;
}

const port = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));
const BAD = 'jg_' + 'x'.repeat(43);

async function auditCount(type: string): Promise<number> {
  return (await collect(gateway.audit.entries())).filter((e) => e.type === type).length;
}

async function pgLogin(user: string, password: string): Promise<{ ok: true } | { ok: false; code: string; message: string }> {
  const c = new pg.Client({ host: '127.0.0.1', port: port(gateway.addresses.postgres!), user, database: 'app', password });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.end();
    return { ok: true };
  } catch (err) {
    const e = err as { code: string; message: string };
    return { ok: false, code: e.code, message: e.message };
  }
}

async function mysqlLogin(user: string, password: string): Promise<{ ok: true } | { ok: false; errno: number; message: string }> {
  try {
    const c = await mysql.createConnection({ host: '127.0.0.1', port: port(gateway.addresses.mysql!), user, password, database: 'shop' });
    await c.end();
    return { ok: true };
  } catch (err) {
    const e = err as { errno: number; message: string };
    return { ok: false, errno: e.errno, message: e.message };
  }
}

async function redisLogin(user: string, password: string): Promise<{ ok: true } | { ok: false; message: string }> {
  // AUTH sent by hand, so the reply is the one the gateway gave (ioredis's own AUTH on connect closes first).
  const c = new Redis({
    host: '127.0.0.1',
    port: port(gateway.addresses.redis!),
    lazyConnect: true,
    enableReadyCheck: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.call('AUTH', `${user}@cache`, password);
    await c.ping();
    return { ok: true };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  } finally {
    c.disconnect();
  }
}

describe('failed logins are throttled per source and user, and summarised in the audit log', { timeout: 120_000 }, () => {
  it('PostgreSQL: wrong tokens turn into "too many failed logins", a valid token still gets in, and the audit log gets one summary', async () => {
    const valid = await token('alice', 'app');
    const before = { each: await auditCount('login.failed'), summaries: await auditCount('login.failed.repeated') };
    const answers = [];
    for (let i = 0; i < 30; i++) answers.push(await pgLogin('alice', BAD));
    expect(answers.slice(0, THRESHOLD)).toEqual(
      Array(THRESHOLD).fill(
        expect.objectContaining({ ok: false, code: '28P01', message: 'password authentication failed for user "alice"' }),
      ),
    );
    for (const a of answers.slice(THRESHOLD)) {
      expect(a).toMatchObject({ ok: false, code: '28000' });
      expect((a as { message: string }).message).toMatch(/^jitgate: too many failed logins from 127\.0\.0\.1 or for user "alice"/);
    }
    // The attacker's guessing never locks the real alice out.
    expect(await pgLogin('alice', valid)).toEqual({ ok: true });

    expect((await auditCount('login.failed')) - before.each).toBe(THRESHOLD);
    expect((await auditCount('login.failed.repeated')) - before.summaries).toBe(0);
    await clock.advanceSettled(60_000); // the summary window closes
    const summaries = (await collect(gateway.audit.entries())).filter((e) => e.type === 'login.failed.repeated');
    expect(summaries.length - before.summaries).toBe(1);
    expect(summaries.at(-1)).toMatchObject({
      actor: 'gateway',
      subject: '127.0.0.1',
      data: { count: 30 - THRESHOLD, users: ['alice'], protocols: ['postgres'], reasons: ['bad_token'] },
    });
  });

  it('MySQL: the same, with the server’s own "host blocked" error (1129)', async () => {
    const valid = await token('bob', 'shop');
    const before = await auditCount('login.failed');
    const answers = [];
    for (let i = 0; i < 12; i++) answers.push(await mysqlLogin('bob', `wrong-${i}`));
    expect(answers.slice(0, THRESHOLD).map((a) => (a as { errno: number }).errno)).toEqual(Array(THRESHOLD).fill(1045));
    for (const a of answers.slice(THRESHOLD)) {
      expect(a).toMatchObject({ ok: false, errno: 1129 });
      expect((a as { message: string }).message).toContain('too many failed logins');
    }
    expect(await mysqlLogin('bob', valid)).toEqual({ ok: true });
    expect((await auditCount('login.failed')) - before).toBe(THRESHOLD);
  });

  it('Redis: the same, and the counts start afresh after the valid login', async () => {
    const valid = await token('carol', 'cache');
    const before = await auditCount('login.failed');
    const answers = [];
    for (let i = 0; i < 10; i++) answers.push(await redisLogin('carol', BAD));
    for (const a of answers.slice(0, THRESHOLD)) expect((a as { message: string }).message).toMatch(/^WRONGPASS/);
    for (const a of answers.slice(THRESHOLD)) expect((a as { message: string }).message).toMatch(/^ERR jitgate: too many failed logins/);
    expect(await redisLogin('carol', valid)).toEqual({ ok: true });
    // Signed in: the next mistake is an ordinary one again.
    expect((await redisLogin('carol', BAD)) as { message: string }).toMatchObject({ message: expect.stringMatching(/^WRONGPASS/) });
    expect((await auditCount('login.failed')) - before).toBe(THRESHOLD + 1);
  });
});
