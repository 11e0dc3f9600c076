/**
 * Masking on Redis sessions: values by key pattern, hash values by field name, content detectors,
 * in every reply shape (bulk, MGET arrays, HGETALL flat and RESP3 maps, HSCAN, lists, EXEC,
 * pub/sub messages, SCAN keys), and replies too large to inspect refused rather than passed.
 */
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { luhnValid } from '../src/masking/detectors.js';
import { startRedis, type RedisServer } from './support/redis-server.js';
import { redisCli, startRedisGateway, type RedisTestGateway } from './support/redis-gateway.js';
import { waitUntil } from './support/wait.js';

let redis: RedisServer;
let gw: RedisTestGateway;
let direct: Redis;
const clients: Redis[] = [];

beforeAll(async () => {
  redis = await startRedis();
  gw = await startRedisGateway(redis, {
    extraYaml: `
masking:
  rules:
    - name: cache-pii
      connections: [cache]
      keys:
        "user:*:email": email
        "token:*": redact
      fields:
        ssn: { strategy: partial, keep: 4 }
  detectors:
    - connections: [cache]
      use: [email, card]
`,
  });
  direct = new Redis({ host: redis.host, port: redis.port, username: redis.users.gateway.user, password: redis.users.gateway.password });
  await direct.mset('user:1:email', 'jane.doe@example.com', 'user:1:name', 'Jane', 'token:api', 'tok-123456');
  await direct.hset('person:1', 'name', 'Jane', 'ssn', '123-45-6789');
  await direct.set('note', 'paid with 4111 1111 1111 1111 yesterday');
  await direct.set('contact:bob@example.com', '1');
  await direct.rpush('token:list', 'a-secret', 'b-secret');
  await direct.set('token:count', '42');
  await direct.zadd('token:z', 1.5, 'alpha', 2.5, 'beta');
  await direct.sadd('token:members', 'one', 'two');
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  direct?.disconnect();
  await gw?.close();
  await redis?.stop();
});

async function client(): Promise<Redis> {
  const c = new Redis({
    host: gw.host,
    port: gw.port,
    username: 'alice@cache',
    password: await gw.token(),
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  c.on('error', () => undefined);
  clients.push(c);
  await new Promise<void>((resolve, reject) => {
    c.once('ready', resolve);
    c.once('end', () => reject(new Error('connection ended')));
  });
  return c;
}

describe('masking by key and field', () => {
  it('bulk values and MGET items by key pattern', async () => {
    const c = await client();
    expect(await c.get('user:1:email')).toBe('j*******@example.com');
    expect(await c.get('token:api')).toBe('[redacted]');
    expect(await c.get('user:1:name')).toBe('Jane');
    expect(await c.mget('user:1:name', 'user:1:email', 'token:api')).toEqual(['Jane', 'j*******@example.com', '[redacted]']);
    expect(await c.lrange('token:list', 0, -1)).toEqual(['[redacted]', '[redacted]']);
  });

  it('set scans keep their cursor; derived reads are redacted; bit reads of masked keys are refused', async () => {
    const c = await client();
    await direct.sadd('token:set', 'one', 'two');
    const [cursor, members] = await c.sscan('token:set', 0);
    expect(cursor).toBe('0');
    expect(members).toEqual(['[redacted]', '[redacted]']);
    expect(await c.getrange('user:1:email', 0, 0)).toBe('[redacted]');
    await expect(c.getbit('user:1:email', 3)).rejects.toThrow(
      /GETBIT would read the masked key "user:1:email" bit by bit \(masking rule "cache-pii", masking_unprovable\)/,
    );
  });

  it('hash values by field name: HGET, HMGET, HGETALL, HSCAN', async () => {
    const c = await client();
    expect(await c.hget('person:1', 'ssn')).toBe('*******6789');
    expect(await c.hmget('person:1', 'name', 'ssn')).toEqual(['Jane', '*******6789']);
    expect(await c.hgetall('person:1')).toEqual({ name: 'Jane', ssn: '*******6789' });
    const [, found] = await c.hscan('person:1', 0);
    expect(found).toEqual(['name', 'Jane', 'ssn', '*******6789']);
  });

  it('RESP3 maps are masked too (redis-cli -3)', async () => {
    const r = await redisCli(
      ['-3', '--no-raw', '-h', gw.host, '-p', String(gw.port), '--user', 'alice@cache', '--pass', await gw.token(), '--no-auth-warning'],
      {
        input: 'HGETALL person:1\nGET user:1:email\n',
      },
    );
    expect(r.stdout).toContain('2# "ssn" => "*******6789"');
    expect(r.stdout).toContain('"j*******@example.com"');
    expect(r.stdout).not.toContain('123-45-6789');
  });

  it('EXEC results are masked by the command each came from', async () => {
    const c = await client();
    const res = await c.multi().get('user:1:name').get('user:1:email').hget('person:1', 'ssn').exec();
    expect(res).toEqual([
      [null, 'Jane'],
      [null, 'j*******@example.com'],
      [null, '*******6789'],
    ]);
  });
});

describe('content detectors', () => {
  it('scrub values and the keys SCAN returns', async () => {
    const c = await client();
    expect(await c.get('note')).toBe('paid with [card] yesterday');
    const keys: string[] = [];
    let cursor = '0';
    for (let i = 0; i < 50; i++) {
      const [next, batch] = await c.scan(cursor, 'MATCH', 'contact:*');
      keys.push(...batch);
      cursor = next;
      if (cursor === '0') break;
    }
    expect(keys).toEqual(['contact:[email]']);
  });

  it('pub/sub payloads: by channel pattern and by detectors', async () => {
    const sub = await client();
    const pub = await client();
    const got: string[] = [];
    sub.on('message', (ch: string, msg: string) => got.push(`${ch}=${msg}`));
    await sub.subscribe('token:events', 'chat');
    await pub.publish('token:events', 'tok-999');
    await pub.publish('chat', 'mail me at bob@example.com');
    await waitUntil('both published messages to arrive', () => got.length >= 2, { seen: () => got });
    expect(got).toEqual(['token:events=[redacted]', 'chat=mail me at [email]']);
  });
});

describe('RESP3 pushes', () => {
  it('a pushed message is masked by its channel', async () => {
    const pub = await client();
    const auth = await gw.token();
    const got = new Promise<string>((resolve) => {
      const s = connect({ host: gw.host, port: gw.port });
      let out = '';
      s.on('data', (d) => {
        out += d.toString('latin1');
        if (out.includes('token:push\r\n$10\r\n[redacted]')) {
          s.destroy();
          resolve(out);
        }
      });
      s.write(`HELLO 3 AUTH alice@cache ${auth}\r\nSUBSCRIBE token:push\r\n`);
      setTimeout(() => {
        s.destroy();
        resolve(out);
      }, 5000);
    });
    // Published once the raw session is subscribed, else the message reaches nobody.
    await waitUntil(
      'the RESP3 session to subscribe to token:push',
      async () => ((await pub.pubsub('NUMSUB', 'token:push')) as [string, number])[1] === 1,
    );
    expect(await pub.publish('token:push', 'tok-secret')).toBe(1);
    const out = await got;
    expect(out).toContain('>3\r\n$7\r\nmessage\r\n$10\r\ntoken:push\r\n$10\r\n[redacted]\r\n');
    expect(out).not.toContain('tok-secret');
  });
});

describe('fail closed', () => {
  it('refuses copying masked values where they would not be masked, and reads it cannot follow', async () => {
    const c = await client();
    await expect(c.copy('user:1:email', 'plain:copy')).rejects.toThrow(
      'NOPERM jitgate: COPY would copy masked values of "user:1:email" to "plain:copy", where they are not masked the same way (masking rule "cache-pii", masking_copy)',
    );
    await expect(c.rename('user:1:email', 'plain:renamed')).rejects.toThrow(/masking_copy/);
    await expect(c.lmove('token:list', 'plain:list', 'LEFT', 'LEFT')).rejects.toThrow(/masking_copy/);
    await expect(c.sunionstore('plain:set', 'token:list')).rejects.toThrow(/masking_copy/);
    await expect(c.eval("return redis.call('GET', 'user:1:email')", 0)).rejects.toThrow(
      /EVAL can read values jitgate cannot follow.*\(masking rule "cache-pii", masking_unprovable\)/,
    );
    await expect(c.sort('plain:list', 'BY', 'nosort', 'GET', 'user:*:email')).rejects.toThrow(/masking_unprovable/);
    expect(await direct.exists('plain:copy', 'plain:renamed', 'plain:list', 'plain:set')).toBe(0);
    // Copies between keys the same rule masks are fine.
    expect(await c.copy('user:1:email', 'user:2:email')).toBe(1);
    expect(await c.get('user:2:email')).toBe('j*******@example.com');
  });

  it('MONITOR is refused and a reply too large to inspect is refused, not passed', async () => {
    const c = await client();
    await expect(c.call('MONITOR')).rejects.toThrow(/NOPERM jitgate: MONITOR/);
    await direct.set('huge', Buffer.alloc(17 * 1024 * 1024, 'a'));
    await expect(c.get('huge')).rejects.toThrow(/ERR jitgate: the reply is larger than 16777216 bytes .* and cannot be masked; refused/);
    // The session goes on.
    expect(await c.get('user:1:name')).toBe('Jane');
  });
});

/**
 * Bypass attempts: commands whose answer (mostly an integer, which no strategy can stand in for)
 * says something about a masked value. Each is refused before it reaches Redis, naming the rule.
 */
describe('facts about masked values are refused (bypass attempts)', () => {
  const attempts: Array<[string, string[]]> = [
    ['STRLEN', ['STRLEN', 'user:1:email']],
    ['INCRBY k 0', ['INCRBY', 'token:count', '0']],
    ['DECRBY k 0', ['DECRBY', 'token:count', '0']],
    ['INCRBYFLOAT k 0', ['INCRBYFLOAT', 'token:count', '0']],
    ['INCR', ['INCR', 'token:count']],
    ['APPEND (returns the new length)', ['APPEND', 'token:api', '']],
    ['SETRANGE (returns the length)', ['SETRANGE', 'token:api', '0', '']],
    ['GETBIT', ['GETBIT', 'user:1:email', '3']],
    ['BITCOUNT', ['BITCOUNT', 'user:1:email']],
    ['BITPOS', ['BITPOS', 'user:1:email', '1']],
    ['BITFIELD_RO', ['BITFIELD_RO', 'user:1:email', 'GET', 'u8', '0']],
    ['OBJECT ENCODING', ['OBJECT', 'ENCODING', 'token:count']],
    ['OBJECT REFCOUNT', ['OBJECT', 'REFCOUNT', 'token:count']],
    ['DEBUG OBJECT', ['DEBUG', 'OBJECT', 'user:1:email']],
    ['DEBUG DIGEST-VALUE', ['DEBUG', 'DIGEST-VALUE', 'user:1:email']],
    ['MEMORY USAGE', ['MEMORY', 'USAGE', 'user:1:email']],
    ['DUMP', ['DUMP', 'user:1:email']],
    ['LCS ... LEN', ['LCS', 'user:1:email', 'user:1:name', 'LEN']],
    ['LPOS', ['LPOS', 'token:list', 'a-secret']],
    ['LREM (count of equal items)', ['LREM', 'token:list', '0', 'guess']],
    ['LINSERT (finds its pivot)', ['LINSERT', 'token:list', 'BEFORE', 'a-secret', 'x']],
    ['SISMEMBER', ['SISMEMBER', 'token:members', 'one']],
    ['SMISMEMBER', ['SMISMEMBER', 'token:members', 'one', 'two']],
    ['SADD (0 when already a member)', ['SADD', 'token:members', 'one']],
    ['SREM', ['SREM', 'token:members', 'guess']],
    ['SMOVE', ['SMOVE', 'token:members', 'token:other', 'one']],
    ['SINTER with guesses', ['SINTER', 'token:members', 'plain:guesses']],
    ['SINTERCARD', ['SINTERCARD', '2', 'token:members', 'plain:guesses']],
    ['ZSCORE', ['ZSCORE', 'token:z', 'alpha']],
    ['ZRANK', ['ZRANK', 'token:z', 'alpha']],
    ['ZLEXCOUNT', ['ZLEXCOUNT', 'token:z', '[a', '[b']],
    ['ZRANGEBYLEX', ['ZRANGEBYLEX', 'token:z', '[a', '[b']],
    ['ZRANGE ... BYLEX', ['ZRANGE', 'token:z', '[a', '[b', 'BYLEX']],
    ['ZCOUNT', ['ZCOUNT', 'token:z', '1', '2']],
    ['ZADD NX (0 when already a member)', ['ZADD', 'token:z', 'NX', '9', 'alpha']],
    ['ZINCRBY 0', ['ZINCRBY', 'token:z', '0', 'alpha']],
    ['SORT (orders the values)', ['SORT', 'token:list', 'ALPHA']],
    ['PFCOUNT', ['PFCOUNT', 'token:hll']],
    ['GEOPOS', ['GEOPOS', 'token:geo', 'here']],
    ['HSTRLEN of a masked field', ['HSTRLEN', 'person:1', 'ssn']],
    ['HINCRBY of a masked field', ['HINCRBY', 'person:1', 'ssn', '0']],
    ['HINCRBYFLOAT of a masked field', ['HINCRBYFLOAT', 'person:1', 'ssn', '0']],
    ['DUMP of a hash with masked fields', ['DUMP', 'person:1']],
    ['MEMORY USAGE of a hash with masked fields', ['MEMORY', 'USAGE', 'person:1']],
    ['OBJECT ENCODING of a hash with masked fields', ['OBJECT', 'ENCODING', 'person:1']],
  ];

  it.each(attempts)('%s', async (_what, [name, ...rest]) => {
    const c = await client();
    await expect(c.call(name!, ...rest)).rejects.toThrow(/^NOPERM jitgate: .*\(masking rule "cache-pii", masking_(unprovable|copy)\)$/);
  });

  it('nothing of them reached Redis, and what says nothing about the values still works', async () => {
    expect(await direct.lrange('token:list', 0, -1)).toEqual(['a-secret', 'b-secret']);
    expect((await direct.smembers('token:members')).sort()).toEqual(['one', 'two']);
    expect(await direct.get('token:count')).toBe('42');
    expect(await direct.zscore('token:z', 'alpha')).toBe('1.5');
    const c = await client();
    expect(await c.strlen('user:1:name')).toBe(4);
    expect(await c.hstrlen('person:1', 'name')).toBe(4);
    expect(await c.exists('user:1:email')).toBe(1);
    expect(await c.type('token:list')).toBe('list');
    expect(await c.ttl('token:api')).toBe(-1);
    expect(await c.llen('token:list')).toBe(2);
    expect(await c.scard('token:members')).toBe(2);
    expect(await c.hexists('person:1', 'ssn')).toBe(1);
    expect(await c.zrange('token:z', 0, -1)).toEqual(['[redacted]', '[redacted]']);
    expect(await c.set('token:new', 'v')).toBe('OK');
    expect(await c.get('token:new')).toBe('[redacted]');
  });

  it('RESP3 scores of a masked sorted set are masked as RESP2 sends them', async () => {
    const r = await redisCli(
      ['-3', '--no-raw', '-h', gw.host, '-p', String(gw.port), '--user', 'alice@cache', '--pass', await gw.token(), '--no-auth-warning'],
      {
        input: 'ZRANGE token:z 0 -1 WITHSCORES\n',
      },
    );
    expect(r.stdout).not.toMatch(/1\.5|2\.5/);
    expect(r.stdout).toContain('[redacted]');
  });
});

describe('stream IDs are identifiers, not values (detectors on)', () => {
  /** Stream IDs whose digits pass the Luhn check: the card detector would take each for a card. */
  const luhnIds = (count: number): string[] => {
    const out: string[] = [];
    for (let ms = 1_700_000_000_000; out.length < count && ms < 1_700_000_010_000; ms++) if (luhnValid(`${ms}0`)) out.push(`${ms}-0`);
    return out;
  };

  it('XADD, XRANGE, XREADGROUP, XPENDING, XCLAIM, XACK and XDEL work with IDs that pass Luhn; values are still scrubbed', async () => {
    const c = await client();
    const [a, b, d] = luhnIds(3) as [string, string, string];
    expect(await c.xadd('orders:stream', a, 'note', 'paid with 4111 1111 1111 1111')).toBe(a);
    expect(await c.xadd('orders:stream', b, 'note', 'plain')).toBe(b);
    expect(await c.xadd('orders:stream', d, 'note', 'third')).toBe(d);
    const range = (await c.xrange('orders:stream', '-', '+')) as Array<[string, string[]]>;
    expect(range.map(([id]) => id)).toEqual([a, b, d]);
    expect(range[0]![1]).toEqual(['note', 'paid with [card]']);
    expect(await c.xgroup('CREATE', 'orders:stream', 'workers', '0')).toBe('OK');
    const read = (await c.xreadgroup('GROUP', 'workers', 'w1', 'COUNT', 10, 'STREAMS', 'orders:stream', '>')) as Array<
      [string, Array<[string, string[]]>]
    >;
    const ids = read[0]![1].map(([id]) => id);
    expect(ids).toEqual([a, b, d]);
    const pending = (await c.xpending('orders:stream', 'workers')) as [number, string, string, unknown];
    expect(pending.slice(0, 3)).toEqual([3, a, d]);
    expect((await c.xclaim('orders:stream', 'workers', 'w2', 0, b, 'JUSTID')) as string[]).toEqual([b]);
    expect(await c.xack('orders:stream', 'workers', ...ids)).toBe(3);
    expect(await c.xdel('orders:stream', a)).toBe(1);
    const info = (await c.xinfo('STREAM', 'orders:stream')) as unknown[];
    expect(info[info.indexOf('last-generated-id') + 1]).toBe(d);
  });
});
