import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore, type SqliteStore } from '../store/sqlite.js';
import { CredentialError, SecretStore } from './secret-store.js';
import { SharedKeys } from './shared-keys.js';

const KEY = randomBytes(32).toString('base64');
const stores: SqliteStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) void s.close();
});

/** One store file, as several instances open it. */
function storeFile(): string {
  return join(mkdtempSync(join(tmpdir(), 'jitgate-keys-')), 'jitgate.db');
}
function instance(path: string, env: NodeJS.ProcessEnv = { JITGATE_MASTER_KEY: KEY }): { keys: SharedKeys; store: SqliteStore } {
  const store = openSqliteStore(path);
  stores.push(store);
  return { keys: SharedKeys.open(new SecretStore(store, { env })), store };
}
const dir = () => mkdtempSync(join(tmpdir(), 'jitgate-keyfiles-'));
let made = 0;
const create = () => `key-${++made}-${randomBytes(4).toString('hex')}`;

describe('SharedKeys with a master key', () => {
  it('gives every instance on one store the key the first one made, from any host', async () => {
    const path = storeFile();
    const a = instance(path);
    const b = instance(path);
    expect(a.keys.shared).toBe(true);
    const first = await a.keys.key('k', { file: join(dir(), 'k.key'), create });
    const second = await b.keys.key('k', { file: join(dir(), 'k.key'), create });
    expect(first.origin).toBe('created');
    expect(second).toEqual({ value: first.value, origin: 'store' });
    // Sealed: the plaintext is nowhere in the store's table.
    const row = (await a.store.getSecret('jitgate:key/k'))!;
    expect(row.ciphertext.toString('utf8')).not.toContain(first.value);
  });

  it('imports the key file a single-host gateway kept, and leaves the file in place', async () => {
    const path = storeFile();
    const file = join(dir(), 'audit.key');
    writeFileSync(file, 'the-old-key\n');
    const a = instance(path);
    // Before any instance imports it, the file is what tools report: the key the import will keep.
    expect(await a.keys.find('k', file)).toBe('the-old-key');
    expect(await a.keys.key('k', { file, create })).toEqual({ value: 'the-old-key', origin: 'imported' });
    // Another host with its own, different file joins: the store's key wins.
    const otherFile = join(dir(), 'audit.key');
    writeFileSync(otherFile, 'another-key\n');
    expect(await instance(path).keys.key('k', { file: otherFile, create })).toEqual({ value: 'the-old-key', origin: 'store' });
    expect(readFileSync(file, 'utf8')).toBe('the-old-key\n');
  });

  it('of two instances storing at once, both end with the first stored', async () => {
    const path = storeFile();
    const a = instance(path);
    const b = instance(path);
    // b looked before a stored, then lost the insert: it must take a's key, not keep its own.
    const kept = await a.keys.put('k', 'from-a');
    expect(await b.keys.put('k', 'from-b')).toBe(kept);
    expect(await b.keys.find('k', '/nonexistent')).toBe('from-a');
  });

  it('replaces a key only while it is the value the replacer saw', async () => {
    const a = instance(storeFile());
    await a.keys.put('cert', 'old');
    expect(await a.keys.put('cert', 'renewed-by-a', 'old')).toBe('renewed-by-a');
    // b renewed from the same old value, too late: it gets a's renewal.
    expect(await a.keys.put('cert', 'renewed-by-b', 'old')).toBe('renewed-by-a');
  });

  it('refuses to start with a master key that is not the store’s', async () => {
    const path = storeFile();
    await instance(path).keys.key('k', { file: join(dir(), 'k.key'), create });
    const wrong = instance(path, { JITGATE_MASTER_KEY: randomBytes(32).toString('hex') });
    await expect(wrong.keys.key('k', { file: join(dir(), 'k.key'), create })).rejects.toThrow(CredentialError);
  });

  it('refuses a malformed master key rather than falling back to files', async () => {
    expect(() => instance(storeFile(), { JITGATE_MASTER_KEY: 'short' })).toThrow(/too short/);
  });
});

describe('SharedKeys without a master key', () => {
  it('keeps each key in its file (0600), created once and read back', async () => {
    const { keys, store } = instance(storeFile(), {});
    expect(keys.shared).toBe(false);
    const file = join(dir(), 'sub', 'k.key');
    const first = await keys.key('k', { file, create });
    expect(first.origin).toBe('created');
    expect(await keys.key('k', { file, create })).toEqual({ value: first.value, origin: 'file' });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await keys.find('k', file)).toBe(first.value);
    expect(await store.getSecret('jitgate:key/k')).toBeUndefined();
    await expect(keys.put('k', 'v')).rejects.toThrow(/files/);
  });
});
