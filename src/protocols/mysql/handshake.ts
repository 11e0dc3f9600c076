/**
 * The connection phase packets (protocol 10 greeting, SSL request, handshake response, auth
 * switch) and the password scrambles of mysql_native_password and caching_sha2_password. Used by
 * both sides: the gateway as a server to clients and as a client to backends.
 */
import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import {
  Cap,
  DEFAULT_CHARSET,
  HANDSHAKE_RESPONSE_FIXED_LENGTH,
  HANDSHAKE_V10,
  lenencBytes,
  Marker,
  MysqlProtocolError,
  readLenenc,
  readLenencBytes,
  readNulString,
  SQL_STATE_MARKER,
  Status,
} from './packets.js';

export const CACHING_SHA2 = 'caching_sha2_password';
export const NATIVE = 'mysql_native_password';
export const CLEAR = 'mysql_clear_password';

/** 20 random printable bytes (no NUL, no '$'), as servers generate them. */
export function newNonce(): Buffer {
  const b = Buffer.allocUnsafe(20);
  for (let i = 0; i < 20; i++) {
    let c = randomInt(0x21, 0x7f);
    if (c === 0x24) c = 0x25;
    b[i] = c;
  }
  return b;
}

export interface Greeting {
  serverVersion: string;
  connectionId: number;
  nonce: Buffer;
  capabilities: number;
  charset: number;
  status: number;
  plugin: string;
}

export function buildGreeting(g: Greeting): Buffer {
  const fixed = Buffer.alloc(4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10);
  let pos = 0;
  fixed.writeUInt32LE(g.connectionId >>> 0, pos);
  pos += 4;
  g.nonce.copy(fixed, pos, 0, 8);
  pos += 8;
  fixed[pos++] = 0;
  fixed.writeUInt16LE(g.capabilities & 0xffff, pos);
  pos += 2;
  fixed[pos++] = g.charset;
  fixed.writeUInt16LE(g.status, pos);
  pos += 2;
  fixed.writeUInt16LE((g.capabilities >>> 16) & 0xffff, pos);
  pos += 2;
  fixed[pos] = g.nonce.length + 1;
  return Buffer.concat([
    Buffer.from([HANDSHAKE_V10]),
    Buffer.from(g.serverVersion + '\0', 'latin1'),
    fixed,
    g.nonce.subarray(8),
    Buffer.from([0]),
    Buffer.from(g.plugin + '\0', 'latin1'),
  ]);
}

export function parseGreeting(payload: Buffer): Greeting {
  if (payload[0] === Marker.ERR) {
    const errno = payload.readUInt16LE(1);
    const message = payload.toString('utf8', payload[3] === SQL_STATE_MARKER ? 9 : 3);
    throw new MysqlProtocolError(`backend refused the connection: ${errno} ${message}`);
  }
  if (payload[0] !== HANDSHAKE_V10) throw new MysqlProtocolError(`unsupported backend protocol version ${payload[0]}`);
  const version = readNulString(payload, 1);
  let pos = version.next;
  if (pos + 31 > payload.length) throw new MysqlProtocolError('malformed greeting');
  const connectionId = payload.readUInt32LE(pos);
  pos += 4;
  const part1 = payload.subarray(pos, pos + 8);
  pos += 9;
  let capabilities = payload.readUInt16LE(pos);
  pos += 2;
  const charset = payload[pos++]!;
  const status = payload.readUInt16LE(pos);
  pos += 2;
  capabilities = (capabilities | (payload.readUInt16LE(pos) << 16)) >>> 0;
  pos += 2;
  const authLength = payload[pos++]!;
  pos += 10;
  const part2Length = Math.max(13, authLength - 8);
  const part2 = payload.subarray(pos, Math.min(payload.length, pos + part2Length));
  pos += part2Length;
  const nonce = Buffer.concat([part1, part2.subarray(0, part2.length - (part2[part2.length - 1] === 0 ? 1 : 0))]);
  let plugin = NATIVE;
  if (capabilities & Cap.PLUGIN_AUTH && pos < payload.length)
    plugin = readNulString(Buffer.concat([payload, Buffer.from([0])]), pos).value.toString('latin1');
  return { serverVersion: version.value.toString('latin1'), connectionId, nonce, capabilities, charset, status, plugin };
}

export interface HandshakeResponse {
  capabilities: number;
  maxPacket: number;
  charset: number;
  user: string;
  authData: Buffer;
  database: string | null;
  plugin: string | null;
  attributes: Map<string, string>;
}

/** An SSL request is the start of a handshake response with the SSL flag and nothing more. */
export function isSslRequest(payload: Buffer): boolean {
  return payload.length === HANDSHAKE_RESPONSE_FIXED_LENGTH && (payload.readUInt32LE(0) & Cap.SSL) !== 0;
}

export function parseHandshakeResponse(payload: Buffer): HandshakeResponse {
  if (payload.length < HANDSHAKE_RESPONSE_FIXED_LENGTH) throw new MysqlProtocolError('Bad handshake');
  const capabilities = payload.readUInt32LE(0);
  if (!(capabilities & Cap.PROTOCOL_41)) throw new MysqlProtocolError('the client does not speak protocol 4.1; jitgate needs it');
  const maxPacket = payload.readUInt32LE(4);
  const charset = payload[8]!;
  let pos = HANDSHAKE_RESPONSE_FIXED_LENGTH;
  const user = readNulString(payload, pos);
  pos = user.next;
  let authData: Buffer;
  if (capabilities & Cap.PLUGIN_AUTH_LENENC_DATA) {
    const v = readLenencBytes(payload, pos);
    authData = v.value ?? Buffer.alloc(0);
    pos = v.next;
  } else if (capabilities & Cap.SECURE_CONNECTION) {
    const n = payload[pos];
    if (n === undefined || pos + 1 + n > payload.length) throw new MysqlProtocolError('Bad handshake');
    authData = payload.subarray(pos + 1, pos + 1 + n);
    pos += 1 + n;
  } else {
    const v = readNulString(payload, pos);
    authData = v.value;
    pos = v.next;
  }
  let database: string | null = null;
  if (capabilities & Cap.CONNECT_WITH_DB && pos < payload.length) {
    const v = readNulString(payload, pos);
    database = v.value.toString('utf8');
    pos = v.next;
  }
  let plugin: string | null = null;
  if (capabilities & Cap.PLUGIN_AUTH && pos < payload.length) {
    const v = readNulString(payload, pos);
    plugin = v.value.toString('latin1');
    pos = v.next;
  }
  const attributes = new Map<string, string>();
  if (capabilities & Cap.CONNECT_ATTRS && pos < payload.length) {
    const total = readLenenc(payload, pos);
    const end = Math.min(payload.length, total.next + (total.value ?? 0));
    pos = total.next;
    while (pos < end) {
      const k = readLenencBytes(payload, pos);
      const v = readLenencBytes(payload, k.next);
      attributes.set(k.value?.toString('utf8') ?? '', v.value?.toString('utf8') ?? '');
      pos = v.next;
    }
  }
  return { capabilities, maxPacket, charset, user: user.value.toString('utf8'), authData, database, plugin, attributes };
}

export function buildHandshakeResponse(r: Omit<HandshakeResponse, 'attributes'> & { attributes?: Map<string, string> }): Buffer {
  const head = Buffer.alloc(HANDSHAKE_RESPONSE_FIXED_LENGTH);
  head.writeUInt32LE(r.capabilities >>> 0, 0);
  head.writeUInt32LE(r.maxPacket, 4);
  head[8] = r.charset;
  const parts = [head, Buffer.from(r.user + '\0', 'utf8'), lenencBytes(r.authData)];
  if (r.capabilities & Cap.CONNECT_WITH_DB) parts.push(Buffer.from((r.database ?? '') + '\0', 'utf8'));
  if (r.capabilities & Cap.PLUGIN_AUTH) parts.push(Buffer.from((r.plugin ?? '') + '\0', 'latin1'));
  if (r.capabilities & Cap.CONNECT_ATTRS) {
    const kv = [...(r.attributes ?? new Map<string, string>())].flatMap(([k, v]) => [lenencBytes(k), lenencBytes(v)]);
    parts.push(lenencBytes(Buffer.concat(kv)));
  }
  return Buffer.concat(parts);
}

export function buildSslRequest(capabilities: number, charset = DEFAULT_CHARSET): Buffer {
  const b = Buffer.alloc(HANDSHAKE_RESPONSE_FIXED_LENGTH);
  b.writeUInt32LE((capabilities | Cap.SSL) >>> 0, 0);
  b.writeUInt32LE(MAX_CLIENT_PACKET, 4);
  b[8] = charset;
  return b;
}

export const MAX_CLIENT_PACKET = 1 << 30;

export function authSwitchRequest(plugin: string, nonce: Buffer): Buffer {
  return Buffer.concat([Buffer.from([Marker.AUTH_SWITCH]), Buffer.from(plugin + '\0', 'latin1'), nonce, Buffer.from([0])]);
}

// ---------------------------------------------------------------------------------------------
// Scrambles. Both plugins let a server that keeps a double hash of the password check a proof
// that was salted with the nonce it sent, without ever seeing the password.

const sha1 = (...parts: Buffer[]) => {
  const h = createHash('sha1');
  for (const p of parts) h.update(p);
  return h.digest();
};
const sha256 = (...parts: Buffer[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i % b.length]!;
  return out;
}

/** SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password))) */
export function nativeScramble(password: Buffer, nonce: Buffer): Buffer {
  if (password.length === 0) return Buffer.alloc(0);
  const h1 = sha1(password);
  return xor(h1, sha1(nonce.subarray(0, 20), sha1(h1)));
}

/** SHA256(password) XOR SHA256(SHA256(SHA256(password)) + nonce) */
export function sha2Scramble(password: Buffer, nonce: Buffer): Buffer {
  if (password.length === 0) return Buffer.alloc(0);
  const h1 = sha256(password);
  return xor(h1, sha256(sha256(h1), nonce.subarray(0, 20)));
}

/** What a server keeps to check scrambles: SHA1(SHA1(pw)) and SHA256(SHA256(pw)). */
export function scrambleVerifiers(password: Buffer): { native: Buffer; sha2: Buffer } {
  return { native: sha1(sha1(password)), sha2: sha256(sha256(password)) };
}

export function checkNativeScramble(proof: Buffer, nonce: Buffer, native: Buffer): boolean {
  if (proof.length !== 20) return false;
  const h1 = xor(proof, sha1(nonce.subarray(0, 20), native));
  return native.length === 20 && timingSafeEqual(sha1(h1), native);
}

export function checkSha2Scramble(proof: Buffer, nonce: Buffer, sha2: Buffer): boolean {
  if (proof.length !== 32) return false;
  const h1 = xor(proof, sha256(sha2, nonce.subarray(0, 20)));
  return sha2.length === 32 && timingSafeEqual(sha256(h1), sha2);
}

/** caching_sha2_password's RSA path: the NUL-terminated password XOR the nonce, repeated. */
export function xorWithNonce(data: Buffer, nonce: Buffer): Buffer {
  return xor(data, nonce.subarray(0, 20));
}

export const INITIAL_STATUS = Status.AUTOCOMMIT;
