/**
 * HTTP API of the audit log, for auditors and admins (the console's Audit page):
 *
 *   GET /api/audit?type=&actor=&subject=&target=&since=&until=&limit=   entries, newest first
 *   GET /api/audit/verify                       the hash chain and signed checkpoints
 *   GET /api/audit/export?format=&<filters>     a download of the matching entries, oldest first:
 *                                               jsonl (default; with the chain fields, verifiable
 *                                               offline when unfiltered), json (an array) or csv
 */
import { verifyEntriesAsync, type AuditEntry } from '../audit/chain.js';
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
const EXPORT_FORMATS = ['jsonl', 'json', 'csv'] as const;
type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Which entries a listing or export keeps (all given conditions hold). */
interface AuditFilter {
  since?: number;
  until?: number;
  /** An entry type or a prefix of it at a dot (`access`, `access.request`). */
  type?: string;
  actor?: string;
  subject?: string;
  /** Whom or what it is about: the subject (or the start of its id), or the user, connection or session it names. */
  target?: string;
}

function matches(e: AuditEntry, f: AuditFilter): boolean {
  if (f.type && !(e.type === f.type || e.type.startsWith(`${f.type}.`))) return false;
  if (f.actor && e.actor !== f.actor) return false;
  if (f.subject && e.subject !== f.subject) return false;
  if (f.target) {
    const d = e.data as Record<string, unknown>;
    const named = [d.user, d.connection, d.session, d.requestId].some((v) => v === f.target);
    if (!named && !(e.subject !== null && e.subject.startsWith(f.target))) return false;
  }
  return true;
}

export function registerAuditRoutes(router: Router, o: AuditRoutesOptions): void {
  const timeOf = (text: string | null, key: string): number | undefined => {
    if (text === null || text === '') return undefined;
    const t = parseTimeFilter(text, o.now());
    if (t === undefined) throw new HttpError(400, 'invalid_time', `${key}: expected ${TIME_HINT}`);
    return t;
  };
  const filterOf = (q: URLSearchParams): AuditFilter => {
    const f: AuditFilter = {};
    const since = timeOf(q.get('since'), 'since');
    const until = timeOf(q.get('until'), 'until');
    if (since !== undefined) f.since = since;
    if (until !== undefined) f.until = until;
    for (const key of ['type', 'actor', 'subject', 'target'] as const) {
      const v = q.get(key)?.trim();
      if (v) f[key] = v;
    }
    return f;
  };
  /** The matching entries, oldest first, read as a stream. */
  async function* matching(f: AuditFilter): AsyncGenerator<AuditEntry> {
    for await (const e of o.audit.entries(f.since !== undefined ? { at: f.since } : {})) {
      if (f.until !== undefined && e.at > f.until) return;
      if (matches(e, f)) yield e;
    }
  }

  router.add(
    'GET',
    '/api/audit',
    async (ctx) => {
      requireRole(o.roles, ctx.identity!, ['auditor']);
      const q = ctx.query;
      const limitText = q.get('limit');
      const limit = limitText === null ? 200 : Number(limitText);
      if (!Number.isInteger(limit) || limit < 1) throw new HttpError(400, 'invalid_limit', 'limit must be a positive integer');
      const filter = filterOf(q);
      // Streams the table in order and keeps the newest matches (bounded memory).
      const kept: AuditEntry[] = [];
      let matched = 0;
      for await (const e of matching(filter)) {
        matched++;
        kept.push(e);
        if (kept.length > Math.min(limit, MAX_LIMIT)) kept.shift();
      }
      return { entries: kept.reverse().map(entryJson), matched, head: (await o.audit.head()) ?? null };
    },
    {
      doc: {
        summary: 'Audit log entries, newest first',
        roles: ['auditor', 'admin'],
        query: {
          type: 'string? - entry type or prefix (e.g. access, session.killed)',
          actor: 'string? - who did it',
          subject: 'string? - what it is about (a session, grant or request id)',
          target: 'string? - whom or what it is about: the start of the subject id, or the user, connection or session named',
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
    async (ctx) => {
      requireRole(o.roles, ctx.identity!, ['auditor']);
      const report = await verifyEntriesAsync(o.audit.entries(), { trusted: o.trusted });
      return { ...report, checkedAt: new Date(o.now()).toISOString() };
    },
    { doc: { summary: "Verify the audit log's hash chain and signed checkpoints", roles: ['auditor', 'admin'] } },
  );

  router.add(
    'GET',
    '/api/audit/export',
    async (ctx) => {
      requireRole(o.roles, ctx.identity!, ['auditor']);
      const format = (ctx.query.get('format') || 'jsonl') as ExportFormat;
      if (!EXPORT_FORMATS.includes(format))
        throw new HttpError(400, 'invalid_format', `format must be one of ${EXPORT_FORMATS.join(', ')}`);
      const filter = filterOf(ctx.query);
      const stamp = new Date(o.now()).toISOString().replace(/[:.]/g, '-');
      ctx.res.writeHead(200, {
        'content-type': `${EXPORT_TYPES[format]}; charset=utf-8`,
        'content-disposition': `attachment; filename="jitgate-audit-${stamp}.${format}"`,
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
      });
      let chunk = format === 'csv' ? `${CSV_COLUMNS.join(',')}\r\n` : format === 'json' ? '[' : '';
      let first = true;
      for await (const e of matching(filter)) {
        if (format === 'jsonl') chunk += `${JSON.stringify(e)}\n`;
        else if (format === 'json') chunk += `${first ? '\n' : ',\n'}${JSON.stringify(entryJson(e))}`;
        else chunk += csvRow(e);
        first = false;
        if (chunk.length > 64 * 1024) {
          ctx.res.write(chunk);
          chunk = '';
        }
      }
      if (format === 'json') chunk += first ? ']\n' : '\n]\n';
      ctx.res.end(chunk);
      return undefined;
    },
    {
      doc: {
        summary:
          'Export audit entries: JSON lines with the chain fields (verifiable offline with `jitgate audit verify --file` when unfiltered), a JSON array, or CSV',
        roles: ['auditor', 'admin'],
        query: {
          format: 'string? - jsonl (default), json or csv',
          type: 'string?',
          actor: 'string?',
          subject: 'string?',
          target: 'string?',
          since: `string? - ${TIME_HINT}`,
          until: `string? - ${TIME_HINT}`,
        },
        produces: 'application/x-ndjson, application/json, text/csv',
      },
    },
  );
}

const EXPORT_TYPES: Record<ExportFormat, string> = { jsonl: 'application/x-ndjson', json: 'application/json', csv: 'text/csv' };
const CSV_COLUMNS = ['seq', 'at', 'type', 'actor', 'subject', 'data', 'hash'];

/** One entry as a CSV line (RFC 4180 quoting; cells that a spreadsheet would run as a formula are prefixed with '). */
function csvRow(e: AuditEntry): string {
  const cells = [String(e.seq), new Date(e.at).toISOString(), e.type, e.actor, e.subject ?? '', JSON.stringify(e.data), e.hash];
  return `${cells.map(csvCell).join(',')}\r\n`;
}

function csvCell(v: string): string {
  const safe = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

function entryJson(e: AuditEntry) {
  return { ...e, at: new Date(e.at).toISOString() };
}
