/**
 * The gateway's new backend password and the forms in which the backend is told about it, computed
 * here so that the cleartext never travels in a statement a server might log: a PostgreSQL SCRAM
 * verifier, the mysql_native_password hash, Redis's SHA-256 `#` form.
 */
import { createHash, randomBytes } from 'node:crypto';
import { deriveVerifier, newSalt, SCRAM_ITERATIONS } from '../../crypto/scram.js';

export { nativeHash as mysqlNativeHash } from '../ephemeral/mysql-users.js';

/**
 * 32 random bytes as base64url: 256 bits, ASCII only (so SCRAM's SASLprep leaves it unchanged) and
 * nothing that needs quoting in SQL or RESP.
 */
export function newBackendPassword(): string {
  return randomBytes(32).toString('base64url');
}

/** PostgreSQL's stored SCRAM form, `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. */
export function postgresScramVerifier(password: string, salt: Buffer = newSalt(), iterations = SCRAM_ITERATIONS): string {
  const v = deriveVerifier(password, salt, iterations);
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${v.storedKey.toString('base64')}:${v.serverKey.toString('base64')}`;
}

/** Redis ACL's hashed password form: lower-case hex SHA-256 (used as `#<hash>` and `!<hash>`). */
export function redisPasswordHash(password: string): string {
  return createHash('sha256').update(password, 'utf8').digest('hex');
}
