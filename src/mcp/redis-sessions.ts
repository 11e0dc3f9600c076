/**
 * An agent's Redis sessions: like data-sessions.ts for SQL, a command from an MCP call goes through
 * the gateway's own Redis listener (TLS pinned to the gateway's certificate, `AUTH user@connection
 * token` with a token minted under the agent's grant), so guardrails, masking and recording apply as
 * for redis-cli. One session per (agent, connection), commands one at a time, closed when idle.
 */
import tls from 'node:tls';
import type { Identity } from '../core/types.js';
import { encodeCommand, ReplyReader, type RespValue } from '../protocols/redis/resp.js';
import type { PostgresEndpoint } from './data-sessions.js';
import { type PooledConnection, SessionPool } from './session-pool.js';

export type RedisEndpoint = PostgresEndpoint;

export type RedisOutcome =
  { status: 'ok'; reply: unknown; truncated: boolean } | { status: 'refused' | 'error'; code: string; message: string };

export interface RedisSessionsOptions {
  endpoint: () => RedisEndpoint | undefined;
  mintToken: (who: Identity, connection: string) => Promise<string>;
  idleMs: number;
  /** Caps on what one reply returns to the agent. */
  maxItems: number;
  maxValueBytes: number;
}

/** Commands that would turn the connection into a stream or a different protocol state. */
const NOT_FOR_AGENTS = new Set([
  'subscribe',
  'psubscribe',
  'ssubscribe',
  'monitor',
  'hello',
  'auth',
  'reset',
  'quit',
  'multi',
  'exec',
  'discard',
  'watch',
  'unwatch',
  'select',
]);

class RedisConnection implements PooledConnection {
  private readonly reader: ReplyReader;
  private waiting: Array<{ resolve: (v: RespValue) => void; reject: (e: Error) => void }> = [];
  private closed: Error | undefined;
  busy = false;

  private constructor(
    private readonly socket: tls.TLSSocket,
    limits: { keepBytes: number; keepItems: number },
  ) {
    this.reader = new ReplyReader(limits);
    socket.on('data', (chunk: Buffer) => {
      try {
        this.reader.push(chunk, {
          begin: () => undefined,
          bytes: () => undefined,
          end: (value) => this.waiting.shift()?.resolve(value),
        });
      } catch (err) {
        this.fail(err as Error);
      }
    });
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('the gateway closed the Redis session')));
  }

  static async open(endpoint: RedisEndpoint, limits: { keepBytes: number; keepItems: number }): Promise<RedisConnection> {
    const socket = tls.connect({
      host: endpoint.host,
      port: endpoint.port,
      ca: endpoint.certificate,
      checkServerIdentity: () => undefined,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    return new RedisConnection(socket, limits);
  }

  usable(): boolean {
    return this.closed === undefined;
  }

  send(args: string[]): Promise<RespValue> {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.socket.write(encodeCommand(args));
    });
  }

  close(): void {
    this.socket.end();
    this.fail(new Error('closed'));
  }

  private fail(err: Error): void {
    this.closed ??= err;
    const waiting = this.waiting;
    this.waiting = [];
    for (const w of waiting) w.reject(err);
  }
}

export class RedisSessions {
  private readonly pool: SessionPool<RedisConnection>;

  constructor(private readonly o: RedisSessionsOptions) {
    this.pool = new SessionPool((who, connection) => this.open(who, connection), o.idleMs);
  }

  async command(who: Identity, connection: string, args: string[]): Promise<RedisOutcome> {
    const name = (args[0] ?? '').toLowerCase();
    if (NOT_FOR_AGENTS.has(name)) {
      return {
        status: 'refused',
        code: 'unsupported_command',
        message: `${name.toUpperCase()} changes the connection's state; run single commands (each call is one command)`,
      };
    }
    let conn: RedisConnection;
    try {
      conn = await this.pool.get(who, connection);
    } catch (err) {
      return { status: 'error', code: 'connection_failed', message: (err as Error).message };
    }
    if (conn.busy) return { status: 'error', code: 'session_busy', message: `another command is still running on "${connection}"` };
    conn.busy = true;
    try {
      const reply = await conn.send(args);
      if (reply.type === 'error' || reply.type === 'bloberror') {
        const text = reply.type === 'error' ? reply.text : reply.data.toString('utf8');
        const code = text.split(' ', 1)[0] ?? 'ERR';
        // NOPERM is how the gateway refuses (guardrails); other codes come from Redis.
        return { status: code === 'NOPERM' ? 'refused' : 'error', code, message: text };
      }
      const state = { truncated: false };
      return { status: 'ok', reply: plain(reply, state), truncated: state.truncated };
    } catch (err) {
      return { status: 'error', code: 'connection_lost', message: (err as Error).message };
    } finally {
      this.pool.release(who, connection, conn);
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private async open(who: Identity, connection: string): Promise<RedisConnection> {
    const endpoint = this.o.endpoint();
    if (!endpoint) throw new Error('this gateway has no Redis listener');
    const token = await this.o.mintToken(who, connection);
    const conn = await RedisConnection.open(endpoint, { keepBytes: this.o.maxValueBytes, keepItems: this.o.maxItems });
    const auth = await conn.send(['AUTH', `${who.user}@${connection}`, token]);
    if (auth.type === 'error') {
      conn.close();
      throw new Error(auth.text);
    }
    await conn.send(['CLIENT', 'SETNAME', 'jitgate-mcp']).catch(() => undefined);
    return conn;
  }
}

/** A reply as JSON for the model; values and lists past the caps are cut and flagged. */
function plain(v: RespValue, state: { truncated: boolean }): unknown {
  switch (v.type) {
    case 'simple':
    case 'double':
    case 'bignum':
      return v.text;
    case 'integer':
      return Number.isSafeInteger(Number(v.text)) ? Number(v.text) : v.text;
    case 'boolean':
      return v.value;
    case 'null':
      return null;
    case 'error':
      return { error: v.text };
    case 'bulk':
    case 'verbatim':
    case 'bloberror': {
      if (v.data === null) return null;
      if (v.type !== 'bloberror' && v.cut !== undefined) state.truncated = true;
      return v.data.toString('utf8');
    }
    default: {
      if (v.items === null) return null;
      if (v.cut) state.truncated = true;
      const items = v.items.map((x) => plain(x, state));
      if (v.type !== 'map') return items;
      const out: Record<string, unknown> = {};
      for (let i = 0; i + 1 < items.length; i += 2) out[String(items[i])] = items[i + 1];
      return out;
    }
  }
}
