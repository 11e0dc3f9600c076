import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyEntriesAsync } from '../audit/chain.js';
import { AuditLog } from '../audit/log.js';
import { buildRecording } from '../config/recording.js';
import { ManualClock } from '../core/clock.js';
import { createLogger } from '../obs/log.js';
import { openSqliteStore } from '../store/sqlite.js';
import { placeHold, releaseHold, HoldError } from './holds.js';
import { LocalFileSink } from './local-sink.js';
import { RecordingRepository } from './repository.js';
import { RetentionJob } from './retention.js';
import { collect } from '../../test/support/collect.js';

const DAY = 86_400_000;

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'jitgate-retention-'));
  const store = openSqliteStore(':memory:');
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const repo = new RecordingRepository(store.database);
  const audit = await AuditLog.open(store.sql, () => clock.now());
  const config = buildRecording(
    { retention: 30 * DAY, connections: { scratch: { retention: 1 * DAY } }, retentionCheck: 3_600_000 },
    dir,
    dir,
  );
  const sink = new LocalFileSink(config.dir);
  /** A recorded session that ended `agoDays` ago on `connection`. */
  const recorded = async (id: string, connection: string, agoDays: number) => {
    const endedAt = clock.now() - agoDays * DAY;
    const { writer, location } = sink.create(id, endedAt - 60_000, () => endedAt);
    writer.append('session_start', { session: id });
    const digest = await writer.close();
    repo.insert({
      sessionId: id,
      user: 'alice',
      connection,
      startedAt: endedAt - 60_000,
      mode: 'required',
      state: 'recording',
      location,
      error: null,
    });
    repo.finish({
      sessionId: id,
      endedAt,
      endReason: 'client_quit',
      state: 'complete',
      events: 1,
      digest,
      bytes: 1,
      rowsRecorded: 0,
      truncated: false,
    });
    return join(config.dir, location);
  };
  const job = new RetentionJob({ config, repo, sink, audit, clock, log: createLogger({ level: 'silent' }) });
  return { repo, audit, clock, job, recorded };
}

describe('retention', () => {
  it("deletes what is past its connection's retention, audits each deletion, and keeps the rest", async () => {
    const { repo, audit, job, recorded } = await setup();
    const old = await recorded('old', 'app', 31);
    const young = await recorded('young', 'app', 29);
    const scratch = await recorded('scratch-2d', 'scratch', 2);
    expect(await job.run()).toBe(2);
    expect(existsSync(old)).toBe(false);
    expect(existsSync(scratch)).toBe(false);
    expect(existsSync(young)).toBe(true);
    expect(repo.get('old')).toMatchObject({ state: 'deleted', location: null });
    expect(repo.get('young')).toMatchObject({ state: 'complete', deletedAt: null });
    const deletions = (await collect(audit.entries())).filter((e) => e.type === 'recording.deleted');
    expect(deletions.map((e) => [e.subject, e.data.retentionMs])).toEqual([
      ['scratch-2d', DAY],
      ['old', 30 * DAY],
    ]);
    expect(deletions[1]!.data.digest).toMatch(/^[0-9a-f]{64}$/);
    expect((await verifyEntriesAsync(audit.entries())).ok).toBe(true);
    expect(await job.run()).toBe(0);
  });

  it('never deletes a recording on legal hold; deletes it once the hold is released', async () => {
    const { repo, audit, clock, job, recorded } = await setup();
    const held = await recorded('held', 'app', 40);
    await placeHold(repo, audit, { sessionId: 'held', by: 'auditor1', reason: 'case 42', at: clock.now() });
    expect(await job.run()).toBe(0);
    expect(existsSync(held)).toBe(true);
    await expect(placeHold(repo, audit, { sessionId: 'nope', by: 'a', reason: 'x', at: 0 })).rejects.toThrow(HoldError);
    await releaseHold(repo, audit, { sessionId: 'held', by: 'auditor1', reason: 'case closed' });
    expect(await job.run()).toBe(1);
    expect(existsSync(held)).toBe(false);
    expect((await collect(audit.entries())).map((e) => e.type)).toEqual(['legal_hold.set', 'legal_hold.released', 'recording.deleted']);
    await expect(placeHold(repo, audit, { sessionId: 'held', by: 'a', reason: 'too late', at: 0 })).rejects.toThrow(/already deleted/);
  });

  it('runs on the clock: at start and every retentionCheck', async () => {
    const { job, clock, recorded, repo } = await setup();
    await recorded('soon', 'scratch', 0.5);
    job.start();
    await new Promise((r) => setImmediate(r));
    expect(repo.get('soon')!.deletedAt).toBeNull();
    clock.advance(13 * 3_600_000);
    await expect
      .poll(() => repo.get('soon')!.deletedAt, { message: 'the retention run 12 h later to delete the recording', timeout: 5000 })
      .not.toBeNull();
    await job.stop();
  });
});
