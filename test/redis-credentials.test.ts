/**
 * No Redis command through the gateway reveals or replaces the backend credential it holds, or
 * reaches other sessions on the shared backend user (issue 11, items 2 and 4), with a real
 * redis-server that has a requirepass, a masterauth/masteruser and an ACL user for the gateway:
 * CONFIG GET (names and globs, RESP2 and RESP3, inside MULTI) is answered with the credentials
 * hidden; ACL LIST/GETUSER/DRYRUN/LOG/USERS/SETUSER/DELUSER, CONFIG SET of a password, CONFIG
 * REWRITE, REPLICAOF, SLOWLOG GET are refused with -NOPERM naming jitgate; CLIENT LIST shows the
 * session's own connection only and CLIENT KILL of another session is refused; and the
 * recordings hold none of the secrets.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HIDDEN } from '../src/protocols/redis/backend-secrets.js';
import { decompressed, filesUnder, until } from './support/recording.js';
import { redisCli, startRedisGateway, type RedisTestGateway } from './support/redis-gateway.js';
import { startRedis, type RedisServer } from './support/redis-server.js';

const MASTER_SECRET = 'master-secret-0';

let redis: RedisServer;
let gw: RedisTestGateway;
let direct: Redis;
const clients: Redis[] = [];

beforeAll(async () => {
  redis = await startRedis({ extraArgs: ['--masterauth', MASTER_SECRET, '--masteruser', 'replication-user'] });
  gw = await startRedisGateway(redis);
  direct = new Redis({
    host: redis.host,
    port: redis.port,
    username: redis.users.gateway.user,
    password: redis.users.gateway.password,
    maxRetriesPerRequest: 0,
  });
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
  direct?.disconnect();
  await gw?.close();
  await redis?.stop();
});

async function client(user = 'alice'): Promise<Redis> {
  const c = new Redis({
    host: gw.host,
    port: gw.port,
    username: `${user}@cache`,
    password: await gw.token({ user }),
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

const secrets = () => [
  redis.users.default.password,
  redis.users.gateway.password,
  MASTER_SECRET,
  createHash('sha256').update(redis.users.gateway.password).digest('hex'),
];

/** CONFIG GET's flat reply as a map. */
const pairs = (flat: unknown): Map<string, string> => {
  const items = flat as string[];
  const out = new Map<string, string>();
  for (let i = 0; i + 1 < items.length; i += 2) out.set(items[i]!, items[i + 1]!);
  return out;
};

describe('CONFIG GET hides the backend credentials and answers the rest', () => {
  it('by name, by glob and with several patterns', async () => {
    const c = await client();
    expect(await c.config('GET', 'requirepass')).toEqual(['requirepass', HIDDEN]);
    expect(pairs(await c.config('GET', 'master*'))).toEqual(
      new Map([
        ['masterauth', HIDDEN],
        ['masteruser', HIDDEN],
      ]),
    );
    const star = pairs(await c.config('GET', '*'));
    const real = pairs(await direct.config('GET', '*'));
    expect([...star.keys()].sort()).toEqual([...real.keys()].sort());
    for (const [name, value] of real) {
      if (['requirepass', 'masterauth', 'masteruser'].includes(name)) expect(star.get(name), name).toBe(HIDDEN);
      else if (name.endsWith('pass') && value !== '') expect(star.get(name), name).toBe(HIDDEN);
      else expect(star.get(name), name).toBe(value);
    }
    const some = pairs(await c.call('CONFIG', 'GET', 'maxmemory', '*pass*'));
    expect(some.get('maxmemory')).toBe('0');
    expect(some.get('requirepass')).toBe(HIDDEN);
  });

  it('inside MULTI/EXEC', async () => {
    const c = await client();
    const res = await c.multi().set('k', 'v').config('GET', 'requirepass').exec();
    expect(res).toEqual([
      [null, 'OK'],
      [null, ['requirepass', HIDDEN]],
    ]);
  });

  it('in RESP3 (redis-cli -3)', async () => {
    const r = await redisCli([
      '-3',
      '-h',
      gw.host,
      '-p',
      String(gw.port),
      '--user',
      'alice@cache',
      '--pass',
      await gw.token(),
      '--no-auth-warning',
      'CONFIG',
      'GET',
      '*auth*',
    ]);
    expect(r.stderr).toBe('');
    // A RESP3 map: redis-cli prints each setting and its value on one line.
    expect(r.stdout).toContain(`masterauth ${HIDDEN}\n`);
    for (const s of secrets()) expect(r.stdout).not.toContain(s);
  });
});

describe('refused with -NOPERM naming jitgate', () => {
  it.each([
    [['ACL', 'LIST']],
    [['ACL', 'GETUSER', 'gateway']],
    [['ACL', 'DRYRUN', 'gateway', 'GET', 'k']],
    [['ACL', 'LOG']],
    [['ACL', 'USERS']],
    [['ACL', 'SETUSER', 'backdoor', 'on', '>pw', '+@all', '~*']],
    [['ACL', 'SETUSER', 'gateway', '>known']],
    [['ACL', 'DELUSER', 'gateway']],
    [['ACL', 'SAVE']],
    [['CONFIG', 'SET', 'requirepass', 'mine']],
    [['CONFIG', 'SET', 'maxmemory', '0', 'masterauth', 'mine']],
    [['CONFIG', 'REWRITE']],
    [['REPLICAOF', '127.0.0.1', '1']],
    [['SLAVEOF', '127.0.0.1', '1']],
    [['FAILOVER', 'TO', '127.0.0.1', '1']],
    [['SLOWLOG', 'GET']],
    [['MONITOR']],
  ])('%j', async (command) => {
    const c = await client();
    await expect(c.call(...(command as [string, ...string[]]))).rejects.toThrow(/^NOPERM jitgate: /);
  });

  it('and nothing changed on the backend', async () => {
    expect(await direct.call('ACL', 'USERS')).toEqual(['default', 'gateway']);
    expect(await direct.config('GET', 'requirepass')).toEqual(['requirepass', redis.users.default.password]);
    expect(await direct.config('GET', 'masterauth')).toEqual(['masterauth', MASTER_SECRET]);
    expect(await direct.info('replication')).toContain('role:master');
  });

  it('while what reveals nothing goes on working', async () => {
    const c = await client();
    expect(await c.call('ACL', 'WHOAMI')).toBe('gateway');
    expect(await c.call('SLOWLOG', 'LEN')).toEqual(expect.any(Number));
    expect(await c.config('SET', 'maxmemory-samples', '5')).toBe('OK');
  });
});

describe('other sessions on the shared backend user', () => {
  it("CLIENT LIST shows only the session's own connection; CLIENT KILL of another is refused", async () => {
    const alice = await client('alice');
    const bob = await client('bob');
    await bob.client('SETNAME', 'bobs-session');
    const bobId = String(await bob.client('ID'));
    const list = String(await alice.client('LIST'));
    expect(list.trim().split('\n')).toHaveLength(1);
    expect(list).not.toContain('bobs-session');
    await expect(alice.call('CLIENT', 'LIST', 'ID', bobId)).rejects.toThrow(/^NOPERM jitgate: /);
    await expect(alice.call('CLIENT', 'KILL', 'ID', bobId)).rejects.toThrow(/^NOPERM jitgate: /);
    await expect(alice.call('CLIENT', 'KILL', 'USER', 'gateway')).rejects.toThrow(/^NOPERM jitgate: /);
    expect(await bob.ping()).toBe('PONG');
  });
});

describe('recordings', () => {
  it("hold none of the backend's secrets", async () => {
    const c = await client('carol');
    await c.config('GET', '*');
    await c.config('GET', 'requirepass');
    await c.call('ACL', 'LIST').catch(() => undefined);
    await c.call('CONFIG', 'SET', 'requirepass', 'chosen').catch(() => undefined);
    await c.quit();
    const session = await until(
      () =>
        gw.gateway.recording.repo.search({ user: 'carol', limit: 5 }).find((s) => s.endedAt !== null && s.recording?.state !== 'recording'),
      10_000,
      "carol's recording",
    );
    const file = filesUnder(gw.gateway.recording.config.dir).find((f) => f.includes(session.id));
    expect(file).toBeDefined();
    const text = file!.endsWith('.gz') ? decompressed(file!) : (await import('node:fs')).readFileSync(file!, 'utf8');
    expect(text).toContain(HIDDEN);
    for (const s of secrets()) expect(text).not.toContain(s);
  });
});
