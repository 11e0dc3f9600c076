/**
 * The gateway's BackendCredentials per connection, built from the config: static ones hand out the
 * stored credential, ephemeral ones a role per session. Also owns the janitor that removes
 * ephemeral roles left behind (crash, kill -9, a drop that failed while the backend was down).
 */
import type Database from 'better-sqlite3';
import type { Clock } from '../core/clock.js';
import { GatewayError } from '../core/errors.js';
import type { BackendLease, BackendTarget } from '../core/types.js';
import type { ConnectionConfig } from '../config/types.js';
import type { Logger } from '../obs/log.js';
import { StaticCredentials, type BackendCredentials, type SessionCredentialRequest } from './backend-credentials.js';
import { Janitor } from './ephemeral/janitor.js';
import { EphemeralCredentials } from './ephemeral/provider.js';
import { RedisAclAdmin } from './ephemeral/redis-acl.js';
import { MysqlUserAdmin } from './ephemeral/mysql-users.js';
import { EphemeralRoleRepository } from './ephemeral/repository.js';
import { DEFAULT_ROLE_PREFIX } from '../config/schema.js';
import { formatMark } from './ephemeral/role-sql.js';

export interface SessionCredentialsOptions {
  connections: readonly ConnectionConfig[];
  /** Resolved backend targets (stored credentials) by connection name. */
  targets: ReadonlyMap<string, BackendTarget>;
  /** The state store's database, where the ephemeral-role records live. */
  database: Database.Database;
  clock: Clock;
  log: Logger;
  /** Ids of sessions the store counts as live; their roles are never swept. */
  liveSessions: () => Promise<ReadonlySet<string>>;
  janitorIntervalMs?: number;
}

export class SessionCredentials {
  private readonly providers = new Map<string, BackendCredentials>();
  private readonly ephemeral: EphemeralCredentials[] = [];
  private readonly janitor: Janitor;
  readonly repository: EphemeralRoleRepository;
  /** The janitor's pass at start (resolves when done; failures are logged, not thrown). */
  readonly firstSweep: Promise<void>;

  constructor(options: SessionCredentialsOptions) {
    const { connections, targets, clock, log } = options;
    this.repository = new EphemeralRoleRepository(options.database);
    const gatewayId = this.repository.gatewayId();
    for (const c of connections) {
      const target = targets.get(c.name);
      if (!target) continue;
      const creds = c.credentials;
      // A connection switched back to static may still have roles from its ephemeral days: sweep them.
      const leftovers = creds?.mode !== 'ephemeral' && this.repository.pending(c.name).length > 0;
      if (creds?.mode === 'ephemeral' || leftovers) {
        const provider = new EphemeralCredentials({
          admin: target,
          // Redis: an ACL user per session whose rules are `acl` (passed where PostgreSQL has its roles).
          settings:
            creds?.mode === 'ephemeral'
              ? { roles: c.type === 'redis' ? (creds.acl ?? []) : creds.roles, rolePrefix: creds.rolePrefix }
              : { roles: [], rolePrefix: DEFAULT_ROLE_PREFIX },
          ...(c.type === 'redis' ? { roleAdmin: new RedisAclAdmin(target) } : {}),
          // MySQL users carry no comment: the store's record of the user is its mark.
          ...(c.type === 'mysql' ? { roleAdmin: new MysqlUserAdmin(target, (name) => this.storedMark(gatewayId, c.name, name)) } : {}),
          repository: this.repository,
          gatewayId,
          now: () => clock.now(),
          log: log.child({ component: 'ephemeral-roles' }),
          liveSessions: options.liveSessions,
        });
        this.ephemeral.push(provider);
        if (creds?.mode === 'ephemeral') {
          this.providers.set(c.name, provider);
          continue;
        }
      }
      this.providers.set(c.name, new StaticCredentials(target));
    }
    this.janitor = new Janitor(this.ephemeral, clock, log, options.janitorIntervalMs);
    this.firstSweep = this.ephemeral.length > 0 ? this.janitor.start() : Promise.resolve();
  }

  /** The mark of a per-session user this gateway recorded for `connection`, as a role comment would carry it. */
  private storedMark(gateway: string, connection: string, name: string): string | null {
    const row = this.repository.pending(connection).find((r) => r.name === name);
    return row ? formatMark({ gateway, connection, session: row.sessionId, user: row.user }) : null;
  }

  /** The backend credential for one session on `connection`; throws a GatewayError to refuse it. */
  createFor(connection: string, request: SessionCredentialRequest): Promise<BackendLease> {
    const provider = this.providers.get(connection);
    if (!provider) return Promise.reject(new GatewayError('unknown_connection', `connection "${connection}" does not exist`));
    return provider.createFor(request);
  }

  /** Runs a janitor pass over every ephemeral connection now (also runs on its own schedule). */
  async sweep(): Promise<void> {
    for (const p of this.ephemeral) await p.sweep();
  }

  /** Stops the janitor and waits (bounded) for role drops in progress. Call after the listeners closed. */
  async close(): Promise<void> {
    this.janitor.stop();
    await Promise.all(this.ephemeral.map((p) => p.close()));
  }
}
