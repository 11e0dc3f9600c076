/**
 * HTTP API of the audit log, for auditors and admins (the console's Audit page):
 *
 *   GET /api/audit?type=&actor=&subject=&since=&until=&limit=   entries, newest first
 *   GET /api/audit/verify                                     the hash chain and signed checkpoints
 *   GET /api/audit/export?since=                              JSON lines with the chain fields (download)
 */
import { verifyEntries, type AuditEntry } from '../audit/chain.js';
import type { AuditLog } from '../audit/log.js';
import type { TrustedKey } from '../audit/signing.js';
import { parseTimeFilter, TIME_HINT } from '../recording/time-filter.js';
import { requireRole, type RoleModel } from './roles.js';
import { HttpError, type Router } from './router.js';

export interface AuditRoutesOptions {
  audit: AuditLog;
  /** The gateway's own checkpoint key, trusted when verifying. */
  trusted: TrustedKey[];
  roles: RoleModel;
  now: () => number;
}

const MAX_LIMIT = 1000;

export function registerAuditRoutes(router: Router, o: AuditRoutesOptions): void {
  const timeOf = (text: string | null, key: string): number | undefined => {
    if (text === null || text === '') return undefined;
    const t = parseTimeFilter(text, o.now());
    if (t === undefined) throw new HttpError(400, 'invalid_time', `${key}: expected ${TIME_HINT}`);
    return t;
  };

  router.add(
    'GET',
    '/api/audit',
    (ctx) => {
      requireRole(o.roles, ctx.identity!, ['auditor']);
      const q = ctx.query;
      const limitText = q.get('limit');
      const limit = limitText === null ? 200 : Number(limitText);
      if (!Number.isInteger(limit) || limit < 1) throw new HttpError(400, 'invalid_limit', 'limit must be a positive integer');
      const since = timeOf(q.get('since'), 'since');
      const until = timeOf(q.get('until'), 'until');
      const type = q.get('type') || undefined;
      const actor = q.get('actor') || undefined;
      const subject = q.get('subject') || undefined;
      // Streams the table in order and keeps the newest matches (bounded memory).
      const kept: AuditEntry[] = [];
      let matched = 0;
      for (const e of o.audit.entries(since !== undefined ? { at: since } : {})) {
        if (until !== undefined && e.at > until) break;
        if (type && !(e.type === type || e.type.startsWith(`${type}.`))) continue;
        if (actor && e.actor !== actor) continue;
        if (subject && e.subject !== subject) continue;
        matched++;
        kept.push(e);
        if (kept.length > Math.min(limit, MAX_LIMIT)) kept.shift();
      }
      return { entries: kept.reverse().map(entryJson), matched, head: o.audit.head() ?? null };
    },
    {
      doc: {
        summary: 'Audit log entries, newest first',
        roles: ['auditor', 'admin'],
        query: {
          type: 'string? - entry type or prefix (e.g. access, session.killed)',
          actor: 'string? - who did it',
          subject: 'string? - what it is about (a session, grant or request id)',
          since: `string? - ${TIME_HINT}`,
          until: `string? - ${TIME_HINT}`,
          limit: 'integer? - at most this many (default 200, max 1000)',
        },
      },
    },
  );

  router.add(
    'GET',
    '/api/audit/verify',
    (ctx) => {
      requireRole(o.roles, ctx.identity!, ['auditor']);
      const report = verifyEntries(o.audit.entries(), { trusted: o.trusted });
      return { ...report, checkedAt: new Date(o.now()).toISOString() };
    },
    { doc: { summary: "Verify the audit log's hash chain and signed checkpoints", roles: ['auditor', 'admin'] } },
  );

  router.add(
    'GET',
    '/api/audit/export',
    (ctx) => {
      requireRole(o.roles, ctx.identity!, ['auditor']);
      const since = timeOf(ctx.query.get('since'), 'since');
      const stamp = new Date(o.now()).toISOString().replace(/[:.]/g, '-');
      ctx.res.writeHead(200, {
        'content-type': 'application/x-ndjson; charset=utf-8',
        'content-disposition': `attachment; filename="jitgate-audit-${stamp}.jsonl"`,
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
      });
      let chunk = '';
      for (const e of o.audit.entries(since !== undefined ? { at: since } : {})) {
        chunk += `${JSON.stringify(e)}\n`;
        if (chunk.length > 64 * 1024) {
          ctx.res.write(chunk);
          chunk = '';
        }
      }
      ctx.res.end(chunk);
      return undefined;
    },
    {
      doc: {
        summary: 'Export audit entries as JSON lines (verifiable offline with `jitgate audit verify --file`)',
        roles: ['auditor', 'admin'],
        query: { since: `string? - ${TIME_HINT}` },
        produces: 'application/x-ndjson',
      },
    },
  );
}

function entryJson(e: AuditEntry) {
  return { ...e, at: new Date(e.at).toISOString() };
}
