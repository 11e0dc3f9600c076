import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../store/sqlite.js';
import { CredentialError, parseSecretRef, resolveSecretRef, tryParseSecretRef } from './refs.js';
import { SecretStore } from './secret-store.js';

const dir = mkdtempSync(join(tmpdir(), 'jitgate-refs-'));
const store = openSqliteStore(':memory:');
afterAll(() => {
  void store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('parseSecretRef', () => {
  it('parses the three kinds', async () => {
    expect(parseSecretRef('env:PG_PASS')).toEqual({ kind: 'env', name: 'PG_PASS' });
    expect(parseSecretRef('file:/run/secrets/pg')).toEqual({ kind: 'file', path: '/run/secrets/pg' });
    expect(parseSecretRef('secret:prod/db')).toEqual({ kind: 'secret', name: 'prod/db' });
  });

  it.each(['hunter2', 'env:', 'env:1ABC', 'env:A-B', 'file:', 'secret:', 'secret:has space', 'vault:x', ':x'])(
    'rejects %j without echoing it',
    (ref) => {
      const r = tryParseSecretRef(ref);
      expect(r.ok).toBe(false);
      expect(() => parseSecretRef(ref)).toThrow(CredentialError);
      if (ref.length > 7) expect(() => parseSecretRef(ref)).not.toThrow(ref);
    },
  );
});

describe('resolveSecretRef', () => {
  it('env: reads the variable and names it when missing or empty', async () => {
    await expect(resolveSecretRef('env:PW', { env: { PW: 's3cret' } })).resolves.toBe('s3cret');
    await expect(resolveSecretRef('env:PW', { env: {} })).rejects.toThrow('env:PW: environment variable PW is not set');
    await expect(resolveSecretRef('env:PW', { env: { PW: '' } })).rejects.toThrow('env:PW: environment variable PW is empty');
  });

  it('file: reads the file less one trailing newline', async () => {
    const f = join(dir, 'pw');
    writeFileSync(f, 'from-file\n');
    await expect(resolveSecretRef(`file:${f}`)).resolves.toBe('from-file');
    writeFileSync(f, 'two\n\n');
    await expect(resolveSecretRef(`file:${f}`)).resolves.toBe('two\n');
    writeFileSync(f, '\n');
    await expect(resolveSecretRef(`file:${f}`)).rejects.toThrow(`file:${f}: the file is empty`);
    await expect(resolveSecretRef(`file:${join(dir, 'none')}`)).rejects.toThrow(
      `file:${join(dir, 'none')}: cannot read the file (no such file)`,
    );
  });

  it('secret: reads the encrypted store and names a missing secret', async () => {
    const secretStore = new SecretStore(store, { masterKey: randomBytes(32) });
    await secretStore.set('prod-db', 'from-store');
    await expect(resolveSecretRef('secret:prod-db', { secretStore })).resolves.toBe('from-store');
    await expect(resolveSecretRef('secret:other', { secretStore })).rejects.toThrow(
      'secret:other: no secret named other in the secret store',
    );
    await expect(resolveSecretRef('secret:prod-db')).rejects.toThrow('secret:prod-db: no secret store is available');
  });

  it('a plain value is refused, not used as the secret', async () => {
    await expect(resolveSecretRef('hunter2', { env: {} })).rejects.toThrow(/invalid secret reference/);
  });
});
