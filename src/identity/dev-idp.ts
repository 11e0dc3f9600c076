/**
 * The built-in development identity provider: a real OpenID Provider (the `oidc-provider` package)
 * with a handful of users held in memory, so the whole sign-in story can be tried on one machine.
 * The embedded default mounts it on the gateway's own HTTP port under /dev-idp (one port to
 * remember; its issuer is http://127.0.0.1:8080/dev-idp) and configures the gateway to trust it like
 * any other issuer. The test suites run the same module in a child process as their IdP.
 *
 * What it offers, the way a production IdP would:
 *   - authorization code + PKCE (required) for the gateway's client, loopback redirects on any port
 *     (RFC 8252), with a login page that checks the user's password, and consent given on the user's
 *     behalf (the gateway is first-party);
 *   - the device flow, with its user-code and confirmation pages;
 *   - rotating refresh tokens;
 *   - client credentials for agent clients;
 *   - JWT access tokens for the gateway's audience (resource indicators), carrying the groups claim;
 *   - ID tokens that carry profile, email and groups claims.
 *
 * Never part of a real deployment: no config file can turn it on (see config/identities.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes, randomUUID, timingSafeEqual, createHash } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import type ProviderClass from 'oidc-provider';
import { DevIdpStore } from './dev-idp-store.js';

export interface DevIdpUser {
  user: string;
  password: string;
  displayName?: string;
  email?: string;
  groups: string[];
}

export interface DevIdpClient {
  clientId: string;
  clientSecret: string;
}

export interface DevIdpOptions {
  /** Full issuer URL, e.g. http://127.0.0.1:8080/dev-idp. Its path is where the provider is mounted. */
  issuer: string;
  users: readonly DevIdpUser[];
  /** The gateway's client: code + PKCE, device flow, refresh tokens. */
  gatewayClient: DevIdpClient;
  /** Client-credentials clients (agents, automation). */
  agentClients?: readonly DevIdpClient[];
  /** `aud` of JWT access tokens; further audiences may be requested with `resource` (tests). */
  audience: string;
  extraAudiences?: readonly string[];
  /** Private signing keys (JWKs with kid); a fresh RS256 key when absent. */
  signingKeys?: JWK[];
  ttl?: { accessTokenSeconds?: number; idTokenSeconds?: number; clientCredentialsSeconds?: number };
  /** One line shown on the login page (e.g. the demo passwords). */
  loginHint?: string;
  /** Where sign-ins, codes and tokens live; share one to keep state across a key rotation. */
  store?: DevIdpStore;
}

export interface DevIdp {
  readonly issuer: string;
  /** The mount path (the issuer URL's path, '' at the root). */
  readonly mountPath: string;
  /** Handles a request whose URL starts with mountPath. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  readonly provider: ProviderClass;
}

type ProviderModule = typeof import('oidc-provider');
let loading: Promise<ProviderModule> | undefined;

/**
 * Loads oidc-provider once. It prints "Unsupported runtime" on import when Node is older than 22
 * LTS; jitgate supports Node 20 and its tests run every flow of this module on it, so that one
 * warning is dropped here instead of alarming everyone who runs `jitgate serve`.
 */
export function loadOidcProvider(): Promise<ProviderModule> {
  loading ??= (async () => {
    const warn = console.warn;
    console.warn = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('oidc-provider WARNING: Unsupported runtime')) return;
      warn(...args);
    };
    try {
      return await import('oidc-provider');
    } finally {
      console.warn = warn;
    }
  })();
  return loading;
}

/** A fresh RS256 signing key as a private JWK with a key id. */
export async function generateSigningKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

const SCOPES = ['openid', 'profile', 'email', 'groups', 'offline_access'];
const CLAIMS = { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email', 'email_verified'], groups: ['groups'] };
/** The gateway's client redirects to the CLI's loopback server; any port is accepted (native client). */
export const DEV_IDP_REDIRECT_URIS = ['http://127.0.0.1/callback', 'http://[::1]/callback', 'http://localhost/callback'];
/** The web console's sign-in returns to the gateway itself (api/browser-auth.ts), on any loopback port. */
export const DEV_IDP_CONSOLE_REDIRECT_URIS = [
  'http://127.0.0.1/api/auth/browser/callback',
  'http://[::1]/api/auth/browser/callback',
  'http://localhost/api/auth/browser/callback',
];

export async function createDevIdp(options: DevIdpOptions): Promise<DevIdp> {
  const { default: Provider, errors } = await loadOidcProvider();
  const mountPath = new URL(options.issuer).pathname.replace(/\/$/, '');
  // Looked up on every use (not indexed once), so a test IdP can change or remove a user while running.
  const users = { get: (name: string) => options.users.find((u) => u.user === name) };
  // OAuth resource indicators must be absolute URIs (RFC 8707), while an audience is any string (the
  // example configuration says `audience: jitgate`): each audience gets a resource URI, and tokens
  // for that resource carry the audience itself.
  const audienceOf = new Map([options.audience, ...(options.extraAudiences ?? [])].map((a) => [resourceFor(a), a]));
  const defaultResource = resourceFor(options.audience);
  const keys = options.signingKeys ?? [await generateSigningKey()];
  const ttl = options.ttl ?? {};

  const claimsOf = (u: DevIdpUser) => ({
    sub: u.user,
    preferred_username: u.user,
    name: u.displayName ?? u.user,
    email: u.email ?? `${u.user}@example.com`,
    email_verified: true,
    groups: u.groups,
  });

  const configuration: Configuration = {
    clients: [
      {
        client_id: options.gatewayClient.clientId,
        client_secret: options.gatewayClient.clientSecret,
        client_name: 'jitgate',
        application_type: 'native',
        redirect_uris: [...DEV_IDP_REDIRECT_URIS, ...DEV_IDP_CONSOLE_REDIRECT_URIS],
        grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      ...(options.agentClients ?? []).map((c) => ({
        client_id: c.clientId,
        client_secret: c.clientSecret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic' as const,
      })),
    ],
    adapter: (options.store ?? new DevIdpStore()).adapter(),
    jwks: { keys },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: SCOPES,
    claims: CLAIMS,
    // Put the requested claims (groups above all) into the ID token, as most IdPs can be told to.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    async findAccount(_ctx, sub) {
      const u = users.get(sub);
      if (!u) return undefined;
      return { accountId: sub, claims: () => claimsOf(u) };
    },
    // Groups in the JWT access token too, so it works as a bearer at the gateway on its own.
    async extraTokenClaims(_ctx, token) {
      const accountId = 'accountId' in token ? token.accountId : undefined;
      const u = accountId === undefined ? undefined : users.get(accountId);
      return u ? { groups: u.groups, preferred_username: u.user } : undefined;
    },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    interactions: { url: (_ctx, interaction) => `${mountPath}/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      rpInitiatedLogout: { enabled: false },
      deviceFlow: {
        enabled: true,
        userCodeInputSource: (ctx, form, _out, err) => {
          ctx.body = page(
            'Device sign-in',
            `${err ? '<p class="error">That code was not accepted. Try again.</p>' : '<p>Enter the code shown by <code>jitgate login --device</code>.</p>'}${form}<button type="submit" form="op.deviceInputForm">Continue</button>`,
          );
        },
        userCodeConfirmSource: (ctx, form, _client, _info, userCode) => {
          ctx.body = page(
            'Confirm device',
            `<p>Sign in <b>jitgate</b> on the device showing <code>${escapeHtml(userCode)}</code>?</p>${form}` +
              '<button type="submit" form="op.deviceConfirmForm">Continue</button> ' +
              '<button type="submit" form="op.deviceConfirmForm" value="yes" name="abort">Abort</button>',
          );
        },
        successSource: (ctx) => {
          ctx.body = page('Signed in', '<p>The device is signed in. You can close this page.</p>');
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => defaultResource,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource) => {
          const audience = audienceOf.get(resource);
          if (audience === undefined) throw new errors.InvalidTarget();
          return {
            scope: 'jitgate',
            audience,
            accessTokenFormat: 'jwt',
            accessTokenTTL: ttl.accessTokenSeconds ?? 3600,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    ttl: {
      AccessToken: () => ttl.accessTokenSeconds ?? 3600,
      ClientCredentials: () => ttl.clientCredentialsSeconds ?? ttl.accessTokenSeconds ?? 600,
      IdToken: () => ttl.idTokenSeconds ?? 3600,
      AuthorizationCode: () => 60,
      DeviceCode: () => 600,
      RefreshToken: () => 14 * 86_400,
      Interaction: () => 3600,
      Session: () => 14 * 86_400,
      Grant: () => 14 * 86_400,
    },
    clientBasedCORS: () => false,
    renderError: (ctx: KoaContextWithOIDC, out) => {
      ctx.type = 'html';
      ctx.body = page(
        'Sign-in error',
        `<p class="error">${escapeHtml(String(out.error))}: ${escapeHtml(String(out.error_description ?? ''))}</p>`,
      );
    },
  };

  const provider = new Provider(options.issuer, configuration);
  const callback = provider.callback();
  const interactionPrefix = `${mountPath}/interaction/`;

  const interaction = async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    const [uid, action] = path.slice(interactionPrefix.length).split('/');
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid)
      return sendHtml(res, 400, page('Sign-in error', '<p class="error">This sign-in page is stale: start again.</p>'));
    if (details.prompt.name === 'login') {
      if (req.method === 'POST' && action === 'login') {
        const form = new URLSearchParams(await readBody(req));
        const u = users.get(form.get('username') ?? '');
        if (u && samePassword(form.get('password') ?? '', u.password)) {
          return provider.interactionFinished(req, res, { login: { accountId: u.user } }, { mergeWithLastSubmission: false });
        }
        return sendHtml(res, 401, loginPage(interactionPrefix + uid, options.loginHint, 'Wrong user name or password.'));
      }
      if (req.method === 'POST' && action === 'abort') {
        return provider.interactionFinished(
          req,
          res,
          { error: 'access_denied', error_description: 'the user cancelled the sign-in' },
          { mergeWithLastSubmission: false },
        );
      }
      return sendHtml(res, 200, loginPage(interactionPrefix + uid, options.loginHint));
    }
    if (details.prompt.name === 'consent') {
      // First-party client: consent is given on the user's behalf for exactly what was asked.
      const accountId = details.session?.accountId;
      const clientId = String(details.params.client_id);
      const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId, clientId });
      if (!grant) throw new Error('grant disappeared during the sign-in');
      const d = details.prompt.details as {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      for (const [resource, scopes] of Object.entries(d.missingResourceScopes ?? {})) grant.addResourceScope(resource, scopes.join(' '));
      const grantId = await grant.save();
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    return sendHtml(res, 400, page('Sign-in error', `<p class="error">Unsupported prompt ${escapeHtml(details.prompt.name)}.</p>`));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path.startsWith(interactionPrefix)) {
      try {
        await interaction(req, res, path);
      } catch (err) {
        // Expired or unknown interaction (oidc-provider's SessionNotFound and the like).
        if (!res.headersSent)
          sendHtml(res, 400, page('Sign-in error', `<p class="error">${escapeHtml((err as Error).message)}: start the sign-in again.</p>`));
      }
      return;
    }
    // Mounted like Express does it: the provider sees the path below its mount point and works out
    // its mount path from originalUrl, so the URLs it prints carry the prefix.
    if (mountPath !== '') {
      (req as IncomingMessage & { originalUrl?: string }).originalUrl = req.url;
      req.url = (req.url ?? '/').slice(mountPath.length) || '/';
    }
    await callback(req, res);
  };

  return { issuer: options.issuer, mountPath, handle, provider };
}

/** The resource indicator for an audience: itself when it is an absolute URI, else a URN naming it. */
export function resourceFor(audience: string): string {
  return URL.canParse(audience) ? audience : `urn:jitgate:audience:${encodeURIComponent(audience)}`;
}

function samePassword(given: string, expected: string): boolean {
  // Compare digests: equal length for timingSafeEqual whatever was typed.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function loginPage(action: string, hint: string | undefined, error?: string): string {
  return page(
    'Sign in',
    `${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}` +
      `<form method="post" action="${escapeHtml(action)}/login" autocomplete="off">` +
      '<label>User <input name="username" autofocus required></label>' +
      '<label>Password <input name="password" type="password" required></label>' +
      '<button type="submit">Sign in</button></form>' +
      `<form method="post" action="${escapeHtml(action)}/abort"><button type="submit" class="link">Cancel</button></form>` +
      (hint ? `<p class="hint">${escapeHtml(hint)}</p>` : ''),
  );
}

function page(title: string, body: string): string {
  return (
    `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escapeHtml(title)} - jitgate development IdP</title>` +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    '<style>body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem}label{display:block;margin:.6rem 0}' +
    'input{display:block;width:100%;padding:.4rem;box-sizing:border-box}button{margin:.6rem .3rem 0 0;padding:.4rem 1rem}' +
    '.error{color:#b00020}.hint{color:#555;font-size:.9rem}.link{background:none;border:none;color:#555;padding:0}</style></head>' +
    `<body><h1>${escapeHtml(title)}</h1><p class="hint">jitgate development identity provider: for trying jitgate, never for production.</p>${body}</body></html>`
  );
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(html),
  });
  res.end(html);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
