import { afterEach, describe, expect, it } from 'vitest';
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
  return { store, clock, keys: new ApiKeys(new IdentityRepository(store.database), clock) };
}

describe('API keys', () => {
  it('authenticate as a service until they expire; only the hash is stored', () => {
    const { store, clock, keys } = setup();
    const { key, row } = keys.create({ name: 'ci-bot', groups: ['deploy', 'deploy', 'ci'], ttlMs: 3_600_000, createdBy: 'dave' });
    expect(key).toMatch(/^jgk_[A-Za-z0-9_-]{43}$/);
    expect(row).toMatchObject({ name: 'ci-bot', groups: ['ci', 'deploy'], createdBy: 'dave', expiresAt: clock.now() + 3_600_000 });
    expect(JSON.stringify(store.database.prepare('SELECT * FROM identity_api_keys').all())).not.toContain(key.slice(4));
    expect(keys.authenticate(key)?.identity).toEqual({ user: 'ci-bot', groups: ['ci', 'deploy'], kind: 'service', via: 'apikey' });
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
    for (const k of ['', 'jgk_', 'jgk_short', 'jgs_' + 'a'.repeat(43), 'jgk_' + 'a'.repeat(43)]) expect(keys.authenticate(k)).toBeUndefined();
  });
});
