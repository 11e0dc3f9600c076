/**
 * API keys for automation: created by an administrator, shown once (`jgk_...`), stored as a SHA-256
 * hash, valid until they expire or are revoked. A key authenticates as the service identity
 * `apikey:<name>` (./namespace.ts), with the groups it was created with (via 'apikey'): keys have a
 * namespace of their own, so a key named `alice` is `apikey:alice` and never acts as the person
 * alice. An active key's name is unique among active keys.
 *
 * Keys made by keys: an administrator's key may create keys, but never one that outlives it (expiry
 * no later than its own) or outranks it (groups a subset of its own); and a key made by a key dies
 * with it: revoking a key revokes every key it made, and theirs, in one transaction, and a key whose
 * maker is no longer valid does not authenticate. Creating and revoking keys is audited
 * (`apikey.created`, `apikey.revoked`, one entry per key, the cascade naming its cause).
 */
import type { Clock } from '../core/clock.js';
import { formatDuration } from '../core/duration.js';
import type { Identity } from '../core/types.js';
import type { AuditAppender } from '../audit/log.js';
import { isGroupName } from '../config/identities.js';
import { API_KEY_SUBJECT_PREFIX, apiKeySubject } from './namespace.js';
import { API_KEY_PREFIX, hashToken, isOpaqueToken, newId, newOpaqueToken } from './opaque-tokens.js';
import type { ApiKeyRow, IdentityRepository } from './repository.js';

export const MAX_API_KEY_TTL_MS = 366 * 86_400_000;
export const DEFAULT_API_KEY_TTL_MS = 90 * 86_400_000;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
/** last_used_at is written at most this often per key (every request would make reads write). */
const TOUCH_EVERY_MS = 60_000;

export class ApiKeyError extends Error {
  constructor(
    readonly code: 'invalid_request' | 'conflict' | 'not_found' | 'forbidden',
    message: string,
  ) {
    super(message);
    this.name = 'ApiKeyError';
  }
}

export interface CreatedApiKey {
  /** The secret, returned once and never again. */
  key: string;
  row: ApiKeyRow;
}

export class ApiKeys {
  constructor(
    private readonly repo: IdentityRepository,
    private readonly clock: Clock,
    /** Where apikey.created / apikey.revoked go (absent in unit tests of the key store alone). */
    private readonly audit?: AuditAppender,
  ) {}

  /** The key an identity authenticated with, when it is an API key's (active keys have unique names). */
  keyOf(who: Identity): ApiKeyRow | undefined {
    if (who.via !== 'apikey' || !who.user.startsWith(API_KEY_SUBJECT_PREFIX)) return undefined;
    const id = this.repo.activeApiKeyNamed(who.user.slice(API_KEY_SUBJECT_PREFIX.length), this.clock.now());
    return id === undefined ? undefined : this.repo.apiKeyById(id);
  }

  /**
   * A new key; `createdBy` is who asks (an identity from the API, or a name for local callers). When
   * that is an API key, the new key may neither outlive nor outrank it, and is tied to it.
   */
  async create(input: { name: string; groups: string[]; ttlMs: number; createdBy: Identity | string }): Promise<CreatedApiKey> {
    const creator: Identity =
      typeof input.createdBy === 'string' ? { user: input.createdBy, groups: [], kind: 'human', via: 'local-admin' } : input.createdBy;
    if (!NAME.test(input.name)) {
      throw new ApiKeyError('invalid_request', 'name: 1-63 letters, digits, _ . or -, starting with a letter or digit');
    }
    const bad = input.groups.find((g) => !isGroupName(g));
    if (bad !== undefined)
      throw new ApiKeyError('invalid_request', `groups: ${JSON.stringify(bad)} is not a group name (no spaces or commas)`);
    if (!Number.isFinite(input.ttlMs) || input.ttlMs < 60_000 || input.ttlMs > MAX_API_KEY_TTL_MS) {
      throw new ApiKeyError('invalid_request', `ttl: must be between 1m and ${formatDuration(MAX_API_KEY_TTL_MS)}`);
    }
    const now = this.clock.now();
    const groups = [...new Set(input.groups)].sort();
    const expiresAt = now + Math.floor(input.ttlMs);
    const maker = creator.via === 'apikey' ? this.keyOf(creator) : undefined;
    if (creator.via === 'apikey') {
      // Fail closed: a key we cannot find (revoked meanwhile) makes nothing.
      if (!maker) throw new ApiKeyError('forbidden', 'the API key making this request is no longer valid');
      if (expiresAt > maker.expiresAt) {
        throw new ApiKeyError(
          'forbidden',
          `a key cannot create a key that outlives it: this key expires at ${new Date(maker.expiresAt).toISOString()}; ask for a shorter ttl`,
        );
      }
      const beyond = groups.filter((g) => !maker.groups.includes(g));
      if (beyond.length > 0) {
        throw new ApiKeyError('forbidden', `a key cannot create a key with groups it does not have itself: ${beyond.join(', ')}`);
      }
    }
    const key = newOpaqueToken(API_KEY_PREFIX);
    const row: ApiKeyRow = {
      id: newId('key_'),
      name: input.name,
      groups,
      createdBy: creator.user,
      createdByKey: maker?.id ?? null,
      createdAt: now,
      expiresAt,
      revokedAt: null,
      revokedBy: null,
      lastUsedAt: null,
    };
    await this.repo.atomically(async () => {
      if (this.repo.activeApiKeyNamed(input.name, now) !== undefined) {
        throw new ApiKeyError(
          'conflict',
          `an active API key is already named ${JSON.stringify(input.name)}: revoke it first or pick another name`,
        );
      }
      this.repo.insertApiKey(hashToken(key), row);
      await this.audit?.append({
        type: 'apikey.created',
        actor: creator.user,
        subject: row.id,
        data: {
          name: row.name,
          identity: apiKeySubject(row.name),
          groups: row.groups,
          expiresAt: row.expiresAt,
          createdByKey: row.createdByKey,
        },
      });
    });
    return { key, row };
  }

  list(): ApiKeyRow[] {
    return this.repo.listApiKeys();
  }

  /** Revokes the key and, with it, every key it made (and theirs); returns the key and how many went with it. */
  async revoke(id: string, by: string): Promise<ApiKeyRow & { alsoRevoked: string[] }> {
    const row = this.repo.apiKeyById(id);
    if (!row) throw new ApiKeyError('not_found', `no API key with id ${JSON.stringify(id)}`);
    const now = this.clock.now();
    const alsoRevoked: string[] = [];
    await this.repo.atomically(async () => {
      if (this.repo.revokeApiKey(id, now, by)) {
        await this.audit?.append({
          type: 'apikey.revoked',
          actor: by,
          subject: id,
          data: { name: row.name, identity: apiKeySubject(row.name) },
        });
      }
      // Breadth first over the keys made by revoked keys; bounded by the table (each key once).
      const queue = [id];
      const seen = new Set(queue);
      while (queue.length > 0) {
        for (const child of this.repo.apiKeysCreatedBy(queue.shift()!)) {
          if (seen.has(child.id)) continue;
          seen.add(child.id);
          queue.push(child.id);
          if (this.repo.revokeApiKey(child.id, now, by)) {
            alsoRevoked.push(child.id);
            await this.audit?.append({
              type: 'apikey.revoked',
              actor: by,
              subject: child.id,
              data: {
                name: child.name,
                identity: apiKeySubject(child.name),
                cause: `its maker ${child.createdByKey} was revoked`,
                revokedWith: id,
              },
            });
          }
        }
      }
    });
    return { ...this.repo.apiKeyById(id)!, alsoRevoked };
  }

  /** The identity of a valid key; undefined when unknown, expired or revoked. */
  authenticate(key: string): { identity: Identity; row: ApiKeyRow } | undefined {
    if (!isOpaqueToken(key, API_KEY_PREFIX)) return undefined;
    const row = this.repo.apiKeyByHash(hashToken(key));
    const now = this.clock.now();
    if (!row || row.revokedAt !== null || row.expiresAt <= now) return undefined;
    // A key made by a key lives no longer than its maker (revocation cascades; this is the backstop).
    if (row.createdByKey !== null) {
      const maker = this.repo.apiKeyById(row.createdByKey);
      if (!maker || maker.revokedAt !== null || maker.expiresAt <= now) return undefined;
    }
    if (row.lastUsedAt === null || now - row.lastUsedAt >= TOUCH_EVERY_MS) this.repo.touchApiKey(row.id, now);
    return { identity: { user: apiKeySubject(row.name), groups: row.groups, kind: 'service', via: 'apikey' }, row };
  }
}
