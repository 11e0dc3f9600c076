/**
 * HTTP API of the policy review tools, for the console and the CLI:
 *
 *   POST /api/policy/test       {connection, user, groups?, statement}: what the gateway would do
 *                               with the statement (allowed, refused, held; masked columns), without
 *                               running it — admins, approvers, auditors
 *   GET  /api/masking/report?since=7d&connection=&limit=: what masking did over a period, from the
 *                               session recordings — admins, auditors
 */
import { parseTimeFilter, TIME_HINT } from '../recording/time-filter.js';
import { MaskingReportBuilder, type MaskingReport } from '../recording/masking-report.js';
import type { RecordingService } from '../recording/service.js';
import { PolicyTestError, type PolicyTester } from '../session/explain.js';
import { requireRole, type RoleModel } from './roles.js';
import { HttpError, type Router } from './router.js';

export interface PolicyRoutesOptions {
  tester: PolicyTester;
  recording: RecordingService;
  roles: RoleModel;
  now: () => number;
}

const DEFAULT_SINCE_MS = 7 * 24 * 3600 * 1000;
/** Sessions whose recordings one report reads, at most (the newest first). */
const DEFAULT_SESSIONS = 1000;
const MAX_SESSIONS = 10_000;

export function registerPolicyRoutes(router: Router, o: PolicyRoutesOptions): void {
  router.add(
    'POST',
    '/api/policy/test',
    async (ctx) => {
      requireRole(o.roles, ctx.identity!, ['admin', 'approver', 'auditor']);
      const body = (ctx.body ?? {}) as Record<string, unknown>;
      const connection = requiredString(body, 'connection');
      const user = requiredString(body, 'user');
      const statement = requiredString(body, 'statement');
      let groups: string[] | undefined;
      if (body.groups !== undefined && body.groups !== null) {
        if (!Array.isArray(body.groups) || !body.groups.every((g) => typeof g === 'string')) {
          throw new HttpError(400, 'bad_request', '"groups" must be a list of group names');
        }
        groups = body.groups as string[];
      }
      try {
        return await o.tester.test({ connection, user, statement, ...(groups ? { groups } : {}) });
      } catch (err) {
        if (err instanceof PolicyTestError) throw new HttpError(err.code === 'unknown_connection' ? 404 : 400, err.code, err.message);
        throw err;
      }
    },
    {
      doc: {
        summary:
          'What the gateway would do with a statement (allowed, refused, held; masked columns with their lineage), without running it',
        roles: ['admin', 'approver', 'auditor'],
        body: {
          connection: 'string - connection name',
          user: 'string - whose statement',
          groups: "string[]? - their groups (default: those of the user's last sign-in)",
          statement: 'string - SQL, or a Redis command line',
        },
      },
    },
  );

  router.add(
    'GET',
    '/api/masking/report',
    async (ctx) => {
      requireRole(o.roles, ctx.identity!, ['admin', 'auditor']);
      const now = o.now();
      const sinceText = ctx.query.get('since');
      const since = sinceText ? parseTimeFilter(sinceText, now) : now - DEFAULT_SINCE_MS;
      if (since === undefined) throw new HttpError(400, 'bad_request', `since: expected ${TIME_HINT}`);
      const limitText = ctx.query.get('limit');
      const limit = limitText ? Number(limitText) : DEFAULT_SESSIONS;
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_SESSIONS)
        throw new HttpError(400, 'bad_request', `limit: a whole number from 1 to ${MAX_SESSIONS}`);
      return maskingReport(o.recording, { since, until: now, connection: ctx.query.get('connection') || null, limit });
    },
    {
      doc: {
        summary:
          'What masking did over a period: masked results and rows per rule and column, most refused statements, columns only detectors masked',
        roles: ['admin', 'auditor'],
        query: {
          since: `string? - ${TIME_HINT} (default 7d)`,
          connection: 'string? - only this connection',
          limit: `integer? - read at most this many sessions, newest first (default ${DEFAULT_SESSIONS})`,
        },
      },
    },
  );
}

/** Reads the recordings of the sessions active in the window (newest first, up to `limit`). */
export async function maskingReport(
  recording: RecordingService,
  o: { since: number; until: number; connection: string | null; limit: number },
): Promise<MaskingReport> {
  const sessions = recording.repo.search({
    since: o.since,
    until: o.until,
    limit: o.limit + 1,
    ...(o.connection ? { connection: o.connection } : {}),
  });
  const limited = sessions.length > o.limit;
  const builder = new MaskingReportBuilder({ since: o.since, until: o.until });
  for (const s of sessions.slice(0, o.limit)) {
    if (!s.recording?.location || s.recording.state === 'deleted') continue;
    try {
      const read = await recording.read(s.id);
      if (read) builder.add(s.connection, read.result.events);
      else builder.skip();
    } catch {
      builder.skip();
    }
    // Reading is synchronous per recording: let other requests and sessions through in between.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return builder.build({ connection: o.connection, limited });
}

function requiredString(body: Record<string, unknown>, name: string): string {
  const v = body[name];
  if (typeof v !== 'string' || v.trim() === '') throw new HttpError(400, 'bad_request', `"${name}" is required`);
  return v;
}
