/**
 * The gateway's HTTP port: operational endpoints now, the REST API / UI / MCP later (the API issue
 * may put a framework behind `fallback`).
 *
 *   GET /healthz  200 {"status":"ok"} while the process serves
 *   GET /readyz   200 {"status":"ready","details":{...}} | 503 {"status":"not_ready","reasons":[...],"details":{...}}
 *   GET /metrics  Prometheus text exposition; open, or only with `Authorization: Bearer <metrics.token>`
 *   anything else 404 {"error":"not_found",...} (405 for a wrong method on a known path)
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../obs/log.js';
import type { Metrics } from '../obs/metrics.js';

export interface Readiness {
  ok: boolean;
  /** Why not ready, as stable short codes or sentences (e.g. 'store_unreachable', 'draining'). */
  reasons: string[];
  /** What else is worth knowing whether ready or not (e.g. each backend's health); sent as `details`. */
  details?: Record<string, unknown>;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  metrics: Pick<Metrics, 'render' | 'contentType'>;
  /**
   * Who may read /metrics (default: anyone). `token` with no token configured refuses everyone, so
   * a production gateway never exposes its metrics by accident.
   */
  metricsAccess?: { auth: 'none' } | { auth: 'token'; token: string | undefined };
  /** Called on every /readyz; may be async. A throw counts as not ready. */
  ready: () => Readiness | Promise<Readiness>;
  logger: Logger;
  /**
   * Routes beyond the operational ones. Return true when the request was handled; false falls through
   * to 404. Errors become a 500 with a generic body.
   */
  fallback?: (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;
}

export interface HttpServerHandle {
  /** Base URL, e.g. `http://127.0.0.1:8080` (the real port when 0 was asked for). */
  address: string;
  host: string;
  port: number;
  server: Server;
  /** Stop accepting, finish in-flight requests (up to `graceMs`), then drop what remains. Idempotent. */
  close(graceMs?: number): Promise<void>;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** An error message can quote what the client sent (a name, an id): never more than this of it. */
const MAX_ERROR_MESSAGE_CHARS = 500;

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(status >= 400 ? cappedError(body) : body);
  res.writeHead(status, {
    'content-type': JSON_TYPE,
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServerHandle> {
  const { logger, metrics, ready } = options;
  let closing = false;

  const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => Promise<void> | void> = {
    '/healthz': (_req, res) => sendJson(res, 200, { status: 'ok' }),
    '/readyz': async (_req, res) => {
      let state: Readiness;
      try {
        state = await ready();
      } catch (err) {
        logger.warn({ err }, 'readiness check failed');
        state = { ok: false, reasons: ['readiness_check_failed'] };
      }
      if (closing && !state.reasons.includes('draining')) state = { ok: false, reasons: [...state.reasons, 'draining'] };
      const details = state.details ? { details: state.details } : {};
      if (state.ok) sendJson(res, 200, { status: 'ready', ...details });
      else sendJson(res, 503, { status: 'not_ready', reasons: state.reasons, ...details });
    },
    '/metrics': async (req, res) => {
      const refused = metricsRefusal(options.metricsAccess, req);
      if (refused) {
        sendJson(
          res,
          refused.status,
          { error: refused.error, message: refused.message },
          refused.status === 401 ? { 'www-authenticate': 'Bearer realm="metrics"' } : {},
        );
        return;
      }
      const text = await metrics.render();
      res.writeHead(200, {
        'content-type': metrics.contentType,
        'content-length': Buffer.byteLength(text),
        'cache-control': 'no-store',
      });
      res.end(res.req.method === 'HEAD' ? undefined : text);
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const pathname = pathOf(req.url);
    const route = routes[pathname];
    if (route) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendJson(
          res,
          405,
          { error: 'method_not_allowed', message: `${req.method ?? '?'} is not allowed on ${pathname}` },
          { allow: 'GET, HEAD' },
        );
        return;
      }
      await route(req, res);
      return;
    }
    if (options.fallback && (await options.fallback(req, res))) return;
    sendJson(res, 404, { error: 'not_found', message: `no route for ${req.method ?? '?'} ${pathname}` });
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.error({ err, method: req.method, path: pathOf(req.url) }, 'http request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal', message: 'internal error' });
      else res.destroy();
    });
  });
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;
  server.keepAliveTimeout = 5_000;
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      const where = `${options.host}:${options.port}`;
      const why = err.code === 'EADDRINUSE' ? 'is already in use' : err.code === 'EACCES' ? 'needs privileges' : 'cannot be bound';
      reject(Object.assign(new Error(`HTTP listener ${where} ${why} (${err.code ?? err.message})`), { code: err.code, cause: err }));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(options.port, options.host);
  });
  server.on('error', (err) => logger.error({ err }, 'http server error'));

  const bound = server.address() as AddressInfo;
  const urlHost = bound.family === 'IPv6' || bound.address.includes(':') ? `[${bound.address}]` : bound.address;
  const address = `http://${urlHost}:${bound.port}`;
  logger.info({ address }, 'http listener up');

  let closed: Promise<void> | undefined;
  const close = (graceMs = 5_000): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      closing = true;
      const timer = setTimeout(() => server.closeAllConnections(), graceMs);
      timer.unref();
      server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      server.closeIdleConnections();
    });
    return closed;
  };

  return { address, host: bound.address, port: bound.port, server, close };
}

function cappedError(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || !('message' in body) || typeof body.message !== 'string') return body;
  const m = body.message;
  return m.length <= MAX_ERROR_MESSAGE_CHARS
    ? body
    : { ...body, message: `${m.slice(0, MAX_ERROR_MESSAGE_CHARS)}…(${m.length} characters)` };
}

function metricsRefusal(
  access: HttpServerOptions['metricsAccess'],
  req: IncomingMessage,
): { status: 401 | 403; error: string; message: string } | undefined {
  if (!access || access.auth === 'none') return undefined;
  if (access.token === undefined) {
    return {
      status: 403,
      error: 'forbidden',
      message: 'metrics need a token: set metrics.token (or metrics.auth: none) in the configuration',
    };
  }
  const header = req.headers.authorization ?? '';
  const given = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
  // Compare digests: equal length, constant time, whatever was sent.
  const digest = (s: string) => createHash('sha256').update(s).digest();
  if (given === '' || !timingSafeEqual(digest(given), digest(access.token))) {
    return { status: 401, error: 'unauthenticated', message: 'metrics need Authorization: Bearer <metrics token>' };
  }
  return undefined;
}

function pathOf(url: string | undefined): string {
  if (!url) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
