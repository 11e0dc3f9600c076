import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../audit/log.js';
import { ManualClock } from '../core/clock.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite.js';
import { ApiKeyError, ApiKeys } from './api-keys.js';
import { IdentityRepository } from './repository.js';
import { collect } from '../../test/support/collect.js';

const stores: SqliteStore[] = [];
afterEach(() => stores.splice(0).forEach((s) => void s.close()));

async function setup() {
  const store = openSqliteStore(':memory:');
  stores.push(store);
  const clock = new ManualClock();
  const audit = await AuditLog.open(store.sql, () => clock.now());
  return { store, clock, audit, keys: new ApiKeys(new IdentityRepository(store.database), clock, audit) };
}

describe('API keys', () => {
  it('authenticate as a service until they expire; only the hash is stored', async () => {
    const { store, clock, keys } = await setup();
    const { key, row } = await keys.create({ name: 'ci-bot', groups: ['deploy', 'deploy', 'ci'], ttlMs: 3_600_000, createdBy: 'dave' });
    expect(key).toMatch(/^jgk_[A-Za-z0-9_-]{43}$/);
    expect(row).toMatchObject({ name: 'ci-bot', groups: ['ci', 'deploy'], createdBy: 'dave', expiresAt: clock.now() + 3_600_000 });
    expect(JSON.stringify(store.database.prepare('SELECT * FROM identity_api_keys').all())).not.toContain(key.slice(4));
    expect(keys.authenticate(key)?.identity).toEqual({ user: 'apikey:ci-bot', groups: ['ci', 'deploy'], kind: 'service', via: 'apikey' });
    expect(keys.list()[0]?.lastUsedAt).toBe(clock.now());
    await clock.advanceSettled(3_600_000);
    expect(keys.authenticate(key)).toBeUndefined();
  });

  it('revocation is immediate; unknown ids are reported', async () => {
    const { keys } = await setup();
    const { key, row } = await keys.create({ name: 'ci-bot', groups: [], ttlMs: 3_600_000, createdBy: 'dave' });
    expect(await keys.revoke(row.id, 'erin')).toMatchObject({ revokedBy: 'erin' });
    expect(keys.authenticate(key)).toBeUndefined();
    await expect(keys.revoke('key_nope', 'erin')).rejects.toThrow(ApiKeyError);
  });

  it('validates name, groups, ttl; one active key per name', async () => {
    const { keys } = await setup();
    const base = { groups: [], ttlMs: 3_600_000, createdBy: 'dave' };
    await expect(keys.create({ ...base, name: 'bad name' })).rejects.toThrow('name: 1-63 letters');
    await expect(keys.create({ ...base, name: 'ok', groups: ['a,b'] })).rejects.toThrow('is not a group name');
    await expect(keys.create({ ...base, name: 'ok', ttlMs: 1000 })).rejects.toThrow('ttl: must be between 1m and 366d');
    await keys.create({ ...base, name: 'ok' });
    await expect(keys.create({ ...base, name: 'ok' })).rejects.toThrow('an active API key is already named "ok"');
  });

  it('refuses lookalikes without touching the store', async () => {
    const { keys } = await setup();
    for (const k of ['', 'jgk_', 'jgk_short', 'jgs_' + 'a'.repeat(43), 'jgk_' + 'a'.repeat(43)])
      expect(keys.authenticate(k)).toBeUndefined();
  });

  it('a key made by a key neither outlives nor outranks it, and dies with it', async () => {
    const { keys, clock, audit } = await setup();
    const made = await keys.create({ name: 'ops', groups: ['admins', 'deploy'], ttlMs: 3_600_000, createdBy: 'dave' });
    const ops = keys.authenticate(made.key)!.identity;
    await expect(keys.create({ name: 'long', groups: ['admins'], ttlMs: 90 * 86_400_000, createdBy: ops })).rejects.toThrow(
      'a key cannot create a key that outlives it',
    );
    await expect(keys.create({ name: 'wide', groups: ['admins', 'root'], ttlMs: 60_000, createdBy: ops })).rejects.toThrow(
      'with groups it does not have itself: root',
    );
    const child = await keys.create({ name: 'child', groups: ['deploy'], ttlMs: 1_800_000, createdBy: ops });
    expect(child.row).toMatchObject({ createdBy: 'apikey:ops', createdByKey: made.row.id });
    const grandchild = await keys.create({
      name: 'grandchild',
      groups: [],
      ttlMs: 600_000,
      createdBy: keys.authenticate(child.key)!.identity,
    });
    await clock.advanceSettled(1000);
    const revoked = await keys.revoke(made.row.id, 'dave');
    expect(revoked.alsoRevoked).toEqual([child.row.id, grandchild.row.id]);
    for (const k of [made.key, child.key, grandchild.key]) expect(keys.authenticate(k)).toBeUndefined();
    expect((await collect(audit.entries())).map((e) => `${e.type} ${e.subject} by ${e.actor}`)).toEqual([
      `apikey.created ${made.row.id} by dave`,
      `apikey.created ${child.row.id} by apikey:ops`,
      `apikey.created ${grandchild.row.id} by apikey:child`,
      `apikey.revoked ${made.row.id} by dave`,
      `apikey.revoked ${child.row.id} by dave`,
      `apikey.revoked ${grandchild.row.id} by dave`,
    ]);
  });

  it('a key whose maker is gone does not authenticate, even if the cascade missed it', async () => {
    const { keys, store } = await setup();
    const made = await keys.create({ name: 'ops', groups: [], ttlMs: 3_600_000, createdBy: 'dave' });
    const child = await keys.create({ name: 'child', groups: [], ttlMs: 600_000, createdBy: keys.authenticate(made.key)!.identity });
    // Revoke only the maker, behind the cascade's back.
    new IdentityRepository(store.database).revokeApiKey(made.row.id, 1, 'someone');
    expect(keys.authenticate(child.key)).toBeUndefined();
  });

  it('a revoked key creates nothing', async () => {
    const { keys } = await setup();
    const made = await keys.create({ name: 'ops', groups: [], ttlMs: 3_600_000, createdBy: 'dave' });
    const ops = keys.authenticate(made.key)!.identity;
    await keys.revoke(made.row.id, 'dave');
    await expect(keys.create({ name: 'late', groups: [], ttlMs: 60_000, createdBy: ops })).rejects.toThrow(ApiKeyError);
  });
});
