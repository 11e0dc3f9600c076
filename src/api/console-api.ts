/**
 * What the web console adds to the HTTP API, wired in one place for the composition root: browser
 * sign-in with cookies and CSRF checks, rate limits on the sign-in endpoints, the role model,
 * audit and admin reads, live events, the OpenAPI document, and the console's static files.
 */
import type { AccessEvent, EventSource } from '../access/events.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AccessService } from '../access/service.js';
import type { AuditLog } from '../audit/log.js';
import type { TrustedKey } from '../audit/signing.js';
import type { GatewayConfig } from '../config/types.js';
import { packageVersion } from '../core/version.js';
import type { IdentityService } from '../identity/service.js';
import type { Logger } from '../obs/log.js';
import { registerAdminRoutes } from './admin-routes.js';
import { registerAuditRoutes } from './audit-routes.js';
import { registerBrowserAuth } from './browser-auth.js';
import { registerSamlRoutes, SAML_ACS_ROUTE } from './saml-routes.js';
import { registerCatalogRoutes } from './catalog-routes.js';
import { consoleHandler } from './console-static.js';
import { registerLiveRoutes, type LiveHub } from './live-routes.js';
import { registerOpenApiRoute } from './openapi.js';
import { RateLimiter, rateLimitGuard, type AttemptsElsewhere } from './rate-limit.js';
import { roleModel, type RoleModel } from './roles.js';
import type { Router } from './router.js';

export interface ConsoleApiOptions {
  config: GatewayConfig;
  identity: IdentityService;
  access: AccessService;
  audit: AuditLog;
  signer: TrustedKey;
  auditors: readonly string[];
  secretNames: () => Promise<Array<{ name: string; updatedAt: number }>>;
  log: Logger;
  now: () => number;
  /** Sign-in requests per client address: burst and per minute (default 60 and 60). */
  loginRate?: { burst: number; perMinute: number };
  /** Sign-in attempts other gateway instances let through, counted here too. */
  signInsElsewhere?: AttemptsElsewhere;
  /** Where native clients connect (the PostgreSQL listener), for the psql command the console shows. */
  postgres: () => { host: string; port: number } | undefined;
  /** Unused for the psql command: the listener always offers TLS, so it says sslmode=require. */
  tlsRequired: boolean;
  /** The gateway's public origin (api/identity-wire.ts publicOriginOf): sign-in redirects, SAML metadata. */
  publicOrigin: () => string | undefined;
  /** Where the built console is (default dist/console). */
  consoleDir?: string;
  /** The access events browsers hear of (default: this instance's; main.ts adds those made through others). */
  accessEvents?: EventSource<AccessEvent>;
}

export interface ConsoleApi {
  roles: RoleModel;
  live: LiveHub;
  serveConsole(req: IncomingMessage, res: ServerResponse): boolean;
  stop(): void;
}

/** Endpoints anyone can call that start or complete a sign-in. */
export const SIGN_IN_ROUTES = [
  '/api/auth/login/start',
  '/api/auth/token',
  '/api/auth/browser/login',
  '/api/auth/browser/callback',
  '/api/auth/browser/refresh',
  SAML_ACS_ROUTE,
];

export function registerConsoleApi(router: Router, o: ConsoleApiOptions): ConsoleApi {
  const roles = roleModel({ isAdmin: (who) => o.access.isAdmin(who), auditors: o.auditors, policies: o.config.policies });
  // Real time, not the gateway's clock: a rate is about how fast requests arrive.
  const loginRate = o.loginRate ?? { burst: 60, perMinute: 60 };
  router.addGuard(rateLimitGuard(SIGN_IN_ROUTES, new RateLimiter({ ...loginRate, elsewhere: o.signInsElsewhere })));
  const publicOrigin = o.publicOrigin;
  registerBrowserAuth(router, { identity: o.identity, development: o.config.development, publicOrigin, log: o.log, now: o.now });
  registerSamlRoutes(router, { identity: o.identity, publicOrigin, log: o.log });

  router.add(
    'GET',
    '/api/me',
    (ctx) => {
      const who = ctx.identity!;
      const pg = o.postgres();
      return {
        user: who.user,
        groups: who.groups,
        kind: who.kind,
        via: who.via,
        roles: roles.rolesOf(who),
        listeners: { postgres: pg ? { host: pg.host, port: pg.port, sslmode: 'require' } : null },
      };
    },
    { doc: { summary: 'Who I am, my roles (requester, approver, auditor, admin) and where native clients connect', roles: ['requester'] } },
  );

  registerAuditRoutes(router, { audit: o.audit, trusted: [o.signer], roles, now: o.now });
  registerAdminRoutes(router, { config: o.config, roles, secretNames: o.secretNames });
  registerCatalogRoutes(router, { config: o.config, access: o.access });
  const live = registerLiveRoutes(router, { accessEvents: o.accessEvents ?? o.access.events, roles });
  registerOpenApiRoute(router, { version: packageVersion() });
  const serveConsole = consoleHandler(o.consoleDir);
  return { roles, live: live.hub, serveConsole, stop: () => live.stop() };
}
