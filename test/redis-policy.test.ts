/**
 * Redis sessions under the gateway's policy: guardrails by command, category, key and read-only
 * (refusals are NOPERM errors naming the rule, in order with the other replies, voiding a
 * transaction), recordings that replay like redis-cli, revocation and kill ending live sessions,
 * and TLS on the Redis listener.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cli } from './support/recording.js';
import { startRedis, type RedisServer } from './support/redis-server.js';
import { blockedClients, redisCli, startRedisGateway, type RedisTestGateway } from './support/redis-gateway.js';
import { waitUntil } from './support/wait.js';

let redis: RedisServer;
let gw: RedisTestGateway;
const clients: Redis[] = [];

beforeAll(async () => {
  redis = await startRedis();
  gw = await startRedisGateway(redis, {
    extraConnections: [
      `{ name: cache-ro, type: redis, host: 127.0.0.1, port: ${redis.port}, user: ${redis.users.gateway.user}, password: env:REDIS_GW, tls: { mode: disable } }`,
      `{ name: cache-reviewed, type: redis, host: 127.0.0.1, port: ${redis.port}, user: ${redis.users.gateway.user}, password: env:REDIS_GW, tls: { mode: disable } }`,
    ],
    extraYaml: `
guardrails:
  - name: cache-safety
    connections: [cache]
    deny:
      commands: [flushall, flushdb, keys, "config|set"]
      categories: [scripting]
      keys: ["secret:*"]
    reason: ask the cache owner
  - name: read-only-cache
    connections: [cache-ro]
    deny: { readOnly: true }
reviews:
  - name: reviewed-writes
    connections: [cache-reviewed]
    match: { writes: true }
    approval: { approvers: [dba] }
`,
  });
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await gw?.close();
  await redis?.stop();
});

async function client(connection = 'cache', token?: string): Promise<Redis> {
  token ??= await gw.token({ connection });
  const c = new Redis({
    host: gw.host,
    port: gw.port,
    username: `alice@${connection}`,
    password: token,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  c.on('error', () => undefined);
  clients.push(c);
  await new Promise<void>((resolve, reject) => {
    c.once('ready', resolve);
    c.once('end', () => reject(new Error('connection ended')));
  });
  return c;
}

describe('guardrails', () => {
  it('refuses denied commands, categories and keys with NOPERM naming the rule', async () => {
    const c = await client();
    await expect(c.flushall()).rejects.toThrow(
      'NOPERM jitgate: command refused by guardrail "cache-safety": FLUSHALL is not allowed (command_denied) — ask the cache owner',
    );
    await expect(c.config('SET', 'maxmemory', '1')).rejects.toThrow(/CONFIG\|SET is not allowed \(command_denied\)/);
    // CONFIG GET is another subcommand: not denied.
    expect(await c.config('GET', 'maxmemory')).toEqual(['maxmemory', '0']);
    await expect(c.eval('return 1', 0)).rejects.toThrow(/EVAL is in the @scripting category \(category_denied\)/);
    await expect(c.get('secret:token')).rejects.toThrow(/GET touches key "secret:token" \(key_denied\)/);
    // Keys found by Redis's key specs, wherever they sit in the command.
    await expect(c.mset('ok', '1', 'secret:x', '2')).rejects.toThrow(/MSET touches key "secret:x"/);
    await expect(c.call('XREAD', 'COUNT', '1', 'STREAMS', 'stream-a', 'secret:s', '0', '0')).rejects.toThrow(
      /XREAD touches key "secret:s"/,
    );
    // SORT ... GET reads keys by pattern: key rules cannot be checked, so it is refused.
    await expect(c.sort('public:list', 'BY', 'nosort', 'GET', 'secret:*')).rejects.toThrow(
      /SORT can read keys it does not name.*\(key_denied\)/,
    );
    await expect(c.call('NOSUCHCOMMAND', 'x')).rejects.toThrow(/"NOSUCHCOMMAND" is not a command jitgate knows.*\(unknown_command\)/);
    // The refused command was never run.
    expect(await c.exists('ok')).toBe(0);
    expect(await c.set('public:x', '1')).toBe('OK');
  });

  it('a refusal in a pipeline comes back in its place; in MULTI it voids the transaction', async () => {
    const c = await client();
    const results = (await c.pipeline().set('a1', '1').get('secret:a').get('a1').exec())!;
    expect(results[0]).toEqual([null, 'OK']);
    expect(String(results[1]![0])).toMatch(/NOPERM .*key_denied/);
    expect(results[2]).toEqual([null, '1']);

    await expect(c.multi().set('tx1', 'x').flushdb().set('tx2', 'y').exec()).rejects.toThrow(/EXECABORT/);
    expect(await c.exists('tx1', 'tx2')).toBe(0);
  });

  it('read-only connections refuse every write', async () => {
    const c = await client('cache-ro');
    expect(await c.get('public:x')).toBe('1');
    await expect(c.set('public:x', '2')).rejects.toThrow(
      'NOPERM jitgate: command refused by guardrail "read-only-cache": SET writes on a read-only connection (read_only)',
    );
    await expect(c.del('public:x')).rejects.toThrow(/read_only/);
  });
});

describe('statement reviews', () => {
  it('a write is held until approved; pipelined commands behind it wait; reads are not held', async () => {
    const c = await client('cache-reviewed');
    expect(await c.get('reviewed:k')).toBeNull();
    const held = c.set('reviewed:k', 'v');
    const after = c.get('reviewed:k');
    let review: { id: string } | undefined;
    const dba = { user: 'dora', groups: ['dba'], kind: 'human' as const, via: 'session' };
    await vi.waitFor(() => {
      review = gw.gateway.reviews.list(dba).find((r) => r.state === 'pending');
      expect(review, 'a pending review of the held SET').toBeDefined();
    });
    gw.gateway.reviews.approve(dba, review!.id);
    expect(await held).toBe('OK');
    expect(await after).toBe('v');
  });
});

describe('recording', () => {
  it('replays a redis-cli session as redis-cli printed it, with the refusals', async () => {
    const token = await gw.token({ user: 'rita' });
    const r = await redisCli(
      ['--no-raw', '-h', gw.host, '-p', String(gw.port), '--user', 'rita@cache', '--pass', token, '--no-auth-warning'],
      {
        input: 'SET fruit "apple pie"\nGET fruit\nRPUSH basket a b\nLRANGE basket 0 -1\nGET secret:pin\nGET nothing\n',
      },
    );
    expect(r.stdout).toContain('"apple pie"');
    let session: { id: string } | undefined;
    await vi.waitFor(
      () => {
        session = gw.gateway.recording.repo
          .search({ user: 'rita', limit: 5 })
          .find((s) => s.endedAt !== null && s.recording?.state !== 'recording');
        expect(session, "rita's recording to be closed").toBeDefined();
      },
      { timeout: 10_000 },
    );
    const replay = await cli(['replay', session!.id, '--data-dir', gw.dataDir]);
    expect(replay.err).toBe('');
    const body = replay.out
      .split('\n')
      .filter((l) => !l.startsWith('--'))
      .join('\n');
    expect(body).toContain(
      [
        'cache> SET fruit "apple pie"',
        'OK',
        'cache> GET fruit',
        '"apple pie"',
        'cache> RPUSH basket a b',
        '(integer) 2',
        'cache> LRANGE basket 0 -1',
        '1) "a"',
        '2) "b"',
        'cache> GET secret:pin',
        '(error) NOPERM jitgate: command refused by guardrail "cache-safety": GET touches key "secret:pin" (key_denied) — ask the cache owner',
        'cache> GET nothing',
        '(nil)',
      ].join('\n'),
    );
    expect(replay.out).toMatch(/-- jitgate: statement \d+ refused \(key_denied; rule cache-safety/);
    // The token never reaches the recording.
    expect(replay.out).not.toContain(token);
  });
});

describe('session lifecycle', () => {
  it('revoking the grant ends a live session, even one blocked in BLPOP', async () => {
    const { token, grantId } = await gw.issue();
    const c = await client('cache', token);
    const ended = new Promise<void>((resolve) => c.once('end', () => resolve()));
    const blocked = c.blpop('never-filled', 30).catch((e: Error) => e);
    await waitUntil('BLPOP to block on the backend', async () => (await blockedClients(redis)) === 1);
    await gw.gateway.access.revoke({ user: 'alice', groups: [], kind: 'human', via: 'session' }, grantId, 'done for today');
    const err = await blocked;
    expect(String(err)).toMatch(/revoked by alice: done for today/);
    await ended;
    const s = (await gw.gateway.store.listSessions({ user: 'alice' })).find((x) => x.endReason === 'revoked');
    expect(s).toBeDefined();
    // And its token opens nothing any more.
    const again = await redisCli([
      '-h',
      gw.host,
      '-p',
      String(gw.port),
      '--user',
      'alice@cache',
      '--pass',
      token,
      '--no-auth-warning',
      'PING',
    ]);
    expect(again.stdout + again.stderr).toMatch(/NOPERM jitgate: access grant \w+ was revoked by alice: done for today/);
  });

  it('an administrator kill ends the session', async () => {
    const c = await client();
    await c.client('SETNAME', 'to-be-killed');
    const live = (await gw.gateway.store.listSessions({ active: true })).filter((s) => s.protocol === 'redis');
    expect(live.length).toBeGreaterThan(0);
    const ended = new Promise<void>((resolve) => c.once('end', () => resolve()));
    for (const s of live) gw.gateway.recording.kill(s.id, 'admin', 'maintenance');
    await ended;
  });

  it('TLS: redis-cli --tls reaches the same listener', async () => {
    const token = await gw.token();
    const r = await redisCli(
      ['--tls', '--insecure', '-h', gw.host, '-p', String(gw.port), '--user', 'alice@cache', '--pass', token, '--no-auth-warning'],
      {
        input: 'SET over-tls yes\nGET over-tls\n',
      },
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('OK\nyes\n');
  });
});
