/**
 * The `identities:` section of `jitgate.yaml`: OIDC issuers (with their service accounts), who the
 * administrators are, and how long gateway sessions last. Kept apart from ./schema.ts so the
 * identity work can grow without touching the rest of the file's shape; schema.ts plugs
 * `identitiesSchema`, `identitiesCrossCheck` and `buildIdentities` into the whole.
 *
 * ```yaml
 * identities:
 *   oidc:
 *     - name: corp                                  # required, used by `jitgate login --issuer`
 *       issuer: https://login.example.com/realms/corp  # required, exactly as in its discovery document
 *       clientId: jitgate                           # required: the gateway's client at the IdP
 *       clientSecret: env:JITGATE_OIDC_SECRET       # secret reference; leave out for a public client
 *       audience: jitgate                           # aud of bearer access tokens (default: clientId)
 *       groupsClaim: groups                         # default groups
 *       userClaim: preferred_username               # default: preferred_username, else email, else sub
 *       groupMap: { "/Engineering": [engineering] } # claim value -> jitgate groups; others pass through
 *       serviceAccounts:                            # client-credentials clients: client_id -> identity
 *         reporting-agent: { name: reporting-bot, groups: [analytics] }
 *       scopes: [openid, profile, email]            # requested at login (add groups, offline_access, ...)
 *       jwksRefreshCooldown: 30s                    # least time between key downloads on an unknown kid
 *   saml:
 *     - name: corp-saml                             # required; shares one namespace with the oidc names
 *       metadata: https://idp.example.com/saml/metadata  # required: the IdP's metadata, a URL or a file
 *       groupsAttribute: memberOf                   # default groups
 *       userAttribute: email                        # default: the assertion's NameID
 *       groupMap: { "cn=eng,ou=groups": [engineering] }
 *       requireSigned: assertion                    # assertion (default), response or both
 *       clockSkew: 60s                              # tolerated for NotBefore/NotOnOrAfter (max 5m)
 *       signInTtl: 12h                              # then back through the IdP (max session.refreshTtl)
 *       entityId: https://jitgate.example.com/saml  # default <publicUrl>/api/auth/saml/NAME/metadata
 *   admins: { groups: [platform-admins] }           # may create API keys and revoke anything
 *   session: { ttl: 12h, refreshTtl: 7d }           # gateway session, and how long one login lasts
 *   dev: true                                       # development mode only: see below
 * ```
 *
 * `dev: true` mounts the development identity provider (demo users alice, bob, carol, dave and erin,
 * password = user name, and a demo agent; see demo/demo-users.ts) at /dev-idp, as the embedded
 * default does, so approvals and held statements can be tried against one's own database without an
 * OIDC setup. Users with known passwords: `config check` refuses it unless `development: true`.
 */
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { formatDuration, tryParseDuration } from '../core/duration.js';
import { Bad, bool, describeValue as describe, duration, isObj, leaf, text } from './leaf.js';
import { tryParseSecretRef } from '../core/secret-ref.js';
import type { ConfigPath, SchemaProblem } from './schema.js';
import type { IdentitiesConfig, OidcIssuerConfig, SamlProviderConfig } from './types.js';
import { devIdpConfig } from '../demo/demo-users.js';

export const IDENTITY_DEFAULTS = {
  groupsClaim: 'groups',
  samlGroupsAttribute: 'groups',
  samlClockSkewMs: 60_000,
  samlSignInTtlMs: 12 * 3_600_000,
  scopes: ['openid', 'profile', 'email'],
  jwksCooldownMs: 30_000,
  sessionTtlMs: 12 * 3_600_000,
  refreshTtlMs: 7 * 86_400_000,
};

const MAX_SESSION_TTL_MS = 7 * 86_400_000;
const MAX_REFRESH_TTL_MS = 90 * 86_400_000;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const name = (what: string) =>
  leaf(`${what} (1-63 letters, digits, _ . or -, starting with a letter or digit)`, (v) =>
    typeof v === 'string' && NAME.test(v) ? v : undefined,
  );

/** jitgate group names travel in comma-separated CLI flags and in policies: no spaces, no commas. */
const GROUP = /^[^\s,]{1,128}$/;
export function isGroupName(v: unknown): v is string {
  return typeof v === 'string' && GROUP.test(v);
}

const groupList = (opts: { allowEmpty?: boolean } = {}) =>
  leaf(`a list of group names${opts.allowEmpty ? '' : ' (at least one)'}`, (v) => {
    const items = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(items) || (!opts.allowEmpty && items.length === 0)) return undefined;
    for (const [i, g] of items.entries()) {
      if (!isGroupName(g)) return new Bad(`item ${i}: expected a group name without spaces or commas, got ${describe(g)}`);
    }
    return [...new Set(items as string[])];
  });

const claimName = () =>
  leaf('a claim name such as groups or preferred_username', (v) => (typeof v === 'string' && /^[^\s]{1,128}$/.test(v) ? v : undefined));

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Where the issuer must be reachable safely: https, or http only on this machine (tests, dev IdPs). */
export function issuerUrlProblem(v: string): string | undefined {
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return `expected an https:// URL, got ${describe(v)}`;
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))) {
    return 'the issuer must use https:// (plain http:// only for 127.0.0.1, [::1] or localhost)';
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    return 'the issuer URL must not have a query, a fragment or credentials';
  }
  return undefined;
}

const issuerUrl = () =>
  leaf('an https:// URL', (v) => {
    if (typeof v !== 'string') return undefined;
    const problem = issuerUrlProblem(v);
    return problem ? new Bad(problem) : v;
  });

const secretRef = () =>
  leaf(
    'a secret reference: env:NAME, file:PATH or secret:NAME',
    (v) => {
      if (typeof v !== 'string') return undefined;
      const r = tryParseSecretRef(v);
      if (r.ok) return v;
      if (/^(env|file|secret):/.test(v)) return new Bad(r.problem);
      return new Bad(
        'a plain client secret is not allowed in the config; use a secret reference instead: env:NAME, file:PATH or secret:NAME',
      );
    },
    { secret: true },
  );

/** groupMap values may be one group or a list. */
const groupMap = () => z.record(z.string(), groupList({ allowEmpty: true }));

const scopeList = () =>
  leaf('a list of scopes including openid', (v) => {
    if (!Array.isArray(v)) return undefined;
    for (const [i, s] of v.entries()) {
      if (typeof s !== 'string' || !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s))
        return new Bad(`item ${i}: expected a scope, got ${describe(s)}`);
    }
    if (!v.includes('openid')) return new Bad('the scopes must include openid (the login needs an ID token)');
    return [...new Set(v as string[])];
  });

const issuerSchema = z.strictObject({
  name: name('an issuer name'),
  issuer: issuerUrl(),
  clientId: text('the client id the gateway has at this issuer'),
  clientSecret: secretRef().optional(),
  audience: text('the audience (aud) that access tokens for the gateway carry').optional(),
  groupsClaim: claimName().optional(),
  userClaim: claimName().optional(),
  groupMap: groupMap().optional(),
  serviceAccounts: z
    .record(z.string(), z.strictObject({ name: name('a service account name'), groups: groupList({ allowEmpty: true }).optional() }))
    .optional(),
  scopes: scopeList().optional(),
  jwksRefreshCooldown: duration(0, 3_600_000).optional(),
});

/** Where the IdP's metadata is: a URL (https, or http on loopback) or a file path. */
const samlMetadata = () =>
  leaf('the IdP metadata: an https:// URL or a file path', (v) => {
    if (typeof v !== 'string' || v.trim() === '') return undefined;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) {
      const problem = issuerUrlProblem(v);
      return problem ? new Bad(problem.replace('the issuer', 'a metadata URL')) : { url: v };
    }
    return { file: v };
  });

const entityId = () =>
  leaf('an entity ID (a URI such as https://jitgate.example.com/saml)', (v) =>
    typeof v === 'string' && /^[a-z][a-z0-9+.-]*:\S+$/i.test(v) && v.length <= 1024 ? v : undefined,
  );

const samlSchema = z.strictObject({
  name: name('a provider name'),
  metadata: samlMetadata(),
  entityId: entityId().optional(),
  userAttribute: claimName().optional(),
  groupsAttribute: claimName().optional(),
  groupMap: groupMap().optional(),
  requireSigned: leaf('assertion, response or both', (v) =>
    v === 'assertion' || v === 'response' || v === 'both' ? v : undefined,
  ).optional(),
  clockSkew: duration(0, 5 * 60_000).optional(),
  signInTtl: duration(60_000, MAX_REFRESH_TTL_MS).optional(),
});

export const identitiesSchema = z.strictObject({
  oidc: z.array(issuerSchema).optional(),
  saml: z.array(samlSchema).optional(),
  admins: z.strictObject({ groups: groupList({ allowEmpty: true }).optional() }).optional(),
  session: z
    .strictObject({
      ttl: duration(60_000, MAX_SESSION_TTL_MS).optional(),
      refreshTtl: duration(60_000, MAX_REFRESH_TTL_MS).optional(),
    })
    .optional(),
  /** The development identity provider with the demo users (development mode only, see crossCheck in ./schema.ts). */
  dev: bool().optional(),
});

/** The issuer name of the development identity provider (api/identity-wire.ts DEV_IDP_ISSUER_NAME). */
const DEV_ISSUER_NAME = 'dev';

export type IdentitiesFile = z.output<typeof identitiesSchema>;

// ---------------------------------------------------------------------------------------------

/** Checks across fields of `identities` (raw YAML), reported with the rest of the file's problems. */
export function identitiesCrossCheck(raw: unknown): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  if (!isObj(raw)) return problems;
  const base: ConfigPath = ['identities'];
  const issuers = Array.isArray(raw.oidc) ? raw.oidc : [];
  for (const key of ['name', 'issuer'] as const) {
    const seen = new Map<string, number>();
    issuers.forEach((o, i) => {
      if (!isObj(o) || typeof o[key] !== 'string') return;
      const first = seen.get(o[key]);
      if (first === undefined) seen.set(o[key], i);
      else {
        problems.push({
          path: [...base, 'oidc', i, key],
          message: `duplicate issuer ${key} ${JSON.stringify(o[key])}`,
          related: [...base, 'oidc', first, key],
        });
      }
    });
  }
  // `jitgate login --issuer NAME` and the console pick an OIDC issuer or a SAML provider by name.
  const samlProviders = Array.isArray(raw.saml) ? raw.saml : [];
  const oidcNames = new Map<string, number>();
  issuers.forEach((o, i) => {
    if (isObj(o) && typeof o.name === 'string' && !oidcNames.has(o.name)) oidcNames.set(o.name, i);
  });
  const samlNames = new Map<string, number>();
  samlProviders.forEach((o, i) => {
    if (!isObj(o) || typeof o.name !== 'string') return;
    const path: ConfigPath = [...base, 'saml', i, 'name'];
    const first = samlNames.get(o.name);
    const oidc = oidcNames.get(o.name);
    if (first !== undefined)
      problems.push({ path, message: `duplicate SAML provider name ${JSON.stringify(o.name)}`, related: [...base, 'saml', first, 'name'] });
    else if (oidc !== undefined)
      problems.push({
        path,
        message: `the name ${JSON.stringify(o.name)} is already an OIDC issuer's: sign-in picks providers by name`,
        related: [...base, 'oidc', oidc, 'name'],
      });
    else samlNames.set(o.name, i);
  });
  if (raw.dev === true) {
    const taken = (kind: 'oidc' | 'saml', list: unknown[]) =>
      list.forEach((o, i) => {
        if (isObj(o) && o.name === DEV_ISSUER_NAME) {
          problems.push({
            path: [...base, kind, i, 'name'],
            message: `the name "${DEV_ISSUER_NAME}" is taken by the development identity provider (identities.dev)`,
          });
        }
      });
    taken('oidc', issuers);
    taken('saml', samlProviders);
  }
  const accounts = new Map<string, ConfigPath>();
  issuers.forEach((o, i) => {
    if (!isObj(o) || !isObj(o.serviceAccounts)) return;
    for (const [clientId, account] of Object.entries(o.serviceAccounts)) {
      const path: ConfigPath = [...base, 'oidc', i, 'serviceAccounts', clientId];
      if (clientId === o.clientId) {
        problems.push({
          path,
          atKey: true,
          message: `the gateway's own client (clientId ${JSON.stringify(clientId)}) cannot be a service account: every user's token names it`,
        });
      }
      const accountName = isObj(account) ? account.name : undefined;
      if (typeof accountName !== 'string') continue;
      const first = accounts.get(accountName);
      if (first)
        problems.push({
          path: [...path, 'name'],
          message: `duplicate service account name ${JSON.stringify(accountName)}`,
          related: first,
        });
      else accounts.set(accountName, [...path, 'name']);
    }
  });
  const session = isObj(raw.session) ? raw.session : {};
  const ttl = typeof session.ttl === 'string' ? tryParseDuration(session.ttl) : undefined;
  const refreshTtl = typeof session.refreshTtl === 'string' ? tryParseDuration(session.refreshTtl) : undefined;
  const effectiveTtl = ttl ?? IDENTITY_DEFAULTS.sessionTtlMs;
  const effectiveRefreshTtl = refreshTtl ?? IDENTITY_DEFAULTS.refreshTtlMs;
  samlProviders.forEach((o, i) => {
    const signInTtl = isObj(o) && typeof o.signInTtl === 'string' ? tryParseDuration(o.signInTtl) : undefined;
    if (signInTtl !== undefined && signInTtl > effectiveRefreshTtl) {
      problems.push({
        path: [...base, 'saml', i, 'signInTtl'],
        message: `must be at most session.refreshTtl (${formatDuration(effectiveRefreshTtl)}): no sign-in lasts longer than that`,
      });
    }
  });
  if (refreshTtl !== undefined && refreshTtl < effectiveTtl) {
    problems.push({
      path: [...base, 'session', 'refreshTtl'],
      message: `must be at least the session ttl (${formatDuration(effectiveTtl)}): a login cannot end before its first session`,
    });
  }
  return problems;
}

/** Defaults applied; `file:` references made absolute against the config file's directory. */
export function buildIdentities(file: IdentitiesFile | undefined, baseDir: string): IdentitiesConfig {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  return {
    oidc: (file?.oidc ?? []).map((o): OidcIssuerConfig => ({
      name: o.name,
      issuer: o.issuer,
      clientId: o.clientId,
      ...(o.clientSecret !== undefined
        ? { clientSecret: o.clientSecret.startsWith('file:') ? `file:${abs(o.clientSecret.slice(5))}` : o.clientSecret }
        : {}),
      audience: o.audience ?? o.clientId,
      groupsClaim: o.groupsClaim ?? IDENTITY_DEFAULTS.groupsClaim,
      ...(o.userClaim !== undefined ? { userClaim: o.userClaim } : {}),
      groupMap: o.groupMap ?? {},
      serviceAccounts: Object.fromEntries(
        Object.entries(o.serviceAccounts ?? {}).map(([id, a]) => [id, { name: a.name, groups: a.groups ?? [] }]),
      ),
      scopes: o.scopes ?? [...IDENTITY_DEFAULTS.scopes],
      jwksCooldownMs: o.jwksRefreshCooldown ?? IDENTITY_DEFAULTS.jwksCooldownMs,
    })),
    ...(file?.saml?.length ? { saml: file.saml.map((o) => buildSaml(o, abs)) } : {}),
    admins: { groups: file?.admins?.groups ?? [] },
    session: {
      ttlMs: file?.session?.ttl ?? IDENTITY_DEFAULTS.sessionTtlMs,
      refreshTtlMs: file?.session?.refreshTtl ?? IDENTITY_DEFAULTS.refreshTtlMs,
    },
    ...(file?.dev ? { devIdp: devIdpConfig() } : {}),
  };
}

function buildSaml(o: NonNullable<IdentitiesFile['saml']>[number], abs: (p: string) => string): SamlProviderConfig {
  return {
    name: o.name,
    metadata: 'url' in o.metadata ? o.metadata : { file: abs(o.metadata.file) },
    ...(o.entityId !== undefined ? { entityId: o.entityId } : {}),
    ...(o.userAttribute !== undefined ? { userAttribute: o.userAttribute } : {}),
    groupsAttribute: o.groupsAttribute ?? IDENTITY_DEFAULTS.samlGroupsAttribute,
    groupMap: o.groupMap ?? {},
    requireSigned: o.requireSigned ?? 'assertion',
    clockSkewMs: o.clockSkew ?? IDENTITY_DEFAULTS.samlClockSkewMs,
    signInTtlMs: o.signInTtl ?? IDENTITY_DEFAULTS.samlSignInTtlMs,
  };
}

/** The defaults (no issuers, no admins) for configurations built in code. */
export function defaultIdentities(): IdentitiesConfig {
  return buildIdentities(undefined, '.');
}
