/**
 * Gateway instances on the shared store (store.ts InstanceRepository): one row per running process
 * with its heartbeat, the sessions it serves (`sessions.instance_id`), and what one instance asks
 * of another (kills, cancels) and counts for all (usage). Claiming a lost instance is one
 * conditional UPDATE inside a transaction, so of two survivors trying at once exactly one closes
 * its sessions.
 *
 * PostgreSQL cannot infer the type of a parameter that is only compared with NULL or selected into
 * an INSERT, hence the CASTs; camel-case aliases are quoted because it folds unquoted ones.
 */
import type { SessionEndReason } from '../core/types.js';
import type { SqlDatabase } from './sql.js';
import type { InstanceRepository, InstanceRow, KillRequest, UsageCount } from './store.js';

export class SqlInstances implements InstanceRepository {
  constructor(private readonly sql: SqlDatabase) {}

  async register(row: Omit<InstanceRow, 'lostAt' | 'lostBy'>): Promise<void> {
    await this.sql.run(
      `INSERT INTO instances (id, hostname, pid, pid_namespace, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, lost_at = NULL, lost_by = NULL`,
      [row.id, row.hostname, row.pid, row.pidNamespace, row.startedAt, row.heartbeatAt],
    );
  }

  async heartbeat(id: string, at: number): Promise<boolean> {
    return (await this.sql.run(`UPDATE instances SET heartbeat_at = ? WHERE id = ? AND lost_at IS NULL`, [at, id])).changes > 0;
  }

  async remove(id: string): Promise<void> {
    await this.sql.run(`DELETE FROM instances WHERE id = ?`, [id]);
  }

  async list(): Promise<InstanceRow[]> {
    const rows = await this.sql.all(`SELECT * FROM instances ORDER BY started_at, id`);
    return rows.map((r) => ({
      id: r.id as string,
      hostname: r.hostname as string,
      pid: r.pid as number,
      pidNamespace: (r.pid_namespace as string | null) ?? null,
      startedAt: r.started_at as number,
      heartbeatAt: r.heartbeat_at as number,
      lostAt: (r.lost_at as number | null) ?? null,
      lostBy: (r.lost_by as string | null) ?? null,
    }));
  }

  claimLost(seen: InstanceRow, by: string, at: number, reason: SessionEndReason): Promise<string[] | undefined> {
    return this.sql.transaction(async (tx) => {
      const claimed = await tx.run(
        `UPDATE instances SET lost_at = ?, lost_by = ?
         WHERE id = ? AND heartbeat_at = ? AND ((CAST(? AS BIGINT) IS NULL AND lost_at IS NULL) OR lost_at = ?)`,
        [at, by, seen.id, seen.heartbeatAt, seen.lostAt, seen.lostAt],
      );
      if (claimed.changes !== 1) return undefined;
      const closed = await tx.all<{ id: string }>(
        `UPDATE sessions SET ended_at = ?, end_reason = ? WHERE instance_id = ? AND ended_at IS NULL RETURNING id`,
        [at, reason, seen.id],
      );
      return closed.map((r) => r.id);
    });
  }

  async closeUnownedSessions(endedAt: number, reason: SessionEndReason): Promise<string[]> {
    const closed = await this.sql.all<{ id: string }>(
      `UPDATE sessions SET ended_at = ?, end_reason = ?
       WHERE ended_at IS NULL AND (instance_id IS NULL OR instance_id NOT IN (SELECT id FROM instances))
       RETURNING id`,
      [endedAt, reason],
    );
    return closed.map((r) => r.id);
  }

  async requestKill(request: KillRequest): Promise<boolean> {
    const inserted = await this.sql.run(
      `INSERT INTO session_kill_requests (session_id, instance_id, by_user, reason, requested_at)
       SELECT id, instance_id, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT) FROM sessions
       WHERE id = ? AND instance_id = ? AND ended_at IS NULL
       ON CONFLICT (session_id) DO NOTHING`,
      [request.by, request.reason, request.requestedAt, request.sessionId, request.instanceId],
    );
    return inserted.changes > 0;
  }

  takeKills(instanceId: string): Promise<KillRequest[]> {
    return this.sql.all<KillRequest>(
      `DELETE FROM session_kill_requests WHERE instance_id = ?
       RETURNING session_id AS "sessionId", instance_id AS "instanceId", by_user AS "by", reason, requested_at AS "requestedAt"`,
      [instanceId],
    );
  }

  async claimCancelKey(key: { protocol: string; pid: number; instanceId: string; sessionId: string }): Promise<boolean> {
    const claimed = await this.sql.run(
      `INSERT INTO cancel_keys (protocol, pid, instance_id, session_id) VALUES (?, ?, ?, ?)
       ON CONFLICT (protocol, pid) DO UPDATE SET session_id = excluded.session_id
       WHERE cancel_keys.instance_id = excluded.instance_id`,
      [key.protocol, key.pid, key.instanceId, key.sessionId],
    );
    return claimed.changes > 0;
  }

  cancelKeyHolder(protocol: string, pid: number): Promise<{ instanceId: string; sessionId: string; user: string | null } | undefined> {
    return this.sql.get(
      `SELECT k.instance_id AS "instanceId", k.session_id AS "sessionId", s."user" AS "user" FROM cancel_keys k
       LEFT JOIN sessions s ON s.id = k.session_id AND s.ended_at IS NULL
       WHERE k.protocol = ? AND k.pid = ?`,
      [protocol, pid],
    );
  }

  async releaseCancelKey(protocol: string, pid: number, instanceId: string): Promise<void> {
    await this.sql.run(`DELETE FROM cancel_keys WHERE protocol = ? AND pid = ? AND instance_id = ?`, [protocol, pid, instanceId]);
  }

  async requestCancel(request: { protocol: string; pid: number; secret: number; requestedAt: number }): Promise<boolean> {
    const inserted = await this.sql.run(
      `INSERT INTO cancel_requests (protocol, pid, secret, instance_id, requested_at)
       SELECT protocol, pid, CAST(? AS BIGINT), instance_id, CAST(? AS BIGINT) FROM cancel_keys WHERE protocol = ? AND pid = ?`,
      [request.secret, request.requestedAt, request.protocol, request.pid],
    );
    return inserted.changes > 0;
  }

  takeCancels(instanceId: string): Promise<Array<{ protocol: string; pid: number; secret: number }>> {
    return this.sql.all(`DELETE FROM cancel_requests WHERE instance_id = ? RETURNING protocol, pid, secret`, [instanceId]);
  }

  forgetRequestsOf(instanceId: string): Promise<void> {
    return this.sql.transaction(async (tx) => {
      await tx.run(`DELETE FROM cancel_keys WHERE instance_id = ?`, [instanceId]);
      await tx.run(`DELETE FROM cancel_requests WHERE instance_id = ?`, [instanceId]);
      await tx.run(`DELETE FROM session_kill_requests WHERE instance_id = ?`, [instanceId]);
    });
  }

  addUsage(instanceId: string, counts: readonly UsageCount[]): Promise<void> {
    return this.sql.transaction(async (tx) => {
      for (const c of counts) {
        await tx.run(
          `INSERT INTO usage_counts (kind, key, bucket, instance_id, count) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (kind, key, bucket, instance_id) DO UPDATE SET count = usage_counts.count + excluded.count`,
          [c.kind, c.key, c.bucket, instanceId, c.count],
        );
      }
    });
  }

  usageOfOthers(instanceId: string, since: Readonly<Record<string, number>>): Promise<Array<UsageCount & { instanceId: string }>> {
    const kinds = Object.keys(since);
    if (kinds.length === 0) return Promise.resolve([]);
    // One range per kind: each kind keeps its own window.
    const ranges = kinds.map(() => '(kind = ? AND bucket >= ?)').join(' OR ');
    return this.sql.all(
      `SELECT kind, key, bucket, instance_id AS "instanceId", count FROM usage_counts WHERE instance_id != ? AND (${ranges})`,
      [instanceId, ...kinds.flatMap((k) => [k, since[k]!])],
    );
  }

  async dropUsageBefore(before: number): Promise<void> {
    await this.sql.run(`DELETE FROM usage_counts WHERE bucket < ?`, [before]);
  }
}
