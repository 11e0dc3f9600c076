/**
 * How long the event loop stalls when many sessions end at once (issue 11, item 19): N recorded
 * sessions, each with a few statements and results, all ended in the same tick, as when a backend
 * restart or a network blip drops every client together. Prints the longest event-loop stall and
 * the time until every session's end is stored.
 *
 *   node --import tsx bench/session-end-bench.ts [SESSIONS=1000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startAudit } from '../src/audit/wire.js';
import { SharedKeys } from '../src/credentials/shared-keys.js';
import { buildRecording } from '../src/config/recording.js';
import { systemClock } from '../src/core/clock.js';
import type { SessionPipeline } from '../src/core/types.js';
import { createLogger } from '../src/obs/log.js';
import { createMetrics } from '../src/obs/metrics.js';
import { startRecording } from '../src/recording/wire.js';
import { SessionService } from '../src/session/service.js';
import { openSqliteStore } from '../src/store/sqlite.js';

const sessions = Number(process.argv[2] ?? 1000);
const dir = mkdtempSync(join(tmpdir(), 'jitgate-end-bench-'));
const log = createLogger({ level: 'silent' });
const store = openSqliteStore(join(dir, 'jitgate.db'));
const config = { dataDir: dir, recording: buildRecording(undefined, dir, dir) };
const audit = await startAudit({ config, sql: store.sql, clock: systemClock, log, keys: SharedKeys.local() });
const recording = startRecording({ config, db: store.database, audit: audit.log, clock: systemClock, log });
const service = new SessionService(store, createMetrics({ defaultMetrics: false }), log);

const pipelines: SessionPipeline[] = [];
for (let i = 0; i < sessions; i++) {
  const info = {
    protocol: 'postgres' as const,
    user: `user${i % 50}`,
    connection: 'app',
    clientAddress: '127.0.0.1',
    applicationName: 'bench',
    tokenId: `t${i}`,
  };
  const p = await recording.service.open(info, () => service.open(info));
  const o = p.observer!;
  for (let s = 0; s < 5; s++) {
    p.decide({ source: 'simple', text: `select * from orders where id = ${s}` });
    o.onResult({
      kind: 'columns',
      columns: [
        { name: 'id', type: 23 },
        { name: 'note', type: 25 },
      ],
    });
    for (let r = 0; r < 20; r++) if (o.wantsRows()) o.onResult({ kind: 'row', values: [String(r), 'x'.repeat(40)] });
    o.onResult({ kind: 'complete', tag: 'SELECT 20' });
    o.onResult({ kind: 'ready' });
  }
  pipelines.push(p);
}
// Let the statement boundaries' fsyncs settle before the sessions end.
await new Promise((r) => setTimeout(r, 500));

let longest = 0;
let last = performance.now();
const probe = setInterval(() => {
  const now = performance.now();
  longest = Math.max(longest, now - last);
  last = now;
}, 1);
// JITGATE_PROFILE=file: a CPU profile of the end phase only.
const profileTo = process.env.JITGATE_PROFILE;
const inspector = profileTo ? new (await import('node:inspector')).Session() : undefined;
if (inspector) {
  inspector.connect();
  await new Promise((r) => inspector.post('Profiler.enable', () => inspector.post('Profiler.start', r)));
}
const openRows = store.database
  .prepare(`SELECT (SELECT count(*) FROM sessions WHERE ended_at IS NULL) + (SELECT count(*) FROM recordings WHERE state = 'recording')`)
  .pluck();
const started = performance.now();
last = started;
for (const p of pipelines) p.end('client_quit', { bytesFromClient: 1000, bytesToClient: 5000, statements: 5 });
const endedSync = performance.now() - started;
for (let i = 0; i < 100_000; i++) {
  if (openRows.get() === 0) break;
  await new Promise((r) => setTimeout(r, 20));
}
const total = performance.now() - started;
clearInterval(probe);
if (inspector && profileTo) {
  const { writeFileSync } = await import('node:fs');
  await new Promise<void>((r) =>
    inspector.post('Profiler.stop', (_err, res) => (writeFileSync(profileTo, JSON.stringify(res.profile)), r())),
  );
}
console.log(
  JSON.stringify({ sessions, endCallsMs: Math.round(endedSync), longestStallMs: Math.round(longest), allStoredMs: Math.round(total) }),
);
await recording.stop();
audit.stop();
store.close();
rmSync(dir, { recursive: true, force: true });
