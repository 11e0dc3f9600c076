/**
 * Keys every gateway instance on one store must agree on: the audit signing key (one key signs and
 * verifies every checkpoint), the masking hash key (hashed values join across instances), the
 * secret behind unknown users' fake SCRAM salts (no instance may answer differently from another,
 * or a probe could tell unknown users from known ones) and the generated TLS certificate.
 *
 * With a master key they live in the store's secret table, sealed like any secret under reserved
 * names, so an instance on another host finds them. The first instance that needs one stores it,
 * importing the file a single-host gateway kept before, so a key an auditor pinned survives the
 * move; instances starting at once agree on whichever was stored first. Without a master key
 * nothing can be sealed: keys stay in files under the data directory, shared only by instances on
 * that directory (one host), as they always were.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { KeyKeeper, KeyOrigin } from '../core/types.js';
import type { SecretStore } from './secret-store.js';

export class SharedKeys implements KeyKeeper {
  /** Keys in the store when `secrets` has a master key, else in files. */
  static open(secrets: SecretStore): SharedKeys {
    return new SharedKeys(secrets.hasMasterKey() ? secrets : undefined);
  }

  /** Keys in files only: a gateway without a master key, and the tools that read its data directory. */
  static local(): SharedKeys {
    return new SharedKeys(undefined);
  }

  private constructor(private readonly secrets: SecretStore | undefined) {}

  get shared(): boolean {
    return this.secrets !== undefined;
  }

  async key(name: string, o: { file: string; create: () => string }): Promise<{ value: string; origin: KeyOrigin }> {
    if (!this.secrets) return keyFile(o.file, o.create);
    const stored = await this.secrets.sharedKey(name);
    if (stored !== undefined) return { value: stored, origin: 'store' };
    const local = readKeyFile(o.file);
    const value = local ?? o.create().trim();
    const kept = await this.secrets.putSharedKey(name, value);
    return { value: kept, origin: kept !== value ? 'store' : local !== undefined ? 'imported' : 'created' };
  }

  async find(name: string, file?: string): Promise<string | undefined> {
    // A file no instance has imported yet is the key the next one will store.
    return (await this.secrets?.sharedKey(name)) ?? (file === undefined ? undefined : readKeyFile(file));
  }

  async put(name: string, value: string, replacing?: string): Promise<string> {
    if (!this.secrets) throw new Error(`shared key ${name}: keys are kept in files (no master key)`);
    return this.secrets.putSharedKey(name, value, replacing);
  }
}

function readKeyFile(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}

/** The key in `file`, created (0600, parent 0700) when absent; of two processes creating it at once, the first wins. */
function keyFile(file: string, create: () => string): { value: string; origin: KeyOrigin } {
  const existing = readKeyFile(file);
  if (existing !== undefined) {
    tighten(file);
    return { value: existing, origin: 'file' };
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const value = create().trim();
  try {
    writeFileSync(file, value + '\n', { mode: 0o600, flag: 'wx' });
    return { value, origin: 'created' };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return { value: readKeyFile(file) ?? value, origin: 'file' };
  }
}

/** A copy or an older version may have loosened a key file's mode; put it back to 0600 where we may. */
function tighten(file: string): void {
  try {
    chmodSync(file, 0o600);
  } catch {
    // not ours to change; the key still works
  }
}
