/**
 * SAML sign-ins shaped like the OIDC authorization-code login (./logins.ts), so the console's
 * browser sign-in and `jitgate login`'s loopback flow work unchanged:
 *
 *   1. start(): LoginFlows records the jitgate login; this records an AuthnRequest ID with the
 *      login's redirect URI and PKCE challenge, and returns the IdP URL carrying the request
 *      (HTTP-Redirect binding) as the "authorization URL";
 *   2. the IdP posts its Response to the gateway's ACS; acs() claims the request it answers (once),
 *      verifies the response (./saml.ts), refuses a replayed assertion ID, and sends the browser to
 *      the login's redirect URI with a one-time code and the login id as `state`, exactly where an
 *      OIDC IdP would have sent it: the CLI's loopback server, or the console's callback;
 *   3. redeem(): the code and the PKCE verifier (held by the CLI, or by the console's callback)
 *      give the identity, and LoginFlows hands it to SessionManager like an OIDC login.
 *
 * SAML has no refresh token to re-ask the IdP silently. A SAML sign-in therefore lasts at most the
 * provider's `signInTtl`, after which the person goes through the IdP again (which, while its own
 * session lasts, asks nothing); and every refresh before that takes the groups of the newest
 * assertion the IdP made for that person (latest()), so signing in anywhere updates all their
 * sign-ins. Sign-ins and refusals are audited (auth.saml.signin, auth.saml.refused).
 */
import { createHash, randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { AuditAppender } from '../audit/log.js';
import type { SamlProviderConfig } from '../config/types.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../obs/log.js';
import type { FamilyRow } from './repository.js';
import { SAML_REQUEST_TTL_MS, SamlProvider, SamlRefused } from './saml.js';
import { SamlRepository } from './saml-repository.js';
import type { LoginIdentity } from './sessions.js';

const CODE_TTL_MS = 2 * 60_000;

/** What the ACS answers the browser with: a redirect (to the login's redirect URI, or an error page). */
export type AcsOutcome = { ok: true; location: string; user: string } | { ok: false; location?: string; reason: string };

export class SamlLogins {
  private readonly providers = new Map<string, SamlProvider>();
  private readonly repo: SamlRepository;

  constructor(
    private readonly o: {
      db: Database.Database;
      clock: Clock;
      log: Logger;
      audit: AuditAppender;
      /** The gateway's public origin (the HTTP layer knows it); SP entity IDs and ACS URLs derive from it. */
      publicOrigin: () => string | undefined;
      fetch?: typeof fetch;
    },
    configs: readonly SamlProviderConfig[],
  ) {
    this.repo = new SamlRepository(o.db);
    for (const c of configs) this.providers.set(c.name, new SamlProvider(c, { clock: o.clock, ...(o.fetch ? { fetch: o.fetch } : {}) }));
  }

  get names(): string[] {
    return [...this.providers.keys()];
  }

  has(name: string): boolean {
    return this.providers.has(name);
  }

  provider(name: string): SamlProvider | undefined {
    return this.providers.get(name);
  }

  publicOrigin(): string {
    const origin = this.o.publicOrigin();
    if (origin === undefined)
      throw new SamlRefused("SAML sign-in needs the gateway's public URL: set listeners.http.publicUrl in the configuration");
    return origin;
  }

  /** Step 1: the IdP URL for this login. */
  async start(input: { provider: string; loginId: string; redirectUri: string; codeChallenge: string }): Promise<string> {
    const provider = this.providers.get(input.provider)!;
    const now = this.o.clock.now();
    this.repo.purgeRequests(now - 3_600_000);
    // An NCName (xs:ID): letters first; 160 random bits.
    const requestId = `_${randomBytes(20).toString('hex')}`;
    const url = await provider.authorizeUrl(this.publicOrigin(), requestId);
    this.repo.insertRequest({
      requestId,
      provider: provider.name,
      loginId: input.loginId,
      redirectUri: input.redirectUri,
      codeChallenge: input.codeChallenge,
      createdAt: now,
      expiresAt: now + SAML_REQUEST_TTL_MS,
    });
    return url;
  }

  /** Step 2: the IdP's POST to /api/auth/saml/NAME/acs. Never throws for a bad response: it is refused and audited. */
  async acs(name: string, samlResponse: unknown, clientAddress: string): Promise<AcsOutcome> {
    const provider = this.providers.get(name);
    if (!provider) return { ok: false, reason: `no SAML provider named ${JSON.stringify(name)}` };
    const refuse = async (
      reason: string,
      detail: string | undefined,
      request?: { loginId: string; redirectUri: string },
    ): Promise<AcsOutcome> => {
      this.o.log.warn({ provider: name, reason, detail, clientAddress }, 'SAML response refused');
      await this.audit({
        type: 'auth.saml.refused',
        actor: 'anonymous',
        subject: name,
        data: { provider: name, reason, ...(detail ? { detail } : {}), clientAddress },
      });
      if (!request) return { ok: false, reason };
      const back = new URL(request.redirectUri);
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', `the gateway refused the SAML response: ${reason}`);
      back.searchParams.set('state', request.loginId);
      return { ok: false, location: back.href, reason };
    };
    if (typeof samlResponse !== 'string' || samlResponse === '') return refuse('the request carries no SAMLResponse', undefined);
    const requestId = inResponseTo(samlResponse);
    if (requestId === undefined)
      return refuse('the response does not answer a sign-in started here (unsolicited responses are not accepted)', 'no InResponseTo');
    const request = this.repo.getRequest(requestId);
    if (!request || request.provider !== name) return refuse('the response does not answer a sign-in started here', 'unknown InResponseTo');
    const now = this.o.clock.now();
    // One response per request, claimed before the (slow) verification so two racing posts cannot both pass.
    if (!this.repo.answer(requestId, now))
      return refuse('this sign-in was already completed or has expired; sign in again', 'InResponseTo already answered or expired');
    let who;
    try {
      who = await provider.verify(this.publicOrigin(), samlResponse, request);
    } catch (err) {
      if (err instanceof SamlRefused) return refuse(err.reason, err.detail, request);
      this.o.log.warn({ err, provider: name }, 'SAML sign-in: the identity provider metadata cannot be read');
      return refuse('the identity provider cannot be reached; try again shortly', (err as Error).message, request);
    }
    if (!this.repo.rememberAssertion(name, who.assertionId, who.expiresAt, now)) {
      return refuse('this assertion was already used (replay)', `assertion ${who.assertionId}`, request);
    }
    const code = randomBytes(32).toString('base64url');
    const loginExpiresAt = now + provider.config.signInTtlMs;
    this.repo.transaction(() => {
      this.repo.setResult(
        requestId,
        hash(code),
        { subject: who.subject, user: who.user, groups: who.groups, loginExpiresAt },
        now + CODE_TTL_MS,
      );
      this.repo.setSubject(name, who.subject, who, now);
    });
    this.o.log.info({ provider: name, user: who.user, groups: who.groups }, 'SAML sign-in');
    await this.audit({
      type: 'auth.saml.signin',
      actor: who.user,
      subject: name,
      data: { provider: name, groups: who.groups, assertionId: who.assertionId, clientAddress },
    });
    const back = new URL(request.redirectUri);
    back.searchParams.set('code', code);
    back.searchParams.set('state', request.loginId);
    return { ok: true, location: back.href, user: who.user };
  }

  /** Step 3: the identity behind a one-time code, for the holder of the PKCE verifier; undefined when refused. */
  redeem(input: { provider: string; loginId: string; code: string; codeVerifier: string }): { login: LoginIdentity } | { refused: string } {
    const row = this.repo.redeem(input.loginId, hash(input.code), this.o.clock.now());
    if (!row || row.provider !== input.provider) return { refused: 'unknown, used or expired sign-in code: sign in again' };
    const challenge = createHash('sha256').update(input.codeVerifier, 'ascii').digest('base64url');
    if (challenge !== row.codeChallenge) return { refused: 'the PKCE verifier does not match this sign-in' };
    const id = row.identity;
    return { login: { issuer: input.provider, subject: id.subject, user: id.user, groups: id.groups, expiresAt: id.loginExpiresAt } };
  }

  /** For a refresh of a SAML sign-in: the newest asserted identity of its subject (undefined for other sign-ins). */
  latest(family: FamilyRow): { user: string; groups: string[] } | undefined {
    if (!this.providers.has(family.issuer)) return undefined;
    const s = this.repo.getSubject(family.issuer, family.subject);
    return s && { user: s.user, groups: s.groups };
  }

  private async audit(event: Parameters<AuditAppender['append']>[0]): Promise<void> {
    try {
      await this.o.audit.append(event);
    } catch (err) {
      this.o.log.error({ err }, 'cannot audit a SAML sign-in');
    }
  }
}

function hash(code: string): Buffer {
  return createHash('sha256').update(code, 'utf8').digest();
}

/** The (unverified) InResponseTo of a base64 Response: only to find the request it claims to answer. */
function inResponseTo(samlResponse: string): string | undefined {
  const head = Buffer.from(samlResponse, 'base64').toString('utf8', 0, 8192);
  const m = /<(?:[A-Za-z_][\w.-]*:)?Response\b[^>]*?\sInResponseTo="([^"]{1,200})"/.exec(head);
  return m?.[1];
}
