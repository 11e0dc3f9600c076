/**
 * The audit log: an append-only, hash-chained table of security-relevant events in the state store
 * (SQLite or a shared PostgreSQL). An append reads the head and writes the next entry in one
 * transaction under one named lock, so every gateway instance and the admin commands append
 * concurrently to one chain, totally ordered, never forked. An append made within another
 * transaction (a grant and its entry) joins it. Triggers refuse UPDATE, DELETE (and on PostgreSQL
 * TRUNCATE); whoever drops them to tamper still has to forge every hash after the change, and
 * cannot forge the signed checkpoints (./signing.ts).
 *
 * Entry types written today:
 *   login.failed, session.refused, session.started, session.ended (with the recording's digest),
 *   session.killed, statement.denied, statement.held, statement.decided, recording.unavailable,
 *   recording.failed, recording.deleted, recording.upload_failed, recording.uploaded (object
 *   storage: an upload's first failure, and its success after failures), legal_hold.set, legal_hold.released, access.* (requests,
 *   approvals, denials, grants, revocations, break-glass), audit.checkpoint.
 * Other parts append through `append()`.
 */
import type { SqlDatabase, SqlMigration } from '../store/sql.js';
import { AUDIT_GENESIS, CHECKPOINT_TYPE, entryHash, type AuditEntry, type CheckpointData } from './chain.js';
import { checkpointMessage, type AuditSigner } from './signing.js';

export const AUDIT_MIGRATIONS: readonly SqlMigration[] = [
  {
    version: 1,
    name: 'audit log',
    sqlite: `
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
    postgres: `
      CREATE TABLE audit_log (
        seq     BIGINT PRIMARY KEY,
        at      BIGINT NOT NULL,
        type    TEXT NOT NULL,
        actor   TEXT NOT NULL,
        subject TEXT,
        data    TEXT NOT NULL,
        prev    TEXT NOT NULL,
        hash    TEXT NOT NULL
      );
      CREATE INDEX audit_log_at ON audit_log (at);
      CREATE INDEX audit_log_subject ON audit_log (subject) WHERE subject IS NOT NULL;
      CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
      CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
      CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
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
  append(event: AuditEventInput): Promise<AuditEntry>;
}

/** The lock every append and checkpoint holds: one chain, whatever instance writes. */
const CHAIN_LOCK = 'jitgate.audit';
/** Entries read per query when streaming the log. */
const PAGE = 500;

type Row = { seq: number; at: number; type: string; actor: string; subject: string | null; data: string; prev: string; hash: string };

export class AuditLog implements AuditAppender {
  /** Told of every entry appended through this instance (the checkpoint job counts them). */
  private readonly appended = new Set<(entry: AuditEntry) => void>();
  /**
   * Appends made outside a transaction take the chain's lock one after another, in the order they
   * were made, so this instance's entries keep the order its events happened in.
   */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly sql: SqlDatabase,
    private readonly now: () => number,
  ) {}

  /** The log on `sql`, its table migrated. */
  static async open(sql: SqlDatabase, now: () => number = Date.now): Promise<AuditLog> {
    await sql.migrate('audit', AUDIT_MIGRATIONS);
    return new AuditLog(sql, now);
  }

  /** Appends one entry, durable when it resolves; rejects when the store cannot write. */
  async append(event: AuditEventInput): Promise<AuditEntry> {
    const write = () => this.sql.transaction(() => this.appendNow(event), { lock: CHAIN_LOCK });
    // Within a transaction (a grant and its entry) it joins that one; queued, it would wait for it.
    const written = this.sql.inTransaction() ? write() : this.enqueue(write);
    const entry = await written;
    for (const fn of this.appended) fn(entry);
    return entry;
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Calls `fn` after every append through this instance; returns the unsubscribe function. */
  onAppend(fn: (entry: AuditEntry) => void): () => void {
    this.appended.add(fn);
    return () => this.appended.delete(fn);
  }

  /** One entry by its seq. */
  async entryAt(seq: number): Promise<AuditEntry | undefined> {
    const r = await this.sql.get<Row>(`SELECT * FROM audit_log WHERE seq = ?`, [seq]);
    return r && toEntry(r);
  }

  /** Entries from `seq` (default: all), or from time `at`, in order; read a page at a time. */
  async *entries(from: { seq?: number; at?: number } = {}): AsyncIterableIterator<AuditEntry> {
    let after = (from.seq ?? 1) - 1;
    if (from.at !== undefined) {
      const first = await this.sql.get<{ seq: number | null }>(`SELECT min(seq) AS seq FROM audit_log WHERE at >= ?`, [from.at]);
      if (first?.seq === null || first?.seq === undefined) return;
      after = first.seq - 1;
    }
    for (;;) {
      const rows = await this.sql.all<Row>(`SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ${PAGE}`, [after]);
      for (const r of rows) yield toEntry(r);
      if (rows.length < PAGE) return;
      after = rows[rows.length - 1]!.seq;
    }
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
  }): Promise<Array<{ key: string | null; count: number }>> {
    // The field as text on both engines (a JSON path is SQL/JSON on PostgreSQL, as on SQLite).
    const field =
      this.sql.dialect === 'sqlite' ? 'json_extract(data, ?)' : `jsonb_path_query_first(data::jsonb, CAST(? AS jsonpath)) #>> '{}'`;
    const key = o.paths.length === 0 ? 'NULL' : `coalesce(${o.paths.map(() => field).join(', ')}, NULL)`;
    const sql = `SELECT key, count(*) AS count FROM (
        SELECT ${key} AS key FROM audit_log WHERE at >= ? AND type = ? ${o.actor !== undefined ? 'AND actor = ?' : ''}
        ORDER BY at DESC LIMIT ?
      ) recent GROUP BY key ORDER BY count DESC, key LIMIT 50`;
    return this.sql.all(sql, [...o.paths, o.since, o.type, ...(o.actor !== undefined ? [o.actor] : []), o.limit ?? 100_000]);
  }

  async about(subject: string): Promise<AuditEntry[]> {
    return (await this.sql.all<Row>(`SELECT * FROM audit_log WHERE subject = ? ORDER BY seq`, [subject])).map(toEntry);
  }

  head(): Promise<{ seq: number; hash: string } | undefined> {
    return this.sql.get(`SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`);
  }

  /**
   * Signs the chain's head with a checkpoint entry, unless the head already is one. Returns the
   * checkpoint, or undefined when there was nothing new to sign.
   */
  async checkpoint(signer: AuditSigner, actor = 'gateway'): Promise<AuditEntry | undefined> {
    const entry = await this.enqueue(() =>
      this.sql.transaction(
        async () => {
          const head = await this.sql.get<{ seq: number; hash: string; type: string }>(
            `SELECT seq, hash, type FROM audit_log ORDER BY seq DESC LIMIT 1`,
          );
          if (!head || head.type === CHECKPOINT_TYPE) return undefined;
          const data: CheckpointData = {
            upTo: head.seq,
            head: head.hash,
            keyId: signer.keyId,
            publicKey: signer.publicKey,
            signature: signer.sign(checkpointMessage(head.seq, head.hash)),
          };
          return this.appendNow({ type: CHECKPOINT_TYPE, actor, data: data as unknown as Record<string, unknown> });
        },
        { lock: CHAIN_LOCK },
      ),
    );
    if (entry) for (const fn of this.appended) fn(entry);
    return entry;
  }

  async lastCheckpoint(): Promise<AuditEntry | undefined> {
    const r = await this.sql.get<Row>(`SELECT * FROM audit_log WHERE type = ? ORDER BY seq DESC LIMIT 1`, [CHECKPOINT_TYPE]);
    return r && toEntry(r);
  }

  /** Reads the head and writes the entry after it; the caller holds the chain's lock. */
  private async appendNow(event: AuditEventInput): Promise<AuditEntry> {
    const head = await this.sql.get<{ seq: number; hash: string }>(`SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`);
    const base = {
      seq: (head?.seq ?? 0) + 1,
      at: this.now(),
      type: event.type,
      actor: event.actor,
      subject: event.subject ?? null,
      data: jsonSafe(event.data ?? {}),
    };
    const prev = head?.hash ?? AUDIT_GENESIS;
    const entry: AuditEntry = { ...base, prev, hash: entryHash(prev, base) };
    await this.sql.run(`INSERT INTO audit_log (seq, at, type, actor, subject, data, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, [
      entry.seq,
      entry.at,
      entry.type,
      entry.actor,
      entry.subject,
      JSON.stringify(entry.data),
      entry.prev,
      entry.hash,
    ]);
    return entry;
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
