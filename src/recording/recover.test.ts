import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startAudit } from '../audit/wire.js';
import { SharedKeys } from '../credentials/shared-keys.js';
import { buildRecording } from '../config/recording.js';
import { systemClock } from '../core/clock.js';
import { createLogger } from '../obs/log.js';
import { createMetrics } from '../obs/metrics.js';
import { SessionService } from '../session/service.js';
import { openSqliteStore } from '../store/sqlite.js';
import { startRecording } from './wire.js';

const log = createLogger({ level: 'silent' });

describe('reconciling at start what the store missed', () => {
  it('gives a session that ended while the store could not write its real end from the recording', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jitgate-reconcile-'));
    const config = { dataDir: dir, recording: buildRecording(undefined, dir, dir) };
    const store = openSqliteStore(join(dir, 'jitgate.db'));
    const first = startRecording({
      config,
      db: store.database,
      audit: (await startAudit({ config, sql: store.sql, clock: systemClock, log, keys: SharedKeys.local() })).log,
      clock: systemClock,
      log,
    });
    const sessions = new SessionService(store, createMetrics({ defaultMetrics: false }), log);
    const info = {
      protocol: 'postgres' as const,
      user: 'alice',
      connection: 'app',
      clientAddress: '127.0.0.1',
      applicationName: 'psql',
      tokenId: 't1',
    };
    const pipeline = await first.service.open(info, () => sessions.open(info));
    // The inner pipeline (no guardrails, no reviews) decides at once.
    expect(pipeline.decide({ source: 'simple', text: 'select 1' })).toMatchObject({ effect: 'allow' });
    pipeline.observer!.onResult({ kind: 'ready' });
    // The store turns read-only as the session ends, and the process dies before any retry.
    store.database.pragma('query_only = ON');
    pipeline.end('client_quit', { bytesFromClient: 120, bytesToClient: 340, statements: 1 });
    await expect.poll(() => first.service.isLive(pipeline.id), { message: 'the ended session to stop being live' }).toBe(false);
    await expect
      .poll(() => first.service.pendingStoreWrites, { message: 'the session end row to wait for the read-only store' })
      .toBeGreaterThan(0);
    expect((await store.listSessions())[0]).toMatchObject({ endedAt: null });
    store.database.pragma('query_only = OFF');

    // The next process on the same store and recordings (as main.ts wires it).
    // (A session from no instance: one that started before instances, or whose instance is gone.)
    expect(await store.instances.closeUnownedSessions(Date.now(), 'gateway_crashed')).toEqual([pipeline.id]);
    const audit = await startAudit({ config, sql: store.sql, clock: systemClock, log, keys: SharedKeys.local() });
    const next = startRecording({
      config,
      db: store.database,
      audit: audit.log,
      clock: systemClock,
      log,
      sessions: { reconcile: (id, endedAt, reason, counters) => store.reconcileSession(id, endedAt, reason, counters) },
    });
    await next.service.recoverOrphans({ unowned: true });
    const events = (await next.service.sink.read(next.service.repo.get(pipeline.id)!.location!)).events;
    const end = events.at(-1)!;
    expect(end.type).toBe('session_end');
    expect((await store.listSessions())[0]).toMatchObject({
      endReason: 'client_quit',
      endedAt: end.at,
      bytesFromClient: 120,
      bytesToClient: 340,
      statements: 1,
    });
    expect(next.service.repo.get(pipeline.id)).toMatchObject({
      state: 'complete',
      endReason: 'client_quit',
      digest: end.h,
      events: events.length,
    });
    expect((await audit.log.about(pipeline.id)).at(-1)).toMatchObject({
      type: 'session.ended',
      data: { reason: 'client_quit', recovered: true },
    });
    await next.stop();
    await audit.stop();
    void store.close();
  });
});
