/**
 * Scripted backends: tiny TCP servers that log the gateway in (PostgreSQL with trust, MySQL with
 * any password) and then answer each query with whatever bytes the test writes, split or cut where
 * the test wants. What a real server rarely does on demand (an error in the middle of a result, a
 * connection dropped in the middle of a row, an answer one byte at a time) is then one line.
 *
 * The messages are built here, independently of the gateway's own codecs, so a test checks the
 * gateway against the protocol as written down, not against itself.
 */
import net from 'node:net';

/** What the test does with one query: write the answer (in pieces, or not at all) on `socket`. */
export type QueryScript = (query: string, socket: net.Socket) => void | Promise<void>;

export interface ScriptedBackend {
  port: number;
  /** Queries received, in order. */
  queries: string[];
  close(): Promise<void>;
}

/** Writes `bytes` in pieces of `size` bytes, each flushed before the next (so that they can arrive apart). */
export async function writeInPieces(socket: net.Socket, bytes: Buffer, size = 1): Promise<void> {
  for (let i = 0; i < bytes.length; i += size) {
    await new Promise<void>((resolve, reject) => socket.write(bytes.subarray(i, i + size), (err) => (err ? reject(err) : resolve())));
    await new Promise((r) => setImmediate(r));
  }
}

function listen(onSocket: (socket: net.Socket) => void): Promise<{ server: net.Server; port: number; sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onSocket(socket);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as net.AddressInfo).port, sockets })),
  );
}

function closer(server: net.Server, sockets: Set<net.Socket>): () => Promise<void> {
  return () => {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => server.close(() => resolve()));
  };
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL (protocol 3.0)

const int16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const cstr = (s: string) => Buffer.from(s + '\0', 'utf8');

/** One typed PostgreSQL message. */
function pgMessage(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from(type, 'latin1'), int32(body.length + 4), body]);
}

/** Backend messages, by name. */
export const pg = {
  rowDescription: (...names: string[]) =>
    pgMessage('T', int16(names.length), ...names.flatMap((n) => [cstr(n), int32(0), int16(0), int32(25), int16(-1), int32(-1), int16(0)])),
  dataRow: (...values: Array<string | null>) =>
    pgMessage(
      'D',
      int16(values.length),
      ...values.flatMap((v) => (v === null ? [int32(-1)] : [int32(Buffer.byteLength(v)), Buffer.from(v, 'utf8')])),
    ),
  commandComplete: (tag: string) => pgMessage('C', cstr(tag)),
  error: (code: string, message: string, severity = 'ERROR') =>
    pgMessage(
      'E',
      Buffer.from('S'),
      cstr(severity),
      Buffer.from('V'),
      cstr(severity),
      Buffer.from('C'),
      cstr(code),
      Buffer.from('M'),
      cstr(message),
      Buffer.from([0]),
    ),
  ready: (status: 'I' | 'T' | 'E' = 'I') => pgMessage('Z', Buffer.from(status, 'latin1')),
  /** A whole answer of text rows to a simple query. */
  rows: (names: string[], rows: Array<Array<string | null>>) =>
    Buffer.concat([
      pg.rowDescription(...names),
      ...rows.map((r) => pg.dataRow(...r)),
      pg.commandComplete(`SELECT ${rows.length}`),
      pg.ready(),
    ]),
};

/** A PostgreSQL server that trusts every login and answers queries with `script`. */
export async function startScriptedPostgres(script: QueryScript): Promise<ScriptedBackend> {
  const queries: string[] = [];
  const { server, port, sockets } = await listen((socket) => {
    let buf = Buffer.alloc(0);
    let started = false;
    let busy = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (!started) {
          if (buf.length < 8) return;
          const len = buf.readInt32BE(0);
          if (buf.length < len) return;
          buf = buf.subarray(len);
          started = true;
          socket.write(
            Buffer.concat([
              pgMessage('R', int32(0)),
              ...Object.entries({
                server_version: '15.0',
                server_encoding: 'UTF8',
                client_encoding: 'UTF8',
                DateStyle: 'ISO, MDY',
                integer_datetimes: 'on',
                standard_conforming_strings: 'on',
              }).map(([k, v]) => pgMessage('S', cstr(k), cstr(v))),
              pgMessage('K', int32(4242), int32(99)),
              pg.ready(),
            ]),
          );
          continue;
        }
        if (buf.length < 5) return;
        const len = buf.readInt32BE(1);
        if (buf.length < 1 + len) return;
        const type = String.fromCharCode(buf[0]!);
        const body = buf.subarray(5, 1 + len);
        buf = buf.subarray(1 + len);
        if (type === 'X') return void socket.end();
        if (type === 'Q') {
          const text = body.toString('utf8', 0, body.length - 1);
          queries.push(text);
          // One answer at a time, in order, as a server would.
          busy = busy.then(() => script(text, socket)).catch(() => void socket.destroy());
        }
      }
    });
  });
  return { port, queries, close: closer(server, sockets) };
}

// ---------------------------------------------------------------------------------------------
// MySQL (protocol 10, 4.1 packets)

/** Capability flags this server offers (the ones a modern client and the gateway ask for). */
const CAP = {
  LONG_PASSWORD: 0x1,
  FOUND_ROWS: 0x2,
  LONG_FLAG: 0x4,
  CONNECT_WITH_DB: 0x8,
  PROTOCOL_41: 0x200,
  TRANSACTIONS: 0x2000,
  SECURE_CONNECTION: 0x8000,
  MULTI_STATEMENTS: 0x10000,
  MULTI_RESULTS: 0x20000,
  PS_MULTI_RESULTS: 0x40000,
  PLUGIN_AUTH: 0x80000,
  CONNECT_ATTRS: 0x100000,
  PLUGIN_AUTH_LENENC_DATA: 0x200000,
  SESSION_TRACK: 0x800000,
  DEPRECATE_EOF: 0x1000000,
};
const SERVER_CAPS = Object.values(CAP).reduce((a, b) => a | b, 0) >>> 0;

function lenenc(n: number): Buffer {
  if (n < 251) return Buffer.from([n]);
  const b = Buffer.alloc(3);
  b[0] = 0xfc;
  b.writeUInt16LE(n, 1);
  return b;
}
const lenencStr = (s: string) => Buffer.concat([lenenc(Buffer.byteLength(s)), Buffer.from(s, 'utf8')]);

/** One MySQL packet: 3-byte length, sequence id, payload. */
export function myPacket(payload: Buffer, seq: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUIntLE(payload.length, 0, 3);
  h[3] = seq & 0xff;
  return Buffer.concat([h, payload]);
}

/** Payloads, by name (sequence ids are the answer's business: see `my.rows`). */
export const my = {
  ok: (status = 0x0002) => Buffer.concat([Buffer.from([0x00, 0, 0]), Buffer.from([status & 0xff, status >> 8, 0, 0])]),
  err: (errno: number, sqlState: string, message: string) => {
    const b = Buffer.alloc(3);
    b[0] = 0xff;
    b.writeUInt16LE(errno, 1);
    return Buffer.concat([b, Buffer.from('#' + sqlState, 'latin1'), Buffer.from(message, 'utf8')]);
  },
  eof: (status = 0x0002) => Buffer.from([0xfe, 0, 0, status & 0xff, status >> 8]),
  /** The result's terminator as an OK packet with the EOF header (CLIENT_DEPRECATE_EOF). */
  okEof: (status = 0x0002) => Buffer.concat([Buffer.from([0xfe, 0, 0]), Buffer.from([status & 0xff, status >> 8, 0, 0])]),
  column: (name: string) =>
    Buffer.concat([
      lenencStr('def'),
      lenencStr('app'),
      lenencStr('t'),
      lenencStr('t'),
      lenencStr(name),
      lenencStr(name),
      Buffer.from([0x0c, 45, 0]),
      Buffer.from([0, 1, 0, 0]),
      Buffer.from([0xfd]),
      Buffer.from([0, 0]),
      Buffer.from([0]),
      Buffer.from([0, 0]),
    ]),
  row: (...values: Array<string | null>) => Buffer.concat(values.map((v) => (v === null ? Buffer.from([0xfb]) : lenencStr(v)))),
};

/**
 * The packets of a text result set, numbered from sequence id 1. `end`: the terminator (EOF or OK
 * as agreed), another packet in its place (an ERR), or 'none' (the result stops after the rows).
 */
export function myResult(
  deprecateEof: boolean,
  names: string[],
  rows: Array<Array<string | null>>,
  end: Buffer | 'none' | 'terminator' = 'terminator',
): Buffer[] {
  const payloads = [
    lenenc(names.length),
    ...names.map((n) => my.column(n)),
    ...(deprecateEof ? [] : [my.eof()]),
    ...rows.map((r) => my.row(...r)),
  ];
  if (end !== 'none') payloads.push(end === 'terminator' ? (deprecateEof ? my.okEof() : my.eof()) : end);
  return payloads.map((p, i) => myPacket(p, i + 1));
}

export interface MysqlQueryContext {
  /** The capabilities the gateway and this server agreed on include CLIENT_DEPRECATE_EOF. */
  deprecateEof: boolean;
}

/** A MySQL server that takes any login and answers COM_QUERY with `script`; COM_PING with OK. */
export async function startScriptedMysql(
  script: (query: string, socket: net.Socket, context: MysqlQueryContext) => void | Promise<void>,
): Promise<ScriptedBackend> {
  const queries: string[] = [];
  const { server, port, sockets } = await listen((socket) => {
    let buf = Buffer.alloc(0);
    let loggedIn = false;
    let context: MysqlQueryContext = { deprecateEof: false };
    let busy = Promise.resolve();
    const nonce = Buffer.from('abcdefghijklmnopqrst', 'latin1');
    socket.write(
      myPacket(
        Buffer.concat([
          Buffer.from([10]),
          cstr('10.11.0-scripted'),
          Buffer.from([7, 0, 0, 0]),
          nonce.subarray(0, 8),
          Buffer.from([0]),
          Buffer.from([SERVER_CAPS & 0xff, (SERVER_CAPS >> 8) & 0xff]),
          Buffer.from([45]),
          Buffer.from([0x02, 0]),
          Buffer.from([(SERVER_CAPS >> 16) & 0xff, (SERVER_CAPS >>> 24) & 0xff]),
          Buffer.from([21]),
          Buffer.alloc(10),
          nonce.subarray(8),
          Buffer.from([0]),
          cstr('mysql_native_password'),
        ]),
        0,
      ),
    );
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (buf.length < 4) return;
        const len = buf.readUIntLE(0, 3);
        if (buf.length < 4 + len) return;
        const seq = buf[3]!;
        const payload = buf.subarray(4, 4 + len);
        buf = buf.subarray(4 + len);
        if (!loggedIn) {
          loggedIn = true;
          const caps = payload.readUInt32LE(0);
          context = { deprecateEof: (caps & CAP.DEPRECATE_EOF) !== 0 };
          socket.write(myPacket(my.ok(), seq + 1));
          continue;
        }
        const command = payload[0];
        if (command === 0x01) return void socket.end();
        if (command === 0x0e) {
          socket.write(myPacket(my.ok(), 1));
          continue;
        }
        if (command === 0x03) {
          const text = payload.toString('utf8', 1);
          queries.push(text);
          const ctx = context;
          busy = busy.then(() => script(text, socket, ctx)).catch(() => void socket.destroy());
          continue;
        }
        socket.write(myPacket(my.err(1047, '08S01', 'Unknown command'), 1));
      }
    });
  });
  return { port, queries, close: closer(server, sockets) };
}
