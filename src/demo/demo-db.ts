/**
 * The demo PostgreSQL database of the embedded default: works on a machine with nothing but Node.
 *
 *   clients ──TCP──▶ front (this thread: handshake, sessions taking turns, ./session-mux.ts)
 *                      └─ one TCP loopback connection ──▶ pglite-socket server ──▶ PGlite  (worker thread)
 *
 * PGlite persists under `<dataDir>/demo-pg` and is seeded once (./seed.ts) with `customers` and
 * `orders`.
 *
 * PGlite is ONE PostgreSQL backend. The front answers each client's startup itself and lets the
 * sessions take turns on one connection to it, a transaction or a request at a time (the rules, and
 * what stays shared, are in ./session-mux.ts). Further limits, and what the front does about them:
 * - Authentication is trust: any user name and password are accepted and every client is the
 *   `postgres` superuser in database `postgres`, whatever the startup packet asked for.
 * - SSL is declined ('N'); the front also declines GSSENCRequest, drops CancelRequest (PGlite has no
 *   way to cancel a running query) after closing it, answers protocol 3.x>0 with
 *   NegotiateProtocolVersion, and rejects garbage with SQLSTATE 08P01.
 * - PGlite runs queries synchronously, so it lives in a worker thread: a slow demo query never stalls
 *   the gateway's event loop.
 * - COPY FROM STDIN cannot work (see ./session-mux.ts); COPY TO STDOUT works. When PGlite is lost or
 *   wedged, the worker is terminated and PGlite reopened (committed data survives).
 * - Opening the same data directory from two processes would corrupt it; a lock file
 *   (`<dataDir>/demo-pg.lock`, holding the owner's pid) refuses the second opener.
 */
import { promises as fs } from 'node:fs';
import net, { type AddressInfo, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { createLogger, type Logger } from '../obs/log.js';
import { CANCEL_REQUEST, GSSENC_REQUEST, SSL_REQUEST, errorResponse, negotiateProtocolVersion, parseStartupParams } from './pg-wire.js';
import { PGLITE_WORKER_SOURCE } from './pglite-worker.js';
import { DEMO_SCHEMA_SQL, demoInsertStatements, generateDemoData } from './seed.js';
import { BackendLink, SessionMux } from './session-mux.js';

export interface DemoDatabaseOptions {
  /** Listen address (default 127.0.0.1). */
  host?: string;
  /** Listen port (default 0: an ephemeral port, read it from the result). */
  port?: number;
  /** How long a request waits for another session's transaction before ERROR 55P03 (default 10 s). */
  queueTimeoutMs?: number;
  /** How long a new connection may take to send its startup packet (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Sessions served at once (default 64). */
  maxSessions?: number;
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
  /** Run a query directly on the database (in the worker, outside the sessions' turns). */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Stop listening, end every session, close PGlite. Idempotent. */
  close(): Promise<void>;
}

const MAX_STARTUP_LENGTH = 10_000;
const CLOSE_TIMEOUT_MS = 15_000;

/** In this process, data directories with an open demo database (the lock file cannot tell). */
const openDirs = new Set<string>();

export async function startDemoDatabase(dataDir: string, options: DemoDatabaseOptions = {}): Promise<DemoDatabase> {
  const logger = options.logger ?? createLogger({ level: 'silent' });
  const dir = path.resolve(dataDir, 'demo-pg');
  const host = options.host ?? '127.0.0.1';

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

    const e = engine;
    const mux = new SessionMux(await BackendLink.open(e.innerPort), {
      queueTimeoutMs: options.queueTimeoutMs ?? 10_000,
      maxSessions: options.maxSessions ?? 64,
      logger,
      restart: async () => {
        await e.restart();
        return BackendLink.open(e.innerPort);
      },
    });
    const front = new Front(mux, { handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000, logger });
    const port = await front.listen(host, options.port ?? 0);
    logger.info({ host, port, dir }, 'demo database listening');

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
// The engine: the current PGlite worker, replaced when it wedges or dies.

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

  /** Terminate the worker, whatever it is doing, and reopen PGlite from its data directory. */
  restart(): Promise<void> {
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
// The front: the pre-startup handshake of each client, then the session multiplexer.

interface FrontOptions {
  handshakeTimeoutMs: number;
  logger: Logger;
}

class Front {
  private server: Server | undefined;
  private readonly handshaking = new Set<Socket>();
  private closing = false;

  constructor(
    private readonly mux: SessionMux,
    private readonly opts: FrontOptions,
  ) {}

  listen(host: string, port: number): Promise<number> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new Error(
            `demo database cannot listen on ${host}:${port}: ${err.code === 'EADDRINUSE' ? 'address already in use' : err.message}`,
          ),
        ),
      );
      server.listen(port, host, () => {
        server.on('error', (err) => this.opts.logger.error({ err }, 'demo database listener error'));
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    socket.on('error', (err) => this.opts.logger.debug({ err }, 'demo database client socket error'));
    if (this.closing) return fatal(socket, '57P01', 'the demo database is shutting down');
    this.handshaking.add(socket);
    let pending: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => done(() => fatal(socket, '08P01', 'no startup packet received in time')), this.opts.handshakeTimeoutMs);
    const done = (then: () => void) => {
      clearTimeout(timer);
      socket.off('data', onData);
      this.handshaking.delete(socket);
      then();
    };
    const onData = (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      // Consume pre-startup negotiation; stop at the StartupMessage.
      while (pending.length >= 8) {
        const len = pending.readInt32BE(0);
        const code = pending.readInt32BE(4);
        if (len < 8 || len > MAX_STARTUP_LENGTH) return done(() => fatal(socket, '08P01', 'invalid startup packet length'));
        if (pending.length < len) return;
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
          if (len !== 8) return done(() => fatal(socket, '08P01', 'invalid startup packet length'));
          pending = pending.subarray(8);
          socket.write('N');
          continue;
        }
        // PGlite cannot cancel a running query; the protocol expects no answer, just the close.
        if (code === CANCEL_REQUEST) return done(() => socket.destroy());
        const major = code >>> 16;
        const minor = code & 0xffff;
        if (major !== 3) {
          return done(() => fatal(socket, '0A000', `unsupported frontend protocol ${major}.${minor}: the demo database speaks 3.0`));
        }
        const options = parseStartupParams(pending.subarray(8, len))
          .filter(([k]) => k.startsWith('_pq_.'))
          .map(([k]) => k);
        const greeting = minor !== 0 || options.length > 0 ? [negotiateProtocolVersion(0, options)] : [];
        const rest = pending.subarray(len);
        return done(() => this.mux.attach(socket, rest, greeting));
      }
    };
    socket.on('data', onData);
    socket.on('close', () => done(() => undefined));
  }

  async close(): Promise<void> {
    this.closing = true;
    const server = this.server;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const socket of this.handshaking) fatal(socket, '57P01', 'the demo database is shutting down');
    this.mux.close();
    await closed;
  }
}

/** Send a FATAL ErrorResponse and close. */
function fatal(socket: Socket, sqlstate: string, message: string): void {
  if (socket.writable) socket.end(errorResponse('FATAL', sqlstate, message));
  else socket.destroy();
  setTimeout(() => socket.destroy(), 1_000).unref();
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
      throw new Error(
        `demo database ${dir} is in use by process ${owner} (lock file ${lockPath}; remove it if that process is not jitgate)`,
      );
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
