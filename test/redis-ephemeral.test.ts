/**
 * Ephemeral Redis credentials: each session logs in to Redis as an ACL user made for it (with the
 * configured rules only), removed with its connections when the session ends; the janitor removes
 * users a crashed gateway left behind and never touches a look-alike without jitgate's mark.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisAclAdmin } from '../src/credentials/ephemeral/redis-acl.js';
import { formatMark, roleNameFor } from '../src/credentials/ephemeral/role-sql.js';
import { startRedis, type RedisServer } from './support/redis-server.js';
import { startRedisGateway, type RedisTestGateway } from './support/redis-gateway.js';

let redis: RedisServer;
let gw: RedisTestGateway;
let direct: Redis;

beforeAll(async () => {
  redis = await startRedis();
  gw = await startRedisGateway(redis, {
    cacheOptions: 'credentials: { mode: ephemeral, acl: ["+@all", "-flushall", "~app:*", "&*"] }',
  });
  direct = new Redis({ host: redis.host, port: redis.port, username: redis.users.gateway.user, password: redis.users.gateway.password });
}, 60_000);

afterAll(async () => {
  direct?.disconnect();
  await gw?.close();
  await redis?.stop();
});

const sessionUsers = async () => ((await direct.call('ACL', 'USERS')) as string[]).filter((u) => u.startsWith('jitgate_'));

describe('ephemeral ACL users', () => {
  it('a session runs as its own ACL user with the configured rules, removed when it ends', async () => {
    const c = new Redis({
      host: gw.host,
      port: gw.port,
      username: 'alice@cache',
      password: await gw.token(),
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    c.on('error', () => undefined);
    const me = (await c.call('ACL', 'WHOAMI')) as string;
    expect(me).toMatch(/^jitgate_[0-9a-f]{12}$/);
    expect(await sessionUsers()).toEqual([me]);
    // Its permissions are the configured rules: app:* keys only, no FLUSHALL.
    expect(await c.set('app:x', '1')).toBe('OK');
    await expect(c.set('other:x', '1')).rejects.toThrow(/NOPERM/);
    await expect(c.flushall()).rejects.toThrow(/NOPERM/);
    // The password lives nowhere but the session: not in the user's rules.
    const rules = JSON.stringify(await direct.call('ACL', 'GETUSER', me));
    expect(rules).toContain('jitgate-mark:');
    // RESET logs back in as the session's user, not Redis's default user.
    expect(await c.call('RESET')).toBe('RESET');
    expect(await c.call('ACL', 'WHOAMI')).toBe(me);
    c.disconnect();
    await vi.waitFor(async () => expect(await sessionUsers(), 'the session users to be dropped').toEqual([]), { timeout: 10_000 });
  });

  it("the janitor removes a crashed session's user and leaves a look-alike alone", async () => {
    const target = {
      connection: 'cache',
      protocol: 'redis' as const,
      host: redis.host,
      port: redis.port,
      database: '0',
      user: redis.users.gateway.user,
      password: redis.users.gateway.password,
      tls: { mode: 'disable' as const },
      connectTimeoutMs: 5000,
    };
    const admin = new RedisAclAdmin(target);
    const repo = gw.gateway.credentials.repository;
    const session = randomUUID();
    const name = roleNameFor('jitgate_', session);
    const comment = formatMark({ gateway: repo.gatewayId(), connection: 'cache', session, user: 'crashed' });
    repo.recordCreating({
      connection: 'cache',
      name,
      sessionId: session,
      user: 'crashed',
      validUntil: Date.now() + 60_000,
      createdAt: Date.now(),
    });
    await admin.create({
      name,
      password: 'left-behind',
      passwordVerifier: '',
      validUntil: Date.now() + 60_000,
      memberOf: ['+@read', '~*'],
      comment,
    });
    await direct.call('ACL', 'SETUSER', 'jitgate_lookalike', 'on', '>x', '+@read');
    expect((await sessionUsers()).sort()).toEqual([name, 'jitgate_lookalike'].sort());
    await gw.gateway.credentials.sweep();
    expect(await sessionUsers()).toEqual(['jitgate_lookalike']);
    await direct.call('ACL', 'DELUSER', 'jitgate_lookalike');
  });
});
