import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../audit/log.js';
import { ManualClock } from '../core/clock.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite.js';
import { ApiKeyError, ApiKeys } from './api-keys.js';
import { IdentityRepository } from './repository.js';

const stores: SqliteStore[] = [];
afterEach(() => stores.splice(0).forEach((s) => s.close()));

function setup() {
  const store = openSqliteStore(':memory:');
  stores.push(store);
  const clock = new ManualClock();
  const audit = new AuditLog(store.database, () => clock.now());
  return { store, clock, audit, keys: new ApiKeys(new IdentityRepository(store.database), clock, audit) };
}

describe('API keys', () => {
  it('authenticate as a service until they expire; only the hash is stored', () => {
    const { store, clock, keys } = setup();
    const { key, row } = keys.create({ name: 'ci-bot', groups: ['deploy', 'deploy', 'ci'], ttlMs: 3_600_000, createdBy: 'dave' });
    expect(key).toMatch(/^jgk_[A-Za-z0-9_-]{43}$/);
    expect(row).toMatchObject({ name: 'ci-bot', groups: ['ci', 'deploy'], createdBy: 'dave', expiresAt: clock.now() + 3_600_000 });
    expect(JSON.stringify(store.database.prepare('SELECT * FROM identity_api_keys').all())).not.toContain(key.slice(4));
    expect(keys.authenticate(key)?.identity).toEqual({ user: 'apikey:ci-bot', groups: ['ci', 'deploy'], kind: 'service', via: 'apikey' });
    expect(keys.list()[0]?.lastUsedAt).toBe(clock.now());
    clock.advance(3_600_000);
    expect(keys.authenticate(key)).toBeUndefined();
  });

  it('revocation is immediate; unknown ids are reported', () => {
    const { keys } = setup();
    const { key, row } = keys.create({ name: 'ci-bot', groups: [], ttlMs: 3_600_000, createdBy: 'dave' });
    expect(keys.revoke(row.id, 'erin')).toMatchObject({ revokedBy: 'erin' });
    expect(keys.authenticate(key)).toBeUndefined();
    expect(() => keys.revoke('key_nope', 'erin')).toThrow(ApiKeyError);
  });

  it('validates name, groups, ttl; one active key per name', () => {
    const { keys } = setup();
    const base = { groups: [], ttlMs: 3_600_000, createdBy: 'dave' };
    expect(() => keys.create({ ...base, name: 'bad name' })).toThrow('name: 1-63 letters');
    expect(() => keys.create({ ...base, name: 'ok', groups: ['a,b'] })).toThrow('is not a group name');
    expect(() => keys.create({ ...base, name: 'ok', ttlMs: 1000 })).toThrow('ttl: must be between 1m and 366d');
    keys.create({ ...base, name: 'ok' });
    expect(() => keys.create({ ...base, name: 'ok' })).toThrow('an active API key is already named "ok"');
  });

  it('refuses lookalikes without touching the store', () => {
    const { keys } = setup();
    for (const k of ['', 'jgk_', 'jgk_short', 'jgs_' + 'a'.repeat(43), 'jgk_' + 'a'.repeat(43)])
      expect(keys.authenticate(k)).toBeUndefined();
  });

  it('a key made by a key neither outlives nor outranks it, and dies with it', () => {
    const { keys, clock, audit } = setup();
    const made = keys.create({ name: 'ops', groups: ['admins', 'deploy'], ttlMs: 3_600_000, createdBy: 'dave' });
    const ops = keys.authenticate(made.key)!.identity;
    expect(() => keys.create({ name: 'long', groups: ['admins'], ttlMs: 90 * 86_400_000, createdBy: ops })).toThrow(
      'a key cannot create a key that outlives it',
    );
    expect(() => keys.create({ name: 'wide', groups: ['admins', 'root'], ttlMs: 60_000, createdBy: ops })).toThrow(
      'with groups it does not have itself: root',
    );
    const child = keys.create({ name: 'child', groups: ['deploy'], ttlMs: 1_800_000, createdBy: ops });
    expect(child.row).toMatchObject({ createdBy: 'apikey:ops', createdByKey: made.row.id });
    const grandchild = keys.create({ name: 'grandchild', groups: [], ttlMs: 600_000, createdBy: keys.authenticate(child.key)!.identity });
    clock.advance(1000);
    const revoked = keys.revoke(made.row.id, 'dave');
    expect(revoked.alsoRevoked).toEqual([child.row.id, grandchild.row.id]);
    for (const k of [made.key, child.key, grandchild.key]) expect(keys.authenticate(k)).toBeUndefined();
    expect([...audit.entries()].map((e) => `${e.type} ${e.subject} by ${e.actor}`)).toEqual([
      `apikey.created ${made.row.id} by dave`,
      `apikey.created ${child.row.id} by apikey:ops`,
      `apikey.created ${grandchild.row.id} by apikey:child`,
      `apikey.revoked ${made.row.id} by dave`,
      `apikey.revoked ${child.row.id} by dave`,
      `apikey.revoked ${grandchild.row.id} by dave`,
    ]);
  });

  it('a key whose maker is gone does not authenticate, even if the cascade missed it', () => {
    const { keys, store } = setup();
    const made = keys.create({ name: 'ops', groups: [], ttlMs: 3_600_000, createdBy: 'dave' });
    const child = keys.create({ name: 'child', groups: [], ttlMs: 600_000, createdBy: keys.authenticate(made.key)!.identity });
    // Revoke only the maker, behind the cascade's back.
    new IdentityRepository(store.database).revokeApiKey(made.row.id, 1, 'someone');
    expect(keys.authenticate(child.key)).toBeUndefined();
  });

  it('a revoked key creates nothing', () => {
    const { keys } = setup();
    const made = keys.create({ name: 'ops', groups: [], ttlMs: 3_600_000, createdBy: 'dave' });
    const ops = keys.authenticate(made.key)!.identity;
    keys.revoke(made.row.id, 'dave');
    expect(() => keys.create({ name: 'late', groups: [], ttlMs: 60_000, createdBy: ops })).toThrow(ApiKeyError);
  });
});
