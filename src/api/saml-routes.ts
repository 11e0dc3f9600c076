/**
 * The gateway as a SAML service provider (identities.saml), one set of endpoints per provider:
 *
 *   GET  /api/auth/saml/:name/metadata   the SP metadata to register at the IdP (entity ID, ACS)
 *   POST /api/auth/saml/:name/acs        Assertion Consumer Service (HTTP-POST binding): the IdP's
 *                                        Response; 303 on to the sign-in's redirect URI with a
 *                                        one-time code (the console's callback or the CLI's
 *                                        loopback), or to the console's sign-in page with the reason
 *
 * Sign-in starts where OIDC sign-in starts (/api/auth/browser/login?issuer=NAME for the console,
 * POST /api/auth/login/start for `jitgate login`): the identity module treats the provider's name
 * like an issuer's (../identity/saml-logins.ts). The ACS is a cross-site POST by design, so it is
 * exempt from the cookie CSRF check (./browser-auth.ts); what protects it is the signed response
 * answering an AuthnRequest this gateway sent, once.
 */
import type { IdentityService } from '../identity/service.js';
import type { Logger } from '../obs/log.js';
import { HttpError, type Router } from './router.js';

export const SAML_PATH = '/api/auth/saml';
export const SAML_ACS_ROUTE = `${SAML_PATH}/:name/acs`;

export function registerSamlRoutes(
  router: Router,
  o: { identity: IdentityService; publicOrigin: () => string | undefined; log: Logger },
): void {
  const saml = o.identity.saml;

  router.add(
    'GET',
    `${SAML_PATH}/:name/metadata`,
    (ctx) => {
      const provider = saml.provider(ctx.params.name!);
      if (!provider) throw new HttpError(404, 'not_found', `no SAML provider named ${JSON.stringify(ctx.params.name)}`);
      const origin = o.publicOrigin();
      if (origin === undefined)
        throw new HttpError(
          503,
          'not_configured',
          "SAML needs the gateway's public URL: set listeners.http.publicUrl in the configuration",
        );
      const xml = provider.spMetadata(origin);
      ctx.res.writeHead(200, {
        'content-type': 'application/samlmetadata+xml; charset=utf-8',
        'cache-control': 'no-cache',
        'content-length': Buffer.byteLength(xml),
      });
      ctx.res.end(xml);
      return undefined;
    },
    { auth: 'none', doc: { summary: "The gateway's SAML service provider metadata for one identity provider", roles: ['anyone'] } },
  );

  router.add(
    'POST',
    SAML_ACS_ROUTE,
    async (ctx) => {
      const body = (typeof ctx.body === 'object' && ctx.body !== null ? ctx.body : {}) as Record<string, unknown>;
      const outcome = await saml.acs(ctx.params.name!, body.SAMLResponse, ctx.req.socket.remoteAddress ?? 'unknown');
      const location = outcome.ok
        ? outcome.location
        : (outcome.location ?? `/signin?error=${encodeURIComponent(`sign-in refused: ${outcome.reason}`)}`);
      ctx.res.writeHead(303, { location, 'cache-control': 'no-store', 'content-length': 0 });
      ctx.res.end();
      return undefined;
    },
    {
      auth: 'none',
      doc: { summary: 'SAML Assertion Consumer Service (HTTP-POST binding); rate limited', roles: ['anyone'], redirect: true },
    },
  );
}
