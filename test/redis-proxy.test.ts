/**
 * The Redis listener end to end: redis-cli and ioredis through jitgate to a private Redis, with
 * the user name choosing the connection (alice@cache) and a jitgate token as the password.
 */
import { connect } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from './support/redis-server.js';
import { blockedClients, redisCli, startRedisGateway, type RedisTestGateway } from './support/redis-gateway.js';
import { waitUntil } from './support/wait.js';

let redis: RedisServer;
let gw: RedisTestGateway;
const clients: Redis[] = [];

beforeAll(async () => {
  redis = await startRedis();
  gw = await startRedisGateway(redis);
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await gw?.close();
  await redis?.stop();
});

async function client(opts: { user?: string; token?: string; lazy?: boolean } = {}): Promise<Redis> {
  const c = new Redis({
    host: gw.host,
    port: gw.port,
    username: opts.user ?? 'alice@cache',
    password: opts.token ?? (await gw.token()),
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    lazyConnect: opts.lazy ?? false,
  });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

async function ready(c: Redis): Promise<Redis> {
  if (c.status !== 'ready')
    await new Promise<void>((resolve, reject) => {
      c.once('ready', resolve);
      c.once('end', () => reject(new Error('connection ended')));
    });
  return c;
}

/** Raw RESP over a socket: what a minimal client sends and receives, byte for byte. */
function raw(input: string | Buffer, opts: { waitFor?: (s: string) => boolean; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: gw.host, port: gw.port });
    let out = '';
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(out);
    };
    const timer = setTimeout(done, opts.timeoutMs ?? 3000);
    s.on('data', (d) => {
      out += d.toString('latin1');
      if (opts.waitFor?.(out)) done();
    });
    s.on('close', done);
    s.on('error', done);
    s.write(input);
  });
}

describe('authentication', () => {
  it('redis-cli logs in with --user person@connection --pass token and runs commands', async () => {
    const token = await gw.token();
    const r = await redisCli(['-h', gw.host, '-p', String(gw.port), '--user', 'alice@cache', '--pass', token, '--no-auth-warning'], {
      input: 'SET greeting hello\nGET greeting\nDEL greeting\n',
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('OK\nhello\n1\n');
  });

  it('RESP3: HELLO 3 AUTH answers with the server map and replies come in RESP3 types', async () => {
    const token = await gw.token();
    const r = await redisCli(
      ['-3', '--no-raw', '-h', gw.host, '-p', String(gw.port), '--user', 'alice@cache', '--pass', token, '--no-auth-warning'],
      {
        input: 'HSET h3 f v\nHGETALL h3\n',
      },
    );
    expect(r.stdout).toContain('1# "f" => "v"');
    const out = await raw(`HELLO 3 AUTH alice@cache ${token}\r\n`, { waitFor: (s) => s.includes('proto') && s.includes('modules') });
    expect(out.startsWith('%')).toBe(true);
    expect(out).toContain(':3\r\n');
  });

  it('a wrong token is WRONGPASS; a token alone names nobody; commands before AUTH get NOAUTH', async () => {
    const bad = await raw('AUTH alice@cache jg_wrong\r\n', { waitFor: (s) => s.includes('\r\n') });
    expect(bad).toBe('-WRONGPASS invalid username-password pair or user is disabled.\r\n');
    const alone = await raw(`AUTH ${await gw.token()}\r\n`, { waitFor: (s) => s.includes('\r\n') });
    expect(alone).toMatch(/^-WRONGPASS jitgate: a token alone does not say who you are: send AUTH <user>@<connection> <token>/);
    const early = await raw('PING\r\nGET x\r\nHELLO 3\r\n', { waitFor: (s) => s.split('\r\n').length > 3 });
    expect(early).toBe(
      '+PONG\r\n-NOAUTH Authentication required.\r\n' +
        '-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n',
    );
  });

  it('PING with an argument before AUTH echoes its bytes exactly, whatever they are', async () => {
    const arg = Buffer.from([0x68, 0xe9, 0xff, 0x00, 0x80]);
    const command = Buffer.concat([Buffer.from('*2\r\n$4\r\nPING\r\n$5\r\n'), arg, Buffer.from('\r\n*1\r\n$4\r\nPING\r\n')]);
    const out = await raw(command, { waitFor: (s) => s.endsWith('+PONG\r\n') });
    expect(Buffer.from(out, 'latin1')).toEqual(Buffer.concat([Buffer.from('$5\r\n'), arg, Buffer.from('\r\n+PONG\r\n')]));
  });

  it('a token for another person or connection does not open this one', async () => {
    const bobs = await gw.token({ user: 'bob' });
    const out = await raw(`AUTH alice@cache ${bobs}\r\n`, { waitFor: (s) => s.includes('\r\n') });
    expect(out).toMatch(/^-WRONGPASS/);
    // With one Redis connection configured, a name without a known connection is a user name.
    const unknown = await raw(`AUTH alice@nowhere ${await gw.token()}\r\n`, { waitFor: (s) => s.includes('\r\n') });
    expect(unknown).toBe('-WRONGPASS invalid username-password pair or user is disabled.\r\n');
  });

  it('ioredis connects and works (AUTH, then its own ready check)', async () => {
    const c = await ready(await client());
    await c.set('io:key', 'value');
    expect(await c.get('io:key')).toBe('value');
    c.disconnect();
  });
});

describe('relay', () => {
  it('pipelining: many commands in one write, replies in order', async () => {
    const c = await ready(await client());
    const p = c.pipeline();
    for (let i = 0; i < 200; i++) p.set(`p:${i}`, String(i));
    for (let i = 0; i < 200; i++) p.get(`p:${i}`);
    const results = (await p.exec())!;
    expect(results.slice(0, 200).every(([err, v]) => err === null && v === 'OK')).toBe(true);
    expect(results.slice(200).map(([, v]) => v)).toEqual(Array.from({ length: 200 }, (_, i) => String(i)));
  });

  it('MULTI/EXEC runs as a transaction', async () => {
    const c = await ready(await client());
    const res = await c.multi().set('tx:a', '1').incr('tx:a').get('tx:a').exec();
    expect(res).toEqual([
      [null, 'OK'],
      [null, 2],
      [null, '2'],
    ]);
  });

  it('pub/sub: SUBSCRIBE and PSUBSCRIBE receive messages published by another session', async () => {
    const sub = await ready(await client());
    const pub = await ready(await client());
    const got: string[] = [];
    sub.on('message', (ch: string, msg: string) => got.push(`${ch}:${msg}`));
    sub.on('pmessage', (pat: string, ch: string, msg: string) => got.push(`${pat}>${ch}:${msg}`));
    await sub.subscribe('news', 'sport');
    await sub.psubscribe('n*');
    await pub.publish('news', 'hello');
    await pub.publish('sport', 'goal');
    await waitUntil('three published messages to arrive', () => got.length >= 3, { seen: () => got });
    expect(got.sort()).toEqual(['n*>news:hello', 'news:hello', 'sport:goal']);
    await sub.unsubscribe('news', 'sport');
    await sub.punsubscribe('n*');
    // Out of subscribed mode, ordinary commands work again on the same connection.
    expect(await sub.ping()).toBe('PONG');
  });

  it('pub/sub in RESP3: push messages arrive while ordinary commands still work', async () => {
    const token = await gw.token();
    const publisher = await ready(await client());
    const out = raw(`HELLO 3 AUTH alice@cache ${token}\r\nSUBSCRIBE r3\r\nPING\r\n`, {
      waitFor: (s) => s.includes('r3-message'),
      timeoutMs: 5000,
    });
    // Published only once the raw session is subscribed (else the message goes nowhere).
    await waitUntil(
      'the RESP3 session to subscribe to r3',
      async () => ((await publisher.pubsub('NUMSUB', 'r3')) as [string, number])[1] === 1,
    );
    await publisher.publish('r3', 'r3-message');
    const text = await out;
    expect(text).toContain('>3\r\n$9\r\nsubscribe\r\n$2\r\nr3\r\n:1\r\n');
    expect(text).toContain('+PONG\r\n');
    expect(text).toContain('>3\r\n$7\r\nmessage\r\n$2\r\nr3\r\n$10\r\nr3-message\r\n');
  });

  it('blocking commands wait for data pushed by another session', async () => {
    const waiter = await ready(await client());
    const pusher = await ready(await client());
    const popped = waiter.blpop('queue', 5);
    await waitUntil('BLPOP to block on the backend', async () => blockedClients(redis).then((n) => n === 1));
    await pusher.rpush('queue', 'job-1');
    expect(await popped).toEqual(['queue', 'job-1']);
  });

  it('large values stream through both ways intact', async () => {
    const c = await ready(await client());
    const big = Buffer.alloc(20 * 1024 * 1024, 'x');
    big.write('start', 0);
    big.write('end', big.length - 3);
    await c.set('big', big);
    const back = await c.getBuffer('big');
    expect(back?.length).toBe(big.length);
    expect(back?.equals(big)).toBe(true);
  });

  it('SELECT switches databases for the session; RESET keeps the gateway credential', async () => {
    const c = await ready(await client());
    await c.select(3);
    await c.set('in3', 'yes');
    expect(await c.get('in3')).toBe('yes');
    expect(await c.call('RESET')).toBe('RESET');
    // Back in database 0, still logged in as the gateway's user (not Redis's default user).
    expect(await c.get('in3')).toBeNull();
    expect(await c.call('ACL', 'WHOAMI')).toBe('gateway');
  });

  it('CLIENT commands: own ones pass, LIST shows only this session, KILL is refused', async () => {
    const c = await ready(await client());
    await ready(await client());
    await c.client('SETNAME', 'mine');
    expect(await c.client('GETNAME')).toBe('mine');
    const id = await c.client('ID');
    const list = (await c.client('LIST')) as string;
    expect(list.trim().split('\n')).toHaveLength(1);
    expect(list).toContain(`id=${id} `);
    await expect(c.client('KILL', 'TYPE', 'normal')).rejects.toThrow(/NOPERM jitgate: CLIENT KILL/);
    await expect(c.call('MONITOR')).rejects.toThrow(/NOPERM jitgate: MONITOR/);
  });

  it('QUIT ends the session politely', async () => {
    const out = await raw(`AUTH alice@cache ${await gw.token()}\r\nQUIT\r\n`, { waitFor: (s) => s === '+OK\r\n+OK\r\n' });
    expect(out).toBe('+OK\r\n+OK\r\n');
  });
});

describe('TLS required', () => {
  it('outside development mode a plaintext login is refused before the token is checked; TLS works', async () => {
    const own = await startRedisGateway(redis, { development: false });
    try {
      const token = await own.token();
      const plain = await new Promise<string>((resolve) => {
        const s = connect({ host: own.host, port: own.port });
        let out = '';
        s.on('data', (d) => (out += d));
        s.on('close', () => resolve(out));
        s.write(`AUTH alice@cache ${token}\r\n`);
      });
      expect(plain).toBe('-NOAUTH jitgate requires an encrypted connection: connect with TLS (redis-cli --tls)\r\n');
      const r = await redisCli([
        '--tls',
        '--insecure',
        '-h',
        own.host,
        '-p',
        String(own.port),
        '--user',
        'alice@cache',
        '--pass',
        token,
        '--no-auth-warning',
        'PING',
      ]);
      expect(r.stdout).toBe('PONG\n');
    } finally {
      await own.close();
    }
  });
});

describe('shutdown', () => {
  it('drains: a command in flight finishes, then each session ends with a message', async () => {
    const own = await startRedisGateway(redis);
    const mk = async () => {
      const c = new Redis({
        host: own.host,
        port: own.port,
        username: 'alice@cache',
        password: await own.token(),
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      c.on('error', () => undefined);
      clients.push(c);
      return ready(c);
    };
    const idle = await mk();
    const busy = await mk();
    const ended = (c: Redis) => new Promise<void>((resolve) => c.once('end', () => resolve()));
    const both = Promise.all([ended(idle), ended(busy)]);
    const popped = busy.blpop('drain-queue', 1);
    await waitUntil('BLPOP to block on the backend', async () => blockedClients(redis).then((n) => n === 1));
    const closing = own.close();
    // The blocked command is answered (its 1 s timeout), not cut off.
    expect(await popped).toBeNull();
    await both;
    // Each session was accounted for as it ended (before the store closes with the gateway).
    const reasons = (await own.gateway.store.listSessions({ user: 'alice' })).map((x) => x.endReason);
    await closing;
    expect(reasons).toEqual(['gateway_shutdown', 'gateway_shutdown']);
  });
});

describe('bad input', () => {
  it('malformed RESP gets a protocol error and the connection closes; others are unaffected', async () => {
    const token = await gw.token();
    const c = await ready(await client());
    const bad = await raw(`AUTH alice@cache ${token}\r\n*2\r\n$3\r\nGET\r\n:1\r\n`);
    expect(bad).toBe("+OK\r\n-ERR Protocol error: expected '$', got ':'\r\n");
    const huge = await raw(`AUTH alice@cache ${token}\r\n*1\r\n$999999999999\r\n`);
    expect(huge).toBe('+OK\r\n-ERR Protocol error: invalid bulk length\r\n');
    const preAuthBig = await raw(`*2\r\n$4\r\nAUTH\r\n$100000\r\n`);
    expect(preAuthBig).toBe('-ERR Protocol error: invalid bulk length\r\n');
    expect(await c.ping()).toBe('PONG');
  });

  /** Sends `input` and resolves once the gateway closes the connection (bounded). */
  function untilClosed(input: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: gw.host, port: gw.port });
      let out = '';
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`the gateway did not close the connection; got ${JSON.stringify(out)}`));
      }, 5000);
      s.on('data', (d) => (out += d.toString('latin1')));
      s.on('error', () => undefined);
      s.on('close', () => {
        clearTimeout(timer);
        resolve(out);
      });
      s.write(Buffer.from(input, 'latin1'));
    });
  }

  it.each([
    ['a negative bulk length', '*1\r\n$-5\r\n', 'invalid bulk length'],
    ['a null bulk string from a client', '*1\r\n$-1\r\n', 'invalid bulk length'],
    ['a negative multibulk count', '*-5\r\n', 'invalid multibulk length'],
    ['a huge multibulk count', '*99999999999\r\n', 'invalid multibulk length'],
    ['a huge bulk length', '*1\r\n$99999999999999999999\r\n', 'invalid bulk length'],
    ['a non-digit count', '*2x\r\n', 'invalid multibulk length'],
    ['a non-digit bulk length', '*1\r\n$ 4\r\nPING\r\n', 'invalid bulk length'],
    ['a nested array', '*1\r\n*1\r\n$4\r\nPING\r\n', "expected '$', got '*'"],
    ['a bulk string not ended by CRLF', '*1\r\n$4\r\nPINGxx*1\r\n$8\r\nFLUSHALL\r\n', 'bulk string not terminated by CRLF'],
    ['a NUL byte in an inline command', 'PING\0\r\n', 'NUL byte in inline request'],
    ['unbalanced quotes', 'SET k "v\r\n', 'unbalanced quotes in request'],
  ])('%s: the commands before it are answered, then -ERR Protocol error, then the connection closes', async (_what, bad, message) => {
    const c = await ready(await client());
    await c.set('robust', 'kept');
    const out = await untilClosed(`AUTH alice@cache ${await gw.token()}\r\nPING\r\n${bad}PING\r\n`);
    expect(out).toBe(`+OK\r\n+PONG\r\n-ERR Protocol error: ${message}${message.startsWith('NUL') ? ' (jitgate)' : ''}\r\n`);
    // Nothing after the bad input ran, and the gateway goes on serving others.
    expect(await c.get('robust')).toBe('kept');
    expect(await c.ping()).toBe('PONG');
  });

  it('a client that never finishes logging in is dropped after the handshake timeout; others go on meanwhile', async () => {
    const { RedisListener } = await import('../src/protocols/redis/listener.js');
    const unused = () => {
      throw new Error('not reached');
    };
    const listener = new RedisListener({
      host: '127.0.0.1',
      port: 0,
      tls: null,
      tlsRequired: false,
      verifier: { verifyCleartext: async () => undefined },
      connections: () => ['cache'],
      resolveTarget: () => undefined,
      openSession: unused,
      acquireBackend: unused,
      onAuthFailure: () => undefined,
      onBackendConnect: () => undefined,
      log: { info: () => undefined, warn: () => undefined, error: () => undefined },
      handshakeTimeoutMs: 300,
    });
    await listener.listen();
    try {
      const silent = new Promise<string>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: listener.port });
        let out = '';
        s.on('data', (d) => (out += d));
        s.on('close', () => resolve(out));
        // Half a command, never finished.
        s.write('*2\r\n$4\r\nAUTH\r\n$10\r\nabc');
      });
      const c = await ready(await client());
      expect(await c.ping()).toBe('PONG');
      expect(await silent).toBe('-ERR jitgate: authentication timed out\r\n');
    } finally {
      await listener.close(100);
    }
  });

  it('bounded fuzz: random bytes never crash the gateway or stall other sessions', async () => {
    const c = await ready(await client());
    const token = await gw.token();
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const pieces = ['*', '$', ':', '\r\n', '-1', '3', '99', 'GET', 'x', '\x00', '"', ' '];
    for (let i = 0; i < 25; i++) {
      let junk = '';
      for (let j = 0; j < 30; j++) junk += pieces[Math.floor(rand() * pieces.length)];
      await raw(`AUTH alice@cache ${token}\r\n${junk}`, { timeoutMs: 300 });
      expect(await c.ping()).toBe('PONG');
    }
  });
});
