/**
 * Per-agent quotas over sliding windows: statements per minute (counted by the session pipeline, so
 * they bind an agent on every path: MCP, psql, mysql, redis-cli) and rows per hour (counted on what
 * MCP returns). The first limit in config order whose groups match applies. Memory per agent is
 * bounded by the limits (at most `statementsPerMinute` timestamps; one entry per MCP call for rows).
 * With several gateway instances, what the others counted is added (as of the last catch-up round).
 */
import type { AgentLimit } from '../config/agents.js';
import type { Decision, Identity } from '../core/types.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;

export class QuotaExceeded extends Error {
  constructor(
    readonly reason: 'row_quota',
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

/** What other gateway instances counted (instances/usage.ts SharedUsage); absent for a gateway alone. */
export interface UsageElsewhere {
  add(kind: 'statements' | 'rows', user: string, n: number): void;
  countOthers(kind: 'statements' | 'rows', user: string, since: number): { count: number; oldest: number | undefined };
}

export class AgentQuotas {
  private readonly usage = new Map<string, Usage>();

  constructor(
    private readonly limits: readonly AgentLimit[],
    private readonly now: () => number,
    private readonly elsewhere?: UsageElsewhere,
  ) {}

  limitFor(who: { groups: readonly string[] }): AgentLimit | undefined {
    return this.limits.find((l) => l.groups.includes('*') || l.groups.some((g) => who.groups.includes(g)));
  }

  /**
   * The statement gate of one data session (undefined when no statement rate applies to its
   * groups, so the pipeline pays nothing): counts each statement, or refuses it over the rate.
   */
  statementGate(user: string, groups: readonly string[]): (() => Decision | undefined) | undefined {
    const perMinute = this.limitFor({ groups })?.statementsPerMinute;
    if (perMinute === undefined) return undefined;
    return () => {
      const now = this.now();
      const u = this.prune(user, now);
      const others = this.elsewhere?.countOthers('statements', user, now - MINUTE) ?? { count: 0, oldest: undefined };
      if (u.statements.length + others.count >= perMinute) {
        const oldest = Math.min(u.statements[0] ?? Infinity, others.oldest ?? Infinity);
        const retry = Math.max(1, Math.ceil((oldest + MINUTE - now) / 1000));
        return {
          effect: 'deny',
          reasons: ['statement_rate'],
          message: `jitgate: rate limit reached: ${perMinute} statements per minute; retry in ${retry} s`,
        };
      }
      u.statements.push(now);
      this.elsewhere?.add('statements', user, 1);
      return undefined;
    };
  }

  /** Throws when the agent has used its row quota for the hour. */
  admitRows(who: Identity): void {
    const limit = this.limitFor(who)?.rowsPerHour;
    if (limit === undefined) return;
    const now = this.now();
    const { used, oldest } = this.rowsUsed(who.user, now);
    if (used >= limit)
      throw new QuotaExceeded('row_quota', `row quota reached: ${used} of ${limit} rows in the last hour`, oldest + HOUR - now);
  }

  /** Rows of the last hour, here and on other instances, and when the oldest counted was returned. */
  private rowsUsed(user: string, now: number): { used: number; oldest: number } {
    const u = this.prune(user, now);
    const others = this.elsewhere?.countOthers('rows', user, now - HOUR) ?? { count: 0, oldest: undefined };
    const used = u.rows.reduce((n, r) => n + r.rows, 0) + others.count;
    return { used, oldest: Math.min(u.rows[0]?.at ?? Infinity, others.oldest ?? Infinity) };
  }

  /** Rows returned to the agent, counted against its hourly quota. */
  countRows(who: Identity, rows: number): void {
    if (rows <= 0 || this.limitFor(who)?.rowsPerHour === undefined) return;
    this.prune(who.user, this.now()).rows.push({ at: this.now(), rows });
    this.elsewhere?.add('rows', who.user, rows);
  }

  /** Rows still allowed this hour (Infinity without a quota). */
  rowsLeft(who: Identity): number {
    const limit = this.limitFor(who)?.rowsPerHour;
    if (limit === undefined) return Infinity;
    return Math.max(0, limit - this.rowsUsed(who.user, this.now()).used);
  }

  private prune(user: string, now: number): Usage {
    let u = this.usage.get(user);
    if (!u) this.usage.set(user, (u = { statements: [], rows: [] }));
    while (u.statements.length && u.statements[0]! <= now - MINUTE) u.statements.shift();
    while (u.rows.length && u.rows[0]!.at <= now - HOUR) u.rows.shift();
    return u;
  }
}
