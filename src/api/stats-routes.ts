/**
 * Aggregate activity for the console's Overview: what happened in the last 24 hours or 7 days.
 *
 *   GET /api/stats?window=24h|7d
 *     sessions and statements per connection, refused statements by guardrail, held statements by
 *     review rule, and how long approvers took (access requests and held statements), plus what
 *     waits for a decision now.
 *
 * Approvers, auditors and admins see everyone's activity; anyone else sees their own (scope
 * "mine"). Every figure is one bounded, indexed query over the owning module's tables (open
 * sessions' statements are their running counts).
 */
import type { AccessRepository } from '../access/repository.js';
import type { AuditLog } from '../audit/log.js';
import type { Identity } from '../core/types.js';
import type { RecordingService } from '../recording/service.js';
import type { ReviewRepository } from '../review/repository.js';
import type { RoleModel } from './roles.js';
import { HttpError, type Router } from './router.js';

export interface StatsRoutesOptions {
  access: AccessRepository;
  reviews: ReviewRepository;
  /** Ended sessions from its index; open ones' running statement counts from the service. */
  recording: RecordingService;
  audit: AuditLog;
  roles: RoleModel;
  now: () => number;
}

const WINDOWS: Record<string, number> = { '24h': 86_400_000, '7d': 7 * 86_400_000 };

/** Upper bounds of the time-to-decision buckets the console charts (the last is open-ended). */
export const WAIT_BUCKETS: ReadonlyArray<{ label: string; upToMs: number }> = [
  { label: 'under 1 min', upToMs: 60_000 },
  { label: '1–5 min', upToMs: 5 * 60_000 },
  { label: '5–15 min', upToMs: 15 * 60_000 },
  { label: '15–60 min', upToMs: 60 * 60_000 },
  { label: 'over 1 h', upToMs: Number.POSITIVE_INFINITY },
];

export function registerStatsRoutes(router: Router, o: StatsRoutesOptions): void {
  router.add(
    'GET',
    '/api/stats',
    async (ctx) => {
      const who = ctx.identity!;
      const windowName = ctx.query.get('window') ?? '24h';
      const span = WINDOWS[windowName];
      if (span === undefined) throw new HttpError(400, 'invalid_window', `window must be one of ${Object.keys(WINDOWS).join(', ')}`);
      const now = o.now();
      const since = now - span;
      const everyone = seesEveryone(o.roles, who);
      const user = everyone ? undefined : who.user;
      return {
        window: windowName,
        since: new Date(since).toISOString(),
        until: new Date(now).toISOString(),
        scope: everyone ? 'everyone' : 'mine',
        connections: activity(o.recording, since, user),
        refusals: (
          await o.audit.countBy({ type: 'statement.denied', since, paths: ['$.rule', '$.reasons[0]'], ...(user ? { actor: user } : {}) })
        ).map((r) => ({ rule: r.key ?? 'unnamed', count: r.count })),
        holds: o.reviews.heldByRule(since, user),
        approvals: {
          requests: waits(await o.access.approvalWaits(since, user ? { user } : {})),
          statements: waits(o.reviews.decisionWaits(since, user ? { user } : {})),
        },
        waiting: everyone ? { requests: await o.access.pendingByConnection(), statements: o.reviews.pendingByConnection() } : null,
      };
    },
    {
      doc: {
        summary: 'Activity of the last 24 h or 7 d: sessions and statements per connection, refusals and holds by rule, time to approval',
        roles: ['requester', 'approver', 'auditor', 'admin'],
        query: { window: 'string? - 24h (default) or 7d' },
      },
    },
  );
}

/** Sessions started since `since` per connection, with the statements of open ones counted so far. */
function activity(recording: RecordingService, since: number, user: string | undefined) {
  const rows = recording.repo.activityByConnection(since, user);
  const byName = new Map(rows.map((r) => [r.connection, r]));
  for (const s of recording.repo.search({ status: 'live', since, ...(user ? { user } : {}), limit: 1000 })) {
    const running = recording.liveCounters(s.id)?.statements ?? 0;
    const row = byName.get(s.connection);
    if (row && s.startedAt >= since && running > s.statements) row.statements += running - s.statements;
  }
  return rows;
}

function seesEveryone(roles: RoleModel, who: Identity): boolean {
  return roles.isAdmin(who) || roles.isAuditor(who) || roles.isApprover(who);
}

/** Count, median, 90th percentile and buckets of decision times. */
function waits(rows: ReadonlyArray<{ waitedMs: number }>) {
  const sorted = rows.map((r) => Math.max(0, r.waitedMs)).sort((a, b) => a - b);
  const at = (q: number) => (sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!);
  const buckets = WAIT_BUCKETS.map((b) => ({ label: b.label, count: 0 }));
  for (const ms of sorted) buckets[WAIT_BUCKETS.findIndex((b) => ms < b.upToMs)]!.count++;
  return { count: sorted.length, medianMs: at(0.5), p90Ms: at(0.9), buckets };
}
