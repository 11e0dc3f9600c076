/**
 * The gateway's own bearer secrets. Each is a type prefix plus 32 random bytes (base64url), so a
 * leaked string says what it is (secret scanners match on the prefix) and cannot be guessed:
 *
 *   jgs_  gateway session token: the bearer a signed-in CLI sends (lifetime: identities.session.ttl)
 *   jgr_  refresh token: exchanged once for a new session pair (rotating; never a bearer)
 *   jgk_  API key for automation (admin-created, shown once)
 *
 * Only the SHA-256 of a secret is stored. A plain hash (no salt, no stretching) is enough because
 * the input has 256 bits of entropy: there is nothing to brute-force, and the store can look rows up
 * by hash in one indexed read.
 */
import { createHash, randomBytes } from 'node:crypto';

export const SESSION_PREFIX = 'jgs_';
export const REFRESH_PREFIX = 'jgr_';
export const API_KEY_PREFIX = 'jgk_';

export type OpaquePrefix = typeof SESSION_PREFIX | typeof REFRESH_PREFIX | typeof API_KEY_PREFIX;

const BODY = /^[A-Za-z0-9_-]{43}$/;

export function newOpaqueToken(prefix: OpaquePrefix): string {
  return prefix + randomBytes(32).toString('base64url');
}

/** True when `token` has the prefix and a well-formed body (cheap check before a store lookup). */
export function isOpaqueToken(token: string, prefix: OpaquePrefix): boolean {
  return token.startsWith(prefix) && BODY.test(token.slice(prefix.length));
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Short random ids for rows that users see (API key ids, session family ids). */
export function newId(prefix: string): string {
  return prefix + randomBytes(9).toString('base64url');
}
