/**
 * The OpenAPI 3.1 document of every /api route, generated from what the routes declare when they
 * are registered (Router.add's `doc`), so it cannot drift from the routes that exist. A route
 * registered without a description still appears, with a generic summary.
 *
 *   GET /api/openapi.json   (no authentication)
 */
import type { RouteDoc, RouteInfo, Router } from './router.js';

const ERROR_SCHEMA = {
  type: 'object',
  required: ['error', 'message'],
  properties: {
    error: { type: 'string', description: 'stable code' },
    message: { type: 'string' },
    reasons: { type: 'array', items: { type: 'string' } },
  },
};

/** `string? - text` -> a JSON schema and whether it is required. */
function field(spec: string): { schema: Record<string, unknown>; required: boolean } {
  const [typePart = 'string', ...rest] = spec.split(' - ');
  const description = rest.join(' - ');
  const optional = typePart.trim().endsWith('?');
  const type = typePart.trim().replace(/\?$/, '');
  const schema: Record<string, unknown> =
    type === 'string[]'
      ? { type: 'array', items: { type: 'string' } }
      : { type: ['string', 'integer', 'boolean', 'object', 'number'].includes(type) ? type : 'string' };
  if (description) schema.description = description;
  return { schema, required: !optional };
}

function operation(route: RouteInfo): Record<string, unknown> {
  const doc: RouteDoc = route.doc ?? { summary: `${route.method} ${route.pattern}` };
  const tag = route.pattern.split('/')[2] ?? 'api';
  const parameters: unknown[] = route.pattern
    .split('/')
    .filter((p) => p.startsWith(':'))
    .map((p) => ({ name: p.slice(1), in: 'path', required: true, schema: { type: 'string' } }));
  for (const [name, spec] of Object.entries(doc.query ?? {})) {
    const f = field(spec);
    parameters.push({
      name,
      in: 'query',
      required: f.required,
      schema: f.schema,
      ...(f.schema.description ? { description: f.schema.description } : {}),
    });
  }
  const op: Record<string, unknown> = {
    operationId: `${route.method.toLowerCase()}${route.pattern.replace(/\/:?([a-z0-9.]+)/gi, (_m, w: string) => w.charAt(0).toUpperCase() + w.slice(1).replace(/\.(\w)/g, (_x, c: string) => c.toUpperCase()))}`,
    summary: doc.summary,
    tags: [tag],
    'x-roles': doc.roles ?? (route.auth === 'none' ? ['anyone'] : ['requester']),
    ...(parameters.length ? { parameters } : {}),
  };
  if (doc.body) {
    const properties: Record<string, unknown> = {};
    const required: string[] = [];
    for (const [name, spec] of Object.entries(doc.body)) {
      const f = field(spec);
      properties[name] = f.schema;
      if (f.required) required.push(name);
    }
    op.requestBody = {
      required: required.length > 0,
      content: { 'application/json': { schema: { type: 'object', properties, ...(required.length ? { required } : {}) } } },
    };
  }
  const ok = doc.redirect
    ? { '303': { description: 'redirect' } }
    : {
        [String(route.status)]: {
          description: 'success',
          content: { [doc.produces ?? 'application/json']: { schema: doc.produces ? { type: 'string' } : { type: 'object' } } },
        },
      };
  op.responses = {
    ...ok,
    ...(route.auth === 'required' ? { '401': errorResponse('not signed in') } : {}),
    '403': errorResponse('not allowed for this caller, or a cookie request without a valid CSRF token'),
    ...(route.pattern.startsWith('/api/auth/') && route.auth === 'none'
      ? { '429': errorResponse('too many sign-in attempts (Retry-After)') }
      : {}),
  };
  if (route.auth === 'none') op.security = [];
  return op;
}

function errorResponse(description: string) {
  return { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
}

export function openApiDocument(routes: readonly RouteInfo[], info: { version: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    if (!r.pattern.startsWith('/api/')) continue;
    const path = r.pattern.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    (paths[path] ??= {})[r.method.toLowerCase()] = operation(r);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'jitgate API',
      version: info.version,
      description:
        'Just-in-time access gateway. Authenticate with `Authorization: Bearer <token>` (a gateway session from `jitgate login`, an API key, or an OIDC access token), or in a browser with the session cookie set by /api/auth/browser/login; cookie requests that change state need the X-CSRF-Token header. `x-roles` says who may call each operation.',
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer' },
        cookie: { type: 'apiKey', in: 'cookie', name: '__Host-jitgate_session' },
      },
      schemas: { Error: ERROR_SCHEMA },
    },
    security: [{ bearer: [] }, { cookie: [] }],
    paths,
  };
}

export function registerOpenApiRoute(router: Router, info: { version: string }): void {
  router.add('GET', '/api/openapi.json', () => openApiDocument(router.list(), info), {
    auth: 'none',
    doc: { summary: 'This document', roles: ['anyone'] },
  });
}
