/**
 * The gateway as a MySQL client: connects a session's backend with the gateway-held (or
 * per-session) credential. TLS modes as for PostgreSQL (disable, prefer, require, verify-full);
 * mysql_native_password and caching_sha2_password (fast path, or the password over TLS, or
 * RSA-encrypted with the server's public key without TLS); mysql_clear_password only over TLS.
 */
import { constants, publicEncrypt } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { withPasswordRetry } from '../../core/backend-password.js';
import { GatewayError } from '../../core/errors.js';
import type { BackendTarget } from '../../core/types.js';
import {
  buildHandshakeResponse,
  buildSslRequest,
  CACHING_SHA2,
  CLEAR,
  MAX_CLIENT_PACKET,
  NATIVE,
  nativeScramble,
  parseGreeting,
  sha2Scramble,
  xorWithNonce,
} from './handshake.js';
import { CachingSha2, Cap, Command, DEFAULT_CHARSET, Marker, MysqlProtocolError, packet, parseErr, readNulString } from './packets.js';
import { passedLoginError } from './errors.js';
import { PacketStream } from './packet-stream.js';

export interface MysqlBackendSession {
  socket: net.Socket;
  /** The backend's own connection id (what KILL QUERY names there). */
  threadId: number;
  serverVersion: string;
  /** Capabilities in effect on this connection. */
  capabilities: number;
  status: number;
  leftover: Buffer;
}

export interface MysqlBackendOptions {
  /** Capabilities the client agreed with the gateway; the backend connection uses the same ones. */
  clientCapabilities: number;
  charset?: number;
  /** Let the backend ask for LOCAL INFILE data (policy allows LOAD DATA LOCAL). */
  localFiles?: boolean;
  attributes?: Map<string, string>;
}

/** Capabilities that must match on both legs for the relay to pass packets through unchanged. */
export const PASSTHROUGH_CAPABILITIES =
  Cap.LONG_PASSWORD |
  Cap.FOUND_ROWS |
  Cap.LONG_FLAG |
  Cap.ODBC |
  Cap.IGNORE_SPACE |
  Cap.PROTOCOL_41 |
  Cap.INTERACTIVE |
  Cap.IGNORE_SIGPIPE |
  Cap.TRANSACTIONS |
  Cap.RESERVED |
  Cap.SECURE_CONNECTION |
  Cap.MULTI_STATEMENTS |
  Cap.MULTI_RESULTS |
  Cap.PS_MULTI_RESULTS |
  Cap.SESSION_TRACK |
  Cap.DEPRECATE_EOF;

export function connectMysqlBackend(target: BackendTarget, options: MysqlBackendOptions): Promise<MysqlBackendSession> {
  // ER_ACCESS_DENIED_ERROR may be a rotation of the gateway's password under this login.
  return withPasswordRetry(
    target,
    (t) => connectOnce(t, options),
    (err) => err instanceof LoginRefused && err.errno === 1045,
  );
}

async function connectOnce(target: BackendTarget, options: MysqlBackendOptions): Promise<MysqlBackendSession> {
  const socket = await openSocket(target);
  try {
    return await login(socket, target, options);
  } catch (err) {
    socket.destroy();
    if (err instanceof GatewayError) throw err;
    throw new GatewayError('backend_unavailable', `cannot log in to the backend of connection "${target.connection}"`, undefined, {
      logDetail: (err as Error).message,
    });
  }
}

/** The backend refused the gateway's own login (kept apart from refusals passed to the client as is). */
class LoginRefused extends GatewayError {
  constructor(
    readonly errno: number,
    message: string,
    detail: string,
    options: { logDetail: string },
  ) {
    super('backend_unavailable', message, detail, options);
  }
}

/**
 * A backend's refusal of the gateway's own login or session setup, in the gateway's words with the
 * server's error number and SQLSTATE. The server's text names the backend user and the gateway's
 * host ("Access denied for user 'app'@'10.0.0.5'"): it goes to the gateway's log only.
 */
function refusal(e: { errno: number; sqlState: string }): string {
  const code = `(${e.errno}, ${e.sqlState})`;
  // 1044 no access to the database, 1045 wrong password, 1698 no password for that plugin.
  if (e.errno === 1044 || e.errno === 1045 || e.errno === 1698 || e.sqlState === '28000')
    return `the credential for this connection was rejected ${code}`;
  if (e.errno === 1049) return `the configured database does not exist ${code}`;
  // 1129 host blocked after connection errors, 1130 host not allowed to connect.
  if (e.errno === 1129 || e.errno === 1130) return `the gateway's host may not connect ${code}`;
  return `error ${code}`;
}

function openSocket(target: BackendTarget): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.host, port: target.port });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new GatewayError(
          'backend_unavailable',
          `connection "${target.connection}": backend did not answer within ${target.connectTimeoutMs} ms`,
        ),
      );
    }, target.connectTimeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(
        new GatewayError(
          'backend_unavailable',
          `connection "${target.connection}": cannot reach the backend`,
          (err as NodeJS.ErrnoException).code,
          { logDetail: err.message },
        ),
      );
    });
  });
}

async function login(plain: net.Socket, target: BackendTarget, options: MysqlBackendOptions): Promise<MysqlBackendSession> {
  let socket: net.Socket = plain;
  let stream = new PacketStream(socket, target.connectTimeoutMs, 'backend login');
  const first = (await stream.read(0)).payload;
  // A full server answers the connection with an ERR instead of a greeting (1040 Too many connections).
  if (first[0] === Marker.ERR) {
    const e = parseErr(first);
    throw (
      passedLoginError(e.errno, e.sqlState, e.message) ??
      new GatewayError('backend_unavailable', `connection "${target.connection}": the backend refused the connection`, refusal(e), {
        logDetail: `${e.errno} (${e.sqlState}): ${e.message}`,
      })
    );
  }
  const greeting = parseGreeting(first);
  const wanted =
    (options.clientCapabilities & PASSTHROUGH_CAPABILITIES) |
    Cap.PROTOCOL_41 |
    Cap.SECURE_CONNECTION |
    Cap.PLUGIN_AUTH |
    Cap.PLUGIN_AUTH_LENENC_DATA |
    Cap.CONNECT_ATTRS |
    (target.database ? Cap.CONNECT_WITH_DB : 0) |
    (options.localFiles ? Cap.LOCAL_FILES : 0);
  const missing = (options.clientCapabilities & PASSTHROUGH_CAPABILITIES & ~greeting.capabilities) >>> 0;
  if (missing & (Cap.DEPRECATE_EOF | Cap.PROTOCOL_41 | Cap.MULTI_RESULTS | Cap.SESSION_TRACK)) {
    throw new GatewayError(
      'backend_unavailable',
      `connection "${target.connection}": the backend server is too old for jitgate (capabilities 0x${missing.toString(16)} missing)`,
    );
  }
  let capabilities = (wanted & greeting.capabilities) >>> 0;
  const charset = options.charset ?? DEFAULT_CHARSET;
  let seq = 1;
  const mode = target.tls.mode;
  const serverTls = (greeting.capabilities & Cap.SSL) !== 0;
  if (mode !== 'disable' && serverTls) {
    capabilities |= Cap.SSL;
    socket.write(packet(buildSslRequest(capabilities, charset), seq++));
    stream.detach();
    socket = await upgrade(plain, target);
    stream = new PacketStream(socket, target.connectTimeoutMs, 'backend login');
  } else if (mode === 'require' || mode === 'verify-full') {
    throw new GatewayError(
      'backend_unavailable',
      `connection "${target.connection}": the backend does not offer TLS, which the configuration requires`,
    );
  }
  const encrypted = socket !== plain;
  const password = Buffer.from(target.password ?? '', 'utf8');
  let nonce = greeting.nonce;
  let plugin = greeting.plugin === CACHING_SHA2 ? CACHING_SHA2 : NATIVE;
  const attributes = new Map(options.attributes ?? []);
  attributes.set('_client_name', 'jitgate');
  socket.write(
    packet(
      buildHandshakeResponse({
        capabilities,
        maxPacket: MAX_CLIENT_PACKET,
        charset,
        user: target.user,
        authData: scramble(plugin, password, nonce),
        database: target.database || null,
        plugin,
        attributes,
      }),
      seq,
    ),
  );
  for (let rounds = 0; rounds < 8; rounds++) {
    const reply = await stream.read();
    seq = (reply.seq + 1) & 0xff;
    const p = reply.payload;
    if (p[0] === Marker.OK) {
      const leftover = stream.detach();
      return {
        socket,
        threadId: greeting.connectionId,
        serverVersion: greeting.serverVersion,
        capabilities,
        status: greeting.status,
        leftover,
      };
    }
    if (p[0] === Marker.ERR) {
      const e = parseErr(p);
      throw (
        passedLoginError(e.errno, e.sqlState, e.message) ??
        new LoginRefused(e.errno, `connection "${target.connection}": the backend refused the gateway's login`, refusal(e), {
          logDetail: `${e.errno} (${e.sqlState}): ${e.message}`,
        })
      );
    }
    if (p[0] === Marker.AUTH_SWITCH) {
      // Auth switch: another plugin with a fresh nonce.
      const name = readNulString(p, 1);
      plugin = name.value.toString('latin1');
      nonce = p.subarray(name.next, p.length - (p[p.length - 1] === 0 ? 1 : 0));
      if (plugin === CLEAR) {
        if (!encrypted)
          throw new GatewayError(
            'backend_unavailable',
            `connection "${target.connection}": the backend asks for the password in clear text without TLS`,
          );
        socket.write(packet(Buffer.concat([password, Buffer.from([0])]), seq));
      } else if (plugin === NATIVE || plugin === CACHING_SHA2) {
        socket.write(packet(scramble(plugin, password, nonce), seq));
      } else {
        throw new GatewayError(
          'backend_unavailable',
          `connection "${target.connection}": the backend asks for authentication plugin ${plugin}, which jitgate does not support`,
        );
      }
      continue;
    }
    if (p[0] === Marker.AUTH_MORE_DATA && plugin === CACHING_SHA2) {
      if (p[1] === CachingSha2.FAST_AUTH_SUCCESS) continue; // the OK follows
      if (p[1] === CachingSha2.PERFORM_FULL_AUTHENTICATION) {
        if (encrypted) {
          socket.write(packet(Buffer.concat([password, Buffer.from([0])]), seq));
          continue;
        }
        socket.write(packet(Buffer.from([CachingSha2.REQUEST_PUBLIC_KEY]), seq));
        const keyReply = await stream.read(seq + 1);
        seq = (keyReply.seq + 1) & 0xff;
        const pem = keyReply.payload.subarray(1).toString('latin1');
        const secret = xorWithNonce(Buffer.concat([password, Buffer.from([0])]), nonce);
        socket.write(packet(publicEncrypt({ key: pem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, secret), seq));
        continue;
      }
    }
    throw new MysqlProtocolError(`unexpected packet 0x${(p[0] ?? 0).toString(16)} during backend login`);
  }
  throw new MysqlProtocolError('backend login did not finish');
}

function scramble(plugin: string, password: Buffer, nonce: Buffer): Buffer {
  return plugin === CACHING_SHA2 ? sha2Scramble(password, nonce) : nativeScramble(password, nonce);
}

function upgrade(socket: net.Socket, target: BackendTarget): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const verify = target.tls.mode === 'verify-full';
    const secure = tls.connect({
      socket,
      servername: target.tls.servername ?? (net.isIP(target.host) ? undefined : target.host),
      host: target.host,
      ca: target.tls.ca,
      rejectUnauthorized: verify,
    });
    const timer = setTimeout(() => {
      secure.destroy();
      reject(new GatewayError('backend_unavailable', `connection "${target.connection}": TLS handshake with the backend timed out`));
    }, target.connectTimeoutMs);
    secure.once('secureConnect', () => {
      clearTimeout(timer);
      resolve(secure);
    });
    secure.once('error', (err) => {
      clearTimeout(timer);
      reject(
        new GatewayError(
          'backend_unavailable',
          `connection "${target.connection}": TLS with the backend failed`,
          "the backend's certificate or TLS settings do not match the connection's tls settings",
          { logDetail: err.message },
        ),
      );
    });
  });
}

/** The backend's version from its greeting, without logging in. */
export async function readBackendVersion(target: BackendTarget): Promise<string> {
  const socket = await openSocket(target);
  try {
    const stream = new PacketStream(socket, target.connectTimeoutMs, 'backend greeting');
    return parseGreeting((await stream.read(0)).payload).serverVersion;
  } finally {
    socket.destroy();
  }
}

/** Runs one statement on a fresh backend connection (KILL QUERY on behalf of a client); resolves on OK. */
export async function runOnBackend(target: BackendTarget, sql: string): Promise<void> {
  const session = await connectMysqlBackend(target, { clientCapabilities: PASSTHROUGH_CAPABILITIES });
  const stream = new PacketStream(session.socket, target.connectTimeoutMs, 'backend command');
  try {
    session.socket.write(packet(Buffer.concat([Buffer.from([Command.QUERY]), Buffer.from(sql, 'utf8')]), 0));
    const reply = await stream.read(1);
    if (reply.payload[0] === Marker.ERR) {
      const e = parseErr(reply.payload);
      throw new GatewayError('backend_unavailable', `backend refused ${sql.split(' ')[0]}: ${e.errno} ${e.message}`);
    }
  } finally {
    session.socket.end(packet(Buffer.from([Command.QUIT]), 0));
    session.socket.destroy();
  }
}

/**
 * Runs one statement on a freshly logged-in backend connection before the client's commands
 * (e.g. SET ROLE for a per-session user), expecting OK. The connection stays usable.
 */
export async function prepareSession(session: MysqlBackendSession, sql: string, connection: string): Promise<void> {
  if (session.leftover.length > 0) throw new MysqlProtocolError('backend sent data before the first command');
  const stream = new PacketStream(session.socket, 10_000, 'session setup');
  try {
    session.socket.write(packet(Buffer.concat([Buffer.from([Command.QUERY]), Buffer.from(sql, 'utf8')]), 0));
    const reply = await stream.read(1);
    if (reply.payload[0] === Marker.ERR) {
      const e = parseErr(reply.payload);
      throw new GatewayError(
        'credential_unavailable',
        `could not set up this session's database user on connection "${connection}"`,
        `the backend answered ${e.errno} (${e.sqlState}); the gateway's log has its message`,
        { logDetail: `${e.errno} (${e.sqlState}): ${e.message}` },
      );
    }
  } finally {
    session.leftover = stream.detach();
  }
}
