/**
 * Persistence of statement reviews and their approvals (module "reviews" in module_migrations).
 * A review outlives its session as a record: who ran what, where, why it was held, who decided.
 * Decisions that read and then write run inside `transaction()` (IMMEDIATE), like access requests.
 */
import type Database from 'better-sqlite3';
import { migrateModule, type Migration } from '../store/sqlite.js';
import type { Statement } from '../core/types.js';

export type ReviewState = 'pending' | 'approved' | 'denied' | 'expired' | 'withdrawn';
export const REVIEW_STATES: readonly ReviewState[] = ['pending', 'approved', 'denied', 'expired', 'withdrawn'];

export interface ReviewApproval {
  approver: string;
  comment: string | null;
  at: number;
}

export interface Review {
  id: string;
  sessionId: string;
  user: string;
  /** Groups of the session (from its grant) when the statement was held. */
  groups: string[];
  connection: string;
  /** The statement as the client sent it (simple query string, or the text of a Parse). */
  statement: string;
  source: Statement['source'];
  /** The review rule that held it, and a snapshot of its approval rules at the time. */
  rule: string;
  ruleReason: string | null;
  /** Why it was held: stable codes (policy/review-rules.ts) and what was found, for people. */
  reasons: string[];
  what: string;
  approverGroups: string[];
  approvalsRequired: number;
  timeoutMs: number;
  state: ReviewState;
  createdAt: number;
  /** When an undecided review times out. */
  expiresAt: number;
  decidedAt: number | null;
  /** Who made it final (the last approver, the denier, the author withdrawing); null for timeouts. */
  decidedBy: string | null;
  /** The decider's comment, or why it ended (timeout, cancelled, session ended). */
  comment: string | null;
  /** Codes of how it ended: approved, denied_by_approver, review_timeout, cancelled_by_client, session_ended... */
  outcome: string[];
  approvals: ReviewApproval[];
}

export const REVIEW_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'statement reviews and approvals',
    sql: `
      CREATE TABLE statement_reviews (
        id                 TEXT PRIMARY KEY,
        session_id         TEXT NOT NULL,
        user               TEXT NOT NULL,
        groups             TEXT NOT NULL,
        connection         TEXT NOT NULL,
        statement          TEXT NOT NULL,
        source             TEXT NOT NULL,
        rule               TEXT NOT NULL,
        rule_reason        TEXT,
        reasons            TEXT NOT NULL,
        what               TEXT NOT NULL,
        approver_groups    TEXT NOT NULL,
        approvals_required INTEGER NOT NULL,
        timeout_ms         INTEGER NOT NULL,
        state              TEXT NOT NULL,
        created_at         INTEGER NOT NULL,
        expires_at         INTEGER NOT NULL,
        decided_at         INTEGER,
        decided_by         TEXT,
        comment            TEXT,
        outcome            TEXT NOT NULL DEFAULT '[]'
      ) STRICT;
      CREATE INDEX statement_reviews_state ON statement_reviews (state, created_at DESC);
      CREATE INDEX statement_reviews_session ON statement_reviews (session_id);

      CREATE TABLE statement_review_approvals (
        review_id TEXT NOT NULL REFERENCES statement_reviews (id),
        approver  TEXT NOT NULL,
        comment   TEXT,
        at        INTEGER NOT NULL,
        PRIMARY KEY (review_id, approver)
      ) STRICT;
    `,
  },
];

type Row = Record<string, unknown>;

/** An id or a unique prefix of one (at least 4 characters) as people type them. */
const ID_PREFIX = /^[0-9a-f-]{4,36}$/i;

export class AmbiguousReviewIdError extends Error {
  constructor(prefix: string) {
    super(`review id "${prefix}" is ambiguous; give more characters`);
    this.name = 'AmbiguousReviewIdError';
  }
}

export interface ReviewFilter {
  state?: ReviewState;
  connection?: string;
  user?: string;
  sessionId?: string;
  limit?: number;
}

export class ReviewRepository {
  private readonly stmts;

  constructor(private readonly db: Database.Database) {
    migrateModule(db, 'reviews', REVIEW_MIGRATIONS);
    this.stmts = {
      insert: db.prepare(
        `INSERT INTO statement_reviews (id, session_id, user, groups, connection, statement, source, rule, rule_reason, reasons,
           what, approver_groups, approvals_required, timeout_ms, state, created_at, expires_at)
         VALUES (@id, @sessionId, @user, @groups, @connection, @statement, @source, @rule, @ruleReason, @reasons,
           @what, @approverGroups, @approvalsRequired, @timeoutMs, 'pending', @createdAt, @expiresAt)`,
      ),
      get: db.prepare(`SELECT * FROM statement_reviews WHERE id = ?`),
      pendingByConnection: db.prepare(
        `SELECT connection, count(*) AS count FROM statement_reviews WHERE state = 'pending' GROUP BY connection ORDER BY connection`,
      ),
      // Every state named, so the (state, created_at) index serves the time range.
      heldByRule: db.prepare(
        `SELECT rule, count(*) AS count FROM statement_reviews
         WHERE state IN ('pending', 'approved', 'denied', 'expired', 'withdrawn') AND created_at >= @since
           AND (@user IS NULL OR user = @user)
         GROUP BY rule ORDER BY count DESC, rule LIMIT 50`,
      ),
      decisionWaits: db.prepare(
        `SELECT rule, decided_at - created_at AS waitedMs FROM statement_reviews
         WHERE state = 'approved' AND created_at >= @since AND decided_at IS NOT NULL AND (@user IS NULL OR user = @user)
         ORDER BY created_at DESC LIMIT @limit`,
      ),
      setApprovers: db.prepare(`UPDATE statement_reviews SET approver_groups = ? WHERE id = ? AND state = 'pending'`),
      idsByPrefix: db.prepare(`SELECT id FROM statement_reviews WHERE id LIKE ? ORDER BY id LIMIT 2`).pluck(),
      list: db.prepare(
        `SELECT * FROM statement_reviews
         WHERE (@state IS NULL OR state = @state) AND (@connection IS NULL OR connection = @connection)
           AND (@user IS NULL OR user = @user) AND (@sessionId IS NULL OR session_id = @sessionId)
         ORDER BY created_at DESC, rowid DESC LIMIT @limit`,
      ),
      decide: db.prepare(
        `UPDATE statement_reviews SET state = @state, decided_at = @decidedAt, decided_by = @decidedBy, comment = @comment,
           outcome = @outcome
         WHERE id = @id AND state = 'pending'`,
      ),
      insertApproval: db.prepare(
        `INSERT INTO statement_review_approvals (review_id, approver, comment, at) VALUES (@reviewId, @approver, @comment, @at)`,
      ),
      approvals: db.prepare(`SELECT approver, comment, at FROM statement_review_approvals WHERE review_id = ? ORDER BY at, rowid`),
    };
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  insert(r: Omit<Review, 'state' | 'decidedAt' | 'decidedBy' | 'comment' | 'outcome' | 'approvals'>): void {
    this.stmts.insert.run({
      ...r,
      groups: JSON.stringify(r.groups),
      reasons: JSON.stringify(r.reasons),
      approverGroups: JSON.stringify(r.approverGroups),
    });
  }

  /** Widen who may approve a pending review (escalation); false when it is no longer pending. */
  setApprovers(id: string, groups: readonly string[]): boolean {
    return this.stmts.setApprovers.run(JSON.stringify([...groups]), id).changes === 1;
  }

  /** Statements held now, per connection (the metrics' gauge). */
  pendingByConnection(): Array<{ connection: string; count: number }> {
    return this.stmts.pendingByConnection.all() as Array<{ connection: string; count: number }>;
  }

  /** Statements held since `since`, per review rule (at most 50 rules); `user` narrows to one author. */
  heldByRule(since: number, user?: string): Array<{ rule: string; count: number }> {
    return this.stmts.heldByRule.all({ since, user: user ?? null }) as Array<{ rule: string; count: number }>;
  }

  /** How long approvers took to release the statements held since `since`, newest first, at most `limit`. */
  decisionWaits(since: number, o: { user?: string; limit?: number } = {}): Array<{ rule: string; waitedMs: number }> {
    return this.stmts.decisionWaits.all({ since, user: o.user ?? null, limit: o.limit ?? 5000 }) as Array<{
      rule: string;
      waitedMs: number;
    }>;
  }

  get(id: string): Review | undefined {
    const row = this.stmts.get.get(id) as Row | undefined;
    return row && this.toReview(row);
  }

  /** By id or unique prefix; throws AmbiguousReviewIdError when a prefix names several. */
  find(idOrPrefix: string): Review | undefined {
    if (!ID_PREFIX.test(idOrPrefix)) return undefined;
    const ids = this.stmts.idsByPrefix.all(`${idOrPrefix.toLowerCase()}%`) as string[];
    if (ids.length > 1 && !ids.includes(idOrPrefix.toLowerCase())) throw new AmbiguousReviewIdError(idOrPrefix);
    return ids[0] === undefined ? undefined : this.get(ids[0]);
  }

  list(filter: ReviewFilter = {}): Review[] {
    const rows = this.stmts.list.all({
      state: filter.state ?? null,
      connection: filter.connection ?? null,
      user: filter.user ?? null,
      sessionId: filter.sessionId ?? null,
      limit: filter.limit ?? 200,
    }) as Row[];
    return rows.map((r) => this.toReview(r));
  }

  /** Close a pending review; false when it was no longer pending. */
  decide(
    id: string,
    d: { state: Exclude<ReviewState, 'pending'>; decidedAt: number; decidedBy: string | null; comment: string | null; outcome: string[] },
  ): boolean {
    return this.stmts.decide.run({ id, ...d, outcome: JSON.stringify(d.outcome) }).changes === 1;
  }

  insertApproval(reviewId: string, a: ReviewApproval): void {
    this.stmts.insertApproval.run({ reviewId, ...a });
  }

  private toReview(r: Row): Review {
    return {
      id: r.id as string,
      sessionId: r.session_id as string,
      user: r.user as string,
      groups: JSON.parse(r.groups as string) as string[],
      connection: r.connection as string,
      statement: r.statement as string,
      source: r.source as Review['source'],
      rule: r.rule as string,
      ruleReason: (r.rule_reason as string | null) ?? null,
      reasons: JSON.parse(r.reasons as string) as string[],
      what: r.what as string,
      approverGroups: JSON.parse(r.approver_groups as string) as string[],
      approvalsRequired: r.approvals_required as number,
      timeoutMs: r.timeout_ms as number,
      state: r.state as ReviewState,
      createdAt: r.created_at as number,
      expiresAt: r.expires_at as number,
      decidedAt: (r.decided_at as number | null) ?? null,
      decidedBy: (r.decided_by as string | null) ?? null,
      comment: (r.comment as string | null) ?? null,
      outcome: JSON.parse(r.outcome as string) as string[],
      approvals: this.stmts.approvals.all(r.id) as ReviewApproval[],
    };
  }
}
