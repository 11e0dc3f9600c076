/**
 * The connection inventory: every connection the caller can see, its type, the caller's access
 * to it, and the rules that govern it in words (access policies, guardrails, review rules,
 * masking), each marked when it applies to the caller.
 *
 *   GET /api/catalog   {connections: [{name, type, access, policy?, rules}]}
 *
 * Which connections are listed is the access service's answer (as for GET /api/connections);
 * nothing here reveals an address, a backend user or a secret reference.
 */
import type { AccessService } from '../access/service.js';
import type { GatewayConfig } from '../config/types.js';
import { describeConnectionRules } from '../policy/describe.js';
import type { Router } from './router.js';

export interface CatalogRoutesOptions {
  config: GatewayConfig;
  access: AccessService;
}

export function registerCatalogRoutes(router: Router, o: CatalogRoutesOptions): void {
  const typeOf = new Map(o.config.connections.map((c) => [c.name, c.type]));
  router.add(
    'GET',
    '/api/catalog',
    async (ctx) => {
      const who = ctx.identity!;
      return {
        connections: (await o.access.connectionsFor(who)).map((c) => ({
          name: c.name,
          type: typeOf.get(c.name) ?? 'postgres',
          access:
            c.access.state === 'granted'
              ? { state: 'granted', grantId: c.access.grantId, until: new Date(c.access.until).toISOString() }
              : c.access.state === 'pending'
                ? { state: 'pending', requestId: c.access.requestId, expiresAt: new Date(c.access.expiresAt).toISOString() }
                : { state: 'none' },
          policy: c.policy?.name ?? null,
          rules: describeConnectionRules(o.config, c.name, who),
        })),
      };
    },
    {
      doc: {
        summary: 'Connections I can see, my access to each, and their policies, guardrails, review and masking rules in words',
        roles: ['requester'],
      },
    },
  );
}
