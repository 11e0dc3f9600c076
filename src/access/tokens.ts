/**
 * jitgate access tokens: the password a native client presents (user = login, database = connection).
 *
 * A token is `jg_` + 32 random bytes in base64url. It is never stored: the store keeps only a
 * SCRAM-SHA-256 verifier of it, derived with the salt the store keeps per user+connection. Every token
 * of one user on one connection therefore shares one salt and iteration count, so the SCRAM server can
 * send a single salt in its first message and then try the client's proof against the verifier of
 * every active token (matchProof in ../crypto/scram.ts).
 *
 * For a user+connection with no active token the authority answers with a fake salt derived from a
 * server secret (HMAC(serverSecret, user, connection)), stable for the lifetime of that secret and no
 * candidates, so neither the salt nor the shape of the exchange tells a prober whether the user exists.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { deriveVerifier, safeEqual, SCRAM_ITERATIONS, type ScramVerifier } from '../crypto/scram.js';
import type { Store, TokenRow } from '../store/store.js';

export const TOKEN_PREFIX = 'jg_';

export interface MintTokenInput {
  user: string;
  connection: string;
  ttlMs: number;
  /** Epoch ms; injected so tests control time (default Date.now()). */
  now?: number;
}

export interface MintedToken {
  /** The secret handed to the user once; not recoverable afterwards. */
  token: string;
  id: string;
  expiresAt: number;
}

/** Issue a token: store its SCRAM verifier under the shared user+connection salt, return it once. */
export async function mintToken(store: Store, input: MintTokenInput): Promise<MintedToken> {
  const { user, connection, ttlMs } = input;
  const now = input.now ?? Date.now();
  if (user === '') throw new RangeError('token user must not be empty');
  if (connection === '') throw new RangeError('token connection must not be empty');
  if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new RangeError('token lifetime must be a positive duration');
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const salt = await store.scramSalt(user, connection);
  const verifier = deriveVerifier(token, salt, SCRAM_ITERATIONS);
  const id = randomUUID();
  const expiresAt = now + Math.floor(ttlMs);
  const row: TokenRow = {
    id,
    user,
    connection,
    salt: verifier.salt,
    iterations: verifier.iterations,
    storedKey: verifier.storedKey,
    serverKey: verifier.serverKey,
    createdAt: now,
    expiresAt,
    revokedAt: null,
  };
  await store.insertToken(row);
  return { token, id, expiresAt };
}

export type TokenCandidate = ScramVerifier & { tokenId: string; expiresAt: number };

export interface ScramCandidates {
  salt: Buffer;
  iterations: number;
  /** Verifiers of the active tokens; empty for an unknown user/connection or when none is active. */
  candidates: TokenCandidate[];
}

export interface TokenAuthorityOptions {
  /**
   * Key for the fake salts of unknown users. Pass a persisted secret to keep fake salts stable across
   * restarts; by default a random one is made per process.
   */
  serverSecret?: Buffer;
}

export class TokenAuthority {
  private readonly store: Store;
  private readonly serverSecret: Buffer;

  constructor(store: Store, options: TokenAuthorityOptions = {}) {
    this.store = store;
    this.serverSecret = options.serverSecret ?? randomBytes(32);
  }

  /** What the SCRAM server needs: the salt to send and the verifiers to try the client's proof against. */
  async scramCandidates(user: string, connection: string, now: number): Promise<ScramCandidates> {
    const active = await this.store.activeTokens(user, connection, now);
    const first = active[0];
    if (!first) return { salt: this.fakeSalt(user, connection), iterations: SCRAM_ITERATIONS, candidates: [] };
    // All tokens share the store's salt; a row that somehow does not cannot be matched against one
    // client proof, so it is left out rather than mixed in.
    const candidates = active.filter((t) => t.iterations === first.iterations && t.salt.equals(first.salt)).map(toCandidate);
    return { salt: first.salt, iterations: first.iterations, candidates };
  }

  /**
   * Cleartext authentication (only ever offered over TLS): the id of the active token equal to
   * `token`, or undefined. Derives once and compares against every candidate in constant time; an
   * unknown user costs the same derivation.
   */
  async verifyCleartext(user: string, connection: string, token: string, now: number): Promise<string | undefined> {
    const { salt, iterations, candidates } = await this.scramCandidates(user, connection, now);
    const presented = deriveVerifier(token, salt, iterations);
    let match: string | undefined;
    for (const c of candidates) {
      if (safeEqual(presented.storedKey, c.storedKey) && match === undefined) match = c.tokenId;
    }
    return match;
  }

  /** Revoke one token; true when it was active or expired but not yet revoked. */
  revoke(tokenId: string, now: number): Promise<boolean> {
    return this.store.revokeToken(tokenId, now);
  }

  private fakeSalt(user: string, connection: string): Buffer {
    return createHmac('sha256', this.serverSecret)
      .update('jitgate fake scram salt\0')
      .update(user)
      .update('\0')
      .update(connection)
      .digest()
      .subarray(0, 16);
  }
}

function toCandidate(t: TokenRow): TokenCandidate {
  return {
    tokenId: t.id,
    expiresAt: t.expiresAt,
    salt: t.salt,
    iterations: t.iterations,
    storedKey: t.storedKey,
    serverKey: t.serverKey,
  };
}
