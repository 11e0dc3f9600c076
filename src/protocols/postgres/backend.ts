/**
 * Client side towards a PostgreSQL backend: TCP, optional TLS (disable/prefer/require/verify-full),
 * and login with the credential the gateway holds (SCRAM-SHA-256, md5, cleartext or trust).
 * The client's token never reaches the backend, and the backend credential never reaches the client.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { withPasswordRetry } from '../../core/backend-password.js';
import { GatewayError } from '../../core/errors.js';
import type { BackendTarget } from '../../core/types.js';
import { clientProof, newNonce, safeEqual } from '../../crypto/scram.js';
import { build, EncryptionAnswer, MessageType, parseFields, ProtocolError, readCString } from './codec.js';
import { MessageStream } from './message-stream.js';

export interface BackendSession {
  socket: net.Socket;
  /** The backend's own cancel key (never shown to the client). */
  pid: number;
  secret: number;
  /** ParameterStatus and NoticeResponse frames sent during login, to replay to the client. */
  startupFrames: Buffer[];
  /** Transaction status byte of the first ReadyForQuery. */
  readyStatus: number;
  /** Bytes that arrived after ReadyForQuery (normally none). */
  leftover: Buffer;
  /** Whether the connection to the backend is encrypted. */
  encrypted: boolean;
}

/** Startup parameters a client may not pass through: identity and routing are the gateway's. */
const RESERVED_PARAMS = new Set(['user', 'database', 'options', 'replication']);

export function forwardableParams(client: Map<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of client) {
    if (!RESERVED_PARAMS.has(k) && !k.startsWith('_pq_.')) out[k] = v;
  }
  return out;
}

export function connectBackend(target: BackendTarget, clientParams: Map<string, string>): Promise<BackendSession> {
  // A refusal of the credential (SQLSTATE class 28) may be a rotation of it under this login.
  return withPasswordRetry(
    target,
    (t) => connectOnce(t, clientParams),
    (err) => err instanceof BackendRefusal && (err.fields.get('C') ?? '').startsWith('28'),
  );
}

async function connectOnce(target: BackendTarget, clientParams: Map<string, string>): Promise<BackendSession> {
  const { socket, encrypted } = await openSocket(target).catch((err: unknown) => {
    throw asBackendUnavailable(err, target);
  });
  const stream = new MessageStream(socket, target.connectTimeoutMs);
  try {
    socket.write(build.startup({ ...forwardableParams(clientParams), user: target.user, database: target.database }));
    stream.startTyped();
    await login(stream, target);
    const startupFrames: Buffer[] = [];
    let pid = 0;
    let secret = 0;
    for (;;) {
      const frame = await stream.read();
      switch (frame.type) {
        case MessageType.ParameterStatus:
        case MessageType.NoticeResponse:
          startupFrames.push(frame.raw);
          break;
        case MessageType.BackendKeyData:
          pid = frame.body.readInt32BE(0);
          secret = frame.body.readInt32BE(4);
          break;
        case MessageType.ReadyForQuery:
          return { socket, pid, secret, startupFrames, readyStatus: frame.body[0]!, leftover: stream.detach(), encrypted };
        case MessageType.ErrorResponse:
          throw backendError(frame.raw, target);
        default:
          throw new ProtocolError(`unexpected message "${String.fromCharCode(frame.type)}" from backend during startup`);
      }
    }
  } catch (err) {
    stream.detach();
    socket.destroy();
    throw asBackendUnavailable(err, target);
  }
}

/** Sends a CancelRequest for the backend key over a fresh connection, as libpq does. */
export async function sendCancel(target: BackendTarget, pid: number, secret: number): Promise<void> {
  const { socket } = await openSocket(target);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => socket.destroy(), target.connectTimeoutMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.on('error', () => undefined);
    socket.end(build.cancelRequest(pid, secret));
  });
}

async function openSocket(target: BackendTarget): Promise<{ socket: net.Socket; encrypted: boolean }> {
  const raw = await tcpConnect(target);
  if (target.tls.mode === 'disable') return { socket: raw, encrypted: false };
  try {
    raw.write(build.sslRequest());
    const answer = await readOneByte(raw, target.connectTimeoutMs);
    if (answer === EncryptionAnswer.Refuse) {
      if (target.tls.mode === 'prefer') return { socket: raw, encrypted: false };
      throw new GatewayError('backend_unavailable', `backend for connection "${target.connection}" does not support TLS`);
    }
    if (answer !== EncryptionAnswer.Accept) throw new ProtocolError('unexpected answer to SSLRequest');
    const verify = target.tls.mode === 'verify-full';
    const secure = tls.connect({
      socket: raw,
      servername: net.isIP(target.tls.servername ?? target.host) ? undefined : (target.tls.servername ?? target.host),
      ca: target.tls.ca,
      rejectUnauthorized: verify,
      checkServerIdentity: verify ? (_host, cert) => tls.checkServerIdentity(target.tls.servername ?? target.host, cert) : () => undefined,
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ProtocolError('TLS handshake timed out')), target.connectTimeoutMs);
      secure.once('secureConnect', () => {
        clearTimeout(timer);
        resolve();
      });
      secure.once('error', (err) => {
        clearTimeout(timer);
        reject(new GatewayError('backend_unavailable', 'TLS with the backend failed', TLS_FAILED, { logDetail: err.message }));
      });
    });
    return { socket: secure, encrypted: true };
  } catch (err) {
    raw.destroy();
    throw err;
  }
}

function tcpConnect(target: BackendTarget): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.host, port: target.port });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new GatewayError('backend_unavailable', 'connection to backend timed out'));
    }, target.connectTimeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new GatewayError(
          'backend_unavailable',
          'could not reach the backend',
          err.code ? `${err.code} from the backend's address` : undefined,
          { logDetail: err.message },
        ),
      );
    });
  });
}

/** Reads exactly the one-byte SSLRequest answer; anything more is a man-in-the-middle signal. */
function readOneByte(socket: net.Socket, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new ProtocolError('timeout waiting for SSLRequest answer')), timeoutMs);
    const onData = (chunk: Buffer) => {
      if (chunk.length !== 1) return finish(new ProtocolError('received unencrypted data after SSL response'));
      finish(undefined, chunk[0]);
    };
    const onError = (err: Error) => finish(err);
    const onClose = () => finish(new ProtocolError('backend closed the connection during SSL negotiation'));
    function finish(err?: Error, byte?: number) {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.pause();
      if (err) reject(err);
      else resolve(byte!);
    }
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}

async function login(stream: MessageStream, target: BackendTarget): Promise<void> {
  const send = (b: Buffer) => stream.socket.write(b);
  for (;;) {
    const frame = await stream.read();
    if (frame.type === MessageType.ErrorResponse) throw backendError(frame.raw, target);
    if (frame.type === MessageType.NegotiateProtocolVersion) continue;
    if (frame.type !== MessageType.Authentication) {
      throw new ProtocolError(`unexpected message "${String.fromCharCode(frame.type)}" from backend during login`);
    }
    const code = frame.body.readInt32BE(0);
    switch (code) {
      case 0:
        return;
      case 3:
        send(build.password(requirePassword(target)));
        break;
      case 5: {
        const salt = frame.body.subarray(4, 8);
        const inner = md5(Buffer.from(requirePassword(target) + target.user, 'utf8')).toString('hex');
        send(build.password('md5' + md5(Buffer.concat([Buffer.from(inner, 'utf8'), salt])).toString('hex')));
        break;
      }
      case 10:
        await scramLogin(stream, frame.body.subarray(4), target);
        break;
      default:
        throw new GatewayError('backend_unavailable', `backend asked for an unsupported authentication method (${code})`);
    }
  }
}

async function scramLogin(stream: MessageStream, mechanisms: Buffer, target: BackendTarget): Promise<void> {
  const offered: string[] = [];
  for (let pos = 0; pos < mechanisms.length && mechanisms[pos] !== 0;) {
    const m = readCString(mechanisms, pos);
    offered.push(m.value);
    pos = m.next;
  }
  if (!offered.includes('SCRAM-SHA-256')) {
    throw new GatewayError('backend_unavailable', `backend offers no supported SASL mechanism (${offered.join(', ')})`);
  }
  const password = requirePassword(target);
  const clientNonce = newNonce();
  const clientFirstBare = `n=,r=${clientNonce}`;
  stream.socket.write(build.saslInitialResponse('SCRAM-SHA-256', `n,,${clientFirstBare}`));

  const cont = await expectAuth(stream, 11, target);
  const serverFirst = cont.toString('utf8');
  const attrs = new Map(serverFirst.split(',').map((kv) => [kv.slice(0, 1), kv.slice(2)] as const));
  const nonce = attrs.get('r');
  const salt = attrs.get('s');
  const iterations = Number(attrs.get('i'));
  if (!nonce?.startsWith(clientNonce) || !salt || !Number.isInteger(iterations) || iterations < 1) {
    throw new ProtocolError('invalid SCRAM server-first message from backend');
  }
  const withoutProof = `c=biws,r=${nonce}`;
  const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
  const { proof, serverSignature } = clientProof(password, Buffer.from(salt, 'base64'), iterations, authMessage);
  stream.socket.write(build.saslResponse(`${withoutProof},p=${proof.toString('base64')}`));

  const final = (await expectAuth(stream, 12, target)).toString('utf8');
  const signature = Buffer.from(final.startsWith('v=') ? final.slice(2) : '', 'base64');
  if (!safeEqual(signature, serverSignature)) {
    // The backend could not prove it knows the password: it may not be the server we think.
    throw new GatewayError('backend_unavailable', 'backend failed SCRAM server verification');
  }
}

async function expectAuth(stream: MessageStream, code: number, target: BackendTarget): Promise<Buffer> {
  const frame = await stream.read();
  if (frame.type === MessageType.ErrorResponse) throw backendError(frame.raw, target);
  if (frame.type !== MessageType.Authentication || frame.body.readInt32BE(0) !== code) {
    throw new ProtocolError('unexpected message from backend during SCRAM exchange');
  }
  return frame.body.subarray(4);
}

function requirePassword(target: BackendTarget): string {
  if (target.password === undefined) {
    throw new GatewayError('backend_unavailable', `backend asks for a password but connection "${target.connection}" has none configured`);
  }
  return target.password;
}

function md5(data: Buffer): Buffer {
  return createHash('md5').update(data).digest();
}

/**
 * The server refused the login. Clients of the gateway see only message and detail (no backend
 * internals); the server's own words are the log's (logDetail), and `fields` keeps its ErrorResponse
 * for callers whose "backend" is the gateway itself (the CLI's local tunnel forwards the gateway's
 * refusal, e.g. an ended grant, as is).
 */
export class BackendRefusal extends GatewayError {
  constructor(
    message: string,
    detail: string,
    readonly fields: ReadonlyMap<string, string>,
  ) {
    super('backend_unavailable', message, detail, { logDetail: `${fields.get('C') ?? '?'}: ${fields.get('M') ?? ''}` });
  }
}

/** A backend's refusal, reported without echoing backend user names or other internals. */
function backendError(raw: Buffer, target: BackendTarget): GatewayError {
  const fields = parseFields(raw, 0, raw.length);
  const code = fields.get('C') ?? '';
  const reason = code.startsWith('28')
    ? "the backend rejected the gateway's credential for this connection"
    : code === '3D000'
      ? 'the configured backend database does not exist'
      : code.startsWith('57P') || code.startsWith('53')
        ? 'the backend is not accepting connections right now'
        : `the backend refused the connection (SQLSTATE ${code || 'unknown'})`;
  return new BackendRefusal(`could not connect to backend for connection "${target.connection}"`, reason, fields);
}

/**
 * The client learns which connection failed and the gateway's own words for why; what a socket or
 * TLS library said goes to the log only.
 */
function asBackendUnavailable(err: unknown, target: BackendTarget): GatewayError {
  const message = `could not connect to backend for connection "${target.connection}"`;
  if (err instanceof GatewayError) {
    // The backend's own answer (a refusal passed on as it was), already in the client's words.
    if (err instanceof BackendRefusal || (err.detail && err.logDetail === undefined)) return err;
    const detail = err.detail ? `${err.message}: ${err.detail}` : err.message;
    return new GatewayError('backend_unavailable', message, detail, err.logDetail !== undefined ? { logDetail: err.logDetail } : {});
  }
  return new GatewayError('backend_unavailable', message, undefined, { logDetail: err instanceof Error ? err.message : String(err) });
}

const TLS_FAILED = "the backend's certificate or TLS settings do not match the connection's tls settings (the gateway's log says more)";
