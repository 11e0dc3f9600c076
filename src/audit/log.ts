/**
 * The audit log: an append-only, hash-chained table of security-relevant events in the gateway's
 * database. Appends run in an IMMEDIATE transaction that reads the head and writes the next entry,
 * so the gateway and admin commands on the same host (legal holds) can append concurrently without
 * forking the chain. Triggers refuse UPDATE and DELETE; whoever drops them to tamper still has to
 * forge every hash after the change, and cannot forge the signed checkpoints (./signing.ts).
 *
 * Entry types written today:
 *   login.failed, session.refused, session.started, session.ended (with the recording's digest),
 *   session.killed, statement.denied, statement.held, statement.decided, recording.unavailable,
 *   recording.failed, recording.deleted, recording.upload_failed, recording.uploaded (object
 *   storage: an upload's first failure, and its success after failures), legal_hold.set, legal_hold.released, access.* (requests,
 *   approvals, denials, grants, revocations, break-glass), audit.checkpoint.
 * Other parts append through `append()`.
 */
import type Database from 'better-sqlite3';
import { migrateModule, type Migration } from '../store/sqlite.js';
import { AUDIT_GENESIS, CHECKPOINT_TYPE, entryHash, type AuditEntry, type CheckpointData } from './chain.js';
import { checkpointMessage, type AuditSigner } from './signing.js';

export const AUDIT_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'audit log',
    sql: `
      CREATE TABLE audit_log (
        seq     INTEGER PRIMARY KEY,
        at      INTEGER NOT NULL,
        type    TEXT NOT NULL,
        actor   TEXT NOT NULL,
        subject TEXT,
        data    TEXT NOT NULL,
        prev    TEXT NOT NULL,
        hash    TEXT NOT NULL
      ) STRICT;
      CREATE INDEX audit_log_at ON audit_log (at);
      CREATE INDEX audit_log_subject ON audit_log (subject) WHERE subject IS NOT NULL;
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    `,
  },
];

export interface AuditEventInput {
  type: string;
  actor: string;
  subject?: string | null;
  data?: Record<string, unknown>;
}

/** What other parts need to write the audit trail (the access workflow, recording, the CLI). */
export interface AuditAppender {
  append(event: AuditEventInput): AuditEntry;
}

type Row = { seq: number; at: number; type: string; actor: string; subject: string | null; data: string; prev: string; hash: string };

export class AuditLog implements AuditAppender {
  private readonly stmts;
  private readonly appendTx: (event: AuditEventInput, at: number) => AuditEntry;

  constructor(
    private readonly db: Database.Database,
    private readonly now: () => number = Date.now,
  ) {
    migrateModule(db, 'audit', AUDIT_MIGRATIONS);
    this.stmts = {
      head: db.prepare(`SELECT seq, hash, type FROM audit_log ORDER BY seq DESC LIMIT 1`),
      insert: db.prepare(
        `INSERT INTO audit_log (seq, at, type, actor, subject, data, prev, hash) VALUES (@seq, @at, @type, @actor, @subject, @data, @prev, @hash)`,
      ),
      fromSeq: db.prepare(`SELECT * FROM audit_log WHERE seq >= ? ORDER BY seq`),
      fromAt: db.prepare(`SELECT * FROM audit_log WHERE at >= ? ORDER BY seq`),
      bySubject: db.prepare(`SELECT * FROM audit_log WHERE subject = ? ORDER BY seq`),
      lastCheckpoint: db.prepare(`SELECT * FROM audit_log WHERE type = '${CHECKPOINT_TYPE}' ORDER BY seq DESC LIMIT 1`),
      bySeq: db.prepare(`SELECT * FROM audit_log WHERE seq = ?`),
    };
    const tx = db.transaction((event: AuditEventInput, at: number): AuditEntry => {
      const head = this.stmts.head.get() as { seq: number; hash: string } | undefined;
      const base = {
        seq: (head?.seq ?? 0) + 1,
        at,
        type: event.type,
        actor: event.actor,
        subject: event.subject ?? null,
        data: jsonSafe(event.data ?? {}),
      };
      const prev = head?.hash ?? AUDIT_GENESIS;
      const entry: AuditEntry = { ...base, prev, hash: entryHash(prev, base) };
      this.stmts.insert.run({ ...entry, data: JSON.stringify(entry.data) });
      return entry;
    });
    // IMMEDIATE: take the write lock before reading the head, so two processes cannot both extend it.
    this.appendTx = (event, at) => (db.inTransaction ? tx(event, at) : tx.immediate(event, at));
  }

  /** Told of every entry appended through this instance (the checkpoint job counts them). */
  private readonly appended = new Set<(entry: AuditEntry) => void>();

  /** Appends one entry (synchronously, durable when it returns); throws when the store cannot write. */
  append(event: AuditEventInput): AuditEntry {
    const entry = this.appendTx(event, this.now());
    for (const fn of this.appended) fn(entry);
    return entry;
  }

  /** Calls `fn` after every append through this instance; returns the unsubscribe function. */
  onAppend(fn: (entry: AuditEntry) => void): () => void {
    this.appended.add(fn);
    return () => this.appended.delete(fn);
  }

  /** One entry by its seq. */
  entryAt(seq: number): AuditEntry | undefined {
    const r = this.stmts.bySeq.get(seq) as Row | undefined;
    return r && toEntry(r);
  }

  /** Entries from `seq` (default: all), or from time `at`, in order; streams (no full load). */
  *entries(from: { seq?: number; at?: number } = {}): IterableIterator<AuditEntry> {
    const rows = from.at !== undefined ? this.stmts.fromAt.iterate(from.at) : this.stmts.fromSeq.iterate(from.seq ?? 0);
    for (const r of rows) yield toEntry(r as Row);
  }

  /**
   * Entries of `type` since `at` counted by a field of their data: the first of `paths` (JSON paths
   * such as `$.rule`) that is set, else null. Reads the newest `limit` entries at most (the `at`
   * index), so a busy week costs a bounded scan; `actor` narrows to one actor.
   */
  countBy(o: {
    type: string;
    since: number;
    paths: readonly string[];
    actor?: string;
    limit?: number;
  }): Array<{ key: string | null; count: number }> {
    const key = o.paths.length === 0 ? 'NULL' : `coalesce(${o.paths.map(() => 'json_extract(data, ?)').join(', ')}, NULL)`;
    const sql = `SELECT ${key} AS key, count(*) AS count FROM (
        SELECT data FROM audit_log WHERE at >= ? AND type = ? AND (? IS NULL OR actor = ?) ORDER BY at DESC LIMIT ?
      ) GROUP BY key ORDER BY count DESC, key LIMIT 50`;
    const actor = o.actor ?? null;
    return this.db.prepare(sql).all(...o.paths, o.since, o.type, actor, actor, o.limit ?? 100_000) as Array<{
      key: string | null;
      count: number;
    }>;
  }

  about(subject: string): AuditEntry[] {
    return (this.stmts.bySubject.all(subject) as Row[]).map(toEntry);
  }

  head(): { seq: number; hash: string } | undefined {
    return this.stmts.head.get() as { seq: number; hash: string } | undefined;
  }

  /**
   * Signs the chain's head with a checkpoint entry, unless the head already is one. Returns the
   * checkpoint, or undefined when there was nothing new to sign.
   */
  checkpoint(signer: AuditSigner, actor = 'gateway'): AuditEntry | undefined {
    const run = this.db.transaction((): AuditEntry | undefined => {
      const head = this.stmts.head.get() as { seq: number; hash: string; type: string } | undefined;
      if (!head || head.type === CHECKPOINT_TYPE) return undefined;
      const data: CheckpointData = {
        upTo: head.seq,
        head: head.hash,
        keyId: signer.keyId,
        publicKey: signer.publicKey,
        signature: signer.sign(checkpointMessage(head.seq, head.hash)),
      };
      return this.appendTx({ type: CHECKPOINT_TYPE, actor, data: data as unknown as Record<string, unknown> }, this.now());
    });
    return run.immediate();
  }

  lastCheckpoint(): AuditEntry | undefined {
    const r = this.stmts.lastCheckpoint.get() as Row | undefined;
    return r && toEntry(r);
  }
}

function toEntry(r: Row): AuditEntry {
  return {
    seq: r.seq,
    at: r.at,
    type: r.type,
    actor: r.actor,
    subject: r.subject,
    data: JSON.parse(r.data) as Record<string, unknown>,
    prev: r.prev,
    hash: r.hash,
  };
}

/**
 * The data as it will read back from JSON (undefined fields dropped, dates as strings), so the
 * hash computed now is the hash a verifier computes from the stored text.
 */
function jsonSafe(data: Record<string, unknown>): Record<string, unknown> {
  return JSON.parse(JSON.stringify(data)) as Record<string, unknown>;
}
