/**
 * Metrics that show whether approvals are a bottleneck (issue 17): what waits now, how long decisions
 * take, and what expired with nobody deciding. One set for both kinds of waiting item: access
 * requests (`kind="access"`, labelled with their policy) and statements held for review
 * (`kind="statement"`, labelled with their review rule).
 *
 * The waiting gauges are read from the store at scrape time (a COUNT per kind), so they are right
 * after a restart and across gateway instances on one store; nothing runs on the data path.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { AccessEvent, AccessEvents } from './events.js';

export type ApprovalKind = 'access' | 'statement';
export type ApprovalOutcome = 'approved' | 'denied' | 'withdrawn' | 'expired';

/** One waiting item as the metrics see it. */
export interface WaitingItem {
  kind: ApprovalKind;
  connection: string;
  /** The policy (access requests) or review rule (statements) that made it wait. */
  policy: string;
  createdAt: number;
}

export interface ApprovalMetricsOptions {
  registry: Registry;
  /** Pending access requests per connection, read at scrape time. */
  pendingRequests: () => Promise<Array<{ connection: string; count: number }>>;
  /** Statements held for review per connection, read at scrape time. */
  heldStatements: () => Array<{ connection: string; count: number }>;
}

/** Seconds from asking to a decision: from a minute to a day. */
export const DECISION_BUCKETS = [10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14_400, 43_200, 86_400];

export class ApprovalMetrics {
  private readonly decisionSeconds: Histogram<'kind' | 'policy' | 'outcome'>;
  private readonly expiredTotal: Counter<'kind' | 'connection' | 'policy'>;

  constructor(o: ApprovalMetricsOptions) {
    const registers = [o.registry];
    type Rows = Array<{ connection: string; count: number }>;
    const fill = async (gauge: Gauge<'connection'>, rows: () => Rows | Promise<Rows>) => {
      const read = await rows();
      gauge.reset();
      for (const { connection, count } of read) gauge.set({ connection }, count);
    };
    const pending: Gauge<'connection'> = new Gauge({
      name: 'jitgate_access_requests_pending',
      help: 'Access requests waiting for approval.',
      labelNames: ['connection'] as const,
      registers,
      collect: () => fill(pending, o.pendingRequests),
    });
    const held: Gauge<'connection'> = new Gauge({
      name: 'jitgate_statements_held',
      help: 'Statements held for review, waiting for approval.',
      labelNames: ['connection'] as const,
      registers,
      collect: () => fill(held, o.heldStatements),
    });
    this.decisionSeconds = new Histogram({
      name: 'jitgate_approval_decision_seconds',
      help: 'Time from an access request or held statement to its decision (kind: access or statement; policy: policy or review rule; outcome: approved, denied, withdrawn, expired).',
      labelNames: ['kind', 'policy', 'outcome'] as const,
      buckets: DECISION_BUCKETS,
      registers,
    });
    this.expiredTotal = new Counter({
      name: 'jitgate_approvals_expired_total',
      help: 'Access requests and held statements that expired with no decision.',
      labelNames: ['kind', 'connection', 'policy'] as const,
      registers,
    });
  }

  /** A waiting item was decided (or expired, or withdrawn) at `at`. */
  decided(item: WaitingItem, outcome: ApprovalOutcome, at: number): void {
    this.decisionSeconds.observe({ kind: item.kind, policy: item.policy, outcome }, Math.max(0, at - item.createdAt) / 1000);
    if (outcome === 'expired') this.expiredTotal.inc({ kind: item.kind, connection: item.connection, policy: item.policy });
  }
}

/** Access requests' decisions into the metrics (requests granted at once by policy never waited). */
export function watchAccessDecisions(events: AccessEvents, metrics: ApprovalMetrics): () => void {
  return events.on((e) => {
    const outcome = accessOutcome(e);
    const r = outcome && 'request' in e ? e.request : null;
    if (!outcome || !r) return;
    metrics.decided({ kind: 'access', connection: r.connection, policy: r.policy, createdAt: r.createdAt }, outcome, e.at);
  });
}

function accessOutcome(e: AccessEvent): ApprovalOutcome | undefined {
  switch (e.type) {
    case 'request.approved':
      return e.final ? 'approved' : undefined;
    case 'request.denied':
      return 'denied';
    case 'request.withdrawn':
      return 'withdrawn';
    case 'request.expired':
      return 'expired';
    default:
      return undefined;
  }
}
