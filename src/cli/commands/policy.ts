/**
 * `jitgate policy test --connection C --user U [--groups g,...] "SQL"`: asks the running gateway
 * (POST /api/policy/test, as the signed-in admin, approver or auditor) what it would do with the
 * statement — allowed, refused, held, and which result columns would be masked and why — without
 * running it. Readable text by default, `--json` for machines.
 */
import { formatDuration } from '../../core/duration.js';
import type { ColumnExplanation, StatementMaskExplanation } from '../../core/types.js';
import type { GroupsSource, PolicyTestResult } from '../../session/explain.js';
import { apiClient } from '../api-client.js';
import { formatTime } from '../format.js';
import { CliError, type CliIo } from '../io.js';

export interface PolicyTestOptions {
  connection?: string;
  user?: string;
  /** Comma-separated groups; false: --no-groups (stated: none). */
  groups?: string | false;
  json?: boolean;
}

export async function policyTestCommand(io: CliIo, statement: string | undefined, opts: PolicyTestOptions): Promise<void> {
  if (!opts.connection) throw new CliError('--connection: which connection the statement would run on');
  if (!opts.user) throw new CliError('--user: whose statement it is (their groups scope the rules)');
  if (!statement?.trim())
    throw new CliError('give the statement to test, e.g. jitgate policy test --connection C --user U "DELETE FROM t"');
  const groups =
    opts.groups === undefined
      ? undefined
      : opts.groups === false
        ? []
        : opts.groups
            .split(',')
            .map((g) => g.trim())
            .filter((g) => g !== '');
  if (opts.groups && groups?.length === 0)
    throw new CliError('--groups: name at least one group (or --no-groups for a person in no group)');
  const api = await apiClient(io);
  const result = await api.post<PolicyTestResult>('/api/policy/test', {
    connection: opts.connection,
    user: opts.user,
    statement,
    ...(groups ? { groups } : {}),
  });
  io.out(opts.json ? JSON.stringify(result, null, 2) + '\n' : formatPolicyTest(result));
}

export function formatPolicyTest(r: PolicyTestResult): string {
  const lines: string[] = [];
  lines.push(`connection: ${r.connection} (${r.protocol})`);
  lines.push(`user:       ${r.user}, groups ${r.groups.length ? r.groups.join(',') : '(none)'} (${groupsSource(r.groupsFrom)})`);
  lines.push(`statement:  ${r.argv ? r.argv.map((a) => JSON.stringify(a)).join(' ') : r.statement}`);
  lines.push('');
  if (r.outcome === 'refused' && r.refused) {
    const by =
      r.refused.by === 'guardrail'
        ? `guardrail "${r.refused.rule}"`
        : r.refused.by === 'masking'
          ? 'masking'
          : 'a protection every session gets';
    lines.push(`REFUSED by ${by} (${r.refused.reasons.join(', ')})`);
    lines.push(`  the client would get: ${r.refused.message}`);
  } else if (r.outcome === 'held' && r.held) {
    const h = r.held;
    lines.push(`HELD for review by rule "${h.rule}" (${h.reasons.join(', ')}): ${h.what}${h.reason ? ` — ${h.reason}` : ''}`);
    lines.push(
      `  approvers: members of ${h.approvers.join(', ')}; ${h.approvals} approval${h.approvals === 1 ? '' : 's'} needed; refused if undecided after ${formatDuration(h.timeoutMs)}`,
    );
  } else {
    lines.push('ALLOWED');
  }
  lines.push('');
  lines.push(...maskingLines(r));
  if (r.notes.length) {
    lines.push('', 'notes:');
    for (const n of r.notes) lines.push(`  - ${n}`);
  }
  return lines.join('\n') + '\n';
}

function maskingLines(r: PolicyTestResult): string[] {
  const m = r.masking;
  if (!m) return ['masking: no masking rule or detector applies to this user on this connection'];
  const lines = [
    `masking: rules ${m.rules.length ? m.rules.join(', ') : '(none)'}; detectors ${m.detectors.length ? m.detectors.join(', ') : '(none)'}`,
  ];
  if (m.keys) {
    for (const k of m.keys) lines.push(`  key ${JSON.stringify(k.key)}: values masked by rule "${k.rule}" (${k.strategy})`);
    for (const f of m.fields ?? [])
      lines.push(`  hash fields ${JSON.stringify(f.pattern)}: values masked by rule "${f.rule}" (${f.strategy})`);
    if (m.keys.length === 0 && (m.fields ?? []).length === 0) lines.push('  no key this command touches is masked by a rule');
  }
  const statements = m.statements ?? [];
  statements.forEach((s, i) => lines.push(...statementLines(s, statements.length > 1 ? i + 1 : undefined)));
  return lines;
}

function statementLines(s: StatementMaskExplanation, n: number | undefined): string[] {
  const lines: string[] = [];
  const title = n === undefined ? '  result columns:' : `  statement ${n}, result columns:`;
  if (s.columns === null) lines.push(`${title} none (no rows come back)`);
  else if (s.columns === 'unknown') {
    lines.push(
      `${title} not predictable; each is masked by the origin the server reports${s.fallback ? `, else as rule "${s.fallback.rule}" (${s.fallback.reason})` : ''}`,
    );
  } else {
    lines.push(title);
    for (const c of s.columns) lines.push(`    ${columnLine(c)}`);
  }
  if (s.reads.length > 0) {
    const reads = [...new Set(s.reads.map((x) => `${x.source} (rule "${x.rule}")`))].join(', ');
    lines.push(`  reads masked data: ${reads}; errors and notices of this statement are scrubbed`);
  }
  return lines;
}

function columnLine(c: ColumnExplanation): string {
  const name = `${c.index + 1}. ${c.name ?? '?column?'}`;
  const path = c.sources.length ? `${c.derived ? 'computed from' : 'from'} ${c.sources.join(', ')}` : 'no source column';
  if (!c.mask) return `${name}: clear (${path})`;
  return `${name}: MASKED by rule "${c.mask.rule}" (${c.mask.reason}, ${c.mask.strategy}); ${path}`;
}

function groupsSource(from: GroupsSource): string {
  if (from.kind === 'stated') return 'as stated';
  if (from.kind === 'directory') return `from the ${from.issuer}'s users`;
  return `from their sign-in at ${formatTime(from.at)} via ${from.issuer}`;
}
