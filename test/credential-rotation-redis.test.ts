/**
 * The gateway rotates its own Redis password (issue 17): `jitgate credentials rotate` while
 * redis-benchmark reconnects through the gateway for every request, with every request reaching the
 * backend; the new password added as a `#<sha256>` hash before the old one is removed, so the old is
 * refused afterwards and the user holds exactly one password; a session from before the rotation
 * still logs back in after RESET; `credentials status` warns about +@all and ~*.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../src/core/clock.js';
import { CredentialRotation } from '../src/credentials/rotation/service.js';
import { SecretStore } from '../src/credentials/secret-store.js';
import { createLogger } from '../src/obs/log.js';
import type { SqliteStore } from '../src/store/sqlite.js';
import { MASTER_KEY, startRotationGateway, type RotationGateway } from './support/rotation.js';
import { startRedis, type RedisServer } from './support/redis-server.js';

let redis: RedisServer;
let gw: RotationGateway;

beforeAll(async () => {
  redis = await startRedis();
  gw = await startRotationGateway({
    listeners: ['redis'],
    secrets: { 'cache-redis': redis.users.gateway.password },
    connections: [
      `{ name: cache, type: redis, host: 127.0.0.1, port: ${redis.port}, user: ${redis.users.gateway.user}, password: secret:cache-redis, tls: { mode: disable } }`,
    ],
  });
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await redis?.stop();
});

const admin = () =>
  new Redis({
    host: redis.host,
    port: redis.port,
    username: 'default',
    password: redis.users.default.password,
    maxRetriesPerRequest: 0,
    lazyConnect: true,
  });

/** AUTH as the gateway's backend user, directly: OK, or the first word of the error. */
async function directLogin(password: string): Promise<string> {
  const c = new Redis({
    host: redis.host,
    port: redis.port,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    lazyConnect: true,
    enableReadyCheck: false,
  });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return String(await c.call('AUTH', redis.users.gateway.user, password));
  } catch (err) {
    return (err as Error).message.split(' ')[0]!;
  } finally {
    c.disconnect();
  }
}

async function setCalls(): Promise<number> {
  const a = admin();
  await a.connect();
  const stats = await a.info('commandstats');
  a.disconnect();
  return Number(/cmdstat_set:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

function benchmark(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn('redis-benchmark', args);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

describe('jitgate credentials rotate on Redis', () => {
  it('rotates while redis-benchmark reconnects for every request through the gateway, with none failing', async () => {
    const old = redis.users.gateway.password;
    const { host, port } = gw.listener('redis');
    const early = new Redis({
      host,
      port,
      username: 'alice@cache',
      password: await gw.token('cache'),
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    early.on('error', () => undefined);
    await early.set('early', '1');

    const before = await setCalls();
    const sessions = async () => (await gw.gateway.metrics.sessionsTotal.get()).values.reduce((n, v) => n + v.value, 0);
    const startedWith = await sessions();
    // -k 0: a new connection, AUTH included, for every request.
    const bench = benchmark([
      '-h',
      host,
      '-p',
      String(port),
      '--user',
      'alice@cache',
      '-a',
      await gw.token('cache'),
      '-c',
      '4',
      '-n',
      '400',
      '-k',
      '0',
      '-t',
      'set',
      '-e',
    ]);
    await vi.waitFor(async () => expect(await sessions()).toBeGreaterThan(startedWith + 60), { timeout: 60_000, interval: 20 });
    const r = await gw.cli('dave', ['credentials', 'rotate', 'cache']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const afterRotation = await sessions();
    const result = await bench;
    expect(result.code).toBe(0);
    expect(result.out + result.err).not.toMatch(/ERR|WRONGPASS|NOAUTH|Error/);
    // Every one of the 400 SETs reached the backend.
    expect((await setCalls()) - before).toBe(400);
    // Sessions kept opening after the switch, too.
    expect(await sessions()).toBeGreaterThan(afterRotation);

    expect(await directLogin(old)).toBe('WRONGPASS');
    const stored = (await new SecretStore(gw.gateway.store, { masterKey: Buffer.from(MASTER_KEY, 'hex') }).get('cache-redis'))!;
    expect(stored).not.toBe(old);
    expect(await directLogin(stored)).toBe('OK');
    const a = admin();
    await a.connect();
    const user = (await a.call('ACL', 'GETUSER', redis.users.gateway.user)) as unknown[];
    a.disconnect();
    const passwords = user[user.indexOf('passwords') + 1];
    expect(passwords).toEqual([createHash('sha256').update(stored).digest('hex')]);

    // A session from before: still connected, and RESET logs it back in with the current password.
    expect(await early.get('early')).toBe('1');
    expect(await early.call('RESET')).toBe('RESET');
    expect(await early.get('early')).toBe('1');
    early.disconnect();

    const audited = await gw.audited('credentials.rotated', 'cache');
    expect(audited).toEqual([
      {
        actor: 'dave',
        data: {
          connection: 'cache',
          protocol: 'redis',
          backendUser: redis.users.gateway.user,
          secret: 'secret:cache-redis',
          scheduled: false,
        },
      },
    ]);
  }, 180_000);

  it('runs one rotation per connection at a time, in one instance and across instances on one store', async () => {
    const first = gw.gateway.rotation.rotate('cache', 'dave');
    await expect(gw.gateway.rotation.rotate('cache', 'dave')).rejects.toMatchObject({ kind: 'busy' });
    // A second gateway instance on the same state store finds the store lease taken.
    const other = new CredentialRotation({
      connections: gw.config.connections,
      targets: new Map([
        [
          'cache',
          {
            connection: 'cache',
            protocol: 'redis',
            host: redis.host,
            port: redis.port,
            database: '0',
            user: redis.users.gateway.user,
            password: 'unused',
            tls: { mode: 'disable' },
            connectTimeoutMs: 5_000,
          },
        ],
      ]),
      secrets: new SecretStore(gw.gateway.store, { masterKey: Buffer.from(MASTER_KEY, 'hex') }),
      database: (gw.gateway.store as SqliteStore).database,
      clock: systemClock,
      log: createLogger({ level: 'silent' }),
      audit: gw.gateway.audit,
    });
    await expect(other.rotate('cache', 'erin')).rejects.toMatchObject({
      kind: 'busy',
      message: 'connection "cache": a rotation is already running (this or another gateway instance)',
    });
    await first;
    await other.stop();
    expect(await gw.audited('credentials.rotated', 'cache')).toHaveLength(2);
    // Sessions log in with the password of the second rotation.
    const { host, port } = gw.listener('redis');
    const c = new Redis({
      host,
      port,
      username: 'alice@cache',
      password: await gw.token('cache'),
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    expect(await c.get('early')).toBe('1');
    c.disconnect();
  });

  it('credentials status warns about +@all and ~*', async () => {
    const r = await gw.cli('dave', ['credentials', 'status']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`cache (redis, backend user ${redis.users.gateway.user})`);
    expect(r.out).toContain(
      `  warning       ${redis.users.gateway.user} may run every command (+@all), including CONFIG, MODULE, DEBUG and SHUTDOWN; it needs the commands of its sessions and +acl`,
    );
    expect(r.out).toContain(`  warning       ${redis.users.gateway.user} may touch every key (~*)`);
  });
});
