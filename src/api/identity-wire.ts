/**
 * How the composition root (main.ts) plugs identity into the HTTP API: builds IdentityService,
 * registers its HTTP routes, makes it the Router's authenticator, and, in the embedded default
 * only, mounts the development identity provider on the gateway's HTTP port under /dev-idp.
 *
 * The dev IdP's issuer URL contains the HTTP port, which is known only once the listener is bound
 * (port 0 picks one), so it is created in `listening()`. Everything slow (loading oidc-provider,
 * generating its signing key) happens before, so no request can arrive between the listener coming
 * up and the IdP being mounted.
 */
import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { IncomingMessage } from 'node:http';
import type { IdentitiesConfig, OidcIssuerConfig } from '../config/types.js';
import type { Clock } from '../core/clock.js';
import { createDevIdp, generateSigningKey, loadOidcProvider } from '../identity/dev-idp.js';
import { IdentityUnavailable } from '../identity/oidc.js';
import { bearerOf, IdentityService } from '../identity/service.js';
import type { Logger } from '../obs/log.js';
import { registerIdentityRoutes } from './identity-routes.js';
import { HttpError, type Authenticator, type Router } from './router.js';

export const DEV_IDP_PATH = '/dev-idp';
export const DEV_IDP_ISSUER_NAME = 'dev';
export const DEV_IDP_CLIENT_ID = 'jitgate';

export interface IdentityStartOptions {
  config: IdentitiesConfig;
  db: Database.Database;
  router: Router;
  clock: Clock;
  log: Logger;
  resolveSecret: (ref: string) => Promise<string>;
  /** The gateway's public origin ({@link publicOriginOf}); SAML endpoints derive from it. */
  publicOrigin: () => string | undefined;
}

export interface IdentityModule {
  service: IdentityService;
  /** Call once the HTTP listener is bound, with its base URL (mounts the dev IdP when configured). */
  listening(httpAddress: string): Promise<void>;
  /** The development IdP's issuer URL, once mounted. */
  devIdpIssuer?: string;
}

export async function startIdentity(o: IdentityStartOptions): Promise<IdentityModule> {
  const service = await IdentityService.create({
    config: o.config,
    db: o.db,
    clock: o.clock,
    log: o.log,
    resolveSecret: o.resolveSecret,
    publicOrigin: o.publicOrigin,
  });
  registerIdentityRoutes(o.router, service, o.log);
  o.router.setAuthenticator(bearerAuthenticator(service, o.log));

  const dev = o.config.devIdp;
  if (!dev) return { service, listening: async () => undefined };

  const [signingKey] = await Promise.all([generateSigningKey(), loadOidcProvider()]);
  const module: IdentityModule = {
    service,
    listening: async (httpAddress) => {
      const base = reachableBase(httpAddress);
      const issuer = `${base}${DEV_IDP_PATH}`;
      // Lives only as long as this process, like the dev IdP's own state.
      const clientSecret = randomBytes(32).toString('base64url');
      const idp = await createDevIdp({
        issuer,
        users: dev.users,
        gatewayClient: { clientId: DEV_IDP_CLIENT_ID, clientSecret },
        agentClients: [{ clientId: dev.agent.clientId, clientSecret: dev.agent.clientSecret }],
        audience: base,
        signingKeys: [signingKey],
        loginHint: `Demo users: ${dev.users.map((u) => u.user).join(', ')}. The password is the user name.`,
      });
      o.router.mount(DEV_IDP_PATH, idp.handle);
      const issuerConfig: OidcIssuerConfig = {
        name: DEV_IDP_ISSUER_NAME,
        issuer,
        clientId: DEV_IDP_CLIENT_ID,
        audience: base,
        groupsClaim: 'groups',
        groupMap: {},
        serviceAccounts: { [dev.agent.clientId]: { name: dev.agent.name, groups: dev.agent.groups } },
        scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
        jwksCooldownMs: 30_000,
      };
      service.addIssuer(issuerConfig, clientSecret);
      module.devIdpIssuer = issuer;
      o.log.info({ issuer }, 'development identity provider mounted (embedded default only)');
    },
  };
  return module;
}

/**
 * The Router's authenticator: the request's `Authorization: Bearer` credential, or null. An
 * identity provider that cannot be reached is a 503 (fail closed), not an anonymous request.
 */
export function bearerAuthenticator(service: IdentityService, log: Logger): Authenticator {
  return async (req: IncomingMessage) => {
    const bearer = bearerOf(req);
    if (bearer === undefined) return null;
    try {
      const r = await service.authenticateDetailed(bearer);
      if (r.ok) return r.identity;
      log.debug({ reason: r.reason, path: req.url?.split('?')[0] }, 'bearer credential refused');
      return null;
    } catch (err) {
      if (err instanceof IdentityUnavailable) {
        log.warn({ err }, 'cannot verify a bearer token: identity provider unavailable');
        throw new HttpError(503, 'identity_unavailable', 'the identity provider cannot be reached to verify this token; try again shortly');
      }
      throw err;
    }
  };
}

/**
 * The gateway's public origin, where browsers and identity providers come back to: the configured
 * `listeners.http.publicUrl`, or in development the HTTP listener itself once bound (undefined
 * before, and outside development without a publicUrl). Never a request's Host header.
 */
export function publicOriginOf(
  config: { development: boolean; listeners: { http: { publicUrl?: string } } },
  httpAddress: () => string | undefined,
): () => string | undefined {
  return () => {
    if (config.listeners.http.publicUrl) return config.listeners.http.publicUrl;
    const own = config.development ? httpAddress() : undefined;
    // A wildcard bind (0.0.0.0, ::) is not an address a browser can come back to: its loopback is.
    return own === undefined ? undefined : reachableBase(own);
  };
}

/** A wildcard listen address is reached through loopback; browsers and the CLI need a real host. */
export function reachableBase(httpAddress: string): string {
  const url = new URL(httpAddress);
  if (url.hostname === '0.0.0.0') url.hostname = '127.0.0.1';
  if (url.hostname === '[::]') url.hostname = '[::1]';
  return url.origin;
}
