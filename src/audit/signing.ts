/**
 * The Ed25519 key that signs audit checkpoints. The gateway keeps the private key as PEM through its
 * KeyKeeper (a 0600 file, or the shared store that every instance signs with; generated on first
 * start when absent); the public half is printed by `jitgate audit
 * public-key` for auditors to pin, and each checkpoint also names it so an export verifies offline.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

export interface TrustedKey {
  keyId: string;
  /** base64 of the raw 32-byte Ed25519 public key. */
  publicKey: string;
}

export interface AuditSigner extends TrustedKey {
  sign(message: string): string;
}

/** What a checkpoint signature covers: the entry it vouches for and that entry's hash. */
export function checkpointMessage(upTo: number, head: string): string {
  return `jitgate-audit-checkpoint:v1:${upTo}:${head}`;
}

function rawPublicKey(key: KeyObject): Buffer {
  // The SPKI DER of an Ed25519 key is a fixed 12-byte prefix and the 32 raw bytes.
  return key.export({ type: 'spki', format: 'der' }).subarray(-32);
}

function keyIdOf(raw: Buffer): string {
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

function signerFrom(privateKey: KeyObject): AuditSigner {
  const raw = rawPublicKey(createPublicKey(privateKey));
  return {
    keyId: keyIdOf(raw),
    publicKey: raw.toString('base64'),
    sign: (message) => sign(null, Buffer.from(message), privateKey).toString('base64'),
  };
}

/** A new signing key, as PKCS#8 PEM (kept by the KeyKeeper: a file, or the shared store). */
export function generateSigningKey(): string {
  return generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** The signer of a PEM private key; `source` names where it came from in errors. */
export function signerFromPem(pem: string, source: string): AuditSigner {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`${source}: expected an Ed25519 private key, got ${key.asymmetricKeyType}`);
  return signerFrom(key);
}

/**
 * A public key to trust: the gateway's key file (private: its public half is taken), a PEM public
 * key, or the base64 raw key as `jitgate audit public-key` prints it.
 */
export function trustedKeyFrom(text: string): TrustedKey {
  const trimmed = text.trim();
  let key: KeyObject;
  if (trimmed.includes('PRIVATE KEY')) key = createPublicKey(createPrivateKey(trimmed));
  else if (trimmed.includes('PUBLIC KEY')) key = createPublicKey(trimmed);
  else {
    const raw = Buffer.from(trimmed, 'base64');
    if (raw.length !== 32) throw new Error('expected an Ed25519 public key: PEM, or base64 of 32 bytes');
    return { keyId: keyIdOf(raw), publicKey: raw.toString('base64') };
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`expected an Ed25519 key, got ${key.asymmetricKeyType}`);
  const raw = rawPublicKey(key);
  return { keyId: keyIdOf(raw), publicKey: raw.toString('base64') };
}

const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export function verifySignature(key: TrustedKey, message: string, signature: string): boolean {
  try {
    const publicKey = createPublicKey({
      key: Buffer.concat([SPKI_ED25519_PREFIX, Buffer.from(key.publicKey, 'base64')]),
      format: 'der',
      type: 'spki',
    });
    return verify(null, Buffer.from(message), publicKey, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}
