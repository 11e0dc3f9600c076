/**
 * Gateway sessions: what a person holds after an OIDC login, so the CLI is not sent back to the IdP
 * every time an IdP token would expire.
 *
 * A login creates a *family*: who (user, groups, issuer, subject) and until when (login time +
 * `session.refreshTtl`, a hard end). The family hands out one pair at a time:
 *   - a session token `jgs_...` (the bearer; lifetime `session.ttl`, never past the family's end);
 *   - a refresh token `jgr_...`, good for exactly one exchange. Each exchange issues a new pair and
 *     ends the old one. Presenting a refresh token that was already exchanged means two parties hold
 *     it (one of them stole it): the whole family is revoked and both must sign in again (the
 *     rotation-with-reuse-detection of OAuth 2.0 Security BCP 4.14.2).
 *
 * When the IdP gave the gateway a refresh token, each exchange also refreshes at the IdP (see
 * ./seal.ts for how it is stored), and takes the user's current groups from the answer; an IdP
 * that refuses ends the family. A SAML sign-in has no refresh token: each exchange takes the groups
 * of the newest assertion for that person (`latest`), and the family ends after the provider's
 * signInTtl. Without either, the groups stay as they were at login until the family ends.
 */
import type { Clock } from '../core/clock.js';
import type { Identity } from '../core/types.js';
import type { Logger } from '../obs/log.js';
import { hashToken, isOpaqueToken, newId, newOpaqueToken, REFRESH_PREFIX, SESSION_PREFIX } from './opaque-tokens.js';
import type { FamilyRow, IdentityRepository } from './repository.js';
import { openUpstream, sealUpstream } from './seal.js';

/** Rows of ended logins are kept this long after their end (for `reuse` answers and diagnostics). */
const PURGE_AFTER_MS = 86_400_000;

export interface SessionPair {
  accessToken: string;
  accessTokenExpiresAt: number;
  refreshToken: string;
  refreshTokenExpiresAt: number;
  identity: Identity;
  familyId: string;
}

export interface LoginIdentity {
  issuer: string;
  subject: string;
  user: string;
  groups: string[];
  /** The sign-in ends then at the latest, before `refreshTtl` (a SAML provider's signInTtl). */
  expiresAt?: number;
}

export interface SessionInfo {
  identity: Identity;
  sessionId: string;
  familyId: string;
  expiresAt: number;
  loginExpiresAt: number;
}

/** Asks the IdP again with its refresh token; resolves to the current identity and the (maybe rotated) IdP refresh token. */
export type Reconfirm = (
  family: FamilyRow,
  upstreamRefreshToken: string,
) => Promise<{ user: string; groups: string[]; upstreamRefreshToken: string }>;

/** A refused exchange, as an OAuth error code (invalid_grant, ...) and a sentence for the user. */
export class SessionError extends Error {
  constructor(
    readonly code: 'invalid_grant' | 'invalid_request',
    message: string,
  ) {
    super(message);
    this.name = 'SessionError';
  }
}

export interface SessionManagerOptions {
  repo: IdentityRepository;
  clock: Clock;
  ttlMs: number;
  refreshTtlMs: number;
  log: Logger;
  /** Decides whether an IdP refusal ends the family (true) or is a passing failure (false: rethrown as is). */
  reconfirm?: { run: Reconfirm; isRefusal: (err: unknown) => boolean };
  /**
   * For sign-ins without an IdP refresh token that the IdP still speaks about (SAML): the newest
   * identity it asserted for the family's subject, taken at each refresh.
   */
  latest?: (family: FamilyRow) => { user: string; groups: string[] } | undefined;
}

export class SessionManager {
  constructor(private readonly o: SessionManagerOptions) {}

  /** A new family and its first pair, after a successful login. */
  issue(login: LoginIdentity, upstreamRefreshToken?: string): SessionPair {
    const { repo, clock } = this.o;
    const now = clock.now();
    const familyId = newId('login_');
    const refreshToken = newOpaqueToken(REFRESH_PREFIX);
    const expiresAt = Math.min(now + this.o.refreshTtlMs, login.expiresAt ?? Infinity);
    return repo.transaction(() => {
      repo.purge(now - PURGE_AFTER_MS);
      repo.insertFamily({
        id: familyId,
        issuer: login.issuer,
        subject: login.subject,
        user: login.user,
        groups: login.groups,
        createdAt: now,
        expiresAt,
        upstream: upstreamRefreshToken === undefined ? null : sealUpstream(upstreamRefreshToken, refreshToken, familyId),
      });
      return this.newPair(familyId, login, expiresAt, now, refreshToken);
    });
  }

  private newPair(
    familyId: string,
    who: { user: string; groups: string[] },
    familyExpiresAt: number,
    now: number,
    refreshToken: string,
  ): SessionPair {
    const accessToken = newOpaqueToken(SESSION_PREFIX);
    const accessTokenExpiresAt = Math.min(now + this.o.ttlMs, familyExpiresAt);
    this.o.repo.insertSession(hashToken(accessToken), { id: newId('ses_'), familyId, createdAt: now, expiresAt: accessTokenExpiresAt });
    this.o.repo.insertRefresh(hashToken(refreshToken), { familyId, createdAt: now, expiresAt: familyExpiresAt });
    return {
      accessToken,
      accessTokenExpiresAt,
      refreshToken,
      refreshTokenExpiresAt: familyExpiresAt,
      identity: { user: who.user, groups: who.groups, kind: 'human', via: 'session' },
      familyId,
    };
  }

  /** Exchange a refresh token for a new pair (rotation); throws SessionError, or IdentityUnavailable from the IdP. */
  async refresh(refreshToken: string): Promise<SessionPair> {
    const { repo, clock, log } = this.o;
    if (!isOpaqueToken(refreshToken, REFRESH_PREFIX)) throw new SessionError('invalid_grant', 'not a jitgate refresh token');
    const hash = hashToken(refreshToken);
    const now = clock.now();
    const row = repo.refreshByHash(hash);
    if (!row) throw new SessionError('invalid_grant', 'unknown or expired refresh token: run `jitgate login`');
    const family = repo.getFamily(row.familyId);
    if (!family) throw new SessionError('invalid_grant', 'unknown or expired refresh token: run `jitgate login`');
    if (family.revokedAt !== null) {
      throw new SessionError('invalid_grant', `this sign-in was ended (${family.revokeReason ?? 'revoked'}): run \`jitgate login\``);
    }
    if (family.expiresAt <= now || row.expiresAt <= now)
      throw new SessionError('invalid_grant', 'this sign-in has expired: run `jitgate login`');
    if (row.usedAt !== null || !repo.useRefresh(hash, now)) {
      repo.revokeFamily(family.id, now, 'refresh_token_reuse');
      log.warn(
        { login: family.id, user: family.user },
        'a refresh token was used twice: the sign-in is revoked (token theft or a client bug)',
      );
      throw new SessionError(
        'invalid_grant',
        'this refresh token was already used, so the sign-in has been ended for safety: run `jitgate login`',
      );
    }

    let who = this.o.latest?.(family) ?? { user: family.user, groups: family.groups };
    let upstream: string | undefined;
    const sealed = family.upstream === null ? undefined : openUpstream(family.upstream, refreshToken, family.id);
    if (sealed !== undefined && this.o.reconfirm) {
      try {
        const fresh = await this.o.reconfirm.run(family, sealed);
        who = { user: fresh.user, groups: fresh.groups };
        upstream = fresh.upstreamRefreshToken;
      } catch (err) {
        if (this.o.reconfirm.isRefusal(err)) {
          repo.revokeFamily(family.id, now, 'idp_refused_refresh');
          log.info({ login: family.id, user: family.user, err }, 'the identity provider refused to refresh a sign-in: it is ended');
          throw new SessionError('invalid_grant', 'the identity provider no longer accepts this sign-in: run `jitgate login`');
        }
        // Nobody's fault (the IdP is down): the client may try again with the same refresh token.
        repo.unuseRefresh(hash, now);
        throw err;
      }
      if (who.user !== family.user)
        log.info({ login: family.id, before: family.user, after: who.user }, 'user name changed at the identity provider');
    }

    const nextRefresh = newOpaqueToken(REFRESH_PREFIX);
    return repo.transaction(() => {
      const current = repo.getFamily(family.id);
      if (!current || current.revokedAt !== null)
        throw new SessionError('invalid_grant', 'this sign-in was ended meanwhile: run `jitgate login`');
      repo.revokeSessions(family.id, now);
      repo.updateFamily(family.id, {
        ...who,
        upstream: upstream === undefined ? null : sealUpstream(upstream, nextRefresh, family.id),
        refreshedAt: now,
      });
      return this.newPair(family.id, who, family.expiresAt, now, nextRefresh);
    });
  }

  /** The identity behind a session token, or undefined when it is unknown, expired or revoked. */
  authenticate(token: string): SessionInfo | undefined {
    if (!isOpaqueToken(token, SESSION_PREFIX)) return undefined;
    const found = this.o.repo.sessionByHash(hashToken(token));
    if (!found) return undefined;
    const { session, family } = found;
    const now = this.o.clock.now();
    if (session.revokedAt !== null || family.revokedAt !== null || session.expiresAt <= now || family.expiresAt <= now) return undefined;
    return {
      identity: { user: family.user, groups: family.groups, kind: 'human', via: 'session' },
      sessionId: session.id,
      familyId: family.id,
      expiresAt: session.expiresAt,
      loginExpiresAt: family.expiresAt,
    };
  }

  /** End the login a session or refresh token belongs to. False when the token is unknown. */
  logout(token: string, reason = 'logout'): boolean {
    const { repo, clock } = this.o;
    let familyId: string | undefined;
    if (isOpaqueToken(token, SESSION_PREFIX)) familyId = repo.sessionByHash(hashToken(token))?.family.id;
    else if (isOpaqueToken(token, REFRESH_PREFIX)) familyId = repo.refreshByHash(hashToken(token))?.familyId;
    if (familyId === undefined) return false;
    repo.revokeFamily(familyId, clock.now(), reason);
    return true;
  }
}
