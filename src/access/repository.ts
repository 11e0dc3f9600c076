/**
 * Persistence of access requests, approvals, grants and the token -> grant mapping. The access
 * module owns these tables and their migrations (module "access" in module_migrations); the core
 * store's `tokens` table is only read here, never altered.
 *
 * On SqlDatabase (SQLite or a shared PostgreSQL). Decisions that read and then write (approve,
 * deny, revoke) run inside `transaction()`, which holds the write lock from its start, so two
 * gateway instances or an admin command cannot interleave; the tokens minted and the audit entries
 * written within it join it.
 */
import type { Grant } from '../core/types.js';
import type { SqlDatabase, SqlMigration } from '../store/sql.js';
import { toTokenRow } from '../store/sql-store.js';
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

export const ACCESS_MIGRATIONS: readonly SqlMigration[] = [
  {
    version: 1,
    name: 'requests, approvals, grants, grant tokens',
    sqlite: `
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
    postgres: `
      CREATE TABLE access_requests (
        id                  TEXT PRIMARY KEY,
        "user"              TEXT NOT NULL,
        groups              TEXT NOT NULL,
        connection          TEXT NOT NULL,
        reason              TEXT NOT NULL,
        duration_ms         BIGINT NOT NULL,
        break_glass         INTEGER NOT NULL,
        state               TEXT NOT NULL,
        policy              TEXT NOT NULL,
        approver_groups     TEXT NOT NULL,
        approvals_required  INTEGER NOT NULL,
        break_glass_allowed INTEGER NOT NULL,
        reasons             TEXT NOT NULL,
        created_at          BIGINT NOT NULL,
        expires_at          BIGINT NOT NULL,
        decided_at          BIGINT,
        decided_by          TEXT,
        decision_reason     TEXT,
        grant_id            TEXT,
        seq                 BIGINT GENERATED ALWAYS AS IDENTITY
      );
      CREATE INDEX access_requests_user ON access_requests ("user", created_at DESC);
      CREATE INDEX access_requests_state ON access_requests (state, created_at DESC);

      CREATE TABLE access_approvals (
        request_id  TEXT NOT NULL REFERENCES access_requests (id),
        approver    TEXT NOT NULL,
        comment     TEXT,
        at          BIGINT NOT NULL,
        break_glass INTEGER NOT NULL,
        seq         BIGINT GENERATED ALWAYS AS IDENTITY,
        PRIMARY KEY (request_id, approver)
      );

      CREATE TABLE access_grants (
        id            TEXT PRIMARY KEY,
        "user"        TEXT NOT NULL,
        groups        TEXT NOT NULL,
        connection    TEXT NOT NULL,
        reason        TEXT NOT NULL,
        request_id    TEXT REFERENCES access_requests (id),
        approved_by   TEXT NOT NULL,
        break_glass   INTEGER NOT NULL,
        policy        TEXT,
        issued_by     TEXT,
        created_at    BIGINT NOT NULL,
        expires_at    BIGINT NOT NULL,
        revoked_at    BIGINT,
        revoked_by    TEXT,
        revoke_reason TEXT,
        seq           BIGINT GENERATED ALWAYS AS IDENTITY
      );
      CREATE INDEX access_grants_user ON access_grants ("user", expires_at DESC);
      CREATE INDEX access_grants_live ON access_grants (expires_at) WHERE revoked_at IS NULL;

      CREATE TABLE access_grant_tokens (
        token_id           TEXT PRIMARY KEY REFERENCES tokens (id),
        grant_id           TEXT NOT NULL REFERENCES access_grants (id),
        natural_expires_at BIGINT NOT NULL
      );
      CREATE INDEX access_grant_tokens_grant ON access_grant_tokens (grant_id);
    `,
  },
  {
    version: 2,
    name: 'single-session tokens',
    // token_use: 'session' (opens one data session, revoked when it ends) or 'grant' (logins until
    // its lifetime ends). claimed_at/session_id: set once, atomically, by the session the token opened.
    sqlite: `
      ALTER TABLE access_grant_tokens ADD COLUMN token_use TEXT NOT NULL DEFAULT 'grant';
      ALTER TABLE access_grant_tokens ADD COLUMN claimed_at INTEGER;
      ALTER TABLE access_grant_tokens ADD COLUMN session_id TEXT;
    `,
    postgres: `
      ALTER TABLE access_grant_tokens ADD COLUMN token_use TEXT NOT NULL DEFAULT 'grant';
      ALTER TABLE access_grant_tokens ADD COLUMN claimed_at BIGINT;
      ALTER TABLE access_grant_tokens ADD COLUMN session_id TEXT;
    `,
  },
  {
    version: 3,
    name: 'escalation of waiting requests',
    // escalate_at/escalate_to: the policy's escalate rule, snapshot at request time; escalated_at: done.
    sqlite: `
      ALTER TABLE access_requests ADD COLUMN escalate_at INTEGER;
      ALTER TABLE access_requests ADD COLUMN escalate_to TEXT;
      ALTER TABLE access_requests ADD COLUMN escalated_at INTEGER;
    `,
    postgres: `
      ALTER TABLE access_requests ADD COLUMN escalate_at BIGINT;
      ALTER TABLE access_requests ADD COLUMN escalate_to TEXT;
      ALTER TABLE access_requests ADD COLUMN escalated_at BIGINT;
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
  /** Where rows went in, to break ties between equal times (SQLite's rowid). */
  private readonly insertOrder: string;

  private constructor(private readonly sql: SqlDatabase) {
    this.insertOrder = sql.dialect === 'sqlite' ? 'rowid' : 'seq';
  }

  /** The repository on `sql`, its tables migrated (after the core store's, whose tokens it references). */
  static async open(sql: SqlDatabase): Promise<AccessRepository> {
    await sql.migrate('access', ACCESS_MIGRATIONS);
    return new AccessRepository(sql);
  }

  /**
   * Runs `work` as one transaction; this repository's calls within it (and the store's) join it.
   * Decisions read, then write: one lock serialises them across instances, so two final approvals
   * made through two instances at once cannot both grant (SQLite's write lock does this alone).
   */
  transaction<T>(work: () => Promise<T>): Promise<T> {
    return this.sql.transaction(work, { lock: 'jitgate.access' });
  }

  // -- requests ---------------------------------------------------------------------------------

  async insertRequest(
    r: Omit<AccessRequest, 'approvals' | 'decidedAt' | 'decidedBy' | 'decisionReason' | 'grantId' | 'escalation'>,
  ): Promise<void> {
    await this.sql.run(
      `INSERT INTO access_requests (id, "user", groups, connection, reason, duration_ms, break_glass, state, policy,
         approver_groups, approvals_required, break_glass_allowed, reasons, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        r.id,
        r.user,
        JSON.stringify(r.groups),
        r.connection,
        r.reason,
        r.durationMs,
        r.breakGlass ? 1 : 0,
        r.state,
        r.policy,
        JSON.stringify(r.approverGroups),
        r.approvalsRequired,
        r.breakGlassAllowed ? 1 : 0,
        JSON.stringify(r.reasons),
        r.createdAt,
        r.expiresAt,
      ],
    );
  }

  async getRequest(id: string): Promise<AccessRequest | undefined> {
    const row = await this.sql.get(`SELECT * FROM access_requests WHERE id = ?`, [id]);
    return row && (await this.toRequests([row]))[0];
  }

  /** By id or unique prefix; throws AmbiguousIdError when a prefix names several. */
  async findRequest(idOrPrefix: string): Promise<AccessRequest | undefined> {
    const id = await this.resolve('request', idOrPrefix, 'access_requests');
    return id === undefined ? undefined : this.getRequest(id);
  }

  async listRequests(filter: { user?: string; state?: RequestState; limit?: number } = {}): Promise<AccessRequest[]> {
    const where: string[] = [];
    const params: Array<string | number> = [];
    if (filter.user !== undefined) {
      where.push(`"user" = ?`);
      params.push(filter.user);
    }
    if (filter.state !== undefined) {
      where.push(`state = ?`);
      params.push(filter.state);
    }
    const rows = await this.sql.all(
      `SELECT * FROM access_requests ${whereClause(where)} ORDER BY created_at DESC, ${this.insertOrder} DESC LIMIT ?`,
      [...params, filter.limit ?? 200],
    );
    return this.toRequests(rows);
  }

  async pendingRequests(): Promise<AccessRequest[]> {
    return this.toRequests(await this.sql.all(`SELECT * FROM access_requests WHERE state = 'pending' ORDER BY expires_at`));
  }

  /**
   * How long people took to grant the requests asked since `since` that needed approvers (not
   * granted at once by policy), newest first, at most `limit`; `user` narrows to one requester.
   * Reads the (state, created_at) index.
   */
  approvalWaits(since: number, o: { user?: string; limit?: number } = {}): Promise<Array<{ policy: string; waitedMs: number }>> {
    return this.sql.all(
      `SELECT policy, decided_at - created_at AS "waitedMs" FROM access_requests
       WHERE state = 'granted' AND created_at >= ? AND approvals_required > 0 AND decided_at IS NOT NULL
         ${o.user !== undefined ? `AND "user" = ?` : ''}
       ORDER BY created_at DESC LIMIT ?`,
      [since, ...(o.user !== undefined ? [o.user] : []), o.limit ?? 5000],
    );
  }

  /** Close a pending request; false when it was no longer pending. */
  async decideRequest(
    id: string,
    d: {
      state: RequestState;
      decidedAt: number;
      decidedBy: string | null;
      decisionReason: string | null;
      grantId: string | null;
      reasons: string[];
    },
  ): Promise<boolean> {
    const decided = await this.sql.run(
      `UPDATE access_requests SET state = ?, decided_at = ?, decided_by = ?, decision_reason = ?, grant_id = ?, reasons = ?
       WHERE id = ? AND state = 'pending'`,
      [d.state, d.decidedAt, d.decidedBy, d.decisionReason, d.grantId, JSON.stringify(d.reasons), id],
    );
    return decided.changes > 0;
  }

  async setReasons(id: string, reasons: string[]): Promise<void> {
    await this.sql.run(`UPDATE access_requests SET reasons = ? WHERE id = ?`, [JSON.stringify(reasons), id]);
  }

  async insertApproval(requestId: string, a: Approval): Promise<void> {
    await this.sql.run(`INSERT INTO access_approvals (request_id, approver, comment, at, break_glass) VALUES (?, ?, ?, ?, ?)`, [
      requestId,
      a.approver,
      a.comment,
      a.at,
      a.breakGlass ? 1 : 0,
    ]);
  }

  // -- grants -----------------------------------------------------------------------------------

  async insertGrant(g: GrantRecord): Promise<void> {
    await this.sql.run(
      `INSERT INTO access_grants (id, "user", groups, connection, reason, request_id, approved_by, break_glass, policy,
         issued_by, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        g.id,
        g.user,
        JSON.stringify(g.groups),
        g.connection,
        g.reason,
        g.requestId,
        JSON.stringify(g.approvedBy),
        g.breakGlass ? 1 : 0,
        g.policy,
        g.issuedBy,
        g.createdAt,
        g.expiresAt,
      ],
    );
  }

  async getGrant(id: string): Promise<GrantRecord | undefined> {
    const row = await this.sql.get(`SELECT * FROM access_grants WHERE id = ?`, [id]);
    return row && toGrant(row);
  }

  async findGrant(idOrPrefix: string): Promise<GrantRecord | undefined> {
    const id = await this.resolve('grant', idOrPrefix, 'access_grants');
    return id === undefined ? undefined : this.getGrant(id);
  }

  /** Newest first; `activeAt` keeps only grants neither revoked nor expired at that time. */
  async listGrants(filter: { user?: string; activeAt?: number; limit?: number } = {}): Promise<GrantRecord[]> {
    const where: string[] = [];
    const params: Array<string | number> = [];
    if (filter.user !== undefined) {
      where.push(`"user" = ?`);
      params.push(filter.user);
    }
    if (filter.activeAt !== undefined) {
      where.push(`revoked_at IS NULL AND expires_at > ?`);
      params.push(filter.activeAt);
    }
    const rows = await this.sql.all(
      `SELECT * FROM access_grants ${whereClause(where)} ORDER BY created_at DESC, ${this.insertOrder} DESC LIMIT ?`,
      [...params, filter.limit ?? 200],
    );
    return rows.map(toGrant);
  }

  async revokeGrant(id: string, at: number, by: string, reason: string): Promise<boolean> {
    const revoked = await this.sql.run(
      `UPDATE access_grants SET revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE id = ? AND revoked_at IS NULL`,
      [at, by, reason, id],
    );
    return revoked.changes > 0;
  }

  // -- tokens under grants ----------------------------------------------------------------------

  /** The policy's escalate rule for a pending request: at `at`, `to` may approve too. */
  async setEscalation(id: string, at: number, to: readonly string[]): Promise<void> {
    await this.sql.run(`UPDATE access_requests SET escalate_at = ?, escalate_to = ? WHERE id = ?`, [at, JSON.stringify([...to]), id]);
  }

  /** Escalate once: widen the approver groups; false when no longer pending or already escalated. */
  async markEscalated(id: string, at: number, approverGroups: readonly string[]): Promise<boolean> {
    const marked = await this.sql.run(
      `UPDATE access_requests SET escalated_at = ?, approver_groups = ?
       WHERE id = ? AND state = 'pending' AND escalate_at IS NOT NULL AND escalated_at IS NULL`,
      [at, JSON.stringify([...approverGroups]), id],
    );
    return marked.changes === 1;
  }

  /** Pending requests per connection (the metrics' gauge). */
  pendingByConnection(): Promise<Array<{ connection: string; count: number }>> {
    return this.sql.all(
      `SELECT connection, count(*) AS count FROM access_requests WHERE state = 'pending' GROUP BY connection ORDER BY connection`,
    );
  }

  async linkToken(tokenId: string, grantId: string, naturalExpiresAt: number, use: TokenUse = 'grant'): Promise<void> {
    await this.sql.run(`INSERT INTO access_grant_tokens (token_id, grant_id, natural_expires_at, token_use) VALUES (?, ?, ?, ?)`, [
      tokenId,
      grantId,
      naturalExpiresAt,
      use,
    ]);
  }

  /** How many sessions the token may open (undefined: not a token under a grant). */
  async tokenUse(tokenId: string): Promise<TokenUse | undefined> {
    const row = await this.sql.get<{ token_use: string }>(`SELECT token_use FROM access_grant_tokens WHERE token_id = ?`, [tokenId]);
    const use = row?.token_use;
    return use === 'session' || use === 'grant' ? use : undefined;
  }

  /**
   * Mark a single-session token as used, once: one UPDATE guarded by `claimed_at IS NULL`, so of two
   * logins racing with one token (on this instance or another) exactly one gets true.
   */
  async claimToken(tokenId: string, at: number): Promise<boolean> {
    const claimed = await this.sql.run(
      `UPDATE access_grant_tokens SET claimed_at = ?, session_id = NULL
       WHERE token_id = ? AND token_use = 'session' AND claimed_at IS NULL`,
      [at, tokenId],
    );
    return claimed.changes === 1;
  }

  /** The session a claimed token opened (recorded once the session exists). */
  async setClaimSession(tokenId: string, sessionId: string): Promise<void> {
    await this.sql.run(`UPDATE access_grant_tokens SET session_id = ? WHERE token_id = ? AND claimed_at IS NOT NULL`, [sessionId, tokenId]);
  }

  /** Give back a claim whose session never started (so the token can still be used once). */
  async unclaimToken(tokenId: string): Promise<void> {
    await this.sql.run(`UPDATE access_grant_tokens SET claimed_at = NULL, session_id = NULL WHERE token_id = ? AND session_id IS NULL`, [
      tokenId,
    ]);
  }

  async claimOf(tokenId: string): Promise<{ claimedAt: number; sessionId: string | null } | undefined> {
    const row = await this.sql.get<{ claimedAt: number | null; sessionId: string | null }>(
      `SELECT claimed_at AS "claimedAt", session_id AS "sessionId" FROM access_grant_tokens WHERE token_id = ?`,
      [tokenId],
    );
    return row && row.claimedAt !== null ? { claimedAt: row.claimedAt, sessionId: row.sessionId } : undefined;
  }

  /**
   * Single-session tokens revoked because their session ended, whose lifetime has not run out: they
   * still authenticate, so a second login with one is recorded as `token.reused` and refused at
   * session start (28P01), not only as an unknown password.
   */
  async spentSessionTokens(user: string, connection: string, now: number): Promise<TokenRow[]> {
    const rows = await this.sql.all(
      `SELECT t.* FROM tokens t
         JOIN access_grant_tokens m ON m.token_id = t.id
       WHERE t."user" = ? AND t.connection = ? AND m.token_use = 'session'
         AND m.claimed_at IS NOT NULL AND t.revoked_at IS NOT NULL AND t.expires_at > ?
       ORDER BY t.created_at, t.${this.insertOrder}`,
      [user, connection, now],
    );
    return rows.map(toTokenRow);
  }

  async grantForToken(tokenId: string): Promise<GrantRecord | undefined> {
    const row = await this.sql.get(`SELECT g.* FROM access_grant_tokens m JOIN access_grants g ON g.id = m.grant_id WHERE m.token_id = ?`, [
      tokenId,
    ]);
    return row && toGrant(row);
  }

  /**
   * Tokens cut short by their grant's end whose own lifetime has not run out: they still
   * authenticate, so the login can be refused with the grant's reason (28000) instead of a bare
   * "password authentication failed".
   */
  async endedGrantTokens(user: string, connection: string, now: number): Promise<TokenRow[]> {
    const rows = await this.sql.all(
      `SELECT t.* FROM tokens t
         JOIN access_grant_tokens m ON m.token_id = t.id
         JOIN access_grants g ON g.id = m.grant_id
       WHERE t."user" = ? AND t.connection = ? AND t.revoked_at IS NULL
         AND t.expires_at <= ? AND m.natural_expires_at > ?
         AND (g.revoked_at IS NOT NULL OR g.expires_at <= ?)
       ORDER BY t.created_at, t.${this.insertOrder}`,
      [user, connection, now, now, now],
    );
    return rows.map(toTokenRow);
  }

  // ---------------------------------------------------------------------------------------------

  private async resolve(kind: string, idOrPrefix: string, table: 'access_requests' | 'access_grants'): Promise<string | undefined> {
    if (!ID_PREFIX.test(idOrPrefix)) return undefined;
    const wanted = idOrPrefix.toLowerCase();
    const rows = await this.sql.all<{ id: string }>(`SELECT id FROM ${table} WHERE id LIKE ? ORDER BY id LIMIT 2`, [`${wanted}%`]);
    const ids = rows.map((r) => r.id);
    if (ids.length > 1 && !ids.includes(wanted)) throw new AmbiguousIdError(kind, idOrPrefix);
    return ids.includes(wanted) ? wanted : ids[0];
  }

  /** Requests with their approvals, read in one query for all of them. */
  private async toRequests(rows: Row[]): Promise<AccessRequest[]> {
    if (rows.length === 0) return [];
    const approvals = await this.sql.all(
      `SELECT * FROM access_approvals WHERE request_id IN (${rows.map(() => '?').join(', ')}) ORDER BY at, ${this.insertOrder}`,
      rows.map((r) => r.id as string),
    );
    const byRequest = new Map<string, Approval[]>();
    for (const a of approvals) {
      const list = byRequest.get(a.request_id as string) ?? [];
      list.push({
        approver: a.approver as string,
        comment: (a.comment as string | null) ?? null,
        at: a.at as number,
        breakGlass: a.break_glass === 1,
      });
      byRequest.set(a.request_id as string, list);
    }
    return rows.map((r) => toRequest(r, byRequest.get(r.id as string) ?? []));
  }
}

function whereClause(conditions: readonly string[]): string {
  return conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
}

function toRequest(r: Row, approvals: Approval[]): AccessRequest {
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
