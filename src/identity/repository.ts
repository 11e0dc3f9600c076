/**
 * The identity module's tables in the gateway's SQLite store, with their own migrations
 * (migrateModule 'identity'). Everything else in src/identity goes through this class, so SQL lives
 * in one place. Secrets never reach these tables: tokens and keys are stored as SHA-256 hashes, and
 * an IdP refresh token only sealed under a key derived from the gateway refresh token (./seal.ts).
 *
 *   identity_logins          a login in progress (PKCE or device flow) until it completes or expires
 *   identity_families        one completed login: who, with which groups, until when; sessions and
 *                            refresh tokens belong to it, and revoking it ends them all
 *   identity_sessions        session tokens (jgs_) by hash
 *   identity_refresh_tokens  refresh tokens (jgr_) by hash; a used one stays until the family
 *                            expires, so presenting it again is recognised as reuse
 *   identity_api_keys        API keys (jgk_) by hash; created_by_key: the key that made it, if a key did
 */
import type Database from 'better-sqlite3';
import { SqliteSql } from '../store/sqlite-sql.js';
import { migrateModule, type Migration } from '../store/sqlite.js';

export const IDENTITY_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'identity',
    sql: `
      CREATE TABLE identity_logins (
        id           TEXT PRIMARY KEY,
        issuer       TEXT NOT NULL,
        flow         TEXT NOT NULL,
        redirect_uri TEXT,
        nonce        TEXT NOT NULL,
        device_code  TEXT,
        interval_ms  INTEGER,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        used_at      INTEGER
      ) STRICT;
      CREATE INDEX identity_logins_expiry ON identity_logins (expires_at);

      CREATE TABLE identity_families (
        id            TEXT PRIMARY KEY,
        issuer        TEXT NOT NULL,
        subject       TEXT NOT NULL,
        user          TEXT NOT NULL,
        groups        TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL,
        refreshed_at  INTEGER NOT NULL,
        revoked_at    INTEGER,
        revoke_reason TEXT,
        upstream      BLOB
      ) STRICT;
      CREATE INDEX identity_families_user ON identity_families (user);

      CREATE TABLE identity_sessions (
        token_hash BLOB PRIMARY KEY,
        id         TEXT NOT NULL UNIQUE,
        family_id  TEXT NOT NULL REFERENCES identity_families (id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER
      ) STRICT;
      CREATE INDEX identity_sessions_family ON identity_sessions (family_id);

      CREATE TABLE identity_refresh_tokens (
        token_hash BLOB PRIMARY KEY,
        family_id  TEXT NOT NULL REFERENCES identity_families (id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at    INTEGER
      ) STRICT;
      CREATE INDEX identity_refresh_family ON identity_refresh_tokens (family_id);

      CREATE TABLE identity_api_keys (
        id           TEXT PRIMARY KEY,
        token_hash   BLOB NOT NULL UNIQUE,
        name         TEXT NOT NULL,
        groups       TEXT NOT NULL,
        created_by   TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        revoked_at   INTEGER,
        revoked_by   TEXT,
        last_used_at INTEGER
      ) STRICT;
    `,
  },
  {
    version: 2,
    name: 'API keys made by keys',
    sql: `
      ALTER TABLE identity_api_keys ADD COLUMN created_by_key TEXT;
      CREATE INDEX identity_api_keys_creator ON identity_api_keys (created_by_key) WHERE created_by_key IS NOT NULL;
    `,
  },
];

export interface LoginRow {
  id: string;
  issuer: string;
  flow: 'pkce' | 'device';
  redirectUri: string | null;
  nonce: string;
  deviceCode: string | null;
  intervalMs: number | null;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
}

export interface FamilyRow {
  id: string;
  issuer: string;
  subject: string;
  user: string;
  groups: string[];
  createdAt: number;
  expiresAt: number;
  refreshedAt: number;
  revokedAt: number | null;
  revokeReason: string | null;
  upstream: Buffer | null;
}

export interface SessionRow {
  id: string;
  familyId: string;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
}

export interface RefreshRow {
  familyId: string;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
}

export interface ApiKeyRow {
  id: string;
  name: string;
  groups: string[];
  createdBy: string;
  /** The API key that created this one (null: a person did); it dies with that key. */
  createdByKey: string | null;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
  revokedBy: string | null;
  lastUsedAt: number | null;
}

type Row = Record<string, unknown>;

export class IdentityRepository {
  private readonly s;

  constructor(private readonly db: Database.Database) {
    migrateModule(db, 'identity', IDENTITY_MIGRATIONS);
    this.s = {
      insertLogin: db.prepare(
        `INSERT INTO identity_logins (id, issuer, flow, redirect_uri, nonce, device_code, interval_ms, created_at, expires_at)
         VALUES (@id, @issuer, @flow, @redirectUri, @nonce, @deviceCode, @intervalMs, @createdAt, @expiresAt)`,
      ),
      getLogin: db.prepare(`SELECT * FROM identity_logins WHERE id = ?`),
      useLogin: db.prepare(`UPDATE identity_logins SET used_at = ? WHERE id = ? AND used_at IS NULL`),
      setLoginInterval: db.prepare(`UPDATE identity_logins SET interval_ms = ? WHERE id = ?`),
      insertFamily: db.prepare(
        `INSERT INTO identity_families (id, issuer, subject, user, groups, created_at, expires_at, refreshed_at, upstream)
         VALUES (@id, @issuer, @subject, @user, @groups, @createdAt, @expiresAt, @createdAt, @upstream)`,
      ),
      getFamily: db.prepare(`SELECT * FROM identity_families WHERE id = ?`),
      lastFamilyOf: db.prepare(`SELECT * FROM identity_families WHERE user = ? ORDER BY refreshed_at DESC, created_at DESC LIMIT 1`),
      updateFamily: db.prepare(
        `UPDATE identity_families SET user = @user, groups = @groups, upstream = @upstream, refreshed_at = @refreshedAt WHERE id = @id`,
      ),
      revokeFamily: db.prepare(
        `UPDATE identity_families SET revoked_at = ?, revoke_reason = ?, upstream = NULL WHERE id = ? AND revoked_at IS NULL`,
      ),
      insertSession: db.prepare(`INSERT INTO identity_sessions (token_hash, id, family_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`),
      sessionByHash: db.prepare(
        `SELECT s.id AS session_id, s.expires_at AS session_expires_at, s.revoked_at AS session_revoked_at, f.*
         FROM identity_sessions s JOIN identity_families f ON f.id = s.family_id WHERE s.token_hash = ?`,
      ),
      revokeSessions: db.prepare(`UPDATE identity_sessions SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL`),
      insertRefresh: db.prepare(`INSERT INTO identity_refresh_tokens (token_hash, family_id, created_at, expires_at) VALUES (?, ?, ?, ?)`),
      refreshByHash: db.prepare(`SELECT * FROM identity_refresh_tokens WHERE token_hash = ?`),
      useRefresh: db.prepare(`UPDATE identity_refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL`),
      unuseRefresh: db.prepare(`UPDATE identity_refresh_tokens SET used_at = NULL WHERE token_hash = ? AND used_at = ?`),
      insertKey: db.prepare(
        `INSERT INTO identity_api_keys (id, token_hash, name, groups, created_by, created_by_key, created_at, expires_at)
         VALUES (@id, @tokenHash, @name, @groups, @createdBy, @createdByKey, @createdAt, @expiresAt)`,
      ),
      keyByHash: db.prepare(`SELECT * FROM identity_api_keys WHERE token_hash = ?`),
      keyById: db.prepare(`SELECT * FROM identity_api_keys WHERE id = ?`),
      listKeys: db.prepare(`SELECT * FROM identity_api_keys ORDER BY created_at DESC, id`),
      activeKeyByName: db.prepare(`SELECT id FROM identity_api_keys WHERE name = ? AND revoked_at IS NULL AND expires_at > ?`).pluck(),
      keysCreatedBy: db.prepare(`SELECT * FROM identity_api_keys WHERE created_by_key = ?`),
      revokeKey: db.prepare(`UPDATE identity_api_keys SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL`),
      touchKey: db.prepare(`UPDATE identity_api_keys SET last_used_at = ? WHERE id = ?`),
      purgeLogins: db.prepare(`DELETE FROM identity_logins WHERE expires_at < ?`),
      pendingLogins: db.prepare(`SELECT count(*) FROM identity_logins WHERE expires_at >= ? AND used_at IS NULL`).pluck(),
      purgeFamilies: db.prepare(`DELETE FROM identity_families WHERE expires_at < ?`),
    };
  }

  /** Run `fn` in one IMMEDIATE transaction (a write lock up front, so check-then-write cannot interleave). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /**
   * As transaction(), for work that also appends to the audit log (async): on this connection's
   * SqlDatabase, so the entry commits with the rows or not at all.
   */
  atomically<T>(work: () => Promise<T>): Promise<T> {
    return SqliteSql.of(this.db).transaction(work);
  }

  insertLogin(row: Omit<LoginRow, 'usedAt'>): void {
    this.s.insertLogin.run({ ...row });
  }

  getLogin(id: string): LoginRow | undefined {
    const r = this.s.getLogin.get(id) as Row | undefined;
    return (
      r && {
        id: r.id as string,
        issuer: r.issuer as string,
        flow: r.flow as LoginRow['flow'],
        redirectUri: r.redirect_uri as string | null,
        nonce: r.nonce as string,
        deviceCode: r.device_code as string | null,
        intervalMs: r.interval_ms as number | null,
        createdAt: r.created_at as number,
        expiresAt: r.expires_at as number,
        usedAt: r.used_at as number | null,
      }
    );
  }

  /** Marks the login used; false when it already was (a code or device grant completes once). */
  useLogin(id: string, at: number): boolean {
    return this.s.useLogin.run(at, id).changes === 1;
  }

  setLoginInterval(id: string, intervalMs: number): void {
    this.s.setLoginInterval.run(intervalMs, id);
  }

  insertFamily(row: Omit<FamilyRow, 'revokedAt' | 'revokeReason' | 'refreshedAt'>): void {
    this.s.insertFamily.run({ ...row, groups: JSON.stringify(row.groups) });
  }

  getFamily(id: string): FamilyRow | undefined {
    const r = this.s.getFamily.get(id) as Row | undefined;
    return r && toFamily(r);
  }

  /** The user's most recent sign-in still on record (families are purged some time after they end). */
  lastFamilyOf(user: string): FamilyRow | undefined {
    const r = this.s.lastFamilyOf.get(user) as Row | undefined;
    return r && toFamily(r);
  }

  updateFamily(id: string, change: { user: string; groups: string[]; upstream: Buffer | null; refreshedAt: number }): void {
    this.s.updateFamily.run({ id, ...change, groups: JSON.stringify(change.groups) });
  }

  /** Ends a login: the family, its sessions; its refresh tokens stop working with it. */
  revokeFamily(id: string, at: number, reason: string): boolean {
    return this.transaction(() => {
      const changed = this.s.revokeFamily.run(at, reason, id).changes === 1;
      this.s.revokeSessions.run(at, id);
      return changed;
    });
  }

  insertSession(tokenHash: Buffer, row: Omit<SessionRow, 'revokedAt'>): void {
    this.s.insertSession.run(tokenHash, row.id, row.familyId, row.createdAt, row.expiresAt);
  }

  sessionByHash(tokenHash: Buffer): { session: SessionRow; family: FamilyRow } | undefined {
    const r = this.s.sessionByHash.get(tokenHash) as Row | undefined;
    if (!r) return undefined;
    return {
      session: {
        id: r.session_id as string,
        familyId: r.id as string,
        createdAt: r.created_at as number,
        expiresAt: r.session_expires_at as number,
        revokedAt: r.session_revoked_at as number | null,
      },
      family: toFamily(r),
    };
  }

  revokeSessions(familyId: string, at: number): void {
    this.s.revokeSessions.run(at, familyId);
  }

  insertRefresh(tokenHash: Buffer, row: Omit<RefreshRow, 'usedAt'>): void {
    this.s.insertRefresh.run(tokenHash, row.familyId, row.createdAt, row.expiresAt);
  }

  refreshByHash(tokenHash: Buffer): RefreshRow | undefined {
    const r = this.s.refreshByHash.get(tokenHash) as Row | undefined;
    return (
      r && {
        familyId: r.family_id as string,
        createdAt: r.created_at as number,
        expiresAt: r.expires_at as number,
        usedAt: r.used_at as number | null,
      }
    );
  }

  /** Claims a refresh token for one exchange; false when another exchange used it first. */
  useRefresh(tokenHash: Buffer, at: number): boolean {
    return this.s.useRefresh.run(at, tokenHash).changes === 1;
  }

  /** Undo useRefresh after a failure that was nobody's fault (the IdP did not answer). */
  unuseRefresh(tokenHash: Buffer, at: number): void {
    this.s.unuseRefresh.run(tokenHash, at);
  }

  insertApiKey(tokenHash: Buffer, row: Omit<ApiKeyRow, 'revokedAt' | 'revokedBy' | 'lastUsedAt'>): void {
    this.s.insertKey.run({ ...row, tokenHash, groups: JSON.stringify(row.groups) });
  }

  apiKeyByHash(tokenHash: Buffer): ApiKeyRow | undefined {
    const r = this.s.keyByHash.get(tokenHash) as Row | undefined;
    return r && toApiKey(r);
  }

  apiKeyById(id: string): ApiKeyRow | undefined {
    const r = this.s.keyById.get(id) as Row | undefined;
    return r && toApiKey(r);
  }

  listApiKeys(): ApiKeyRow[] {
    return (this.s.listKeys.all() as Row[]).map(toApiKey);
  }

  activeApiKeyNamed(name: string, now: number): string | undefined {
    return this.s.activeKeyByName.get(name, now) as string | undefined;
  }

  /** Keys the key `id` created (one level). */
  apiKeysCreatedBy(id: string): ApiKeyRow[] {
    return (this.s.keysCreatedBy.all(id) as Row[]).map(toApiKey);
  }

  revokeApiKey(id: string, at: number, by: string): boolean {
    return this.s.revokeKey.run(at, by, id).changes === 1;
  }

  touchApiKey(id: string, at: number): void {
    this.s.touchKey.run(at, id);
  }

  purgeLogins(before: number): void {
    this.s.purgeLogins.run(before);
  }

  pendingLogins(now: number): number {
    return this.s.pendingLogins.get(now) as number;
  }

  /** Drop logins and families that ended long enough ago to be of no use (their rows cascade). */
  purge(before: number): void {
    this.s.purgeLogins.run(before);
    this.s.purgeFamilies.run(before);
  }
}

function toFamily(r: Row): FamilyRow {
  return {
    id: r.id as string,
    issuer: r.issuer as string,
    subject: r.subject as string,
    user: r.user as string,
    groups: JSON.parse(r.groups as string) as string[],
    createdAt: r.created_at as number,
    expiresAt: r.expires_at as number,
    refreshedAt: r.refreshed_at as number,
    revokedAt: r.revoked_at as number | null,
    revokeReason: r.revoke_reason as string | null,
    upstream: (r.upstream as Buffer | null) ?? null,
  };
}

function toApiKey(r: Row): ApiKeyRow {
  return {
    id: r.id as string,
    name: r.name as string,
    groups: JSON.parse(r.groups as string) as string[],
    createdBy: r.created_by as string,
    createdByKey: (r.created_by_key as string | null) ?? null,
    createdAt: r.created_at as number,
    expiresAt: r.expires_at as number,
    revokedAt: r.revoked_at as number | null,
    revokedBy: r.revoked_by as string | null,
    lastUsedAt: r.last_used_at as number | null,
  };
}
