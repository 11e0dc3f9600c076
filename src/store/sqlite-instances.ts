/**
 * The SQLite side of gateway instances (store.ts InstanceRepository): one row per running process
 * with its heartbeat, and the sessions it serves (`sessions.instance_id`). Several processes on one
 * host share the file in WAL mode; claiming a lost instance is one conditional UPDATE inside an
 * IMMEDIATE transaction, so of two survivors trying at once exactly one closes its sessions.
 */
import type Database from 'better-sqlite3';
import type { SessionEndReason } from '../core/types.js';
import type { InstanceRepository, InstanceRow, KillRequest, UsageCount } from './store.js';

type Row = Record<string, unknown>;

export class SqliteInstances implements InstanceRepository {
  private readonly stmts;

  constructor(private readonly db: Database.Database) {
    this.stmts = {
      register: db.prepare(
        `INSERT INTO instances (id, hostname, pid, pid_namespace, started_at, heartbeat_at)
         VALUES (@id, @hostname, @pid, @pidNamespace, @startedAt, @heartbeatAt)
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, lost_at = NULL, lost_by = NULL`,
      ),
      heartbeat: db.prepare(`UPDATE instances SET heartbeat_at = ? WHERE id = ? AND lost_at IS NULL`),
      remove: db.prepare(`DELETE FROM instances WHERE id = ?`),
      list: db.prepare(`SELECT * FROM instances ORDER BY started_at, id`),
      claim: db.prepare(
        `UPDATE instances SET lost_at = @at, lost_by = @by
         WHERE id = @id AND heartbeat_at = @heartbeatAt AND lost_at IS @lostAt`,
      ),
      closeOf: db
        .prepare(`UPDATE sessions SET ended_at = ?, end_reason = ? WHERE instance_id = ? AND ended_at IS NULL RETURNING id`)
        .pluck(),
      closeUnowned: db
        .prepare(
          `UPDATE sessions SET ended_at = ?, end_reason = ?
           WHERE ended_at IS NULL AND (instance_id IS NULL OR instance_id NOT IN (SELECT id FROM instances))
           RETURNING id`,
        )
        .pluck(),
      requestKill: db.prepare(
        `INSERT INTO session_kill_requests (session_id, instance_id, by_user, reason, requested_at)
         SELECT id, instance_id, @by, @reason, @requestedAt FROM sessions
         WHERE id = @sessionId AND instance_id = @instanceId AND ended_at IS NULL
         ON CONFLICT (session_id) DO NOTHING`,
      ),
      claimCancelKey: db.prepare(
        `INSERT INTO cancel_keys (protocol, pid, instance_id, session_id) VALUES (@protocol, @pid, @instanceId, @sessionId)
         ON CONFLICT (protocol, pid) DO UPDATE SET session_id = excluded.session_id WHERE instance_id = excluded.instance_id`,
      ),
      cancelKeyHolder: db.prepare(
        `SELECT k.instance_id AS instanceId, k.session_id AS sessionId, s.user AS user FROM cancel_keys k
         LEFT JOIN sessions s ON s.id = k.session_id AND s.ended_at IS NULL
         WHERE k.protocol = ? AND k.pid = ?`,
      ),
      releaseCancelKey: db.prepare(`DELETE FROM cancel_keys WHERE protocol = ? AND pid = ? AND instance_id = ?`),
      dropCancelKeys: db.prepare(`DELETE FROM cancel_keys WHERE instance_id = ?`),
      dropCancels: db.prepare(`DELETE FROM cancel_requests WHERE instance_id = ?`),
      dropKills: db.prepare(`DELETE FROM session_kill_requests WHERE instance_id = ?`),
      requestCancel: db.prepare(
        `INSERT INTO cancel_requests (protocol, pid, secret, instance_id, requested_at)
         SELECT protocol, pid, @secret, instance_id, @requestedAt FROM cancel_keys WHERE protocol = @protocol AND pid = @pid`,
      ),
      addUsage: db.prepare(
        `INSERT INTO usage_counts (kind, key, bucket, instance_id, count) VALUES (@kind, @key, @bucket, @instanceId, @count)
         ON CONFLICT (kind, key, bucket, instance_id) DO UPDATE SET count = count + excluded.count`,
      ),
      dropUsageBefore: db.prepare(`DELETE FROM usage_counts WHERE bucket < ?`),
      takeCancels: db.prepare(`DELETE FROM cancel_requests WHERE instance_id = ? RETURNING protocol, pid, secret`),
      takeKills: db.prepare(
        `DELETE FROM session_kill_requests WHERE instance_id = ?
         RETURNING session_id AS sessionId, instance_id AS instanceId, by_user AS "by", reason, requested_at AS requestedAt`,
      ),
    };
  }

  requestKill(request: KillRequest): boolean {
    return this.stmts.requestKill.run({ ...request }).changes > 0;
  }

  claimCancelKey(key: { protocol: string; pid: number; instanceId: string; sessionId: string }): boolean {
    return this.stmts.claimCancelKey.run({ ...key }).changes > 0;
  }

  cancelKeyHolder(protocol: string, pid: number): { instanceId: string; sessionId: string; user: string | null } | undefined {
    return this.stmts.cancelKeyHolder.get(protocol, pid) as { instanceId: string; sessionId: string; user: string | null } | undefined;
  }

  releaseCancelKey(protocol: string, pid: number, instanceId: string): void {
    this.stmts.releaseCancelKey.run(protocol, pid, instanceId);
  }

  requestCancel(request: { protocol: string; pid: number; secret: number; requestedAt: number }): boolean {
    return this.stmts.requestCancel.run({ ...request }).changes > 0;
  }

  takeCancels(instanceId: string): Array<{ protocol: string; pid: number; secret: number }> {
    return this.stmts.takeCancels.all(instanceId) as Array<{ protocol: string; pid: number; secret: number }>;
  }

  addUsage(instanceId: string, counts: readonly UsageCount[]): void {
    this.db.transaction(() => {
      for (const c of counts) this.stmts.addUsage.run({ ...c, instanceId });
    })();
  }

  usageOfOthers(instanceId: string, since: Readonly<Record<string, number>>): Array<UsageCount & { instanceId: string }> {
    const kinds = Object.keys(since);
    if (kinds.length === 0) return [];
    // One range per kind: each kind keeps its own window.
    const ranges = kinds.map(() => '(kind = ? AND bucket >= ?)').join(' OR ');
    return this.db
      .prepare(`SELECT kind, key, bucket, instance_id AS instanceId, count FROM usage_counts WHERE instance_id != ? AND (${ranges})`)
      .all(instanceId, ...kinds.flatMap((k) => [k, since[k]!])) as Array<UsageCount & { instanceId: string }>;
  }

  dropUsageBefore(before: number): void {
    this.stmts.dropUsageBefore.run(before);
  }

  forgetRequestsOf(instanceId: string): void {
    this.db.transaction(() => {
      this.stmts.dropCancelKeys.run(instanceId);
      this.stmts.dropCancels.run(instanceId);
      this.stmts.dropKills.run(instanceId);
    })();
  }

  takeKills(instanceId: string): KillRequest[] {
    return this.stmts.takeKills.all(instanceId) as KillRequest[];
  }

  register(row: Omit<InstanceRow, 'lostAt' | 'lostBy'>): void {
    this.stmts.register.run({ ...row });
  }

  heartbeat(id: string, at: number): boolean {
    return this.stmts.heartbeat.run(at, id).changes > 0;
  }

  remove(id: string): void {
    this.stmts.remove.run(id);
  }

  list(): InstanceRow[] {
    return (this.stmts.list.all() as Row[]).map((r) => ({
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

  claimLost(seen: InstanceRow, by: string, at: number, reason: SessionEndReason): string[] | undefined {
    return this.db
      .transaction(() => {
        const claimed = this.stmts.claim.run({ id: seen.id, heartbeatAt: seen.heartbeatAt, lostAt: seen.lostAt, at, by }).changes === 1;
        return claimed ? (this.stmts.closeOf.all(at, reason, seen.id) as string[]) : undefined;
      })
      .immediate();
  }

  closeUnownedSessions(endedAt: number, reason: SessionEndReason): string[] {
    return this.stmts.closeUnowned.all(endedAt, reason) as string[];
  }
}
