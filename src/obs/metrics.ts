/**
 * Prometheus metrics, one Registry per gateway instance (never prom-client's global registry, so
 * several gateways in one process — tests — do not collide).
 *
 * Hot-path note: `counter.inc({ protocol, connection }, n)` hashes the labels on every call. A session
 * should bind its children once (`metrics.bytesTotal.labels({ ... })`) and call `.inc(n)` on those.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type ByteDirection = 'client_to_backend' | 'backend_to_client';

export interface Metrics {
  readonly registry: Registry;
  /** Sessions opened (after successful authentication and backend connect). */
  readonly sessionsTotal: Counter<'protocol' | 'connection'>;
  /** Sessions currently open. */
  readonly sessionsActive: Gauge<'protocol' | 'connection'>;
  /** Statements seen on the data path (simple queries, Parse messages, commands). */
  readonly statementsTotal: Counter<'protocol' | 'connection'>;
  /** Bytes relayed; label `direction` is a ByteDirection. */
  readonly bytesTotal: Counter<'protocol' | 'connection' | 'direction'>;
  /** Failed client authentications; `reason` is a stable code (e.g. bad_token, expired, unknown_connection). */
  readonly authFailuresTotal: Counter<'protocol' | 'reason'>;
  /** Time to open and authenticate a backend connection. */
  readonly backendConnectSeconds: Histogram<'protocol' | 'connection'>;
  /** 1 when the last login to a connection's backend reached it, 0 when it failed (unset before any). */
  readonly backendUp: Gauge<'connection'>;
  /** Logins that could not reach a connection's backend (refused, unreachable, setup failed). */
  readonly backendConnectFailuresTotal: Counter<'connection'>;
  /** Content-Type of `render()` output. */
  readonly contentType: string;
  /** Prometheus text exposition of every metric in this registry. */
  render(): Promise<string>;
}

export interface MetricsOptions {
  /** Collect process and Node.js runtime metrics (default true). */
  defaultMetrics?: boolean;
  /** Labels added to every series (e.g. `{ instance: 'gw-1' }`). */
  defaultLabels?: Record<string, string>;
}

export const BACKEND_CONNECT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.defaultLabels) registry.setDefaultLabels(options.defaultLabels);
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });

  const registers = [registry];
  const sessionsTotal = new Counter({
    name: 'jitgate_sessions_total',
    help: 'Data sessions opened through the gateway.',
    labelNames: ['protocol', 'connection'] as const,
    registers,
  });
  const sessionsActive = new Gauge({
    name: 'jitgate_sessions_active',
    help: 'Data sessions currently open.',
    labelNames: ['protocol', 'connection'] as const,
    registers,
  });
  const statementsTotal = new Counter({
    name: 'jitgate_statements_total',
    help: 'Statements seen on the data path.',
    labelNames: ['protocol', 'connection'] as const,
    registers,
  });
  const bytesTotal = new Counter({
    name: 'jitgate_bytes_total',
    help: 'Bytes relayed between clients and backends (direction: client_to_backend or backend_to_client).',
    labelNames: ['protocol', 'connection', 'direction'] as const,
    registers,
  });
  const authFailuresTotal = new Counter({
    name: 'jitgate_auth_failures_total',
    help: 'Client authentication failures by reason.',
    labelNames: ['protocol', 'reason'] as const,
    registers,
  });
  const backendConnectSeconds = new Histogram({
    name: 'jitgate_backend_connect_seconds',
    help: 'Time to connect to and authenticate with a backend.',
    labelNames: ['protocol', 'connection'] as const,
    buckets: BACKEND_CONNECT_BUCKETS,
    registers,
  });

  const backendUp = new Gauge({
    name: 'jitgate_backend_up',
    help: "1 when the last session's login reached the connection's backend, 0 when it failed.",
    labelNames: ['connection'] as const,
    registers,
  });
  const backendConnectFailuresTotal = new Counter({
    name: 'jitgate_backend_connect_failures_total',
    help: "Sessions that could not reach the connection's backend (refused, unreachable, login or setup failed).",
    labelNames: ['connection'] as const,
    registers,
  });

  return {
    registry,
    sessionsTotal,
    sessionsActive,
    statementsTotal,
    bytesTotal,
    authFailuresTotal,
    backendConnectSeconds,
    backendUp,
    backendConnectFailuresTotal,
    contentType: registry.contentType,
    render: () => registry.metrics(),
  };
}
