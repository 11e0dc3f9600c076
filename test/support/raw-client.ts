/**
 * A minimal PostgreSQL client for tests that need to see or send raw protocol messages after a
 * real login through the gateway. It reuses the gateway's own backend-side client for the login.
 */
import net from 'node:net';
import { connectBackend } from '../../src/protocols/postgres/backend.js';
import { Framer, parseFields } from '../../src/protocols/postgres/codec.js';

export interface RawMessage {
  type: string;
  body: Buffer;
}

export interface RawSession {
  socket: net.Socket;
  /** Messages received so far (consumed by the waiters). */
  messages: RawMessage[];
  /** Waits until a message of `type` arrives (bounded), returning everything up to and including it. */
  until(type: string, timeoutMs?: number): Promise<RawMessage[]>;
  closed: Promise<void>;
}

export async function rawLogin(opts: {
  host: string;
  port: number;
  user: string;
  connection: string;
  token: string;
  tls?: boolean;
  params?: Record<string, string>;
}): Promise<RawSession> {
  const backend = await connectBackend(
    {
      connection: opts.connection,
      protocol: 'postgres',
      host: opts.host,
      port: opts.port,
      database: opts.connection,
      user: opts.user,
      password: opts.token,
      tls: { mode: opts.tls ? 'require' : 'disable' },
      connectTimeoutMs: 10_000,
    },
    new Map(Object.entries(opts.params ?? {})),
  );
  return wrap(backend.socket, backend.leftover);
}

export function wrap(socket: net.Socket, early: Buffer = Buffer.alloc(0)): RawSession {
  const framer = new Framer();
  const messages: RawMessage[] = [];
  let wake: (() => void) | null = null;
  const onChunk = (chunk: Buffer) => {
    framer.push(chunk, (type, buf, start, end) => {
      messages.push({ type: String.fromCharCode(type), body: Buffer.from(buf.subarray(start + 5, end)) });
    });
    wake?.();
  };
  socket.on('data', onChunk);
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  if (early.length) onChunk(early);
  socket.resume();
  return {
    socket,
    messages,
    closed,
    async until(type, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = messages.findIndex((m) => m.type === type);
        if (i >= 0) return messages.splice(0, i + 1);
        if (Date.now() > deadline || socket.destroyed) {
          throw new Error(`no "${type}" message; got ${messages.map((m) => m.type).join('')}`);
        }
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 50);
        });
      }
    },
  };
}

/** SQLSTATE and message of an ErrorResponse/NoticeResponse body. */
export function errorOf(m: RawMessage): { code?: string; message?: string; severity?: string } {
  const full = Buffer.concat([Buffer.from([0x45, 0, 0, 0, 0]), m.body]);
  const f = parseFields(full, 0, full.length);
  return { code: f.get('C'), message: f.get('M'), severity: f.get('S') };
}

/** A CancelRequest, as psql's Ctrl-C sends it on a new connection, to a listener on loopback. */
export async function sendCancelRequest(port: number, pid: number, secret: number): Promise<void> {
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(80877102, 4);
  packet.writeInt32BE(pid, 8);
  packet.writeInt32BE(secret, 12);
  await new Promise<void>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.end(packet));
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
}
