/**
 * End to end: real psql and the real `pg` driver through jitgate to a private PostgreSQL server.
 */
import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build, Framer, parseFields } from '../src/protocols/postgres/codec.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { psql } from './support/psql.js';
import { waitUntil } from './support/wait.js';

let server: PgServer;
let gw: TestGateway;

beforeAll(async () => {
  server = await startPostgres();
  gw = await startTestGateway(server);
});

afterAll(async () => {
  await gw?.close();
  await server?.cleanup();
});

function client(token: string, overrides: pg.ClientConfig = {}): pg.Client {
  return new pg.Client({ host: gw.host, port: gw.port, user: 'alice', database: 'app', password: token, ...overrides });
}

describe('psql through the gateway', () => {
  it('runs queries and sees the backend as the gateway-held user, never the token', async () => {
    const token = await gw.token();
    const r = await psql(gw.dsn({}), token, ['-At', '-c', 'select current_user, current_database()', '-c', 'select count(*) from items']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(`${server.users.scram.user}|app`);
    expect(Number(r.stdout.split('\n')[1])).toBeGreaterThan(0);
  });

  it('logs in to the backend with each method the backend asks for (scram, md5, cleartext, trust, TLS verify-full)', async () => {
    for (const [connection, backendUser] of [
      ['app', server.users.scram.user],
      ['app-md5', server.users.md5.user],
      ['app-plain', server.users.plain.user],
      ['app-trust', server.users.trust.user],
      ['app-tls', server.users.tls.user],
    ] as const) {
      const token = await gw.token({ connection });
      const r = await psql(gw.dsn({ connection }), token, [
        '-At',
        '-c',
        'select current_user, coalesce((select ssl from pg_stat_ssl where pid = pg_backend_pid()), false)',
      ]);
      expect(r.stderr, connection).toBe('');
      const [user, ssl] = r.stdout.trim().split('|');
      expect(user, connection).toBe(backendUser);
      if (connection === 'app-tls' || connection === 'app-plain') expect(ssl, connection).toBe('t');
    }
  });

  it('refuses a backend that demands TLS when the connection is configured without it, with a clear error', async () => {
    const token = await gw.token({ connection: 'app-tls-plain' });
    const r = await psql(gw.dsn({ connection: 'app-tls-plain' }), token, ['-c', 'select 1']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('could not connect to backend for connection "app-tls-plain"');
    expect(r.stderr).not.toContain(server.users.tls.password);
  });

  it('speaks TLS to clients, with SCRAM channel binding when the client asks for it', async () => {
    const token = await gw.token();
    const r = await psql(gw.dsn({ sslmode: 'require', extra: 'channel_binding=require' }), token, ['-At', '-c', 'select 42']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('42');
  });

  it('answers a wrong, expired or unknown token with 28P01 and records the failed login', async () => {
    const before = (await gw.gateway.store.listAuthFailures(100)).length;
    const wrong = await psql(gw.dsn({}), 'jg_not-a-real-token', ['-c', 'select 1']);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('password authentication failed for user "alice"');

    const expired = await gw.token({ ttlMs: 1000, now: Date.now() - 10_000 });
    const e = client(expired);
    await expect(e.connect()).rejects.toMatchObject({ code: '28P01' });

    // A token is bound to its user and its connection.
    const bobs = await gw.token({ user: 'bob' });
    await expect(client(bobs).connect()).rejects.toMatchObject({ code: '28P01' });
    const otherConnection = await gw.token({ connection: 'app-md5' });
    await expect(client(otherConnection).connect()).rejects.toMatchObject({ code: '28P01' });

    const failures = await gw.gateway.store.listAuthFailures(100);
    expect(failures.length - before).toBe(4);
    expect(failures.some((f) => f.user === 'alice' && f.connection === 'app')).toBe(true);
  });

  it('refuses an unknown connection as a failed login (no token can exist for it)', async () => {
    const r = await psql(gw.dsn({ connection: 'nope' }), 'jg_x', ['-c', 'select 1']);
    expect(r.stderr).toContain('password authentication failed');
  });

  it('tells a holder of a valid token that a database does not exist (3D000), and nobody else', async () => {
    const token = await gw.token();
    for (const transport of ['plain', 'tls'] as const) {
      const c = client(token, { database: 'nope', ...(transport === 'tls' ? { ssl: { rejectUnauthorized: false } } : {}) });
      const err = await c.connect().then(
        () => undefined,
        (e: Error & { code?: string }) => e,
      );
      expect(err?.code, transport).toBe('3D000');
      expect(err?.message).toBe('database "nope" does not exist');
    }
    const r = await psql(gw.dsn({ connection: 'nope' }), 'jg_not-a-real-token', ['-c', 'select 1']);
    expect(r.stderr).toContain('password authentication failed for user "alice"');
  });

  it('runs COPY FROM STDIN and COPY TO STDOUT', async () => {
    const token = await gw.token();
    const rows = Array.from({ length: 20000 }, (_, i) => `${i}\tname ${i}\tpayload ${'x'.repeat(i % 50)}`).join('\n') + '\n';
    const load = await psql(
      gw.dsn({}),
      token,
      ['-c', 'create table if not exists copy_target (id int, name text, payload text)', '-c', '\\copy copy_target from stdin'],
      { input: rows },
    );
    expect(load.stderr).toBe('');
    expect(load.stdout).toContain('COPY 20000');
    const dump = await psql(gw.dsn({}), token, ['-c', '\\copy (select * from copy_target order by id) to stdout']);
    expect(dump.stdout).toBe(rows);
  });

  it('cancels a running query on Ctrl-C (CancelRequest mapped to the backend key)', async () => {
    const token = await gw.token();
    let pid = 0;
    const started = Date.now();
    const running = psql(gw.dsn({}), token, ['-c', 'select pg_sleep(20)'], { onSpawn: (p) => (pid = p) });
    // Wait until the statement runs on the backend, then press Ctrl-C.
    await waitUntil('pg_sleep(20) to run on the backend', async () => {
      const r = await server.query(
        "select count(*)::int n from pg_stat_activity where query like 'select pg_sleep(20)%' and state = 'active'",
      );
      return r.rows[0]!.n > 0;
    });
    process.kill(pid, 'SIGINT');
    const r = await running;
    expect(r.stderr).toContain('canceling statement due to user request');
    expect(Date.now() - started).toBeLessThan(19_000);
  });

  it('keeps transactions and error recovery as the backend defines them', async () => {
    const token = await gw.token();
    const r = await psql(gw.dsn({}), token, ['-v', 'ON_ERROR_STOP=0', '-At'], {
      input: [
        'create table if not exists tx_t (v int);',
        'begin;',
        'insert into tx_t values (1);',
        'select 1/0;',
        'insert into tx_t values (2);',
        'rollback;',
        'select count(*) from tx_t;',
      ].join('\n'),
    });
    expect(r.stderr).toContain('division by zero');
    expect(r.stderr).toContain('current transaction is aborted');
    expect(r.stdout.trim().split('\n').pop()).toBe('0');
  });
});

describe('pg driver through the gateway', () => {
  it('runs parameterized and named prepared statements (extended protocol)', async () => {
    const c = client(await gw.token());
    await c.connect();
    try {
      const r = await c.query('select $1::int + $2::int as sum, $3::text as t', [2, 3, 'ünïcødé']);
      expect(r.rows).toEqual([{ sum: 5, t: 'ünïcødé' }]);
      for (let i = 0; i < 5; i++) {
        const n = await c.query({ name: 'by-id', text: 'select $1::int * 10 as v', values: [i] });
        expect(n.rows[0].v).toBe(i * 10);
      }
      await expect(c.query('select * from no_such_table')).rejects.toMatchObject({ code: '42P01' });
      expect((await c.query('select 1 as ok')).rows[0].ok).toBe(1);
    } finally {
      await c.end();
    }
  });

  it('streams LISTEN/NOTIFY and notices to the client', async () => {
    const listener = client(await gw.token());
    const notifier = client(await gw.token());
    await listener.connect();
    await notifier.connect();
    try {
      const got = new Promise<pg.Notification>((resolve) => listener.on('notification', resolve));
      const notice = new Promise<{ message?: string }>((resolve) => listener.on('notice', resolve));
      await listener.query('listen jitgate_events');
      await notifier.query("notify jitgate_events, 'hello'");
      expect((await got).payload).toBe('hello');
      await listener.query("do $$ begin raise notice 'heads up'; end $$");
      expect((await notice).message).toBe('heads up');
    } finally {
      await listener.end();
      await notifier.end();
    }
  });

  it('reports ParameterStatus from the backend (server_version, client_encoding, application_name)', async () => {
    const c = client(await gw.token(), { application_name: 'orders-service' });
    await c.connect();
    try {
      const r = await c.query("select current_setting('application_name') as app, current_setting('server_version_num')::int as v");
      expect(r.rows[0].app).toBe('orders-service');
      expect(r.rows[0].v).toBeGreaterThanOrEqual(150000);
    } finally {
      await c.end();
    }
  });
});

describe('raw protocol', () => {
  /** Authenticates with cleartext-free SCRAM through pg, then hands back nothing: raw tests use startup only. */
  async function rawSession(): Promise<{ socket: net.Socket; read: () => Promise<Array<{ type: string; body: Buffer }>> }> {
    // A pg client connects and authenticates; we then take over its socket for raw messages.
    const c = client(await gw.token());
    c.on('error', () => undefined); // we destroy its socket at the end of each raw test
    await c.connect();
    const socket = (c as unknown as { connection: { stream: net.Socket } }).connection.stream;
    socket.removeAllListeners('data');
    const framer = new Framer();
    const queue: Array<{ type: string; body: Buffer }> = [];
    socket.on('data', (chunk: Buffer) =>
      framer.push(chunk, (type, buf, start, end) =>
        queue.push({ type: String.fromCharCode(type), body: Buffer.from(buf.subarray(start + 5, end)) }),
      ),
    );
    return {
      socket,
      read: async () => {
        await waitUntil('ReadyForQuery', () => queue.some((m) => m.type === 'Z'), { seen: () => queue.map((m) => m.type).join('') });
        const upto = queue.findIndex((m) => m.type === 'Z');
        return queue.splice(0, upto + 1);
      },
    };
  }

  function bind(portal: string, statement: string, params: string[]): Buffer {
    const parts: Buffer[] = [Buffer.from(portal + '\0' + statement + '\0'), Buffer.from([0, 0])];
    const n = Buffer.alloc(2);
    n.writeInt16BE(params.length);
    parts.push(n);
    for (const p of params) {
      const len = Buffer.alloc(4);
      len.writeInt32BE(Buffer.byteLength(p));
      parts.push(len, Buffer.from(p));
    }
    parts.push(Buffer.from([0, 0]));
    const body = Buffer.concat(parts);
    const head = Buffer.alloc(5);
    head[0] = 0x42;
    head.writeInt32BE(body.length + 4, 1);
    return Buffer.concat([head, body]);
  }
  const execute = (portal: string) => {
    const body = Buffer.concat([Buffer.from(portal + '\0'), Buffer.alloc(4)]);
    const head = Buffer.alloc(5);
    head[0] = 0x45;
    head.writeInt32BE(body.length + 4, 1);
    return Buffer.concat([head, body]);
  };
  const sync = () => Buffer.from([0x53, 0, 0, 0, 4]);

  it('relays a pipelined extended-protocol batch in order, one byte at a time', async () => {
    const { socket, read } = await rawSession();
    const batch = Buffer.concat([
      build.parse('s1', 'select $1::int * 2'),
      bind('', 's1', ['21']),
      execute(''),
      bind('p2', 's1', ['50']),
      execute('p2'),
      build.parse('', "select 'unnamed'"),
      bind('', '', []),
      execute(''),
      sync(),
    ]);
    for (const byte of batch) socket.write(Buffer.from([byte]));
    const messages = await read();
    expect(messages.map((m) => m.type).join('')).toBe('12DC2DC12DCZ');
    const values = messages.filter((m) => m.type === 'D').map((m) => m.body.toString('utf8', 6));
    expect(values).toEqual(['42', '100', 'unnamed']);
    socket.destroy();
  });

  it('keeps error recovery of a pipeline: after an error, the backend skips to Sync', async () => {
    // 1/0 is folded when the unnamed statement is planned at Bind: Parse ok, Bind fails, the rest
    // up to Sync is skipped.
    const { socket, read } = await rawSession();
    socket.write(Buffer.concat([build.parse('', 'select 1/0'), bind('', '', []), execute(''), build.parse('', 'select 1'), sync()]));
    const messages = await read();
    expect(messages.map((m) => m.type).join('')).toBe('1EZ');
    expect(parseFields(Buffer.concat([Buffer.from('E\0\0\0\0'), messages[1]!.body]), 0, messages[1]!.body.length + 5).get('C')).toBe(
      '22012',
    );
    socket.destroy();
  });
});
