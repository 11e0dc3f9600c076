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
  for (const s of stores.splice(0)) void s.close();
});

describe('master key', () => {
  it('accepts hex, base64 and base64url of 32 bytes as the key itself', async () => {
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

  it('refuses a short passphrase and explains a missing key without echoing anything', async () => {
    expect(() => parseMasterKey('hunter2')).toThrow(/too short/);
    expect(() => parseMasterKey('hunter2')).not.toThrow(/hunter2/);
    expect(() => masterKeyFromEnv({})).toThrow(/JITGATE_MASTER_KEY is not set.*openssl rand -base64 32/);
  });
});

describe('SecretStore', () => {
  it('round-trips a value and stores only ciphertext', async () => {
    const store = memory();
    const secrets = new SecretStore(store, { masterKey: KEY, now: () => 42 });
    await secrets.set('prod-db', 'p@ss wörd');
    expect(await secrets.get('prod-db')).toBe('p@ss wörd');
    const row = (await store.getSecret('prod-db'))!;
    expect(row.iv).toHaveLength(12);
    expect(row.tag).toHaveLength(16);
    expect(row.ciphertext.toString('utf8')).not.toContain('p@ss');
    expect(row.updatedAt).toBe(42);
    expect(await secrets.list()).toEqual([{ name: 'prod-db', updatedAt: 42 }]);
    expect(await secrets.get('missing')).toBeUndefined();
  });

  it('uses a fresh IV for every write', async () => {
    const store = memory();
    const secrets = new SecretStore(store, { masterKey: KEY });
    await secrets.set('a', 'same');
    const first = (await store.getSecret('a'))!;
    await secrets.set('a', 'same');
    const second = (await store.getSecret('a'))!;
    expect(first.iv.equals(second.iv)).toBe(false);
    expect(first.ciphertext.equals(second.ciphertext)).toBe(false);
  });

  it('detects a flipped ciphertext byte, a flipped tag and a value moved to another name', async () => {
    const store = memory();
    const secrets = new SecretStore(store, { masterKey: KEY });
    await secrets.set('a', 'value-a');
    await secrets.set('b', 'value-b');
    const row = (await store.getSecret('a'))!;

    const flipped = Buffer.from(row.ciphertext);
    flipped[0] = flipped[0]! ^ 1;
    await store.putSecret({ ...row, ciphertext: flipped });
    await expect(secrets.get('a')).rejects.toThrow(CredentialError);
    await expect(secrets.get('a')).rejects.toThrow(/secret a: its stored value failed the integrity check/);

    const tag = Buffer.from(row.tag);
    tag[15] = tag[15]! ^ 0x80;
    await store.putSecret({ ...row, tag });
    await expect(secrets.get('a')).rejects.toThrow(/integrity check/);

    // the name is authenticated: b's sealed value under a's name does not open
    await store.putSecret({ ...(await store.getSecret('b'))!, name: 'a' });
    await expect(secrets.get('a')).rejects.toThrow(/integrity check/);
    expect(await secrets.get('b')).toBe('value-b');
  });

  it('tells a wrong master key apart, and refuses to mix keys', async () => {
    const store = memory();
    await new SecretStore(store, { masterKey: KEY }).set('a', 'value-a');
    const wrong = new SecretStore(store, { masterKey: randomBytes(32) });
    await expect(wrong.get('a')).rejects.toThrow(/cannot decrypt secret a: JITGATE_MASTER_KEY is not the key/);
    await expect(wrong.set('b', 'x')).rejects.toThrow(/refusing to mix keys/);
    await expect(wrong.verifyMasterKey()).rejects.toThrow(/not the key/);
    expect((await wrong.list()).map((s) => s.name)).toEqual(['a']);
  });

  it('never puts the value into an error', async () => {
    const store = memory();
    const secrets = new SecretStore(store, { masterKey: KEY });
    await secrets.set('a', 'TOPSECRETVALUE');
    await store.putSecret({ ...(await store.getSecret('a'))!, ciphertext: Buffer.from('garbage-garbage') });
    try {
      await secrets.get('a');
      expect.unreachable();
    } catch (err) {
      expect(String((err as Error).message)).not.toContain('TOPSECRET');
    }
  });

  it('reads the key from the environment only when needed', async () => {
    const store = memory();
    const noKey = new SecretStore(store, { env: {} });
    expect(await noKey.list()).toEqual([]);
    await expect(noKey.set('a', 'x')).rejects.toThrow(/JITGATE_MASTER_KEY is not set/);
    const withKey = new SecretStore(store, { env: { JITGATE_MASTER_KEY: KEY.toString('base64') } });
    await withKey.set('a', 'x');
    expect(await new SecretStore(store, { env: { JITGATE_MASTER_KEY: KEY.toString('hex') } }).get('a')).toBe('x');
    await expect(noKey.get('a')).rejects.toThrow(/JITGATE_MASTER_KEY is not set/);
  });

  it('validates names and values and hides the key check record', async () => {
    const store = memory();
    const secrets = new SecretStore(store, { masterKey: KEY });
    await expect(secrets.set('bad name', 'x')).rejects.toThrow(/invalid secret name/);
    await expect(secrets.set('jitgate:keycheck', 'x')).rejects.toThrow(/invalid secret name/);
    await expect(secrets.set('ok', '')).rejects.toThrow(/empty/);
    await secrets.set('team/prod.db_1', 'x');
    expect((await secrets.list()).map((s) => s.name)).toEqual(['team/prod.db_1']);
    expect(await secrets.has('jitgate:keycheck')).toBe(false);
    expect(await secrets.get('jitgate:keycheck')).toBeUndefined();
    expect(await secrets.delete('jitgate:keycheck')).toBe(false);
    expect(await secrets.delete('team/prod.db_1')).toBe(true);
  });
});

describe('a rotation staged beside the current value', () => {
  it('keeps both until promoted or discarded, and never lists or hands out the staged one by name', async () => {
    const secrets = new SecretStore(memory(), { masterKey: KEY });
    await secrets.set('db', 'old-password');
    await secrets.stage('db', 'new-password');
    expect(await secrets.get('db')).toBe('old-password');
    expect(await secrets.staged('db')).toBe('new-password');
    expect((await secrets.list()).map((s) => s.name)).toEqual(['db']);
    expect(await secrets.get('jitgate:next/db')).toBeUndefined();
    expect(await secrets.has('jitgate:next/db')).toBe(false);
    expect(await secrets.delete('jitgate:next/db')).toBe(false);
    await secrets.promote('db');
    expect(await secrets.get('db')).toBe('new-password');
    expect(await secrets.staged('db')).toBeUndefined();
    await secrets.stage('db', 'abandoned');
    await secrets.discardStaged('db');
    expect(await secrets.staged('db')).toBeUndefined();
    expect(await secrets.get('db')).toBe('new-password');
    await expect(secrets.promote('db')).rejects.toThrow(CredentialError);
  });
});
