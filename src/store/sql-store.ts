/**
 * The core Store (sessions, tokens, auth failures, secrets) on either engine, through SqlDatabase.
 * The schema is ./core-schema.ts; the SQLite file's opening and pragmas are in ./sqlite.ts, the
 * PostgreSQL pool in ./postgres-store.ts.
 */
import type { SessionCounters, SessionEndReason } from '../core/types.js';
import { newSalt } from '../crypto/scram.js';
import type { SqlDatabase, SqlRow } from './sql.js';
import { SqlInstances } from './sql-instances.js';
import {
  RECOVERABLE_END_REASONS,
  type AuthFailureRow,
  type SecretRow,
  type SessionFilter,
  type SessionRow,
  type Store,
  type TokenRow,
} from './store.js';

export class SqlStore implements Store {
  readonly instances: SqlInstances;
  /** Where the rows of each table went in, to break ties between equal times (SQLite's rowid). */
  private readonly insertOrder: string;

  constructor(readonly sql: SqlDatabase) {
    this.instances = new SqlInstances(sql);
    this.insertOrder = sql.dialect === 'sqlite' ? 'rowid' : 'seq';
  }

  async startSession(
    row: Omit<SessionRow, 'endedAt' | 'endReason' | 'bytesFromClient' | 'bytesToClient' | 'statements' | 'instanceId'> & {
      instanceId?: string | null;
    },
  ): Promise<void> {
    await this.sql.run(
      `INSERT INTO sessions (id, "user", connection, protocol, client_address, application_name, started_at, instance_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      [row.id, row.user, row.connection, row.protocol, row.clientAddress, row.applicationName, row.startedAt, row.instanceId ?? null],
    );
  }

  async endSession(id: string, endedAt: number, reason: SessionEndReason, counters: SessionCounters): Promise<void> {
    await this.sql.run(
      `UPDATE sessions SET ended_at = ?, end_reason = ?, bytes_from_client = ?, bytes_to_client = ?, statements = ?
       WHERE id = ? AND ended_at IS NULL`,
      [endedAt, reason, counters.bytesFromClient, counters.bytesToClient, counters.statements, id],
    );
  }

  async reconcileSession(id: string, endedAt: number, reason: SessionEndReason, counters: SessionCounters): Promise<void> {
    await this.sql.run(
      `UPDATE sessions SET ended_at = ?, end_reason = ?, bytes_from_client = ?, bytes_to_client = ?, statements = ?
       WHERE id = ? AND (ended_at IS NULL OR end_reason IN (${RECOVERABLE_END_REASONS.map(() => '?').join(', ')}))`,
      [endedAt, reason, counters.bytesFromClient, counters.bytesToClient, counters.statements, id, ...RECOVERABLE_END_REASONS],
    );
  }

  batch(writes: () => Promise<void>): Promise<void> {
    // Through the shared SqlDatabase, so repositories on it wait for this batch or join it.
    return this.sql.transaction(writes);
  }

  async listSessions(filter: SessionFilter = {}): Promise<SessionRow[]> {
    const where: string[] = [];
    const params: Array<string | number> = [];
    if (filter.user !== undefined) {
      where.push(`"user" = ?`);
      params.push(filter.user);
    }
    if (filter.connection !== undefined) {
      where.push(`connection = ?`);
      params.push(filter.connection);
    }
    if (filter.active !== undefined) where.push(filter.active ? 'ended_at IS NULL' : 'ended_at IS NOT NULL');
    let sql = `SELECT * FROM sessions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY started_at DESC, ${this.insertOrder} DESC`;
    if (filter.limit !== undefined) {
      sql += ' LIMIT ?';
      params.push(Math.max(0, Math.floor(filter.limit)));
    }
    return (await this.sql.all(sql, params)).map(toSessionRow);
  }

  async scramSalt(user: string, connection: string): Promise<Buffer> {
    await this.sql.run(
      `INSERT INTO scram_salts ("user", connection, salt, created_at) VALUES (?, ?, ?, ?) ON CONFLICT ("user", connection) DO NOTHING`,
      [user, connection, newSalt(), Date.now()],
    );
    const row = await this.sql.get<{ salt: Buffer }>(`SELECT salt FROM scram_salts WHERE "user" = ? AND connection = ?`, [
      user,
      connection,
    ]);
    return row!.salt;
  }

  async insertToken(row: TokenRow): Promise<void> {
    await this.sql.run(
      `INSERT INTO tokens (id, "user", connection, salt, iterations, stored_key, server_key, created_at, expires_at, revoked_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        row.id,
        row.user,
        row.connection,
        row.salt,
        row.iterations,
        row.storedKey,
        row.serverKey,
        row.createdAt,
        row.expiresAt,
        row.revokedAt,
      ],
    );
  }

  async activeTokens(user: string, connection: string, now: number): Promise<TokenRow[]> {
    const rows = await this.sql.all(
      `SELECT * FROM tokens WHERE "user" = ? AND connection = ? AND expires_at > ? AND revoked_at IS NULL
       ORDER BY created_at, ${this.insertOrder}`,
      [user, connection, now],
    );
    return rows.map(toTokenRow);
  }

  async revokeToken(id: string, at: number): Promise<boolean> {
    return (await this.sql.run(`UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, [at, id])).changes > 0;
  }

  async recordAuthFailure(row: AuthFailureRow): Promise<void> {
    await this.sql.run(`INSERT INTO auth_failures (at, "user", connection, client_address, reason) VALUES (?, ?, ?, ?, ?)`, [
      row.at,
      row.user,
      row.connection,
      row.clientAddress,
      row.reason,
    ]);
  }

  async listAuthFailures(limit = 100): Promise<AuthFailureRow[]> {
    const rows = await this.sql.all(`SELECT * FROM auth_failures ORDER BY at DESC, id DESC LIMIT ?`, [Math.max(0, Math.floor(limit))]);
    return rows.map((r) => ({
      at: r.at as number,
      user: r.user as string,
      connection: r.connection as string,
      clientAddress: r.client_address as string,
      reason: r.reason as string,
    }));
  }

  async putSecret(row: SecretRow): Promise<void> {
    await this.sql.run(
      `INSERT INTO secrets (name, iv, tag, ciphertext, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET iv = excluded.iv, tag = excluded.tag, ciphertext = excluded.ciphertext,
         updated_at = excluded.updated_at`,
      [row.name, row.iv, row.tag, row.ciphertext, row.updatedAt],
    );
  }

  async addSecret(row: SecretRow): Promise<boolean> {
    const inserted = await this.sql.run(
      `INSERT INTO secrets (name, iv, tag, ciphertext, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
      [row.name, row.iv, row.tag, row.ciphertext, row.updatedAt],
    );
    return inserted.changes > 0;
  }

  async replaceSecret(row: SecretRow, expectedIv: Buffer): Promise<boolean> {
    const updated = await this.sql.run(`UPDATE secrets SET iv = ?, tag = ?, ciphertext = ?, updated_at = ? WHERE name = ? AND iv = ?`, [
      row.iv,
      row.tag,
      row.ciphertext,
      row.updatedAt,
      row.name,
      expectedIv,
    ]);
    return updated.changes > 0;
  }

  async getSecret(name: string): Promise<SecretRow | undefined> {
    const r = await this.sql.get(`SELECT * FROM secrets WHERE name = ?`, [name]);
    if (!r) return undefined;
    return {
      name: r.name as string,
      iv: r.iv as Buffer,
      tag: r.tag as Buffer,
      ciphertext: r.ciphertext as Buffer,
      updatedAt: r.updated_at as number,
    };
  }

  async listSecrets(): Promise<{ name: string; updatedAt: number }[]> {
    const rows = await this.sql.all<{ name: string; updated_at: number }>(`SELECT name, updated_at FROM secrets ORDER BY name`);
    return rows.map((r) => ({ name: r.name, updatedAt: r.updated_at }));
  }

  async deleteSecret(name: string): Promise<boolean> {
    return (await this.sql.run(`DELETE FROM secrets WHERE name = ?`, [name])).changes > 0;
  }

  async ping(): Promise<boolean> {
    try {
      return await this.sql.ping();
    } catch {
      return false;
    }
  }

  close(): Promise<void> {
    return this.sql.close();
  }
}

/** Maps a `sessions` row (also used by modules that join it). */
export function toSessionRow(r: SqlRow): SessionRow {
  return {
    id: r.id as string,
    user: r.user as string,
    connection: r.connection as string,
    protocol: r.protocol as string,
    clientAddress: r.client_address as string,
    applicationName: (r.application_name as string | null) ?? null,
    startedAt: r.started_at as number,
    endedAt: (r.ended_at as number | null) ?? null,
    endReason: (r.end_reason as SessionEndReason | null) ?? null,
    bytesFromClient: r.bytes_from_client as number,
    bytesToClient: r.bytes_to_client as number,
    statements: r.statements as number,
    instanceId: (r.instance_id as string | null | undefined) ?? null,
  };
}

/** Maps a `tokens` row (also used by modules that join it). */
export function toTokenRow(r: SqlRow): TokenRow {
  return {
    id: r.id as string,
    user: r.user as string,
    connection: r.connection as string,
    salt: r.salt as Buffer,
    iterations: r.iterations as number,
    storedKey: r.stored_key as Buffer,
    serverKey: r.server_key as Buffer,
    createdAt: r.created_at as number,
    expiresAt: r.expires_at as number,
    revokedAt: (r.revoked_at as number | null) ?? null,
  };
}
