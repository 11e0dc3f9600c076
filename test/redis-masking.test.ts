/**
 * Masking on Redis sessions: values by key pattern, hash values by field name, content detectors,
 * in every reply shape (bulk, MGET arrays, HGETALL flat and RESP3 maps, HSCAN, lists, EXEC,
 * pub/sub messages, SCAN keys), and replies too large to inspect refused rather than passed.
 */
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from './support/redis-server.js';
import { redisCli, startRedisGateway, type RedisTestGateway } from './support/redis-gateway.js';

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
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  direct?.disconnect();
  await gw?.close();
  await redis?.stop();
});

async function client(): Promise<Redis> {
  const c = new Redis({ host: gw.host, port: gw.port, username: 'alice@cache', password: gw.token(), maxRetriesPerRequest: 0, retryStrategy: () => null });
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
    await expect(c.getbit('user:1:email', 3)).rejects.toThrow(/GETBIT would read the masked key "user:1:email" bit by bit \(masking_unprovable\)/);
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
    const r = await redisCli(['-3', '--no-raw', '-h', gw.host, '-p', String(gw.port), '--user', 'alice@cache', '--pass', gw.token(), '--no-auth-warning'], {
      input: 'HGETALL person:1\nGET user:1:email\n',
    });
    expect(r.stdout).toContain('2# "ssn" => "*******6789"');
    expect(r.stdout).toContain('"j*******@example.com"');
    expect(r.stdout).not.toContain('123-45-6789');
  });

  it('EXEC results are masked by the command each came from', async () => {
    const c = await client();
    const res = await c.multi().get('user:1:name').get('user:1:email').hget('person:1', 'ssn').exec();
    expect(res).toEqual([[null, 'Jane'], [null, 'j*******@example.com'], [null, '*******6789']]);
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
    for (let i = 0; i < 100 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual(['token:events=[redacted]', 'chat=mail me at [email]']);
  });
});

describe('RESP3 pushes', () => {
  it('a pushed message is masked by its channel', async () => {
    const pub = await client();
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
      s.write(`HELLO 3 AUTH alice@cache ${gw.token()}\r\nSUBSCRIBE token:push\r\n`);
      setTimeout(() => {
        s.destroy();
        resolve(out);
      }, 5000);
    });
    for (let i = 0; i < 50; i++) {
      if ((await pub.publish('token:push', 'tok-secret')) > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const out = await got;
    expect(out).toContain('>3\r\n$7\r\nmessage\r\n$10\r\ntoken:push\r\n$10\r\n[redacted]\r\n');
    expect(out).not.toContain('tok-secret');
  });
});

describe('fail closed', () => {
  it('refuses copying masked values where they would not be masked, and reads it cannot follow', async () => {
    const c = await client();
    await expect(c.copy('user:1:email', 'plain:copy')).rejects.toThrow(
      'NOPERM jitgate: COPY would copy masked values of "user:1:email" to "plain:copy", where they are not masked the same way (masking_copy)',
    );
    await expect(c.rename('user:1:email', 'plain:renamed')).rejects.toThrow(/masking_copy/);
    await expect(c.lmove('token:list', 'plain:list', 'LEFT', 'LEFT')).rejects.toThrow(/masking_copy/);
    await expect(c.sunionstore('plain:set', 'token:list')).rejects.toThrow(/masking_copy/);
    await expect(c.eval("return redis.call('GET', 'user:1:email')", 0)).rejects.toThrow(/EVAL can read values jitgate cannot follow.*\(masking_unprovable\)/);
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
