/**
 * Logins through an OIDC issuer, run by the gateway on behalf of the CLI (./oauth-client.ts says why
 * the gateway holds the exchange):
 *
 *  PKCE (authorization code):
 *    1. the CLI picks a loopback redirect URI and a PKCE verifier, sends the S256 challenge;
 *    2. start() records the login (its id doubles as the OAuth `state`, plus a nonce) and returns the
 *       IdP's authorization URL, which the CLI opens in a browser;
 *    3. the IdP redirects the browser to the CLI's loopback server with the code and state;
 *    4. the CLI sends login id + code + verifier; completeCode() redeems the code with the client
 *       secret, verifies the ID token (issuer, audience = client id, nonce) and reads the identity.
 *  Device flow: start() asks the IdP for a device code and returns the user code and verification
 *  URL; the CLI polls pollDevice() with the login id (the device code itself never leaves the
 *  gateway: without the client secret it is useless anyway, with it, it would be a credential).
 *
 * Groups and names come from the ID token; when it lacks the user or groups claim and the IdP has a
 * userinfo endpoint, its answer (same `sub` only) fills the gaps.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../obs/log.js';
import { groupValues, identityFromUserClaims, readClaim, userFromClaims, type Claims } from './claims.js';
import { OAuthError, type OAuthClient, type TokenSet } from './oauth-client.js';
import { TokenRejected, type OidcIssuer } from './oidc.js';
import { newId } from './opaque-tokens.js';
import type { FamilyRow, IdentityRepository } from './repository.js';
import { SamlRefused } from './saml.js';
import type { SamlLogins } from './saml-logins.js';
import type { LoginIdentity } from './sessions.js';

const PKCE_LOGIN_TTL_MS = 10 * 60_000;
const MAX_PENDING_LOGINS = 10_000;

export interface IssuerHandle {
  issuer: OidcIssuer;
  client: OAuthClient;
}

/** A login that cannot proceed; `code` follows OAuth (RFC 6749 5.2, RFC 8628 3.5). */
export class LoginError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = 'LoginError';
  }
}

export type StartInput =
  | {
      flow: 'pkce';
      issuer?: string;
      redirectUri: string;
      codeChallenge: string;
      /**
       * The redirect is the gateway's own callback (the web console's sign-in), built by the gateway
       * and registered at the IdP, so the loopback-only rule for the CLI's redirect does not apply.
       * Never set from a request body.
       */
      gatewayRedirect?: boolean;
    }
  | { flow: 'device'; issuer?: string };

export type StartResult =
  | { flow: 'pkce'; loginId: string; issuer: string; authorizationUrl: string; expiresAt: number }
  | {
      flow: 'device';
      loginId: string;
      issuer: string;
      userCode: string;
      verificationUri: string;
      verificationUriComplete?: string;
      interval: number;
      expiresAt: number;
    };

export interface LoginResult {
  login: LoginIdentity;
  /** The IdP's refresh token, if it gave one (kept sealed for silent re-confirmation). */
  upstreamRefreshToken?: string;
}

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

/** RFC 8252 7.3: a native app's redirect is http on a loopback address with the port it chose. */
export function loopbackRedirectProblem(uri: string): string | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return 'redirect_uri is not a URL';
  }
  if (url.protocol !== 'http:' || !LOOPBACK.has(url.hostname) || url.port === '') {
    return 'redirect_uri must be http://127.0.0.1:PORT/... (the loopback server of `jitgate login`)';
  }
  if (url.hash !== '' || url.username !== '' || url.password !== '') return 'redirect_uri must not have a fragment or credentials';
  return undefined;
}

export class LoginFlows {
  constructor(
    private readonly o: {
      repo: IdentityRepository;
      clock: Clock;
      log: Logger;
      issuers: () => ReadonlyMap<string, IssuerHandle>;
      /** SAML providers: the same PKCE login, with the gateway's ACS standing in for a token endpoint. */
      saml?: SamlLogins;
    },
  ) {}

  /** The SAML provider a login goes to: named, or the first when no OIDC issuer is configured. */
  private samlFor(name: string | undefined): string | undefined {
    const saml = this.o.saml;
    if (!saml) return undefined;
    if (name !== undefined) return saml.has(name) ? name : undefined;
    return this.o.issuers().size === 0 ? saml.names[0] : undefined;
  }

  private handle(name: string | undefined): IssuerHandle {
    const issuers = this.o.issuers();
    const all = [...issuers.keys(), ...(this.o.saml?.names ?? [])];
    if (all.length === 0) {
      throw new LoginError(
        'login_unavailable',
        'this gateway has no identity provider configured (identities.oidc, identities.saml); sign in with an API key instead',
        404,
      );
    }
    const h = name === undefined ? issuers.values().next().value : issuers.get(name);
    if (!h) throw new LoginError('invalid_request', `no issuer named ${JSON.stringify(name)} (configured: ${all.join(', ')})`);
    return h;
  }

  async start(input: StartInput): Promise<StartResult> {
    const saml = this.samlFor(input.issuer);
    if (saml !== undefined) return this.startSaml(saml, input);
    const h = this.handle(input.issuer);
    const now = this.o.clock.now();
    // Anyone may start a sign-in, so bound what that costs: forget expired ones, cap pending ones.
    // (Kept an hour past their end, so a late poll hears "expired" rather than "unknown".)
    this.o.repo.purgeLogins(now - 3_600_000);
    if (this.o.repo.pendingLogins(now) >= MAX_PENDING_LOGINS) {
      throw new LoginError('temporarily_unavailable', 'too many sign-ins are in progress; try again in a few minutes', 503);
    }
    const loginId = newId('lgn_') + randomBytes(12).toString('base64url');
    const nonce = randomBytes(24).toString('base64url');
    if (input.flow === 'pkce') {
      const problem = input.gatewayRedirect ? undefined : loopbackRedirectProblem(input.redirectUri);
      if (problem) throw new LoginError('invalid_request', problem);
      if (!/^[A-Za-z0-9_-]{43}$/.test(input.codeChallenge)) {
        throw new LoginError('invalid_request', 'code_challenge must be the base64url SHA-256 of the PKCE verifier (S256)');
      }
      const authorizationUrl = await h.client.authorizationUrl({
        redirectUri: input.redirectUri,
        state: loginId,
        nonce,
        codeChallenge: input.codeChallenge,
      });
      const expiresAt = now + PKCE_LOGIN_TTL_MS;
      this.o.repo.insertLogin({
        id: loginId,
        issuer: h.issuer.name,
        flow: 'pkce',
        redirectUri: input.redirectUri,
        nonce,
        deviceCode: null,
        intervalMs: null,
        createdAt: now,
        expiresAt,
      });
      return { flow: 'pkce', loginId, issuer: h.issuer.name, authorizationUrl, expiresAt };
    }
    const device = await h.client.startDevice().catch((err: unknown) => {
      throw err instanceof OAuthError ? new LoginError(err.code, `the identity provider refused the device flow: ${err.message}`) : err;
    });
    const expiresAt = now + device.expiresIn * 1000;
    this.o.repo.insertLogin({
      id: loginId,
      issuer: h.issuer.name,
      flow: 'device',
      redirectUri: null,
      nonce,
      deviceCode: device.deviceCode,
      intervalMs: device.interval * 1000,
      createdAt: now,
      expiresAt,
    });
    return {
      flow: 'device',
      loginId,
      issuer: h.issuer.name,
      userCode: device.userCode,
      verificationUri: device.verificationUri,
      ...(device.verificationUriComplete ? { verificationUriComplete: device.verificationUriComplete } : {}),
      interval: device.interval,
      expiresAt,
    };
  }

  private async startSaml(provider: string, input: StartInput): Promise<StartResult> {
    if (input.flow !== 'pkce') {
      throw new LoginError(
        'unsupported_grant_type',
        `${provider} is a SAML provider: SAML sign-in needs a browser, so run jitgate login without --device`,
      );
    }
    const now = this.o.clock.now();
    this.o.repo.purgeLogins(now - 3_600_000);
    if (this.o.repo.pendingLogins(now) >= MAX_PENDING_LOGINS) {
      throw new LoginError('temporarily_unavailable', 'too many sign-ins are in progress; try again in a few minutes', 503);
    }
    const problem = input.gatewayRedirect ? undefined : loopbackRedirectProblem(input.redirectUri);
    if (problem) throw new LoginError('invalid_request', problem);
    if (!/^[A-Za-z0-9_-]{43}$/.test(input.codeChallenge)) {
      throw new LoginError('invalid_request', 'code_challenge must be the base64url SHA-256 of the PKCE verifier (S256)');
    }
    const loginId = newId('lgn_') + randomBytes(12).toString('base64url');
    const authorizationUrl = await this.o
      .saml!.start({ provider, loginId, redirectUri: input.redirectUri, codeChallenge: input.codeChallenge })
      .catch((err: unknown) => {
        throw err instanceof SamlRefused ? new LoginError('login_unavailable', err.reason, 503) : err;
      });
    const expiresAt = now + PKCE_LOGIN_TTL_MS;
    this.o.repo.insertLogin({
      id: loginId,
      issuer: provider,
      flow: 'pkce',
      redirectUri: input.redirectUri,
      nonce: '-',
      deviceCode: null,
      intervalMs: null,
      createdAt: now,
      expiresAt,
    });
    return { flow: 'pkce', loginId, issuer: provider, authorizationUrl, expiresAt };
  }

  private pendingRow(loginId: string, flow: 'pkce' | 'device') {
    const login = typeof loginId === 'string' ? this.o.repo.getLogin(loginId) : undefined;
    if (!login || login.flow !== flow) throw new LoginError('invalid_grant', 'unknown login: start again with `jitgate login`');
    if (login.usedAt !== null) throw new LoginError('invalid_grant', 'this login has already been completed');
    if (login.expiresAt <= this.o.clock.now())
      throw new LoginError('expired_token', 'this login has expired: start again with `jitgate login`');
    return login;
  }

  private pendingLogin(loginId: string, flow: 'pkce' | 'device') {
    const login = this.pendingRow(loginId, flow);
    return { login, h: this.handle(login.issuer) };
  }

  /** A SAML login's last step: the gateway's one-time code (./saml-logins.ts) and the PKCE verifier. */
  private completeSaml(loginId: string, code: string, codeVerifier: string): LoginResult {
    const login = this.pendingRow(loginId, 'pkce');
    if (!this.o.repo.useLogin(login.id, this.o.clock.now())) throw new LoginError('invalid_grant', 'this login has already been completed');
    const r = this.o.saml!.redeem({ provider: login.issuer, loginId, code, codeVerifier });
    if ('refused' in r) throw new LoginError('invalid_grant', r.refused);
    return { login: r.login };
  }

  /** `iss`: the issuer named in the authorization response (RFC 9207), checked when the IdP sends one. */
  async completeCode(input: { loginId: string; code: string; codeVerifier: string; iss?: string }): Promise<LoginResult> {
    const row = typeof input.loginId === 'string' ? this.o.repo.getLogin(input.loginId) : undefined;
    if (row && this.o.saml?.has(row.issuer)) return this.completeSaml(input.loginId, input.code, input.codeVerifier ?? '');
    const { login, h } = this.pendingLogin(input.loginId, 'pkce');
    if (input.iss !== undefined && input.iss !== h.issuer.config.issuer) {
      // A mix-up: the code came from another issuer than the one this login was sent to.
      throw new LoginError('invalid_grant', `the authorization response came from ${input.iss}, not from issuer ${h.issuer.name}`);
    }
    if (!/^[A-Za-z0-9._~-]{43,128}$/.test(input.codeVerifier ?? '')) {
      throw new LoginError('invalid_request', 'code_verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~');
    }
    // One exchange per login: mark it used first, so two racing requests cannot both redeem it.
    if (!this.o.repo.useLogin(login.id, this.o.clock.now())) throw new LoginError('invalid_grant', 'this login has already been completed');
    let tokens: TokenSet;
    try {
      tokens = await h.client.exchangeCode({ code: input.code, redirectUri: login.redirectUri!, codeVerifier: input.codeVerifier });
    } catch (err) {
      if (err instanceof OAuthError)
        throw new LoginError(
          err.code === 'invalid_grant' ? 'invalid_grant' : 'access_denied',
          `the identity provider refused the code: ${err.message}`,
        );
      throw err;
    }
    return this.result(h, tokens, login.nonce);
  }

  async pollDevice(loginId: string): Promise<LoginResult> {
    const { login, h } = this.pendingLogin(loginId, 'device');
    let tokens: TokenSet;
    try {
      tokens = await h.client.pollDevice(login.deviceCode!);
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      if (err.code === 'slow_down') this.o.repo.setLoginInterval(login.id, (login.intervalMs ?? 5000) + 5000);
      const known = ['authorization_pending', 'slow_down', 'expired_token', 'access_denied'];
      throw new LoginError(known.includes(err.code) ? err.code : 'invalid_grant', err.description ?? err.code);
    }
    if (!this.o.repo.useLogin(login.id, this.o.clock.now())) throw new LoginError('invalid_grant', 'this login has already been completed');
    // The device authorization request carries no nonce, so there is none to check.
    return this.result(h, tokens, undefined);
  }

  /** Silent re-confirmation at the IdP (sessions.ts): its refresh token in, current identity out. */
  async reconfirm(
    family: FamilyRow,
    upstreamRefreshToken: string,
  ): Promise<{ user: string; groups: string[]; upstreamRefreshToken: string }> {
    const h = this.o.issuers().get(family.issuer);
    if (!h) throw new OAuthError('invalid_grant', `issuer ${family.issuer} is no longer configured`, 400);
    const tokens = await h.client.refresh(upstreamRefreshToken);
    let who = { user: family.user, groups: family.groups };
    if (tokens.idToken !== undefined) {
      const { login } = await this.result(h, tokens, undefined);
      if (login.subject !== family.subject) throw new OAuthError('invalid_grant', 'the refreshed ID token names another subject', 400);
      who = { user: login.user, groups: login.groups };
    }
    return { ...who, upstreamRefreshToken: tokens.refreshToken ?? upstreamRefreshToken };
  }

  private async result(h: IssuerHandle, tokens: TokenSet, nonce: string | undefined): Promise<LoginResult> {
    if (tokens.idToken === undefined)
      throw new LoginError('invalid_grant', 'the identity provider returned no ID token (is "openid" among the scopes?)');
    let claims = (await h.issuer
      .verify(tokens.idToken, h.issuer.config.clientId, nonce === undefined ? {} : { nonce })
      .catch((err: unknown) => {
        throw err instanceof TokenRejected ? new LoginError('invalid_grant', `the ID token was not accepted: ${err.reason}`) : err;
      })) as Claims;
    const cfg = h.issuer.config;
    const missing = userFromClaims(claims, cfg.userClaim) === undefined || readClaim(claims, cfg.groupsClaim) === undefined;
    if (missing && tokens.accessToken !== undefined) {
      const info = await h.client.userinfo(tokens.accessToken);
      if (info && info.sub === claims.sub) claims = { ...info, ...claims };
    }
    const r = identityFromUserClaims(claims, cfg);
    if (!r.ok) throw new LoginError('invalid_grant', r.reason);
    this.o.log.info(
      { issuer: cfg.name, user: r.identity.user, groups: r.identity.groups, groupClaimValues: groupValues(claims, cfg.groupsClaim).length },
      'OIDC login',
    );
    return {
      login: { issuer: cfg.name, subject: r.identity.subject, user: r.identity.user, groups: r.identity.groups },
      ...(tokens.refreshToken !== undefined ? { upstreamRefreshToken: tokens.refreshToken } : {}),
    };
  }
}

/** S256 PKCE challenge of a verifier (RFC 7636 4.2). */
export function pkceChallenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}
