/**
 * The demo PostgreSQL database of the embedded default: works on a machine with nothing but Node.
 *
 *   client ──TCP──▶ front (this thread: handshake, one-at-a-time admission, session reset)
 *                     └─TCP loopback──▶ pglite-socket server ──▶ PGlite      (worker thread)
 *
 * PGlite persists under `<dataDir>/demo-pg` and is seeded once (./seed.ts) with `customers` and
 * `orders`.
 *
 * Limits of PGlite behind @electric-sql/pglite-socket (0.2.x), and what the front does about them:
 * - PGlite is ONE PostgreSQL backend. pglite-socket's "multiple connections" multiplex every client
 *   onto that one session, message by message: prepared statements, portals, settings and temp tables
 *   are shared, and an extended-protocol batch (Parse/Bind/Execute/Sync) of one client can interleave
 *   with another's. With its default `maxConnections: 1`, a second client is dropped by Node's
 *   `server.maxConnections` without any protocol message ("Connection terminated unexpectedly").
 *   So the front serves ONE client at a time: further clients wait in a FIFO queue (their startup
 *   packet is held) and are admitted when the current one disconnects; a client that waits longer than
 *   `queueTimeoutMs` receives a real FATAL ErrorResponse, SQLSTATE 53300, saying why, instead of
 *   hanging. Between clients the session is reset (open transaction rolled back, DISCARD ALL), because
 *   PGlite keeps session state across connections.
 * - Authentication is trust: any user name and password are accepted and every client is the
 *   `postgres` superuser in database `postgres`, whatever the startup packet asked for.
 * - SSL is declined ('N'); the front also declines GSSENCRequest (pglite-socket would misparse it and
 *   hang), drops CancelRequest (PGlite has no way to cancel a running query) without queueing it,
 *   answers protocol 3.x>0 with NegotiateProtocolVersion, and rejects garbage with SQLSTATE 08P01.
 * - PGlite runs queries synchronously, so it lives in a worker thread: a slow demo query never stalls
 *   the gateway's event loop.
 * - COPY FROM STDIN does not work: PGlite executes one message at a time, so the COPY reads EOF instead
 *   of the CopyData that follows, fails with FATAL "protocol synchronization was lost", and PGlite then
 *   spins forever. COPY TO STDOUT works. Generally: when the session reset before the next client does
 *   not answer within 5 s, the worker is terminated and PGlite reopened (committed data survives).
 * - CancelRequest cannot interrupt a running query, and pglite-socket does not close the connection on
 *   Terminate (clients close it themselves, as psql and pg do).
 * - Opening the same data directory from two processes would corrupt it; a lock file
 *   (`<dataDir>/demo-pg.lock`, holding the owner's pid) refuses the second opener.
 */
import { promises as fs } from 'node:fs';
import net, { type AddressInfo, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { createLogger, type Logger } from '../obs/log.js';
import { PGLITE_WORKER_SOURCE } from './pglite-worker.js';
import { DEMO_SCHEMA_SQL, demoInsertStatements, generateDemoData } from './seed.js';

export interface DemoDatabaseOptions {
  /** Listen address (default 127.0.0.1). */
  host?: string;
  /** Listen port (default 0: an ephemeral port, read it from the result). */
  port?: number;
  /** How long a second client waits for the first to finish before a 53300 error (default 10 s). */
  queueTimeoutMs?: number;
  /** How long a new connection may take to send its startup packet (default 10 s). */
  handshakeTimeoutMs?: number;
  logger?: Logger;
}

export interface DemoDatabase {
  host: string;
  port: number;
  /** PGlite has one database, `postgres`; the name a client asks for is ignored. */
  database: string;
  /** Trust authentication as the superuser `postgres`; no password. */
  user: string;
  /** true when this start created and seeded the database. */
  seeded: boolean;
  /** Run a query directly on the database (in the worker, outside the one-client queue). */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Stop listening, end the current and queued clients, close PGlite. Idempotent. */
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const PROTOCOL_3_0 = 196608;
const MAX_STARTUP_LENGTH = 10_000;
/** Bytes a waiting client may send before it is admitted (it should send none). */
const MAX_PENDING_BYTES = 64 * 1024;
const CLOSE_TIMEOUT_MS = 15_000;

/** In this process, data directories with an open demo database (the lock file cannot tell). */
const openDirs = new Set<string>();

export async function startDemoDatabase(dataDir: string, options: DemoDatabaseOptions = {}): Promise<DemoDatabase> {
  const logger = options.logger ?? createLogger({ level: 'silent' });
  const dir = path.resolve(dataDir, 'demo-pg');
  const host = options.host ?? '127.0.0.1';
  const queueTimeoutMs = options.queueTimeoutMs ?? 10_000;
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;

  await fs.mkdir(path.dirname(dir), { recursive: true });
  const releaseLock = await acquireLock(`${dir}.lock`, dir);
  let engine: Engine | undefined;
  try {
    const firstStart = !(await exists(path.join(dir, 'PG_VERSION')));
    if (firstStart) logger.info({ dir }, 'creating the demo database (first start takes a few seconds)');
    engine = await Engine.start(dir, logger);
    const data = generateDemoData();
    const seeded = (await engine.call('seed', {
      check: `SELECT to_regclass('public.customers') IS NOT NULL AS present`,
      schema: DEMO_SCHEMA_SQL,
      statements: demoInsertStatements(data),
    })) as boolean;
    if (seeded) logger.info({ customers: data.customers.length, orders: data.orders.length }, 'demo database seeded');

    const front = new Front(engine, { queueTimeoutMs, handshakeTimeoutMs, logger });
    const port = await front.listen(host, options.port ?? 0);
    logger.info({ host, port, dir }, 'demo database listening');

    const e = engine;
    let closed: Promise<void> | undefined;
    return {
      host,
      port,
      database: 'postgres',
      user: 'postgres',
      seeded,
      query: async <T>(sql: string, params: unknown[] = []) => (await e.call('query', { sql, params })) as T[],
      close: () =>
        (closed ??= (async () => {
          try {
            await front.close();
            await e.close();
          } finally {
            await releaseLock();
          }
        })()),
    };
  } catch (err) {
    await engine?.close().catch(() => undefined);
    await releaseLock();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------
// The engine: the current PGlite worker, replaced when it wedges.

/**
 * A session reset that does not answer within this time means PGlite is wedged (it spins forever
 * after some fatal protocol errors, e.g. COPY FROM STDIN, which PGlite cannot read over a socket) or
 * still busy with a query whose client has left; either way the worker is terminated and PGlite is
 * reopened from its data directory (committed data survives, like a crash restart of PostgreSQL).
 */
const RESET_TIMEOUT_MS = 5_000;

class Engine {
  private restarting: Promise<void> | undefined;

  private constructor(
    private worker: PgliteWorker,
    private readonly dir: string,
    private readonly logger: Logger,
  ) {}

  static async start(dir: string, logger: Logger): Promise<Engine> {
    return new Engine(await PgliteWorker.start(dir), dir, logger);
  }

  get innerPort(): number {
    return this.worker.innerPort;
  }

  call(op: string, args: Record<string, unknown> = {}): Promise<unknown> {
    return this.worker.call(op, args);
  }

  /** Make the database ready for a new client: reset its session, restarting PGlite if it is stuck. */
  async prepareForClient(): Promise<void> {
    if (this.restarting) await this.restarting;
    if (!this.worker.dead) {
      try {
        await withTimeout(this.worker.call('reset'), RESET_TIMEOUT_MS, 'session reset timed out');
        return;
      } catch (err) {
        this.logger.warn({ err }, 'demo database is stuck; restarting it');
      }
    } else {
      this.logger.warn({ reason: this.worker.dead }, 'demo database worker is gone; restarting it');
    }
    await this.restart();
    await withTimeout(this.worker.call('reset'), RESET_TIMEOUT_MS, 'session reset timed out after restart');
  }

  private restart(): Promise<void> {
    this.restarting ??= (async () => {
      try {
        await this.worker.kill();
        this.worker = await PgliteWorker.start(this.dir);
        this.logger.info({ dir: this.dir }, 'demo database restarted');
      } finally {
        this.restarting = undefined;
      }
    })();
    return this.restarting;
  }

  async close(): Promise<void> {
    if (this.restarting) await this.restarting.catch(() => undefined);
    await this.worker.close();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------------
// The worker holding PGlite.

class PgliteWorker {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  /** Set when the worker is gone; every later call fails with it. */
  dead: string | undefined;
  private exited: Promise<void>;

  private constructor(
    private readonly worker: Worker,
    readonly innerPort: number,
  ) {
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (msg: { id?: number; ok?: boolean; result?: unknown; message?: string }) => {
      if (msg.id === undefined) return;
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new Error(`demo database: ${msg.message ?? 'failed'}`));
    });
    worker.on('error', (err) => this.fail(`worker error: ${err.message}`));
    worker.on('exit', (code) => this.fail(`worker exited (code ${code})`));
  }

  static start(dir: string): Promise<PgliteWorker> {
    const worker = new Worker(PGLITE_WORKER_SOURCE, {
      eval: true,
      workerData: {
        dir,
        pgliteUrl: import.meta.resolve('@electric-sql/pglite'),
        socketUrl: import.meta.resolve('@electric-sql/pglite-socket'),
      },
    });
    return new Promise((resolve, reject) => {
      const onMessage = (msg: { type?: string; port?: number; message?: string }) => {
        if (msg.type === 'ready' && typeof msg.port === 'number') {
          cleanup();
          resolve(new PgliteWorker(worker, msg.port));
        } else if (msg.type === 'failed') {
          cleanup();
          void worker.terminate();
          reject(new Error(`demo database could not start in ${dir}: ${msg.message ?? 'unknown error'}`));
        }
      };
      const onError = (err: Error) => {
        cleanup();
        void worker.terminate();
        reject(new Error(`demo database could not start in ${dir}: ${err.message}`));
      };
      const onExit = (code: number) => {
        cleanup();
        reject(new Error(`demo database could not start in ${dir}: worker exited with code ${code}`));
      };
      const cleanup = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.once('error', onError);
      worker.once('exit', onExit);
    });
  }

  call(op: string, args: Record<string, unknown> = {}): Promise<unknown> {
    if (this.dead) return Promise.reject(new Error(`demo database is not running (${this.dead})`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, ...args });
    });
  }

  private fail(reason: string): void {
    this.dead ??= reason;
    for (const p of this.pending.values()) p.reject(new Error(`demo database is not running (${reason})`));
    this.pending.clear();
  }

  /** Stop at once, whatever it is doing. */
  async kill(): Promise<void> {
    this.fail('terminated');
    await this.worker.terminate();
  }

  async close(): Promise<void> {
    if (!this.dead) {
      const timer = setTimeout(() => void this.worker.terminate(), CLOSE_TIMEOUT_MS);
      try {
        await this.call('close');
      } catch {
        // already dead or failed to close cleanly; terminate below
      } finally {
        clearTimeout(timer);
      }
    }
    const forced = setTimeout(() => void this.worker.terminate(), 2_000);
    await this.exited;
    clearTimeout(forced);
  }
}

// ---------------------------------------------------------------------------------------------------
// The front: one client at a time, everyone else queued with a deadline.

interface FrontOptions {
  queueTimeoutMs: number;
  handshakeTimeoutMs: number;
  logger: Logger;
}

interface Client {
  socket: Socket;
  /** Bytes received and not yet forwarded (startup packet first). */
  pending: Buffer;
  /** NegotiateProtocolVersion to send before relaying, when the client asked for 3.x, x > 0. */
  negotiate?: Buffer;
  timer?: NodeJS.Timeout;
  state: 'handshake' | 'queued' | 'active' | 'done';
  queuedAt: number;
  /** The listener that buffers bytes until the client is relayed. */
  onData?: (chunk: Buffer) => void;
}

class Front {
  private server: Server | undefined;
  private active: Client | undefined;
  private activeSince = 0;
  private readonly queue: Client[] = [];
  private readonly clients = new Set<Client>();
  private inner: Socket | undefined;
  private closing = false;

  constructor(
    private readonly engine: Engine,
    private readonly opts: FrontOptions,
  ) {}

  listen(host: string, port: number): Promise<number> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new Error(`demo database cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`)),
      );
      server.listen(port, host, () => {
        server.on('error', (err) => this.opts.logger.error({ err }, 'demo database listener error'));
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    const client: Client = { socket, pending: Buffer.alloc(0), state: 'handshake', queuedAt: 0 };
    this.clients.add(client);
    if (this.closing) return this.fatal(client, '57P01', 'the demo database is shutting down');
    client.timer = setTimeout(() => this.fatal(client, '08P01', 'no startup packet received in time'), this.opts.handshakeTimeoutMs);
    const onData = (chunk: Buffer) => {
      client.pending = client.pending.length ? Buffer.concat([client.pending, chunk]) : chunk;
      if (client.state === 'handshake') this.handshake(client);
      else if (client.state === 'queued' && client.pending.length > MAX_PENDING_BYTES) {
        this.fatal(client, '08P01', 'client sent data before its connection was admitted');
      }
    };
    client.onData = onData;
    socket.on('data', onData);
    socket.on('error', (err) => this.opts.logger.debug({ err }, 'demo database client socket error'));
    socket.on('close', () => {
      clearTimeout(client.timer);
      this.clients.delete(client);
      if (client.state === 'queued') {
        const i = this.queue.indexOf(client);
        if (i !== -1) this.queue.splice(i, 1);
      }
      if (client.state !== 'active') client.state = 'done';
    });
  }

  /** Consume pre-startup negotiation; stop at the StartupMessage, which stays in `pending`. */
  private handshake(client: Client): void {
    while (client.state === 'handshake' && client.pending.length >= 8) {
      const buf = client.pending;
      const len = buf.readInt32BE(0);
      const code = buf.readInt32BE(4);
      if (len < 8 || len > MAX_STARTUP_LENGTH) return this.fatal(client, '08P01', 'invalid startup packet length');
      if (buf.length < len) return;
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        if (len !== 8) return this.fatal(client, '08P01', 'invalid startup packet length');
        client.pending = buf.subarray(8);
        client.socket.write('N');
        continue;
      }
      if (code === CANCEL_REQUEST) {
        // PGlite cannot cancel a running query; the protocol expects no answer, just the close.
        client.state = 'done';
        client.socket.destroy();
        return;
      }
      const major = code >>> 16;
      const minor = code & 0xffff;
      if (major !== 3) {
        return this.fatal(client, '0A000', `unsupported frontend protocol ${major}.${minor}: the demo database speaks 3.0`);
      }
      if (minor !== 0 || hasProtocolOptions(buf.subarray(8, len))) {
        const { startup, unrecognized } = downgradeStartup(buf.subarray(0, len));
        client.negotiate = negotiateProtocolVersion(0, unrecognized);
        client.pending = Buffer.concat([startup, buf.subarray(len)]);
      }
      clearTimeout(client.timer);
      client.state = 'queued';
      client.queuedAt = Date.now();
      this.queue.push(client);
      client.timer = setTimeout(() => {
        if (client.state !== 'queued') return;
        const held = Math.round((Date.now() - this.activeSince) / 1000);
        this.fatal(
          client,
          '53300',
          `the demo database serves one connection at a time and another session has held it for ${held}s; ` +
            `try again when that session ends`,
        );
      }, this.opts.queueTimeoutMs);
      this.pump();
      return;
    }
  }

  private pump(): void {
    if (this.active || this.closing) return;
    const next = this.queue.shift();
    if (!next) return;
    clearTimeout(next.timer);
    if (next.state !== 'queued' || next.socket.destroyed) {
      next.state = 'done';
      return this.pump();
    }
    next.state = 'active';
    this.active = next;
    this.activeSince = Date.now();
    void this.relay(next);
  }

  private async relay(client: Client): Promise<void> {
    const release = () => {
      if (this.active !== client) return;
      client.state = 'done';
      this.active = undefined;
      this.inner = undefined;
      this.pump();
    };
    try {
      await this.engine.prepareForClient();
    } catch (err) {
      this.opts.logger.error({ err }, 'demo database session reset failed');
      this.fatal(client, '57P03', `the demo database is not available: ${(err as Error).message}`);
      return release();
    }
    if (client.socket.destroyed || this.closing) {
      client.socket.destroy();
      return release();
    }

    const inner = net.connect({ host: '127.0.0.1', port: this.engine.innerPort });
    this.inner = inner;
    inner.setNoDelay(true);
    let connected = false;
    let innerClosed = false;
    let clientClosed = false; // checked just above
    const maybeRelease = () => {
      if (innerClosed && clientClosed) release();
    };
    inner.on('error', (err) => {
      if (!connected) {
        this.fatal(client, '57P03', `the demo database is not available (${(err as NodeJS.ErrnoException).code ?? err.message})`);
      } else {
        this.opts.logger.debug({ err }, 'demo database backend socket error');
      }
    });
    inner.on('close', () => {
      innerClosed = true;
      if (!client.socket.destroyed) client.socket.destroy();
      maybeRelease();
    });
    client.socket.on('close', () => {
      clientClosed = true;
      inner.destroy();
      maybeRelease();
    });
    inner.on('connect', () => {
      connected = true;
      client.socket.pause();
      if (client.onData) client.socket.off('data', client.onData);
      if (client.negotiate) client.socket.write(client.negotiate);
      inner.write(client.pending);
      client.pending = Buffer.alloc(0);
      client.socket.pipe(inner);
      inner.pipe(client.socket);
    });
  }

  /** Send a FATAL ErrorResponse and close. */
  private fatal(client: Client, sqlstate: string, message: string): void {
    clearTimeout(client.timer);
    if (client.state === 'queued') {
      const i = this.queue.indexOf(client);
      if (i !== -1) this.queue.splice(i, 1);
    }
    if (client.state !== 'active') client.state = 'done';
    if (client.socket.writable) client.socket.end(errorResponse('FATAL', sqlstate, message));
    else client.socket.destroy();
    setTimeout(() => client.socket.destroy(), 1_000).unref();
  }

  async close(): Promise<void> {
    this.closing = true;
    const server = this.server;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const client of [...this.clients]) {
      if (client === this.active) {
        client.socket.destroy();
        this.inner?.destroy();
      } else {
        this.fatal(client, '57P01', 'the demo database is shutting down');
      }
    }
    this.queue.length = 0;
    await closed;
  }
}

// ---------------------------------------------------------------------------------------------------
// Wire helpers.

function errorResponse(severity: string, sqlstate: string, message: string): Buffer {
  const fields = Buffer.from(`S${severity}\0V${severity}\0C${sqlstate}\0M${message}\0\0`, 'utf8');
  const out = Buffer.alloc(5 + fields.length);
  out.write('E', 0, 'latin1');
  out.writeInt32BE(4 + fields.length, 1);
  fields.copy(out, 5);
  return out;
}

function negotiateProtocolVersion(minor: number, unrecognized: string[]): Buffer {
  const names = Buffer.from(unrecognized.map((n) => `${n}\0`).join(''), 'utf8');
  const out = Buffer.alloc(13 + names.length);
  out.write('v', 0, 'latin1');
  out.writeInt32BE(12 + names.length, 1);
  out.writeInt32BE(minor, 5);
  out.writeInt32BE(unrecognized.length, 9);
  names.copy(out, 13);
  return out;
}

function parseStartupParams(body: Buffer): Array<[string, string]> {
  const parts = body.toString('utf8').split('\0');
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const k = parts[i] as string;
    if (k === '') break;
    out.push([k, parts[i + 1] as string]);
  }
  return out;
}

function hasProtocolOptions(body: Buffer): boolean {
  return parseStartupParams(body).some(([k]) => k.startsWith('_pq_.'));
}

/** Rewrite a 3.x StartupMessage as 3.0 without `_pq_.` options; report what was dropped. */
function downgradeStartup(packet: Buffer): { startup: Buffer; unrecognized: string[] } {
  const params = parseStartupParams(packet.subarray(8));
  const unrecognized = params.filter(([k]) => k.startsWith('_pq_.')).map(([k]) => k);
  const kept = params.filter(([k]) => !k.startsWith('_pq_.'));
  const body = Buffer.from(kept.map(([k, v]) => `${k}\0${v}\0`).join('') + '\0', 'utf8');
  const startup = Buffer.alloc(8 + body.length);
  startup.writeInt32BE(8 + body.length, 0);
  startup.writeInt32BE(PROTOCOL_3_0, 4);
  body.copy(startup, 8);
  return { startup, unrecognized };
}

// ---------------------------------------------------------------------------------------------------
// Lock file.

async function acquireLock(lockPath: string, dir: string): Promise<() => Promise<void>> {
  if (openDirs.has(dir)) throw new Error(`demo database ${dir} is already open in this process`);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fs.writeFile(lockPath, `${process.pid}\n`, { flag: 'wx' });
      openDirs.add(dir);
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        openDirs.delete(dir);
        await fs.rm(lockPath, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number.parseInt((await fs.readFile(lockPath, 'utf8').catch(() => '')).trim(), 10);
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && processAlive(owner)) {
      throw new Error(`demo database ${dir} is in use by process ${owner} (lock file ${lockPath}; remove it if that process is not jitgate)`);
    }
    await fs.rm(lockPath, { force: true }); // stale: its owner is gone (or it is ours from a crash)
  }
  throw new Error(`demo database ${dir}: could not take the lock file ${lockPath}`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}
