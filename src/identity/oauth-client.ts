/**
 * The gateway as an OAuth client of an issuer: it builds the authorization URL and talks to the
 * token, device-authorization and userinfo endpoints.
 *
 * Why the gateway and not the CLI talks to the token endpoint: the gateway holds the client secret
 * (a confidential client, so a stolen authorization code is useless without it), it must see the ID
 * token itself to trust the identity it turns into a session, and the CLI then needs nothing from
 * the IdP but a browser. The CLI keeps the PKCE verifier until the exchange, so a code intercepted
 * on the loopback redirect cannot be redeemed by whoever intercepted it either.
 */
import type { Clock } from '../core/clock.js';
import { causeText, IdentityUnavailable, type DiscoveryDocument, type OidcIssuer } from './oidc.js';

const FETCH_TIMEOUT_MS = 10_000;

export interface TokenSet {
  accessToken?: string;
  idToken?: string;
  refreshToken?: string;
  expiresIn?: number;
}

export interface DeviceAuthorization {
  deviceCode: string;
  userCode: string;
  verificationUri: string;
  verificationUriComplete?: string;
  expiresIn: number;
  interval: number;
}

/** An OAuth error answer from the IdP (RFC 6749 5.2 / RFC 8628 3.5): `code` is e.g. invalid_grant. */
export class OAuthError extends Error {
  constructor(
    readonly code: string,
    readonly description: string | undefined,
    readonly status: number,
  ) {
    super(description ? `${code}: ${description}` : code);
    this.name = 'OAuthError';
  }
}

export class OAuthClient {
  private readonly fetchImpl: typeof fetch;

  constructor(
    readonly issuer: OidcIssuer,
    /** The resolved client secret; undefined for a public client. Never logged. */
    private readonly clientSecret: string | undefined,
    deps: { clock: Clock; fetch?: typeof fetch },
  ) {
    this.fetchImpl = deps.fetch ?? fetch;
  }

  private get clientId(): string {
    return this.issuer.config.clientId;
  }

  async authorizationUrl(input: { redirectUri: string; state: string; nonce: string; codeChallenge: string }): Promise<string> {
    const doc = await this.issuer.metadata();
    if (!doc.authorization_endpoint) throw new IdentityUnavailable(`issuer ${this.issuer.name} has no authorization endpoint`);
    const url = new URL(doc.authorization_endpoint);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', this.clientId);
    url.searchParams.set('redirect_uri', input.redirectUri);
    url.searchParams.set('scope', this.issuer.config.scopes.join(' '));
    url.searchParams.set('state', input.state);
    url.searchParams.set('nonce', input.nonce);
    url.searchParams.set('code_challenge', input.codeChallenge);
    url.searchParams.set('code_challenge_method', 'S256');
    return url.href;
  }

  exchangeCode(input: { code: string; redirectUri: string; codeVerifier: string }): Promise<TokenSet> {
    return this.token({
      grant_type: 'authorization_code',
      code: input.code,
      redirect_uri: input.redirectUri,
      code_verifier: input.codeVerifier,
    });
  }

  pollDevice(deviceCode: string): Promise<TokenSet> {
    return this.token({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: deviceCode });
  }

  refresh(refreshToken: string): Promise<TokenSet> {
    return this.token({ grant_type: 'refresh_token', refresh_token: refreshToken });
  }

  async startDevice(): Promise<DeviceAuthorization> {
    const doc = await this.issuer.metadata();
    if (!doc.device_authorization_endpoint) {
      throw new OAuthError(
        'unsupported_grant_type',
        `issuer ${this.issuer.name} does not offer the device flow; use jitgate login without --device`,
        400,
      );
    }
    const body = await this.post(doc, doc.device_authorization_endpoint, { scope: this.issuer.config.scopes.join(' ') });
    const str = (k: string) => (typeof body[k] === 'string' ? (body[k] as string) : undefined);
    const num = (k: string) => (typeof body[k] === 'number' ? (body[k] as number) : undefined);
    const deviceCode = str('device_code');
    const userCode = str('user_code');
    const verificationUri = str('verification_uri') ?? str('verification_url');
    if (!deviceCode || !userCode || !verificationUri) {
      throw new IdentityUnavailable(`issuer ${this.issuer.name}: malformed device authorization response`);
    }
    return {
      deviceCode,
      userCode,
      verificationUri,
      ...(str('verification_uri_complete') ? { verificationUriComplete: str('verification_uri_complete') } : {}),
      expiresIn: num('expires_in') ?? 600,
      interval: num('interval') ?? 5,
    };
  }

  /** Claims from the userinfo endpoint (for IdPs that keep groups out of the ID token). */
  async userinfo(accessToken: string): Promise<Record<string, unknown> | undefined> {
    const doc = await this.issuer.metadata();
    if (!doc.userinfo_endpoint) return undefined;
    let res: Response;
    try {
      res = await this.fetchImpl(doc.userinfo_endpoint, {
        headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
      });
    } catch (err) {
      throw new IdentityUnavailable(`issuer ${this.issuer.name}: userinfo: ${causeText(err)}`, { cause: err });
    }
    // Some IdPs accept only their own audience at userinfo; then the ID token is all there is.
    if (res.status === 401 || res.status === 403) return undefined;
    if (!res.ok || !(res.headers.get('content-type') ?? '').includes('json')) return undefined;
    const body = (await res.json()) as unknown;
    return typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : undefined;
  }

  private async token(params: Record<string, string>): Promise<TokenSet> {
    const doc = await this.issuer.metadata();
    if (!doc.token_endpoint) throw new IdentityUnavailable(`issuer ${this.issuer.name} has no token endpoint`);
    const body = await this.post(doc, doc.token_endpoint, params);
    const str = (k: string) => (typeof body[k] === 'string' ? (body[k] as string) : undefined);
    return {
      ...(str('access_token') ? { accessToken: str('access_token') } : {}),
      ...(str('id_token') ? { idToken: str('id_token') } : {}),
      ...(str('refresh_token') ? { refreshToken: str('refresh_token') } : {}),
      ...(typeof body.expires_in === 'number' ? { expiresIn: body.expires_in } : {}),
    };
  }

  /** POST a form with client authentication; OAuth errors become OAuthError, anything else IdentityUnavailable. */
  private async post(doc: DiscoveryDocument, endpoint: string, params: Record<string, string>): Promise<Record<string, unknown>> {
    const form = new URLSearchParams(params);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    const methods = doc.token_endpoint_auth_methods_supported ?? ['client_secret_basic'];
    if (this.clientSecret === undefined) {
      form.set('client_id', this.clientId);
    } else if (methods.includes('client_secret_basic') || !methods.includes('client_secret_post')) {
      // RFC 6749 2.3.1: id and secret are form-urlencoded before base64.
      const pair = `${formEncode(this.clientId)}:${formEncode(this.clientSecret)}`;
      headers.authorization = `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`;
    } else {
      form.set('client_id', this.clientId);
      form.set('client_secret', this.clientSecret);
    }
    let res: Response;
    let text: string;
    try {
      res = await this.fetchImpl(endpoint, {
        method: 'POST',
        headers,
        body: form.toString(),
        redirect: 'error',
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
      });
      text = await res.text();
    } catch (err) {
      throw new IdentityUnavailable(`issuer ${this.issuer.name}: cannot reach ${endpoint}: ${causeText(err)}`, { cause: err });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new IdentityUnavailable(`issuer ${this.issuer.name}: ${endpoint} answered HTTP ${res.status} without JSON`);
    }
    const obj = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
    if (!res.ok) {
      if (typeof obj.error === 'string') {
        throw new OAuthError(obj.error, typeof obj.error_description === 'string' ? obj.error_description : undefined, res.status);
      }
      throw new IdentityUnavailable(`issuer ${this.issuer.name}: ${endpoint} answered HTTP ${res.status}`);
    }
    return obj;
  }
}

function formEncode(s: string): string {
  return new URLSearchParams({ s }).toString().slice(2);
}
