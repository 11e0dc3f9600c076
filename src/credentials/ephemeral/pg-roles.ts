/**
 * Role operations on one PostgreSQL backend, run as the connection's stored (administrative)
 * credential. Each operation opens its own short connection: they happen once per session start
 * and end, and a fresh connection has no state left over from an earlier failure.
 */
import type { BackendTarget } from '../../core/types.js';
import { AdminConnection, BackendQueryError, withAdminConnection } from '../../protocols/postgres/admin-client.js';
import {
  countBackendsSql,
  createRoleSql,
  describeRoleSql,
  dropRoleSql,
  listRolesSql,
  lockOutRoleSql,
  terminateBackendsSql,
  type CreateRoleSpec,
} from './role-sql.js';

export interface ListedRole {
  name: string;
  comment: string | null;
}

export type RemoveOutcome = 'dropped' | 'absent' | 'not_ours';

/** The seam the credential provider talks to (a fake stands in for it in unit tests). */
export interface RoleAdmin {
  /** Throws BackendQueryError (nothing was created), MaybeCreatedError, or the connect error. */
  create(spec: CreateRoleSpec): Promise<void>;
  list(prefix: string): Promise<ListedRole[]>;
  /**
   * Removes the role if `isOurs(comment)` holds: locks it out, ends its backends, drops it.
   * Throws when the role exists but could not be removed.
   */
  remove(name: string, isOurs: (comment: string | null) => boolean): Promise<RemoveOutcome>;
}

/** CREATE ROLE was sent but its outcome is unknown (the connection broke or timed out). */
export class MaybeCreatedError extends Error {
  constructor(cause: unknown) {
    super(`outcome of CREATE ROLE unknown: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'MaybeCreatedError';
  }
}

const ADMIN_OPTIONS = { applicationName: 'jitgate (ephemeral roles)' };

export interface PostgresRoleAdminOptions {
  /** How long to wait for the role's backends to exit after pg_terminate_backend. */
  terminateWaitMs?: number;
}

export class PostgresRoleAdmin implements RoleAdmin {
  private readonly terminateWaitMs: number;

  constructor(
    private readonly target: BackendTarget,
    options: PostgresRoleAdminOptions = {},
  ) {
    this.terminateWaitMs = options.terminateWaitMs ?? 5_000;
  }

  async create(spec: CreateRoleSpec): Promise<void> {
    const conn = await this.open();
    try {
      await conn.query(createRoleSql(spec));
    } catch (err) {
      // An ErrorResponse means the implicit transaction rolled back; anything else leaves doubt.
      throw err instanceof BackendQueryError ? err : new MaybeCreatedError(err);
    } finally {
      await conn.close();
    }
  }

  async list(prefix: string): Promise<ListedRole[]> {
    return this.with(async (conn) => {
      const [result] = await conn.query(listRolesSql(prefix));
      return (result?.rows ?? []).map((r) => ({ name: r.rolname ?? '', comment: r.comment ?? null }));
    });
  }

  async remove(name: string, isOurs: (comment: string | null) => boolean): Promise<RemoveOutcome> {
    return this.with(async (conn) => {
      const [found] = await conn.query(describeRoleSql(name));
      const row = found?.rows[0];
      if (!row) return 'absent';
      if (!isOurs(row.comment ?? null)) return 'not_ours';
      await conn.query(lockOutRoleSql(name));
      await conn.query(terminateBackendsSql(name));
      await this.waitForBackendsToExit(conn, name);
      await conn.query(dropRoleSql(name));
      return 'dropped';
    });
  }

  /**
   * DROP ROLE does not end the role's sessions; a dropped role with a live backend would keep its
   * privileges until that backend exits. So the drop waits for them, and fails if they stay.
   */
  private async waitForBackendsToExit(conn: AdminConnection, name: string): Promise<void> {
    const deadline = Date.now() + this.terminateWaitMs;
    for (;;) {
      const [count] = await conn.query(countBackendsSql(name));
      if (Number(count?.rows[0]?.backends ?? 0) === 0) return;
      if (Date.now() >= deadline) throw new Error(`backends of role ${name} did not exit after pg_terminate_backend`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private open(): Promise<AdminConnection> {
    return AdminConnection.open(this.target, ADMIN_OPTIONS);
  }

  private with<T>(fn: (conn: AdminConnection) => Promise<T>): Promise<T> {
    return withAdminConnection(this.target, fn, ADMIN_OPTIONS);
  }
}
