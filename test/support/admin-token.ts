/**
 * As `jitgate token --user` on the gateway host: an admin-issued grant and one token under it,
 * audited as the CLI audits it. Test code only.
 */
import { issueAdminToken, type GrantToken } from '../../src/access/grant-tokens.js';
import { AccessRepository, type GrantRecord } from '../../src/access/repository.js';
import type { AuditAppender } from '../../src/audit/log.js';
import type { TokenUse } from '../../src/config/types.js';
import type { SqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/store.js';

export async function adminToken(
  on: { store: Store; audit: AuditAppender },
  o: { user?: string; connection: string; ttlMs?: number; now?: number; groups?: readonly string[]; tokenUse?: TokenUse },
): Promise<GrantToken & { grant: GrantRecord }> {
  const store = on.store as SqliteStore;
  return issueAdminToken(store, await AccessRepository.open(store.sql), {
    user: o.user ?? 'alice',
    connection: o.connection,
    ttlMs: o.ttlMs ?? 3_600_000,
    now: o.now ?? Date.now(),
    issuedBy: 'local-admin:test',
    groups: o.groups ?? [],
    groupsFrom: { kind: 'stated' },
    audit: on.audit,
    ...(o.tokenUse ? { tokenUse: o.tokenUse } : {}),
  });
}
