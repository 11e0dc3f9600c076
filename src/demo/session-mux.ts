/**
 * Many client sessions over PGlite's one PostgreSQL backend.
 *
 * PGlite is a single backend (one session). The demo database still has to serve several sessions at
 * once: a psql in one terminal, the console's user in another, and the gateway's own catalog
 * connection for masking. So every client gets its own session here, answered by the front (startup,
 * keys), and their requests take turns on one connection to PGlite:
 *
 *  - a session holds the backend from its first message until the backend is idle again: the
 *    ReadyForQuery that answers its last Query/Sync, outside a transaction block and outside an
 *    unfinished extended-protocol batch (Parse/Bind/... not yet followed by Sync). A transaction thus
 *    holds the database for its session; the others wait (FIFO), and a request that waits longer than
 *    `queueTimeoutMs` gets ERROR 55P03 saying which session holds it and for how long;
 *  - named prepared statements and portals are renamed per session (`jg<id>_<name>`, and back in
 *    error texts), so sessions can use the same names; a session's statements are closed when it
 *    ends, and an ending session's open transaction is rolled back and its batch ended;
 *  - what PostgreSQL keeps per session and the protocol cannot see is shared, and said so in the
 *    README: SET, SQL-level PREPARE, temporary tables, LISTEN;
 *  - COPY FROM STDIN cannot work (PGlite executes one message at a time and reads EOF where the copy
 *    data should be, then wedges): the CopyInResponse is replaced by an ERROR 0A000 saying so, and
 *    PGlite is restarted (committed data survives) before the next request.
 */
import net, { type Socket } from 'node:net';
import type { Logger } from '../obs/log.js';
import {
  AUTHENTICATION_OK,
  FrameReader,
  SYNC,
  WireError,
  backendKeyData,
  cstring,
  errorResponse,
  fieldsBody,
  frame,
  readCString,
  readyForQuery,
  responseFields,
  simpleQuery,
  startupMessage,
  type Frame,
} from './pg-wire.js';

/** One connection to PGlite's socket server, past its startup. */
export class BackendLink {
  private reader = new FrameReader();
  onFrame: (f: Frame) => void = () => undefined;
  onClose: () => void = () => undefined;

  private constructor(
    private readonly socket: Socket,
    /** The ParameterStatus frames of the startup, replayed to every client session. */
    readonly parameters: Buffer[],
  ) {
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = this.reader.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const f of frames) this.onFrame(f);
    });
    socket.on('close', () => this.onClose());
  }

  static open(port: number, timeoutMs = 10_000): Promise<BackendLink> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.setNoDelay(true);
      const reader = new FrameReader();
      const parameters: Buffer[] = [];
      const timer = setTimeout(() => fail(new Error('the demo database did not finish its startup in time')), timeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const onData = (chunk: Buffer) => {
        let frames: Frame[];
        try {
          frames = reader.push(chunk);
        } catch (err) {
          return fail(err as Error);
        }
        for (const [i, f] of frames.entries()) {
          if (f.type === 'S') parameters.push(Buffer.from(f.raw));
          else if (f.type === 'E') return fail(new Error(`the demo database refused the startup: ${messageOf(f.body)}`));
          else if (f.type === 'Z') {
            clearTimeout(timer);
            socket.off('data', onData);
            socket.off('error', fail);
            socket.on('error', () => undefined);
            const link = new BackendLink(socket, parameters);
            resolve(link);
            // Anything after the ReadyForQuery (nothing, normally) belongs to the link.
            for (const rest of frames.slice(i + 1)) link.onFrame(rest);
            return;
          }
        }
      };
      socket.on('data', onData);
      socket.once('error', fail);
      socket.once('connect', () =>
        socket.write(
          startupMessage([
            ['user', 'postgres'],
            ['database', 'postgres'],
          ]),
        ),
      );
    });
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  pauseUntilDrained(sink: Socket): void {
    this.socket.pause();
    sink.once('drain', () => this.socket.resume());
    sink.once('close', () => this.socket.resume());
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function messageOf(body: Buffer): string {
  return responseFields(body).find(([k]) => k === 'M')?.[1] ?? 'error';
}

interface MuxSession {
  id: number;
  /** Prefix of this session's statement and portal names on the shared backend. */
  prefix: string;
  socket: Socket;
  reader: FrameReader;
  /** Messages waiting for the backend. */
  pending: Frame[];
  /** Named prepared statements (as the client named them) open on the backend. */
  statements: Set<string>;
  closed: boolean;
  /** After an ERROR for a batch that had not reached its Sync: drop messages up to that Sync. */
  skipUntilSync: boolean;
  waitTimer?: NodeJS.Timeout;
}

export interface SessionMuxOptions {
  queueTimeoutMs: number;
  maxSessions: number;
  logger: Logger;
  /** Replace a wedged or lost PGlite and connect to the new one. */
  restart: () => Promise<BackendLink>;
}

/** Pause reading from a waiting client that has this much queued (it resumes when served). */
const MAX_PENDING_BYTES = 1024 * 1024;

export class SessionMux {
  private backend: BackendLink | undefined;
  private owner: MuxSession | undefined;
  private heldSince = 0;
  /** Query/Sync messages forwarded whose ReadyForQuery has not arrived. */
  private outstanding = 0;
  /** The owner sent extended-protocol messages not yet followed by Sync. */
  private midBatch = false;
  private txStatus: 'I' | 'T' | 'E' = 'I';
  private readonly waiting: MuxSession[] = [];
  private readonly sessions = new Set<MuxSession>();
  private nextId = 1;
  private restarting: Promise<void> | undefined;
  private closing = false;
  /** The backend's ParameterStatus messages, kept across restarts for sessions starting meanwhile. */
  private parameters: Buffer[] = [];

  constructor(
    backend: BackendLink,
    private readonly opts: SessionMuxOptions,
  ) {
    this.use(backend);
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Take over a client whose StartupMessage was accepted; `rest` is what followed it. */
  attach(socket: Socket, rest: Buffer, greeting: Buffer[] = []): void {
    if (this.closing) {
      socket.end(errorResponse('FATAL', '57P01', 'the demo database is shutting down'));
      return;
    }
    if (this.sessions.size >= this.opts.maxSessions) {
      socket.end(errorResponse('FATAL', '53300', `the demo database serves at most ${this.opts.maxSessions} sessions at once`));
      return;
    }
    const id = this.nextId++;
    const s: MuxSession = {
      id,
      prefix: `jg${id}_`,
      socket,
      reader: new FrameReader(),
      pending: [],
      statements: new Set(),
      closed: false,
      skipUntilSync: false,
    };
    this.sessions.add(s);
    const params = this.parameters;
    socket.write(
      Buffer.concat([...greeting, AUTHENTICATION_OK, ...params, backendKeyData(id, (Math.random() * 0x7fffffff) | 0), readyForQuery('I')]),
    );
    socket.on('data', (chunk: Buffer) => this.receive(s, chunk));
    socket.on('close', () => this.detach(s));
    socket.on('error', (err) => this.opts.logger.debug({ err }, 'demo database client socket error'));
    if (rest.length > 0) this.receive(s, rest);
  }

  /** End every session (shutdown). */
  close(): void {
    this.closing = true;
    for (const s of [...this.sessions]) this.fatal(s, '57P01', 'the demo database is shutting down');
    this.backend?.destroy();
  }

  // -- clients --------------------------------------------------------------------------------------

  private receive(s: MuxSession, chunk: Buffer): void {
    if (s.closed) return;
    let frames: Frame[];
    try {
      frames = s.reader.push(chunk);
    } catch (err) {
      return this.fatal(s, '08P01', (err as WireError).message);
    }
    for (const f of frames) {
      if (s.closed) return;
      if (f.type === 'X') {
        s.socket.end();
        return this.detach(s);
      }
      if (s.skipUntilSync) {
        if (f.type === 'S') {
          s.skipUntilSync = false;
          s.socket.write(readyForQuery('I'));
        }
        continue;
      }
      if (s === this.owner) this.forward(s, f);
      else s.pending.push(f);
    }
    if (s !== this.owner && s.pending.length > 0) {
      if (s.pending.reduce((n, f) => n + f.raw.length, 0) > MAX_PENDING_BYTES) s.socket.pause();
      this.enqueue(s);
    }
  }

  private enqueue(s: MuxSession): void {
    if (!this.waiting.includes(s)) {
      this.waiting.push(s);
      if (!s.closed) s.waitTimer = setTimeout(() => this.waitedTooLong(s), this.opts.queueTimeoutMs);
    }
    this.pump();
  }

  /**
   * A request waited longer than the queue timeout: answer it with an ERROR that says why (the
   * session stays usable), up to its Query or Sync; what the client sent after that waits anew.
   */
  private waitedTooLong(s: MuxSession): void {
    const i = this.waiting.indexOf(s);
    if (i === -1 || s === this.owner || s.closed) return;
    if (!this.owner) {
      // PGlite is being restarted (a few seconds): not another session's doing, keep waiting.
      s.waitTimer = setTimeout(() => this.waitedTooLong(s), this.opts.queueTimeoutMs);
      return;
    }
    this.waiting.splice(i, 1);
    const held = Math.round((Date.now() - this.heldSince) / 1000);
    const holder = `session ${this.owner.id}`;
    s.socket.write(
      errorResponse(
        'ERROR',
        '55P03',
        `the demo database is busy: ${holder} has held it for ${held}s (${this.txStatus === 'I' ? 'running a statement' : 'in a transaction'}). ` +
          'PGlite has one backend, shared by every session in turn; try again when that ends',
      ),
    );
    const end = s.pending.findIndex((f) => f.type === 'Q' || f.type === 'S' || f.type === 'F');
    if (end === -1) {
      s.pending = [];
      s.skipUntilSync = true;
    } else {
      s.pending = s.pending.slice(end + 1);
      s.socket.write(readyForQuery('I'));
    }
    s.socket.resume();
    if (s.pending.length > 0) this.enqueue(s);
  }

  private detach(s: MuxSession): void {
    if (s.closed) return;
    s.closed = true;
    clearTimeout(s.waitTimer);
    s.pending = [];
    if (s === this.owner) {
      if (this.outstanding === 0) this.cleanUp();
      return; // otherwise after the ReadyForQuery of what is running
    }
    const i = this.waiting.indexOf(s);
    if (i !== -1) this.waiting.splice(i, 1);
    if (s.statements.size > 0) this.enqueue(s);
    else this.sessions.delete(s);
  }

  private fatal(s: MuxSession, sqlstate: string, message: string): void {
    if (s.socket.writable) s.socket.end(errorResponse('FATAL', sqlstate, message));
    setTimeout(() => s.socket.destroy(), 1_000).unref();
    this.detach(s);
  }

  // -- the shared backend ---------------------------------------------------------------------------

  private pump(): void {
    while (!this.owner && this.backend && !this.restarting && this.waiting.length > 0) {
      const s = this.waiting.shift() as MuxSession;
      clearTimeout(s.waitTimer);
      if (!s.closed && s.pending.length === 0) continue;
      this.owner = s;
      this.heldSince = Date.now();
      this.outstanding = 0;
      this.midBatch = false;
      if (s.closed) {
        this.cleanUp();
        continue;
      }
      const frames = s.pending;
      s.pending = [];
      s.socket.resume();
      for (const f of frames) this.forward(s, f);
    }
  }

  private forward(s: MuxSession, f: Frame): void {
    switch (f.type) {
      case 'Q':
      case 'F':
        this.outstanding++;
        break;
      case 'S':
        this.outstanding++;
        this.midBatch = false;
        break;
      case 'P':
      case 'B':
      case 'D':
      case 'C':
      case 'E':
        this.midBatch = true;
        break;
      default:
        break;
    }
    let raw: Buffer;
    try {
      raw = renamed(f, s);
    } catch (err) {
      return this.fatal(s, '08P01', (err as WireError).message);
    }
    this.backend?.write(raw);
  }

  private use(backend: BackendLink): void {
    this.backend = backend;
    this.parameters = backend.parameters;
    backend.onFrame = (f) => this.fromBackend(backend, f);
    backend.onClose = () => {
      if (this.backend === backend && !this.closing) void this.restart('the demo database connection was lost');
    };
  }

  private fromBackend(backend: BackendLink, f: Frame): void {
    if (backend !== this.backend) return;
    const s = this.owner;
    if (f.type === 'G') return this.refuseCopyIn();
    if (f.type === 'Z') {
      this.outstanding = Math.max(0, this.outstanding - 1);
      this.txStatus = f.body.toString('latin1', 0, 1) as 'I' | 'T' | 'E';
    }
    if (s && !s.closed) {
      const out = f.type === 'E' || f.type === 'N' ? unrenamed(f, s) : f.raw;
      if (!s.socket.write(out)) backend.pauseUntilDrained(s.socket);
    }
    if (f.type === 'E' && responseFields(f.body).some(([k, v]) => k === 'S' && (v === 'FATAL' || v === 'PANIC'))) {
      void this.restart('the demo database ended its session with a fatal error');
      return;
    }
    if (f.type === 'Z' && s) {
      if (s.closed) {
        if (this.outstanding === 0) this.cleanUp();
      } else if (this.outstanding === 0 && !this.midBatch && this.txStatus === 'I') {
        this.release();
      }
    }
  }

  /** The owner left: finish its batch, roll back its transaction, close its statements, then let go. */
  private cleanUp(): void {
    const s = this.owner;
    if (!s || !this.backend) return;
    if (this.midBatch) {
      this.midBatch = false;
      this.outstanding++;
      this.backend.write(SYNC);
    } else if (this.txStatus !== 'I') {
      this.outstanding++;
      this.backend.write(simpleQuery('ROLLBACK'));
    } else if (s.statements.size > 0) {
      const closes = [...s.statements].map((name) => frame('C', Buffer.concat([Buffer.from('S'), cstring(s.prefix + name)])));
      s.statements.clear();
      this.outstanding++;
      this.backend.write(Buffer.concat([...closes, SYNC]));
    } else {
      this.sessions.delete(s);
      this.release();
    }
  }

  private release(): void {
    this.owner = undefined;
    this.pump();
  }

  /**
   * PGlite cannot take COPY FROM STDIN over a connection: it would read EOF for the data and wedge.
   * The client gets an ERROR instead of the CopyInResponse, and PGlite is restarted.
   */
  private refuseCopyIn(): void {
    const s = this.owner;
    if (s && !s.closed) {
      s.socket.write(
        errorResponse(
          'ERROR',
          '0A000',
          'COPY FROM STDIN is not available on the demo database (PGlite cannot read copy data from a connection); COPY TO STDOUT works',
        ),
      );
      if (this.outstanding > 0) s.socket.write(readyForQuery(this.txStatus === 'I' ? 'I' : 'E'));
      else s.skipUntilSync = true;
    }
    void this.restart('COPY FROM STDIN wedges PGlite', { ownerAnswered: true });
  }

  /**
   * Replace PGlite. The session holding it loses its running statement and transaction (it is ended,
   * unless it has been answered already); sessions with named prepared statements lose those, so they
   * are ended too; the others carry on.
   */
  private restart(why: string, opts: { ownerAnswered?: boolean } = {}): Promise<void> {
    this.restarting ??= (async () => {
      this.opts.logger.warn({ why }, 'restarting the demo database');
      const cut = opts.ownerAnswered ? undefined : this.owner;
      this.owner = undefined;
      this.outstanding = 0;
      this.midBatch = false;
      this.txStatus = 'I';
      this.backend?.destroy();
      this.backend = undefined;
      for (const s of [...this.sessions]) {
        if (s.closed) this.sessions.delete(s);
        else if (s === cut || s.statements.size > 0) {
          s.statements.clear();
          this.fatal(s, '57P01', `the demo database restarted (${why}); connect again`);
        }
      }
      try {
        this.use(await this.opts.restart());
      } catch (err) {
        this.opts.logger.error({ err }, 'the demo database could not be restarted');
        for (const s of [...this.sessions]) this.fatal(s, '57P03', 'the demo database is not available');
      } finally {
        this.restarting = undefined;
      }
      this.pump();
    })();
    return this.restarting;
  }
}

/** The frame with this session's statement and portal names as they are on the shared backend. */
function renamed(f: Frame, s: MuxSession): Buffer {
  const b = f.body;
  const name = (n: string) => (n === '' ? '' : s.prefix + n);
  switch (f.type) {
    case 'P': {
      const [stmt, next] = readCString(b, 0);
      if (stmt !== '') s.statements.add(stmt);
      return stmt === '' ? f.raw : frame('P', Buffer.concat([cstring(name(stmt)), b.subarray(next)]));
    }
    case 'B': {
      const [portal, afterPortal] = readCString(b, 0);
      const [stmt, next] = readCString(b, afterPortal);
      if (portal === '' && stmt === '') return f.raw;
      return frame('B', Buffer.concat([cstring(name(portal)), cstring(name(stmt)), b.subarray(next)]));
    }
    case 'D':
    case 'C': {
      const kind = b.toString('latin1', 0, 1);
      const [n, next] = readCString(b, 1);
      if (f.type === 'C' && kind === 'S') s.statements.delete(n);
      return n === '' ? f.raw : frame(f.type, Buffer.concat([b.subarray(0, 1), cstring(name(n)), b.subarray(next)]));
    }
    case 'E': {
      const [portal, next] = readCString(b, 0);
      return portal === '' ? f.raw : frame('E', Buffer.concat([cstring(name(portal)), b.subarray(next)]));
    }
    default:
      return f.raw;
  }
}

/** An error or notice with the session's own names in its texts. */
function unrenamed(f: Frame, s: MuxSession): Buffer {
  if (!f.raw.includes(s.prefix)) return f.raw;
  const fields = responseFields(f.body).map(([k, v]): [string, string] => [k, v.split(`"${s.prefix}`).join('"')]);
  return frame(f.type, fieldsBody(fields));
}
