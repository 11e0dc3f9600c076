import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore, type SqliteStore } from '../store/sqlite.js';
import { CredentialError, MASTER_KEY_SCRYPT_SALT, masterKeyFromEnv, parseMasterKey, SecretStore } from './secret-store.js';

const KEY = randomBytes(32);
const stores: SqliteStore[] = [];
function memory(): SqliteStore {
  const s = openSqliteStore(':memory:');
  stores.push(s);
  return s;
}
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

describe('master key', () => {
  it('accepts hex, base64 and base64url of 32 bytes as the key itself', () => {
    expect(parseMasterKey(KEY.toString('hex')).equals(KEY)).toBe(true);
    expect(parseMasterKey(KEY.toString('base64')).equals(KEY)).toBe(true);
    expect(parseMasterKey(KEY.toString('base64url')).equals(KEY)).toBe(true);
    expect(parseMasterKey(`  ${KEY.toString('hex')}\n`).equals(KEY)).toBe(true);
  });

  it('stretches a passphrase with scrypt and the documented fixed salt', async () => {
    const { scryptSync } = await import('node:crypto');
    const pass = 'correct horse battery staple';
    const key = parseMasterKey(pass);
    expect(key).toHaveLength(32);
    expect(key.equals(scryptSync(pass, MASTER_KEY_SCRYPT_SALT, 32, { N: 1 << 15, r: 8, p: 1, maxmem: 64 << 20 }))).toBe(true);
    expect(parseMasterKey(pass).equals(key)).toBe(true);
  });

  it('refuses a short passphrase and explains a missing key without echoing anything', () => {
    expect(() => parseMasterKey('hunter2')).toThrow(/too short/);
    expect(() => parseMasterKey('hunter2')).not.toThrow(/hunter2/);
    expect(() => masterKeyFromEnv({})).toThrow(/JITGATE_MASTER_KEY is not set.*openssl rand -base64 32/);
  });
});

describe('SecretStore', () => {
  it('round-trips a value and stores only ciphertext', () => {
    const store = memory();
    const secrets = new SecretStore(store, { masterKey: KEY, now: () => 42 });
    secrets.set('prod-db', 'p@ss wörd');
    expect(secrets.get('prod-db')).toBe('p@ss wörd');
    const row = store.getSecret('prod-db')!;
    expect(row.iv).toHaveLength(12);
    expect(row.tag).toHaveLength(16);
    expect(row.ciphertext.toString('utf8')).not.toContain('p@ss');
    expect(row.updatedAt).toBe(42);
    expect(secrets.list()).toEqual([{ name: 'prod-db', updatedAt: 42 }]);
    expect(secrets.get('missing')).toBeUndefined();
  });

  it('uses a fresh IV for every write', () => {
    const store = memory();
    const secrets = new SecretStore(store, { masterKey: KEY });
    secrets.set('a', 'same');
    const first = store.getSecret('a')!;
    secrets.set('a', 'same');
    const second = store.getSecret('a')!;
    expect(first.iv.equals(second.iv)).toBe(false);
    expect(first.ciphertext.equals(second.ciphertext)).toBe(false);
  });

  it('detects a flipped ciphertext byte, a flipped tag and a value moved to another name', () => {
    const store = memory();
    const secrets = new SecretStore(store, { masterKey: KEY });
    secrets.set('a', 'value-a');
    secrets.set('b', 'value-b');
    const row = store.getSecret('a')!;

    const flipped = Buffer.from(row.ciphertext);
    flipped[0] = flipped[0]! ^ 1;
    store.putSecret({ ...row, ciphertext: flipped });
    expect(() => secrets.get('a')).toThrow(CredentialError);
    expect(() => secrets.get('a')).toThrow(/secret a: its stored value failed the integrity check/);

    const tag = Buffer.from(row.tag);
    tag[15] = tag[15]! ^ 0x80;
    store.putSecret({ ...row, tag });
    expect(() => secrets.get('a')).toThrow(/integrity check/);

    // the name is authenticated: b's sealed value under a's name does not open
    store.putSecret({ ...store.getSecret('b')!, name: 'a' });
    expect(() => secrets.get('a')).toThrow(/integrity check/);
    expect(secrets.get('b')).toBe('value-b');
  });

  it('tells a wrong master key apart, and refuses to mix keys', () => {
    const store = memory();
    new SecretStore(store, { masterKey: KEY }).set('a', 'value-a');
    const wrong = new SecretStore(store, { masterKey: randomBytes(32) });
    expect(() => wrong.get('a')).toThrow(/cannot decrypt secret a: JITGATE_MASTER_KEY is not the key/);
    expect(() => wrong.set('b', 'x')).toThrow(/refusing to mix keys/);
    expect(() => wrong.verifyMasterKey()).toThrow(/not the key/);
    expect(wrong.list().map((s) => s.name)).toEqual(['a']);
  });

  it('never puts the value into an error', () => {
    const store = memory();
    const secrets = new SecretStore(store, { masterKey: KEY });
    secrets.set('a', 'TOPSECRETVALUE');
    store.putSecret({ ...store.getSecret('a')!, ciphertext: Buffer.from('garbage-garbage') });
    try {
      secrets.get('a');
      expect.unreachable();
    } catch (err) {
      expect(String((err as Error).message)).not.toContain('TOPSECRET');
    }
  });

  it('reads the key from the environment only when needed', () => {
    const store = memory();
    const noKey = new SecretStore(store, { env: {} });
    expect(noKey.list()).toEqual([]);
    expect(() => noKey.set('a', 'x')).toThrow(/JITGATE_MASTER_KEY is not set/);
    const withKey = new SecretStore(store, { env: { JITGATE_MASTER_KEY: KEY.toString('base64') } });
    withKey.set('a', 'x');
    expect(new SecretStore(store, { env: { JITGATE_MASTER_KEY: KEY.toString('hex') } }).get('a')).toBe('x');
    expect(() => noKey.get('a')).toThrow(/JITGATE_MASTER_KEY is not set/);
  });

  it('validates names and values and hides the key check record', () => {
    const store = memory();
    const secrets = new SecretStore(store, { masterKey: KEY });
    expect(() => secrets.set('bad name', 'x')).toThrow(/invalid secret name/);
    expect(() => secrets.set('jitgate:keycheck', 'x')).toThrow(/invalid secret name/);
    expect(() => secrets.set('ok', '')).toThrow(/empty/);
    secrets.set('team/prod.db_1', 'x');
    expect(secrets.list().map((s) => s.name)).toEqual(['team/prod.db_1']);
    expect(secrets.has('jitgate:keycheck')).toBe(false);
    expect(secrets.get('jitgate:keycheck')).toBeUndefined();
    expect(secrets.delete('jitgate:keycheck')).toBe(false);
    expect(secrets.delete('team/prod.db_1')).toBe(true);
  });
});

describe('a rotation staged beside the current value', () => {
  it('keeps both until promoted or discarded, and never lists or hands out the staged one by name', () => {
    const secrets = new SecretStore(memory(), { masterKey: KEY });
    secrets.set('db', 'old-password');
    secrets.stage('db', 'new-password');
    expect(secrets.get('db')).toBe('old-password');
    expect(secrets.staged('db')).toBe('new-password');
    expect(secrets.list().map((s) => s.name)).toEqual(['db']);
    expect(secrets.get('jitgate:next/db')).toBeUndefined();
    expect(secrets.has('jitgate:next/db')).toBe(false);
    expect(secrets.delete('jitgate:next/db')).toBe(false);
    secrets.promote('db');
    expect(secrets.get('db')).toBe('new-password');
    expect(secrets.staged('db')).toBeUndefined();
    secrets.stage('db', 'abandoned');
    secrets.discardStaged('db');
    expect(secrets.staged('db')).toBeUndefined();
    expect(secrets.get('db')).toBe('new-password');
    expect(() => secrets.promote('db')).toThrow(CredentialError);
  });
});
