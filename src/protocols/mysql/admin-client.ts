/**
 * A minimal MySQL client for the gateway's own administrative statements (per-session users, KILL
 * QUERY): one short connection, text-protocol queries one at a time, rows as strings; and one query
 * on a session's own backend connection before its client's commands.
 */
import { GatewayError } from '../../core/errors.js';
import type { BackendTarget } from '../../core/types.js';
import { connectMysqlBackend, PASSTHROUGH_CAPABILITIES, type MysqlBackendSession } from './backend.js';
import {
  Cap,
  Command,
  Marker,
  MAX_PACKET,
  MysqlProtocolError,
  packet,
  parseErr,
  readLenenc,
  readLenencBytes,
  Status,
  terminatorStatus,
} from './packets.js';
import { PacketStream } from './packet-stream.js';

export class MysqlQueryError extends Error {
  constructor(
    readonly errno: number,
    readonly sqlState: string,
    message: string,
  ) {
    super(message);
    this.name = 'MysqlQueryError';
  }
}

export interface MysqlAdminConnection {
  serverVersion: string;
  /** Rows of the last result set of the statement (strings; null for NULL). */
  query(sql: string): Promise<Array<Array<string | null>>>;
  close(): void;
}

export async function openMysqlAdmin(target: BackendTarget): Promise<MysqlAdminConnection> {
  const session = await connectMysqlBackend(target, { clientCapabilities: PASSTHROUGH_CAPABILITIES & ~Cap.MULTI_STATEMENTS });
  const stream = new PacketStream(session.socket, Math.max(target.connectTimeoutMs, 10_000), 'administrative query', 64 * 1024 * 1024);
  const deprecateEof = (session.capabilities & Cap.DEPRECATE_EOF) !== 0;
  let busy = false;
  return {
    serverVersion: session.serverVersion,
    async query(sql: string) {
      if (busy) throw new Error('one query at a time');
      busy = true;
      try {
        return await runQuery(session, stream, deprecateEof, sql);
      } finally {
        busy = false;
      }
    },
    close() {
      stream.detach();
      session.socket.end(packet(Buffer.from([Command.QUIT]), 0));
      session.socket.destroy();
    },
  };
}

/**
 * Runs one query on a session's freshly logged-in backend connection before the client's commands
 * (masking reads the views the session's own user sees): no second backend connection at login.
 */
export async function querySession(session: MysqlBackendSession, sql: string): Promise<Array<Array<string | null>>> {
  if (session.leftover.length > 0) throw new MysqlProtocolError('backend sent data before the first command');
  const stream = new PacketStream(session.socket, 10_000, 'session setup', 64 * 1024 * 1024);
  try {
    return await runQuery(session, stream, (session.capabilities & Cap.DEPRECATE_EOF) !== 0, sql);
  } finally {
    session.leftover = stream.detach();
  }
}

/** Rows of the last result set of one text-protocol query (strings; null for NULL). */
async function runQuery(
  session: MysqlBackendSession,
  stream: PacketStream,
  deprecateEof: boolean,
  sql: string,
): Promise<Array<Array<string | null>>> {
  try {
    session.socket.write(packet(Buffer.concat([Buffer.from([Command.QUERY]), Buffer.from(sql, 'utf8')]), 0));
    let rows: Array<Array<string | null>> = [];
    for (;;) {
      const first = (await stream.read()).payload;
      if (first[0] === Marker.ERR) {
        const e = parseErr(first);
        throw new MysqlQueryError(e.errno, e.sqlState, e.message);
      }
      if (first[0] === Marker.OK) {
        if (terminatorStatus(first) & Status.MORE_RESULTS_EXISTS) continue;
        return rows;
      }
      const columns = readLenenc(first, 0).value ?? 0;
      for (let i = 0; i < columns; i++) await stream.read();
      if (!deprecateEof) await stream.read();
      rows = [];
      for (;;) {
        const p = (await stream.read()).payload;
        if (p[0] === Marker.ERR) {
          const e = parseErr(p);
          throw new MysqlQueryError(e.errno, e.sqlState, e.message);
        }
        if (p[0] === Marker.EOF && p.length < MAX_PACKET) {
          if (terminatorStatus(p) & Status.MORE_RESULTS_EXISTS) break;
          return rows;
        }
        const row: Array<string | null> = [];
        let pos = 0;
        for (let i = 0; i < columns; i++) {
          const v = readLenencBytes(p, pos);
          row.push(v.value === null ? null : v.value.toString('utf8'));
          pos = v.next;
        }
        rows.push(row);
      }
    }
  } catch (err) {
    if (err instanceof MysqlQueryError) throw err;
    session.socket.destroy();
    throw err instanceof MysqlProtocolError ? new GatewayError('backend_unavailable', 'the backend connection broke', err.message) : err;
  }
}

export async function withMysqlAdmin<T>(target: BackendTarget, fn: (conn: MysqlAdminConnection) => Promise<T>): Promise<T> {
  const conn = await openMysqlAdmin(target);
  try {
    return await fn(conn);
  } finally {
    conn.close();
  }
}
