/**
 * The gateway's encrypted secret store: backend passwords and other secrets referenced from the
 * config as `secret:NAME`. Values are sealed with AES-256-GCM (a fresh random 12-byte IV for every
 * write, the secret's name as additional authenticated data, so a ciphertext cannot be moved to
 * another name) and only the sealed form reaches the Store.
 *
 * Master key: the environment variable JITGATE_MASTER_KEY, in one of three forms, tried in order:
 *   1. 64 hex digits (32 bytes), e.g. `openssl rand -hex 32`;
 *   2. base64 or base64url of exactly 32 bytes, e.g. `openssl rand -base64 32`;
 *   3. any other passphrase of at least 16 characters, stretched with scrypt (N=2^15, r=8, p=1,
 *      32-byte output) and the fixed salt MASTER_KEY_SCRYPT_SALT. The salt is fixed on purpose: the
 *      same passphrase must give the same key on every gateway instance and after a restart; it is
 *      a domain separator, not a secret.
 * The key is read only when a secret is actually sealed or opened, so a gateway without secret
 * references runs without one.
 *
 * A key check record (reserved name `jitgate:keycheck`, a name no user secret can take) is written
 * with the first secret. It lets the store tell "wrong master key" from "tampered value" and refuses
 * to mix two master keys in one store.
 *
 * Nothing here ever puts a secret value or the master key into an error message or a log line.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { secretNameProblem } from '../core/secret-ref.js';
import type { SecretRow, Store } from '../store/store.js';

export const MASTER_KEY_ENV = 'JITGATE_MASTER_KEY';
/** Fixed, public scrypt salt for passphrase master keys (see the module comment). */
export const MASTER_KEY_SCRYPT_SALT = 'jitgate/master-key/v1';
export const MIN_PASSPHRASE_LENGTH = 16;
/** Largest secret value accepted (bytes). */
export const MAX_SECRET_BYTES = 64 * 1024;

const KEYCHECK_NAME = 'jitgate:keycheck';
/**
 * A rotation's next value of a secret is staged under this prefix before the backend is told, so a
 * crash in between never loses the password the backend may already have. No user secret name can
 * contain `:`.
 */
const STAGED_PREFIX = 'jitgate:next/';
/** Keys every instance on the store shares (./shared-keys.ts) live under this prefix. */
const SHARED_KEY_PREFIX = 'jitgate:key/';
const isInternal = (name: string) => name.startsWith('jitgate:');
const KEYCHECK_PLAINTEXT = Buffer.from('jitgate key check v1', 'utf8');

/** An expected failure around secrets: missing key, unknown name, wrong key, tampering. */
export class CredentialError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CredentialError';
  }
}

/** No master key is configured (as opposed to one that is configured but unusable). */
export class MasterKeyMissing extends CredentialError {
  constructor(message: string) {
    super(message);
    this.name = 'MasterKeyMissing';
  }
}

const KEY_GEN_HINT = 'generate one with: openssl rand -base64 32';

/** Turn the text of JITGATE_MASTER_KEY into a 32-byte key (see the module comment for the forms). */
export function parseMasterKey(text: string): Buffer {
  const s = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(s)) return Buffer.from(s, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(s)) {
    const key = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (key.length === 32) return key;
  }
  if (s.length < MIN_PASSPHRASE_LENGTH) {
    throw new CredentialError(
      `${MASTER_KEY_ENV} is too short: use 32 random bytes as base64 or hex, or a passphrase of at least ` +
        `${MIN_PASSPHRASE_LENGTH} characters (${KEY_GEN_HINT})`,
    );
  }
  return scryptSync(Buffer.from(s, 'utf8'), MASTER_KEY_SCRYPT_SALT, 32, {
    N: 1 << 15,
    r: 8,
    p: 1,
    maxmem: 64 * 1024 * 1024,
  });
}

/** Read the master key from the environment; throws a CredentialError saying what to do when absent. */
export function masterKeyFromEnv(env: NodeJS.ProcessEnv = process.env): Buffer {
  const text = env[MASTER_KEY_ENV];
  if (text === undefined || text.trim() === '') {
    throw new MasterKeyMissing(
      `${MASTER_KEY_ENV} is not set: the secret store needs a master key (32 bytes as base64 or hex, ` +
        `or a passphrase of at least ${MIN_PASSPHRASE_LENGTH} characters); ${KEY_GEN_HINT}`,
    );
  }
  return parseMasterKey(text);
}

export interface SecretStoreOptions {
  /** A key, or a function producing one lazily; default: read JITGATE_MASTER_KEY from `env`. */
  masterKey?: Buffer | (() => Buffer);
  env?: NodeJS.ProcessEnv;
  now?: () => number;
}

export class SecretStore {
  private readonly store: Store;
  private readonly keySource: () => Buffer;
  private readonly now: () => number;
  private key: Buffer | undefined;

  constructor(store: Store, options: SecretStoreOptions = {}) {
    this.store = store;
    const { masterKey } = options;
    const env = options.env ?? process.env;
    this.keySource = masterKey === undefined ? () => masterKeyFromEnv(env) : Buffer.isBuffer(masterKey) ? () => masterKey : masterKey;
    this.now = options.now ?? Date.now;
  }

  /** Encrypt and store a secret, replacing any previous value under the same name. */
  async set(name: string, value: string): Promise<void> {
    const problem = secretNameProblem(name);
    if (problem) throw new CredentialError(`invalid secret name ${JSON.stringify(name)}: ${problem}`);
    await this.put(name, value);
  }

  /** Keeps the next value of `name` beside the current one (a rotation in progress). */
  stage(name: string, value: string): Promise<void> {
    return this.put(STAGED_PREFIX + name, value);
  }

  /** The staged next value of `name`, if a rotation left one. */
  staged(name: string): Promise<string | undefined> {
    return this.open(STAGED_PREFIX + name);
  }

  /** The staged value becomes the secret's value. A crash in between leaves a copy staged, which is harmless. */
  async promote(name: string): Promise<void> {
    const next = await this.staged(name);
    if (next === undefined) throw new CredentialError(`secret ${name}: nothing staged to promote`);
    await this.put(name, next);
    await this.store.deleteSecret(STAGED_PREFIX + name);
  }

  async discardStaged(name: string): Promise<void> {
    await this.store.deleteSecret(STAGED_PREFIX + name);
  }

  private async put(name: string, value: string): Promise<void> {
    await this.store.putSecret(await this.sealed(name, value));
  }

  private async sealed(name: string, value: string): Promise<SecretRow> {
    const plaintext = Buffer.from(value, 'utf8');
    if (plaintext.length === 0) throw new CredentialError(`secret ${name}: the value is empty`);
    if (plaintext.length > MAX_SECRET_BYTES) {
      throw new CredentialError(`secret ${name}: the value is larger than ${MAX_SECRET_BYTES} bytes`);
    }
    const key = this.masterKey();
    await this.ensureKeyCheck(key);
    return { name, ...seal(key, name, plaintext), updatedAt: this.now() };
  }

  /** Whether a master key is configured; one that is configured but malformed still throws. */
  hasMasterKey(): boolean {
    try {
      this.masterKey();
      return true;
    } catch (err) {
      if (err instanceof MasterKeyMissing) return false;
      throw err;
    }
  }

  /** The shared key `name` (./shared-keys.ts), or undefined while no instance has stored one. */
  sharedKey(name: string): Promise<string | undefined> {
    return this.open(SHARED_KEY_PREFIX + name);
  }

  /**
   * Stores `value` as the shared key `name` unless one is stored, or, with `replacing`, in place of
   * that value only. Returns the value stored afterwards: `value`, or whatever another instance
   * stored first, so that every instance ends up with the same key.
   */
  async putSharedKey(name: string, value: string, replacing?: string): Promise<string> {
    const full = SHARED_KEY_PREFIX + name;
    const row = await this.sealed(full, value);
    const current = await this.store.getSecret(full);
    const won =
      replacing === undefined || !current
        ? await this.store.addSecret(row)
        : (await this.open(full)) === replacing && (await this.store.replaceSecret(row, current.iv));
    if (won) return value;
    const stored = await this.open(full);
    if (stored === undefined) throw new CredentialError(`shared key ${name} was removed while it was being stored; start again`);
    return stored;
  }

  /** The decrypted value, or undefined when no secret has that name. Throws on a wrong key or tampering. */
  async get(name: string): Promise<string | undefined> {
    return isInternal(name) ? undefined : this.open(name);
  }

  private async open(name: string): Promise<string | undefined> {
    const row = await this.store.getSecret(name);
    if (!row) return undefined;
    const key = this.masterKey();
    const plaintext = open(key, name, row);
    if (plaintext) return plaintext.toString('utf8');
    const check = await this.store.getSecret(KEYCHECK_NAME);
    if (check && !open(key, KEYCHECK_NAME, check)) {
      throw new CredentialError(`cannot decrypt secret ${name}: ${MASTER_KEY_ENV} is not the key the secret store was written with`);
    }
    if (check) {
      throw new CredentialError(
        `cannot decrypt secret ${name}: its stored value failed the integrity check (modified or corrupted); ` +
          `set it again with: jitgate secrets set ${name}`,
      );
    }
    throw new CredentialError(`cannot decrypt secret ${name}: wrong ${MASTER_KEY_ENV}, or the stored value was modified or corrupted`);
  }

  /**
   * Resolve the master key now and, when the store already holds secrets, check that it is the key
   * they were written with. Lets a caller fail before prompting for a value.
   */
  async verifyMasterKey(): Promise<void> {
    const key = this.masterKey();
    const check = await this.store.getSecret(KEYCHECK_NAME);
    if (check && !open(key, KEYCHECK_NAME, check)?.equals(KEYCHECK_PLAINTEXT)) {
      throw new CredentialError(`${MASTER_KEY_ENV} is not the key the existing secrets were encrypted with`);
    }
  }

  async has(name: string): Promise<boolean> {
    return !isInternal(name) && (await this.store.getSecret(name)) !== undefined;
  }

  /** Names and update times only; needs no master key. */
  async list(): Promise<{ name: string; updatedAt: number }[]> {
    return (await this.store.listSecrets()).filter((s) => !isInternal(s.name));
  }

  /** Remove a secret; false when there was none. Needs no master key. */
  async delete(name: string): Promise<boolean> {
    if (isInternal(name)) return false;
    return this.store.deleteSecret(name);
  }

  private masterKey(): Buffer {
    if (!this.key) {
      const key = this.keySource();
      if (key.length !== 32) throw new CredentialError('the master key must be 32 bytes');
      this.key = key;
    }
    return this.key;
  }

  private async ensureKeyCheck(key: Buffer): Promise<void> {
    const check = await this.store.getSecret(KEYCHECK_NAME);
    if (!check) {
      await this.store.putSecret({ name: KEYCHECK_NAME, ...seal(key, KEYCHECK_NAME, KEYCHECK_PLAINTEXT), updatedAt: this.now() });
      return;
    }
    const plain = open(key, KEYCHECK_NAME, check);
    if (!plain || !plain.equals(KEYCHECK_PLAINTEXT)) {
      throw new CredentialError(
        `${MASTER_KEY_ENV} is not the key the existing secrets were encrypted with; refusing to mix keys in one store`,
      );
    }
  }
}

function seal(key: Buffer, name: string, plaintext: Buffer): { iv: Buffer; tag: Buffer; ciphertext: Buffer } {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(name, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, tag: cipher.getAuthTag(), ciphertext };
}

function open(key: Buffer, name: string, row: { iv: Buffer; tag: Buffer; ciphertext: Buffer }): Buffer | undefined {
  try {
    if (row.iv.length !== 12 || row.tag.length !== 16) return undefined;
    const decipher = createDecipheriv('aes-256-gcm', key, row.iv);
    decipher.setAAD(Buffer.from(name, 'utf8'));
    decipher.setAuthTag(row.tag);
    return Buffer.concat([decipher.update(row.ciphertext), decipher.final()]);
  } catch {
    return undefined;
  }
}
