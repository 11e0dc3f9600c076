/**
 * A small simple-query client for the gateway's own administrative SQL on a backend (creating and
 * dropping per-session roles, listing them for the janitor). It logs in with connectBackend, so it
 * speaks every auth method and TLS mode a data session does, with the same stored credential.
 *
 * Deliberately minimal: simple Query protocol only, results as text, one query at a time. A query
 * string with several statements runs in one implicit transaction on the server, so either all of
 * them take effect or none does; callers rely on that for atomic create-and-comment.
 */
import type net from 'node:net';
import { GatewayError } from '../../core/errors.js';
import type { BackendTarget } from '../../core/types.js';
import { connectBackend } from './backend.js';
import { build, Framer, HEADER_LENGTH, MessageType, parseFields, ProtocolError, readCString } from './codec.js';

export interface StatementResult {
  /** The CommandComplete tag, e.g. "CREATE ROLE" or "SELECT 2" ('' for an empty query). */
  command: string;
  /** Rows by column name, values in text format (null for SQL NULL). */
  rows: Array<Record<string, string | null>>;
}

/** The backend answered a query with an ErrorResponse. Fields are the backend's own. */
export class BackendQueryError extends Error {
  readonly sqlstate: string;
  readonly detail?: string;

  constructor(fields: Map<string, string>) {
    super(fields.get('M') ?? 'unknown backend error');
    this.name = 'BackendQueryError';
    this.sqlstate = fields.get('C') ?? '';
    this.detail = fields.get('D');
  }
}

export interface AdminConnectOptions {
  /** How the connection shows in pg_stat_activity, so a DBA can tell it apart from data sessions. */
  applicationName?: string;
  /** Upper bound for each query, login excluded (that one is bounded by target.connectTimeoutMs). */
  queryTimeoutMs?: number;
}

interface Message {
  type: number;
  /** The whole message, header included. */
  raw: Buffer;
  body: Buffer;
}

export class AdminConnection {
  private readonly framer = new Framer();
  private readonly inbox: Message[] = [];
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly socket: net.Socket,
    leftover: Buffer,
    private readonly queryTimeoutMs: number,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new GatewayError('backend_lost', 'the backend closed the administrative connection')));
    if (leftover.length > 0) this.receive(leftover);
    socket.resume();
  }

  static async open(target: BackendTarget, options: AdminConnectOptions = {}): Promise<AdminConnection> {
    const params = new Map([['application_name', options.applicationName ?? 'jitgate']]);
    const session = await connectBackend(target, params);
    return new AdminConnection(session.socket, session.leftover, options.queryTimeoutMs ?? 15_000);
  }

  /** False once the backend closed the connection or it failed: a pool opens a fresh one instead. */
  get alive(): boolean {
    return this.failure === null && !this.socket.destroyed;
  }

  /**
   * Runs one simple Query (possibly several statements) and returns one result per statement.
   * Throws BackendQueryError when the backend reports an error (the whole query is then rolled back).
   */
  query(sql: string): Promise<StatementResult[]> {
    const run = this.queue.then(() => this.run(sql));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Polite goodbye (Terminate), then close; never throws. */
  async close(): Promise<void> {
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.socket.destroy(), 1_000);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.end(build.terminate());
    });
  }

  private async run(sql: string): Promise<StatementResult[]> {
    if (this.failure) throw this.failure;
    this.socket.write(build.query(sql));
    const results: StatementResult[] = [];
    let columns: string[] = [];
    let rows: Array<Record<string, string | null>> = [];
    let error: BackendQueryError | undefined;
    const deadline = Date.now() + this.queryTimeoutMs;
    for (;;) {
      const m = await this.next(deadline);
      switch (m.type) {
        case MessageType.RowDescription:
          columns = parseColumns(m.body);
          rows = [];
          break;
        case MessageType.DataRow:
          rows.push(parseRow(m.body, columns));
          break;
        case MessageType.CommandComplete:
          results.push({ command: readCString(m.body, 0).value, rows });
          columns = [];
          rows = [];
          break;
        case MessageType.EmptyQueryResponse:
          results.push({ command: '', rows: [] });
          break;
        case MessageType.ErrorResponse:
          error = new BackendQueryError(parseFields(m.raw, 0, m.raw.length));
          break;
        case MessageType.CopyInResponse:
        case MessageType.CopyBothResponse:
          // Administrative SQL never copies; refuse so the backend does not wait for data forever.
          this.socket.write(build.copyFail('jitgate administrative connections do not support COPY'));
          break;
        case MessageType.ReadyForQuery:
          if (error) throw error;
          return results;
        default:
          // NoticeResponse, ParameterStatus, NotificationResponse, CopyOut data: nothing to act on.
          break;
      }
    }
  }

  private receive(chunk: Buffer): void {
    try {
      this.framer.push(chunk, (type, buf, start, end) => {
        const raw = Buffer.from(buf.subarray(start, end));
        this.inbox.push({ type, raw, body: raw.subarray(HEADER_LENGTH) });
      });
    } catch (err) {
      this.fail(err as Error);
      this.socket.destroy();
    }
    this.wake();
  }

  private fail(err: Error): void {
    this.failure ??= err instanceof ProtocolError ? new GatewayError('backend_lost', err.message) : err;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private async next(deadline: number): Promise<Message> {
    for (;;) {
      const m = this.inbox.shift();
      if (m) return m;
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => {
            this.waiter = null;
            // The backend may still be working on it; a fresh connection is the only clean state.
            this.fail(new GatewayError('backend_unavailable', 'administrative query on the backend timed out'));
            this.socket.destroy();
            reject(this.failure);
          },
          Math.max(0, deadline - Date.now()),
        );
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

/** Opens an administrative connection, runs `fn` with it and always closes it. */
export async function withAdminConnection<T>(
  target: BackendTarget,
  fn: (conn: AdminConnection) => Promise<T>,
  options?: AdminConnectOptions,
): Promise<T> {
  const conn = await AdminConnection.open(target, options);
  try {
    return await fn(conn);
  } finally {
    await conn.close();
  }
}

function parseColumns(body: Buffer): string[] {
  const count = body.readInt16BE(0);
  const names: string[] = [];
  let pos = 2;
  for (let i = 0; i < count; i++) {
    const name = readCString(body, pos);
    names.push(name.value);
    pos = name.next + 18; // table oid, attnum, type oid, typlen, typmod, format
  }
  return names;
}

function parseRow(body: Buffer, columns: string[]): Record<string, string | null> {
  const count = body.readInt16BE(0);
  const row: Record<string, string | null> = {};
  let pos = 2;
  for (let i = 0; i < count; i++) {
    const length = body.readInt32BE(pos);
    pos += 4;
    const name = columns[i] ?? `column${i + 1}`;
    if (length < 0) {
      row[name] = null;
    } else {
      row[name] = body.toString('utf8', pos, pos + length);
      pos += length;
    }
  }
  return row;
}
