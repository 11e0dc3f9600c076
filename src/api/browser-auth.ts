/**
 * Sign-in for browsers (the web console): the gateway runs the authorization-code + PKCE flow with
 * the configured IdP as its own OAuth client, and keeps the resulting gateway session in cookies the
 * page's scripts cannot read. Bearer tokens (CLI, automation) keep working unchanged: a request with
 * an Authorization header is never judged by its cookies.
 *
 *   GET  /api/auth/browser/issuers            which issuers one can sign in with
 *   GET  /api/auth/browser/login?returnTo=&issuer=   -> 303 to the IdP (rate limited)
 *   GET  /api/auth/browser/callback?code&state        -> sets the cookies, 303 to returnTo (rate limited)
 *   POST /api/auth/browser/refresh            new session from the refresh cookie (rate limited, CSRF)
 *   POST /api/auth/browser/logout             ends the sign-in, clears the cookies (CSRF)
 *
 * Cookies: the session (`jgs_`, HttpOnly, SameSite=Lax, Path=/), the refresh token (HttpOnly,
 * SameSite=Strict, only sent to /api/auth/browser), a CSRF token (readable by the page's script,
 * SameSite=Strict) and, during a sign-in, the login id (binds the IdP's answer to this browser).
 * All are Secure, with __Host-/__Secure- names, except in development mode on a plain-HTTP
 * loopback address, where browsers would not keep a Secure cookie. Outside development mode only the
 * prefixed names count: a plain `jitgate_session` could be planted by a sibling subdomain (cookie
 * tossing), which the prefixes rule out.
 *
 * The IdP's redirect_uri is built from the gateway's public URL (`listeners.http.publicUrl`), or in
 * development mode from the listener's own address; never from the request's Host header, which the
 * client chooses. After signing in the browser goes back only to a path on this gateway (./return-to.ts).
 *
 * CSRF: every state-changing request authenticated by cookie must carry `X-CSRF-Token` equal to the
 * CSRF cookie (double submit; another site can neither read the cookie nor set the header) and, when
 * the browser says where it comes from (Origin, Sec-Fetch-Site), come from this gateway's origin.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IdentityService } from '../identity/service.js';
import { LoginError } from '../identity/logins.js';
import { SessionError, type SessionPair } from '../identity/sessions.js';
import { IdentityUnavailable } from '../identity/oidc.js';
import type { Logger } from '../obs/log.js';
import { safeReturnTo } from './return-to.js';
import { SAML_PATH } from './saml-routes.js';
import { HttpError, type Authenticator, type Router } from './router.js';

export const CALLBACK_PATH = '/api/auth/browser/callback';
const BROWSER_PATH = '/api/auth/browser';
const LOGIN_TTL_MS = 10 * 60_000;
const MAX_PENDING = 10_000;
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** Cookie names: `secure` ones carry the __Host-/__Secure- prefixes browsers enforce. */
export function cookieNames(secure: boolean) {
  return secure
    ? {
        session: '__Host-jitgate_session',
        csrf: '__Host-jitgate_csrf',
        refresh: '__Secure-jitgate_refresh',
        login: '__Secure-jitgate_login',
      }
    : { session: 'jitgate_session', csrf: 'jitgate_csrf', refresh: 'jitgate_refresh', login: 'jitgate_login' };
}
const SECURE = cookieNames(true);
const PLAIN = cookieNames(false);

export interface BrowserAuthOptions {
  identity: IdentityService;
  /** Development mode: plain-HTTP loopback may use cookies without Secure. */
  development: boolean;
  /** The gateway as browsers reach it (scheme://host[:port]); undefined: not configured. */
  publicOrigin: () => string | undefined;
  log: Logger;
  now: () => number;
}

interface PendingLogin {
  verifier: string;
  returnTo: string;
  expiresAt: number;
}

export function registerBrowserAuth(router: Router, o: BrowserAuthOptions): void {
  const pending = new Map<string, PendingLogin>();
  const { identity } = o;

  router.add('GET', `${BROWSER_PATH}/issuers`, () => ({ issuers: identity.issuerNames }), {
    auth: 'none',
    doc: { summary: 'Identity providers one can sign in with in a browser', roles: ['anyone'] },
  });

  router.add(
    'GET',
    `${BROWSER_PATH}/login`,
    async (ctx) => {
      const returnTo = safeReturnTo(ctx.query.get('returnTo'));
      const origin = o.publicOrigin();
      if (origin === undefined) {
        return signInFailed(ctx.res, "browser sign-in needs the gateway's public URL: set listeners.http.publicUrl in the configuration");
      }
      const issuer = ctx.query.get('issuer') ?? undefined;
      const now = o.now();
      for (const [id, p] of pending) if (p.expiresAt <= now) pending.delete(id);
      if (pending.size >= MAX_PENDING)
        throw new HttpError(503, 'temporarily_unavailable', 'too many sign-ins are in progress; try again in a few minutes');
      const verifier = randomBytes(32).toString('base64url');
      const challenge = createHash('sha256').update(verifier, 'ascii').digest('base64url');
      let start;
      try {
        start = await identity.logins.start({
          flow: 'pkce',
          ...(issuer ? { issuer } : {}),
          redirectUri: `${origin}${CALLBACK_PATH}`,
          codeChallenge: challenge,
          gatewayRedirect: true,
        });
      } catch (err) {
        return signInFailed(ctx.res, describe(err, o.log));
      }
      if (start.flow !== 'pkce') throw new Error('unexpected login flow');
      pending.set(start.loginId, { verifier, returnTo, expiresAt: start.expiresAt });
      const secure = secureCookies(ctx.req, o.development);
      redirect(ctx.res, start.authorizationUrl, [
        cookie(cookieNames(secure).login, start.loginId, { secure, path: BROWSER_PATH, sameSite: 'Lax', maxAgeS: LOGIN_TTL_MS / 1000 }),
      ]);
      return undefined;
    },
    {
      auth: 'none',
      doc: {
        summary: 'Start a browser sign-in: redirects to the identity provider (authorization code + PKCE)',
        roles: ['anyone'],
        query: { returnTo: 'string? - a path on this gateway to come back to', issuer: 'string? - issuer name (default: the first)' },
        redirect: true,
      },
    },
  );

  router.add(
    'GET',
    CALLBACK_PATH,
    async (ctx) => {
      const secure = secureCookies(ctx.req, o.development);
      const names = cookieNames(secure);
      const cookies = parseCookies(ctx.req);
      const state = ctx.query.get('state') ?? '';
      const clearLogin = cookie(names.login, '', { secure, path: BROWSER_PATH, sameSite: 'Lax', maxAgeS: 0 });
      // The IdP's answer must belong to a sign-in this browser started (login CSRF).
      const login = pending.get(state);
      if (!state || cookies[names.login] !== state || !login) {
        return signInFailed(ctx.res, 'this sign-in was not started in this browser or has expired; sign in again', [clearLogin]);
      }
      pending.delete(state);
      const error = ctx.query.get('error');
      if (error) return signInFailed(ctx.res, `the identity provider said: ${ctx.query.get('error_description') ?? error}`, [clearLogin]);
      const code = ctx.query.get('code');
      if (!code) return signInFailed(ctx.res, 'the identity provider sent no authorization code', [clearLogin]);
      let pair: SessionPair;
      try {
        const iss = ctx.query.get('iss');
        const r = await identity.logins.completeCode({ loginId: state, code, codeVerifier: login.verifier, ...(iss ? { iss } : {}) });
        pair = identity.sessions.issue(r.login, r.upstreamRefreshToken);
      } catch (err) {
        return signInFailed(ctx.res, describe(err, o.log), [clearLogin]);
      }
      o.log.info({ user: pair.identity.user }, 'browser sign-in');
      redirect(ctx.res, login.returnTo, [clearLogin, ...sessionCookies(pair, secure, o.now())]);
      return undefined;
    },
    {
      auth: 'none',
      doc: { summary: "The identity provider's redirect back: sets the session cookies", roles: ['anyone'], redirect: true },
    },
  );

  router.add(
    'POST',
    `${BROWSER_PATH}/refresh`,
    async (ctx) => {
      const cookies = parseCookies(ctx.req);
      checkCsrf(ctx.req, cookies, o.development);
      const secure = secureCookies(ctx.req, o.development);
      const token = cookieValue(cookies, 'refresh', o.development);
      if (!token) throw new HttpError(401, 'unauthenticated', 'no sign-in to refresh; sign in again');
      let pair: SessionPair;
      try {
        pair = await identity.sessions.refresh(token);
      } catch (err) {
        if (err instanceof SessionError) {
          ctx.res.setHeader('set-cookie', clearCookies(secure));
          throw new HttpError(401, 'unauthenticated', `${err.message}; sign in again`);
        }
        if (err instanceof IdentityUnavailable)
          throw new HttpError(503, 'identity_unavailable', 'the identity provider cannot be reached; try again shortly');
        throw err;
      }
      ctx.res.setHeader('set-cookie', sessionCookies(pair, secure, o.now()));
      return { user: pair.identity.user, expiresAt: new Date(pair.accessTokenExpiresAt).toISOString() };
    },
    { auth: 'none', doc: { summary: 'Renew the browser session from its refresh cookie', roles: ['anyone'] } },
  );

  router.add(
    'POST',
    `${BROWSER_PATH}/logout`,
    (ctx) => {
      const cookies = parseCookies(ctx.req);
      checkCsrf(ctx.req, cookies, o.development);
      const secure = secureCookies(ctx.req, o.development);
      const tokens = [cookieValue(cookies, 'session', o.development), cookieValue(cookies, 'refresh', o.development)].filter(
        (t): t is string => !!t,
      );
      const ended = tokens.map((t) => identity.sessions.logout(t)).some(Boolean);
      ctx.res.setHeader('set-cookie', clearCookies(secure));
      return { loggedOut: ended };
    },
    { auth: 'none', doc: { summary: 'Sign the browser out: ends the gateway session and clears its cookies', roles: ['anyone'] } },
  );

  router.setAuthenticator(cookieAuthenticator(router.getAuthenticator(), identity, o.development));
}

/**
 * Wraps the bearer authenticator: without an Authorization header, the session cookie counts, and
 * a state-changing request made with it must pass the CSRF check (fail closed: 403 before anything).
 */
export function cookieAuthenticator(inner: Authenticator, identity: IdentityService, development: boolean): Authenticator {
  return async (req) => {
    if (req.headers.authorization !== undefined) return inner(req);
    // The SAML endpoints take no identity, and the IdP's POST to the ACS is cross-site by design.
    if (req.url?.startsWith(`${SAML_PATH}/`)) return null;
    const cookies = parseCookies(req);
    const session = cookieValue(cookies, 'session', development);
    if (!session) return null;
    if (STATE_CHANGING.has(req.method ?? 'GET')) checkCsrf(req, cookies, development);
    if (!session.startsWith('jgs_')) return null;
    return identity.authenticate(session);
  };
}

/** A cookie of ours: the prefixed name, or in development mode also the plain one. */
function cookieValue(cookies: Record<string, string>, which: 'session' | 'csrf' | 'refresh', development: boolean): string | undefined {
  return cookies[SECURE[which]] ?? (development ? cookies[PLAIN[which]] : undefined);
}

function checkCsrf(req: IncomingMessage, cookies: Record<string, string>, development: boolean): void {
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {
      host = undefined;
    }
    if (host === undefined || host !== req.headers.host)
      throw new HttpError(403, 'csrf_origin', `cross-origin request refused (Origin ${origin})`);
  } else {
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin')
      throw new HttpError(403, 'csrf_origin', `cross-site request refused (Sec-Fetch-Site ${String(site)})`);
  }
  const expected = cookieValue(cookies, 'csrf', development);
  const given = req.headers['x-csrf-token'];
  if (!expected || typeof given !== 'string' || !sameText(expected, given)) {
    throw new HttpError(403, 'csrf_token', "missing or wrong X-CSRF-Token header (send the jitgate_csrf cookie's value)");
  }
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function parseCookies(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const name = part.slice(0, i).trim();
    if (name && !(name in out)) {
      try {
        out[name] = decodeURIComponent(part.slice(i + 1).trim());
      } catch {
        // A cookie we did not set; ignore it.
      }
    }
  }
  return out;
}

function hostName(req: IncomingMessage): string {
  const host = req.headers.host ?? '';
  return host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
}

function isLoopback(req: IncomingMessage): boolean {
  return LOOPBACK_HOSTS.has(hostName(req));
}

/** Secure cookies everywhere except plain-HTTP loopback in development mode. */
function secureCookies(req: IncomingMessage, development: boolean): boolean {
  return !(development && isLoopback(req) && req.headers['x-forwarded-proto'] !== 'https');
}

function cookie(
  name: string,
  value: string,
  o: { secure: boolean; path: string; sameSite: 'Lax' | 'Strict'; maxAgeS: number; httpOnly?: boolean },
): string {
  return [
    `${name}=${encodeURIComponent(value)}`,
    `Path=${o.path}`,
    `Max-Age=${Math.max(0, Math.floor(o.maxAgeS))}`,
    `SameSite=${o.sameSite}`,
    ...(o.httpOnly === false ? [] : ['HttpOnly']),
    ...(o.secure ? ['Secure'] : []),
  ].join('; ');
}

function sessionCookies(pair: SessionPair, secure: boolean, now: number): string[] {
  const names = cookieNames(secure);
  const sessionS = (pair.accessTokenExpiresAt - now) / 1000;
  const refreshS = (pair.refreshTokenExpiresAt - now) / 1000;
  return [
    cookie(names.session, pair.accessToken, { secure, path: '/', sameSite: 'Lax', maxAgeS: sessionS }),
    cookie(names.refresh, pair.refreshToken, { secure, path: BROWSER_PATH, sameSite: 'Strict', maxAgeS: refreshS }),
    // Readable by the console's script (it echoes it in X-CSRF-Token); useless to anyone else.
    cookie(names.csrf, randomBytes(24).toString('base64url'), {
      secure,
      path: '/',
      sameSite: 'Strict',
      maxAgeS: refreshS,
      httpOnly: false,
    }),
  ];
}

function clearCookies(secure: boolean): string[] {
  const names = cookieNames(secure);
  return [
    cookie(names.session, '', { secure, path: '/', sameSite: 'Lax', maxAgeS: 0 }),
    cookie(names.refresh, '', { secure, path: BROWSER_PATH, sameSite: 'Strict', maxAgeS: 0 }),
    cookie(names.csrf, '', { secure, path: '/', sameSite: 'Strict', maxAgeS: 0, httpOnly: false }),
  ];
}

function redirect(res: ServerResponse, location: string, cookies: string[]): void {
  res.writeHead(303, { location, 'set-cookie': cookies, 'cache-control': 'no-store', 'content-length': 0 });
  res.end();
}

/** Back to the console's sign-in page with the reason (the page shows it as text). */
function signInFailed(res: ServerResponse, message: string, cookies: string[] = []): undefined {
  redirect(res, `/signin?error=${encodeURIComponent(message)}`, cookies);
  return undefined;
}

function describe(err: unknown, log: Logger): string {
  if (err instanceof LoginError) return err.message;
  if (err instanceof IdentityUnavailable) {
    log.warn({ err }, 'browser sign-in: identity provider unavailable');
    return 'the identity provider cannot be reached; try again shortly';
  }
  if (err instanceof HttpError) return err.message;
  log.error({ err }, 'browser sign-in failed');
  return 'sign-in failed (see the gateway log)';
}
