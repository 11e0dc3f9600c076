import { register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetrics } from './metrics.js';

describe('createMetrics', () => {
  it('exposes the gateway metrics with their labels in Prometheus text format', async () => {
    const m = createMetrics();
    const labels = { protocol: 'postgres', connection: 'demo' };
    m.sessionsTotal.inc(labels);
    m.sessionsActive.inc(labels);
    m.statementsTotal.inc(labels, 3);
    m.bytesTotal.inc({ ...labels, direction: 'client_to_backend' }, 120);
    m.bytesTotal.labels({ ...labels, direction: 'backend_to_client' }).inc(4096);
    m.authFailuresTotal.inc({ protocol: 'postgres', reason: 'bad_token' });
    const end = m.backendConnectSeconds.startTimer(labels);
    end();

    const text = await m.render();
    expect(m.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(text).toContain('# TYPE jitgate_sessions_total counter');
    expect(text).toContain('jitgate_sessions_total{protocol="postgres",connection="demo"} 1');
    expect(text).toContain('# TYPE jitgate_sessions_active gauge');
    expect(text).toContain('jitgate_sessions_active{protocol="postgres",connection="demo"} 1');
    expect(text).toContain('jitgate_statements_total{protocol="postgres",connection="demo"} 3');
    expect(text).toContain('jitgate_bytes_total{protocol="postgres",connection="demo",direction="client_to_backend"} 120');
    expect(text).toContain('jitgate_bytes_total{protocol="postgres",connection="demo",direction="backend_to_client"} 4096');
    expect(text).toContain('jitgate_auth_failures_total{protocol="postgres",reason="bad_token"} 1');
    expect(text).toContain('# TYPE jitgate_backend_connect_seconds histogram');
    expect(text).toContain('jitgate_backend_connect_seconds_count{protocol="postgres",connection="demo"} 1');
    // Default process metrics.
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
  });

  it('keeps one registry per gateway, apart from the global one', async () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics({ defaultMetrics: false });
    a.sessionsTotal.inc({ protocol: 'postgres', connection: 'x' });
    expect(await b.render()).not.toContain('connection="x"');
    expect(await globalRegistry.metrics()).not.toContain('jitgate_');
    expect(await a.render()).not.toContain('process_cpu');
  });
});
