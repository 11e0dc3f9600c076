/**
 * One OpenID Connect issuer, as the gateway trusts it: its discovery document, its signing keys and
 * the checks every token from it must pass.
 *
 *  - Discovery: `<issuer>/.well-known/openid-configuration`, fetched on first use (so a gateway can
 *    start while its IdP is down; identity then fails closed) and re-read hourly. Its `issuer` must
 *    equal the configured one exactly (OIDC Discovery 4.3), or nothing from it is trusted.
 *  - Keys: jose's createRemoteJWKSet on the document's `jwks_uri`. A token signed with a key id the
 *    cached set lacks makes it download the set again (at most once per `jwksRefreshCooldown`), so an
 *    IdP that rotates its keys is followed without a restart; the set is also re-read every 10 min.
 *  - Tokens: signature with an asymmetric algorithm only (no `none`, no HMAC with a public key),
 *    `iss`, `aud`, and `exp` (required: a token without one would never expire), with 60 s of clock
 *    skew either way. "Now" is the injected Clock, so tests move time instead of sleeping.
 *
 * Failures come in two kinds: TokenRejected (the token is bad; the caller answers 401) and
 * IdentityUnavailable (the IdP or its keys cannot be reached; the caller fails closed with 503).
 */
import { createRemoteJWKSet, customFetch, decodeJwt, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { OidcIssuerConfig } from '../config/types.js';
import type { Clock } from '../core/clock.js';
import { identityFromAccessToken, type Claims, type ClaimsResult } from './claims.js';

export const CLOCK_SKEW_SECONDS = 60;
const DISCOVERY_MAX_AGE_MS = 3_600_000;
const FETCH_TIMEOUT_MS = 5_000;
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

export interface DiscoveryDocument {
  issuer: string;
  jwks_uri: string;
  authorization_endpoint?: string;
  token_endpoint?: string;
  device_authorization_endpoint?: string;
  userinfo_endpoint?: string;
  token_endpoint_auth_methods_supported?: string[];
  code_challenge_methods_supported?: string[];
}

/** The token is not acceptable; `reason` is safe to log and to show (it never contains the token). */
export class TokenRejected extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'TokenRejected';
  }
}

/** The issuer cannot be asked right now (network, HTTP status, malformed answer). Fail closed. */
export class IdentityUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IdentityUnavailable';
  }
}

const REJECTING_CODES = new Map<string, string>([
  ['ERR_JWT_EXPIRED', 'the token has expired'],
  ['ERR_JWKS_NO_MATCHING_KEY', 'the token is signed with a key the issuer does not publish'],
  ['ERR_JWKS_MULTIPLE_MATCHING_KEYS', 'the token does not say which of the issuer keys signed it'],
  ['ERR_JWS_SIGNATURE_VERIFICATION_FAILED', 'the token signature does not verify'],
  ['ERR_JOSE_ALG_NOT_ALLOWED', 'the token is signed with an algorithm the gateway does not accept'],
  ['ERR_JWS_INVALID', 'the token is not a well-formed JWS'],
  ['ERR_JWT_INVALID', 'the token is not a well-formed JWT'],
  ['ERR_JOSE_NOT_SUPPORTED', 'the token uses an unsupported algorithm or key type'],
]);

/** Map a jose failure to TokenRejected / IdentityUnavailable. */
export function classifyJoseError(err: unknown): TokenRejected | IdentityUnavailable {
  if (err instanceof TokenRejected || err instanceof IdentityUnavailable) return err;
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    const claim = err.claim;
    const what = claim === 'aud' ? 'audience' : claim === 'iss' ? 'issuer' : claim;
    return new TokenRejected(`wrong or missing ${what} (${claim}) claim: ${err.reason === 'missing' ? 'missing' : 'not accepted'}`);
  }
  const code = (err as { code?: string } | null)?.code;
  const reason = code === undefined ? undefined : REJECTING_CODES.get(code);
  if (reason) return new TokenRejected(reason);
  const message = err instanceof Error ? err.message : String(err);
  return new IdentityUnavailable(`cannot fetch the issuer's signing keys: ${message}`, { cause: err });
}

export interface OidcIssuerDeps {
  clock: Clock;
  fetch?: typeof fetch;
}

export class OidcIssuer {
  private discovery?: { doc: DiscoveryDocument; at: number };
  private pending?: Promise<DiscoveryDocument>;
  private jwks?: { uri: string; set: ReturnType<typeof createRemoteJWKSet> };
  private readonly fetchImpl: typeof fetch;

  constructor(
    readonly config: OidcIssuerConfig,
    private readonly deps: OidcIssuerDeps,
  ) {
    this.fetchImpl = deps.fetch ?? fetch;
  }

  get name(): string {
    return this.config.name;
  }

  /** The discovery document (cached; concurrent callers share one download). */
  async metadata(): Promise<DiscoveryDocument> {
    const now = this.deps.clock.now();
    if (this.discovery && now - this.discovery.at < DISCOVERY_MAX_AGE_MS) return this.discovery.doc;
    this.pending ??= this.fetchDiscovery().finally(() => (this.pending = undefined));
    try {
      const doc = await this.pending;
      this.discovery = { doc, at: now };
      return doc;
    } catch (err) {
      // A stale document beats none: keys and endpoints rarely move, and jose re-reads the keys anyway.
      if (this.discovery) return this.discovery.doc;
      throw err;
    }
  }

  private async fetchDiscovery(): Promise<DiscoveryDocument> {
    const url = `${this.config.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    let body: unknown;
    try {
      const res = await this.fetchImpl(url, {
        redirect: 'error',
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
        headers: { accept: 'application/json' },
      });
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      body = await res.json();
    } catch (err) {
      throw new IdentityUnavailable(`issuer ${this.name}: cannot read ${url}: ${causeText(err)}`, { cause: err });
    }
    const doc = body as Partial<DiscoveryDocument> | null;
    if (typeof doc !== 'object' || doc === null || typeof doc.jwks_uri !== 'string') {
      throw new IdentityUnavailable(`issuer ${this.name}: ${url} is not a discovery document (no jwks_uri)`);
    }
    if (doc.issuer !== this.config.issuer) {
      throw new IdentityUnavailable(
        `issuer ${this.name}: the discovery document names issuer ${JSON.stringify(doc.issuer)}, not the configured ${JSON.stringify(this.config.issuer)}`,
      );
    }
    return doc as DiscoveryDocument;
  }

  private async keySet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    const { jwks_uri: uri } = await this.metadata();
    if (this.jwks?.uri !== uri) {
      this.jwks = {
        uri,
        set: createRemoteJWKSet(new URL(uri), {
          cooldownDuration: this.config.jwksCooldownMs,
          timeoutDuration: FETCH_TIMEOUT_MS,
          [customFetch]: this.fetchImpl,
        }),
      };
    }
    return this.jwks.set;
  }

  /** Verify a JWT from this issuer for `audience`; returns its claims or throws TokenRejected / IdentityUnavailable. */
  async verify(token: string, audience: string, opts: { nonce?: string } = {}): Promise<JWTPayload> {
    const keys = await this.keySet();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: this.config.issuer,
        audience,
        algorithms: ALGORITHMS,
        clockTolerance: CLOCK_SKEW_SECONDS,
        currentDate: new Date(this.deps.clock.now()),
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      throw classifyJoseError(err);
    }
    if (opts.nonce !== undefined && payload.nonce !== opts.nonce) throw new TokenRejected('the ID token nonce does not match this login');
    return payload;
  }

  /** A bearer access token (a person's, or a service account's from client credentials). */
  async verifyAccessToken(token: string): Promise<ClaimsResult> {
    const claims = await this.verify(token, this.config.audience);
    // With audience = clientId (the default) an ID token would pass the checks above. It proves a
    // sign-in to the gateway's client, not authority to call it: refuse what is marked as one.
    if (claims.nonce !== undefined || claims.typ === 'ID') return { ok: false, reason: 'an ID token is not an access token' };
    return identityFromAccessToken(claims as Claims, this.config);
  }
}

/** The unverified `iss` of a JWT, to pick which configured issuer must verify it. */
export function unverifiedIssuer(token: string): string | undefined {
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}

/** Three base64url segments: looks like a JWS compact serialization (cheap check before decoding). */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

export function causeText(err: unknown): string {
  const e = err as { message?: string; cause?: { message?: string; code?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return cause ? `${e.message ?? String(err)} (${cause})` : (e?.message ?? String(err));
}
