/**
 * Sealing the IdP's refresh token under the gateway refresh token that goes with it.
 *
 * After a login the gateway may hold the IdP's refresh token, so that each silent session refresh
 * can ask the IdP again (a user removed or moved between groups at the IdP stops getting sessions
 * with the old groups). Stored in the clear, a copy of the state store would hand out working IdP
 * credentials; stored under the master key, the gateway would need one just for logins. Instead it
 * is sealed (AES-256-GCM) under a key derived (HKDF-SHA256) from the current `jgr_` refresh token,
 * which only its holder has and the store keeps only as a hash: the store alone opens nothing, and
 * each rotation re-seals under the new refresh token. The family id is the HKDF salt and the
 * additional data, so a sealed blob cannot be moved to another login.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const INFO = 'jitgate upstream refresh token v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

function keyFor(refreshToken: string, familyId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(refreshToken, 'utf8'), Buffer.from(familyId, 'utf8'), INFO, 32));
}

export function sealUpstream(secret: string, refreshToken: string, familyId: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', keyFor(refreshToken, familyId), iv);
  cipher.setAAD(Buffer.from(familyId, 'utf8'));
  const body = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

/** The sealed secret, or undefined when the key or the blob is wrong. */
export function openUpstream(sealed: Buffer, refreshToken: string, familyId: string): string | undefined {
  if (sealed.length < IV_BYTES + TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', keyFor(refreshToken, familyId), sealed.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(familyId, 'utf8'));
    decipher.setAuthTag(sealed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}
