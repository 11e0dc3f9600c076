/**
 * From verified token claims to who the caller is. Pure: the signature, issuer, audience and expiry
 * have been checked already (./oidc.ts); this module only reads names and groups.
 *
 *  - user: the configured `userClaim`, else preferred_username, else email, else sub;
 *  - groups: the configured `groupsClaim` (a list, a single string, or a dotted path such as
 *    `realm_access.roles` when no claim has that literal name), each value replaced by its
 *    `groupMap` entry when it has one and kept unchanged otherwise;
 *  - service accounts: a token whose client (client_id, else azp) is listed under `serviceAccounts`
 *    is that service account, named `svc:<name>` (./namespace.ts), with the listed groups plus any
 *    groups the token carries. A person whose name falls in the keys' or service accounts' namespace
 *    (`apikey:...`, `svc:...`) is refused. A token that
 *    was issued to a client rather than a person (client credentials) is refused when its client is
 *    not listed: it would otherwise pass as a "user" named after its sub.
 */
import type { OidcIssuerConfig } from '../config/types.js';
import { isReservedForMachines, serviceSubject } from './namespace.js';

export type Claims = Record<string, unknown>;

export interface ClaimedIdentity {
  user: string;
  groups: string[];
  kind: 'human' | 'service';
  /** The token's `sub` (stable at the IdP even when names change). */
  subject: string;
}

export type ClaimsResult = { ok: true; identity: ClaimedIdentity } | { ok: false; reason: string };

type IssuerRules = Pick<OidcIssuerConfig, 'groupsClaim' | 'userClaim' | 'groupMap' | 'serviceAccounts'>;

/** A claim by name, or by dotted path into nested objects when no claim has the literal name. */
export function readClaim(claims: Claims, name: string): unknown {
  if (name in claims) return claims[name];
  let v: unknown = claims;
  for (const part of name.split('.')) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';

export function userFromClaims(claims: Claims, userClaim: string | undefined): string | undefined {
  if (userClaim !== undefined) {
    const v = readClaim(claims, userClaim);
    return nonEmpty(v) ? v : undefined;
  }
  for (const name of ['preferred_username', 'email', 'sub']) {
    const v = claims[name];
    if (nonEmpty(v)) return v;
  }
  return undefined;
}

/** Raw group values of the claim: a list of strings, or one string. Anything else counts as none. */
export function groupValues(claims: Claims, groupsClaim: string): string[] {
  const v = readClaim(claims, groupsClaim);
  if (typeof v === 'string') return nonEmpty(v) ? [v] : [];
  if (Array.isArray(v)) return v.filter(nonEmpty);
  return [];
}

export function mapGroups(values: readonly string[], groupMap: Record<string, string[]>): string[] {
  const out = new Set<string>();
  for (const value of values) {
    const mapped = Object.hasOwn(groupMap, value) ? groupMap[value] : undefined;
    for (const g of mapped ?? [value]) out.add(g);
  }
  return [...out].sort();
}

/** The client a token was issued to (RFC 9068 client_id, else OIDC azp). */
export function clientOf(claims: Claims): string | undefined {
  if (nonEmpty(claims.client_id)) return claims.client_id;
  if (nonEmpty(claims.azp)) return claims.azp;
  return undefined;
}

/**
 * Signs that a token stands for a client, not a person: sub equal to the client id (oidc-provider,
 * Okta), Auth0's `gty: client-credentials`, Keycloak's `service-account-` user names.
 */
export function looksLikeClientToken(claims: Claims): boolean {
  const client = clientOf(claims);
  if (claims.sub === undefined && client !== undefined) return true;
  if (client !== undefined && claims.sub === client) return true;
  if (claims.gty === 'client-credentials') return true;
  return typeof claims.preferred_username === 'string' && claims.preferred_username.startsWith('service-account-');
}

/** Identity from a verified bearer access token: a configured service account, or a person. */
export function identityFromAccessToken(claims: Claims, rules: IssuerRules): ClaimsResult {
  const subject = nonEmpty(claims.sub) ? claims.sub : '';
  const client = clientOf(claims);
  const tokenGroups = mapGroups(groupValues(claims, rules.groupsClaim), rules.groupMap);
  const account = client !== undefined && Object.hasOwn(rules.serviceAccounts, client) ? rules.serviceAccounts[client] : undefined;
  if (account) {
    const groups = [...new Set([...account.groups, ...tokenGroups])].sort();
    return { ok: true, identity: { user: serviceSubject(account.name), groups, kind: 'service', subject: subject || client! } };
  }
  if (looksLikeClientToken(claims)) {
    return { ok: false, reason: `client ${JSON.stringify(client ?? subject)} is not a configured service account` };
  }
  return identityFromUserClaims(claims, rules);
}

/** Identity of a person from verified ID token (or userinfo) claims. */
export function identityFromUserClaims(claims: Claims, rules: IssuerRules): ClaimsResult {
  const user = userFromClaims(claims, rules.userClaim);
  if (user === undefined) {
    return { ok: false, reason: `the token has no ${rules.userClaim ?? 'preferred_username, email or sub'} claim to name the user` };
  }
  if (isReservedForMachines(user)) {
    return { ok: false, reason: `the user name ${JSON.stringify(user)} starts with a prefix reserved for API keys and service accounts` };
  }
  const subject = nonEmpty(claims.sub) ? claims.sub : user;
  return {
    ok: true,
    identity: { user, groups: mapGroups(groupValues(claims, rules.groupsClaim), rules.groupMap), kind: 'human', subject },
  };
}
