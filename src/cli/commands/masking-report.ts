/**
 * `jitgate masking report [--since 7d] [--connection C] [--json]`: what masking did over a period,
 * from the session recordings, through the running gateway (GET /api/masking/report, as the
 * signed-in admin or auditor): masked results and rows per rule and column, the statements refused
 * as masking_copy / masking_unprovable most often, and columns only content detectors masked.
 */
import type { MaskingReport } from '../../recording/masking-report.js';
import { DETECTORS_NOTE } from '../../session/explain.js';
import { apiClient } from '../api-client.js';
import { formatTime, table } from '../format.js';
import { CliError, type CliIo } from '../io.js';

export interface MaskingReportOptions {
  since?: string;
  connection?: string;
  limit?: string;
  json?: boolean;
}

export async function maskingReportCommand(io: CliIo, opts: MaskingReportOptions): Promise<void> {
  const q = new URLSearchParams();
  q.set('since', opts.since ?? '7d');
  if (opts.connection) q.set('connection', opts.connection);
  if (opts.limit !== undefined) {
    if (!/^\d+$/.test(opts.limit)) throw new CliError('--limit: a whole number of sessions');
    q.set('limit', opts.limit);
  }
  const api = await apiClient(io);
  const report = await api.get<MaskingReport>(`/api/masking/report?${q.toString()}`);
  io.out(opts.json ? JSON.stringify(report, null, 2) + '\n' : formatMaskingReport(report));
}

export function formatMaskingReport(r: MaskingReport): string {
  const out: string[] = [];
  out.push(
    `masking from ${formatTime(r.since)} to ${formatTime(r.until)}${r.connection ? ` on ${r.connection}` : ''}: ` +
      `${r.sessions.read} session recording${r.sessions.read === 1 ? '' : 's'} read` +
      (r.sessions.unreadable ? `, ${r.sessions.unreadable} unreadable` : '') +
      (r.sessions.limited ? ' (the newest only: raise --limit for more)' : ''),
    '',
  );
  out.push('masked columns (per rule and column):');
  out.push(
    r.columns.length
      ? indent(
          table(
            ['RULE', 'REASON', 'CONNECTION', 'COLUMN', 'RESULTS', 'ROWS'],
            r.columns.map((c) => [c.rule, c.reason, c.connection, c.column, String(c.results), String(c.rows)]),
          ),
        )
      : '  none\n',
  );
  out.push('statements refused by masking, most often first:');
  out.push(
    r.refusals.length
      ? indent(
          table(
            ['COUNT', 'REASON', 'CONNECTION', 'LAST', 'STATEMENT'],
            r.refusals.map((s) => [String(s.count), s.reason, s.connection, formatTime(s.lastAt), s.statement]),
          ),
        )
      : '  none\n',
  );
  out.push('columns only content detectors masked (candidates for a masking rule):');
  out.push(
    r.detectorOnly.length
      ? indent(
          table(
            ['CONNECTION', 'COLUMN', 'DETECTORS', 'RESULTS', 'ROWS'],
            r.detectorOnly.map((c) => [c.connection, c.column, c.detectors.join(','), String(c.results), String(c.rows)]),
          ),
        )
      : '  none\n',
  );
  out.push(`note: ${DETECTORS_NOTE}\n`);
  return out.join('\n');
}

function indent(text: string): string {
  return text.replace(/^(?=.)/gm, '  ');
}
