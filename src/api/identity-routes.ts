/**
 * HTTP API of sign-in, sessions and API keys: a thin adapter over IdentityService.
 *
 *   POST   /api/auth/login/start  (no auth)  {flow: "pkce", redirectUri, codeChallenge, codeChallengeMethod: "S256", issuer?}
 *                                              -> {loginId, flow, issuer, authorizationUrl, expiresAt}
 *                                            {flow: "device", issuer?}
 *                                              -> {loginId, flow, issuer, userCode, verificationUri, verificationUriComplete?, interval, expiresAt}
 *   POST   /api/auth/token        (no auth)  {grantType: "authorization_code", loginId, code, codeVerifier, iss?}
 *                                            {grantType: "device_code", loginId}     (poll; 400 authorization_pending / slow_down)
 *                                            {grantType: "refresh_token", refreshToken}
 *                                              -> {tokenType, accessToken, accessTokenExpiresAt, refreshToken, refreshTokenExpiresAt, identity}
 *   POST   /api/auth/logout       (no auth)  bearer session token, or {refreshToken}: ends the whole sign-in
 *   GET    /api/auth/me                      {user, groups, kind, via, admin, session?: {expiresAt, loginExpiresAt}}
 *   POST   /api/apikeys           (admin)    {name, groups: [..], ttl: "90d"} -> 201 {id, key, name, groups, createdBy, createdAt, expiresAt}
 *   GET    /api/apikeys           (admin)    {keys: [...]} (never the key itself)
 *   DELETE /api/apikeys/:id       (admin)    revoke -> the key's record
 *
 * Errors are `{error, message}`; login and token errors use the OAuth codes (invalid_request,
 * invalid_grant, authorization_pending, slow_down, expired_token, access_denied), 503
 * identity_unavailable when the IdP cannot be reached (nothing is issued then: fail closed).
 */
import { tryParseDuration } from '../core/duration.js';
import type { Identity } from '../core/types.js';
import { ApiKeyError, DEFAULT_API_KEY_TTL_MS } from '../identity/api-keys.js';
import { apiKeySubject } from '../identity/namespace.js';
import { LoginError } from '../identity/logins.js';
import { OAuthError } from '../identity/oauth-client.js';
import { IdentityUnavailable } from '../identity/oidc.js';
import type { ApiKeyRow } from '../identity/repository.js';
import { bearerOf, type IdentityService } from '../identity/service.js';
import { SessionError, type SessionPair } from '../identity/sessions.js';
import type { Logger } from '../obs/log.js';
import { HttpError, type RouteContext, type RouteDoc, type Router } from './router.js';

const iso = (ms: number) => new Date(ms).toISOString();

function object(body: unknown): Record<string, unknown> {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new HttpError(400, 'invalid_request', 'expected a JSON object');
  return body as Record<string, unknown>;
}

function str(body: Record<string, unknown>, key: string, required: true): string;
function str(body: Record<string, unknown>, key: string, required?: false): string | undefined;
function str(body: Record<string, unknown>, key: string, required = false): string | undefined {
  const v = body[key];
  if (v === undefined || v === null || v === '') {
    if (required) throw new HttpError(400, 'invalid_request', `${key} is required`);
    return undefined;
  }
  if (typeof v !== 'string') throw new HttpError(400, 'invalid_request', `${key} must be a string`);
  return v;
}

/** Identity-module errors to HTTP answers; anything else is left for the router's generic 500. */
function translate(err: unknown, log: Logger): never {
  if (err instanceof HttpError) throw err;
  if (err instanceof LoginError) throw new HttpError(err.status, err.code, err.message);
  if (err instanceof SessionError) throw new HttpError(400, err.code, err.message);
  if (err instanceof ApiKeyError) {
    const status = err.code === 'not_found' ? 404 : err.code === 'conflict' ? 409 : err.code === 'forbidden' ? 403 : 400;
    throw new HttpError(status, err.code, err.message);
  }
  if (err instanceof OAuthError) throw new HttpError(400, err.code, err.message);
  if (err instanceof IdentityUnavailable) {
    log.warn({ err }, 'identity provider unavailable');
    throw new HttpError(503, 'identity_unavailable', `the identity provider cannot be reached: ${err.message}`);
  }
  throw err;
}

function identityJson(who: Identity) {
  return { user: who.user, groups: who.groups, kind: who.kind, via: who.via };
}

function pairJson(pair: SessionPair) {
  return {
    tokenType: 'Bearer',
    accessToken: pair.accessToken,
    accessTokenExpiresAt: iso(pair.accessTokenExpiresAt),
    refreshToken: pair.refreshToken,
    refreshTokenExpiresAt: iso(pair.refreshTokenExpiresAt),
    identity: identityJson(pair.identity),
  };
}

export function apiKeyJson(k: ApiKeyRow) {
  return {
    id: k.id,
    name: k.name,
    /** Who the key acts as: API keys have their own namespace. */
    identity: apiKeySubject(k.name),
    groups: k.groups,
    createdBy: k.createdBy,
    createdByKey: k.createdByKey,
    createdAt: iso(k.createdAt),
    expiresAt: iso(k.expiresAt),
    revokedAt: k.revokedAt === null ? null : iso(k.revokedAt),
    revokedBy: k.revokedBy,
    lastUsedAt: k.lastUsedAt === null ? null : iso(k.lastUsedAt),
  };
}

export function registerIdentityRoutes(router: Router, identity: IdentityService, log: Logger): void {
  const route = (
    method: string,
    pattern: string,
    fn: (ctx: RouteContext) => unknown,
    options: { auth?: 'none' | 'required'; status?: number; admin?: boolean; doc?: RouteDoc } = {},
  ) =>
    router.add(
      method,
      pattern,
      async (ctx) => {
        if (options.admin && !identity.isAdmin(ctx.identity!)) {
          throw new HttpError(403, 'forbidden', 'only administrators may do this (identities.admins.groups)');
        }
        try {
          return await fn(ctx);
        } catch (err) {
          translate(err, log);
        }
      },
      { auth: options.auth ?? 'required', status: options.status ?? 200, ...(options.doc ? { doc: options.doc } : {}) },
    );

  route(
    'POST',
    '/api/auth/login/start',
    async (ctx) => {
      const body = object(ctx.body);
      const flow = str(body, 'flow') ?? 'pkce';
      const issuer = str(body, 'issuer');
      if (flow === 'device') {
        const r = await identity.logins.start({ flow: 'device', ...(issuer ? { issuer } : {}) });
        return { ...r, expiresAt: iso(r.expiresAt) };
      }
      if (flow !== 'pkce') throw new HttpError(400, 'invalid_request', 'flow must be "pkce" or "device"');
      const method = str(body, 'codeChallengeMethod') ?? 'S256';
      if (method !== 'S256') throw new HttpError(400, 'invalid_request', 'codeChallengeMethod must be S256');
      const r = await identity.logins.start({
        flow: 'pkce',
        ...(issuer ? { issuer } : {}),
        redirectUri: str(body, 'redirectUri', true),
        codeChallenge: str(body, 'codeChallenge', true),
      });
      return { ...r, expiresAt: iso(r.expiresAt) };
    },
    {
      auth: 'none',
      doc: {
        summary: 'Start a CLI sign-in (PKCE with a loopback redirect, or the device flow); rate limited',
        roles: ['anyone'],
        body: {
          flow: 'string? - pkce or device',
          redirectUri: 'string? - pkce: http://127.0.0.1:PORT/...',
          codeChallenge: 'string? - pkce: S256 challenge',
          codeChallengeMethod: 'string? - S256',
          issuer: 'string?',
        },
      },
    },
  );

  route(
    'POST',
    '/api/auth/token',
    async (ctx) => {
      const body = object(ctx.body);
      const grantType = str(body, 'grantType', true);
      switch (grantType) {
        case 'authorization_code': {
          const iss = str(body, 'iss');
          const r = await identity.logins.completeCode({
            loginId: str(body, 'loginId', true),
            code: str(body, 'code', true),
            codeVerifier: str(body, 'codeVerifier', true),
            ...(iss ? { iss } : {}),
          });
          return pairJson(identity.sessions.issue(r.login, r.upstreamRefreshToken));
        }
        case 'device_code':
        case 'urn:ietf:params:oauth:grant-type:device_code': {
          const r = await identity.logins.pollDevice(str(body, 'loginId', true));
          return pairJson(identity.sessions.issue(r.login, r.upstreamRefreshToken));
        }
        case 'refresh_token':
          return pairJson(await identity.sessions.refresh(str(body, 'refreshToken', true)));
        default:
          throw new HttpError(400, 'unsupported_grant_type', 'grantType must be authorization_code, device_code or refresh_token');
      }
    },
    {
      auth: 'none',
      doc: {
        summary: 'Finish a CLI sign-in or refresh: a gateway session (jgs_) and refresh token (jgr_); rate limited',
        roles: ['anyone'],
        body: {
          grantType: 'string - authorization_code, device_code or refresh_token',
          loginId: 'string?',
          code: 'string?',
          codeVerifier: 'string?',
          refreshToken: 'string?',
          iss: 'string?',
        },
      },
    },
  );

  route(
    'POST',
    '/api/auth/logout',
    (ctx) => {
      const body = object(ctx.body);
      const tokens = [bearerOf(ctx.req), str(body, 'refreshToken')].filter((t): t is string => t !== undefined);
      if (tokens.length === 0) throw new HttpError(400, 'invalid_request', 'send the session token as a bearer, or {refreshToken}');
      const ended = tokens.map((t) => identity.sessions.logout(t)).some(Boolean);
      return { loggedOut: ended };
    },
    {
      auth: 'none',
      doc: { summary: 'End a CLI sign-in (bearer session token or refresh token)', roles: ['anyone'], body: { refreshToken: 'string?' } },
    },
  );

  route(
    'GET',
    '/api/auth/me',
    async (ctx) => {
      const who = ctx.identity!;
      const bearer = bearerOf(ctx.req);
      // Only a session has more to say (its expiry); other credentials were verified once already.
      const detail = bearer?.startsWith('jgs_') ? await identity.authenticateDetailed(bearer) : undefined;
      const session = detail?.ok ? detail.session : undefined;
      return {
        ...identityJson(who),
        admin: identity.isAdmin(who),
        ...(session ? { session: { expiresAt: iso(session.expiresAt), loginExpiresAt: iso(session.loginExpiresAt) } } : {}),
      };
    },
    { doc: { summary: 'The signed-in caller and, for a gateway session, its expiry', roles: ['requester'] } },
  );

  route(
    'POST',
    '/api/apikeys',
    async (ctx) => {
      const body = object(ctx.body);
      const groups = body.groups ?? [];
      if (!Array.isArray(groups) || !groups.every((g) => typeof g === 'string')) {
        throw new HttpError(400, 'invalid_request', 'groups must be a list of group names');
      }
      const ttlText = str(body, 'ttl');
      const ttlMs = ttlText === undefined ? DEFAULT_API_KEY_TTL_MS : tryParseDuration(ttlText);
      if (ttlMs === undefined)
        throw new HttpError(400, 'invalid_request', `ttl: expected a duration such as 30d or 12h, got ${JSON.stringify(ttlText)}`);
      const created = await identity.apiKeys.create({
        name: str(body, 'name', true),
        groups: groups as string[],
        ttlMs,
        createdBy: ctx.identity!,
      });
      log.info({ apiKey: created.row.id, name: created.row.name, groups: created.row.groups, by: ctx.identity!.user }, 'API key created');
      return { ...apiKeyJson(created.row), key: created.key };
    },
    {
      admin: true,
      status: 201,
      doc: {
        summary: 'Create an API key (shown once)',
        roles: ['admin'],
        body: { name: 'string', groups: 'string[]', ttl: 'string? - e.g. 90d' },
      },
    },
  );

  route('GET', '/api/apikeys', () => ({ keys: identity.apiKeys.list().map(apiKeyJson) }), {
    admin: true,
    doc: { summary: 'API keys (never the keys themselves)', roles: ['admin'] },
  });

  route(
    'DELETE',
    '/api/apikeys/:id',
    async (ctx) => {
      const row = await identity.apiKeys.revoke(ctx.params.id!, ctx.identity!.user);
      log.info({ apiKey: row.id, name: row.name, by: ctx.identity!.user, alsoRevoked: row.alsoRevoked }, 'API key revoked');
      return { ...apiKeyJson(row), alsoRevoked: row.alsoRevoked };
    },
    { admin: true, doc: { summary: 'Revoke an API key', roles: ['admin'] } },
  );
}
