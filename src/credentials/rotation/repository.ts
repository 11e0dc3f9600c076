/**
 * What the gateway remembers about rotating each connection's backend password, in the state store
 * so a restart neither rotates early nor forgets one that is due: when it last rotated, the last
 * failure, and a short lease so that two gateway instances on one store do not rotate at once.
 */
import type Database from 'better-sqlite3';
import { migrateModule, type Migration } from '../../store/sqlite.js';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'credential rotation',
    sql: `
      CREATE TABLE credential_rotation (
        connection      TEXT PRIMARY KEY,
        last_rotated_at INTEGER,
        last_failure_at INTEGER,
        last_failure    TEXT,
        lease_owner     TEXT,
        lease_until     INTEGER
      ) STRICT;
    `,
  },
];

export interface RotationRow {
  connection: string;
  lastRotatedAt: number | null;
  lastFailureAt: number | null;
  lastFailure: string | null;
}

type Row = Record<string, unknown>;

export class RotationRepository {
  private readonly stmts;

  constructor(db: Database.Database) {
    migrateModule(db, 'credential-rotation', MIGRATIONS);
    this.stmts = {
      get: db.prepare('SELECT * FROM credential_rotation WHERE connection = ?'),
      ensure: db.prepare('INSERT OR IGNORE INTO credential_rotation (connection) VALUES (?)'),
      lease: db.prepare(
        `UPDATE credential_rotation SET lease_owner = @owner, lease_until = @until
          WHERE connection = @connection AND (lease_owner IS NULL OR lease_owner = @owner OR lease_until <= @now)`,
      ),
      release: db.prepare('UPDATE credential_rotation SET lease_owner = NULL, lease_until = NULL WHERE connection = ? AND lease_owner = ?'),
      rotated: db.prepare(
        'UPDATE credential_rotation SET last_rotated_at = ?, last_failure_at = NULL, last_failure = NULL WHERE connection = ?',
      ),
      failed: db.prepare('UPDATE credential_rotation SET last_failure_at = ?, last_failure = ? WHERE connection = ?'),
    };
  }

  get(connection: string): RotationRow {
    const r = this.stmts.get.get(connection) as Row | undefined;
    return {
      connection,
      lastRotatedAt: (r?.last_rotated_at as number | null | undefined) ?? null,
      lastFailureAt: (r?.last_failure_at as number | null | undefined) ?? null,
      lastFailure: (r?.last_failure as string | null | undefined) ?? null,
    };
  }

  /**
   * Takes the connection's rotation lease until `until` unless another holder's lease is still
   * running. Store-level, so it also keeps two gateway instances sharing this store apart.
   */
  tryLease(connection: string, owner: string, now: number, until: number): boolean {
    this.stmts.ensure.run(connection);
    return this.stmts.lease.run({ connection, owner, now, until }).changes === 1;
  }

  releaseLease(connection: string, owner: string): void {
    this.stmts.release.run(connection, owner);
  }

  recordRotated(connection: string, at: number): void {
    this.stmts.ensure.run(connection);
    this.stmts.rotated.run(at, connection);
  }

  recordFailure(connection: string, at: number, reason: string): void {
    this.stmts.ensure.run(connection);
    this.stmts.failed.run(at, reason, connection);
  }
}
