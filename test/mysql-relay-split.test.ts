/**
 * Property: however the client's byte stream is cut into reads, the MySQL relay forwards to the
 * backend exactly the bytes of the commands it parsed and decided, in order, and nothing else. The
 * relay runs between a test client and a real MariaDB reached through a capturing TCP proxy; the
 * client's stream is cut at every offset (and at random for a query over 16 MB, which travels as
 * continuation packets), each cut delivered as a separate read of the relay's client socket.
 */
import { randomInt } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BackendTarget, Decision, SessionPipeline, Statement } from '../src/core/types.js';
import { connectMysqlBackend } from '../src/protocols/mysql/backend.js';
import { Cap, Command } from '../src/protocols/mysql/packets.js';
import { MysqlRelay } from '../src/protocols/mysql/relay.js';
import { startMariadb, type MariadbServer } from './support/mysql-server.js';

let my: MariadbServer;
let proxy: net.Server;
/** Bytes each proxied connection sent to MariaDB, by connection order. */
const captured: Buffer[][] = [];

beforeAll(async () => {
  my = await startMariadb();
  proxy = net.createServer((inbound) => {
    const log: Buffer[] = [];
    captured.push(log);
    const outbound = net.connect(my.port, '127.0.0.1');
    inbound.on('data', (d: Buffer) => {
      log.push(Buffer.from(d));
      outbound.write(d);
    });
    outbound.on('data', (d: Buffer) => inbound.write(d));
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
    inbound.on('error', () => outbound.destroy());
    outbound.on('error', () => inbound.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
}, 60_000);

afterAll(async () => {
  await new Promise((r) => proxy?.close(r));
  await my?.cleanup();
});

const CAPABILITIES =
  Cap.PROTOCOL_41 |
  Cap.SECURE_CONNECTION |
  Cap.TRANSACTIONS |
  Cap.MULTI_RESULTS |
  Cap.MULTI_STATEMENTS |
  Cap.DEPRECATE_EOF |
  Cap.LONG_PASSWORD;

function target(): BackendTarget {
  const port = (proxy.address() as net.AddressInfo).port;
  return {
    connection: 'app',
    protocol: 'mysql',
    host: '127.0.0.1',
    port,
    database: 'app',
    user: my.users.native.user,
    password: my.users.native.password,
    tls: { mode: 'disable' },
    connectTimeoutMs: 10_000,
  };
}

/** Packets of one command, split into continuation packets of at most 0xffffff bytes as clients do. */
function commandPackets(payload: Buffer): Buffer {
  const parts: Buffer[] = [];
  let seq = 0;
  let pos = 0;
  for (;;) {
    const n = Math.min(0xffffff, payload.length - pos);
    const head = Buffer.alloc(4);
    head.writeUIntLE(n, 0, 3);
    head[3] = seq++ & 0xff;
    parts.push(head, payload.subarray(pos, pos + n));
    pos += n;
    if (n < 0xffffff) break;
  }
  return Buffer.concat(parts);
}

function query(sql: string): Buffer {
  return commandPackets(Buffer.concat([Buffer.from([Command.QUERY]), Buffer.from(sql, 'utf8')]));
}

const PING = commandPackets(Buffer.from([Command.PING]));

interface Run {
  forwarded: Buffer;
  decided: string[];
}

/** One relay session: the stream delivered in the given reads; resolves when the backend has everything. */
async function relayRun(reads: Buffer[], expectedLength: number): Promise<Run> {
  const before = captured.length;
  const backend = await connectMysqlBackend(target(), { clientCapabilities: CAPABILITIES });
  const log = captured[before]!;
  const loginBytes = log.reduce((n, b) => n + b.length, 0);
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const relaySide = await accepted;
  server.close();
  client.resume();
  const decided: string[] = [];
  const pipeline: SessionPipeline = {
    id: 'split-test',
    decide(statement: Statement): Decision {
      decided.push(statement.text);
      return { effect: 'allow', reasons: [] };
    },
    end: () => undefined,
  };
  const relay = new MysqlRelay({
    client: relaySide,
    backend: backend.socket,
    pipeline,
    capabilities: backend.capabilities,
    connection: 'app',
    backendDatabase: 'app',
    isOtherConnection: () => false,
    localFilesAllowed: false,
    serverVersion: backend.serverVersion,
    kill: () => Promise.resolve(undefined),
    onEnd: () => undefined,
    onError: () => undefined,
  });
  relay.start(Buffer.alloc(0), backend.leftover);
  // Each cut is one read of the client socket, as the kernel could deliver it.
  for (const r of reads) relaySide.emit('data', r);
  const forwardedLength = () => log.reduce((n, b) => n + b.length, 0) - loginBytes;
  await expect.poll(forwardedLength, { timeout: 30_000, interval: 5, message: 'everything sent to be forwarded' }).toBe(expectedLength);
  const forwarded = Buffer.concat(log).subarray(loginBytes);
  client.destroy();
  relaySide.destroy();
  backend.socket.destroy();
  return { forwarded, decided };
}

describe('MySQL relay: bytes forwarded equal bytes parsed, however the stream is cut', () => {
  it('at every offset of a stream of several commands', { timeout: 300_000 }, async () => {
    const texts = ["SELECT 'a;b' AS x /*! , 2 */", 'SELECT 1; SELECT 2', 'DO 1'];
    const stream = Buffer.concat([query(texts[0]!), PING, query(texts[1]!), query(texts[2]!)]);
    for (let cut = 1; cut < stream.length; cut++) {
      const run = await relayRun([stream.subarray(0, cut), stream.subarray(cut)], stream.length);
      expect(run.forwarded.equals(stream), `cut at ${cut}`).toBe(true);
      expect(run.decided, `cut at ${cut}`).toEqual(texts);
    }
  });

  it('in random reads, byte by byte at the start, of a query over 16 MB (continuation packets)', { timeout: 300_000 }, async () => {
    const big = `SELECT LENGTH('${'x'.repeat(0xffffff + 1000)}') AS n`;
    const stream = Buffer.concat([query(big), query('SELECT 3')]);
    expect(stream.readUIntLE(0, 3)).toBe(0xffffff);
    for (let round = 0; round < 3; round++) {
      const reads: Buffer[] = [];
      let pos = 0;
      // The header of the first and of the continuation packet cut byte by byte, the rest at random.
      for (const edge of [0, 4 + 0xffffff]) {
        for (; pos < edge + 5; pos++) reads.push(stream.subarray(pos, pos + 1));
        const next = Math.min(stream.length, edge === 0 ? 4 + 0xffffff : stream.length);
        while (pos < next) {
          const n = Math.min(next - pos, randomInt(1, 4 * 1024 * 1024));
          reads.push(stream.subarray(pos, pos + n));
          pos += n;
        }
      }
      const run = await relayRun(reads, stream.length);
      expect(run.forwarded.equals(stream), `round ${round}`).toBe(true);
      expect(run.decided).toEqual([big, 'SELECT 3']);
    }
  });
});
