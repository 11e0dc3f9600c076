/**
 * The gateway's connection to a Redis backend: TCP or TLS (Redis has no in-band upgrade, so the
 * connection's tls.mode `require`/`verify-full` means TLS from the first byte and `disable`/`prefer`
 * means plain TCP), then the gateway-held credential (AUTH or HELLO ... AUTH), the client's protocol
 * version, the configured database, and the backend's client id (to scope CLIENT LIST to the
 * session's own connection). Nothing of the user's token reaches the backend.
 */
import net from 'node:net';
import tls from 'node:tls';
import { withPasswordRetry } from '../../core/backend-password.js';
import { GatewayError } from '../../core/errors.js';
import type { BackendTarget } from '../../core/types.js';
import { encodeCommand, ReplyReader, simpleReply, type RespValue } from './resp.js';

export interface RedisBackendSession {
  socket: net.Socket;
  /** The reply to the client's own handshake command: HELLO's reply, or +OK for AUTH. */
  greeting: Buffer;
  /** The backend's id for this connection (CLIENT ID). */
  clientId: string;
  /** Commands that put a connection back into the gateway's credential and database after RESET. */
  reauth: () => Buffer[];
}

export interface RedisHandshake {
  protocol: 2 | 3;
  /** The client sent HELLO (its reply is the greeting); otherwise AUTH (greeting +OK). */
  hello: boolean;
  /** HELLO ... SETNAME name, passed on. */
  clientName?: string;
}

export function connectRedisBackend(target: BackendTarget, handshake: RedisHandshake): Promise<RedisBackendSession> {
  // WRONGPASS may be a rotation of the gateway's password under this login.
  return withPasswordRetry(
    target,
    (t) => connectOnce(t, target, handshake),
    (err) => err instanceof GatewayError && /^WRONGPASS/.test(err.detail ?? ''),
  );
}

/** `login` carries the password this attempt uses; `live` is the target a rotation updates, read again at RESET. */
async function connectOnce(login: BackendTarget, live: BackendTarget, handshake: RedisHandshake): Promise<RedisBackendSession> {
  const target = login;
  const socket = await open(target);
  try {
    return await setUp(socket, target, live, handshake);
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

function open(target: BackendTarget): Promise<net.Socket> {
  const useTls = target.tls.mode === 'require' || target.tls.mode === 'verify-full';
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(
        new GatewayError(
          'backend_unavailable',
          `jitgate could not connect to the Redis backend of "${target.connection}"`,
          (err as NodeJS.ErrnoException).code,
          { logDetail: err.message },
        ),
      );
    };
    const socket: net.Socket = useTls
      ? tls.connect({
          host: target.host,
          port: target.port,
          servername: target.tls.servername ?? (net.isIP(target.host) ? undefined : target.host),
          ca: target.tls.ca,
          rejectUnauthorized: target.tls.mode === 'verify-full',
        })
      : net.connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => fail(new Error(`connect timed out after ${target.connectTimeoutMs} ms`)), target.connectTimeoutMs);
    socket.once(useTls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      socket.off('error', fail);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', fail);
  });
}

async function setUp(socket: net.Socket, target: BackendTarget, live: BackendTarget, h: RedisHandshake): Promise<RedisBackendSession> {
  const authWith = (password: string | undefined) => (password !== undefined ? ['AUTH', target.user, password] : []);
  const auth = authWith(target.password);
  const hello = h.hello || h.protocol === 3;
  const commands: Array<Array<string>> = [];
  if (hello) commands.push(['HELLO', String(h.protocol), ...auth, ...(h.clientName !== undefined ? ['SETNAME', h.clientName] : [])]);
  else if (auth.length) commands.push(auth);
  else commands.push(['PING']);
  const select = target.database && target.database !== '0' ? [['SELECT', target.database]] : [];
  commands.push(...select, ['CLIENT', 'ID']);
  const replies = await exchange(socket, commands, target);
  for (const [i, r] of replies.entries()) {
    if (r.value.type === 'error' || r.value.type === 'bloberror') {
      const text = r.value.type === 'error' ? r.value.text : r.value.data.toString('utf8');
      const what = i === 0 ? 'log in to' : 'select the database on';
      // The client sees the error's code (WRONGPASS, NOPERM, ERR); the backend's words go to the log.
      const message = `jitgate could not ${what} the Redis backend of "${target.connection}"`;
      throw new GatewayError('backend_unavailable', message, text.split(' ')[0], { logDetail: text });
    }
  }
  const id = replies[replies.length - 1]!.value;
  return {
    socket,
    greeting: hello ? replies[0]!.raw : simpleReply('OK'),
    clientId: id.type === 'integer' ? id.text : '',
    // Read at RESET time: a session that outlives a rotation logs back in with the current password.
    reauth: () => {
      const again = authWith(live.password);
      return [again.length ? encodeCommand(again) : encodeCommand(['PING']), ...select.map((c) => encodeCommand(c))];
    },
  };
}

interface Reply {
  value: RespValue;
  raw: Buffer;
}

/** Sends commands and reads one reply for each, within the connect timeout. */
function exchange(socket: net.Socket, commands: string[][], target: BackendTarget): Promise<Reply[]> {
  return new Promise((resolve, reject) => {
    const reader = new ReplyReader({ keepBytes: 64 * 1024, keepItems: 1024 });
    const replies: Reply[] = [];
    let parts: Buffer[] = [];
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.pause();
      if (err) reject(err);
      else resolve(replies);
    };
    const onData = (chunk: Buffer) => {
      try {
        reader.push(chunk, {
          begin: () => (parts = []),
          bytes: (b) => parts.push(b),
          end: (value) => {
            replies.push({ value, raw: Buffer.concat(parts) });
          },
        });
      } catch (err) {
        done(
          new GatewayError('backend_unavailable', `invalid reply from the Redis backend of "${target.connection}"`, undefined, {
            logDetail: (err as Error).message,
          }),
        );
        return;
      }
      if (replies.length >= commands.length) done();
    };
    const onError = (err: Error) =>
      done(
        new GatewayError('backend_unavailable', `lost the Redis backend of "${target.connection}"`, (err as NodeJS.ErrnoException).code, {
          logDetail: err.message,
        }),
      );
    const onClose = () =>
      done(new GatewayError('backend_unavailable', `the Redis backend of "${target.connection}" closed the connection`));
    const timer = setTimeout(
      () =>
        done(
          new GatewayError(
            'backend_unavailable',
            `the Redis backend of "${target.connection}" did not answer within ${target.connectTimeoutMs} ms`,
          ),
        ),
      target.connectTimeoutMs,
    );
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.write(Buffer.concat(commands.map((c) => encodeCommand(c))));
  });
}
