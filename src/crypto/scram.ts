/**
 * SCRAM-SHA-256 primitives (RFC 5802 / RFC 7677), shared by the server side (clients authenticating
 * to the gateway with a token) and the client side (the gateway authenticating to a backend).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export const SCRAM_ITERATIONS = 4096;

export interface ScramVerifier {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

export function hmac(key: Buffer, data: Buffer | string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

export function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  // SASLprep is skipped on purpose: tokens are ASCII, and PostgreSQL itself falls back to the raw
  // bytes when a password is not valid SASLprep input.
  return pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
}

export function deriveVerifier(password: string, salt: Buffer, iterations = SCRAM_ITERATIONS): ScramVerifier {
  const salted = saltedPassword(password, salt, iterations);
  const clientKey = hmac(salted, 'Client Key');
  return { salt, iterations, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') };
}

export function newSalt(): Buffer {
  return randomBytes(16);
}

export function newNonce(): string {
  return randomBytes(18).toString('base64');
}

export function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Server side: given the client proof, find which candidate verifier (all sharing one salt and
 * iteration count) the client's password matches. Returns its index or -1.
 */
export function matchProof(authMessage: string, proof: Buffer, candidates: ScramVerifier[]): number {
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]!;
    const signature = hmac(c.storedKey, authMessage);
    if (proof.length !== signature.length) return -1;
    const clientKey = xor(proof, signature);
    if (safeEqual(sha256(clientKey), c.storedKey)) return i;
  }
  return -1;
}

export function serverSignature(authMessage: string, serverKey: Buffer): Buffer {
  return hmac(serverKey, authMessage);
}

/** Client side: compute the proof and expected server signature for a password. */
export function clientProof(
  password: string,
  salt: Buffer,
  iterations: number,
  authMessage: string,
): { proof: Buffer; serverSignature: Buffer } {
  const salted = saltedPassword(password, salt, iterations);
  const clientKey = hmac(salted, 'Client Key');
  const storedKey = sha256(clientKey);
  const proof = xor(clientKey, hmac(storedKey, authMessage));
  return { proof, serverSignature: hmac(hmac(salted, 'Server Key'), authMessage) };
}
