import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../obs/log.js';
import { createMetrics } from '../obs/metrics.js';
import { startHttpServer, type HttpServerHandle, type Readiness } from './http.js';

const logger = createLogger({ level: 'silent' });
const handles: HttpServerHandle[] = [];

afterEach(async () => {
  await Promise.all(handles.splice(0).map((h) => h.close()));
});

async function start(
  ready: () => Readiness | Promise<Readiness> = () => ({ ok: true, reasons: [] }),
  extra: Partial<Parameters<typeof startHttpServer>[0]> = {},
) {
  const metrics = createMetrics();
  const h = await startHttpServer({ host: '127.0.0.1', port: 0, metrics, ready, logger, ...extra });
  handles.push(h);
  return { h, metrics };
}

/** A raw node:http request (no keep-alive, no client-side magic). */
function request(url: string, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('startHttpServer', () => {
  it('reports its real address and answers /healthz', async () => {
    const { h } = await start();
    expect(h.address).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(h.port).toBeGreaterThan(0);
    const res = await request(`${h.address}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(res.body)).toEqual({ status: 'ok' });
    expect((await request(`${h.address}/healthz?probe=1`)).status).toBe(200);
    const head = await request(`${h.address}/healthz`, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('answers /readyz with 200 or 503 and the reasons', async () => {
    let state: Readiness = { ok: true, reasons: [] };
    const { h } = await start(() => state);
    let res = await request(`${h.address}/readyz`);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: 'ready' });

    state = { ok: false, reasons: ['store_unreachable', 'postgres_listener_down'] };
    res = await request(`${h.address}/readyz`);
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toEqual({ status: 'not_ready', reasons: ['store_unreachable', 'postgres_listener_down'] });
  });

  it('treats a failing or async readiness check correctly', async () => {
    const failing = await start(() => {
      throw new Error('sqlite: database is locked');
    });
    const res = await request(`${failing.h.address}/readyz`);
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toEqual({ status: 'not_ready', reasons: ['readiness_check_failed'] });
    expect(res.body).not.toContain('locked');

    const asyncReady = await start(async () => ({ ok: false, reasons: ['draining'] }));
    expect((await request(`${asyncReady.h.address}/readyz`)).status).toBe(503);
  });

  it('serves Prometheus text on /metrics', async () => {
    const { h, metrics } = await start();
    metrics.sessionsTotal.inc({ protocol: 'postgres', connection: 'demo' });
    const res = await request(`${h.address}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(res.body).toContain('jitgate_sessions_total{protocol="postgres",connection="demo"} 1');
    expect(res.body).toContain('# TYPE jitgate_bytes_total counter');
    expect(res.body).toContain('process_resident_memory_bytes');
  });

  it('refuses /metrics when it wants a token and none is configured (fail closed)', async () => {
    const { h } = await start(undefined, { metricsAccess: { auth: 'token', token: undefined } });
    const res = await request(`${h.address}/metrics`);
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'forbidden', message: expect.stringContaining('set metrics.token') });
    expect(res.body).not.toContain('jitgate_sessions_total');
  });

  it('answers unknown paths with 404 JSON and wrong methods with 405', async () => {
    const { h } = await start();
    const res = await request(`${h.address}/nope`);
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(res.body)).toMatchObject({ error: 'not_found' });

    const post = await request(`${h.address}/metrics`, 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('hands other paths to the fallback and hides its errors behind a 500', async () => {
    const { h } = await start(undefined, {
      fallback: (req, res) => {
        if (req.url === '/api/hello') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('hi');
          return true;
        }
        if (req.url === '/api/boom') throw new Error('secret internals');
        return false;
      },
    });
    expect((await request(`${h.address}/api/hello`)).body).toBe('hi');
    const boom = await request(`${h.address}/api/boom`);
    expect(boom.status).toBe(500);
    expect(boom.body).not.toContain('secret internals');
    expect((await request(`${h.address}/api/other`)).status).toBe(404);
  });

  it('fails clearly when the port is taken, and closes idempotently', async () => {
    const { h } = await start();
    await expect(
      startHttpServer({
        host: '127.0.0.1',
        port: h.port,
        metrics: createMetrics({ defaultMetrics: false }),
        ready: () => ({ ok: true, reasons: [] }),
        logger,
      }),
    ).rejects.toThrow(`HTTP listener 127.0.0.1:${h.port} is already in use (EADDRINUSE)`);
    await Promise.all([h.close(), h.close()]);
    await expect(request(`${h.address}/healthz`)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('closes while a keep-alive client is connected', async () => {
    const { h } = await start();
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      http
        .get(`${h.address}/healthz`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve());
        })
        .on('error', reject);
    });
    const t0 = Date.now();
    await h.close();
    expect(Date.now() - t0).toBeLessThan(2_000);
    agent.destroy();
  });
});
