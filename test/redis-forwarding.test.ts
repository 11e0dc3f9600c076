/**
 * What reaches the Redis backend is exactly what the gateway parsed and decided, however the
 * client's bytes are cut into chunks (issue 11, item 0: a command split right after a `\r\n` was
 * forwarded as a stale slice of the next chunk, and Redis ran its tail as inline commands).
 *
 *  - Property, through the relay's real forwarding path: a relay between a client socket (whose
 *    chunks the test chooses) and a TCP backend that records every byte it receives. At every
 *    two-way split and at random chunkings of pipelines (RESP arrays, inline commands, values
 *    bigger than a chunk, a smuggling payload inside a value), the backend receives exactly the
 *    bytes of the allowed commands, and the pipeline decided exactly the commands sent.
 *  - End to end with a real redis-server: a raw client that pauses after each `\r\n` inside
 *    `SET carrier <value with FLUSHALL\r\n>` under a guardrail denying FLUSHALL loses no data and
 *    stores the whole value; `redis-cli --pipe` and big ioredis pipelines lose no command.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Decision, SessionPipeline } from '../src/core/types.js';
import { RedisRelay } from '../src/protocols/redis/relay.js';
import { CommandReader, encodeCommand, splitInline } from '../src/protocols/redis/resp.js';
import { chunkings, everyTwoWaySplit, lineEnds } from './support/chunkings.js';
import { redisCli, startRedisGateway, type RedisTestGateway } from './support/redis-gateway.js';
import { startRedis, type RedisServer } from './support/redis-server.js';

// ---------------------------------------------------------------------------------------------
// The relay against a recording backend

interface Sent {
  args: string[];
  /** The bytes the client sends. */
  bytes: Buffer;
  inline: boolean;
}

const resp = (...args: string[]): Sent => ({ args, bytes: encodeCommand(args.map((a) => Buffer.from(a, 'latin1'))), inline: false });
const inline = (line: string, end = '\r\n'): Sent => ({ args: splitInline(line), bytes: Buffer.from(line + end, 'latin1'), inline: true });
/** The arguments as the pipeline sees them (statement argv: UTF-8). */
const argvOf = (c: Sent): string[] => c.args.map((a) => Buffer.from(a, 'latin1').toString('utf8'));
/** What the backend must receive for a command the gateway forwards. */
const forwardedForm = (c: Sent): Buffer => (c.inline ? encodeCommand(c.args.map((a) => Buffer.from(a, 'latin1'))) : c.bytes);

/** A TCP "backend" that keeps every byte it is sent, per connection. */
class RecordingBackend {
  private readonly server: Server;
  private readonly received = new Map<number, Buffer[]>();
  private next = 0;
  port = 0;

  constructor() {
    this.server = createServer((s) => {
      const parts: Buffer[] = [];
      this.received.set(this.next++, parts);
      s.on('data', (d: Buffer) => parts.push(d));
      s.on('error', () => undefined);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
  }

  bytes(connection: number): Buffer {
    return Buffer.concat(this.received.get(connection) ?? []);
  }

  get connections(): number {
    return this.next;
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** Accepted client sockets, to hand to relays (the test feeds them chunks as 'data' events). */
class Front {
  private readonly server: Server;
  private readonly waiting: Array<(s: Socket) => void> = [];
  port = 0;

  constructor() {
    this.server = createServer((s) => {
      s.on('error', () => undefined);
      this.waiting.shift()?.(s);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** A connected pair: the client end (unused but kept open) and the gateway's accepted end. */
  async pair(): Promise<{ client: Socket; accepted: Socket }> {
    const accepted = new Promise<Socket>((r) => this.waiting.push(r));
    const client = connect(this.port, '127.0.0.1');
    client.on('error', () => undefined);
    client.resume();
    return { client, accepted: await accepted };
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

const allow: Decision = { effect: 'allow', reasons: [] };
const denyFlush: Decision = { effect: 'deny', reasons: ['guardrail'], message: 'jitgate: FLUSHALL is denied' };

let recording: RecordingBackend;
let front: Front;

/**
 * Runs one relay: feeds `chunks` to it as the client's reads and returns what the backend got and
 * which commands the pipeline decided. FLUSHALL is refused (as a guardrail would).
 */
async function relayOnce(chunks: Buffer[], expectedBytes: number): Promise<{ forwarded: Buffer; decided: string[][] }> {
  const { client, accepted } = await front.pair();
  const backendIndex = recording.connections;
  const backend = connect(recording.port, '127.0.0.1');
  await new Promise<void>((r) => backend.once('connect', () => r()));
  const decided: string[][] = [];
  const pipeline: SessionPipeline = {
    id: 'property',
    decide: (statement) => {
      const argv = [...(statement.argv ?? [])];
      decided.push(argv);
      return argv[0]?.toLowerCase() === 'flushall' ? denyFlush : allow;
    },
    end: () => undefined,
  };
  const relay = new RedisRelay({
    client: accepted,
    backend,
    pipeline,
    reader: new CommandReader(),
    backendClientId: '1',
    reauth: () => [],
    verifyAgain: async () => false,
    masker: null,
    onEnd: () => undefined,
  });
  relay.start([], Buffer.alloc(0));
  // The relay reads what the test says the socket delivered, chunk by chunk.
  for (const chunk of chunks) accepted.emit('data', chunk);
  await vi.waitFor(
    () => expect(recording.bytes(backendIndex).length, 'the backend to receive every byte sent').toBeGreaterThanOrEqual(expectedBytes),
    { timeout: 10_000, interval: 5 },
  );
  relay.terminate('client_quit', 'done');
  client.destroy();
  return { forwarded: recording.bytes(backendIndex), decided };
}

/** The stream of `commands` and what an exact relay forwards of it (FLUSHALL refused). */
function expectation(commands: Sent[]): { input: Buffer; forwarded: Buffer } {
  return {
    input: Buffer.concat(commands.map((c) => c.bytes)),
    forwarded: Buffer.concat(commands.filter((c) => c.args[0]?.toLowerCase() !== 'flushall').map(forwardedForm)),
  };
}

describe('the relay forwards exactly the bytes it parsed and decided', () => {
  beforeAll(async () => {
    recording = new RecordingBackend();
    front = new Front();
    await Promise.all([recording.listen(), front.listen()]);
  });
  afterAll(async () => {
    await Promise.all([recording?.close(), front?.close()]);
  });

  const carrier = resp('SET', 'carrier', 'x\r\nFLUSHALL\r\n*1\r\n$8\r\nFLUSHALL\r\nCONFIG SET requirepass x\r\nGET secret:pin\r\n');
  const pipeline: Sent[] = [
    carrier,
    resp('FLUSHALL'),
    inline('GET "carrier"'),
    resp('RPUSH', 'l', '', '$3', '*2\r\n'),
    inline('PING', '\n'),
    resp('GET', 'carrier'),
  ];

  it('at every two-way split of a pipeline carrying a smuggling payload', async () => {
    const { input, forwarded } = expectation(pipeline);
    for (const { offset, chunks } of everyTwoWaySplit(input)) {
      const got = await relayOnce(chunks, forwarded.length);
      expect(got.forwarded.toString('latin1'), `split at ${offset}`).toBe(forwarded.toString('latin1'));
      expect(got.decided, `split at ${offset}`).toEqual(pipeline.map(argvOf));
    }
  });

  it('when every line of a command arrives in a chunk of its own', async () => {
    const { input, forwarded } = expectation(pipeline);
    const ends = lineEnds(input);
    const chunks = ends.map((end, i) => input.subarray(i === 0 ? 0 : ends[i - 1]!, end));
    const got = await relayOnce(chunks, forwarded.length);
    expect(got.forwarded.toString('latin1')).toBe(forwarded.toString('latin1'));
  });

  it('property: random pipelines and chunkings', async () => {
    const word = fc.stringMatching(/^[A-Za-z0-9:_-]{1,10}$/);
    const tricky = fc.constantFrom('', '\r\n', 'FLUSHALL\r\n', '*1\r\n$8\r\nFLUSHALL\r\n', '$3\r\nSET\r\n', 'GET secret:pin\n', '\xff\0');
    const value = fc.oneof(
      { weight: 4, arbitrary: fc.string({ maxLength: 30 }) },
      { weight: 3, arbitrary: fc.tuple(fc.string({ maxLength: 6 }), tricky, fc.string({ maxLength: 6 })).map((p) => p.join('')) },
      { weight: 1, arbitrary: fc.integer({ min: 1000, max: 200_000 }).map((n) => 'v'.repeat(n)) },
    );
    const command = fc.oneof(
      {
        weight: 4,
        arbitrary: fc
          .tuple(fc.constantFrom('SET', 'GET', 'RPUSH', 'HSET', 'FLUSHALL'), fc.array(value, { maxLength: 4 }))
          .map(([n, rest]) => resp(n, ...rest)),
      },
      { weight: 1, arbitrary: fc.array(word, { minLength: 1, maxLength: 4 }).map((w) => inline(w.join(' '))) },
    );
    await fc.assert(
      fc.asyncProperty(
        fc
          .array(command, { minLength: 1, maxLength: 10 })
          .chain((commands) => fc.tuple(fc.constant(commands), chunkings(expectation(commands).input))),
        async ([commands, chunks]) => {
          const { forwarded } = expectation(commands);
          const got = await relayOnce(chunks, forwarded.length);
          expect(got.forwarded.equals(forwarded)).toBe(true);
          expect(got.decided).toEqual(commands.map(argvOf));
        },
      ),
      { numRuns: 150 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// End to end with a real redis-server

describe('end to end: split commands, pipes and pipelines reach Redis whole', () => {
  let redis: RedisServer;
  let gw: RedisTestGateway;
  let direct: Redis;
  const clients: Redis[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    gw = await startRedisGateway(redis, {
      extraYaml: `
guardrails:
  - name: no-flush
    connections: [cache]
    deny:
      commands: [flushall, flushdb, "config|set"]
      keys: ["secret:*"]
    reason: keep the data
`,
    });
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

  /** A raw client: sends pieces one at a time, each only after the gateway has read the one before. */
  async function rawSession(pieces: Buffer[], replies: number): Promise<string> {
    const s = connect(gw.port, gw.host);
    s.setNoDelay(true);
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString('latin1')));
    s.on('error', () => undefined);
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(`AUTH alice@cache ${await gw.token()}\r\n`);
    await vi.waitFor(() => expect(out, 'the AUTH reply').toBe('+OK\r\n'), { timeout: 10_000 });
    out = '';
    for (const piece of pieces) {
      s.write(piece);
      // A round trip through the same gateway on another connection: the gateway (this process)
      // has read what was written before it, so each piece arrives as a read of its own.
      await barrier();
    }
    const count = (text: string) => (text.match(/\r\n/g) ?? []).length;
    await vi.waitFor(() => expect(count(out), 'every reply of the pipeline').toBeGreaterThanOrEqual(replies), { timeout: 10_000 });
    s.destroy();
    return out;
  }

  let pinger: Redis | undefined;
  async function barrier(): Promise<void> {
    if (!pinger) {
      pinger = new Redis({ host: gw.host, port: gw.port, username: 'alice@cache', password: await gw.token(), maxRetriesPerRequest: 0 });
      pinger.on('error', () => undefined);
      clients.push(pinger);
    }
    expect(await pinger.ping()).toBe('PONG');
  }

  it('a client pausing after any \\r\\n inside SET carrier <value with FLUSHALL> smuggles nothing, and the value is stored whole', async () => {
    const value = 'x\r\nFLUSHALL\r\nCONFIG SET maxmemory 1\r\nSET secret:pin 0000\r\n';
    const set = encodeCommand(['SET', 'carrier', value]);
    await direct.set('survivor', 'still here');
    const ends = lineEnds(set).filter((e) => e < set.length);
    expect(ends.length).toBeGreaterThan(5);
    for (const at of ends) {
      await direct.del('carrier');
      const out = await rawSession([set.subarray(0, at), set.subarray(at)], 1);
      expect(out, `paused after byte ${at}`).toBe('+OK\r\n');
      expect(await direct.get('survivor'), `paused after byte ${at}`).toBe('still here');
      expect(await direct.get('carrier'), `paused after byte ${at}`).toBe(value);
      expect(await direct.exists('secret:pin')).toBe(0);
      expect(await direct.config('GET', 'maxmemory')).toEqual(['maxmemory', '0']);
    }
  });

  it('a command begun in the same write as AUTH and finished after the session started arrives whole', async () => {
    const value = 'y\r\nFLUSHALL\r\n';
    const set = encodeCommand(['SET', 'carrier', value]);
    await direct.set('survivor', 'still here');
    for (const at of lineEnds(set).filter((e) => e < set.length)) {
      await direct.del('carrier');
      const s = connect(gw.port, gw.host);
      let out = '';
      s.on('data', (d: Buffer) => (out += d.toString('latin1')));
      s.on('error', () => undefined);
      await new Promise<void>((r) => s.once('connect', () => r()));
      s.write(Buffer.concat([Buffer.from(`AUTH alice@cache ${await gw.token()}\r\n`), set.subarray(0, at)]));
      await vi.waitFor(() => expect(out, 'the AUTH reply').toBe('+OK\r\n'), { timeout: 10_000 });
      await barrier();
      s.write(set.subarray(at));
      await vi.waitFor(() => expect(out, 'the reply to the SET split across two writes').toBe('+OK\r\n+OK\r\n'), { timeout: 10_000 });
      s.destroy();
      expect(await direct.get('carrier'), `split after byte ${at}`).toBe(value);
      expect(await direct.get('survivor')).toBe('still here');
    }
  });

  it('a client pausing after every line of a FLUSHALL gets the guardrail refusal, and the data survives', async () => {
    await direct.set('survivor', 'still here');
    const flush = encodeCommand(['FLUSHALL']);
    const out = await rawSession([flush.subarray(0, 4), flush.subarray(4, 8), flush.subarray(8)], 1);
    expect(out).toMatch(/^-NOPERM jitgate: .*no-flush/);
    expect(await direct.get('survivor')).toBe('still here');
  });

  it('redis-cli --pipe of 5,000 commands loses none', async () => {
    // Values of many sizes, so the pipe's writes end at every kind of place in a command.
    const commands: Buffer[] = [];
    for (let i = 0; i < 5000; i++) commands.push(encodeCommand(['SET', `pipe:${i}`, 'p'.repeat(i % 97) + '\r\n'.repeat(i % 3)]));
    const r = await redisCli(
      ['-h', gw.host, '-p', String(gw.port), '--user', 'alice@cache', '--pass', await gw.token(), '--no-auth-warning', '--pipe'],
      {
        input: Buffer.concat(commands).toString('latin1'),
        timeoutMs: 60_000,
      },
    );
    expect(r.stdout).toMatch(/errors: 0, replies: 5000/);
    expect(r.code).toBe(0);
    const keys = (await direct.eval("return #redis.call('keys', 'pipe:*')", 0)) as number;
    expect(keys).toBe(5000);
    expect(await direct.get('pipe:4000')).toBe('p'.repeat(4000 % 97) + '\r\n'.repeat(4000 % 3));
  }, 90_000);

  it('large ioredis pipelines all complete, with every reply', async () => {
    const c = new Redis({ host: gw.host, port: gw.port, username: 'alice@cache', password: await gw.token(), maxRetriesPerRequest: 0 });
    c.on('error', () => undefined);
    clients.push(c);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, p) => {
        const pipe = c.pipeline();
        for (let i = 0; i < 1000; i++) pipe.set(`io:${p}:${i}`, 'q'.repeat((i * 7 + p) % 300));
        pipe.get(`io:${p}:999`);
        return pipe.exec();
      }),
    );
    for (const [p, replies] of results.entries()) {
      expect(replies).toHaveLength(1001);
      expect(replies!.slice(0, 1000).every(([err, v]) => err === null && v === 'OK')).toBe(true);
      expect(replies![1000]).toEqual([null, 'q'.repeat((999 * 7 + p) % 300)]);
    }
  }, 60_000);
});
