/**
 * Client authentication on the MySQL listener: the password is a jitgate access token.
 *
 * Tokens are stored only as SCRAM verifiers (access/tokens.ts), from which neither plugin's
 * scramble can be checked. So the first login with a token takes caching_sha2_password's "full
 * authentication": the client sends the token itself, over TLS (or RSA-encrypted with a key the
 * gateway makes at start, for development without TLS), and it is checked against its verifier
 * like any cleartext password. On success the gateway keeps, in memory only and until the token
 * expires, the double hashes SHA256(SHA256(token)) and SHA1(SHA1(token)) that a MySQL server keeps
 * for a password; later logins with the same token then take the fast path (caching_sha2's
 * scramble, or mysql_native_password's for clients that insist on it), exactly as a MySQL server
 * caches them. A client offering mysql_native_password (or anything else) whose token is not cached
 * is switched to caching_sha2_password. Every login still checks that the token is active.
 */
import { constants, generateKeyPairSync, privateDecrypt, type KeyObject } from 'node:crypto';
import type { ScramVerifier } from '../../crypto/scram.js';
import {
  authSwitchRequest,
  CACHING_SHA2,
  checkNativeScramble,
  checkSha2Scramble,
  NATIVE,
  scrambleVerifiers,
  xorWithNonce,
  type HandshakeResponse,
} from './handshake.js';
import { CachingSha2, Marker, MysqlProtocolError, type Packet } from './packets.js';
import type { PacketStream } from './packet-stream.js';

export interface MysqlTokenVerifier {
  /** The tokens of this user on this connection that may log in now (their ids). */
  scramCandidates(user: string, connection: string): Promise<{ candidates: Array<ScramVerifier & { tokenId: string }> }>;
  verifyCleartext(user: string, connection: string, token: string): Promise<string | undefined>;
}

interface Cached {
  tokenId: string;
  native: Buffer;
  sha2: Buffer;
}

/** Double hashes of tokens that logged in with full authentication, per user and connection. */
export class ScrambleCache {
  private readonly entries = new Map<string, Cached[]>();

  constructor(private readonly maxKeys = 10_000) {}

  find(user: string, connection: string, live: Set<string>): Cached[] {
    const key = `${user}\0${connection}`;
    const list = this.entries.get(key);
    if (!list) return [];
    // Tokens that ended (expired, revoked) are forgotten here, so the cache holds live tokens only.
    const kept = list.filter((c) => live.has(c.tokenId));
    if (kept.length === 0) this.entries.delete(key);
    else if (kept.length !== list.length) this.entries.set(key, kept);
    return kept;
  }

  remember(user: string, connection: string, tokenId: string, token: Buffer): void {
    const key = `${user}\0${connection}`;
    const list = this.entries.get(key) ?? [];
    if (list.some((c) => c.tokenId === tokenId)) return;
    if (!this.entries.has(key) && this.entries.size >= this.maxKeys) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, [...list, { tokenId, ...scrambleVerifiers(token) }]);
  }
}

let rsaKeys: { publicPem: string; privateKey: KeyObject } | undefined;

/** The RSA key pair for caching_sha2_password without TLS, made once per process on first use. */
function rsa(): { publicPem: string; privateKey: KeyObject } {
  if (!rsaKeys) {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    rsaKeys = { publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKey };
  }
  return rsaKeys;
}

export interface ClientAuthContext {
  stream: PacketStream;
  /** Sends one payload to the client with the given sequence id. */
  send(payload: Buffer, seq: number): void;
  response: HandshakeResponse;
  /** Sequence id of the handshake response packet. */
  responseSeq: number;
  nonce: Buffer;
  connection: string;
  verifier: MysqlTokenVerifier;
  cache: ScrambleCache;
  encrypted: boolean;
  /** Allow caching_sha2's RSA exchange when the connection is not encrypted. */
  allowRsa: boolean;
}

export type MysqlAuthResult =
  | { ok: true; tokenId: string; method: string; nextSeq: number }
  | { ok: false; reason: 'bad_token' | 'method_unavailable' | 'no_password'; nextSeq: number };

export async function authenticateMysqlClient(ctx: ClientAuthContext): Promise<MysqlAuthResult> {
  const { response, nonce, connection, verifier, cache } = ctx;
  const user = response.user;
  let seq = (ctx.responseSeq + 1) & 0xff;
  const live = new Set((await verifier.scramCandidates(user, connection)).candidates.map((c) => c.tokenId));
  const cached = cache.find(user, connection, live);
  const plugin = response.plugin ?? NATIVE;
  let proof = response.authData;

  if (plugin === NATIVE && proof.length === 20) {
    const hit = cached.find((c) => checkNativeScramble(proof, nonce, c.native));
    if (hit) return { ok: true, tokenId: hit.tokenId, method: NATIVE, nextSeq: seq };
  }
  if (plugin === NATIVE && proof.length === 0 && cached.length > 0) {
    // A client set on mysql_native_password answers another plugin's greeting with no proof and
    // waits to be switched: with a cached token for this user, ask for a native scramble (a
    // client may be switched only once, so a token not yet cached fails here).
    ctx.send(authSwitchRequest(NATIVE, nonce), seq);
    const reply = await ctx.stream.read(seq + 1);
    seq = (reply.seq + 1) & 0xff;
    const hit = cached.find((c) => checkNativeScramble(reply.payload, nonce, c.native));
    if (hit) return { ok: true, tokenId: hit.tokenId, method: NATIVE, nextSeq: seq };
    return { ok: false, reason: reply.payload.length === 0 ? 'no_password' : 'bad_token', nextSeq: seq };
  }
  if (plugin !== CACHING_SHA2) {
    ctx.send(authSwitchRequest(CACHING_SHA2, nonce), seq);
    const reply = await ctx.stream.read(seq + 1);
    proof = reply.payload;
    seq = (reply.seq + 1) & 0xff;
  }
  if (proof.length === 0) return { ok: false, reason: 'no_password', nextSeq: seq };
  const fast = cached.find((c) => checkSha2Scramble(proof, nonce, c.sha2));
  if (fast) {
    ctx.send(Buffer.from([Marker.AUTH_MORE_DATA, CachingSha2.FAST_AUTH_SUCCESS]), seq);
    return { ok: true, tokenId: fast.tokenId, method: `${CACHING_SHA2} (fast)`, nextSeq: (seq + 1) & 0xff };
  }

  // Full authentication: the token itself, over TLS or RSA-encrypted.
  if (!ctx.encrypted && !ctx.allowRsa) {
    ctx.send(Buffer.from([Marker.AUTH_MORE_DATA, CachingSha2.PERFORM_FULL_AUTHENTICATION]), seq);
    // The client answers with a public key request or (wrongly) the cleartext; neither is used.
    const reply = await ctx.stream.read((seq + 1) & 0xff);
    return { ok: false, reason: 'method_unavailable', nextSeq: (reply.seq + 1) & 0xff };
  }
  ctx.send(Buffer.from([Marker.AUTH_MORE_DATA, CachingSha2.PERFORM_FULL_AUTHENTICATION]), seq);
  let reply: Packet = await ctx.stream.read((seq + 1) & 0xff);
  seq = (reply.seq + 1) & 0xff;
  let token: Buffer;
  if (ctx.encrypted) {
    token = stripNul(reply.payload);
  } else {
    if (!(reply.payload.length === 1 && reply.payload[0] === CachingSha2.REQUEST_PUBLIC_KEY)) {
      throw new MysqlProtocolError('expected a public key request for caching_sha2_password without TLS');
    }
    const keys = rsa();
    ctx.send(Buffer.concat([Buffer.from([Marker.AUTH_MORE_DATA]), Buffer.from(keys.publicPem, 'latin1')]), seq);
    reply = await ctx.stream.read((seq + 1) & 0xff);
    seq = (reply.seq + 1) & 0xff;
    let plain: Buffer;
    try {
      plain = privateDecrypt({ key: keys.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, reply.payload);
    } catch {
      return { ok: false, reason: 'bad_token', nextSeq: seq };
    }
    token = stripNul(xorWithNonce(plain, nonce));
  }
  const tokenId = await verifier.verifyCleartext(user, connection, token.toString('utf8'));
  if (!tokenId) return { ok: false, reason: 'bad_token', nextSeq: seq };
  cache.remember(user, connection, tokenId, token);
  return { ok: true, tokenId, method: `${CACHING_SHA2} (full${ctx.encrypted ? ', TLS' : ', RSA'})`, nextSeq: seq };
}

function stripNul(b: Buffer): Buffer {
  return b.length > 0 && b[b.length - 1] === 0 ? b.subarray(0, b.length - 1) : b;
}
