/**
 * API keys for automation: created by an administrator, shown once (`jgk_...`), stored as a SHA-256
 * hash, valid until they expire or are revoked. A key authenticates as a service identity named by
 * the key's name, with the groups it was created with (via 'apikey').
 *
 * Names share one namespace with people and service accounts in policies and grants, so an active
 * key's name must be unique among active keys; pick names that no person has (e.g. `ci-deploy`).
 */
import type { Clock } from '../core/clock.js';
import { formatDuration } from '../core/duration.js';
import type { Identity } from '../core/types.js';
import { isGroupName } from '../config/identities.js';
import { API_KEY_PREFIX, hashToken, isOpaqueToken, newId, newOpaqueToken } from './opaque-tokens.js';
import type { ApiKeyRow, IdentityRepository } from './repository.js';

export const MAX_API_KEY_TTL_MS = 366 * 86_400_000;
export const DEFAULT_API_KEY_TTL_MS = 90 * 86_400_000;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
/** last_used_at is written at most this often per key (every request would make reads write). */
const TOUCH_EVERY_MS = 60_000;

export class ApiKeyError extends Error {
  constructor(
    readonly code: 'invalid_request' | 'conflict' | 'not_found',
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
  ) {}

  create(input: { name: string; groups: string[]; ttlMs: number; createdBy: string }): CreatedApiKey {
    if (!NAME.test(input.name)) {
      throw new ApiKeyError('invalid_request', 'name: 1-63 letters, digits, _ . or -, starting with a letter or digit');
    }
    const bad = input.groups.find((g) => !isGroupName(g));
    if (bad !== undefined) throw new ApiKeyError('invalid_request', `groups: ${JSON.stringify(bad)} is not a group name (no spaces or commas)`);
    if (!Number.isFinite(input.ttlMs) || input.ttlMs < 60_000 || input.ttlMs > MAX_API_KEY_TTL_MS) {
      throw new ApiKeyError('invalid_request', `ttl: must be between 1m and ${formatDuration(MAX_API_KEY_TTL_MS)}`);
    }
    const now = this.clock.now();
    const key = newOpaqueToken(API_KEY_PREFIX);
    const row: ApiKeyRow = {
      id: newId('key_'),
      name: input.name,
      groups: [...new Set(input.groups)].sort(),
      createdBy: input.createdBy,
      createdAt: now,
      expiresAt: now + Math.floor(input.ttlMs),
      revokedAt: null,
      revokedBy: null,
      lastUsedAt: null,
    };
    this.repo.transaction(() => {
      if (this.repo.activeApiKeyNamed(input.name, now) !== undefined) {
        throw new ApiKeyError('conflict', `an active API key is already named ${JSON.stringify(input.name)}: revoke it first or pick another name`);
      }
      this.repo.insertApiKey(hashToken(key), row);
    });
    return { key, row };
  }

  list(): ApiKeyRow[] {
    return this.repo.listApiKeys();
  }

  revoke(id: string, by: string): ApiKeyRow {
    const row = this.repo.apiKeyById(id);
    if (!row) throw new ApiKeyError('not_found', `no API key with id ${JSON.stringify(id)}`);
    this.repo.revokeApiKey(id, this.clock.now(), by);
    return this.repo.apiKeyById(id)!;
  }

  /** The identity of a valid key; undefined when unknown, expired or revoked. */
  authenticate(key: string): { identity: Identity; row: ApiKeyRow } | undefined {
    if (!isOpaqueToken(key, API_KEY_PREFIX)) return undefined;
    const row = this.repo.apiKeyByHash(hashToken(key));
    const now = this.clock.now();
    if (!row || row.revokedAt !== null || row.expiresAt <= now) return undefined;
    if (row.lastUsedAt === null || now - row.lastUsedAt >= TOUCH_EVERY_MS) this.repo.touchApiKey(row.id, now);
    return { identity: { user: row.name, groups: row.groups, kind: 'service', via: 'apikey' }, row };
  }
}
