/**
 * Admin reads of the running configuration, for the console and automation. Secrets appear by
 * reference only (`secret:NAME`, `env:NAME`, `file:PATH`): no value is ever resolved here.
 *
 *   GET /api/admin/connections   backends: address, database, backend user, TLS, credential mode, password reference
 *   GET /api/admin/policies      access policies in evaluation order
 *   GET /api/admin/guardrails    statement guardrails
 *   GET /api/admin/reviews       review rules (statements held for approval)
 *   GET /api/admin/masking       masking rules and detectors (the hash key by reference only)
 *   GET /api/admin/secrets       names in the gateway's secret store (and when each was set)
 *   GET /api/admin/identities    OIDC issuers, SAML providers, admin groups, session lifetimes (no client secrets)
 */
import type { GatewayConfig, SecretRef } from '../config/types.js';
import { requireRole, type RoleModel } from './roles.js';
import type { Router } from './router.js';

export interface AdminRoutesOptions {
  config: GatewayConfig;
  roles: RoleModel;
  /** Names in the secret store (never values). */
  secretNames: () => Promise<Array<{ name: string; updatedAt: number }>>;
}

/** A secret reference as kind and name; the value stays where it is. */
export function secretRefJson(ref: SecretRef | undefined): { kind: string; name: string } | null {
  if (ref === undefined) return null;
  const i = ref.indexOf(':');
  return i < 0 ? { kind: 'unknown', name: '' } : { kind: ref.slice(0, i), name: ref.slice(i + 1) };
}

export function registerAdminRoutes(router: Router, o: AdminRoutesOptions): void {
  const { config } = o;
  const admin = (summary: string, path: string, fn: () => unknown) =>
    router.add(
      'GET',
      path,
      (ctx) => {
        requireRole(o.roles, ctx.identity!, ['admin']);
        return fn();
      },
      { doc: { summary, roles: ['admin'] } },
    );

  admin('Configured connections (passwords by reference only)', '/api/admin/connections', () => ({
    connections: config.connections.map((c) => ({
      name: c.name,
      type: c.type,
      host: c.host,
      port: c.port,
      database: c.database,
      user: c.user,
      password: secretRefJson(c.password),
      tls: { mode: c.tls.mode, ...(c.tls.servername ? { servername: c.tls.servername } : {}), ca: c.tls.ca ?? null },
      credentials: c.credentials ?? { mode: 'static' },
      connectTimeoutMs: c.connectTimeoutMs,
    })),
  }));

  admin('Access policies, in the order they are evaluated', '/api/admin/policies', () => ({ policies: config.policies }));

  admin('Statement guardrails', '/api/admin/guardrails', () => ({ guardrails: config.guardrails ?? [] }));

  admin('Review rules: statements held for approval', '/api/admin/reviews', () => ({ reviews: config.reviews ?? [] }));

  admin('Masking rules and content detectors (the hash key by reference only)', '/api/admin/masking', () => ({
    rules: config.masking?.rules ?? [],
    detectors: config.masking?.detectors ?? [],
    hashKey: secretRefJson(config.masking?.hashKey),
  }));

  admin("Names of the gateway's stored secrets (never their values)", '/api/admin/secrets', async () => ({
    secrets: (await o.secretNames()).map((s) => ({ name: s.name, updatedAt: new Date(s.updatedAt).toISOString() })),
    references: config.connections
      .filter((c) => c.password !== undefined)
      .map((c) => ({ connection: c.name, password: secretRefJson(c.password) })),
  }));

  admin('Identity providers (OIDC and SAML), administrator groups and session lifetimes', '/api/admin/identities', () => ({
    issuers: config.identities.oidc.map((i) => ({
      name: i.name,
      issuer: i.issuer,
      clientId: i.clientId,
      clientSecret: secretRefJson(i.clientSecret),
      audience: i.audience,
      groupsClaim: i.groupsClaim,
      scopes: i.scopes,
      serviceAccounts: Object.keys(i.serviceAccounts),
    })),
    samlProviders: (config.identities.saml ?? []).map((p) => ({
      name: p.name,
      metadata: 'url' in p.metadata ? p.metadata.url : p.metadata.file,
      entityId: p.entityId ?? null,
      userAttribute: p.userAttribute ?? null,
      groupsAttribute: p.groupsAttribute,
      groupMap: p.groupMap,
      requireSigned: p.requireSigned,
      clockSkewMs: p.clockSkewMs,
      signInTtlMs: p.signInTtlMs,
    })),
    developmentIdp: config.identities.devIdp
      ? { users: config.identities.devIdp.users.map((u) => ({ user: u.user, groups: u.groups })) }
      : null,
    admins: config.identities.admins,
    session: config.identities.session,
  }));
}
