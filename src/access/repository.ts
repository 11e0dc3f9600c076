/**
 * Persistence of access requests, approvals, grants and the token -> grant mapping. The access
 * module owns these tables and their migrations (module "access" in module_migrations); the core
 * store's `tokens` table is only read here, never altered.
 *
 * Synchronous like the rest of the SQLite store. Decisions that read and then write (approve, deny,
 * revoke) run inside `transaction()`, an IMMEDIATE transaction, so the gateway and an admin command
 * on the same file cannot interleave.
 */
import type Database from 'better-sqlite3';
import type { Grant } from '../core/types.js';
import { migrateModule, toTokenRow, type Migration } from '../store/sqlite.js';
import type { TokenRow } from '../store/store.js';
import type { TokenUse } from '../config/types.js';

export type RequestState = 'pending' | 'granted' | 'denied' | 'withdrawn' | 'expired';

export interface Approval {
  approver: string;
  comment: string | null;
  at: number;
  breakGlass: boolean;
}

export interface AccessRequest {
  id: string;
  user: string;
  /** Groups of the requester when asking. */
  groups: string[];
  connection: string;
  reason: string;
  durationMs: number;
  /** The requester asked for break-glass access. */
  breakGlass: boolean;
  state: RequestState;
  /** The policy that decided it, and a snapshot of its approval rules at the time. */
  policy: string;
  approverGroups: string[];
  approvalsRequired: number;
  breakGlassAllowed: boolean;
  /** Reason codes of the decisions so far (policy/access.ts AccessReason). */
  reasons: string[];
  createdAt: number;
  /** When a pending request expires. */
  expiresAt: number;
  decidedAt: number | null;
  decidedBy: string | null;
  decisionReason: string | null;
  grantId: string | null;
  approvals: Approval[];
  /** When a request still pending is escalated, to whom, and whether it has been (null: no escalate rule). */
  escalation: { at: number; to: string[]; escalatedAt: number | null } | null;
}

/** A Grant with what the audit trail needs besides. */
export interface GrantRecord extends Grant {
  /** The policy it was granted under (null for admin-issued grants). */
  policy: string | null;
  /** Who issued it outside the request flow (admin on the gateway host), else null. */
  issuedBy: string | null;
}

export const ACCESS_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'requests, approvals, grants, grant tokens',
    sql: `
      CREATE TABLE access_requests (
        id                 TEXT PRIMARY KEY,
        user               TEXT NOT NULL,
        groups             TEXT NOT NULL,
        connection         TEXT NOT NULL,
        reason             TEXT NOT NULL,
        duration_ms        INTEGER NOT NULL,
        break_glass        INTEGER NOT NULL,
        state              TEXT NOT NULL,
        policy             TEXT NOT NULL,
        approver_groups    TEXT NOT NULL,
        approvals_required INTEGER NOT NULL,
        break_glass_allowed INTEGER NOT NULL,
        reasons            TEXT NOT NULL,
        created_at         INTEGER NOT NULL,
        expires_at         INTEGER NOT NULL,
        decided_at         INTEGER,
        decided_by         TEXT,
        decision_reason    TEXT,
        grant_id           TEXT
      ) STRICT;
      CREATE INDEX access_requests_user ON access_requests (user, created_at DESC);
      CREATE INDEX access_requests_state ON access_requests (state, created_at DESC);

      CREATE TABLE access_approvals (
        request_id  TEXT NOT NULL REFERENCES access_requests (id),
        approver    TEXT NOT NULL,
        comment     TEXT,
        at          INTEGER NOT NULL,
        break_glass INTEGER NOT NULL,
        PRIMARY KEY (request_id, approver)
      ) STRICT;

      CREATE TABLE access_grants (
        id            TEXT PRIMARY KEY,
        user          TEXT NOT NULL,
        groups        TEXT NOT NULL,
        connection    TEXT NOT NULL,
        reason        TEXT NOT NULL,
        request_id    TEXT REFERENCES access_requests (id),
        approved_by   TEXT NOT NULL,
        break_glass   INTEGER NOT NULL,
        policy        TEXT,
        issued_by     TEXT,
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL,
        revoked_at    INTEGER,
        revoked_by    TEXT,
        revoke_reason TEXT
      ) STRICT;
      CREATE INDEX access_grants_user ON access_grants (user, expires_at DESC);
      CREATE INDEX access_grants_live ON access_grants (expires_at) WHERE revoked_at IS NULL;

      -- Every token minted under a grant. natural_expires_at is when the token would have expired
      -- on its own; tokens.expires_at is cut to the grant's end.
      CREATE TABLE access_grant_tokens (
        token_id           TEXT PRIMARY KEY REFERENCES tokens (id),
        grant_id           TEXT NOT NULL REFERENCES access_grants (id),
        natural_expires_at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX access_grant_tokens_grant ON access_grant_tokens (grant_id);
    `,
  },
  {
    version: 2,
    name: 'single-session tokens',
    // token_use: 'session' (opens one data session, revoked when it ends) or 'grant' (logins until
    // its lifetime ends). claimed_at/session_id: set once, atomically, by the session the token opened.
    sql: `
      ALTER TABLE access_grant_tokens ADD COLUMN token_use TEXT NOT NULL DEFAULT 'grant';
      ALTER TABLE access_grant_tokens ADD COLUMN claimed_at INTEGER;
      ALTER TABLE access_grant_tokens ADD COLUMN session_id TEXT;
    `,
  },
  {
    version: 3,
    name: 'escalation of waiting requests',
    // escalate_at/escalate_to: the policy's escalate rule, snapshot at request time; escalated_at: done.
    sql: `
      ALTER TABLE access_requests ADD COLUMN escalate_at INTEGER;
      ALTER TABLE access_requests ADD COLUMN escalate_to TEXT;
      ALTER TABLE access_requests ADD COLUMN escalated_at INTEGER;
    `,
  },
];

type Row = Record<string, unknown>;

/** An id or a unique prefix of one (at least 4 characters) as people type them. */
const ID_PREFIX = /^[0-9a-f-]{4,36}$/i;

export class AmbiguousIdError extends Error {
  constructor(kind: string, prefix: string) {
    super(`${kind} id "${prefix}" is ambiguous; give more characters`);
    this.name = 'AmbiguousIdError';
  }
}

export class AccessRepository {
  private readonly stmts;

  constructor(private readonly db: Database.Database) {
    migrateModule(db, 'access', ACCESS_MIGRATIONS);
    this.stmts = {
      insertRequest: db.prepare(
        `INSERT INTO access_requests (id, user, groups, connection, reason, duration_ms, break_glass, state, policy,
           approver_groups, approvals_required, break_glass_allowed, reasons, created_at, expires_at)
         VALUES (@id, @user, @groups, @connection, @reason, @durationMs, @breakGlass, @state, @policy,
           @approverGroups, @approvalsRequired, @breakGlassAllowed, @reasons, @createdAt, @expiresAt)`,
      ),
      getRequest: db.prepare(`SELECT * FROM access_requests WHERE id = ?`),
      requestIdsByPrefix: db.prepare(`SELECT id FROM access_requests WHERE id LIKE ? ORDER BY id LIMIT 2`).pluck(),
      listRequests: db.prepare(
        `SELECT * FROM access_requests
         WHERE (@user IS NULL OR user = @user) AND (@state IS NULL OR state = @state)
         ORDER BY created_at DESC, rowid DESC LIMIT @limit`,
      ),
      pendingRequests: db.prepare(`SELECT * FROM access_requests WHERE state = 'pending' ORDER BY expires_at`),
      approvalWaits: db.prepare(
        `SELECT policy, decided_at - created_at AS waitedMs FROM access_requests
         WHERE state = 'granted' AND created_at >= @since AND approvals_required > 0 AND decided_at IS NOT NULL
           AND (@user IS NULL OR user = @user)
         ORDER BY created_at DESC LIMIT @limit`,
      ),
      pendingByConnection: db.prepare(
        `SELECT connection, count(*) AS count FROM access_requests WHERE state = 'pending' GROUP BY connection ORDER BY connection`,
      ),
      decideRequest: db.prepare(
        `UPDATE access_requests SET state = @state, decided_at = @decidedAt, decided_by = @decidedBy,
           decision_reason = @decisionReason, grant_id = @grantId, reasons = @reasons
         WHERE id = @id AND state = 'pending'`,
      ),
      setReasons: db.prepare(`UPDATE access_requests SET reasons = ? WHERE id = ?`),
      setEscalation: db.prepare(`UPDATE access_requests SET escalate_at = ?, escalate_to = ? WHERE id = ?`),
      markEscalated: db.prepare(
        `UPDATE access_requests SET escalated_at = @at, approver_groups = @approverGroups
         WHERE id = @id AND state = 'pending' AND escalate_at IS NOT NULL AND escalated_at IS NULL`,
      ),
      insertApproval: db.prepare(
        `INSERT INTO access_approvals (request_id, approver, comment, at, break_glass)
         VALUES (@requestId, @approver, @comment, @at, @breakGlass)`,
      ),
      approvals: db.prepare(`SELECT * FROM access_approvals WHERE request_id = ? ORDER BY at, rowid`),
      insertGrant: db.prepare(
        `INSERT INTO access_grants (id, user, groups, connection, reason, request_id, approved_by, break_glass, policy,
           issued_by, created_at, expires_at)
         VALUES (@id, @user, @groups, @connection, @reason, @requestId, @approvedBy, @breakGlass, @policy,
           @issuedBy, @createdAt, @expiresAt)`,
      ),
      getGrant: db.prepare(`SELECT * FROM access_grants WHERE id = ?`),
      grantIdsByPrefix: db.prepare(`SELECT id FROM access_grants WHERE id LIKE ? ORDER BY id LIMIT 2`).pluck(),
      listGrants: db.prepare(
        `SELECT * FROM access_grants
         WHERE (@user IS NULL OR user = @user)
           AND (@activeAt IS NULL OR (revoked_at IS NULL AND expires_at > @activeAt))
         ORDER BY created_at DESC, rowid DESC LIMIT @limit`,
      ),
      revokeGrant: db.prepare(
        `UPDATE access_grants SET revoked_at = @at, revoked_by = @by, revoke_reason = @reason
         WHERE id = @id AND revoked_at IS NULL`,
      ),
      linkToken: db.prepare(`INSERT INTO access_grant_tokens (token_id, grant_id, natural_expires_at, token_use) VALUES (?, ?, ?, ?)`),
      tokenUse: db.prepare(`SELECT token_use FROM access_grant_tokens WHERE token_id = ?`).pluck(),
      claimToken: db.prepare(
        `UPDATE access_grant_tokens SET claimed_at = @at, session_id = @sessionId
         WHERE token_id = @tokenId AND token_use = 'session' AND claimed_at IS NULL`,
      ),
      claimOf: db.prepare(`SELECT claimed_at AS claimedAt, session_id AS sessionId FROM access_grant_tokens WHERE token_id = ?`),
      setClaimSession: db.prepare(`UPDATE access_grant_tokens SET session_id = ? WHERE token_id = ? AND claimed_at IS NOT NULL`),
      unclaimToken: db.prepare(
        `UPDATE access_grant_tokens SET claimed_at = NULL, session_id = NULL WHERE token_id = ? AND session_id IS NULL`,
      ),
      spentSessionTokens: db.prepare(
        `SELECT t.* FROM tokens t
           JOIN access_grant_tokens m ON m.token_id = t.id
         WHERE t.user = @user AND t.connection = @connection AND m.token_use = 'session'
           AND m.claimed_at IS NOT NULL AND t.revoked_at IS NOT NULL AND t.expires_at > @now
         ORDER BY t.created_at, t.rowid`,
      ),
      grantForToken: db.prepare(`SELECT g.* FROM access_grant_tokens m JOIN access_grants g ON g.id = m.grant_id WHERE m.token_id = ?`),
      endedGrantTokens: db.prepare(
        `SELECT t.* FROM tokens t
           JOIN access_grant_tokens m ON m.token_id = t.id
           JOIN access_grants g ON g.id = m.grant_id
         WHERE t.user = @user AND t.connection = @connection AND t.revoked_at IS NULL
           AND t.expires_at <= @now AND m.natural_expires_at > @now
           AND (g.revoked_at IS NOT NULL OR g.expires_at <= @now)
         ORDER BY t.created_at, t.rowid`,
      ),
    };
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  // -- requests ---------------------------------------------------------------------------------

  insertRequest(r: Omit<AccessRequest, 'approvals' | 'decidedAt' | 'decidedBy' | 'decisionReason' | 'grantId' | 'escalation'>): void {
    this.stmts.insertRequest.run({
      id: r.id,
      user: r.user,
      groups: JSON.stringify(r.groups),
      connection: r.connection,
      reason: r.reason,
      durationMs: r.durationMs,
      breakGlass: r.breakGlass ? 1 : 0,
      state: r.state,
      policy: r.policy,
      approverGroups: JSON.stringify(r.approverGroups),
      approvalsRequired: r.approvalsRequired,
      breakGlassAllowed: r.breakGlassAllowed ? 1 : 0,
      reasons: JSON.stringify(r.reasons),
      createdAt: r.createdAt,
      expiresAt: r.expiresAt,
    });
  }

  getRequest(id: string): AccessRequest | undefined {
    const row = this.stmts.getRequest.get(id) as Row | undefined;
    return row && this.toRequest(row);
  }

  /** By id or unique prefix; throws AmbiguousIdError when a prefix names several. */
  findRequest(idOrPrefix: string): AccessRequest | undefined {
    const id = this.resolve('request', idOrPrefix, this.stmts.requestIdsByPrefix);
    return id === undefined ? undefined : this.getRequest(id);
  }

  listRequests(filter: { user?: string; state?: RequestState; limit?: number } = {}): AccessRequest[] {
    const rows = this.stmts.listRequests.all({
      user: filter.user ?? null,
      state: filter.state ?? null,
      limit: filter.limit ?? 200,
    }) as Row[];
    return rows.map((r) => this.toRequest(r));
  }

  pendingRequests(): AccessRequest[] {
    return (this.stmts.pendingRequests.all() as Row[]).map((r) => this.toRequest(r));
  }

  /**
   * How long people took to grant the requests asked since `since` that needed approvers (not
   * granted at once by policy), newest first, at most `limit`; `user` narrows to one requester.
   * Reads the (state, created_at) index.
   */
  approvalWaits(since: number, o: { user?: string; limit?: number } = {}): Array<{ policy: string; waitedMs: number }> {
    return this.stmts.approvalWaits.all({ since, user: o.user ?? null, limit: o.limit ?? 5000 }) as Array<{
      policy: string;
      waitedMs: number;
    }>;
  }

  /** Close a pending request; false when it was no longer pending. */
  decideRequest(
    id: string,
    d: {
      state: RequestState;
      decidedAt: number;
      decidedBy: string | null;
      decisionReason: string | null;
      grantId: string | null;
      reasons: string[];
    },
  ): boolean {
    return this.stmts.decideRequest.run({ id, ...d, reasons: JSON.stringify(d.reasons) }).changes > 0;
  }

  setReasons(id: string, reasons: string[]): void {
    this.stmts.setReasons.run(JSON.stringify(reasons), id);
  }

  insertApproval(requestId: string, a: Approval): void {
    this.stmts.insertApproval.run({ requestId, approver: a.approver, comment: a.comment, at: a.at, breakGlass: a.breakGlass ? 1 : 0 });
  }

  // -- grants -----------------------------------------------------------------------------------

  insertGrant(g: GrantRecord): void {
    this.stmts.insertGrant.run({
      id: g.id,
      user: g.user,
      groups: JSON.stringify(g.groups),
      connection: g.connection,
      reason: g.reason,
      requestId: g.requestId,
      approvedBy: JSON.stringify(g.approvedBy),
      breakGlass: g.breakGlass ? 1 : 0,
      policy: g.policy,
      issuedBy: g.issuedBy,
      createdAt: g.createdAt,
      expiresAt: g.expiresAt,
    });
  }

  getGrant(id: string): GrantRecord | undefined {
    const row = this.stmts.getGrant.get(id) as Row | undefined;
    return row && toGrant(row);
  }

  findGrant(idOrPrefix: string): GrantRecord | undefined {
    const id = this.resolve('grant', idOrPrefix, this.stmts.grantIdsByPrefix);
    return id === undefined ? undefined : this.getGrant(id);
  }

  /** Newest first; `activeAt` keeps only grants neither revoked nor expired at that time. */
  listGrants(filter: { user?: string; activeAt?: number; limit?: number } = {}): GrantRecord[] {
    const rows = this.stmts.listGrants.all({
      user: filter.user ?? null,
      activeAt: filter.activeAt ?? null,
      limit: filter.limit ?? 200,
    }) as Row[];
    return rows.map(toGrant);
  }

  revokeGrant(id: string, at: number, by: string, reason: string): boolean {
    return this.stmts.revokeGrant.run({ id, at, by, reason }).changes > 0;
  }

  // -- tokens under grants ----------------------------------------------------------------------

  /** The policy's escalate rule for a pending request: at `at`, `to` may approve too. */
  setEscalation(id: string, at: number, to: readonly string[]): void {
    this.stmts.setEscalation.run(at, JSON.stringify([...to]), id);
  }

  /** Escalate once: widen the approver groups; false when no longer pending or already escalated. */
  markEscalated(id: string, at: number, approverGroups: readonly string[]): boolean {
    return this.stmts.markEscalated.run({ id, at, approverGroups: JSON.stringify([...approverGroups]) }).changes === 1;
  }

  /** Pending requests per connection (the metrics' gauge). */
  pendingByConnection(): Array<{ connection: string; count: number }> {
    return this.stmts.pendingByConnection.all() as Array<{ connection: string; count: number }>;
  }

  linkToken(tokenId: string, grantId: string, naturalExpiresAt: number, use: TokenUse = 'grant'): void {
    this.stmts.linkToken.run(tokenId, grantId, naturalExpiresAt, use);
  }

  /** How many sessions the token may open (undefined: not a token under a grant). */
  tokenUse(tokenId: string): TokenUse | undefined {
    const use = this.stmts.tokenUse.get(tokenId) as string | undefined;
    return use === 'session' || use === 'grant' ? use : undefined;
  }

  /**
   * Mark a single-session token as used, once: one UPDATE guarded by `claimed_at IS NULL`, so of two
   * logins racing with one token (in this process or another on the same file) exactly one gets true.
   */
  claimToken(tokenId: string, at: number): boolean {
    return this.stmts.claimToken.run({ tokenId, at, sessionId: null }).changes === 1;
  }

  /** The session a claimed token opened (recorded once the session exists). */
  setClaimSession(tokenId: string, sessionId: string): void {
    this.stmts.setClaimSession.run(sessionId, tokenId);
  }

  /** Give back a claim whose session never started (so the token can still be used once). */
  unclaimToken(tokenId: string): void {
    this.stmts.unclaimToken.run(tokenId);
  }

  claimOf(tokenId: string): { claimedAt: number; sessionId: string | null } | undefined {
    const row = this.stmts.claimOf.get(tokenId) as { claimedAt: number | null; sessionId: string | null } | undefined;
    return row && row.claimedAt !== null ? { claimedAt: row.claimedAt, sessionId: row.sessionId } : undefined;
  }

  /**
   * Single-session tokens revoked because their session ended, whose lifetime has not run out: they
   * still authenticate, so a second login with one is recorded as `token.reused` and refused at
   * session start (28P01), not only as an unknown password.
   */
  spentSessionTokens(user: string, connection: string, now: number): TokenRow[] {
    return (this.stmts.spentSessionTokens.all({ user, connection, now }) as Row[]).map(toTokenRow);
  }

  grantForToken(tokenId: string): GrantRecord | undefined {
    const row = this.stmts.grantForToken.get(tokenId) as Row | undefined;
    return row && toGrant(row);
  }

  /**
   * Tokens cut short by their grant's end whose own lifetime has not run out: they still
   * authenticate, so the login can be refused with the grant's reason (28000) instead of a bare
   * "password authentication failed".
   */
  endedGrantTokens(user: string, connection: string, now: number): TokenRow[] {
    return (this.stmts.endedGrantTokens.all({ user, connection, now }) as Row[]).map(toTokenRow);
  }

  // ---------------------------------------------------------------------------------------------

  private resolve(kind: string, idOrPrefix: string, byPrefix: Database.Statement): string | undefined {
    if (!ID_PREFIX.test(idOrPrefix)) return undefined;
    const ids = byPrefix.all(`${idOrPrefix.toLowerCase()}%`) as string[];
    if (ids.length > 1 && !ids.includes(idOrPrefix.toLowerCase())) throw new AmbiguousIdError(kind, idOrPrefix);
    return ids.includes(idOrPrefix.toLowerCase()) ? idOrPrefix.toLowerCase() : ids[0];
  }

  private toRequest(r: Row): AccessRequest {
    const approvals = (this.stmts.approvals.all(r.id) as Row[]).map((a) => ({
      approver: a.approver as string,
      comment: (a.comment as string | null) ?? null,
      at: a.at as number,
      breakGlass: a.break_glass === 1,
    }));
    return {
      id: r.id as string,
      user: r.user as string,
      groups: JSON.parse(r.groups as string) as string[],
      connection: r.connection as string,
      reason: r.reason as string,
      durationMs: r.duration_ms as number,
      breakGlass: r.break_glass === 1,
      state: r.state as RequestState,
      policy: r.policy as string,
      approverGroups: JSON.parse(r.approver_groups as string) as string[],
      approvalsRequired: r.approvals_required as number,
      breakGlassAllowed: r.break_glass_allowed === 1,
      reasons: JSON.parse(r.reasons as string) as string[],
      createdAt: r.created_at as number,
      expiresAt: r.expires_at as number,
      decidedAt: (r.decided_at as number | null) ?? null,
      decidedBy: (r.decided_by as string | null) ?? null,
      decisionReason: (r.decision_reason as string | null) ?? null,
      grantId: (r.grant_id as string | null) ?? null,
      approvals,
      escalation:
        r.escalate_at === null || r.escalate_at === undefined
          ? null
          : {
              at: r.escalate_at as number,
              to: JSON.parse(r.escalate_to as string) as string[],
              escalatedAt: (r.escalated_at as number | null) ?? null,
            },
    };
  }
}

function toGrant(r: Row): GrantRecord {
  return {
    id: r.id as string,
    user: r.user as string,
    groups: JSON.parse(r.groups as string) as string[],
    connection: r.connection as string,
    reason: r.reason as string,
    requestId: (r.request_id as string | null) ?? null,
    approvedBy: JSON.parse(r.approved_by as string) as string[],
    breakGlass: r.break_glass === 1,
    policy: (r.policy as string | null) ?? null,
    issuedBy: (r.issued_by as string | null) ?? null,
    createdAt: r.created_at as number,
    expiresAt: r.expires_at as number,
    revokedAt: (r.revoked_at as number | null) ?? null,
    revokedBy: (r.revoked_by as string | null) ?? null,
    revokeReason: (r.revoke_reason as string | null) ?? null,
  };
}
