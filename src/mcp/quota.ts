/**
 * Per-agent quotas over sliding windows: statements per minute and rows per hour. The first limit
 * in config order whose groups match the agent applies. Memory per agent is bounded by the limits
 * themselves (at most `statementsPerMinute` timestamps, one entry per call for rows).
 */
import type { AgentLimit } from '../config/agents.js';
import type { Identity } from '../core/types.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;

export class QuotaExceeded extends Error {
  constructor(
    readonly reason: 'statement_rate' | 'row_quota',
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
    this.name = 'QuotaExceeded';
  }
}

interface Usage {
  statements: number[];
  rows: Array<{ at: number; rows: number }>;
}

export class AgentQuotas {
  private readonly usage = new Map<string, Usage>();

  constructor(
    private readonly limits: readonly AgentLimit[],
    private readonly now: () => number,
  ) {}

  limitFor(who: Identity): AgentLimit | undefined {
    return this.limits.find((l) => l.groups.includes('*') || l.groups.some((g) => who.groups.includes(g)));
  }

  /** Counts one statement, or throws when the agent is over its statement rate or row quota. */
  admitStatement(who: Identity): void {
    const limit = this.limitFor(who);
    if (!limit) return;
    const now = this.now();
    const u = this.prune(who.user, now);
    if (limit.rowsPerHour !== undefined) {
      const used = u.rows.reduce((n, r) => n + r.rows, 0);
      if (used >= limit.rowsPerHour) {
        throw new QuotaExceeded('row_quota', `row quota reached: ${used} of ${limit.rowsPerHour} rows in the last hour`, u.rows[0]!.at + HOUR - now);
      }
    }
    if (limit.statementsPerMinute !== undefined && u.statements.length >= limit.statementsPerMinute) {
      throw new QuotaExceeded(
        'statement_rate',
        `rate limit reached: ${limit.statementsPerMinute} statements per minute`,
        u.statements[0]! + MINUTE - now,
      );
    }
    u.statements.push(now);
  }

  /** Rows returned to the agent, counted against its hourly quota. */
  countRows(who: Identity, rows: number): void {
    if (rows <= 0 || this.limitFor(who)?.rowsPerHour === undefined) return;
    this.prune(who.user, this.now()).rows.push({ at: this.now(), rows });
  }

  /** Rows still allowed this hour (Infinity without a quota). */
  rowsLeft(who: Identity): number {
    const limit = this.limitFor(who)?.rowsPerHour;
    if (limit === undefined) return Infinity;
    const used = this.prune(who.user, this.now()).rows.reduce((n, r) => n + r.rows, 0);
    return Math.max(0, limit - used);
  }

  private prune(user: string, now: number): Usage {
    let u = this.usage.get(user);
    if (!u) this.usage.set(user, (u = { statements: [], rows: [] }));
    while (u.statements.length && u.statements[0]! <= now - MINUTE) u.statements.shift();
    while (u.rows.length && u.rows[0]!.at <= now - HOUR) u.rows.shift();
    return u;
  }
}
