/**
 * The PostgreSQL and MySQL relays against scripted backends (./support/scripted-backend.ts): what
 * a real client sees when the backend fails in the middle of a result, drops the connection in the
 * middle of a row, or sends its answer in pieces that split headers and values.
 */
import type net from 'node:net';
import mysql from 'mysql2/promise';
import pgClient from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, rawLogin } from './support/raw-client.js';
import { startGatewayWith, type GatewayWith } from './support/gateway-with.js';
import {
  my,
  myPacket,
  myResult,
  pg,
  startScriptedMysql,
  startScriptedPostgres,
  writeInPieces,
  type ScriptedBackend,
} from './support/scripted-backend.js';
import { within } from './support/wait.js';

let pgBackend: ScriptedBackend;
let myBackend: ScriptedBackend;
let gw: GatewayWith;

const ROWS = [
  ['1', 'one'],
  ['2', 'two'],
  ['3', null],
];

beforeAll(async () => {
  pgBackend = await startScriptedPostgres(async (query, socket) => {
    if (query === 'error mid-result') {
      // Two rows, then the backend's own error, then ready again (as a failing function would).
      socket.write(
        Buffer.concat([
          pg.rowDescription('id', 'name'),
          pg.dataRow('1', 'one'),
          pg.dataRow('2', 'two'),
          pg.error('22012', 'division by zero'),
          pg.ready(),
        ]),
      );
    } else if (query === 'close mid-row') {
      const row = pg.dataRow('2', 'half a row that never ends');
      socket.write(Buffer.concat([pg.rowDescription('id', 'name'), pg.dataRow('1', 'one'), row.subarray(0, row.length - 9)]));
      socket.destroy();
    } else if (query === 'in pieces') {
      await writeInPieces(socket, pg.rows(['id', 'name'], ROWS), 1);
    } else if (query === 'garbage') {
      // A DataRow whose length field says 2 bytes: no message is that short.
      socket.write(Buffer.concat([pg.rowDescription('id'), Buffer.from([0x44, 0, 0, 0, 2]), pg.dataRow('1')]));
    } else {
      socket.write(pg.rows(['answer'], [[query]]));
    }
  });
  myBackend = await startScriptedMysql(async (query, socket, { deprecateEof }) => {
    if (query === 'error mid-result') {
      socket.write(
        Buffer.concat(
          myResult(
            deprecateEof,
            ['id', 'name'],
            [
              ['1', 'one'],
              ['2', 'two'],
            ],
            my.err(1365, '22012', 'Division by 0'),
          ),
        ),
      );
    } else if (query === 'close mid-row') {
      const packets = myResult(
        deprecateEof,
        ['id', 'name'],
        [
          ['1', 'one'],
          ['2', 'half a row that never ends'],
        ],
        'none',
      );
      const last = packets.pop()!;
      socket.write(Buffer.concat([...packets, last.subarray(0, last.length - 9)]));
      socket.destroy();
    } else if (query === 'in pieces') {
      await writeInPieces(socket, Buffer.concat(myResult(deprecateEof, ['id', 'name'], ROWS)), 1);
    } else if (query === 'garbage') {
      // A row with sequence id 9 where 3 belongs: the backend lost track of the exchange.
      const packets = myResult(deprecateEof, ['id'], [['1']]);
      socket.write(Buffer.concat([...packets.slice(0, 2), myPacket(my.row('1'), 9)]));
    } else {
      socket.write(Buffer.concat(myResult(deprecateEof, ['answer'], [[query]])));
    }
  });
  gw = await startGatewayWith({
    listeners: '  postgres: { host: 127.0.0.1, port: 0 }\n  mysql: { host: 127.0.0.1, port: 0 }',
    connections: [
      `{ name: pgs, host: 127.0.0.1, port: ${pgBackend.port}, database: app, user: scripted, tls: { mode: disable } }`,
      `{ name: mys, type: mysql, host: 127.0.0.1, port: ${myBackend.port}, database: app, user: scripted, password: env:MY_PASS, tls: { mode: disable } }`,
    ],
    env: { MY_PASS: 'anything' },
  });
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await pgBackend?.close();
  await myBackend?.close();
});

async function pgSession(): Promise<pgClient.Client> {
  const { host, port } = gw.address('postgres');
  const c = new pgClient.Client({ host, port, user: 'alice', database: 'pgs', password: await gw.token('pgs') });
  c.on('error', () => undefined);
  await c.connect();
  return c;
}

async function mySession(): Promise<mysql.Connection> {
  const { host, port } = gw.address('mysql');
  return mysql.createConnection({ host, port, user: 'alice', password: await gw.token('mys'), database: 'mys' });
}

describe('PostgreSQL relay, scripted backend', () => {
  it('an error in the middle of a result reaches the client as the backend sent it; the session goes on', async () => {
    const c = await pgSession();
    await expect(c.query('error mid-result')).rejects.toMatchObject({ code: '22012', message: 'division by zero' });
    expect((await c.query('still here')).rows).toEqual([{ answer: 'still here' }]);
    await c.end();
  });

  it('the backend closing in the middle of a row: the client gets whole messages and 08006, never half a row', async () => {
    const { host, port } = gw.address('postgres');
    const s = await rawLogin({ host, port, user: 'alice', connection: 'pgs', token: await gw.token('pgs') });
    s.socket.write(pgQuery('close mid-row'));
    const got = await s.until('E');
    // RowDescription and the whole first row; the cut row is not passed on, the error says why.
    expect(got.map((m) => m.type).join('')).toBe('TDE');
    expect(got[1]!.body.toString('utf8')).toContain('one');
    expect(errorOf(got[2]!)).toMatchObject({ severity: 'FATAL', code: '08006' });
    await within('the gateway to close the client connection', s.closed);
    expect(s.messages).toEqual([]);
  });

  it('an answer arriving one byte at a time comes out whole', async () => {
    const c = await pgSession();
    const r = await c.query('in pieces');
    expect(r.rows).toEqual([
      { id: '1', name: 'one' },
      { id: '2', name: 'two' },
      { id: '3', name: null },
    ]);
    expect(r.command).toBe('SELECT');
    await c.end();
  });

  it('a malformed message from the backend ends the session with 08006; the bytes are not passed on', async () => {
    const { host, port } = gw.address('postgres');
    const s = await rawLogin({ host, port, user: 'alice', connection: 'pgs', token: await gw.token('pgs') });
    s.socket.write(pgQuery('garbage'));
    const got = await s.until('E');
    expect(got.map((m) => m.type).join('')).toBe('TE');
    expect(errorOf(got[1]!)).toMatchObject({ severity: 'FATAL', code: '08006', message: 'jitgate: invalid data from backend' });
    await within('the gateway to close the client connection', s.closed);
    expect(s.messages).toEqual([]);
  });
});

describe('MySQL relay, scripted backend', () => {
  it('a packet out of sequence from the backend ends the session with an ERR naming it', async () => {
    const c = await mySession();
    c.on('error', () => undefined);
    const ended = new Promise<void>((resolve) => c.on('end', () => resolve()));
    await expect(c.query('garbage')).rejects.toMatchObject({
      errno: 1105,
      sqlState: 'HY000',
      message: 'jitgate: the backend sent a malformed packet; the session ends',
    });
    await within('the gateway to close the client connection', ended);
  });

  // The packets accepted before the bad one reach the client, and the ERR continues their sequence
  // (a result set cut by an ERR, as a server sends it): strict clients check every sequence id.
  it('that ERR follows the packets the client received, in sequence', async () => {
    const c = await mySession();
    const stream = (c as unknown as { connection: { stream: net.Socket } }).connection.stream;
    stream.removeAllListeners('data');
    const got: Buffer[] = [];
    stream.on('data', (b: Buffer) => got.push(b));
    const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    stream.write(myPacket(Buffer.from('\x03garbage'), 0));
    await within('the gateway to close the connection', closed);
    const packets = framesOf(Buffer.concat(got));
    expect(packets.map((p) => p.seq)).toEqual([1, 2, 3]);
    expect(packets.map((p) => p.payload[0])).toEqual([0x01, 0x03, 0xff]); // column count, column definition ("def"), ERR
  });

  it('an ERR in the middle of a result reaches the client as the backend sent it; the session goes on', async () => {
    const c = await mySession();
    await expect(c.query('error mid-result')).rejects.toMatchObject({ errno: 1365, sqlState: '22012', message: 'Division by 0' });
    const [rows] = await c.query('still here');
    expect(rows).toEqual([{ answer: 'still here' }]);
    await c.end();
  });

  it('the backend closing in the middle of a row: the client gets an error, not half a row', async () => {
    const c = await mySession();
    c.on('error', () => undefined);
    const err = await c.query('close mid-row').then(
      () => undefined,
      (e: { errno?: number; code?: string; message: string }) => e,
    );
    expect(err).toMatchObject({ errno: 2013, sqlState: 'HY000', message: 'jitgate: lost connection to the backend during the query' });
    c.destroy();
  });

  it('an answer arriving one byte at a time comes out whole', async () => {
    const c = await mySession();
    const [rows] = await c.query('in pieces');
    expect(rows).toEqual([
      { id: '1', name: 'one' },
      { id: '2', name: 'two' },
      { id: '3', name: null },
    ]);
    await c.end();
  });
});

/** A simple Query message. */
function pgQuery(text: string): Buffer {
  const body = Buffer.from(text + '\0', 'utf8');
  const head = Buffer.alloc(5);
  head[0] = 0x51;
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

/** MySQL packets in `bytes`: sequence id and payload of each. */
function framesOf(bytes: Buffer): Array<{ seq: number; payload: Buffer }> {
  const frames: Array<{ seq: number; payload: Buffer }> = [];
  for (let pos = 0; pos + 4 <= bytes.length;) {
    const length = bytes.readUIntLE(pos, 3);
    frames.push({ seq: bytes[pos + 3]!, payload: bytes.subarray(pos + 4, pos + 4 + length) });
    pos += 4 + length;
  }
  return frames;
}
