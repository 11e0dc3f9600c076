/**
 * A small JSON router for the gateway's HTTP API. Routes declare who may call them; the
 * authenticator (identity module) turns a request's credentials into an Identity. Errors thrown as
 * HttpError reach the client with their status and code; anything else becomes a generic 500.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '../core/types.js';
import { sendJson } from './http.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Extra response headers (e.g. Retry-After on 429). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Parsed JSON body (undefined when there is none). */
  body: unknown;
  /** The caller; null only on routes with `auth: 'none'`. */
  identity: Identity | null;
}

/** Returns the JSON response body, or undefined after writing the response itself. */
export type RouteHandler = (ctx: RouteContext) => unknown | Promise<unknown>;

export type Authenticator = (req: IncomingMessage) => Promise<Identity | null> | Identity | null;

/** Handles a whole request itself (see Router.mount). */
export type RawHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

/** Who may call a route, as documented in the OpenAPI document (the handler enforces it). */
export type Role = 'anyone' | 'requester' | 'approver' | 'auditor' | 'admin' | 'owner';

/**
 * A route's description for /api/openapi.json, written where the route is registered. Body and
 * query fields use a tiny type language: `string`, `integer`, `boolean`, `string[]`, `object`, with a
 * trailing `?` for optional, then ` - description`.
 */
export interface RouteDoc {
  summary: string;
  /** Who may call it; several mean any of them (e.g. the session's owner or an auditor). */
  roles?: Role[];
  query?: Record<string, string>;
  body?: Record<string, string>;
  /** Response media type when not JSON (e.g. text/event-stream). */
  produces?: string;
  /** A redirect or page rather than a JSON answer. */
  redirect?: boolean;
}

export interface RouteOptions {
  auth?: 'required' | 'none';
  status?: number;
  doc?: RouteDoc;
}

export interface RouteInfo {
  method: string;
  pattern: string;
  auth: 'required' | 'none';
  status: number;
  doc?: RouteDoc;
}

/** Runs before authentication on every matched route; throws HttpError to refuse (rate limits). */
export type RouteGuard = (req: IncomingMessage, route: RouteInfo) => void;

interface Route extends RouteInfo {
  parts: string[];
  handler: RouteHandler;
}

const MAX_BODY_BYTES = 1024 * 1024;

export class Router {
  private readonly routes: Route[] = [];
  private authenticator: Authenticator = () => null;
  private readonly mounts: Array<{ prefix: string; handler: RawHandler }> = [];
  private readonly guards: RouteGuard[] = [];

  /**
   * Hands every request under `prefix` (e.g. `/dev-idp`) to `handler` untouched: no authentication,
   * no body parsing. For embedded applications that speak their own protocol, such as the
   * development identity provider.
   */
  mount(prefix: string, handler: RawHandler): void {
    this.mounts.push({ prefix: prefix.replace(/\/+$/, ''), handler });
  }

  setAuthenticator(authenticator: Authenticator): void {
    this.authenticator = authenticator;
  }

  /** The authenticator in place, so a layer (browser cookies) can wrap it. */
  getAuthenticator(): Authenticator {
    return this.authenticator;
  }

  addGuard(guard: RouteGuard): void {
    this.guards.push(guard);
  }

  /** `pattern` like `/api/requests/:id/approve`. */
  add(method: string, pattern: string, handler: RouteHandler, options: RouteOptions = {}): void {
    this.routes.push({
      method,
      pattern,
      parts: pattern.split('/'),
      handler,
      auth: options.auth ?? 'required',
      status: options.status ?? 200,
      ...(options.doc ? { doc: options.doc } : {}),
    });
  }

  /** Every route, in registration order (for the OpenAPI document). */
  list(): RouteInfo[] {
    return this.routes.map(({ method, pattern, auth, status, doc }) => ({ method, pattern, auth, status, ...(doc ? { doc } : {}) }));
  }

  /** Handles the request if a route matches; false lets the caller answer 404. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = requestUrl(req.url);
    if (!url) {
      // Answered here, once, for every route, mount and static file: a path that does not decode
      // (`/api/sessions/%ff%fe`) or does not parse (`//`) is the client's mistake, not a 500.
      sendJson(res, 400, { error: 'invalid_path', message: 'the request path is not a valid percent-encoded URL path' });
      return true;
    }
    const mount = this.mounts.find((m) => url.pathname === m.prefix || url.pathname.startsWith(`${m.prefix}/`));
    if (mount) {
      await mount.handler(req, res);
      return true;
    }
    const parts = url.pathname.split('/');
    let pathMatched = false;
    for (const route of this.routes) {
      const params = match(route.parts, parts);
      if (!params) continue;
      pathMatched = true;
      if (route.method !== req.method) continue;
      try {
        for (const guard of this.guards) guard(req, route);
        const identity = await this.authenticator(req);
        if (route.auth === 'required' && !identity) {
          throw new HttpError(401, 'unauthenticated', 'sign in first: `jitgate login`, or send a bearer token');
        }
        const body = await readJson(req);
        const result = await route.handler({ req, res, params, query: url.searchParams, body, identity });
        if (!res.headersSent && result !== undefined) sendJson(res, route.status, result);
      } catch (err) {
        if (res.headersSent) {
          res.destroy();
        } else if (err instanceof HttpError) {
          sendJson(res, err.status, { error: err.code, message: err.message }, err.headers);
        } else {
          throw err;
        }
      }
      return true;
    }
    if (pathMatched) {
      sendJson(res, 405, { error: 'method_not_allowed', message: `${req.method} is not allowed here` });
      return true;
    }
    return false;
  }
}

/** The request's URL, or undefined when its path does not parse or its percent-encoding is malformed. */
function requestUrl(raw: string | undefined): URL | undefined {
  let url: URL;
  try {
    url = new URL(raw ?? '/', 'http://gateway');
    decodeURIComponent(url.pathname);
  } catch {
    return undefined;
  }
  return url;
}

function match(pattern: string[], parts: string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.startsWith(':')) params[p.slice(1)] = decodeURIComponent(parts[i]!);
    else if (p !== parts[i]) return undefined;
  }
  return params;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  if (req.method === 'GET' || req.method === 'HEAD') return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'body_too_large', 'request body is larger than 1 MB');
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  const type = req.headers['content-type'] ?? '';
  const text = Buffer.concat(chunks).toString('utf8');
  if (type.includes('application/x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(text));
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'invalid_json', 'request body is not valid JSON');
  }
}
