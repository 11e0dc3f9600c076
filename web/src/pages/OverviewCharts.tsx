/** The Overview's charts, loaded on demand with the charting library (see Overview.tsx). */
import { span } from '../ago';
import { Bars, type Row } from '../charts';
import type { Stats, Waits } from './Overview';

export default function OverviewCharts({ stats }: { stats: Stats }) {
  const when = stats.window === '24h' ? 'in the last 24 hours' : 'in the last 7 days';
  const waitRows: Row[] = stats.approvals.requests.buckets.map((b, i) => ({
    bucket: b.label,
    requests: b.count,
    statements: stats.approvals.statements.buckets[i]?.count ?? 0,
  }));
  const anyWait = stats.approvals.requests.count + stats.approvals.statements.count > 0;
  return (
    <div className="charts">
      <Bars
        testId="chart-connections"
        title="Sessions and statements per connection"
        description={`Sessions started ${when}, open or ended, and the statements they ran.`}
        rows={stats.connections.map((c) => ({ connection: c.connection, sessions: c.sessions, statements: c.statements }))}
        category="connection"
        categoryLabel="Connection"
        series={[
          { key: 'sessions', label: 'Sessions', pattern: 'solid' },
          { key: 'statements', label: 'Statements', pattern: 'hatch' },
        ]}
        empty={`No sessions ${when}.`}
      />
      <Bars
        testId="chart-refusals"
        title="Refused statements by guardrail"
        description={`Statements a guardrail refused ${when}.`}
        rows={stats.refusals.map((r) => ({ rule: r.rule, refused: r.count }))}
        category="rule"
        categoryLabel="Guardrail"
        series={[{ key: 'refused', label: 'Refused', pattern: 'solid' }]}
        empty={`No statement was refused ${when}.`}
      />
      <Bars
        testId="chart-holds"
        title="Held statements by review rule"
        description={`Statements held for approval ${when}, whatever their outcome.`}
        rows={stats.holds.map((h) => ({ rule: h.rule, held: h.count }))}
        category="rule"
        categoryLabel="Review rule"
        series={[{ key: 'held', label: 'Held', pattern: 'dots' }]}
        empty={`No statement was held ${when}.`}
      />
      <Bars
        testId="chart-approval-time"
        title="Time to approval"
        description={
          <>
            Access requests: {waitSummary(stats.approvals.requests)}. Held statements: {waitSummary(stats.approvals.statements)}.
          </>
        }
        rows={anyWait ? waitRows : []}
        category="bucket"
        categoryLabel="Waited"
        series={[
          { key: 'requests', label: 'Access requests', pattern: 'solid' },
          { key: 'statements', label: 'Held statements', pattern: 'hatch' },
        ]}
        empty={`Nothing was approved by a person ${when}.`}
      />
    </div>
  );
}

function waitSummary(w: Waits): string {
  if (w.count === 0) return 'none approved';
  return `${count(w.count, 'approval')}, median ${span(w.medianMs ?? 0)}, 90% within ${span(w.p90Ms ?? 0)}`;
}

function count(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
