/**
 * IdentityService: the one place that says who a caller is. Everything that accepts a bearer (the
 * HTTP API through the Router's authenticator, later the MCP endpoint) asks `authenticate()`:
 *
 *   jgs_...   gateway session (after `jitgate login`)          -> human,   via 'session'
 *   jgk_...   API key                                          -> service, via 'apikey'
 *   a JWT     access token of a configured OIDC issuer:
 *               client of a configured service account         -> service, via 'client-credentials'
 *               a person                                       -> human,   via 'oidc'
 *   anything else (including jgr_ refresh tokens)              -> null
 *
 * `authenticate` resolves to null for a bad credential and throws IdentityUnavailable when it cannot
 * decide (an issuer's discovery document or keys cannot be fetched): callers fail closed.
 */
import type { IncomingMessage } from 'node:http';
import type Database from 'better-sqlite3';
import type { IdentitiesConfig, OidcIssuerConfig } from '../config/types.js';
import type { Clock } from '../core/clock.js';
import type { Identity } from '../core/types.js';
import type { Logger } from '../obs/log.js';
import { AuditLog } from '../audit/log.js';
import { SqliteSql } from '../store/sqlite-sql.js';
import { ApiKeys } from './api-keys.js';
import { LoginFlows, type IssuerHandle } from './logins.js';
import { OAuthClient, OAuthError } from './oauth-client.js';
import { looksLikeJwt, OidcIssuer, TokenRejected, unverifiedIssuer } from './oidc.js';
import { API_KEY_PREFIX, SESSION_PREFIX } from './opaque-tokens.js';
import { IdentityRepository } from './repository.js';
import { SamlLogins } from './saml-logins.js';
import { SessionManager, type SessionInfo } from './sessions.js';

export interface IdentityServiceOptions {
  config: IdentitiesConfig;
  /** The gateway's SQLite database (store.database); the module keeps its own tables in it. */
  db: Database.Database;
  clock: Clock;
  log: Logger;
  /** Resolves a secret reference (env:, file:, secret:) to its value. */
  resolveSecret: (ref: string) => Promise<string>;
  /** The gateway's public origin, once known (SAML's entity IDs and ACS URLs derive from it). */
  publicOrigin: () => string | undefined;
  fetch?: typeof fetch;
}

export type AuthResult = { ok: true; identity: Identity; session?: SessionInfo } | { ok: false; reason: string };

export class IdentityService {
  readonly sessions: SessionManager;
  readonly apiKeys: ApiKeys;
  readonly logins: LoginFlows;
  readonly saml: SamlLogins;
  private readonly issuers = new Map<string, IssuerHandle>();
  private readonly adminGroups: ReadonlySet<string>;

  private constructor(
    private readonly o: IdentityServiceOptions,
    audit: AuditLog,
  ) {
    const repo = new IdentityRepository(o.db);
    this.adminGroups = new Set(o.config.admins.groups);
    this.saml = new SamlLogins(
      { db: o.db, clock: o.clock, log: o.log, audit, publicOrigin: o.publicOrigin, ...(o.fetch ? { fetch: o.fetch } : {}) },
      o.config.saml ?? [],
    );
    this.logins = new LoginFlows({ repo, clock: o.clock, log: o.log, issuers: () => this.issuers, saml: this.saml });
    this.sessions = new SessionManager({
      repo,
      clock: o.clock,
      log: o.log,
      ttlMs: o.config.session.ttlMs,
      refreshTtlMs: o.config.session.refreshTtlMs,
      reconfirm: {
        run: (family, token) => this.logins.reconfirm(family, token),
        // invalid_grant & co. are the IdP saying no; IdentityUnavailable is the IdP not answering.
        isRefusal: (err) => err instanceof OAuthError || err instanceof TokenRejected,
      },
      latest: (family) => this.saml.latest(family),
    });
    this.apiKeys = new ApiKeys(repo, o.clock, audit);
  }

  /** Builds the service; resolves every issuer's client secret now, so a missing one stops the start. */
  static async create(o: IdentityServiceOptions): Promise<IdentityService> {
    // Its own appender on the gateway's database: appends are transactions, safe beside the others.
    const service = new IdentityService(o, await AuditLog.open(SqliteSql.of(o.db), () => o.clock.now()));
    for (const issuer of o.config.oidc) {
      let secret: string | undefined;
      if (issuer.clientSecret !== undefined) {
        try {
          secret = await o.resolveSecret(issuer.clientSecret);
        } catch (err) {
          throw new Error(`identities.oidc "${issuer.name}": clientSecret: ${(err as Error).message}`, { cause: err });
        }
      }
      service.addIssuer(issuer, secret);
    }
    if (service.adminGroups.size === 0 && o.config.oidc.length + (o.config.saml?.length ?? 0) > 0)
      o.log.warn('no administrator groups are configured (identities.admins.groups): nobody can create API keys');
    return service;
  }

  /** Trust one more issuer (the composition root adds the development IdP once its URL is known). */
  addIssuer(config: OidcIssuerConfig, clientSecret: string | undefined): void {
    if (this.issuers.has(config.name)) throw new Error(`duplicate OIDC issuer name ${config.name}`);
    const issuer = new OidcIssuer(config, { clock: this.o.clock, ...(this.o.fetch ? { fetch: this.o.fetch } : {}) });
    const client = new OAuthClient(issuer, clientSecret, { clock: this.o.clock, ...(this.o.fetch ? { fetch: this.o.fetch } : {}) });
    this.issuers.set(config.name, { issuer, client });
  }

  /** Names one can sign in with: OIDC issuers, then SAML providers. */
  get issuerNames(): string[] {
    return [...this.issuers.keys(), ...this.saml.names];
  }

  /** Issuer URLs whose tokens are accepted (for OAuth protected-resource metadata). */
  get issuerUrls(): string[] {
    return [...this.issuers.values()].map((h) => h.issuer.config.issuer);
  }

  async authenticate(bearer: string): Promise<Identity | null> {
    const r = await this.authenticateDetailed(bearer);
    return r.ok ? r.identity : null;
  }

  /** Like authenticate, with the reason for a refusal (safe to log: it never contains the credential). */
  async authenticateDetailed(bearer: string): Promise<AuthResult> {
    const token = bearer.trim();
    if (token.startsWith(SESSION_PREFIX)) {
      const session = this.sessions.authenticate(token);
      return session
        ? { ok: true, identity: session.identity, session }
        : { ok: false, reason: 'unknown, expired or revoked session token' };
    }
    if (token.startsWith(API_KEY_PREFIX)) {
      const key = this.apiKeys.authenticate(token);
      return key ? { ok: true, identity: key.identity } : { ok: false, reason: 'unknown, expired or revoked API key' };
    }
    if (!looksLikeJwt(token)) return { ok: false, reason: 'not a jitgate session token, API key or JWT' };
    const iss = unverifiedIssuer(token);
    const handle = [...this.issuers.values()].find((h) => h.issuer.config.issuer === iss);
    if (!handle) return { ok: false, reason: `the token's issuer ${JSON.stringify(iss ?? null)} is not configured` };
    try {
      const r = await handle.issuer.verifyAccessToken(token);
      if (!r.ok) return { ok: false, reason: r.reason };
      const { user, groups, kind } = r.identity;
      return { ok: true, identity: { user, groups, kind, via: kind === 'service' ? 'client-credentials' : 'oidc' } };
    } catch (err) {
      if (err instanceof TokenRejected) return { ok: false, reason: err.reason };
      throw err;
    }
  }

  isAdmin(identity: Identity): boolean {
    if (identity.via === 'local-admin') return true;
    return identity.groups.some((g) => this.adminGroups.has(g));
  }
}

/** The credential of an `Authorization: Bearer <x>` header, if there is one. */
export function bearerOf(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const m = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
  return m?.[1];
}
