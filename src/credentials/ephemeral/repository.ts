/**
 * The gateway's record of every per-session role it set out to create, kept in the state store so
 * that roles outlive nothing they should not: after a crash or restart the janitor finds the rows
 * that were never marked dropped and removes their roles.
 *
 * A row is written before CREATE ROLE is sent (an intent), so there is no moment where a role exists
 * on the backend that the store does not know about.
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import { migrateModule, type Migration } from '../../store/sqlite.js';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'ephemeral roles',
    sql: `
      CREATE TABLE ephemeral_roles (
        connection  TEXT NOT NULL,
        name        TEXT NOT NULL,
        session_id  TEXT NOT NULL,
        user        TEXT NOT NULL,
        valid_until INTEGER NOT NULL,
        created_at  INTEGER NOT NULL,
        dropped_at  INTEGER,
        last_error  TEXT,
        PRIMARY KEY (connection, name)
      ) STRICT;
      CREATE INDEX ephemeral_roles_pending ON ephemeral_roles (connection) WHERE dropped_at IS NULL;

      -- One random id per state store, written into every role's comment: a janitor only ever
      -- removes roles its own deployment made, even when two gateways share a database server.
      CREATE TABLE ephemeral_gateway (
        id         TEXT NOT NULL,
        created_at INTEGER NOT NULL
      ) STRICT;
    `,
  },
];

export interface EphemeralRoleRow {
  connection: string;
  name: string;
  sessionId: string;
  user: string;
  validUntil: number;
  createdAt: number;
  droppedAt: number | null;
  /** Why the last attempt to drop it failed, or why it was closed without a drop; null when dropped. */
  lastError: string | null;
}

type Row = Record<string, unknown>;

export class EphemeralRoleRepository {
  private readonly stmts;

  constructor(private readonly db: Database.Database) {
    migrateModule(db, 'credentials', MIGRATIONS);
    this.stmts = {
      insert: db.prepare(
        `INSERT INTO ephemeral_roles (connection, name, session_id, user, valid_until, created_at)
         VALUES (@connection, @name, @sessionId, @user, @validUntil, @createdAt)`,
      ),
      dropped: db.prepare(
        `UPDATE ephemeral_roles SET dropped_at = ?, last_error = ? WHERE connection = ? AND name = ? AND dropped_at IS NULL`,
      ),
      failed: db.prepare(`UPDATE ephemeral_roles SET last_error = ? WHERE connection = ? AND name = ? AND dropped_at IS NULL`),
      pending: db.prepare(`SELECT * FROM ephemeral_roles WHERE connection = ? AND dropped_at IS NULL ORDER BY created_at, name`),
      get: db.prepare(`SELECT * FROM ephemeral_roles WHERE connection = ? AND name = ?`),
      list: db.prepare(`SELECT * FROM ephemeral_roles ORDER BY created_at DESC, name LIMIT ?`),
      gatewayId: db.prepare(`SELECT id FROM ephemeral_gateway LIMIT 1`).pluck(),
      insertGatewayId: db.prepare(`INSERT INTO ephemeral_gateway (id, created_at) VALUES (?, ?)`),
    };
  }

  /** This deployment's id, created on first use (concurrent first uses agree on one). */
  gatewayId(): string {
    return this.db
      .transaction(() => {
        const existing = this.stmts.gatewayId.get() as string | undefined;
        if (existing) return existing;
        const id = randomUUID();
        this.stmts.insertGatewayId.run(id, Date.now());
        return id;
      })
      .immediate();
  }

  /** Records the intent to create a role; throws if the store cannot write (the caller fails closed). */
  recordCreating(row: Omit<EphemeralRoleRow, 'droppedAt' | 'lastError'>): void {
    this.stmts.insert.run({ ...row });
  }

  /**
   * The role is gone, or was never made, or is not ours to drop (`note` says which when it was not
   * dropped by us); either way the janitor has nothing more to do for it.
   */
  markDropped(connection: string, name: string, at: number, note: string | null = null): void {
    this.stmts.dropped.run(at, note, connection, name);
  }

  recordDropFailure(connection: string, name: string, error: string): void {
    this.stmts.failed.run(error.slice(0, 500), connection, name);
  }

  /** Roles of a connection not yet known to be dropped, oldest first. */
  pending(connection: string): EphemeralRoleRow[] {
    return (this.stmts.pending.all(connection) as Row[]).map(toRow);
  }

  get(connection: string, name: string): EphemeralRoleRow | undefined {
    const r = this.stmts.get.get(connection, name) as Row | undefined;
    return r && toRow(r);
  }

  /** Most recent first (diagnostics, tests). */
  list(limit = 100): EphemeralRoleRow[] {
    return (this.stmts.list.all(Math.max(0, Math.floor(limit))) as Row[]).map(toRow);
  }
}

function toRow(r: Row): EphemeralRoleRow {
  return {
    connection: r.connection as string,
    name: r.name as string,
    sessionId: r.session_id as string,
    user: r.user as string,
    validUntil: r.valid_until as number,
    createdAt: r.created_at as number,
    droppedAt: (r.dropped_at as number | null) ?? null,
    lastError: (r.last_error as string | null) ?? null,
  };
}
