/**
 * Bad input and faults: garbage and malformed frames, protocol negotiation, a backend that
 * refuses, dies mid-query or restarts, a full state-store disk, graceful shutdown, and huge results
 * with slow clients. In every case the affected client gets a protocol error and everyone else is
 * served.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build, PROTOCOL_3_0 } from '../src/protocols/postgres/codec.js';
import type { SqliteStore } from '../src/store/sqlite.js';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { startPostgres, type PgServer } from './support/pg-server.js';
import { errorOf, rawLogin, wrap } from './support/raw-client.js';
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

const login = async () => rawLogin({ host: gw.host, port: gw.port, user: 'alice', connection: 'app', token: await gw.token() });

/** The backend pid running `query`, once pg_stat_activity shows it active. */
function backendRunning(query: string): Promise<number> {
  return waitUntil(
    `the backend to run ${query}`,
    async () =>
      (await server.query<{ pid: number }>('select pid from pg_stat_activity where query = $1 and state = $2', [query, 'active'])).rows[0]
        ?.pid,
  );
}

async function stillServes(): Promise<void> {
  const c = new pg.Client({ host: gw.host, port: gw.port, user: 'alice', database: 'app', password: await gw.token() });
  await c.connect();
  try {
    expect((await c.query('select 1 as one')).rows[0].one).toBe(1);
  } finally {
    await c.end();
  }
}

function connectRaw(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: gw.host, port: gw.port }, () => resolve(s));
    s.once('error', reject);
  });
}

describe('malformed input', () => {
  it('closes on garbage before startup without an answer, as PostgreSQL does, and keeps serving others', async () => {
    // PostgreSQL only logs an invalid startup packet; an answer would be read by a client waiting for
    // its SSLRequest's reply as a failed negotiation (test/postgres-client-compat.test.ts).
    const socket = await connectRaw();
    const received: Buffer[] = [];
    socket.on('data', (d: Buffer) => received.push(d));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await closed;
    expect(Buffer.concat(received).toString('latin1')).toBe('');
    await stillServes();
  });

  it('answers an absurd message length after login with 08P01, ends only that session', async () => {
    const victim = await login();
    const bystander = await login();
    victim.socket.write(Buffer.from([0x51, 0x7f, 0xff, 0xff, 0xff, 0x41]));
    const [err] = await victim.until('E');
    expect(errorOf(err!)).toMatchObject({ severity: 'FATAL', code: '08P01' });
    await victim.closed;
    bystander.socket.write(build.query('select 2'));
    const reply = await bystander.until('Z');
    expect(reply.map((m) => m.type).join('')).toBe('TDCZ');
    bystander.socket.end(build.terminate());
  });

  it('answers an SSLRequest followed by smuggled plaintext as PostgreSQL 15 does, and never reads the plaintext (CVE-2021-23214 class)', async () => {
    const socket = await connectRaw();
    const answer = await new Promise<Buffer>((resolve) => {
      socket.once('data', resolve);
      socket.write(Buffer.concat([build.sslRequest(), build.startup({ user: 'alice', database: 'app' })]));
    });
    expect(answer.toString()).toBe('S');
    const secure = tls.connect({ socket, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    const s = wrap(secure);
    const messages = await s.until('E');
    // The smuggled StartupMessage got no authentication request: only the error, over TLS.
    expect(messages.map((m) => m.type)).toEqual(['E']);
    expect(errorOf(messages[0]!)).toMatchObject({
      severity: 'FATAL',
      code: '08P01',
      message: 'received unencrypted data after SSL request',
    });
    await s.closed;
    await stillServes();
  });

  it('answers N to an SSLRequest with smuggled bytes when TLS is declined (GSSENCRequest), then refuses', async () => {
    const socket = await connectRaw();
    const answer = await new Promise<Buffer>((resolve) => {
      socket.once('data', resolve);
      socket.write(Buffer.concat([Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]), build.startup({ user: 'alice', database: 'app' })]));
    });
    expect(answer[0]).toBe(0x4e);
    const s = wrap(socket, answer.subarray(1));
    const messages = await s.until('E');
    expect(messages.map((m) => m.type)).toEqual(['E']);
    expect(errorOf(messages[0]!)).toMatchObject({
      severity: 'FATAL',
      code: '08P01',
      message: 'received unencrypted data after GSSAPI encryption request',
    });
  });

  it('declines GSSENCRequest and continues with the startup on the same connection', async () => {
    const socket = await connectRaw();
    const first = await new Promise<Buffer>((resolve) => {
      socket.once('data', resolve);
      socket.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]));
    });
    expect(first.toString()).toBe('N');
    const s = wrap(socket);
    socket.write(build.startup({ user: 'alice', database: 'app' }));
    const [auth] = await s.until('R');
    expect(auth!.body.readInt32BE(0)).toBe(10); // SASL
    socket.destroy();
  });

  it('negotiates a newer 3.x minor version and unknown _pq_ options down to 3.0', async () => {
    const socket = await connectRaw();
    const s = wrap(socket);
    const startup = build.startup({ user: 'alice', database: 'app', '_pq_.compression': 'on' });
    startup.writeInt32BE(PROTOCOL_3_0 | 2, 4);
    socket.write(startup);
    const messages = await s.until('R');
    expect(messages[0]!.type).toBe('v');
    expect(messages[0]!.body.readInt32BE(0)).toBe(PROTOCOL_3_0);
    expect(messages[0]!.body.readInt32BE(4)).toBe(1);
    expect(messages[0]!.body.toString('utf8', 8, messages[0]!.body.length - 1)).toBe('_pq_.compression');
    socket.destroy();
  });

  it('refuses protocol 2.0 with 0A000', async () => {
    const s = wrap(await connectRaw());
    const startup = build.startup({ user: 'alice', database: 'app' });
    startup.writeInt32BE(2 << 16, 4);
    s.socket.write(startup);
    const [err] = await s.until('E');
    expect(errorOf(err!)).toMatchObject({ severity: 'FATAL', code: '0A000' });
  });

  it('survives a fuzz run of random and mutated frames, before and after login', async () => {
    const valid = [
      build.startup({ user: 'alice', database: 'app' }),
      build.sslRequest(),
      build.cancelRequest(1, 2),
      build.query('select 1'),
      build.parse('s', 'select $1'),
      Buffer.from([0x53, 0, 0, 0, 4]),
      build.password('jg_x'),
      build.saslInitialResponse('SCRAM-SHA-256', 'n,,n=,r=abc'),
      build.terminate(),
    ];
    const mutated = fc
      .tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(40))
      .map(([msg, flips, cut]) => {
        const b = Buffer.from(msg);
        for (const [at, v] of flips) b[at % b.length] = v;
        return b.subarray(0, Math.max(1, b.length - (cut % b.length)));
      });
    const noise = fc.uint8Array({ minLength: 1, maxLength: 200 }).map((a) => Buffer.from(a));
    const input = fc.array(fc.oneof(mutated, noise), { minLength: 1, maxLength: 5 });
    const deadline = Date.now() + 20_000;
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(input, fc.boolean(), async (chunks, afterLogin) => {
        if (Date.now() > deadline) return;
        runs++;
        const s = afterLogin ? (await login()).socket : await connectRaw();
        s.on('error', () => undefined);
        for (const c of chunks) s.write(c);
        // Kept: a moment for the gateway to chew on the bytes before the client vanishes, so
        // that both orders (answered first, destroyed first) are exercised; nothing is awaited.
        await new Promise((r) => setTimeout(r, 30));
        s.destroy();
      }),
      { numRuns: 150 },
    );
    expect(runs).toBeGreaterThan(20);
    await stillServes();
  });
});

describe('backend faults', () => {
  it('reports a backend that is down with 08006, and recovers when it is back', async () => {
    await server.stop({ mode: 'fast' });
    try {
      const c = new pg.Client({ host: gw.host, port: gw.port, user: 'alice', database: 'app', password: await gw.token() });
      const err = await c.connect().then(
        () => undefined,
        (e: Error & { code?: string; message: string }) => e,
      );
      expect(err?.code).toBe('08006');
      expect(err?.message).toContain('could not connect to backend for connection "app"');
      // The gateway's words for why; the socket's own message (the backend's address) stays in its log.
      const detail = (err as { detail?: string }).detail ?? '';
      expect(detail).toBe("could not reach the backend: ECONNREFUSED from the backend's address");
      expect(`${err?.message} ${detail}`).not.toContain(String(server.port));
    } finally {
      await server.start();
    }
    await stillServes();
  });

  it("ends only the session whose backend is terminated mid-query, with the backend's own FATAL", async () => {
    const victim = await login();
    const bystanderClient = new pg.Client({
      host: gw.host,
      port: gw.port,
      user: 'alice',
      database: 'app-md5',
      password: await gw.token({ connection: 'app-md5' }),
    });
    await bystanderClient.connect();
    bystanderClient.on('error', () => undefined);
    victim.socket.write(build.query('select pg_sleep(30)'));
    const pid = await backendRunning('select pg_sleep(30)');
    // SIGTERM on one backend: it dies with its own FATAL 57P01; SIGKILL would restart the cluster.
    process.kill(pid, 'SIGTERM');
    const messages = await victim.until('E');
    expect(errorOf(messages.at(-1)!)).toMatchObject({ severity: 'FATAL', code: '57P01' });
    await victim.closed;
    expect((await bystanderClient.query('select 3 as n')).rows[0].n).toBe(3);
    await bystanderClient.end();
  });

  it('tells the client when the backend connection vanishes without a word (08006)', async () => {
    const victim = await login();
    victim.socket.write(build.query('select pg_sleep(30)'));
    await backendRunning('select pg_sleep(30)');
    // Crash-like: kill -9 of the backend; the postmaster resets every backend connection.
    await server.kill9Backend({ user: server.users.scram.user });
    const messages = await victim.until('E');
    expect(errorOf(messages.at(-1)!).code).toMatch(/^(08006|57P02)$/);
    await victim.closed;
    // The backend recovers by itself; the gateway serves new sessions.
    await waitUntil('the gateway to serve again after the backend recovered', async () => (await stillServes(), true), {
      timeoutMs: 20_000,
      intervalMs: 200,
    });
  });

  it("survives a backend restart: the old session ends with the backend's error, a new one works", async () => {
    const c = new pg.Client({ host: gw.host, port: gw.port, user: 'alice', database: 'app', password: await gw.token() });
    await c.connect();
    const ended = new Promise<Error & { code?: string }>((resolve) => c.on('error', resolve));
    await server.restart({ mode: 'fast' });
    const err = await ended;
    expect(err.code ?? err.message).toMatch(/57P01|terminat/);
    await stillServes();
    const sessions = await gw.gateway.store.listSessions({ connection: 'app', active: false, limit: 200 });
    expect(sessions.some((s) => s.endReason === 'backend_lost')).toBe(true);
  });
});

describe('large results and slow clients', () => {
  it('streams a 10-million-row SELECT with bounded gateway memory', async () => {
    const s = await login();
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 100);
    s.socket.removeAllListeners('data');
    let rows = 0;
    let tail = Buffer.alloc(0);
    const done = new Promise<void>((resolve) => {
      s.socket.on('data', (chunk: Buffer) => {
        // Count DataRows without keeping them (header scan only).
        const buf = tail.length ? Buffer.concat([tail, chunk]) : chunk;
        let pos = 0;
        while (buf.length - pos >= 5) {
          const len = buf.readInt32BE(pos + 1);
          if (pos + 1 + len > buf.length) break;
          if (buf[pos] === 0x44) rows++;
          if (buf[pos] === 0x5a) resolve();
          pos += 1 + len;
        }
        tail = Buffer.from(buf.subarray(pos));
      });
    });
    s.socket.write(build.query('select g from generate_series(1, 10000000) g'));
    await done;
    clearInterval(sampler);
    expect(rows).toBe(10_000_000);
    // ~230 MB crossed the gateway; it may hold socket buffers, not the result.
    expect(peak - rssBefore).toBeLessThan(150 * 1024 * 1024);
    s.socket.end(build.terminate());
  }, 180_000);

  it('does not buffer the result for a client that stops reading', async () => {
    const s = await login();
    s.socket.pause();
    s.socket.removeAllListeners('data');
    const rssBefore = process.memoryUsage().rss;
    // ~400 MB of result if the gateway buffered it all.
    s.socket.write(build.query("select repeat('x', 2000) from generate_series(1, 200000)"));
    // Kept: the slow reader is the point. The time lets a gateway that buffered read ~400 MB.
    await new Promise((r) => setTimeout(r, 3000));
    const growth = process.memoryUsage().rss - rssBefore;
    expect(growth).toBeLessThan(100 * 1024 * 1024);
    // The backend is held back, not finished: it is still sending to us.
    const r = await server.query("select count(*)::int n from pg_stat_activity where query like 'select repeat(%' and state = 'active'");
    expect(r.rows[0]!.n).toBe(1);
    s.socket.destroy();
  }, 60_000);
});

describe('sessions, metrics and the state store', () => {
  it('records each session with its identity, counters and end reason, and exports metrics', async () => {
    const c = new pg.Client({
      host: gw.host,
      port: gw.port,
      user: 'carol',
      database: 'app',
      password: await gw.token({ user: 'carol' }),
      application_name: 'audit-check',
    });
    await c.connect();
    await c.query('select 1');
    await c.query('select 2');
    await c.end();
    await waitUntil("carol's session to end", async () => (await gw.gateway.store.listSessions({ user: 'carol' }))[0]?.endReason);
    const [row] = await gw.gateway.store.listSessions({ user: 'carol' });
    expect(row).toMatchObject({
      user: 'carol',
      connection: 'app',
      protocol: 'postgres',
      applicationName: 'audit-check',
      endReason: 'client_quit',
    });
    expect(row!.statements).toBe(2);
    expect(row!.bytesFromClient).toBeGreaterThan(0);
    expect(row!.bytesToClient).toBeGreaterThan(0);
    expect(row!.endedAt).toBeGreaterThanOrEqual(row!.startedAt);

    const metrics = await (await fetch(`${gw.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(/jitgate_sessions_total\{protocol="postgres",connection="app"\} \d+/);
    expect(metrics).toMatch(/jitgate_auth_failures_total/);
    expect(metrics).toMatch(/jitgate_backend_connect_seconds_count\{protocol="postgres",connection="app"\} \d+/);
    expect((await fetch(`${gw.httpUrl}/readyz`)).status).toBe(200);
  });

  it('refuses new sessions with 57P03 when the state store disk is full, and recovers', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test mounts a 2 MB tmpfs and needs root (CI runs as root)');
    const mnt = mkdtempSync(join(tmpdir(), 'jitgate-full-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
    let small: TestGateway | undefined;
    try {
      const dataDir = join(mnt, 'data');
      mkdirSync(dataDir);
      small = await startTestGateway(server, { extraYaml: `store: { path: ${join(dataDir, 'jitgate.db')} }` });
      const token = await small.token();
      const open = new pg.Client({ host: small.host, port: small.port, user: 'alice', database: 'app', password: token });
      await open.connect();
      try {
        writeFileSync(join(mnt, 'filler'), Buffer.alloc(4 * 1024 * 1024));
      } catch {
        // ENOSPC: the disk is now full, which is the point.
      }
      const refused = new pg.Client({ host: small.host, port: small.port, user: 'alice', database: 'app', password: token });
      const err = await refused.connect().then(
        () => undefined,
        (e: Error & { code?: string }) => e,
      );
      expect(err?.code).toBe('57P03');
      // The session already open keeps working.
      expect((await open.query('select 5 as n')).rows[0].n).toBe(5);
      await open.end();
      rmSync(join(mnt, 'filler'));
      const again = new pg.Client({ host: small.host, port: small.port, user: 'alice', database: 'app', password: token });
      await again.connect();
      await again.end();
    } finally {
      await small?.close().catch(() => undefined);
      execFileSync('umount', [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
  });
});

describe('a state store that cannot write for a while', () => {
  it('ends a session whose end the store could not take, once it can again: no session stays active', async () => {
    const db = (gw.gateway.store as SqliteStore).database;
    const c = new pg.Client({
      host: gw.host,
      port: gw.port,
      user: 'dave',
      database: 'app',
      password: await gw.token({ user: 'dave' }),
      application_name: 'store-down',
    });
    await c.connect();
    await c.query('select 1');
    const [open] = await gw.gateway.store.listSessions({ user: 'dave', active: true });
    expect(open).toBeDefined();
    // The store turns read-only (as a full or remounted disk does) while the session ends.
    db.pragma('query_only = ON');
    try {
      await c.end();
      await expect.poll(() => gw.gateway.recording.isLive(open!.id), { message: 'the ended session to stop being live' }).toBe(false);
      await expect
        .poll(() => gw.gateway.recording.pendingStoreWrites, { message: 'the session end row to wait for the read-only store' })
        .toBeGreaterThan(0);
      expect((await gw.gateway.store.listSessions({ user: 'dave' }))[0]).toMatchObject({ id: open!.id, endedAt: null });
      expect(gw.gateway.recording.repo.get(open!.id)?.state).toBe('recording');
    } finally {
      db.pragma('query_only = OFF');
    }
    // Retried: the session, its recording and its audit entry catch up.
    await expect
      .poll(async () => (await gw.gateway.store.listSessions({ user: 'dave' }))[0]?.endedAt ?? null, {
        timeout: 15_000,
        message: 'the session end row once the store takes writes again',
      })
      .not.toBeNull();
    const [ended] = await gw.gateway.store.listSessions({ user: 'dave' });
    expect(ended).toMatchObject({ endReason: 'client_quit', statements: 1 });
    expect(ended!.endedAt).toBeLessThan(Date.now());
    await expect
      .poll(() => gw.gateway.recording.repo.get(open!.id)?.state, { timeout: 15_000, message: 'the recording to be complete' })
      .toBe('complete');
    expect((await gw.gateway.audit.about(open!.id)).map((e) => e.type)).toEqual(['session.started', 'session.ended']);
    await stillServes();
  });
});

describe('backend health', () => {
  it('reports a backend that is down in /readyz details and metrics, without making the gateway unready', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as net.AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const health = await startTestGateway(server, {
      extraConnections: [
        `{ name: dead, host: 127.0.0.1, port: ${deadPort}, database: app, user: ${server.users.scram.user}, password: env:PG_SCRAM, tls: { mode: disable } }`,
      ],
    });
    try {
      const up = new pg.Client({ host: health.host, port: health.port, user: 'alice', database: 'app', password: await health.token() });
      await up.connect();
      await up.end();
      for (let i = 0; i < 2; i++) {
        const c = new pg.Client({
          host: health.host,
          port: health.port,
          user: 'alice',
          database: 'dead',
          password: await health.token({ connection: 'dead' }),
        });
        await expect(c.connect()).rejects.toMatchObject({ code: '08006' });
      }
      type Ready = {
        status: string;
        details: {
          backends: Record<string, { up: boolean | null; failingLogins: number; lastError: string | null; lastFailureAt: number | null }>;
        };
      };
      const ready = async () => {
        const res = await fetch(`${health.httpUrl}/readyz`);
        return { status: res.status, body: (await res.json()) as Ready };
      };
      // The reason comes from a TCP probe of the backend's address, just after the failed login.
      await expect
        .poll(async () => (await ready()).body.details.backends.dead?.lastError, { message: 'readiness to report the dead backend' })
        .toMatch(new RegExp(`127\\.0\\.0\\.1:${deadPort} failed: ECONNREFUSED`));
      const { status, body } = await ready();
      expect(status).toBe(200);
      expect(body.status).toBe('ready');
      expect(body.details.backends.dead).toMatchObject({ up: false, failingLogins: 2 });
      expect(body.details.backends.dead!.lastFailureAt).toBeGreaterThan(0);
      expect(body.details.backends.app).toMatchObject({ up: true, failingLogins: 0 });
      expect(body.details.backends['app-md5']).toMatchObject({ up: null });
      const metrics = await health.gateway.metrics.render();
      expect(metrics).toContain('jitgate_backend_up{connection="dead"} 0');
      expect(metrics).toContain('jitgate_backend_up{connection="app"} 1');
      expect(metrics).toContain('jitgate_backend_connect_failures_total{connection="dead"} 2');
      expect(metrics).toContain('jitgate_backend_connect_failures_total{connection="app"} 0');
    } finally {
      await health.close();
    }
  });
});

describe('graceful shutdown', () => {
  it('lets the statement in flight finish, then ends sessions with 57P01', async () => {
    const g = await startTestGateway(server, { drainTimeout: '10s' });
    const busy = await rawLogin({ host: g.host, port: g.port, user: 'alice', connection: 'app', token: await g.token() });
    const idle = await rawLogin({ host: g.host, port: g.port, user: 'alice', connection: 'app', token: await g.token() });
    busy.socket.write(build.query('select pg_sleep(1), 7 as answer'));
    await backendRunning('select pg_sleep(1), 7 as answer');
    const closing = g.close();
    const idleMessages = await idle.until('E');
    expect(errorOf(idleMessages.at(-1)!)).toMatchObject({ severity: 'FATAL', code: '57P01' });
    const busyMessages = await busy.until('E');
    expect(busyMessages.map((m) => m.type).join('')).toBe('TDCZE');
    expect(errorOf(busyMessages.at(-1)!).code).toBe('57P01');
    await closing;
  });

  it('lets a session inside a transaction block commit it, then ends it; one that never commits ends at the timeout', async () => {
    await server.query('create table drained (n int); grant all on drained to public');
    const g = await startTestGateway(server, { drainTimeout: '3s' });
    const committing = await rawLogin({ host: g.host, port: g.port, user: 'alice', connection: 'app', token: await g.token() });
    const lingering = await rawLogin({ host: g.host, port: g.port, user: 'alice', connection: 'app', token: await g.token() });
    for (const s of [committing, lingering]) {
      s.socket.write(build.query('begin; insert into drained values (1)'));
      expect((await s.until('Z')).at(-1)!.body.toString('latin1')).toBe('T');
    }
    const started = Date.now();
    const closing = g.close();
    // Idle, but in a transaction block: the session is not cut off.
    await new Promise((r) => setTimeout(r, 300));
    expect(committing.messages.filter((m) => m.type === 'E')).toEqual([]);
    committing.socket.write(build.query('commit'));
    const committed = await committing.until('E');
    expect(committed.map((m) => m.type).join('')).toBe('CZE');
    expect(errorOf(committed.at(-1)!)).toMatchObject({ severity: 'FATAL', code: '57P01' });
    const lingered = await lingering.until('E', 10_000);
    expect(errorOf(lingered.at(-1)!).code).toBe('57P01');
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_500);
    await closing;
    expect((await server.query('select count(*)::int as n from drained')).rows).toEqual([{ n: 1 }]);
  });
});
