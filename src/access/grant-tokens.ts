/**
 * Tokens under grants: every token that opens a data session is tied to the grant it rests on
 * (access_grant_tokens), and lives no longer than that grant.
 *
 * Admin-issued grants: `jitgate token --user U --connection C` on the gateway host has no request
 * and no approver; it still creates a grant (reason, issuer and the person's groups recorded), so every
 * session rests on one and the audit trail (`access.grant.created`) says who let it happen. The groups
 * are never assumed: the caller states where they came from (the person's last sign-in, or the admin),
 * because masking and guardrails are scoped by them and "no groups" would switch those rules off.
 */
import { randomUUID } from 'node:crypto';
import { accessAuditEntry } from './audit.js';
import type { AuditAppender } from '../audit/log.js';
import { mintToken, type MintedToken } from './tokens.js';
import type { Store } from '../store/store.js';
import type { TokenUse } from '../config/types.js';
import type { AccessRepository, GrantRecord } from './repository.js';

export const ADMIN_GRANT_REASON = 'issued by an administrator on the gateway host';

export class GrantNotActiveError extends Error {
  constructor(readonly grant: GrantRecord) {
    super(`access grant ${grant.id} is ${grant.revokedAt !== null ? 'revoked' : 'expired'}`);
    this.name = 'GrantNotActiveError';
  }
}

export interface GrantToken extends MintedToken {
  grantId: string;
  /** `session`: opens one data session and is revoked when it ends; `grant`: logins until it expires. */
  use: TokenUse;
}

/**
 * Mint a token for the grant's user and connection, living min(ttl, time left on the grant). The token
 * row and its link to the grant are written in one transaction: there is never a token without a grant.
 */
export async function mintGrantToken(
  store: Store,
  repo: AccessRepository,
  grant: GrantRecord,
  ttlMs: number,
  now: number,
  use: TokenUse = 'grant',
): Promise<GrantToken> {
  if (grant.revokedAt !== null || grant.expiresAt <= now) throw new GrantNotActiveError(grant);
  const natural = now + Math.floor(ttlMs);
  const expiresAt = Math.min(natural, grant.expiresAt);
  return repo.transaction(async () => {
    const minted = await mintToken(store, { user: grant.user, connection: grant.connection, ttlMs: expiresAt - now, now });
    await repo.linkToken(minted.id, grant.id, natural, use);
    return { ...minted, grantId: grant.id, use };
  });
}

export interface AdminTokenInput {
  user: string;
  connection: string;
  ttlMs: number;
  now: number;
  /** Who issued it, e.g. `local-admin:root`; recorded on the grant. */
  issuedBy: string;
  /** The person's groups, and where they came from (recorded in the audit entry). */
  groups: readonly string[];
  groupsFrom: GroupsSource;
  /** Where `access.grant.created` goes, in the same transaction as the grant. */
  audit: AuditAppender;
  /** Sessions the token may open (default `grant`). */
  tokenUse?: TokenUse;
}

/** Where an admin-issued grant's groups came from. */
export type GroupsSource = { kind: 'sign-in'; at: number; issuer: string } | { kind: 'directory'; issuer: string } | { kind: 'stated' };

/** An admin-issued grant lasting `ttlMs` and one token under it. */
export async function issueAdminToken(
  store: Store,
  repo: AccessRepository,
  input: AdminTokenInput,
): Promise<GrantToken & { grant: GrantRecord }> {
  if (!Number.isFinite(input.ttlMs) || input.ttlMs <= 0) throw new RangeError('token lifetime must be a positive duration');
  const grant: GrantRecord = {
    id: randomUUID(),
    user: input.user,
    groups: [...new Set(input.groups)].sort(),
    connection: input.connection,
    reason: ADMIN_GRANT_REASON,
    requestId: null,
    approvedBy: [],
    breakGlass: false,
    policy: null,
    issuedBy: input.issuedBy,
    createdAt: input.now,
    expiresAt: input.now + Math.floor(input.ttlMs),
    revokedAt: null,
    revokedBy: null,
    revokeReason: null,
  };
  return repo.transaction(async () => {
    await repo.insertGrant(grant);
    // A grant issued already in the past (tests do this) yields an already expired token.
    const natural = input.now + Math.floor(input.ttlMs);
    const minted = await mintToken(store, { user: input.user, connection: input.connection, ttlMs: input.ttlMs, now: input.now });
    const use = input.tokenUse ?? 'grant';
    await repo.linkToken(minted.id, grant.id, natural, use);
    const entry = accessAuditEntry({ type: 'grant.created', at: input.now, grant, request: null });
    // In the same transaction: the grant exists only with its entry.
    await input.audit.append({ ...entry, data: { ...entry.data, groupsFrom: input.groupsFrom } });
    return { ...minted, grantId: grant.id, grant, use };
  });
}
