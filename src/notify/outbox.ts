/**
 * Webhook deliveries not yet done, kept in the state store so that a restart does not lose them:
 * a delivery is written when it is queued, its attempt count and next attempt time are updated when
 * it waits on backoff, and it is deleted once delivered or failed for good. At start the notifier
 * sends again what an earlier process left (WebhookNotifier.resume).
 *
 * The delivery id (header x-jitgate-delivery) stays the same across restarts, so a receiver can drop
 * the rare duplicate of a delivery that was answered just as the gateway stopped.
 */
import type Database from 'better-sqlite3';
import { migrateModule, type Migration } from '../store/sqlite.js';

export const NOTIFY_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'webhook deliveries waiting to be sent',
    sql: `
      CREATE TABLE webhook_deliveries (
        id         TEXT PRIMARY KEY,
        webhook    TEXT NOT NULL,
        type       TEXT NOT NULL,
        body       TEXT NOT NULL,
        attempt    INTEGER NOT NULL,
        next_at    INTEGER NOT NULL,
        created_at INTEGER NOT NULL
      ) STRICT;
    `,
  },
];

export interface StoredDelivery {
  id: string;
  /** The webhook's configured name. */
  webhook: string;
  type: string;
  body: string;
  /** The attempt to make next (1 = not tried yet). */
  attempt: number;
  /** When to make it (epoch ms). */
  nextAt: number;
  createdAt: number;
}

/** Where the notifier keeps deliveries; the SQLite one below, or none (deliveries live in memory only). */
export interface DeliveryOutbox {
  save(d: StoredDelivery): void;
  reschedule(id: string, attempt: number, nextAt: number): void;
  remove(id: string): void;
  pending(): StoredDelivery[];
}

export class SqliteDeliveryOutbox implements DeliveryOutbox {
  private readonly stmts;

  constructor(db: Database.Database) {
    migrateModule(db, 'notify', NOTIFY_MIGRATIONS);
    this.stmts = {
      save: db.prepare(
        `INSERT OR REPLACE INTO webhook_deliveries (id, webhook, type, body, attempt, next_at, created_at)
         VALUES (@id, @webhook, @type, @body, @attempt, @nextAt, @createdAt)`,
      ),
      reschedule: db.prepare(`UPDATE webhook_deliveries SET attempt = ?, next_at = ? WHERE id = ?`),
      remove: db.prepare(`DELETE FROM webhook_deliveries WHERE id = ?`),
      pending: db.prepare(
        `SELECT id, webhook, type, body, attempt, next_at AS nextAt, created_at AS createdAt FROM webhook_deliveries ORDER BY created_at, rowid`,
      ),
    };
  }

  save(d: StoredDelivery): void {
    this.stmts.save.run(d);
  }

  reschedule(id: string, attempt: number, nextAt: number): void {
    this.stmts.reschedule.run(attempt, nextAt, id);
  }

  remove(id: string): void {
    this.stmts.remove.run(id);
  }

  pending(): StoredDelivery[] {
    return this.stmts.pending.all() as StoredDelivery[];
  }
}
