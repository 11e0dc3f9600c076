/**
 * The bytes the PostgreSQL relay forwards are the bytes it parsed (issue 11, item 0, for
 * PostgreSQL): a client byte stream of simple queries, an extended-protocol batch and COPY FROM
 * STDIN data is cut at every offset and in random chunkings, and a capturing backend must receive
 * exactly that stream, with and without a guardrail that makes the gateway parse every statement.
 * The capturing backend speaks just enough of the protocol to log the gateway in (trust), then
 * records everything it receives.
 */
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from '../src/protocols/postgres/codec.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { rawLogin, type RawSession } from './support/raw-client.js';

/** A backend that logs anyone in and keeps what each connection sent after its StartupMessage. */
class CapturingBackend {
  readonly server = net.createServer((socket) => this.accept(socket));
  readonly captured: Buffer[][] = [];

  listen(): Promise<number> {
    return new Promise((resolve) => this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as net.AddressInfo).port)));
  }

  private accept(socket: net.Socket): void {
    const chunks: Buffer[] = [];
    let pending = Buffer.alloc(0);
    let started = false;
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      if (started) {
        chunks.push(Buffer.from(chunk));
        return;
      }
      pending = Buffer.concat([pending, chunk]);
      if (pending.length < 4 || pending.length < pending.readInt32BE(0)) return;
      const rest = pending.subarray(pending.readInt32BE(0));
      started = true;
      this.captured.push(chunks);
      if (rest.length) chunks.push(Buffer.from(rest));
      socket.write(Buffer.concat([authOk(), keyData(), ready()]));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function authOk(): Buffer {
  const b = Buffer.alloc(9);
  b.write('R', 0);
  b.writeInt32BE(8, 1);
  b.writeInt32BE(0, 5);
  return b;
}

function keyData(): Buffer {
  const b = Buffer.alloc(13);
  b.write('K', 0);
  b.writeInt32BE(12, 1);
  b.writeInt32BE(4242, 5);
  b.writeInt32BE(99, 9);
  return b;
}

function ready(): Buffer {
  return Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);
}

/** CopyData / CopyDone frames (not in the gateway's codec builders, which speak for the server side). */
function frame(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function bind(statement: string, values: string[]): Buffer {
  const parts = [Buffer.from('\0' + statement + '\0'), Buffer.from([0, 0]), int16(values.length)];
  for (const v of values) {
    const bytes = Buffer.from(v);
    parts.push(int32(bytes.length), bytes);
  }
  parts.push(Buffer.from([0, 0]));
  return frame('B', Buffer.concat(parts));
}

function int16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

/** Simple queries, an extended-protocol batch and COPY FROM STDIN data, as one client stream. */
const STREAM = Buffer.concat([
  build.query("select 'héllo \r\n', 1"),
  build.parse('s1', 'select $1::text, pg_typeof($1)'),
  bind('s1', ['*3\r\n$3\r\nSET\r\n']),
  frame('D', Buffer.from('P\0')),
  frame('E', Buffer.concat([Buffer.from('\0'), int32(0)])),
  frame('S', Buffer.alloc(0)),
  build.query('copy t from stdin'),
  frame('d', Buffer.from('1\tone\n2\ttwo\n')),
  frame('d', Buffer.from('3\tthree\n')),
  frame('c', Buffer.alloc(0)),
  build.query('select 2; select 3'),
]);

let server: PgServer;
let gw: TestGateway;
let backend: CapturingBackend;

beforeAll(async () => {
  server = await startPostgres();
  backend = new CapturingBackend();
  const port = await backend.listen();
  gw = await startTestGateway(server, {
    extraConnections: [
      `{ name: capture, host: 127.0.0.1, port: ${port}, database: capture, user: capture, tls: { mode: disable } }`,
      `{ name: capture-ruled, host: 127.0.0.1, port: ${port}, database: capture, user: capture, tls: { mode: disable } }`,
    ],
    extraYaml: `
guardrails:
  - name: parse-everything
    connections: [capture-ruled]
    deny: { kinds: [truncate] }
`,
  });
});

afterAll(async () => {
  await gw?.close();
  await backend?.close();
  await server?.cleanup();
});

/** Logs in through the gateway, writes the stream in these chunks, and returns what the backend got. */
async function relay(connection: string, cuts: number[]): Promise<Buffer> {
  const session: RawSession = await rawLogin({
    host: gw.host,
    port: gw.port,
    user: 'alice',
    connection,
    token: await gw.token({ connection }),
  });
  const chunks = backend.captured.at(-1)!;
  session.socket.setNoDelay(true);
  let from = 0;
  for (const cut of [...cuts, STREAM.length]) {
    if (cut <= from) continue;
    await new Promise<void>((resolve) => session.socket.write(STREAM.subarray(from, cut), () => setImmediate(resolve)));
    from = cut;
  }
  await expect
    .poll(() => Buffer.concat(chunks).length, { timeout: 10_000, message: 'the whole stream to reach the client' })
    .toBeGreaterThanOrEqual(STREAM.length);
  session.socket.destroy();
  return Buffer.concat(chunks).subarray(0, STREAM.length);
}

describe('the relay forwards exactly the bytes it parsed', () => {
  it.each(['capture', 'capture-ruled'])(
    'cut once at every offset (%s)',
    async (connection) => {
      for (let at = 1; at < STREAM.length; at++) {
        const got = await relay(connection, [at]);
        expect(got.equals(STREAM), `cut at ${at}`).toBe(true);
      }
    },
    300_000,
  );

  it.each(['capture', 'capture-ruled'])(
    'random chunkings (%s)',
    async (connection) => {
      await fc.assert(
        fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: STREAM.length - 1 }), { maxLength: 25 }), async (cuts) => {
          const got = await relay(
            connection,
            cuts.sort((a, b) => a - b),
          );
          expect(got.equals(STREAM)).toBe(true);
        }),
        { numRuns: 40 },
      );
    },
    300_000,
  );
});
