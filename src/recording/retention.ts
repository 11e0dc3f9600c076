/**
 * Retention: on the injected Clock, at start and every `retentionCheckMs`, deletes the recordings of
 * sessions that ended longer ago than their connection's retention, skipping those on legal hold,
 * and writes one audit entry per deletion (with the recording's digest, so the audit trail still
 * says what existed). The index row is marked deleted and the audit entry written in one
 * transaction that also re-checks the hold (a hold placed meanwhile wins); the file goes after
 * that, and a file that could not be removed (or a crash in between) is removed by the next run.
 */
import type { AuditAppender } from '../audit/log.js';
import { policyFor, type RecordingConfig } from '../config/recording.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../obs/log.js';
import type { RecordingRepository } from './repository.js';
import type { RecordingSink } from './sink.js';

const BATCH = 200;

export interface RetentionOptions {
  config: RecordingConfig;
  repo: RecordingRepository;
  sink: RecordingSink;
  audit: AuditAppender;
  clock: Clock;
  log: Logger;
}

export class RetentionJob {
  private cancel: (() => void) | undefined;
  private stopped = false;
  private running: Promise<number> | undefined;

  constructor(private readonly o: RetentionOptions) {}

  start(): void {
    void this.run();
    this.arm();
  }

  stop(): Promise<unknown> {
    this.stopped = true;
    this.cancel?.();
    return Promise.allSettled([this.running, this.again]);
  }

  /**
   * One pass; resolves to the number of recordings deleted. A call while a pass runs is folded into
   * one more pass after it (which sees the time of then, not of the pass in progress).
   */
  run(): Promise<number> {
    if (this.running) {
      this.again ??= this.running.then(() => {
        this.again = undefined;
        return this.run();
      });
      return this.again;
    }
    this.running = this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private again: Promise<number> | undefined;

  private arm(): void {
    if (this.stopped) return;
    this.cancel = this.o.clock.at(this.o.clock.now() + this.o.config.retentionCheckMs, () => {
      void this.run();
      this.arm();
    });
  }

  private async unlink(sessionId: string, location: string): Promise<void> {
    try {
      await this.o.sink.delete(location);
      this.o.repo.markUnlinked(sessionId);
    } catch (err) {
      this.o.log.error({ err, session: sessionId }, 'retention: cannot remove the file of a deleted recording (retried next run)');
    }
  }

  private async pass(): Promise<number> {
    const { config, repo, log } = this.o;
    let deleted = 0;
    // Files of recordings already marked deleted (an earlier run failed to remove them, or crashed).
    try {
      for (const row of repo.unlinking(BATCH)) await this.unlink(row.sessionId, row.location!);
    } catch (err) {
      log.error({ err }, 'retention: cannot list recordings waiting for their files to be removed');
    }
    const listed = Object.keys(config.connections);
    const groups: Array<{ which: { connection: string } | { except: string[] }; retentionMs: number }> = [
      ...listed.map((connection) => ({ which: { connection }, retentionMs: policyFor(config, connection).retentionMs })),
      { which: { except: listed }, retentionMs: config.defaults.retentionMs },
    ];
    for (const group of groups) deleted += await this.expire(group.which, group.retentionMs);
    if (deleted > 0) log.info({ deleted }, 'retention: deleted expired recordings');
    return deleted;
  }

  private async expire(which: { connection: string } | { except: string[] }, retentionMs: number): Promise<number> {
    const { repo, audit, log } = this.o;
    const now = this.o.clock.now();
    let deleted = 0;
    // Rows that could not be deleted this pass (a hold placed meanwhile, an I/O error): not again.
    const skipped = new Set<string>();
    for (;;) {
      if (this.stopped) break;
      let candidates;
      try {
        candidates = repo.expiring(now - retentionMs, BATCH + skipped.size, which).filter((r) => !skipped.has(r.sessionId));
      } catch (err) {
        log.error({ err }, 'retention: cannot list expired recordings');
        break;
      }
      if (candidates.length === 0) break;
      for (const row of candidates) {
        try {
          const marked = await repo.transaction(async () => {
            // Under the write lock: a legal hold placed since the list was made wins.
            if (!repo.markDeleted(row.sessionId, this.o.clock.now())) return false;
            await audit.append({
              type: 'recording.deleted',
              actor: 'gateway',
              subject: row.sessionId,
              data: {
                user: row.user,
                connection: row.connection,
                startedAt: row.startedAt,
                endedAt: row.endedAt,
                retentionMs,
                digest: row.digest,
                events: row.events,
                why: 'retention',
              },
            });
            return true;
          });
          if (!marked) {
            skipped.add(row.sessionId);
            continue;
          }
          deleted++;
          if (row.location) await this.unlink(row.sessionId, row.location);
          else repo.markUnlinked(row.sessionId);
        } catch (err) {
          log.error({ err, session: row.sessionId }, 'retention: cannot delete an expired recording (retried next run)');
          skipped.add(row.sessionId);
        }
      }
    }
    return deleted;
  }
}
